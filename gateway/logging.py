"""Structured logging: structlog configured once, context in contextvars, allowlist redaction.

Rules (docs/operations.md, "Logs"):

* Event names are snake_case facts (``webhook_accepted``, ``batch_committed``). Anything else —
  an f-string, a sentence — is replaced by ``unnamed_event``, so text never leaks through the
  event name.
* Only keys in :data:`ALLOWED_KEYS` keep their value, and only when it is a scalar (str, int,
  float, bool, None; strings cut at :data:`MAX_VALUE_CHARS`). Every other key's value becomes
  ``"[redacted]"``. The vocabulary is fixed here on purpose: adding a key is a reviewed change.
* Exceptions are rendered as the chain of frames and exception *types*; messages are dropped
  (they can quote data), except for our own trees (``GatewayError``, ``AdapterError``), whose
  messages are safe by construction.
* Standard-library records (aiohttp, asyncpg, pgserver …) go through the same chain, as
  ``library_log`` with their logger name; their message text is dropped.
* The edge binds ``request_id``, ``tenant_id``, ``channel`` and ``envelope_id`` with
  :func:`bound` once per request; every line logged inside carries them.

JSON lines off a TTY, a readable console format on one (``logging.format`` overrides).
"""

from __future__ import annotations

import logging as stdlib_logging
import re
import sys
import traceback
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO

import msgspec
import structlog

from adapters.errors import AdapterError
from gateway.errors import GatewayError

__all__ = [
    "ALLOWED_KEYS",
    "CONTEXT_KEYS",
    "REDACTED",
    "bound",
    "configure",
    "format_exception",
    "get_logger",
    "redact",
]

REDACTED = "[redacted]"
MAX_VALUE_CHARS = 200
EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
UNNAMED_EVENT = "unnamed_event"
_HANDLER_NAME = "unigate"
CONTEXT_KEYS = ("request_id", "tenant_id", "channel", "envelope_id")

# Every key a log line may carry with its value. Ids, counts, durations, codes — never content.
ALLOWED_KEYS = frozenset({
    # structlog's own
    "event", "level", "timestamp", "logger", "exception",
    # request context (bound once at the edge)
    *CONTEXT_KEYS, "conversation_id", "device_id", "outbox_id", "adapter", "platform",
    # HTTP
    "method", "route", "status", "duration_ms", "bytes", "limit", "retry_after",
    # outcomes
    "error", "code", "reason", "count", "batch_size", "attempt", "seq", "version",
    "state", "result",
    # runtime / storage
    "host", "port", "url_kind", "pid", "pool_size", "pool_idle", "query", "migration",
    "applied", "pending", "data_dir", "database",
})

_SAFE_MESSAGE_TYPES: tuple[type[BaseException], ...] = (GatewayError, AdapterError)
_SCALARS = (str, int, float, bool, type(None))
_EventDict = MutableMapping[str, Any]


