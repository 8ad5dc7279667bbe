"""`unigate demo`: the whole gateway end to end (as `make demo` runs it), the demo's platform
payloads, and the crypto-only walkthrough."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adapters.registry import load_adapters
from adapters.sdk import Account, AdapterContext, Secret
from adapters.testing.fixtures import inbound_request
from gateway import cli, demo_crypto
from gateway.demo_agent import kind_of
from gateway.demo_platforms import API_NAMES, PLATFORM_NAMES
from gateway.demo_replies import REFUSED, REPLIES
from gateway.demo_script import CUSTOMERS, build_script, canaries
from gateway.sandbox.traffic import signed_webhook

PLATFORMS = ("whatsapp", "messenger", "instagram", "x", "telegram")
ACCOUNTS = {"whatsapp": "106540352242922", "messenger": "105958148911476",
            "instagram": "17841400000000001", "x": "1453870000000000001",
            "telegram": "7000000001"}
DEMO_TIMEOUT_S = 120


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("UNIGATE") and k != "DATABASE_URL"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _no_key_material(out: str, hex_run: int = 32) -> None:
    """No hex or base64 runs (keys, ciphertexts), no bytes reprs. The full demo prints
    customers' numeric ids (up to 17 digits), hence its longer hex threshold."""
    visible = re.sub(r'"request_id":"[0-9a-f]{32}"', "", out)
    # quoted ids in the log lines the demo shows (a UUID ending in "b" before its closing
    # quote is not a bytes repr)
    visible = re.sub(r'"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"', '""',
                     visible)
    assert not re.search(rf"[0-9a-fA-F]{{{hex_run},}}", visible)
    assert not re.search(r"[A-Za-z0-9+/]{40,}={0,2}", visible)  # no base64 blobs
    assert "b'" not in visible and 'b"' not in visible  # no raw bytes reprs


def _pg_folder(out: str) -> Path:
    match = re.search(r"embedded \(pgserver\) in (\S+)", out)
    assert match, out
    return Path(match.group(1))


# --------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def demo_run() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--pace", "0"], capture_output=True,
        text=True, timeout=DEMO_TIMEOUT_S, env=_env(), check=False)


def test_demo_exits_zero_after_every_check(demo_run: subprocess.CompletedProcess[str]) -> None:
    out = demo_run.stdout
    assert demo_run.returncode == 0, out + demo_run.stderr
    assert "All 14 checks held" in out
    assert "✗" not in out and "DEMO FAILED" not in out
    assert "Traceback" not in demo_run.stderr and "Unclosed" not in demo_run.stderr


def test_demo_banner_names_the_urls(demo_run: subprocess.CompletedProcess[str]) -> None:
    match = re.search(r"\[2\] Gateway\s+(http://127\.0\.0\.1:\d+)", demo_run.stdout)
    assert match, demo_run.stdout
    base = match.group(1)
    for path in ("/webhooks/<channel>", "/metrics", "/healthz", "/readyz"):
        assert base + path in demo_run.stdout


def _act(out: str, start: str, end: str) -> str:
    """The transcript from the heading ``start`` up to the heading ``end``."""
    assert start in out and end in out, out
    return out[out.index(start):out.index(end)]


def test_agent_device_decrypts_every_channel(
        demo_run: subprocess.CompletedProcess[str]) -> None:
    traffic = _act(demo_run.stdout, "[4] Traffic", "[5] Replies")
    lines = [line for line in traffic.splitlines() if "🔓 agent-laptop" in line]
    script = build_script(ACCOUNTS)
    for scene in script:
        for expect in scene.expect:
            if expect.kind == "text":
                hits = [line for line in lines
                        if re.search(rf"🔓 agent-laptop\s+{expect.platform}\s", line)
                        and f"“{expect.detail}”" in line]
                assert len(hits) == 1, (expect, lines)  # decrypted, and only once
    for platform in PLATFORMS:
        assert any(re.search(rf"agent-laptop\s+{platform}\s", line) for line in lines)
    assert len(lines) == sum(len(scene.expect) for scene in script)


def test_forged_webhook_refused_and_never_delivered(
        demo_run: subprocess.CompletedProcess[str]) -> None:
    out = demo_run.stdout
    assert re.search(r"signed with a WRONG key\s+← 401 unauthorized", out)
    forged = next(s for s in build_script(ACCOUNTS) if s.faults.bad_signature)
    assert forged.texts and all(text not in out for text in forged.texts)


