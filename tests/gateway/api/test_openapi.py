"""``GET /openapi.json``: every route the app registers is documented (and nothing else), the
document is well-formed OpenAPI 3.1 whose every ``$ref`` resolves, and live answers of a
running gateway decode strictly into the schemas documented for their status code."""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from aiohttp import web

from gateway import wire
from gateway.api import openapi
from gateway.app import create_app
from gateway.app_keys import DATABASE
from gateway.client import DeviceClient
from gateway.client.device import LocalDevice
from gateway.config import parse_config
from gateway.roster_admin import build_roster, signed_roster
from gateway.sandbox import LocalGateway
from gateway.sandbox.traffic import signed_webhook
from gateway.store import tokens
from tests.gateway.pipeline.support import collect

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _registered(app: web.Application, prefix: str = "") -> Iterator[tuple[str, str]]:
    """``(method, path template)`` of every route, sub-apps included (HEAD comes with GET)."""
    for resource in app.router.resources():
        sub = getattr(resource, "_app", None)
        if sub is not None:
            yield from _registered(sub, "")
            continue
        for route in resource:
            if route.method != "HEAD":
                yield route.method.lower(), prefix + resource.canonical


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi.build_document()


def test_every_registered_route_is_documented_and_nothing_else(
        document: dict[str, Any]) -> None:
    registered = set(_registered(create_app(parse_config({}))))
    documented = {(method, path) for path, item in document["paths"].items()
                  for method in item if method in METHODS}
    assert registered, "the app registers no routes?"
    assert registered - documented == set(), "routes missing from the OpenAPI document"
    assert documented - registered == set(), "documented routes the app does not have"


