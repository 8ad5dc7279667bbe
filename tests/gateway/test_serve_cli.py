"""`unigate migrate` against a fresh embedded Postgres (the path `make demo` takes), and the
exit codes of both subcommands on a bad config."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.store.migrate import load_migrations


def test_migrate_on_embedded_postgres_applies_then_reports(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
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
