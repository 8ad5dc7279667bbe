"""`unigate bench crypto` end to end in --quick mode: shape of the output, never timings."""

from __future__ import annotations

import json
import math
import sys

import pytest

from gateway import cli
from gateway.bench import harness, peers, report

SCENARIOS = ["burst", "pingpong", "group_encrypt", "group_decrypt", "fanout10"]


def run_json(capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, object]:
    assert cli.main(["bench", "crypto", "--quick", "--json", *extra]) == 0
    out, err = capsys.readouterr()
    assert "round 1/" in err  # progress goes to stderr, never into the JSON
    return json.loads(out)  # exactly one JSON object on stdout, nothing else


def test_json_shape_and_unigate_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys)
    assert {"scenarios", "ratios", "targets", "machine", "skipped", "implementations"} <= set(data)
    assert "unigate" in data["implementations"]
    scenarios = data["scenarios"]
    assert isinstance(scenarios, dict)
    assert list(scenarios) == SCENARIOS
    for name, row in scenarios.items():
        value = row["unigate"]
        assert isinstance(value, float), name
        assert math.isfinite(value), name
        assert value > 0, name
        assert set(row) <= set(harness.IMPLEMENTATIONS)
        assert all(isinstance(v, float) and v > 0 for v in row.values())
    # doubleratchet has no group sessions: it never appears outside burst/pingpong
    for name in ("group_encrypt", "group_decrypt", "fanout10"):
        assert "doubleratchet" not in scenarios[name]
    targets = data["targets"]
    assert isinstance(targets, dict)
    assert set(targets) == {t.name for t in report.TARGETS}
    machine = data["machine"]
    assert isinstance(machine, dict)
    assert machine["cores"] >= 1
    assert isinstance(machine["cpu"], str) and machine["cpu"]
    assert isinstance(machine["python"], str) and machine["python"]


def test_ratios_follow_the_medians(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "--only", "burst")
    scenarios, ratios = data["scenarios"], data["ratios"]
    assert list(scenarios) == ["burst"]
    assert set(ratios) == {"burst_vs_vodozemac", "burst_doubleratchet_speedup"}
    row = scenarios["burst"]
    if "vodozemac" in row:
        assert ratios["burst_vs_vodozemac"] == pytest.approx(
            row["unigate"] / row["vodozemac"], rel=1e-2
        )
        passed = data["targets"]["burst_vs_vodozemac"]["pass"]
        assert passed is (ratios["burst_vs_vodozemac"] <= 0.7)


def test_missing_peer_is_skipped_not_fatal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "vodozemac", None)  # `import vodozemac` now fails
    data = run_json(capsys, "--only", "burst", "--only", "fanout10")
    assert "vodozemac" in data["skipped"]
    assert "not installed" in data["skipped"]["vodozemac"]
    for row in data["scenarios"].values():
        assert "vodozemac" not in row
        assert row["unigate"] > 0
    assert data["ratios"]["burst_vs_vodozemac"] is None
    assert data["targets"]["burst_vs_vodozemac"]["pass"] is None


def test_table_names_the_skipped_peer_and_the_verdicts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "olm", None)
    assert cli.main(["bench", "crypto", "--quick", "--only", "group_encrypt"]) == 0
    out = capsys.readouterr().out
    assert "skipped libolm: python-olm not installed" in out
    assert "group_encrypt" in out
    assert any(word in out for word in ("PASS", "MISS"))


def test_a_wrong_plaintext_is_refused() -> None:
    def send(plaintext: bytes) -> bytes:
        return plaintext

    def broken(message: bytes) -> bytes:
        return message[:-1] + b"?"

    for measure in (
        harness.burst(send, broken, b"x" * 10),
        harness.pingpong(send, broken, send, broken, b"x" * 10),
        harness.group_encrypt(send, broken, b"x" * 10),
        harness.group_decrypt(send, broken, b"x" * 10),
        harness.pairwise_fanout([(send, broken)], b"x" * 10),
    ):
        with pytest.raises(harness.BenchmarkError):
            measure(4)


def test_peer_loader_names_the_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "doubleratchet", None)
    with pytest.raises(harness.PeerUnavailable, match="DoubleRatchet not installed"):
        peers.doubleratchet()
