"""Outbound and capability checks of the conformance suite.

- capabilities: the declared data is consistent (kinds exist, degradations lead somewhere,
  limits are positive, handshake/polling flags match the optional Protocols implemented);
- send builds: every outbound kind declared ``full``/``partial`` yields a well-formed request
  for at least one sample; kinds declared ``unsupported`` are degraded or refused by the SDK's
  policy check, and a degraded envelope builds;
- send answers: ``parse_send_response`` classifies sample answers (5xx is always retryable)
  and never raises anything but an adapter error.
"""

from __future__ import annotations

import random
from typing import Any

import msgspec

from adapters.errors import AdapterError, Retryable, SendError
from adapters.sdk import (
    OPTIONAL_PROTOCOLS,
    Capabilities,
    OutboundRequest,
    SendResult,
    check_outbound,
    make_envelope,
)
from adapters.testing import fuzz
from adapters.testing.conformance import CheckResult, Profile, SendSample
from adapters.testing.fixtures import FIXED_RECEIVED_MS
from gateway.envelope import (
    CONTENT_KINDS,
    MEDIA_KINDS,
    Button,
    ContactCard,
    ContactPhone,
    Contacts,
    Delete,
    Edit,
    Interactive,
    ListRow,
    ListSection,
    Location,
    Media,
    Reaction,
    ReadMarker,
    Template,
    Text,
    Typing,
)

LEVELS = frozenset({"full", "partial", "unsupported", "dropped", "rejected"})
SENDABLE = ("full", "partial")
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
GENERIC_ANSWERS = ((500, b""), (502, b"<html>Bad Gateway</html>"), (503, b'{"error":"down"}'))


def default_samples(target: str) -> dict[str, list[Any]]:
    """Content values to try per outbound kind (a profile may replace any of them)."""
    url = "https://example.invalid/conformance"
    return {
        "text": [Text(text="conformance text")],
        "media": [
            Media(media_kind="image", media_ref="conformance-media-id", caption="caption"),
            Media(media_kind="image", url=f"{url}.jpg", mime="image/jpeg"),
            Media(
                media_kind="document", url=f"{url}.pdf", mime="application/pdf", filename="c.pdf"
            ),
        ],
        "location": [Location(latitude=52.52, longitude=13.405, name="Berlin", address="Mitte")],
        "contacts": [
            Contacts(contacts=[ContactCard(name="Ada", phones=[ContactPhone(number="+15550100")])])
        ],
        "reaction": [Reaction(target=target, emoji="👍"), Reaction(target=target, removed=True)],
        "edit": [Edit(target=target, new_content=Text(text="edited"))],
        "delete": [Delete(target=target)],
        "interactive": [
            Interactive(
                style="buttons",
                body="Pick one",
                buttons=[Button(title="Yes", id="yes"), Button(title="No", id="no")],
            ),
            Interactive(
                style="list",
                body="Pick a row",
                list_label="Options",
                sections=[ListSection(title="All", rows=[ListRow(id="r1", title="Row one")])],
            ),
        ],
        "template": [Template(name="hello_world", language="en_US")],
        "typing": [Typing(on=True, target=target)],
        "read": [ReadMarker(target=target)],
    }


# --------------------------------------------------------------------------- capabilities
def capability_problems(cls: type) -> list[str]:
    caps = getattr(cls, "capabilities", None)
    if not isinstance(caps, Capabilities):
        return ["capabilities is not an adapters.sdk.Capabilities"]
    problems = []
    for kind, support in caps.content.items():
        if kind not in CONTENT_KINDS:
            problems.append(f"unknown content kind {kind!r}")
        if support.degrade_to is not None:
            if support.outbound not in ("unsupported", "rejected"):
                problems.append(f"{kind}: degrade_to set but outbound is {support.outbound}")
            if caps.outbound(support.degrade_to) not in SENDABLE:
                problems.append(
                    f"{kind}: degrades to {support.degrade_to!r}, which is not sendable"
                )
    for media in caps.media:
        if media.kind not in MEDIA_KINDS:
            problems.append(f"unknown media kind {media.kind!r}")
        if media.max_bytes < 0:  # 0: no size applies (e.g. a platform sticker by name)
            problems.append(f"media {media.kind}: max_bytes must not be negative")
    media_out = any(m.outbound in SENDABLE for m in caps.media)
    if (caps.outbound("media") in SENDABLE) != media_out:
        problems.append("content['media'] outbound and the media kinds' outbound disagree")
    if caps.outbound("text") in SENDABLE and not (caps.text_max_chars or caps.text_max_bytes):
        problems.append("text is sendable but no text limit is declared")
    for name in ("text_max_chars", "text_max_bytes"):
        value = getattr(caps, name)
        if value is not None and value <= 0:
            problems.append(f"{name} must be positive")
    if caps.caption_max_chars is not None and caps.caption_max_chars < 0:
        problems.append("caption_max_chars must not be negative (0: no captions)")
    has = {key for key, proto in OPTIONAL_PROTOCOLS.items() if _implements(cls, proto)}
    if (caps.handshake != "none") != ("handshake" in has):
        problems.append(
            f"handshake={caps.handshake!r} but handshake() implemented: {'handshake' in has}"
        )
    if caps.polling != ("polling" in has):
        problems.append(f"polling={caps.polling} but poll() implemented: {'polling' in has}")
    problems += _policy_problems(caps)
    try:
        if msgspec.json.decode(msgspec.json.encode(caps), type=Capabilities) != caps:
            problems.append("capabilities do not survive a JSON round trip")
    except msgspec.MsgspecError as exc:
        problems.append(f"capabilities are not JSON-encodable: {exc}")
    return problems


