"""The adapter SDK itself: signing helpers (published vectors), request/account types, the
generic policy check, the registry's loading checks and send_via."""

from __future__ import annotations

from importlib import metadata
from typing import Any, ClassVar

import aiohttp
import msgspec
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import registry, signing
from adapters.errors import (
    AccountConfigError,
    AdapterLoadError,
    PayloadInvalid,
    PayloadTooLarge,
    Refused,
    Retryable,
    SignatureInvalid,
    WindowClosed,
)
from adapters.sdk import (
    SDK_VERSION,
    Account,
    AdapterContext,
    Capabilities,
    Headers,
    InboundRequest,
    KindSupport,
    OutboundRequest,
    Policy,
    ReplyWindow,
    Secret,
    SendResult,
    capability_summary,
    check_outbound,
    decode_body,
    make_envelope,
    send_via,
)
from gateway import envelope as E

# ------------------------------------------------------------------ signing (platforms.md vectors)


@pytest.mark.parametrize(
    ("key", "body", "header"),
    [
        ("FAKE_SECRET", b"{}",
         "sha256=448df8785dd36742e43fa3cad9de2eca8ceb6391e79c742e33e52c6637f32dac"),
        ("Bar", b'{"t":"\\u00e4\\u00f6\\u00e5"}',
         "sha256=65859a5889fb5ecb0ef54afc341a2984120e205c6a4caa450c50248d69f0e9c1"),
        ("Bar", '{"t":"äöå"}'.encode(),
         "sha256=2e080b41a2565ed37c115318e3309d1f0098f8712bfc047d301619faee4d762a"),
    ],
)
def test_meta_signature_vectors(key: str, body: bytes, header: str) -> None:
    assert signing.meta_signature(key, body) == header
    signing.verify_meta_signature(header, key, body)
    signing.verify_meta_signature(header.upper().replace("SHA256=", "sha256="), key, body)
    with pytest.raises(SignatureInvalid):
        signing.verify_meta_signature(header, key + "x", body)


def test_x_signature_and_crc_vectors() -> None:
    assert signing.x_crc_response_token("apiSecret", "test token") == (
        "sha256=O5hJl2njQRIa4vsumZ+3oom9ECR5m3aQLRZkPoYelp0=")
    assert signing.x_signature("test", b"test=1&other_test=2") == (
        "sha256=25Cu3iwbbiqBTwQRzcKJZwisjf736V2Q8UaTlkfLSoc=")
    body = b'{"test_number":1,"test_string":"two"}'
    header = "sha256=YWHphPn/JFq43jkF0y4/w8R/SelmLjvpunhVFY8JhlI="
    signing.verify_x_signature(header, "test", body)
    for bad in (None, "", "sha256=!!!", "md5=abc", header[:-4] + "AAA="):
        with pytest.raises(SignatureInvalid):
            signing.verify_x_signature(bad, "test", body)


def test_secret_token_skew_and_size() -> None:
    signing.verify_secret_token("abc_-9", "abc_-9", "X-Telegram-Bot-Api-Secret-Token")
    for bad in (None, "", "abc_-8"):
        with pytest.raises(SignatureInvalid) as info:
            signing.verify_secret_token(bad, "abc_-9", "X-Telegram-Bot-Api-Secret-Token")
        assert "abc" not in str(info.value)
    signing.check_timestamp_skew(1_000_000, 1_000_000 + 299_000, 300)
    for ts in (None, 1_000_000 + 301_000 * 2, 0):
        with pytest.raises(SignatureInvalid):
            signing.check_timestamp_skew(ts, 1_000_000 + 301_000, 300)
    signing.check_body_size(b"12345", 5)
    with pytest.raises(PayloadTooLarge):
        signing.check_body_size(b"123456", 5)


# ------------------------------------------------------------------ request / account types
def test_headers_are_case_insensitive_and_first_value_wins() -> None:
    headers = Headers([("X-Hub-Signature-256", "a"), ("x-hub-signature-256", "b")])
    assert headers["X-HUB-SIGNATURE-256"] == "a" and "x-Hub-signature-256" in headers
    request = InboundRequest("POST", "/", b"{}", {"Content-Type": "application/json"})
    assert request.headers.get("content-type") == "application/json"
    assert "b'{}'" not in repr(request)


