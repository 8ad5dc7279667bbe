"""The conformance suite every adapter must pass, built-in or third-party.

Describe your adapter once as a :class:`Profile` (class, a test account, how the platform
signs, recorded fixtures, a few send answers) and call :func:`run_suite`; or subclass
:class:`adapters.testing.plugin.AdapterConformance` in pytest; or run
``unigate adapter-check package.module:Adapter --fixtures DIR``. Each check returns
:class:`CheckResult` values; a failed check names the fixture or sample and what went wrong.

Inbound checks live here, outbound ones in :mod:`adapters.testing.conformance_send`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from adapters.errors import AdapterError, PayloadInvalid, PayloadTooLarge, SignatureInvalid
from adapters.registry import conformance_problems
from adapters.sdk import Account, AdapterContext, Capabilities, Secret
from adapters.testing import fuzz
from adapters.testing.fixtures import (
    FIXED_RECEIVED_MS,
    FixtureCase,
    Signer,
    envelope_mismatches,
    inbound_request,
    signed_request,
)
from gateway.envelope import (
    Envelope,
    Status,
    decode_json,
    decode_msgpack,
    dedupe_key,
    encode_json,
    encode_msgpack,
)

Merge = Callable[[Sequence[Any]], Any]
MALFORMED_BODIES = (b"", b"not json", b"[]", b"null", b"42", b'"text"', b'{"a":', b"\xff\xfe{}")
PLAUSIBLE_MS = (946_684_800_000, 4_102_444_800_000)  # 2000-01-01 .. 2100-01-01


@dataclass(frozen=True)
class SendSample:
    """A platform answer to a send, and what ``parse_send_response`` must make of it."""

    status: int
    body: bytes
    expect: type[Exception] | None = None  # None: a SendResult
    headers: dict[str, str] = field(default_factory=dict)
    platform_message_id: str | None = None  # checked when expect is None and this is set


@dataclass
class Profile:
    """Everything the suite needs to know about one adapter."""

    adapter_cls: type
    account: Account
    signer: Signer | None = None
    body_signed: bool = True  # False for header-token schemes (Telegram): the body is not covered
    cases: list[FixtureCase] = field(default_factory=list)
    config: Any = None
    merge: Merge | None = None  # how the platform batches several payloads into one POST
    batchable: Callable[[FixtureCase], bool] = lambda case: True
    unknown_kind_bodies: list[bytes] = field(default_factory=list)
    recipient: str = "1234567890"
    recipient_type: str = "direct"
    message_ref: str = "conformance-message-id"
    send_samples: dict[str, list[Any]] = field(default_factory=dict)  # kind -> Content values
    send_answers: list[SendSample] = field(default_factory=list)
    fuzz_rounds: int = 60
    seed: int = 0

    @property
    def capabilities(self) -> Capabilities:
        caps = getattr(self.adapter_cls, "capabilities", None)
        if not isinstance(caps, Capabilities):
            raise TypeError(f"{self.name}.capabilities is not an adapters.sdk.Capabilities")
        return caps

    def adapter(self) -> Any:
        config = self.config if self.config is not None else self.adapter_cls.config_type()  # type: ignore[attr-defined]
        return self.adapter_cls(AdapterContext(config=config, clock=lambda: FIXED_RECEIVED_MS))

    @property
    def name(self) -> str:
        return str(getattr(self.adapter_cls, "name", self.adapter_cls.__name__))


@dataclass(frozen=True)
class CheckResult:
    check: str
    ok: bool
    detail: str = ""
    skipped: bool = False


@dataclass
class Report:
    adapter: str
    results: list[CheckResult]

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.ok]

    @property
    def ok(self) -> bool:
        return not self.failures

    def render(self) -> str:
        lines = [f"conformance: {self.adapter}"]
        for r in self.results:
            mark = "SKIP" if r.skipped else ("ok  " if r.ok else "FAIL")
            lines.append(f"  {mark} {r.check}" + (f": {r.detail}" if r.detail else ""))
        passed = sum(r.ok and not r.skipped for r in self.results)
        lines.append(f"  {passed} passed, {len(self.failures)} failed")
        return "\n".join(lines)


def default_account(account_id: str = "1234567890") -> Account:
    """An account with every well-known secret set, for adapters run without a manifest."""
    secret = Secret("conformance-secret")
    return Account(
        id=account_id,
        tenant="conformance",
        app_secret=secret,
        verify_token=secret,
        access_token=secret,
        webhook_secret=secret,
        consumer_secret=secret,
    )


def receive(adapter: Any, account: Account, request: Any) -> list[Envelope]:
    """What the gateway's webhook endpoint does: verify, and parse only if that passed."""
    adapter.verify(request, account)
    result: list[Envelope] = adapter.parse(request, account)
    return result


# --------------------------------------------------------------------------- checks
def check_contract(profile: Profile) -> list[CheckResult]:
    problems = conformance_problems(profile.adapter_cls)
    return [CheckResult("contract", not problems, "; ".join(problems))]


