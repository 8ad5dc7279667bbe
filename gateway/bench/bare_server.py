"""The peer of ``unigate bench gateway``: a trivial aiohttp JSON handler in its own process.

    python -m gateway.bench.bare_server --port P

``POST /webhooks/{channel_id}`` parses the body as JSON and answers a small JSON object — what
any aiohttp service does at the least for a webhook, with no signature check, no database and
no crypto. It runs exactly as ``unigate serve`` runs the gateway (same event loop choice, no
access log), so the two are measured on equal terms by the same load generator in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiohttp import web

__all__ = ["create_app", "main"]


async def _webhook(request: web.Request) -> web.Response:
    payload = await request.json()
    return web.json_response({"stored": 1 if payload else 0, "duplicates": 0})


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/webhooks/{channel_id}", _webhook)
    app.router.add_get("/healthz", _health)
    return app


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.bench.bare_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    web.run_app(create_app(), host=args.host, port=args.port, loop=_new_loop(),
                access_log=None, print=lambda line: print(line, file=sys.stderr))
    return 0


if __name__ == "__main__":
    sys.exit(main())
