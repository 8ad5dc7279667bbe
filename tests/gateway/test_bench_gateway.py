"""`unigate bench gateway`: the whole harness in its smallest run, the shape of its report, and
the pieces it is made of. No timing is asserted: only shape and sanity."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from aiohttp.test_utils import TestServer

from adapters.registry import load_adapters
from adapters.sdk import Account, AdapterContext, Secret
from adapters.testing.fixtures import inbound_request
from gateway.bench import bare_server, gateway_report, loadgen
from gateway.bench.cpu import cpu_seconds, postmaster_pid
from gateway.bench.gateway_env import toml
from gateway.bench.profile import summarise

HEADLINE = ("baseline_rps", "ingest_rps", "ratio", "p50_ms", "p99_ms", "frame_p99_ms")
CHANNELS = [loadgen.ChannelSpec(f"c-{p}", p, account, "s3cret-for-bench")
            for p, account in (("whatsapp", "1065"), ("messenger", "1059"),
                               ("instagram", "1784"), ("x", "1453"), ("telegram", "7000"))]


@pytest.fixture(scope="module")
def quick_report() -> dict[str, object]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("UNIGATE") and k != "DATABASE_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "bench", "gateway", "--quick", "--json"],
        capture_output=True, text=True, timeout=240, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "phase 2/2" in done.stderr  # progress while it runs, on stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout  # --json: exactly one object on stdout
    report: dict[str, object] = json.loads(lines[0])
    return report


def test_quick_json_has_the_headline_numbers(quick_report: dict[str, object]) -> None:
    for key in HEADLINE:
        assert isinstance(quick_report[key], int | float), key
    assert quick_report["baseline_rps"] > 0  # type: ignore[operator]
    assert quick_report["ingest_rps"] > 0  # type: ignore[operator]
    ratio = quick_report["ingest_rps"] / quick_report["baseline_rps"]  # type: ignore[operator]
    assert quick_report["ratio"] == pytest.approx(ratio, abs=1e-3)


def test_quick_latencies_are_ordered(quick_report: dict[str, object]) -> None:
    assert 0 < quick_report["p50_ms"] <= quick_report["p99_ms"]  # type: ignore[operator]
    frames = quick_report["frames"]
    assert isinstance(frames, dict)
    frame = frames["frame"]
    assert 0 < frame["p50_ms"] <= frame["p90_ms"] <= frame["p99_ms"] <= frame["max_ms"]
    assert quick_report["frame_p99_ms"] == frame["p99_ms"]


def test_quick_every_webhook_was_accepted_and_every_frame_arrived(
        quick_report: dict[str, object]) -> None:
    ingest, frames = quick_report["ingest"], quick_report["frames"]
    assert isinstance(ingest, dict) and isinstance(frames, dict)
    assert set(ingest["statuses"]) == {"200"}
    assert ingest["statuses"]["200"] == ingest["requests"] > 0
    assert frames["accepted"] == frames["sent"] == frames["received"] > 0
    assert frames["unreadable"] == 0  # the device opened every frame it got


def test_quick_report_carries_targets_machine_and_cpu(quick_report: dict[str, object]) -> None:
    targets = quick_report["targets"]
    assert isinstance(targets, dict)
    assert set(targets) == {"ingest_vs_bare", "ingest_p99", "frame_p99"}
    for target in targets.values():
        assert target["pass"] in (True, False)
    machine = quick_report["machine"]
    assert isinstance(machine, dict) and machine["cores"]
    cpu = quick_report["ingest"]["cpu_us_per_request"]  # type: ignore[index]
    assert cpu["server"] is not None and cpu["server"] > 0
    assert cpu["loadgen"] is not None
    batches = quick_report["ingest"]["batches"]  # type: ignore[index]
    assert batches["transactions"] > 0 and batches["envelopes_per_transaction"] >= 1


def test_metrics_parsing_and_batch_deltas() -> None:
    text = ("# HELP unigate_batch_envelopes Envelopes per transaction\n"
            "unigate_batch_envelopes_bucket{le=\"1.0\"} 3.0\n"
            "unigate_batch_envelopes_sum 40.0\nunigate_batch_envelopes_count 4.0\n"
            "unigate_batch_duration_seconds_sum 0.02\n"
            "unigate_batch_duration_seconds_count 4.0\n"
            "unigate_seal_duration_seconds_sum 0.004\nunigate_webhooks_total 9.0\n")
    after = gateway_report.parse_metrics(text)
    assert "unigate_webhooks_total" not in after and len(after) == 5
    before = {"unigate_batch_envelopes_sum": 10.0, "unigate_batch_envelopes_count": 2.0}
    assert gateway_report.batch_summary(before, after) == {
        "transactions": 2, "envelopes_per_transaction": 15.0, "transaction_ms": 10.0,
        "seal_ms_per_transaction": 2.0}
    assert gateway_report.batch_summary(after, after) == {"transactions": 0}


# --------------------------------------------------------------------------- pieces
def test_every_load_generator_webhook_is_verified_and_parsed_by_its_adapter() -> None:
    spec = loadgen.LoadSpec(host="127.0.0.1", port=1, channels=CHANNELS, count=10, run_id=7)
    requests = loadgen.build_requests(spec, 0, 10)
    adapters = load_adapters([c.platform for c in CHANNELS])
    for index, raw in enumerate(requests):
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        channel = CHANNELS[index % len(CHANNELS)]
        assert lines[0] == f"POST /webhooks/{channel.channel_id} HTTP/1.1"
        headers = dict(line.split(": ", 1) for line in lines[1:])
        assert int(headers["Content-Length"]) == len(body)
        cls = adapters[channel.platform].cls
        adapter = cls(AdapterContext(config=cls.config_type()))
        secret = Secret(channel.secret)
        account = Account(id=channel.account_id, tenant="t", app_secret=secret,
                          consumer_secret=secret, webhook_secret=secret)
        request = inbound_request(body, headers)
        adapter.verify(request, account)
        [envelope] = adapter.parse(request, account)
        assert envelope.content.text.startswith(f"bench 7-{index} ")  # type: ignore[union-attr]


async def test_load_generator_against_the_bare_handler() -> None:
    server = TestServer(bare_server.create_app(), host="127.0.0.1")
    await server.start_server()
    try:
        closed = loadgen.LoadSpec(host="127.0.0.1", port=server.port or 0, channels=CHANNELS,
                                  count=200, warmup=10, concurrency=8)
        result = await loadgen.run(closed, progress=False)
        assert result.statuses == {"200": 200} and result.ok == result.sent == 200
        assert len(result.latencies_ms) == 200 and result.rps > 0 and not result.send_times
        paced = loadgen.LoadSpec(host="127.0.0.1", port=server.port or 0, channels=CHANNELS,
                                 count=50, warmup=5, concurrency=8, rate=500.0)
        result = await loadgen.run(paced, progress=False)
        assert result.ok == 50 and sorted(result.send_times) == list(range(5, 55))
        times = [result.send_times[i] for i in range(5, 55)]
        assert times == sorted(times) and times[-1] - times[0] >= 49 / 500 * 0.9  # paced
    finally:
        await server.close()


async def test_load_generator_fails_when_nothing_listens() -> None:
    spec = loadgen.LoadSpec(host="127.0.0.1", port=9, channels=CHANNELS, count=5,
                            concurrency=2, max_seconds=5)
    with pytest.raises(OSError):
        await loadgen.run(spec, progress=False)  # nothing listens on the discard port


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert gateway_report.percentile(values, 50) == 50
    assert gateway_report.percentile(values, 99) == 99
    assert gateway_report.percentile(values, 100) == 100
    assert gateway_report.percentile([3.0], 99) == 3.0
    assert gateway_report.percentile([], 50) is None


def test_toml_writer_round_trips_the_config_shape() -> None:
    import tomllib

    data = {"server": {"host": "127.0.0.1", "port": 8080},
            "adapters": {"enabled": ["x", "telegram"]},
            "tenants": {"t": {"admin_public_key": "a+b/c==",
                              "channels": {"t-x": {"adapter": "x", "flag": True,
                                                   "secret": 'q"uote\\'}}}}}
    assert tomllib.loads(toml(data)) == data


def test_cpu_accounting_reads_this_process() -> None:
    used = cpu_seconds(os.getpid())
    assert used is not None and used > 0
    assert postmaster_pid(Path("/nonexistent")) is None


def test_profile_summary_groups_samples(tmp_path: Path) -> None:
    raw = tmp_path / "stacks.raw"
    raw.write_text(
        "main (gateway/cli.py:44);receive (gateway/api/webhooks.py:88);"
        "seal (crypto/seal.py:10) 3\n"
        "main (gateway/cli.py:44);run_app (aiohttp/web.py:502) 1\n", encoding="utf-8")
    text = summarise(raw)
    assert "4 samples" in text
    assert " 75.0%  crypto (seal, ratchet)" in text
    assert " 25.0%  event loop" in text
    assert " 75.0%  receive (gateway/api/webhooks.py)" in text


def test_bench_gateway_is_a_unigate_command() -> None:
    from gateway import cli

    args = cli.build_parser().parse_args(["bench", "gateway", "--quick", "--json"])
    assert args.quick and args.json and callable(args.func)


async def test_loadgen_process_prints_one_result(tmp_path: Path) -> None:
    """``python -m gateway.bench.loadgen SPEC`` (no result file): one JSON object on stdout."""
    server = TestServer(bare_server.create_app(), host="127.0.0.1")
    await server.start_server()
    try:
        spec = loadgen.LoadSpec(host="127.0.0.1", port=server.port or 0, channels=CHANNELS,
                                count=20, concurrency=2)
        spec_file = tmp_path / "spec.json"
        spec_file.write_bytes(msgspec.json.encode(spec))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.bench.loadgen", str(spec_file),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await server.close()
    assert proc.returncode == 0
    result = msgspec.json.decode(out, type=loadgen.LoadResult)
    assert result.ok == 20 and result.statuses == {"200": 20}
