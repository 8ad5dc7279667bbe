"""`unigate adapters list | parse`: inspect installed adapters, run one over a captured body.

``list`` shows every adapter installed under the ``unigate.adapters`` entry-point group: name,
distribution, version, whether the config's ``adapters.enabled`` allowlist enables it, whether
it loads against this SDK (with the reason when not), and a capability summary.

``parse PLATFORM FILE`` runs one adapter's ``verify`` (unless ``--no-verify``) and ``parse``
over a raw webhook body and prints each envelope as one JSON line. Adapters return only the
items of the account they parse as; without ``--account-id`` that is the first account the
payload names (the adapter's ``addressed_account_ids``: Meta entry / phone number id, X
``for_user_id``), said on stderr, else ``cli-account``. ``--secret`` is used as the
account's app secret, consumer secret and webhook secret token at once, so the same flag works
for Meta (X-Hub-Signature-256), X (x-twitter-webhooks-signature) and Telegram (secret-token
header). Any failure exits 1 with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

import msgspec

from adapters.errors import AdapterError
from adapters.registry import AdapterEntry, check_adapter_class, discover
from adapters.sdk import (
    Account,
    AdapterContext,
    Headers,
    InboundRequest,
    Secret,
    SupportsAccountIds,
    capability_summary,
)
from gateway.envelope import encode_json

PROG = "unigate adapters"


class CliFailure(Exception):
    """A one-line reason for exit status 1."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("adapters", help="list installed adapters, parse a payload")
    sub = parser.add_subparsers(dest="adapters_command", metavar="SUBCOMMAND")
    sub.required = True

    listing = sub.add_parser("list", help="installed adapters, SDK status and capabilities")
    listing.add_argument("--config", help="config file (default: $UNIGATE_CONFIG or none)")
    listing.add_argument("--json", action="store_true", help="one JSON object per adapter")
    listing.set_defaults(func=run_list)

    parse = sub.add_parser("parse", help="run an adapter over a raw webhook body")
    parse.add_argument("platform", help="registered adapter name (whatsapp, messenger, …)")
    parse.add_argument("file", help="raw request body as received ('-' for stdin)")
    parse.add_argument("--header", action="append", default=[], metavar="'Name: value'",
                       help="request header, repeatable (e.g. the signature header)")
    parse.add_argument("--account-id", default=None,
                       help="the channel account to parse as (default: the first account the "
                            "payload names, else 'cli-account')")
    parse.add_argument("--tenant", default="cli", help="tenant written into the envelopes")
    secret = parse.add_mutually_exclusive_group(required=True)
    secret.add_argument("--secret", help="app / consumer secret or webhook secret token")
    secret.add_argument("--no-verify", action="store_true", help="skip signature verification")
    parse.set_defaults(func=run_parse)


def _fail(message: str, err: TextIO) -> int:
    print(f"{PROG}: {' '.join(message.split())}", file=err)
    return 1


# --------------------------------------------------------------------------- list
def _enabled(config_path: str | None) -> set[str]:
    from gateway.config import load_config  # deferred: only `list` needs the config

    return set(load_config(config_path).adapters.enabled)


def _describe(entry: AdapterEntry, enabled: set[str]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": entry.name, "distribution": entry.distribution, "version": entry.version,
        "enabled": entry.name in enabled, "sdk": "ok", "capabilities": "", "optional": [],
    }
    try:
        loaded = check_adapter_class(entry.load_class(), entry)
    except AdapterError as exc:
        row["sdk"] = f"not loadable: {exc.reason}"
        return row
    row["capabilities"] = capability_summary(loaded.capabilities)
    row["optional"] = sorted(loaded.optional)
    return row


def run_list(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        entries = discover()
        enabled = _enabled(args.config)
    except Exception as exc:  # ConfigError / AdapterLoadError: report, never a traceback
        return _fail(str(exc), err)
    rows = [_describe(entries[name], enabled) for name in sorted(entries)]
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False), file=out)
        return 0
    header = ("NAME", "DISTRIBUTION", "VERSION", "ENABLED", "SDK", "CAPABILITIES")
    table = [header] + [
        (r["name"], r["distribution"], r["version"], "yes" if r["enabled"] else "no",
         r["sdk"] if r["sdk"] == "ok" else "ERROR", r["capabilities"] or r["sdk"])
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in table) for i in range(5)]
    for line in table:
        cells = [str(cell).ljust(width) for cell, width in zip(line[:5], widths, strict=True)]
        print("  ".join([*cells, str(line[5])]).rstrip(), file=out)
    return 0


# --------------------------------------------------------------------------- parse
def _headers(values: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, sep, rest = value.partition(":")
        if not sep or not name.strip():
            raise CliFailure(f"--header {value!r} is not 'Name: value'")
        pairs.append((name.strip(), rest.strip()))
    return pairs


def _read_body(file: str) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(file).read_bytes()
    except OSError as exc:
        raise CliFailure(f"cannot read {file}: {exc.strerror or type(exc).__name__}") from None


def _adapter(platform: str) -> Any:
    entries = discover()
    entry = entries.get(platform)
    if entry is None:
        raise CliFailure(
            f"no adapter named {platform!r} is installed (have: {', '.join(sorted(entries))})"
        )
    cls = check_adapter_class(entry.load_class(), entry).cls
    try:
        config = msgspec.convert({}, cls.config_type)  # type: ignore[attr-defined]
    except msgspec.ValidationError as exc:
        raise CliFailure(f"adapter {platform!r} needs configuration: {exc}") from None
    return cls(AdapterContext(config=config))


DEFAULT_ACCOUNT_ID = "cli-account"


def _account_from_payload(adapter: Any, request: InboundRequest) -> tuple[str, str | None]:
    """The first account the payload names and a note saying so, else the placeholder."""
    named = adapter.addressed_account_ids(request) if isinstance(
        adapter, SupportsAccountIds) else []
    if not named:
        return DEFAULT_ACCOUNT_ID, None
    note = f"{PROG}: no --account-id: parsing as account {named[0]!r}, the first the payload names"
    if len(named) > 1:
        note += f" (items of the other {len(named) - 1} are skipped: {', '.join(named[1:])})"
    return named[0], note


def run_parse(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        headers = _headers(args.header)
        body = _read_body(args.file)
        adapter = _adapter(args.platform)
        request = InboundRequest(method="POST", path=f"/webhooks/{args.platform}", body=body,
                                 headers=Headers(headers))
        account_id, note = args.account_id, None
        if account_id is None:
            account_id, note = _account_from_payload(adapter, request)
        secret = Secret(args.secret) if args.secret is not None else None
        account = Account(id=account_id, tenant=args.tenant, app_secret=secret,
                          consumer_secret=secret, webhook_secret=secret)
        if not args.no_verify:
            try:
                adapter.verify(request, account)
            except AdapterError as exc:
                raise CliFailure(f"verification failed: {exc.reason}") from None
        try:
            envelopes = adapter.parse(request, account)
        except AdapterError as exc:
            raise CliFailure(f"parsing failed: {exc.reason}") from None
    except CliFailure as exc:
        return _fail(str(exc), err)
    except AdapterError as exc:  # loading problems
        return _fail(exc.reason, err)
    if note is not None:  # only once it worked: a failure stays one line
        print(note, file=err)
    for envelope in envelopes:
        out.write(encode_json(envelope).decode("utf-8") + "\n")
    return 0