def test_duplicate_and_batch_answers(demo_run: subprocess.CompletedProcess[str]) -> None:
    out = demo_run.stdout
    assert "← 200 stored 0, duplicate 1" in out
    assert "← 200 stored 3" in out
    assert "0 envelopes delivered, 0 readable" in out


def test_every_reply_reaches_its_platform_and_the_colleagues(
        demo_run: subprocess.CompletedProcess[str]) -> None:
    """Per reply: the POST, the phone's copy as queued, the exact text at the fake platform
    API (once), the edge's record on the laptop and the GET, in that order, with one platform
    message id throughout."""
    act = _act(demo_run.stdout, "[5] Replies", "[6] Checks")
    blocks = act.split("\n▸ ")[1:]
    assert len(blocks) == len(REPLIES) + 2  # the five replies, the statuses, the refusal
    for reply, block in zip(REPLIES, blocks, strict=False):
        platform = CUSTOMERS[reply.customer].platform
        lines = block.splitlines()
        assert lines[0] == (f"agent-laptop answers {CUSTOMERS[reply.customer].name.split()[0]}"
                            f" on {PLATFORM_NAMES[platform]}")
        assert re.fullmatch(r"  ↗ POST /v1/conversations/[0-9a-f]{8}…/messages  sealed for "
                            r"the edge \+ 2 colleagues  ← (queued|sending|sent)", lines[1])
        assert re.fullmatch(rf"  🔓 agent-phone\s+{platform}\s+.+#\d+\s+↩ a colleague's reply, "
                            rf"queued: “{re.escape(reply.text)}”", lines[2])
        assert lines[3].startswith(f"  ☁ {API_NAMES[platform]} got POST ")
        assert lines[3].endswith(f"to {CUSTOMERS[reply.customer].handle}: “{reply.text}”")
        sent = re.fullmatch(rf"  🔓 agent-laptop {platform}\s+.+#\d+\s+the edge sent our reply: "
                            r"platform id (\S+)", lines[4])
        assert sent, lines[4]
        assert re.fullmatch(r"  ⇄ GET /v1/conversations/…/messages/[0-9a-f]{8}…  sent, "
                            rf"platform id {re.escape(sent.group(1))}, attempts 1", lines[5])
        assert act.count(f"“{reply.text}”") == 2  # the phone's copy and the platform, only


def test_whatsapp_statuses_fold_to_read(demo_run: subprocess.CompletedProcess[str]) -> None:
    act = _act(demo_run.stdout, "[5] Replies", "[6] Checks")
    statuses = act[act.index("▸ WhatsApp reports the reply to Ana"):]
    assert re.search(r"← 200 stored 1\n.+agent-laptop whatsapp\s+Ana Souza\s+#\d+\s+status of "
                     r"our reply: delivered\n.+← 200 stored 1\n.+status of our reply: read\n",
                     statuses)
    assert ("ReplyTracker on agent-laptop folds it: sent → delivered → read  ⇒ read; "
            "GET says delivery read") in statuses


def test_reply_outside_the_window_is_refused_and_sends_nothing(
        demo_run: subprocess.CompletedProcess[str]) -> None:
    act = _act(demo_run.stdout, "[5] Replies", "[6] Checks")
    refused = act[act.index("▸ agent-laptop answers Farah"):]
    assert f"↩ a colleague's reply, queued: “{REFUSED.text}”" in refused
    assert re.search(r"⛔ refused by the channel's policy, never sent \(window_closed\): .*24h",
                     refused)
    assert ("suggestion: send the approved template 'order_followup' (en_US); the window "
            "reopens when the customer writes") in refused
    assert re.search(r"agent-laptop whatsapp\s+Farah Haddad\s+#\d+\s+status of our reply: "
                     r"failed \(window_closed\)", refused)
    assert "☁ WhatsApp Cloud API got 0 messages for Farah" in refused
    assert not [line for line in act.splitlines() if "☁" in line and REFUSED.text in line]


