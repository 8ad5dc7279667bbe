"""`unigate demo`: every step runs, says what happened, and never prints key material."""

from __future__ import annotations

import re

import pytest

from gateway import cli, demo


def run_demo(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(["demo"])
    return code, capsys.readouterr().out


def test_demo_walks_through_every_step(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_demo(capsys)
    assert code == 0, out
    assert "unigate crypto demo" in out
    for heading in ("[1] Two devices", "[2] X3DH", "[3] Double Ratchet", "[4] One envelope sealed",
                    "[5] Group session", "[6] Tampered"):
        assert heading in out
    assert "agent opened the session and read:" in out
    assert out.count("opened: ") == 4  # four ratchet turns, both directions
    for device in ("agent-laptop", "agent-phone", "support-bot"):
        assert re.search(rf"{device}\s+opened it", out)
        assert re.search(rf"{device}\s+verified the signature and read message #0", out)
    assert re.search(r"bit flipped in a ratchet message\s+-> refused \(AuthenticationError\); "
                     r"state unchanged", out)
    assert re.search(r"delivered twice\s+-> refused \(DuplicateMessageError\)", out)
    assert re.search(r"another chat\s+-> refused \(AuthenticationError\)", out)
    assert re.search(r"bit flipped in a group message\s+-> refused \(SignatureError\)", out)
    assert "All steps checked out" in out


def test_demo_prints_no_key_material(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_demo(capsys)
    assert code == 0
    assert not re.search(r"[0-9a-fA-F]{16,}", out)  # no hex dumps of keys or ciphertexts
    assert not re.search(r"[A-Za-z0-9+/]{40,}={0,2}", out)  # no base64 blobs
    assert "b'" not in out and 'b"' not in out  # no raw bytes reprs


def test_demo_fails_loudly_when_a_step_breaks(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def wrong_open(*args: object, **kwargs: object) -> bytes:
        return b"not the envelope"

    monkeypatch.setattr(demo, "open_sealed", wrong_open)
    code, out = run_demo(capsys)
    assert code == 1
    assert "DEMO FAILED" in out
    assert "All steps checked out" not in out
