"""The app factory over real HTTP and a real database: health, readiness, metrics, the error
mapping (JSON, request id, never internals), per-surface body limits, config sync at start."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.app_keys import DATABASE
from gateway.config import Config, parse_config
from gateway.errors import BadRequest, StoreError, Unavailable
from gateway.logging import configure
from gateway.store import tenants
from gateway.store.migrate import load_migrations

from .conftest import MakeAppClient

CANARY = "CANARY-sk_live_+15557654321"
LATEST = load_migrations()[-1].version


def error_routes(app: web.Application) -> None:
    async def bad(_r: web.Request) -> web.Response:
        raise BadRequest("payload is not JSON")

    async def busy(_r: web.Request) -> web.Response:
        raise Unavailable(retry_after=3)

    async def crash(_r: web.Request) -> web.Response:
        raise RuntimeError(CANARY)

    async def store(_r: web.Request) -> web.Response:
        raise StoreError(f"internal detail {CANARY}")

    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"bytes": len(await request.read())})

    app.router.add_get("/bad", bad)
    app.router.add_get("/busy", busy)
    app.router.add_get("/crash", crash)
    app.router.add_get("/store", store)
    app.router.add_post("/echo", echo)


def api_routes(app: web.Application) -> None:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"bytes": len(await request.read())})

    app.router.add_post("/echo", echo)


@pytest.fixture
def limited_config(make_config_data: Callable[..., dict[str, Any]]) -> Config:
    return parse_config(make_config_data(server={"webhook_max_bytes": 4096,
                                                 "api_max_bytes": 1024}))


@pytest.fixture
async def client(make_app_client: MakeAppClient, limited_config: Config) -> TestClient:
    return await make_app_client(limited_config, extra_routes={"/webhooks": [error_routes],
                                                               "/v1": [api_routes]})


async def test_healthz_answers_with_a_request_id(app_client: TestClient) -> None:
    response = await app_client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}
    assert len(response.headers["X-Request-Id"]) == 32


async def test_a_valid_caller_request_id_is_echoed_and_a_bad_one_replaced(
        app_client: TestClient) -> None:
    good = await app_client.get("/healthz", headers={"X-Request-Id": "lb-trace-0001"})
    assert good.headers["X-Request-Id"] == "lb-trace-0001"
    bad = await app_client.get("/healthz", headers={"X-Request-Id": f"x {CANARY}"})
    assert bad.headers["X-Request-Id"] != f"x {CANARY}" and CANARY not in bad.headers[
        "X-Request-Id"]


async def test_readyz_reports_database_and_schema(app_client: TestClient) -> None:
    response = await app_client.get("/readyz")
    assert response.status == 200
    assert await response.json() == {"status": "ready", "database": "ok",
                                     "schema_version": LATEST, "schema_latest": LATEST}


async def test_readyz_is_503_while_migrations_are_pending(
        db_url: str, make_app_client: MakeAppClient,
        make_config_data: Callable[..., dict[str, Any]]) -> None:
    conn = await asyncpg.connect(db_url)
    await conn.execute("DELETE FROM schema_migrations WHERE version = $1", LATEST)
    await conn.close()
    config = parse_config(make_config_data(database={"auto_migrate": False}))
    client = await make_app_client(config)
    response = await client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert (body["status"], body["schema_version"]) == ("unavailable", LATEST - 1)
    assert (await client.get("/healthz")).status == 200  # alive, just not ready


async def test_readyz_is_503_when_the_database_is_gone(app_client: TestClient) -> None:
    app_client.app[DATABASE].pool.terminate()
    response = await app_client.get("/readyz")
    assert response.status == 503
    assert await response.json() == {"status": "unavailable", "database": "unreachable"}


async def test_metrics_count_requests_per_route_and_show_the_pool(
        app_client: TestClient) -> None:
    await app_client.get("/healthz")
    await app_client.get("/healthz")
    await app_client.get("/no/such/page")
    response = await app_client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    text = await response.text()
    assert 'unigate_http_requests_total{method="GET",route="/healthz",status="200"} 2.0' in text
    assert 'unigate_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert 'unigate_http_request_duration_seconds_count{method="GET",route="/healthz"} 2.0' in text
    assert 'unigate_db_pool_connections{state="max"} 4.0' in text
    assert "no/such/page" not in text  # paths never become labels


async def test_gateway_errors_become_json_with_their_status(client: TestClient) -> None:
    response = await client.get("/webhooks/bad")
    assert response.status == 400
    body = await response.json()
    assert body == {"error": {"code": "bad_request", "reason": "payload is not JSON",
                              "request_id": response.headers["X-Request-Id"]}}
    busy = await client.get("/webhooks/busy")
    assert busy.status == 503 and busy.headers["Retry-After"] == "3"
    assert (await busy.json())["error"]["retry_after"] == 3


@pytest.mark.parametrize(("path", "reason"), [("/webhooks/crash", "internal error"),
                                              ("/webhooks/store", "database error")])
async def test_internal_failures_are_a_bare_500(client: TestClient, path: str,
                                                reason: str) -> None:
    response = await client.get(path)
    assert response.status == 500
    text = await response.text()
    assert CANARY not in text and "Traceback" not in text
    body = json.loads(text)["error"]
    assert (body["code"], body["reason"]) == ("internal_error", reason)  # class default only


async def test_routing_errors_use_the_same_shape(client: TestClient) -> None:
    missing = await client.get("/nope")
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "not_found"
    wrong = await client.get("/v1/echo")
    assert wrong.status == 405 and wrong.headers["Allow"] == "POST"
    assert (await wrong.json())["error"]["code"] == "method_not_allowed"


async def test_each_surface_has_its_own_body_limit(client: TestClient) -> None:
    body = b"x" * 2000
    ok = await client.post("/webhooks/echo", data=body)
    assert ok.status == 200 and await ok.json() == {"bytes": 2000}
    too_big = await client.post("/v1/echo", data=body)  # the API surface allows 1024
    assert too_big.status == 413
    error = (await too_big.json())["error"]
    assert (error["code"], error["limit"]) == ("payload_too_large", 1024)
    over = await client.post("/webhooks/echo", data=b"x" * 5000)
    assert over.status == 413


async def test_a_chunked_body_over_the_limit_is_cut_off(client: TestClient) -> None:
    async def chunks() -> Any:
        for _ in range(10):
            yield b"y" * 1000

    response = await client.post("/webhooks/echo", data=chunks())
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"


async def test_request_lines_log_routes_not_paths(app_client: TestClient) -> None:
    out = io.StringIO()
    configure("debug", "json", out, cache=False)
    try:
        await app_client.get(f"/healthz?hub.verify_token={CANARY}")
        await app_client.get(f"/{CANARY}")
    finally:
        configure("info", "json", io.StringIO(), cache=False)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    handled = [r for r in records if r["event"] == "request_handled"]
    assert [(r["route"], r["status"]) for r in handled] == [("/healthz", 200), ("unmatched", 404)]
    assert CANARY not in out.getvalue()


async def test_configured_tenants_and_channels_are_synced_at_start(
        make_app_client: MakeAppClient,
        make_config_data: Callable[..., dict[str, Any]]) -> None:
    raw = make_config_data(adapters={"enabled": ["telegram"]})
    raw["tenants"] = {"acme": {"channels": {"acme-tg": {"adapter": "telegram",
                                                         "account_id": "42"}}}}
    client = await make_app_client(parse_config(raw))
    db = client.app[DATABASE]
    assert [c.channel_id for c in await tenants.list_channels(db, "acme")] == ["acme-tg"]


def test_unknown_surfaces_are_refused(gateway_config: Config) -> None:
    with pytest.raises(ValueError, match="no such API surface"):
        create_app(gateway_config, extra_routes={"/admin": []})
