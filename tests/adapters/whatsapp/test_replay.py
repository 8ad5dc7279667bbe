"""Our own realistic WhatsApp payloads (data/*.json) against reviewed expected envelopes
(data/*.expected.jsonl, one envelope per line without the per-run ``id`` / ``received_ts``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.envelope import decode_json, encode_json, new_envelope_id, to_builtins
from tests.adapters.whatsapp.support import parse

DATA = Path(__file__).parent / "data"
CASES = sorted(p.stem for p in DATA.glob("*.json"))


def test_cases_exist() -> None:
    assert CASES == ["lifecycle", "mixed_batch"]


@pytest.mark.parametrize("case", CASES)
def test_replay_matches_expected_envelopes(case: str) -> None:
    envelopes = parse((DATA / f"{case}.json").read_bytes())
    expected = [json.loads(line) for line in
                (DATA / f"{case}.expected.jsonl").read_text(encoding="utf-8").splitlines()]
    got = []
    for env in envelopes:
        plain = to_builtins(env)
        assert plain.pop("received_ts") == 1_750_000_000_000
        plain.pop("id")
        got.append(plain)
    assert got == expected


@pytest.mark.parametrize("case", CASES)
def test_expected_envelopes_are_valid_wire_envelopes(case: str) -> None:
    for line in (DATA / f"{case}.expected.jsonl").read_text(encoding="utf-8").splitlines():
        wire = json.loads(line) | {"id": new_envelope_id(), "received_ts": 1}
        env = decode_json(json.dumps(wire))
        assert json.loads(encode_json(env)) == wire
