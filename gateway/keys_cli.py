"""``unigate keys``: the tenant admin key, edge keys, and signed device rosters.

    unigate keys admin-create --out admin.key          new admin key pair; prints the public
                                                        key for tenants.<id>.admin_public_key
    unigate keys edge-create                            fresh edge keys as a TOML [edge] table
    unigate keys edge-public [--config FILE]            the edge identity's public key
    unigate keys sign-roster --admin-key admin.key --tenant T --version N
                             --edge-identity B64 --device ID=IDENTITY_B64[:kind] ...
                             [--out roster.json] [--publish URL]

A signed roster is JSON ``{"version", "payload", "signature"}`` (base64 bytes), the body that
``POST /v1/rosters/{tenant}`` accepts; ``--publish`` posts it to a gateway base URL.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import secrets
import sys
from pathlib import Path
from typing import Any

import msgspec

from gateway.roster_admin import (
    build_roster,
    load_admin_key,
    new_admin_key,
    save_admin_key,
    signed_roster,
)

__all__ = ["register"]


def register(subparsers: Any) -> None:
    keys = subparsers.add_parser("keys", help="admin keys, edge keys and signed device rosters")
    sub = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    sub.required = True
    create = sub.add_parser("admin-create", help="create a tenant admin key pair")
    create.add_argument("--out", required=True, type=Path, help="file for the secret key")
    create.set_defaults(func=run_admin_create)
    edge = sub.add_parser("edge-create", help="print fresh edge keys as TOML")
    edge.set_defaults(func=run_edge_create)
    public = sub.add_parser("edge-public", help="print the configured edge identity's public key")
    public.add_argument("--config", metavar="FILE", help="TOML config (default $UNIGATE_CONFIG)")
    public.set_defaults(func=run_edge_public)
    sign = sub.add_parser("sign-roster", help="sign the device roster of a tenant")
    sign.add_argument("--admin-key", required=True, type=Path)
    sign.add_argument("--tenant", required=True)
    sign.add_argument("--version", required=True, type=int)
    sign.add_argument("--edge-identity", required=True, help="edge public key, base64")
    sign.add_argument("--device", action="append", default=[], metavar="ID=KEY[:kind]",
                      help="a device on the roster (repeat)")
    sign.add_argument("--out", type=Path, help="write the signed roster here (default stdout)")
    sign.add_argument("--publish", metavar="URL", help="POST it to this gateway base URL")
    sign.set_defaults(func=run_sign_roster)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def run_admin_create(args: argparse.Namespace) -> int:
    if args.out.exists():
        print(f"unigate: {args.out} exists; refusing to overwrite an admin key", file=sys.stderr)
        return 1
    key = new_admin_key()
    save_admin_key(key, args.out)
    print(f'admin_public_key = "{_b64(key.ed25519)}"')
    return 0


def run_edge_create(_args: argparse.Namespace) -> int:
    print("[edge]")
    for name in ("identity_key", "storage_key", "blind_index_key"):
        print(f'{name} = "{_b64(secrets.token_bytes(32))}"')
    return 0


def run_edge_public(args: argparse.Namespace) -> int:
    from gateway.config import ConfigError, load_config
    from gateway.edge import EdgeKeys

    try:
        keys = EdgeKeys.from_config(load_config(args.config))
    except ConfigError as exc:
        print(f"unigate: configuration invalid: {exc}", file=sys.stderr)
        return 2
    print(_b64(keys.identity_key))
    return 0


def _device(spec: str) -> tuple[str, bytes, str]:
    device_id, _, rest = spec.partition("=")
    key, _, kind = rest.partition(":")
    return device_id, base64.b64decode(key), kind or "agent"


def run_sign_roster(args: argparse.Namespace) -> int:
    try:
        devices = [_device(spec) for spec in args.device]
        roster = build_roster(args.tenant, args.version, base64.b64decode(args.edge_identity),
                              devices)
        body = msgspec.json.encode(signed_roster(roster, load_admin_key(args.admin_key)))
    except (ValueError, OSError) as exc:
        print(f"unigate: cannot sign the roster: {exc}", file=sys.stderr)
        return 1
    if args.out:
        args.out.write_bytes(body + b"\n")
    else:
        print(body.decode())
    if args.publish:
        return asyncio.run(_publish(args.publish, args.tenant, body))
    return 0


async def _publish(base_url: str, tenant: str, body: bytes) -> int:
    import aiohttp

    url = f"{base_url.rstrip('/')}/v1/rosters/{tenant}"
    async with aiohttp.ClientSession() as session, session.post(
        url, data=body, headers={"Content-Type": "application/json"}
    ) as response:
        answer = await response.text()
    print(f"published: {response.status} {answer}", file=sys.stderr)
    return 0 if response.status == 201 else 1