def test_secrets_never_show_and_require_names_the_field() -> None:
    account = Account(id="p1", tenant="t", app_secret=Secret("s3cr3t"),
                      secrets={"extra": Secret("e")})
    assert "s3cr3t" not in repr(account) + str(account.app_secret) + repr(account.app_secret)
    assert account.require("app_secret") == "s3cr3t"
    assert account.require("extra") == "e"
    with pytest.raises(AccountConfigError, match="access_token"):
        account.require("access_token")
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")


def test_outbound_request_repr_hides_token_and_body() -> None:
    request = OutboundRequest("POST", "https://h/x?access_token=T", {"Authorization": "Bearer T"},
                              {"text": "private"})
    assert "T" not in repr(request).replace("OutboundRequest", "").replace("POST", "")
    assert msgspec.json.decode(request.body()) == {"text": "private"}


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://graph.facebook.com/v23.0/1122334455667/messages",
         "https://graph.facebook.com/v23.0/1122334455667/messages"),
        ("https://api.telegram.org/bot123456:AAE-t0k3n/sendMessage",
         "https://api.telegram.org/***/sendMessage"),
        ("https://api.x.com/2/dm_conversations/123-456/messages",
         "https://api.x.com/2/dm_conversations/123-456/messages"),
        ("http://user:pw@127.0.0.1:9/v1/messages?key=K#frag", "http://127.0.0.1:9/v1/messages?***"),
        ("https://h/files/AbCdEfGhIjKlMnOp/raw", "https://h/files/***/raw"),
        ("https://h/keys/8f2a9c", "https://h/keys/***"),
    ],
)
def test_outbound_request_repr_redacts_the_url(url: str, shown: str) -> None:
    request = OutboundRequest("POST", url, {"Content-Type": "application/json"}, {"t": "x"})
    assert repr(request) == f"OutboundRequest(POST {shown})"


def test_outbound_request_repr_hides_a_header_credential_repeated_in_the_path() -> None:
    request = OutboundRequest("GET", "https://h/v1/media/lettersonlytoken",
                              {"Authorization": "Bearer lettersonlytoken"})
    assert "lettersonlytoken" not in repr(request)
    assert repr(request) == "OutboundRequest(GET https://h/v1/media/***)"


@settings(max_examples=200, deadline=None)
@given(bot_id=st.integers(1, 10**12), secret=st.from_regex(r"[A-Za-z0-9_-]{20,40}", fullmatch=True),
       method=st.sampled_from(["sendMessage", "setMessageReaction", "getFile"]))
def test_no_telegram_shaped_token_ever_shows(bot_id: int, secret: str, method: str) -> None:
    token = f"{bot_id}:{secret}"
    request = OutboundRequest("POST", f"https://api.telegram.org/bot{token}/{method}")
    assert secret not in repr(request) and token not in repr(request)
    assert repr(request).endswith(f"/***/{method})")


def test_account_ids_include_alt_ids() -> None:
    account = Account(id="1", tenant="t", settings={"alt_ids": "2, 3 4"})
    assert account.ids() == {"1", "2", "3", "4"}
    assert account.owns(3) and account.owns("1") and not account.owns("5")
    assert not account.owns(None) and Account(id="1", tenant="t").ids() == {"1"}


def test_decode_body_classifies() -> None:
    class View(msgspec.Struct):
        a: int

    assert decode_body(b'{"a":1}', View, 100).a == 1
    with pytest.raises(PayloadTooLarge):
        decode_body(b'{"a":1}', View, 3)
    with pytest.raises(PayloadInvalid, match=r"\$\.a"):
        decode_body(b'{"a":"x"}', View, 100)
    with pytest.raises(PayloadInvalid, match="UTF-8"):
        decode_body(b'{"a":1,"b":"\xff"}', View, 100)


# ------------------------------------------------------------------ generic policy check
TAGGED = Capabilities(
    content={"text": KindSupport(inbound="full", outbound="full"),
             "reaction": KindSupport(inbound="full", outbound="unsupported", degrade_to="text"),
             "typing": KindSupport(outbound="dropped"),
             "interactive": KindSupport(outbound="unsupported", degrade_to="text")},
    text_max_bytes=10,
    replies="unsupported",
    policy=Policy(reply_window=ReplyWindow(hours=24, outside="tag", tag="HUMAN_AGENT",
                                           tag_hours=168)),
)
ACCOUNT = Account(id="page", tenant="t")
H = 3_600_000


