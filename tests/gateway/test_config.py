"""Config: validation errors name the path, secrets are redacted, placeholders refused,
env and *_file sources, and the generated example stays in sync and loads."""

from __future__ import annotations

import base64
import secrets
import tomllib
from pathlib import Path
from typing import Any

import pytest

from adapters.capabilities import RateLimit
from gateway.config import Config, ConfigError, Secret, load_config, parse_config
from gateway.config_example import render_example
from gateway.pipeline.egress import EgressSettings, egress_settings

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "example-config.toml"


def key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def edge() -> dict[str, str]:
    return {"identity_key": key(), "storage_key": key(), "blind_index_key": key()}


def with_channel(**channel: Any) -> dict[str, Any]:
    return {
        "edge": edge(),
        "adapters": {"enabled": ["whatsapp"]},
        "tenants": {"acme": {"channels": {"acme-wa": {
            "adapter": "whatsapp", "account_id": "1001", **channel}}}},
    }


def test_the_egress_section_becomes_the_workers_settings() -> None:
    config = parse_config({
        "adapters": {"enabled": ["whatsapp"]},
        "egress": {"batch": 4, "poll_s": 0.2, "max_attempts": 3, "rate_limits": {"whatsapp": [
            {"scope": "account", "limit": 250, "per_s": 1.0},
            {"scope": "recipient", "limit": 1, "per_s": 6.0}]}}})
    settings = egress_settings(config.egress)
    assert (settings.batch, settings.poll_s, settings.max_attempts) == (4, 0.2, 3)
    assert settings.rate_limits == {"whatsapp": (
        RateLimit(scope="account", limit=250, per_s=1.0),
        RateLimit(scope="recipient", limit=1, per_s=6.0))}
    assert egress_settings(Config().egress) == EgressSettings()


def test_defaults_are_a_valid_config() -> None:
    config = parse_config({})
    assert config == Config()
    assert config.database.url is None and config.server.port == 8080


