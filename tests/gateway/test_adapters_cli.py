"""`unigate adapters list | parse` through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.signing import meta_signature
from gateway.cli import main
from gateway.envelope import decode_json

BATCH = json.dumps({
    "object": "whatsapp_business_account",
    "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "metadata": {"phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "Zoë"}, "wa_id": "4915"}],
        "messages": [
            {"from": "4915", "id": "wamid.1", "timestamp": "1700000000", "type": "text",
             "text": {"body": "hallo"}},
            {"from": "4915", "id": "wamid.2", "timestamp": "1700000001", "type": "reaction",
             "reaction": {"message_id": "wamid.0", "emoji": "👍"}},
        ],
        "statuses": [{"id": "wamid.0", "status": "read", "timestamp": "1700000002",
                      "recipient_id": "4915"}],
    }}]}],
}).encode()


@pytest.fixture()
def body_file(tmp_path: Path) -> Path:
    path = tmp_path / "wa.json"
    path.write_bytes(BATCH)
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_parse_prints_one_json_line_per_envelope(
    body_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signature = meta_signature("app-secret", BATCH)
    code, out, err = _run(["adapters", "parse", "whatsapp", str(body_file), "--header",
                           f"X-Hub-Signature-256: {signature}", "--secret", "app-secret"],
                          capsys)
    assert code == 0
    assert err == ("unigate adapters: no --account-id: parsing as account '106540352242922', "
                   "the first the payload names\n")
    envelopes = [decode_json(line) for line in out.splitlines()]
    assert [e.kind for e in envelopes] == ["text", "reaction", "status"]
    assert [e.platform_message_id for e in envelopes] == ["wamid.1", "wamid.2", None]
    assert all(e.channel.account_id == "106540352242922" and e.tenant == "cli"
               for e in envelopes)
    assert envelopes[0].sender is not None and envelopes[0].sender.name == "Zoë"


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (["--secret", "app-secret"], "verification failed: missing X-Hub-Signature-256"),
        (["--secret", "other", "--header", "X-Hub-Signature-256: sha256=" + "0" * 64],
         "verification failed: X-Hub-Signature-256 does not match"),
        (["--secret", "s", "--header", "no-colon"], "is not 'Name: value'"),
    ],
)
def test_parse_verification_failures_exit_1_with_one_line(
    body_file: Path, capsys: pytest.CaptureFixture[str], extra: list[str], reason: str
) -> None:
    code, out, err = _run(["adapters", "parse", "whatsapp", str(body_file), *extra], capsys)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and reason in err
    assert "other" not in err and "app-secret" not in err


def test_parse_failures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"object": "page", "entry": []}')
    code, _, err = _run(["adapters", "parse", "whatsapp", str(bad), "--no-verify"], capsys)
    assert code == 1 and "parsing failed: not a WhatsApp Business Account webhook" in err
    code, _, err = _run(["adapters", "parse", "nosuch", str(bad), "--no-verify"], capsys)
    assert code == 1 and "no adapter named 'nosuch'" in err and "whatsapp" in err
    code, _, err = _run(["adapters", "parse", "whatsapp", str(tmp_path / "missing"),
                         "--no-verify"], capsys)
    assert code == 1 and "cannot read" in err


def test_parse_requires_secret_or_no_verify(
    body_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["adapters", "parse", "whatsapp", str(body_file)])
    assert info.value.code == 2
    capsys.readouterr()


def test_parse_shared_fixture_no_verify(
    platform_fixtures_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = platform_fixtures_root / "whatsapp" / "courier_duplicate.json"
    code, out, _ = _run(["adapters", "parse", "whatsapp", str(path), "--no-verify"], capsys)
    assert code == 0
    assert [decode_json(line).platform_message_id for line in out.splitlines()] == [
        "external_id", "external_id"]


MESSENGER = json.dumps({"object": "page", "entry": [
    {"id": page, "time": 1700000000000, "messaging": [{
        "sender": {"id": f"user-of-{page}"}, "recipient": {"id": page},
        "timestamp": 1700000000000, "message": {"mid": f"m_{page}", "text": "hi"}}]}
    for page in ("111", "222")
]}).encode()


def test_parse_messenger_defaults_the_account_from_the_payload(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: without --account-id nothing was printed (every entry was foreign)."""
    path = tmp_path / "page.json"
    path.write_bytes(MESSENGER)
    code, out, err = _run(["adapters", "parse", "messenger", str(path), "--no-verify"], capsys)
    assert code == 0
    (envelope,) = [decode_json(line) for line in out.splitlines()]
    assert (envelope.channel.account_id, envelope.platform_message_id) == ("111", "m_111")
    assert err.count("\n") == 1
    assert "parsing as account '111'" in err and "other 1 are skipped: 222" in err
    code, out, err = _run(["adapters", "parse", "messenger", str(path), "--no-verify",
                           "--account-id", "222"], capsys)
    assert (code, err) == (0, "")
    assert [decode_json(line).platform_message_id for line in out.splitlines()] == ["m_222"]


def test_parse_without_named_accounts_uses_the_placeholder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tg.json"
    path.write_bytes(json.dumps({"update_id": 1, "message": {
        "message_id": 5, "date": 1700000000, "chat": {"id": 42, "type": "private"},
        "from": {"id": 42, "is_bot": False, "first_name": "A"}, "text": "hi"}}).encode())
    code, out, err = _run(["adapters", "parse", "telegram", str(path), "--no-verify"], capsys)
    assert (code, err) == (0, "")
    assert decode_json(out.splitlines()[0]).channel.account_id == "cli-account"


def test_list_table_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "unigate.toml"
    config.write_text('[adapters]\nenabled = ["whatsapp"]\n', encoding="utf-8")
    monkeypatch.delenv("UNIGATE_CONFIG", raising=False)
    code, out, _ = _run(["adapters", "list", "--config", str(config)], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["NAME", "DISTRIBUTION", "VERSION", "ENABLED", "SDK"]
    whatsapp = next(line for line in lines if line.startswith("whatsapp"))
    assert whatsapp.split()[1:5] == ["unigate", "0.1.0", "yes", "ok"]
    assert "window=24h/template" in whatsapp and "handshake=meta_hub_challenge" in whatsapp
    code, out, _ = _run(["adapters", "list", "--json", "--config", str(config)], capsys)
    rows = {row["name"]: row for row in map(json.loads, out.splitlines())}
    assert {"whatsapp", "messenger", "instagram", "x", "telegram"} <= set(rows)
    assert rows["whatsapp"]["enabled"] is True
    assert rows["whatsapp"]["optional"] == ["account_ids", "handshake", "media_fetch", "send"]
    assert all(row["enabled"] is False for name, row in rows.items() if name != "whatsapp")


def test_list_reports_a_bad_config_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[adapters]\nenabeld = ["x"]\n', encoding="utf-8")
    code, out, err = _run(["adapters", "list", "--config", str(config)], capsys)
    assert code == 1 and out == "" and err.count("\n") == 1 and "enabeld" in err