def _out(content: E.Content, **kw: Any) -> E.Envelope:
    return make_envelope(ACCOUNT, "messenger", content, conversation="psid", direction="out",
                         **kw)


def test_tag_window() -> None:
    text = _out(E.Text(text="hi"))
    tagged = _out(E.Text(text="hi"), message_tag="HUMAN_AGENT")
    assert check_outbound(TAGGED, text, 100 * H, 80 * H).action == "send"
    with pytest.raises(WindowClosed, match="HUMAN_AGENT"):
        check_outbound(TAGGED, text, 100 * H, 70 * H)
    assert check_outbound(TAGGED, tagged, 100 * H, 0).action == "send"
    with pytest.raises(WindowClosed, match="168"):
        check_outbound(TAGGED, tagged, 200 * H, 0)


def test_degradations_are_recorded_and_drops_are_explicit() -> None:
    reaction = check_outbound(TAGGED, _out(E.Reaction(target="m1", emoji="👍")), H, H).envelope
    assert reaction.content == E.Text(text="👍") and reaction.reply_to is None
    assert reaction.degraded == E.Degradation(original_kind="reaction",
                                              reason="reaction sent as text")
    menu = check_outbound(TAGGED, _out(E.Interactive(style="buttons", body="Q", buttons=[
        E.Button(title="A")])), H, H).envelope
    assert menu.content == E.Text(text="Q\n1. A")
    typing = check_outbound(TAGGED, _out(E.Typing()), H, None)
    assert typing.action == "drop" and typing.envelope.degraded is not None
    with pytest.raises(Refused, match="cannot be sent as text"):
        check_outbound(TAGGED, _out(E.Reaction(target="m", removed=True)), H, H)
    with pytest.raises(Refused, match="UTF-8 bytes"):
        check_outbound(TAGGED, _out(E.Text(text="éééééé")), H, H)
    with pytest.raises(Refused, match="replies"):
        check_outbound(TAGGED, _out(E.Text(text="x"), reply_to="m"), H, H)
    with pytest.raises(Refused, match="outbound"):
        check_outbound(TAGGED, make_envelope(ACCOUNT, "m", E.Text(text="x"), conversation="c"),
                       H, H)
    with pytest.raises(Refused, match="location"):
        check_outbound(TAGGED, _out(E.Location(latitude=1, longitude=2)), H, H)
    assert "window=24h/tag" in capability_summary(TAGGED)


# ------------------------------------------------------------------ registry
class _Config(msgspec.Struct):
    pass


class GoodAdapter:
    name: ClassVar[str] = "good"
    sdk_version: ClassVar[str] = SDK_VERSION
    config_type: ClassVar[type[msgspec.Struct]] = _Config
    capabilities: ClassVar[Capabilities] = TAGGED

    def __init__(self, ctx: AdapterContext) -> None:
        self.ctx = ctx

    def verify(self, req: InboundRequest, account: Account) -> None:
        return None

    def parse(self, req: InboundRequest, account: Account) -> list[E.Envelope]:
        return []

    def build_send(self, envelope: E.Envelope, account: Account) -> OutboundRequest:
        return OutboundRequest("POST", f"{self.ctx.config}/send", {}, {"to": "x"})

    def parse_send_response(self, status: int, headers: Any, body: bytes) -> SendResult:
        if status >= 500:
            raise Retryable("server error")
        return SendResult(platform_message_id=msgspec.json.decode(body)["id"])

    async def poll(self, account: Account, cursor: str | None) -> Any:
        return None


def test_good_adapter_loads_with_detected_capabilities() -> None:
    loaded = registry.register_classes([GoodAdapter])["good"]
    assert loaded.optional == frozenset({"polling"})
    assert loaded.capabilities is TAGGED


def test_account_ids_hook_is_an_optional_capability() -> None:
    def addressed_account_ids(self: Any, req: InboundRequest) -> list[str]:
        return []

    routed = type("Routed", (GoodAdapter,), {"addressed_account_ids": addressed_account_ids})
    assert registry.optional_capabilities(routed) == {"polling", "account_ids"}