def test_reply_checks_and_privacy_cover_the_replies(
        demo_run: subprocess.CompletedProcess[str]) -> None:
    checks = _act(demo_run.stdout, "[6] Checks", "checks held")
    assert re.search(r"✓ each of the 5 replies reached its platform's API exactly once with its "
                     r"exact text \(whatsapp, messenger, instagram, x, telegram; 5 messages in "
                     r"all\)", checks)
    assert re.search(r"✓ agent-phone and support-bot opened all 6 reply copies \(6 and 6, ",
                     checks)
    assert re.search(r"✓ ReplyTracker on each roster device folds the statuses to the expected "
                     r"delivery, as the gateway's GET does \(1 failed, 1 read, 4 sent\)", checks)
    assert re.search(r"✓ the reply outside the 24 h window was refused \(window_closed, template "
                     r"'order_followup' suggested\) and sent nothing \(0 messages", checks)
    secrets = len(canaries(build_script(ACCOUNTS))) + len(REPLIES) + 1
    assert re.search(rf"✓ database: 0 of {secrets} customer texts, replies, names", checks)
    assert re.search(rf"✓ gateway log \(debug level\): 0 of {secrets} customer texts, replies",
                     checks)
    assert '"event":"egress_sent"' in checks
    assert "accepted 17, unauthorized 1" in checks  # the two status webhooks counted too


def test_demo_prints_no_key_material_and_cleans_up(
        demo_run: subprocess.CompletedProcess[str]) -> None:
    _no_key_material(demo_run.stdout)
    assert not _pg_folder(demo_run.stdout).exists()


def test_forever_serves_until_interrupted_then_cleans_up() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--pace", "0", "--forever"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    assert process.stdout is not None
    out: list[str] = []
    deadline = time.monotonic() + DEMO_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            out.append(line)
            if line.startswith("Serving until Ctrl-C"):
                break
        assert out and out[-1].startswith("Serving until Ctrl-C"), "".join(out)
        assert process.poll() is None  # still serving after the script
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    text = "".join(out) + rest
    assert process.returncode == 0, text
    assert "stopped" in rest
    assert not _pg_folder(text).exists()


# --------------------------------------------------------------------------- the script
@pytest.fixture(scope="module")
def adapters() -> dict[str, object]:
    loaded = load_adapters(list(PLATFORMS))
    return {name: loaded[name].cls(AdapterContext(config=loaded[name].cls.config_type()))
            for name in PLATFORMS}


def test_every_scene_parses_with_the_real_adapter(adapters: dict[str, object]) -> None:
    """Each webhook the demo posts is what its platform sends: the adapter verifies the
    signature and parses exactly the envelopes the scene expects the device to read."""
    for scene in build_script(ACCOUNTS):
        adapter = adapters[scene.platform]
        account = Account(id=ACCOUNTS[scene.platform], tenant="demo",
                          app_secret=Secret("s1"), consumer_secret=Secret("s1"),
                          webhook_secret=Secret("s1"))
        parsed = []
        for payload in scene.payloads:
            hook = signed_webhook(scene.platform, "s1", payload)
            request = inbound_request(hook.body, hook.headers)
            adapter.verify(request, account)  # type: ignore[attr-defined]
            parsed += adapter.parse(request, account)  # type: ignore[attr-defined]
        kinds = [kind_of(envelope) for envelope in parsed]
        if scene.faults.bad_signature:
            assert kinds == ["text"]  # well-formed: only the signature is wrong
            continue
        assert kinds == [expect.kind for expect in scene.expect], scene.title


def test_reply_texts_are_distinct_canaries() -> None:
    """Each reply text occurs nowhere else in the script, so finding it anywhere is a leak."""
    texts = [reply.text for reply in (*REPLIES, REFUSED)]
    assert len(set(texts)) == len(texts)
    inbound = canaries(build_script(ACCOUNTS))
    assert not [t for t in texts if any(t in c or c in t for c in inbound)]


def test_canaries_cover_every_customer_and_text() -> None:
    script = build_script(ACCOUNTS)
    values = canaries(script)
    for customer in CUSTOMERS.values():
        assert customer.name in values and customer.handle in values
    for scene in script:
        for expect in scene.expect:
            if expect.kind == "text":
                assert expect.detail in values


# --------------------------------------------------------------------------- crypto only
def run_crypto_demo(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(["demo", "--crypto-only"])
    return code, capsys.readouterr().out


def test_crypto_demo_walks_through_every_step(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_crypto_demo(capsys)
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


def test_crypto_demo_prints_no_key_material(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_crypto_demo(capsys)
    assert code == 0
    _no_key_material(out, hex_run=16)


def test_crypto_demo_fails_loudly_when_a_step_breaks(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def wrong_open(*args: object, **kwargs: object) -> bytes:
        return b"not the envelope"

    monkeypatch.setattr(demo_crypto, "open_sealed", wrong_open)
    code, out = run_crypto_demo(capsys)
    assert code == 1
    assert "DEMO FAILED" in out
    assert "All steps checked out" not in out
