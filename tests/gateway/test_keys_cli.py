"""``unigate keys``: admin key creation, edge keys, and a signed roster the gateway accepts."""

from __future__ import annotations

import base64
import json
import tomllib
import uuid
from pathlib import Path

import msgspec
import pytest

from crypto import IdentityKeyPair
from gateway.cli import main
from gateway.config import parse_config
from gateway.edge import EdgeKeys
from gateway.roster_admin import build_roster, load_admin_key
from gateway.wire import WireError, roster_signing_bytes, sign_roster, verify_roster


def test_admin_create_then_sign_a_roster(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "admin.key"
    assert main(["keys", "admin-create", "--out", str(key_file)]) == 0
    public = capsys.readouterr().out.split('"')[1]
    admin = load_admin_key(key_file)
    assert base64.b64decode(public) == admin.ed25519
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert main(["keys", "admin-create", "--out", str(key_file)]) == 1  # never overwritten

    device, identity = str(uuid.uuid4()), IdentityKeyPair.generate().ed25519
    edge = IdentityKeyPair.generate().ed25519
    out = tmp_path / "roster.json"
    assert main(["keys", "sign-roster", "--admin-key", str(key_file), "--tenant", "acme",
                 "--version", "3", "--edge-identity", base64.b64encode(edge).decode(),
                 "--device", f"{device}={base64.b64encode(identity).decode()}:bot",
                 "--out", str(out)]) == 0
    body = json.loads(out.read_text())
    roster = verify_roster(base64.b64decode(body["payload"]),
                           base64.b64decode(body["signature"]), admin.ed25519, "acme")
    assert (roster.version, roster.edge_identity) == (3, edge)
    assert [(d.device_id, d.identity_key, d.kind) for d in roster.devices] == [
        (device, identity, "bot")]
    with pytest.raises(WireError):
        verify_roster(base64.b64decode(body["payload"]), base64.b64decode(body["signature"]),
                      IdentityKeyPair.generate().ed25519, "acme")
    with pytest.raises(WireError):
        verify_roster(base64.b64decode(body["payload"]), base64.b64decode(body["signature"]),
                      admin.ed25519, "other-tenant")


def test_roster_device_ids_have_one_spelling() -> None:
    admin = IdentityKeyPair.generate()
    device = uuid.uuid4()
    identity, edge = IdentityKeyPair.generate().ed25519, IdentityKeyPair.generate().ed25519
    # the admin tool writes the canonical spelling whatever it was given
    roster = build_roster("acme", 1, edge, [(str(device).upper(), identity, "agent")])
    assert roster.devices[0].device_id == str(device)
    for spelling in (str(device).upper(), "{" + str(device) + "}", device.hex):
        odd = msgspec.structs.replace(roster, devices=[msgspec.structs.replace(
            roster.devices[0], device_id=spelling)])
        with pytest.raises(WireError):
            sign_roster(odd, admin)
        payload = msgspec.msgpack.encode(odd)  # signed by hand, as another tool might
        with pytest.raises(WireError):
            verify_roster(payload, admin.sign(roster_signing_bytes(payload)), admin.ed25519,
                          "acme")


def test_a_malformed_device_spec_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "admin.key"
    assert main(["keys", "admin-create", "--out", str(key_file)]) == 0
    assert main(["keys", "sign-roster", "--admin-key", str(key_file), "--tenant", "acme",
                 "--version", "1", "--edge-identity", base64.b64encode(bytes(32)).decode(),
                 "--device", "not-a-uuid=AAAA"]) == 1


def test_edge_create_gives_a_loadable_edge_section(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    assert main(["keys", "edge-create"]) == 0
    edge = tomllib.loads(capsys.readouterr().out)["edge"]
    config = parse_config({"edge": edge})
    keys = EdgeKeys.from_config(config)
    config_file = tmp_path / "unigate.toml"
    config_file.write_text("[edge]\n" + "".join(f'{k} = "{v}"\n' for k, v in edge.items()))
    assert main(["keys", "edge-public", "--config", str(config_file)]) == 0
    assert base64.b64decode(capsys.readouterr().out.strip()) == keys.identity_key