@pytest.mark.parametrize(
    ("patch", "problem"),
    [
        ({"sdk_version": "2.0"}, "built for SDK 2.0"),
        ({"sdk_version": "one"}, "malformed sdk_version"),
        ({"name": ""}, "'name'"),
        ({"config_type": dict}, "config_type"),
        ({"capabilities": {"text": "full"}}, "capabilities"),
        ({"parse": None}, "missing method parse()"),
        ({"verify": lambda self: None}, "verify() must accept 2"),
    ],
)
def test_bad_adapters_fail_loudly(patch: dict[str, Any], problem: str) -> None:
    bad = type("BadAdapter", (GoodAdapter,), patch)
    with pytest.raises(AdapterLoadError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        registry.check_adapter_class(bad)


def test_async_parse_is_refused() -> None:
    async def parse(self: Any, req: Any, account: Any) -> list[Any]:
        return []

    with pytest.raises(AdapterLoadError, match="synchronous"):
        registry.check_adapter_class(type("AsyncParse", (GoodAdapter,), {"parse": parse}))


def test_duplicate_names_report_both_distributions() -> None:
    group = registry.ENTRY_POINT_GROUP
    points = [
        metadata.EntryPoint("good", "tests.adapters.test_sdk:GoodAdapter", group),
        metadata.EntryPoint("good", "other_pkg.mod:Adapter", group),
    ]
    with pytest.raises(AdapterLoadError, match=r"claimed twice.*GoodAdapter.*other_pkg"):
        registry.discover(points)
    with pytest.raises(AdapterLoadError, match="given twice"):
        registry.register_classes([GoodAdapter, GoodAdapter])


def test_allowlist_loading() -> None:
    entries = registry.discover([metadata.EntryPoint(
        "good", "tests.adapters.test_sdk:GoodAdapter", registry.ENTRY_POINT_GROUP)])
    assert list(registry.load_adapters([], entries)) == []
    assert registry.load_adapters(["good"], entries)["good"].cls is GoodAdapter
    with pytest.raises(AdapterLoadError, match="not installed"):
        registry.load_adapters(["nope"], entries)
    broken = registry.discover([metadata.EntryPoint(
        "good", "tests.adapters.no_such_module:X", registry.ENTRY_POINT_GROUP)])
    with pytest.raises(AdapterLoadError, match="failed to import"):
        registry.load_adapters(["good"], broken)
    renamed = registry.discover([metadata.EntryPoint(
        "other", "tests.adapters.test_sdk:GoodAdapter", registry.ENTRY_POINT_GROUP)])
    with pytest.raises(AdapterLoadError, match="differs from the entry point"):
        registry.load_adapters(["other"], renamed)


def test_builtin_entry_points_are_declared() -> None:
    names = set(registry.discover())
    assert {"whatsapp", "messenger", "instagram", "x", "telegram"} <= names
    assert registry.load_adapters(["whatsapp"])["whatsapp"].optional >= {"handshake"}


# ------------------------------------------------------------------ send_via over real HTTP
async def test_send_via_maps_http_and_network_failures() -> None:
    async def handler(request: web.Request) -> web.Response:
        if request.path == "/fail/send":
            return web.Response(status=503)
        assert await request.json() == {"to": "x"}
        return web.json_response({"id": "m-1"})

    app = web.Application()
    app.router.add_post("/{p}/send", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    env = _out(E.Text(text="x"))
    try:
        async with aiohttp.ClientSession() as session:
            ok = GoodAdapter(AdapterContext(config=f"http://127.0.0.1:{port}/ok"))
            assert (await send_via(session, ok, env, ACCOUNT)).platform_message_id == "m-1"
            failing = GoodAdapter(AdapterContext(config=f"http://127.0.0.1:{port}/fail"))
            with pytest.raises(Retryable, match="server error"):
                await send_via(session, failing, env, ACCOUNT)
            closed = GoodAdapter(AdapterContext(config="http://127.0.0.1:1/x"))
            with pytest.raises(Retryable, match="connection failed"):
                await send_via(session, closed, env, ACCOUNT)
    finally:
        await runner.cleanup()