def check_signatures(profile: Profile) -> list[CheckResult]:
    if profile.signer is None or not profile.cases:
        return [CheckResult("signature", True, "no signer or fixtures given", skipped=True)]
    adapter, account, signer = profile.adapter(), profile.account, profile.signer
    problems = []
    for case in profile.cases:
        good = signer(account, case.body)
        attempts = {
            "missing headers": inbound_request(case.body, {"Content-Type": "application/json"}),
            "wrong secret": inbound_request(case.body, signer(_rekeyed(account), case.body)),
        }
        if profile.body_signed:
            attempts["body changed"] = inbound_request(case.body + b" ", good)
        for label, request in attempts.items():
            try:
                envelopes = receive(adapter, account, request)
            except SignatureInvalid:
                continue
            except Exception as exc:
                problems.append(f"{case.name}: {label}: raised {type(exc).__name__}")
                continue
            problems.append(f"{case.name}: {label}: accepted ({len(envelopes)} envelopes)")
        try:
            adapter.verify(signed_request(case.body, account, signer), account)
        except Exception as exc:
            problems.append(f"{case.name}: a correct signature was refused ({type(exc).__name__})")
    return [CheckResult("signature", not problems, "; ".join(problems[:5]))]


def _rekeyed(account: Account) -> Account:
    wrong = Secret("not-the-right-secret")
    return Account(
        id=account.id,
        tenant=account.tenant,
        app_secret=wrong,
        verify_token=wrong,
        access_token=wrong,
        webhook_secret=wrong,
        consumer_secret=wrong,
        secrets={k: wrong for k in account.secrets},
        settings=account.settings,
    )


def _parse(profile: Profile, adapter: Any, body: bytes) -> list[Envelope]:
    request = inbound_request(body)
    if profile.signer is not None:
        request = signed_request(body, profile.account, profile.signer)
    result: list[Envelope] = adapter.parse(request, profile.account)
    return result


def envelope_problems(profile: Profile, envelope: Envelope) -> list[str]:
    """Invariants every parsed envelope must meet, whatever the platform."""
    caps = profile.capabilities
    problems = []
    if envelope.channel.platform != profile.name:
        problems.append(f"channel.platform {envelope.channel.platform!r} != {profile.name!r}")
    if envelope.tenant != profile.account.tenant:
        problems.append("tenant is not the account's")
    if envelope.channel.account_id not in profile.account.ids():
        problems.append("channel.account_id is not one of the account's ids")
    if not envelope.conversation.id:
        problems.append("empty conversation id")
    ts = envelope.platform_ts
    if ts is not None and not PLAUSIBLE_MS[0] <= ts <= PLAUSIBLE_MS[1]:
        problems.append(f"platform_ts {ts} is not milliseconds in 2000..2100")
    if envelope.received_ts != FIXED_RECEIVED_MS:
        problems.append("received_ts is not the request's received_ms")
    if caps.inbound(envelope.kind) not in ("full", "partial"):
        problems.append(f"produced {envelope.kind!r} but capabilities say inbound is not supported")
    if decode_json(encode_json(envelope)) != envelope:
        problems.append("JSON round trip changes the envelope")
    if decode_msgpack(encode_msgpack(envelope)) != envelope:
        problems.append("MessagePack round trip changes the envelope")
    return problems


def dedupe_problems(envelopes: list[Envelope], again: list[Envelope]) -> list[str]:
    """A redelivery must dedupe (``again`` is a second parse of the same body), and two
    different items of one delivery must not share a key (the gateway would drop one)."""
    keys = [dedupe_key(e) for e in envelopes]
    problems = []
    if keys != [dedupe_key(e) for e in again]:
        problems.append("dedupe keys differ between two parses of the same body")
    first: dict[str, Envelope] = {}
    for envelope, key in zip(envelopes, keys, strict=True):
        seen = first.setdefault(key, envelope)
        if seen is not envelope and not isinstance(envelope.content, Status) and _stable(
            seen
        ) != _stable(envelope):
            problems.append(f"different items share the dedupe key {key!r}")
    return problems


def _stable(envelope: Envelope) -> Envelope:
    return msgspec.structs.replace(envelope, id="", received_ts=0)


def check_fixtures(profile: Profile) -> list[CheckResult]:
    if not profile.cases:
        return [CheckResult("fixtures", True, "no fixtures given", skipped=True)]
    adapter = profile.adapter()
    results = []
    for case in profile.cases:
        try:
            envelopes = _parse(profile, adapter, case.body)
        except AdapterError as exc:
            ok = case.raises is not None and type(exc).__name__ == case.raises
            detail = "" if ok else f"raised {type(exc).__name__}: {exc.reason}"
            results.append(CheckResult(f"fixture {case.name}", ok, detail))
            continue
        except Exception as exc:
            results.append(CheckResult(f"fixture {case.name}", False, f"crashed: {exc!r}"))
            continue
        problems = [] if case.raises is None else [f"expected {case.raises}, parsed instead"]
        for envelope in envelopes:
            problems += envelope_problems(profile, envelope)
        problems += dedupe_problems(envelopes, _parse(profile, adapter, case.body))
        if case.expected is not None:
            problems += envelope_mismatches(envelopes, case.expected)
        results.append(CheckResult(f"fixture {case.name}", not problems, "; ".join(problems[:4])))
    return results