def _refs(node: Any, where: str = "#") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield where, value
            elif key == "mapping" and isinstance(value, dict):  # discriminator targets
                yield from ((f"{where}/mapping", target) for target in value.values())
            else:
                yield from _refs(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _refs(value, f"{where}/{i}")


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local refs expected: {ref}"
    node: Any = document
    for raw in ref[2:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"unresolved $ref {ref}"
        node = node[part]
    return node


def test_document_structure_and_refs(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] and document["info"]["version"]
    refs = list(_refs(document))
    assert len(refs) > 50
    for _, ref in refs:
        _resolve(document, ref)
    # every component schema is used somewhere (no stale leftovers)
    used = {ref for _, ref in refs}
    for name in document["components"]["schemas"]:
        assert f"#/components/schemas/{name}" in used, f"unused schema {name}"
    tags = {t["name"] for t in document["tags"]}
    schemes = set(document["components"]["securitySchemes"])
    operation_ids: list[str] = []
    for path, item in document["paths"].items():
        assert path.startswith("/")
        path_params = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        for method, op in ((m, o) for m, o in item.items() if m in METHODS):
            operation_ids.append(op["operationId"])
            assert op["summary"] and set(op["tags"]) <= tags, (method, path)
            assert op["responses"], (method, path)
            for status in op["responses"]:
                assert re.fullmatch(r"[1-5]\d\d", status), (method, path, status)
            for requirement in op["security"]:
                assert set(requirement) <= schemes
            declared = path_params | {p["name"] for p in op.get("parameters", [])
                                      if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), (method, path)
            for param in op.get("parameters", []):
                assert param["in"] in {"path", "query", "header", "cookie"}
                assert param["in"] != "path" or param["required"] is True
    assert len(operation_ids) == len(set(operation_ids)), "operationIds must be unique"
    # the document is JSON as served
    assert json.loads(json.dumps(document)) == document


def test_schemas_come_from_the_wire_structs(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    registration = schemas["DeviceRegistration"]
    assert set(registration["required"]) == {"identity_key", "signed_prekey", "last_resort"}
    assert registration["properties"]["identity_key"]["contentEncoding"] == "base64"
    frames = document["paths"]["/v1/stream"]["get"]["x-unigate-frames"]
    outgoing = {r["$ref"].rsplit("/", 1)[1] for r in frames["server_to_device"]["oneOf"]}
    assert outgoing == {"Challenge", "Ready", "EnvelopeFrame", "ErrorFrame"}
    assert schemas["EnvelopeFrame"]["properties"]["t"] == {"enum": ["env"]}
    assert set(frames["close_codes"]) >= {"4400", "4401", "4409"}


# --------------------------------------------------------------------------- live answers
_BY_NAME = {cls.__name__: cls for cls in openapi.RESPONSE_BODIES}
_WIRE = {name: cls for name, cls in vars(wire).items()
         if isinstance(cls, type) and issubclass(cls, msgspec.Struct)}


def _documented_type(document: dict[str, Any], method: str, path: str, status: int) -> type:
    responses = document["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} answered undocumented {status}"
    response = responses[str(status)]
    if "$ref" in response:
        response = _resolve(document, response["$ref"])
    ref = response["content"]["application/json"]["schema"]["$ref"]
    name = ref.rsplit("/", 1)[1]
    return _BY_NAME.get(name) or _WIRE[name]


class _Checker:
    def __init__(self, gateway: LocalGateway, document: dict[str, Any]) -> None:
        self.gateway, self.document = gateway, document
        self.checked: set[tuple[str, str, int]] = set()

    async def call(self, method: str, template: str, expected: int, *,
                   path: str | None = None, token: str | None = None,
                   body: object = None, data: bytes | io.BytesIO | None = None,
                   params: dict[str, str] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if body is not None:
            data, headers["Content-Type"] = msgspec.json.encode(body), "application/json"
        url = self.gateway.base_url + (path or template)
        async with self.gateway.session.request(method, url, data=data, headers=headers,
                                                params=params) as response:
            raw = await response.read()
            assert response.status == expected, (method, template, response.status, raw)
            assert response.headers.get("X-Request-Id")
        answer_type = _documented_type(self.document, method, template, expected)
        self.checked.add((method, template, expected))
        return msgspec.json.decode(raw, type=answer_type, strict=True)


async def test_live_answers_match_the_documented_schemas(
        gateway: LocalGateway, agent: DeviceClient, document: dict[str, Any]) -> None:
    check = _Checker(gateway, document)
    db = gateway.app[DATABASE]
    assert (await check.call("get", "/healthz", 200)).status == "ok"
    assert (await check.call("get", "/readyz", 200)).status == "ready"
    async with gateway.session.get(f"{gateway.base_url}/openapi.json") as response:
        assert response.status == 200
        assert await response.json() == document

    channel = "demo-whatsapp"
    template = "/webhooks/{channel_id}"
    hook = gateway.text_payload(channel, "15550002222", "documented")
    signed = signed_webhook("whatsapp", gateway.channels[channel].signing_secret, hook)
    async with gateway.session.post(gateway.webhook_url(channel), data=signed.body,
                                    headers=signed.headers) as response:
        assert response.status == 200
        answer = msgspec.json.decode(await response.read(),
                                     type=_documented_type(document, "post", template, 200))
        assert answer.stored == 1
    await check.call("post", template, 404, path="/webhooks/nope", data=b"{}")
    await check.call("get", template, 405, path="/webhooks/demo-telegram")
    crc = await check.call("get", template, 200, path="/webhooks/demo-x",
                           params={"crc_token": "abc"})
    assert crc.response_token.startswith("sha256=")
    big = io.BytesIO(b"{" + b" " * (gateway.config.server.webhook_max_bytes + 1) + b"}")
    too_large = await check.call("post", template, 413, path=f"/webhooks/{channel}", data=big)
    assert too_large.error.limit == gateway.config.server.webhook_max_bytes

    nonce = await check.call("post", "/v1/auth/challenge", 200,
                             body={"tenant": "demo", "device_id": agent.device_id})
    assert len(nonce.nonce) == 32
    await check.call("post", "/v1/auth/challenge", 401,
                     body={"tenant": "demo", "device_id": str(uuid.uuid4())})
    await check.call("post", "/v1/auth/session", 400, body={"tenant": "demo"})

    _, enroll = await tokens.create_token(db, "demo", "enroll")
    _, admin = await tokens.create_token(db, "demo", "admin")
    newcomer = LocalDevice("demo", gateway.admin_keys["demo"].ed25519)
    enrolled = await check.call("post", "/v1/devices", 201, token=enroll,
                                body=newcomer.registration())
    assert enrolled.tenant == "demo" and not enrolled.pool_low
    await check.call("post", "/v1/devices", 200, token=enroll, body=newcomer.registration())
    listed = await check.call("get", "/v1/devices", 200, token=admin)
    assert enrolled.device_id in {d.device_id for d in listed.devices}
    await check.call("get", "/v1/devices", 403, token=enroll)

    session = await agent.http.token()
    pool = await check.call("get", "/v1/devices/me/prekeys", 200, token=session)
    assert pool.one_time_prekeys > 0
    await check.call("post", "/v1/devices/me/prekeys", 200, token=session, body={})
    bundle_path = "/v1/devices/{device_id}/bundle"
    bundle = await check.call("post", bundle_path, 200, token=session,
                              path=f"/v1/devices/{enrolled.device_id}/bundle")
    assert bundle.device_id == enrolled.device_id
    await check.call("post", bundle_path, 404, token=session,
                     path=f"/v1/devices/{uuid.uuid4()}/bundle")
    await check.call("get", "/v1/devices/me/prekeys", 401, token="uds1.forged")

    roster = build_roster("demo", 99, gateway.pipeline.keys.identity_key,
                          [(agent.device_id, agent.identity_key, "agent")])
    published = await check.call("post", "/v1/rosters/{tenant}", 201, path="/v1/rosters/demo",
                                 body=signed_roster(roster, gateway.admin_keys["demo"]))
    assert published.version == 99
    await check.call("post", "/v1/rosters/{tenant}", 409, path="/v1/rosters/demo",
                     body=signed_roster(roster, gateway.admin_keys["demo"]))
    newest = await check.call("get", "/v1/roster", 200, token=session)
    assert newest.version == 99
    await check.call("get", "/v1/roster/{version}", 404, token=session, path="/v1/roster/7")

    assert len(await collect(agent, 1)) == 1
    listing = await check.call("get", "/v1/conversations", 200, token=session)
    conversation = listing.conversations[0].conversation_id
    history_path = "/v1/conversations/{conversation_id}/envelopes"
    page = await check.call("get", history_path, 200, token=session,
                            path=f"/v1/conversations/{conversation}/envelopes")
    assert page.items and page.items[0].seq == 1
    await check.call("get", history_path, 400, token=session, params={"limit": "0"},
                     path=f"/v1/conversations/{conversation}/envelopes")
    await check.call("get", history_path, 404, token=session,
                     path=f"/v1/conversations/{uuid.uuid4()}/envelopes")
    assert len(check.checked) >= 25
