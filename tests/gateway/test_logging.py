"""Logging: a canary string logged every way we can think of never reaches the output, while
the allowed vocabulary does; event names, exceptions, library records, console vs JSON."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.errors import BadRequest
from gateway.logging import REDACTED, bound, configure, get_logger

CANARY = "CANARY-hunter2-+15551234567"


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure("debug", "json", stream, cache=False)
    yield stream
    configure("info", "json", io.StringIO(), cache=False)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_canary_never_reaches_the_output(output: io.StringIO) -> None:
    log = get_logger("test.canary")
    stdlib = logging.getLogger("some.library")
    with bound(request_id="req-12345678", tenant_id="acme", channel="acme-wa",
               envelope_id="env-1"):
        log.info("webhook_accepted", count=2, text=CANARY, phone=CANARY)
        log.info(f"received {CANARY}")  # an f-string event
        log.info("batch_committed", reason={"nested": CANARY}, status=[CANARY])
        log.warning("slow_query", query="SELECT " + "x" * 500)  # allowed key, cut to 200
        try:
            raise ValueError(f"bad value {CANARY}")
        except ValueError:
            log.exception("parse_failed")
        try:
            try:
                raise KeyError(CANARY)
            except KeyError as inner:
                raise RuntimeError(CANARY) from inner
        except RuntimeError as exc:
            log.error("send_failed", exc_info=exc)
        stdlib.warning("got %s from %s", CANARY, CANARY)
        stdlib.error("failure", exc_info=ValueError(CANARY))
        log.info("webhook_accepted", stack_info=True)
    text = output.getvalue()
    records = lines(output)
    assert CANARY not in text
    # the line is still useful: ids, counts and context survive
    first = records[0]
    assert first["event"] == "webhook_accepted" and first["count"] == 2
    assert (first["request_id"], first["tenant_id"], first["channel"], first["envelope_id"]) == (
        "req-12345678", "acme", "acme-wa", "env-1")
    assert first["text"] == first["phone"] == REDACTED
    assert records[1]["event"] == "unnamed_event"
    assert records[2]["reason"] == records[2]["status"] == REDACTED
    assert len(records[3]["query"]) <= 201
    assert "ValueError" in records[4]["exception"] and records[4]["error"] == "ValueError"
    assert "KeyError" in records[5]["exception"] and "RuntimeError" in records[5]["exception"]
    assert records[6]["event"] == "library_log" and records[6]["logger"] == "some.library"
    assert records[6]["tenant_id"] == "acme"
    assert "ValueError" in records[7]["exception"]


def test_our_errors_keep_their_safe_reason(output: io.StringIO) -> None:
    try:
        raise BadRequest("payload is not JSON")
    except BadRequest:
        get_logger("t").exception("request_failed")
    record = lines(output)[0]
    assert "BadRequest: payload is not JSON" in record["exception"]


def test_event_names_must_be_snake_case_facts(output: io.StringIO) -> None:
    log = get_logger("t")
    for event in ("webhook_accepted", "Webhook accepted", "webhookAccepted", "9lives", "a" * 70):
        log.info(event)
    assert [r["event"] for r in lines(output)] == ["webhook_accepted"] + ["unnamed_event"] * 4


def test_bound_refuses_keys_outside_the_vocabulary() -> None:
    with pytest.raises(ValueError, match="vocabulary"), bound(customer_name="x"):
        pass


def test_levels_filter(output: io.StringIO) -> None:
    configure("warning", "json", output, cache=False)
    log = get_logger("t")
    log.info("not_shown")
    logging.getLogger("lib").info("not shown either")
    log.warning("shown")
    assert [r["event"] for r in lines(output)] == ["shown"]


def test_console_on_a_tty_and_json_elsewhere() -> None:
    tty = FakeTTY()
    configure("info", "auto", tty, cache=False)
    get_logger("t").info("server_starting", port=8080)
    assert "server_starting" in tty.getvalue()
    with pytest.raises(json.JSONDecodeError):
        json.loads(tty.getvalue().splitlines()[0])
    plain = io.StringIO()
    configure("info", "auto", plain, cache=False)
    get_logger("t").info("server_starting", port=8080)
    assert lines(plain)[0]["port"] == 8080
    configure("info", "json", io.StringIO(), cache=False)


def test_module_level_loggers_follow_a_later_configure() -> None:
    early = get_logger("made.before.configure")
    stream = io.StringIO()
    configure("info", "json", stream, cache=False)
    early.info("late_configured")
    assert lines(stream)[0]["logger"] == "made.before.configure"
    configure("info", "json", io.StringIO(), cache=False)
