"""docker-compose.yml: Postgres, a one-shot migration, two gateway replicas and a loadgen
profile. There is no Docker engine here, so the file is read with a small YAML reader
(:mod:`tests.gateway.yaml_subset`) and every part that refers to this project is checked
against it: commands parse with the real CLI, environment overrides are valid config paths,
the inline Dockerfile copies what exists."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from gateway import cli
from gateway.config import apply_env, parse_config
from tests.gateway.yaml_subset import YamlSubsetError, load

SERVICES = {"postgres", "migrate", "gateway-a", "gateway-b", "loadgen"}
VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?::\?[^}]*)?\}")


@pytest.fixture(scope="module")
def compose(repo_root_path: Path) -> dict[str, Any]:
    document = load((repo_root_path / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def repo_root_path() -> Path:
    return Path(__file__).resolve().parents[2]


def _interpolate(value: str) -> str:
    return VARIABLE.sub(lambda m: {"POSTGRES_PASSWORD": "pw-from-env"}[m.group("name")], value)


def _gateways(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items()
            if s.get("command") == ["unigate", "serve"]}


def test_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES


def test_two_gateway_replicas_on_one_database(compose: dict[str, Any]) -> None:
    gateways = _gateways(compose)
    assert set(gateways) == {"gateway-a", "gateway-b"}
    urls = {_interpolate(g["environment"]["DATABASE_URL"]) for g in gateways.values()}
    assert len(urls) == 1  # the same database: they share nothing else
    assert "@postgres:5432/" in urls.pop()
    host_ports = [port.rsplit(":", 1)[0] for g in gateways.values() for port in g["ports"]]
    assert len(set(host_ports)) == len(host_ports) == 2  # each replica reachable on its own
    for gateway in gateways.values():
        assert all(port.startswith("127.0.0.1:") for port in gateway["ports"])  # loopback
        assert gateway["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
        assert "/readyz" in " ".join(gateway["healthcheck"]["test"])
        assert gateway["image"] == compose["services"]["migrate"]["image"]


def test_migration_runs_once_after_postgres_is_healthy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["unigate", "migrate"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    for gateway in _gateways(compose).values():
        assert gateway["environment"]["UNIGATE__DATABASE__AUTO_MIGRATE"] == "false"


def test_only_the_load_generator_is_behind_a_profile(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert service.get("profiles") == (["loadgen"] if name == "loadgen" else None), name
    loadgen = compose["services"]["loadgen"]
    assert "UNIGATE_BENCH_DATABASE_URL" in loadgen["environment"]
    assert loadgen["environment"]["UNIGATE_BENCH_DATABASE_URL"].endswith("@postgres:5432/postgres")


def test_every_command_is_a_valid_unigate_command(compose: dict[str, Any]) -> None:
    parser = cli.build_parser()
    for name, service in compose["services"].items():
        command = service.get("command")
        if command is None:
            continue
        assert command[0] == "unigate", name
        args = parser.parse_args(command[1:])
        assert callable(args.func), name


def test_environment_overrides_are_valid_config(compose: dict[str, Any]) -> None:
    """What the containers set through the environment is accepted by the real config loader
    (a typo in a UNIGATE__ path would stop every replica at startup)."""
    for name in ("migrate", "gateway-a", "gateway-b"):
        env = {k: _interpolate(str(v)) for k, v in compose["services"][name]["environment"].items()}
        data: dict[str, Any] = {}
        apply_env(data, env)
        config = parse_config(data)
        assert config.server.host == "0.0.0.0" and config.server.port == 8080
        assert config.database.url is not None
        assert config.logging.format == "json"
        assert env["UNIGATE_CONFIG"] == compose["services"][name]["configs"][0]["target"]


def test_inline_dockerfile_builds_from_this_repository(
        compose: dict[str, Any], repo_root_path: Path) -> None:
    build = compose["services"]["gateway-a"]["build"]
    assert build["context"] == "."
    dockerfile = build["dockerfile_inline"]
    copies = [line.split()[1:-1] for line in dockerfile.splitlines() if line.startswith("COPY")]
    for sources in copies:
        for source in sources:
            assert (repo_root_path / source).exists(), source
    copied = {s for sources in copies for s in sources}
    assert {"pyproject.toml", "crypto", "adapters", "gateway"} <= copied
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE)  # not as root
    assert 'CMD ["unigate", "serve"]' in dockerfile


def test_config_file_and_secrets_stay_out_of_the_file(compose: dict[str, Any]) -> None:
    assert compose["configs"]["unigate"]["file"] == "./unigate.toml"
    for name in ("migrate", "gateway-a", "gateway-b"):
        service = compose["services"][name]
        config_dir = service["configs"][0]["target"].rsplit("/", 1)[0]
        # secret files named relative to the config file (docs/example-config.toml) resolve
        assert f"./secrets:{config_dir}/secrets:ro" in service["volumes"]
    for service in compose["services"].values():
        for value in service.get("environment", {}).values():
            for secret_word in ("password", "secret", "token"):
                text = str(value).lower()
                if secret_word in text:  # only ever as a variable reference
                    assert "${" in str(value), value
    assert "${POSTGRES_PASSWORD:?" in compose["services"]["postgres"]["environment"][
        "POSTGRES_PASSWORD"]


# --------------------------------------------------------------------------- the reader
def test_reader_anchors_merges_and_literals() -> None:
    document = load(
        "base: &base\n"
        "  image: x\n"
        "  env: &env\n"
        "    A: '1'\n"
        "svc:\n"
        "  <<: *base\n"
        "  image: y  # explicit keys win over merged ones\n"
        "  env:\n"
        "    <<: *env\n"
        "    B: \"two\"\n"
        "  list:\n"
        "    - source: s\n"
        "      target: t\n"
        "    - plain\n"
        "  flow: [\"a\", b, 3]\n"
        "  text: |\n"
        "    line 1\n"
        "      indented\n"
        "  count: 30\n"
        "  on: true\n")
    assert document["svc"] == {
        "image": "y", "env": {"A": "1", "B": "two"},
        "list": [{"source": "s", "target": "t"}, "plain"], "flow": ["a", "b", 3],
        "text": "line 1\n  indented\n", "count": 30, "on": True}


@pytest.mark.parametrize("text", [
    "a: 1\na: 2\n",  # duplicate key
    "a: *missing\n",  # unknown alias
    "a: {b: 1}\n",  # flow mappings are outside the subset
    "a:\n\tb: 1\n",  # tab indentation
    "a: 1\n  b: 2\n",  # bad indentation
])
def test_reader_refuses_what_it_does_not_understand(text: str) -> None:
    with pytest.raises(YamlSubsetError):
        load(text)