# --------------------------------------------------------------------------- processors
def format_exception(exc: BaseException) -> str:
    """Frames and exception types of ``exc`` and its causes; no messages except our own."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    parts = []
    for item in reversed(chain):
        frames = "".join(traceback.format_list(traceback.extract_tb(item.__traceback__)))
        name = f"{type(item).__module__}.{type(item).__qualname__}"
        if isinstance(item, _SAFE_MESSAGE_TYPES):
            name += f": {item}"
        parts.append(f"Traceback (most recent call last):\n{frames}{name}" if frames else name)
    return "\nThe above led to:\n".join(parts)


def _exc_from(value: Any) -> BaseException | None:
    if isinstance(value, BaseException):
        return value
    if isinstance(value, tuple) and len(value) == 3 and isinstance(value[1], BaseException):
        return value[1]
    if value is True:
        return sys.exc_info()[1]
    return None


def safe_exception(_logger: Any, _method: str, event_dict: _EventDict) -> _EventDict:
    """Turn ``exc_info`` into a message-free ``exception`` string; drop ``stack_info``."""
    event_dict.pop("stack_info", None)
    exc = _exc_from(event_dict.pop("exc_info", None))
    if exc is not None:
        event_dict["exception"] = format_exception(exc)
        event_dict.setdefault("error", type(exc).__name__)
    return event_dict


def redact(_logger: Any, _method: str, event_dict: _EventDict) -> _EventDict:
    """The allowlist: unknown keys and non-scalar values are replaced by ``[redacted]``."""
    for key in list(event_dict):
        value = event_dict[key]
        if key == "event":
            ok = isinstance(value, str) and EVENT_NAME.match(value)
            event_dict[key] = value if ok else UNNAMED_EVENT
        elif key == "exception" and isinstance(value, str):
            continue  # built by safe_exception from frames and types only
        elif key not in ALLOWED_KEYS or not isinstance(value, _SCALARS):
            event_dict[key] = REDACTED
        elif isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
            event_dict[key] = value[:MAX_VALUE_CHARS] + "…"
    return event_dict


def _library_record(_logger: Any, _method: str, event_dict: _EventDict) -> _EventDict:
    """A stdlib record from a library: keep its logger name, drop its message text."""
    record = event_dict.get("_record")
    event_dict["event"] = "library_log"
    if isinstance(record, stdlib_logging.LogRecord):
        event_dict["logger"] = record.name
    return event_dict


def _logger_name(_logger: Any, _method: str, event_dict: _EventDict) -> _EventDict:
    """``logger_name`` (bound by :func:`get_logger`) is shown as ``logger``."""
    name = event_dict.pop("logger_name", None)
    if name is not None:
        event_dict["logger"] = name
    return event_dict


def _json_dumps(obj: Any, **_kw: Any) -> str:
    return msgspec.json.encode(obj).decode()


# --------------------------------------------------------------------------- setup
def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None, *,
              cache: bool = True) -> None:
    """Configure structlog and the stdlib root logger to write to ``stream`` (stderr).

    Call once at startup (``unigate serve``). Tests pass their own stream and ``cache=False``
    so a later call can reconfigure loggers already in use.
    """
    out = stream if stream is not None else sys.stderr
    console = fmt == "console" or (fmt == "auto" and _isatty(out))
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=_isatty(out))
        if console
        else structlog.processors.JSONRenderer(serializer=_json_dumps)
    )
    numeric = stdlib_logging.getLevelNamesMapping()[level.upper()]
    _configure_structlog(numeric, renderer, out, cache=cache)
    handler = stdlib_logging.StreamHandler(out)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED, _library_record],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            safe_exception,
            redact,
            renderer,
        ],
    ))
    handler.set_name(_HANDLER_NAME)
    root = stdlib_logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == _HANDLER_NAME:  # ours from an earlier call; others are left alone
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # the access log quotes raw paths (query strings carry verify tokens); we log routes instead
    stdlib_logging.getLogger("aiohttp.access").setLevel(stdlib_logging.WARNING)
    # pgserver narrates every start at INFO; its warnings and errors still come through
    stdlib_logging.getLogger("pgserver").setLevel(max(numeric, stdlib_logging.WARNING))


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def _configure_structlog(level: int, renderer: Any, out: TextIO, *, cache: bool) -> None:
    structlog.configure(
        processors=[*_SHARED, _logger_name, safe_exception, redact, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=cache,
    )


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def get_logger(name: str) -> Any:
    """A structlog logger tagged with ``logger=name``; lazy, so a module-level logger follows
    :func:`configure` even when created before it."""
    return structlog.get_logger(logger_name=name)


@contextmanager
def bound(**values: str | int | None) -> Iterator[None]:
    """Bind context (``request_id=…, tenant_id=…``) for the lines logged inside the block."""
    unknown = set(values) - ALLOWED_KEYS
    if unknown:
        raise ValueError(f"not a log vocabulary key: {sorted(unknown)}")
    with structlog.contextvars.bound_contextvars(**values):
        yield


# Until configure() runs (library use, tests, other subcommands), structlog's own default would
# print pretty tracebacks with local variables: install the redacting chain, JSON to stderr.
if not structlog.is_configured():
    _configure_structlog(stdlib_logging.INFO,
                         structlog.processors.JSONRenderer(serializer=_json_dumps),
                         sys.stderr, cache=False)
