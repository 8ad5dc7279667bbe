"""The edge state file (``gateway.edge_state``): created when missing, refused when corrupted or
foreign, written atomically and merged between processes; the roster book's floor from it.

P35 across restarts: the marks outside the database are what lets a restarted edge recognise
crypto state restored from a backup (the pipeline tests restore a database for real)."""

from __future__ import annotations

import base64
import json
import os
import secrets
import uuid
from pathlib import Path

import pytest

from gateway.config import Config, ConfigError, load_config, parse_config
from gateway.edge import EdgeKeys, RosterBook, StoredRoster
from gateway.edge_state import FORMAT, EdgeMarks, write_atomically
from gateway.roster_admin import build_roster, new_admin_key, signed_roster


def _key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _config(state_path: Path | str, storage_key: str | None = None) -> Config:
    return parse_config({"edge": {"identity_key": _key(), "storage_key": storage_key or _key(),
                                  "blind_index_key": _key(), "state_path": str(state_path)}})


async def test_a_missing_state_file_is_created_and_marks_persist(tmp_path: Path) -> None:
    path = tmp_path / "state" / "edge-state.json"
    config = _config(path)
    marks = EdgeMarks.open(config)
    assert path.exists() and (path.stat().st_mode & 0o777) == 0o600
    assert json.loads(path.read_text())["format"] == FORMAT
    assert (marks.roster_floor("acme"), marks.session_floor("acme", "d1")) == (0, 0)
    marks.start()
    marks.advance("acme", 3, [("d1", 7), ("d2", 2)])
    marks.advance("acme", 2, [("d1", 5)])  # lower values never lower a mark
    await marks.stop()
    assert marks.writes == 1  # coalesced into one write
    again = EdgeMarks.open(config)
    assert again.roster_floor("acme") == 3
    assert (again.session_floor("acme", "d1"), again.session_floor("acme", "d2")) == (7, 2)
    assert again.session_floor("beta", "d1") == 0
    assert not list(tmp_path.glob("state/.*.tmp"))  # no temporary file left behind


@pytest.mark.parametrize("damage", ["truncated", "not json", "edited mark", "other key",
                                    "unknown field", "other format"])
def test_a_corrupted_state_file_refuses_to_start_with_a_clear_error(
        tmp_path: Path, damage: str) -> None:
    path = tmp_path / "edge-state.json"
    storage_key = _key()
    marks = EdgeMarks.open(_config(path, storage_key))
    marks.advance("acme", 4, [("d1", 9)])
    marks._write(marks.marks)
    text = path.read_text()
    document = json.loads(text)
    if damage == "truncated":
        text = text[: len(text) // 2]
    elif damage == "not json":
        text = "\x00\x01garbage"
    elif damage == "edited mark":  # an attacker lowering a mark to hide a rollback
        document["marks"]["sessions"]["acme"]["d1"] = 1
        text = json.dumps(document)
    elif damage == "unknown field":
        document["marks"]["extra"] = {}
        text = json.dumps(document)
    elif damage == "other format":
        document["format"] = "unigate-edge-state/99"
        text = json.dumps(document)
    path.write_text(text)
    config = _config(path, storage_key) if damage != "other key" else _config(path)
    with pytest.raises(ConfigError, match=r"edge state file .*edge-state\.json is corrupted"):
        EdgeMarks.open(config)


def test_an_unreadable_state_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "edge-state.json"
    path.mkdir()  # a folder where the file should be
    with pytest.raises(ConfigError, match="cannot read the edge state file"):
        EdgeMarks.open(_config(path))


def test_without_a_state_path_the_marks_live_in_memory_only(tmp_path: Path) -> None:
    config = _config("")
    marks = EdgeMarks.open(config)
    marks.advance("acme", 2, [("d1", 3)])
    assert marks.path is None and marks.roster_floor("acme") == 2
    assert not list(tmp_path.iterdir())


async def test_processes_sharing_a_state_file_merge_their_marks(tmp_path: Path) -> None:
    path = tmp_path / "edge-state.json"
    storage_key = _key()
    first, second = EdgeMarks.open(_config(path, storage_key)), EdgeMarks.open(
        _config(path, storage_key))
    first.start()
    second.start()
    first.advance("acme", 5, [("d1", 10), ("d2", 1)])
    await first.stop()
    second.advance("acme", 4, [("d1", 3), ("d3", 6)])
    second.advance("beta", 1, [])
    await second.stop()
    merged = EdgeMarks.open(_config(path, storage_key)).marks
    assert merged.rosters == {"acme": 5, "beta": 1}
    assert merged.sessions == {"acme": {"d1": 10, "d2": 1, "d3": 6}, "beta": {}}


def test_write_atomically_replaces_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"old contents that are longer")
    write_atomically(path, b"new")
    assert path.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_the_state_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    config_file = tmp_path / "conf" / "unigate.toml"
    config_file.parent.mkdir()
    config_file.write_text('[edge]\nstate_path = "state/edge.json"\n')
    assert load_config(config_file, {}).edge.state_path == str(
        tmp_path / "conf" / "state" / "edge.json")
    absolute = tmp_path / "elsewhere.json"
    assert load_config(config_file, {"UNIGATE__EDGE__STATE_PATH": f'"{absolute}"'}
                       ).edge.state_path == str(absolute)


def test_the_roster_book_refuses_rosters_below_the_floor() -> None:
    keys = EdgeKeys(secrets.token_bytes(32), secrets.token_bytes(32), secrets.token_bytes(32))
    admin = new_admin_key()
    device = (str(uuid.uuid4()), secrets.token_bytes(32), "agent")

    def row(version: int) -> StoredRoster:
        body = signed_roster(build_roster("acme", version, keys.identity_key, [device]), admin)
        return StoredRoster(body.version, body.payload, body.signature)

    floors = {"acme": 3}
    book = RosterBook({"acme": admin.ed25519}, keys.identity_key, lambda t: floors.get(t, 0))
    assert book.accept("acme", [row(2), row(1)]) is None  # restored: older than the mark
    assert book.current("acme") is None
    assert book.accept("acme", [row(3), row(2)]).version == 3  # type: ignore[union-attr]
    assert book.accept("acme", [row(4)]).version == 4  # type: ignore[union-attr]
    # a tenant without a mark takes what verifies, as before
    assert RosterBook({"acme": admin.ed25519}, keys.identity_key, lambda _t: 0).accept(
        "acme", [row(1)]).version == 1  # type: ignore[union-attr]