def check_batching(profile: Profile, copies: int = 3) -> list[CheckResult]:
    if profile.merge is None:
        return [CheckResult("batching", True, "the platform does not batch", skipped=True)]
    adapter, problems, tried = profile.adapter(), [], 0
    for case in profile.cases:
        if case.raises is not None or not profile.batchable(case):
            continue
        try:
            single = len(_parse(profile, adapter, case.body))
        except AdapterError:
            continue
        if not single:
            continue
        tried += 1
        batch = json.dumps(profile.merge([case.payload()] * copies)).encode()
        got = len(_parse(profile, adapter, batch))
        if got != single * copies:
            problems.append(
                f"{case.name}: {got} envelopes from {copies} batched copies of {single}"
            )
    if not tried:
        return [CheckResult("batching", True, "no batchable fixtures", skipped=True)]
    return [CheckResult("batching", not problems, "; ".join(problems[:4]))]


def check_malformed(profile: Profile) -> list[CheckResult]:
    adapter, problems = profile.adapter(), []
    for body in MALFORMED_BODIES:
        try:
            envelopes = adapter.parse(inbound_request(body), profile.account)
        except PayloadInvalid:
            continue
        except Exception as exc:
            problems.append(f"{body[:12]!r}: raised {type(exc).__name__}, not PayloadInvalid")
            continue
        problems.append(f"{body[:12]!r}: parsed into {len(envelopes)} envelopes")
    limit = profile.capabilities.policy.webhook_max_bytes
    huge = b'{"pad":"' + b"a" * limit + b'"}'
    try:
        adapter.parse(inbound_request(huge), profile.account)
        problems.append(f"a body over webhook_max_bytes ({limit}) was parsed")
    except PayloadTooLarge:
        pass
    except Exception as exc:
        problems.append(f"oversize body raised {type(exc).__name__}, not PayloadTooLarge")
    return [CheckResult("malformed bodies", not problems, "; ".join(problems[:4]))]


def check_unknown_kinds(profile: Profile) -> list[CheckResult]:
    if not profile.unknown_kind_bodies:
        return [CheckResult("unknown kinds", True, "no unknown-kind samples", skipped=True)]
    adapter, problems = profile.adapter(), []
    for index, body in enumerate(profile.unknown_kind_bodies):
        try:
            envelopes = _parse(profile, adapter, body)
        except Exception as exc:
            problems.append(f"sample {index}: raised {type(exc).__name__}")
            continue
        if not any(e.kind == "unsupported" for e in envelopes):
            problems.append(f"sample {index}: no unsupported envelope ({len(envelopes)} others)")
    return [CheckResult("unknown kinds", not problems, "; ".join(problems))]


def check_fuzz(profile: Profile) -> list[CheckResult]:
    """Mutants of every fixture: ``parse`` may raise only :class:`AdapterError`."""
    adapter, crashes, runs = profile.adapter(), [], 0
    seeds = [c.body for c in profile.cases] + list(profile.unknown_kind_bodies) or [b"{}"]
    for index, body in enumerate(seeds):
        for mutant in fuzz.mutants(body, profile.seed + index, profile.fuzz_rounds):
            runs += 1
            try:
                envelopes = adapter.parse(inbound_request(mutant), profile.account)
                for envelope in envelopes:
                    encode_msgpack(envelope)
                    if not envelope.conversation.id:
                        crashes.append(f"empty conversation id from a mutant of seed {index}")
                    if envelope.channel.account_id not in profile.account.ids():
                        crashes.append(f"foreign channel.account_id from a mutant of seed {index}")
            except AdapterError:
                continue
            except Exception as exc:
                crashes.append(f"{type(exc).__name__} on a mutant of seed {index}: {mutant[:60]!r}")
    detail = f"{runs} mutants" + (f"; {crashes[0]}" if crashes else "")
    return [CheckResult("fuzz parse", not crashes, detail)]


def run_suite(profile: Profile) -> Report:
    from adapters.testing import conformance_send

    checks = [
        check_contract,
        conformance_send.check_capabilities,
        check_signatures,
        check_fixtures,
        check_batching,
        check_malformed,
        check_unknown_kinds,
        check_fuzz,
        conformance_send.check_send_builds,
        conformance_send.check_send_answers,
    ]
    if check_contract(profile)[0].ok is False:
        return Report(profile.name, check_contract(profile))
    results: list[CheckResult] = []
    for check in checks:
        try:
            results.extend(check(profile))
        except Exception as exc:
            results.append(CheckResult(check.__name__, False, f"check crashed: {exc!r}"))
    return Report(profile.name, results)