def _implements(cls: type, proto: type) -> bool:
    methods = [n for n, v in vars(proto).items() if callable(v) and not n.startswith("_")]
    return all(callable(getattr(cls, m, None)) for m in methods)


def _policy_problems(caps: Capabilities) -> list[str]:
    problems = []
    window = caps.policy.reply_window
    if window is not None:
        if window.hours <= 0:
            problems.append("reply window hours must be positive")
        if window.outside == "tag" and not window.tag:
            problems.append("reply window outside='tag' needs a tag")
        if window.outside == "template" and caps.outbound("template") not in SENDABLE:
            problems.append("outside the window only templates go, but templates are not sendable")
    for limit in caps.policy.rate_limits:
        if limit.limit <= 0 or limit.per_s <= 0:
            problems.append(f"rate limit {limit.note or limit.scope} must be positive")
    if caps.policy.webhook_max_bytes <= 0 or caps.policy.dedupe_horizon_s <= 0:
        problems.append("webhook_max_bytes and dedupe_horizon_s must be positive")
    return problems


def check_capabilities(profile: Profile) -> list[CheckResult]:
    problems = capability_problems(profile.adapter_cls)
    return [CheckResult("capabilities", not problems, "; ".join(problems))]


# --------------------------------------------------------------------------- sends
def request_problems(request: object, secrets: list[str]) -> list[str]:
    if not isinstance(request, OutboundRequest):
        return [f"build_send returned {type(request).__name__}, not OutboundRequest"]
    problems = []
    if request.method not in METHODS:
        problems.append(f"method {request.method!r}")
    if not request.url.startswith(("https://", "http://")):
        problems.append("url is not absolute http(s)")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in request.headers.items()):
        problems.append("headers must be str -> str")
    try:
        request.body()
    except (TypeError, msgspec.EncodeError) as exc:
        problems.append(f"body is not JSON-encodable: {exc}")
    shown = repr(request)
    if any(secret and secret in shown for secret in secrets):
        problems.append("repr(request) shows a secret")
    return problems


def _secrets(profile: Profile) -> list[str]:
    account = profile.account
    named = [
        account.app_secret,
        account.access_token,
        account.webhook_secret,
        account.consumer_secret,
    ]
    values = [s.reveal() for s in named if s is not None]
    return values + [s.reveal() for s in account.secrets.values()]


def check_send_builds(profile: Profile) -> list[CheckResult]:
    caps = profile.capabilities
    adapter, secrets = profile.adapter(), _secrets(profile)
    samples = {**default_samples(profile.message_ref), **profile.send_samples}
    results = []
    for kind, support in sorted(caps.content.items()):
        if support.outbound == "dropped" or kind not in samples:
            continue
        built, refusals, defects = 0, [], []
        for content in samples[kind]:
            envelope = make_envelope(
                profile.account,
                profile.name,
                content,
                conversation=profile.recipient,
                conversation_type=profile.recipient_type,
                direction="out",
                received_ts=FIXED_RECEIVED_MS,
            )
            try:
                decision = check_outbound(caps, envelope, FIXED_RECEIVED_MS, FIXED_RECEIVED_MS)
                if decision.action == "drop":
                    continue
                request = adapter.build_send(decision.envelope, profile.account)
            except SendError as exc:
                refusals.append(f"refused: {exc.reason}")
                continue
            except Exception as exc:
                defects.append(f"crashed: {exc!r}")
                continue
            found = request_problems(request, secrets)
            defects += found
            built += not found
        sendable = support.outbound in SENDABLE or support.degrade_to is not None
        ok = not defects and (built > 0 or not sendable)
        first = (defects or (refusals if sendable and not built else []))[:1]
        detail = f"{built}/{len(samples[kind])} samples built" + "".join(f"; {p}" for p in first)
        results.append(CheckResult(f"send {kind} ({support.outbound})", ok, detail))
    return results


def check_send_answers(profile: Profile) -> list[CheckResult]:
    adapter, problems = profile.adapter(), []
    answers = list(profile.send_answers)
    answers += [_generic(status, body) for status, body in GENERIC_ANSWERS]
    for sample in answers:
        label = f"HTTP {sample.status}"
        try:
            result = adapter.parse_send_response(sample.status, sample.headers, sample.body)
        except Exception as exc:
            if sample.expect is None or not isinstance(exc, sample.expect):
                problems.append(
                    f"{label}: raised {type(exc).__name__}, expected {_name(sample.expect)}"
                )
            continue
        if sample.expect is not None:
            problems.append(f"{label}: returned a result, expected {sample.expect.__name__}")
        elif not isinstance(result, SendResult):
            problems.append(f"{label}: returned {type(result).__name__}, not SendResult")
        elif (
            sample.platform_message_id and result.platform_message_id != sample.platform_message_id
        ):
            problems.append(f"{label}: platform_message_id {result.platform_message_id!r}")
    rng = random.Random(profile.seed)
    seeds = [s.body for s in answers] or [b"{}"]
    for index, body in enumerate(seeds):
        for mutant in fuzz.mutants(body, profile.seed + index, 20):
            status = rng.choice((200, 201, 400, 401, 403, 404, 429, 500, 503))
            try:
                adapter.parse_send_response(status, {}, mutant)
            except AdapterError:
                continue
            except Exception as exc:
                problems.append(f"fuzzed answer (HTTP {status}) raised {type(exc).__name__}")
                break
    return [CheckResult("send answers", not problems, "; ".join(problems[:4]))]


def _generic(status: int, body: bytes) -> SendSample:
    return SendSample(status=status, body=body, expect=Retryable)


def _name(kind: type[Exception] | None) -> str:
    return kind.__name__ if kind else "a SendResult"
