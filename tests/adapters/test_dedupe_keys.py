"""A redelivered webhook deduplicates: parsing the same body twice — later, by a fresh adapter
instance — gives equal dedupe keys for every envelope of every shared fixture of all five
platforms and the example, and distinct items of one delivery never share a key."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from adapters.errors import AdapterError
from adapters.testing.conformance import Profile
from adapters.testing.fixtures import FIXED_RECEIVED_MS, signed_request
from gateway.envelope import Envelope, Status, dedupe_key
from tests.adapters.conformance_profiles import PROFILES

LATER_MS = FIXED_RECEIVED_MS + 3_600_000  # Meta/X/Telegram retry for hours


def _parse(profile: Profile, body: bytes, received_ms: int) -> list[Envelope]:
    assert profile.signer is not None
    request = signed_request(body, profile.account, profile.signer, received_ms=received_ms)
    return profile.adapter().parse(request, profile.account)  # type: ignore[no-any-return]


@pytest.fixture(scope="module", params=sorted(PROFILES))
def profile(request: pytest.FixtureRequest, platform_fixtures_root: Path) -> Profile:
    return PROFILES[request.param](platform_fixtures_root)


def test_parsing_the_same_webhook_twice_gives_equal_dedupe_keys(profile: Profile) -> None:
    parsed = 0
    for case in profile.cases:
        try:
            first = _parse(profile, case.body, FIXED_RECEIVED_MS)
        except AdapterError:
            continue
        again = _parse(profile, case.body, LATER_MS)
        assert [e.received_ts for e in again] == [LATER_MS] * len(again)
        assert [dedupe_key(e) for e in first] == [dedupe_key(e) for e in again], case.name
        assert not any(dedupe_key(e).endswith(e.id) for e in first), case.name
        parsed += len(first)
    assert parsed >= 4, "too few envelopes to mean anything"


def _comparable(envelope: Envelope) -> Envelope:
    return msgspec.structs.replace(envelope, id="")


def test_distinct_items_of_one_delivery_never_share_a_key(profile: Profile) -> None:
    for case in profile.cases:
        try:
            envelopes = _parse(profile, case.body, FIXED_RECEIVED_MS)
        except AdapterError:
            continue
        first: dict[str, Envelope] = {}
        for envelope in envelopes:
            seen = first.setdefault(dedupe_key(envelope), envelope)
            if seen is envelope or isinstance(envelope.content, Status):
                continue  # statuses dedupe by (target, status) by design
            assert _comparable(seen) == _comparable(envelope), (case.name, dedupe_key(seen))