@pytest.mark.parametrize(("data", "path"), [
    ({"server": {"prot": 1}}, "`$.server`"),
    ({"server": {"port": "eighty"}}, "`$.server.port`"),
    ({"server": {"port": 70000}}, "`$.server.port`"),
    ({"logging": {"level": "loud"}}, "`$.logging.level`"),
    ({"database": {"pool_min": 5, "pool_max": 2}}, "`$.database`"),
    ({"edge": {"storage_key": "c2hvcnQ="}}, "`$.edge`"),
    ({"tenants": {"acme": {"channels": {"wa": {"adapter": "whatsapp"}}}}},
     "`$.tenants.acme.channels.wa`"),
    ({"tenants": {"acme": {"channels": {"wa": {"adapter": "x", "account_id": "1",
                                               "app_secret": 5}}}}},
     "`$.tenants.acme.channels.wa.app_secret`"),
    ({"tenants": {"acme": {"admin_public_key": "bm90IDMyIGJ5dGVz"}}}, "`$.tenants.acme`"),
    ({"tenants": {"Acme!": {}}}, "`$.tenants.Acme!`"),
    ({"surprise": {}}, "`$`"),
    ({"egress": {"batch": 0}}, "`$.egress.batch`"),
    ({"egress": {"lease_s": 10}}, "`$.egress.lease_s`"),
    ({"egress": {"rate_limits": {"whatsap": []}}}, "`$`"),
    ({"egress": {"rate_limits": {"whatsapp": [{"scope": "galaxy", "limit": 1, "per_s": 1}]}}},
     "`$.egress.rate_limits[...][0].scope`"),
    ({"egress": {"rate_limits": {"whatsapp": [{"scope": "account", "limit": 1, "per_s": 0}]}}},
     "`$.egress.rate_limits[...][0].per_s`"),
])
def test_validation_errors_name_the_path(data: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert path in str(caught.value)


@pytest.mark.parametrize("placeholder", [
    "change-me", "CHANGEME", "change_me_please", "<your app secret>", "xxxx", "replace-me",
    "...", "secret", "TODO", "  ",
])
def test_placeholder_secrets_are_refused(placeholder: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(with_channel(app_secret=placeholder))
    assert "`$.tenants.acme.channels.acme-wa.app_secret`" in str(caught.value)


def test_secrets_are_redacted_in_repr_and_str() -> None:
    canary = "sk-CANARY-" + secrets.token_hex(8)
    config = parse_config(with_channel(app_secret=canary, secrets={"extra": canary}))
    channel = config.tenants["acme"].channels["acme-wa"]
    assert isinstance(channel.app_secret, Secret)
    assert channel.app_secret.reveal() == canary
    for shown in (repr(config), str(config), repr(channel), str(channel.app_secret)):
        assert canary not in shown
    storage = config.edge.storage_key
    assert storage is not None and storage.reveal() not in repr(config)


def test_edge_keys_decode_to_32_bytes_and_missing_ones_are_named() -> None:
    config = parse_config({"edge": edge()})
    assert len(config.edge.key_bytes("storage_key")) == 32
    with pytest.raises(ConfigError, match=r"\$\.edge\.storage_key"):
        parse_config({}).edge.key_bytes("storage_key")


def test_channels_need_edge_keys_an_enabled_adapter_and_unique_ids() -> None:
    data = with_channel()
    del data["edge"]["blind_index_key"]
    with pytest.raises(ConfigError, match=r"\$\.edge\.blind_index_key"):
        parse_config(data)
    data = with_channel()
    data["adapters"]["enabled"] = ["telegram"]
    with pytest.raises(ConfigError, match=r"\$\.tenants\.acme\.channels\.acme-wa\.adapter"):
        parse_config(data)
    data = with_channel()
    data["tenants"]["globex"] = {"channels": {"acme-wa": {"adapter": "whatsapp",
                                                          "account_id": "2"}}}
    with pytest.raises(ConfigError, match="already used by tenant 'acme'"):
        parse_config(data)
    config = parse_config(with_channel())
    assert config.channel("acme-wa") == ("acme", config.tenants["acme"].channels["acme-wa"])
    assert config.channel("nope") is None


def test_environment_overrides_win(tmp_path: Path) -> None:
    file = tmp_path / "unigate.toml"
    file.write_text('[server]\nport = 8080\nhost = "0.0.0.0"\n[database]\nurl = "postgresql://a/b"\n')
    env = {
        "UNIGATE__SERVER__PORT": "9000",
        "UNIGATE__ADAPTERS__ENABLED": '["x", "telegram"]',
        "UNIGATE__LOGGING__FORMAT": "json",
        "DATABASE_URL": "postgresql://env/db",
        "UNRELATED": "1",
    }
    config = load_config(file, env)
    assert (config.server.port, config.server.host) == (9000, "0.0.0.0")
    assert config.adapters.enabled == ["x", "telegram"]
    assert config.logging.format == "json"
    assert config.database.url is not None and config.database.url.reveal() == "postgresql://env/db"
    with pytest.raises(ConfigError, match=r"\$\.server\.port"):
        load_config(file, {"UNIGATE__SERVER__PORT": "high"})


def test_secrets_from_files_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    storage = key()
    (tmp_path / "keys" / "storage").write_text(storage + "\n")
    file = tmp_path / "unigate.toml"
    file.write_text('[edge]\nstorage_key_file = "keys/storage"\n')
    config = load_config(file, {})
    assert config.edge.storage_key is not None
    assert config.edge.storage_key.reveal() == storage  # newline stripped
    # the environment can point the same key at another file, replacing the TOML spelling
    other = tmp_path / "other"
    other.write_text(key())
    env = {"UNIGATE__EDGE__STORAGE_KEY_FILE": str(other)}
    replaced = load_config(file, env).edge.storage_key
    assert replaced is not None and replaced.reveal() == other.read_text()


def test_file_errors_name_the_key(tmp_path: Path) -> None:
    file = tmp_path / "unigate.toml"
    file.write_text('[edge]\nstorage_key_file = "missing"\n')
    with pytest.raises(ConfigError, match=r"\$\.edge\.storage_key_file"):
        load_config(file, {})
    file.write_text(f'[edge]\nstorage_key_file = "missing"\nstorage_key = "{key()}"\n')
    with pytest.raises(ConfigError, match="either storage_key or storage_key_file"):
        load_config(file, {})


def test_unreadable_or_invalid_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.toml", {})
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\nport = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad, {})


def test_unigate_config_variable_names_the_file(tmp_path: Path) -> None:
    file = tmp_path / "unigate.toml"
    file.write_text("[server]\nport = 1234\n")
    assert load_config(None, {"UNIGATE_CONFIG": str(file)}).server.port == 1234
    assert load_config(None, {}).server.port == 8080


def test_example_config_is_generated_from_the_types() -> None:
    assert EXAMPLE.read_text() == render_example(), (
        "docs/example-config.toml is stale: python -m gateway.config_example > "
        "docs/example-config.toml")


def test_example_config_loads_once_its_placeholders_are_filled(tmp_path: Path) -> None:
    config_file = tmp_path / "unigate.toml"
    config_file.write_text(EXAMPLE.read_text())
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    for name in tomllib.loads(EXAMPLE.read_text())["edge"].values():
        (tmp_path / name).write_text(key())
    for name in ("acme_meta_app_secret", "acme_whatsapp_token", "acme_telegram_bot_token",
                 "acme_telegram_webhook_secret"):
        (secrets_dir / name).write_text(secrets.token_hex(16))
    # as shipped, the placeholders stop it and the error says where
    with pytest.raises(ConfigError, match=r"\$\.tenants\.acme"):
        load_config(config_file, {})
    admin = base64.b64encode(secrets.token_bytes(32)).decode()
    text = EXAMPLE.read_text().replace("<base64 Ed25519 public key>", admin)
    config_file.write_text(text)
    with pytest.raises(ConfigError,
                       match=r"\$\.tenants\.acme\.channels\.acme-whatsapp\.verify_token"):
        load_config(config_file, {})
    config_file.write_text(text.replace('"change-me"', '"a-real-verify-token-42"'))
    config = load_config(config_file, {})
    assert set(config.tenants["acme"].channels) == {"acme-whatsapp", "acme-telegram"}
    assert config.tenants["acme"].admin_key_bytes() == base64.b64decode(admin)


def test_adapter_options_and_poll_interval_are_checked() -> None:
    from adapters.x.adapter import XAdapter, XConfig
    from gateway.api.context import adapter_config

    with pytest.raises(ConfigError,
                       match=r"'x' is not in adapters.enabled.*\$\.adapters\.options\.x"):
        parse_config({"adapters": {"enabled": ["whatsapp"], "options": {"x": {}}}})
    with pytest.raises(ConfigError, match=r"\$\.tenants\.acme\.channels\.acme-wa\.poll_interval_s"):
        parse_config(with_channel(poll_interval_s=-1))
    assert parse_config(with_channel()).tenants["acme"].channels["acme-wa"].poll_interval_s == 0
    config = parse_config({"adapters": {"enabled": ["x"], "options": {"x": {
        "api_base": "http://127.0.0.1:9", "poll_interval_s": 5.0}}}})
    assert adapter_config(config, "x", XAdapter) == XConfig(api_base="http://127.0.0.1:9",
                                                            poll_interval_s=5.0)
    for bad, where in (({"poll_page_size": "many"}, r"\.x\.poll_page_size"),
                       ({"no_such_option": 1}, r"\.x")):
        config = parse_config({"adapters": {"enabled": ["x"], "options": {"x": bad}}})
        with pytest.raises(ConfigError, match=rf"at `\$\.adapters\.options{where}`"):
            adapter_config(config, "x", XAdapter)
