"""`unigate migrate` against a fresh embedded Postgres (the path `make demo` takes), and the
exit codes of both subcommands on a bad config."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest

from gateway import serve_cli
from gateway.cli import main
from gateway.store.migrate import load_migrations


def test_migrate_on_embedded_postgres_applies_then_reports(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # keep the test session's logging setup (configure() on the captured stderr would leave
    # every later test logging to a closed file)
    monkeypatch.setattr(serve_cli, "configure", lambda *_args, **_kwargs: None)
    config = tmp_path / "unigate.toml"
    config.write_text(f'[database]\ndata_dir = "{tmp_path / "pgdata"}"\n'
                      '[logging]\nformat = "json"\nlevel = "warning"\n')
    latest = load_migrations()[-1].version
    assert main(["migrate", "--config", str(config)]) == 0
    assert f"schema v{latest} (this build knows v{latest}): applied v1" in capsys.readouterr().out
    assert main(["migrate", "--config", str(config)]) == 0
    assert "nothing to apply" in capsys.readouterr().out
    assert main(["migrate", "--status", "--config", str(config)]) == 0
    assert "0 pending" in capsys.readouterr().out
    assert (tmp_path / "pgdata" / "PG_VERSION").is_file()


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_a_bad_config_exits_2_naming_the_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    config = tmp_path / "unigate.toml"
    config.write_text("[server]\nport = 'eighty'\n")
    assert main([command, "--config", str(config)]) == 2
    assert "$.server.port" in capsys.readouterr().err


def test_serve_refuses_a_corrupted_edge_state_file_before_starting(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # keep the test session's logging setup (serve configures caching loggers on stderr)
    monkeypatch.setattr(serve_cli, "configure", lambda *_args, **_kwargs: None)
    keys = "\n".join(f'{name} = "{base64.b64encode(secrets.token_bytes(32)).decode()}"'
                     for name in ("identity_key", "storage_key", "blind_index_key"))
    state = tmp_path / "edge-state.json"
    state.write_text("{not json")
    config = tmp_path / "unigate.toml"
    config.write_text(f'[database]\ndata_dir = "{tmp_path / "pgdata"}"\n'
                      f'[edge]\n{keys}\nstate_path = "edge-state.json"\n')
    assert main(["serve", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"edge state file {state} is corrupted" in err and "Restore it" in err
    assert not (tmp_path / "pgdata").exists()  # nothing was started
