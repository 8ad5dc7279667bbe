"""The gateway's configuration: one typed msgspec tree, read from TOML, then environment overrides.

Sources, later ones winning:

1. the defaults below;
2. a TOML file (``unigate serve --config FILE``, or ``$UNIGATE_CONFIG``);
3. environment variables ``UNIGATE__SECTION__KEY=value`` (``__`` separates the path, matched
   lower-case; the value is read as a TOML value when it parses as one, else as a string), and
   ``DATABASE_URL`` for ``database.url``.

Any key ``NAME_file`` names a file whose contents (surrounding whitespace stripped) become the
value of ``NAME``; relative paths are relative to the config file. That is how secrets arrive
from Docker/Kubernetes secrets, systemd credentials or a KMS agent's tmpfs.

Unknown keys, wrong types, and placeholder secrets (``change-me``, ``<…>``, ``xxx`` …) are
refused at startup with a :class:`ConfigError` naming the path, e.g. ``$.server.port``.
Secrets are :class:`adapters.sdk.Secret` (redacted ``repr``) so the tree can be printed and
logged safely, and channel secrets pass to adapters unchanged.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from adapters.sdk import Secret
from gateway.errors import ConfigError

__all__ = [
    "ENV_PREFIX",
    "AdaptersConfig",
    "ChannelConfig",
    "Config",
    "ConfigError",
    "DatabaseConfig",
    "EdgeConfig",
    "LoggingConfig",
    "Secret",
    "ServerConfig",
    "TenantConfig",
    "load_config",
    "parse_config",
]

ENV_PREFIX = "UNIGATE__"
KEY_BYTES = 32
# tenant and channel ids: lower-case slugs (they appear in URLs, tokens and every primary key)
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
PLACEHOLDER = re.compile(
    r"^\s*(change[-_ ]?me.*|replace[-_ ]?me.*|your[-_ ].*|<.*>|x{3,}|\.{3}|todo|fixme|"
    r"secret|password|example|placeholder)\s*$",
    re.IGNORECASE,
)


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class _Section(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """Base of every config table: keyword-only, frozen, unknown keys refused."""


class ServerConfig(_Section, frozen=True):
    host: Annotated[str, _doc("address to listen on")] = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535), _doc("TCP port (0 = any free port)")] = 8080
    webhook_max_bytes: Annotated[
        int, msgspec.Meta(ge=1024), _doc("largest webhook body accepted; larger gets 413")
    ] = 1024 * 1024
    api_max_bytes: Annotated[
        int, msgspec.Meta(ge=1024), _doc("largest device/admin API body accepted")
    ] = 256 * 1024
    shutdown_timeout_s: Annotated[
        float, msgspec.Meta(gt=0), _doc("grace period for open requests and sockets on stop")
    ] = 10.0


class DatabaseConfig(_Section, frozen=True):
    url: Annotated[
        Secret | None,
        _doc("postgresql:// URL (or DATABASE_URL); unset = embedded Postgres under data_dir"),
    ] = None
    data_dir: Annotated[
        str, _doc("embedded Postgres data directory; empty = <user state dir>/unigate/pgdata")
    ] = ""
    pool_min: Annotated[int, msgspec.Meta(ge=1), _doc("connections kept open")] = 2
    pool_max: Annotated[int, msgspec.Meta(ge=2), _doc("most connections per process")] = 10
    statement_timeout_ms: Annotated[
        int, msgspec.Meta(ge=0), _doc("server-side statement timeout (0 = none)")
    ] = 10_000
    slow_query_ms: Annotated[
        int, msgspec.Meta(ge=0), _doc("log a slow_query warning above this (0 = off)")
    ] = 200
    auto_migrate: Annotated[
        bool, _doc("apply pending migrations when serve starts (else run `unigate migrate`)")
    ] = True

    def __post_init__(self) -> None:
        if self.pool_min > self.pool_max:
            raise ValueError("pool_min must not exceed pool_max")


class EdgeConfig(_Section, frozen=True):
    """The edge's keys: base64 of 32 bytes each, from a file or the environment, never the DB."""

    identity_key: Annotated[
        Secret | None, _doc("Ed25519 seed of the edge device identity (base64, 32 bytes)")
    ] = None
    storage_key: Annotated[
        Secret | None, _doc("key sealing crypto state at rest (base64, 32 bytes)")
    ] = None
    blind_index_key: Annotated[
        Secret | None, _doc("keyed-BLAKE2b key for handle/dedupe digests (base64, 32 bytes)")
    ] = None
    state_path: Annotated[
        str,
        _doc("file of the edge's high-water marks (newest roster and session versions; relative"
             " to the config file), one per process, backed up with the edge keys: a database"
             " restored to older crypto state is detected and re-keyed; created when missing;"
             " empty = marks in memory only (lost on restart)"),
    ] = ""

    def __post_init__(self) -> None:
        for name in EDGE_KEYS:
            secret = getattr(self, name)
            if secret is not None:
                _decode_key(secret.reveal(), name)

    def key_bytes(self, name: str) -> bytes:
        """The raw 32 bytes of edge key ``name``; ConfigError if it is not configured."""
        if name not in EDGE_KEYS:
            raise ConfigError(f"unknown edge key {name!r}")
        secret: Secret | None = getattr(self, name)
        if secret is None:
            raise ConfigError(f"edge key is not configured at `$.edge.{name}`")
        return _decode_key(secret.reveal(), name)


EDGE_KEYS = ("identity_key", "storage_key", "blind_index_key")


class AdaptersConfig(_Section, frozen=True):
    enabled: Annotated[
        list[str], _doc("adapters that may load (entry-point names); others are never imported")
    ] = msgspec.field(default_factory=list)
    options: Annotated[
        dict[str, dict[str, Any]],
        _doc("per adapter name, its config section (the adapter's config_type), e.g."
             " [adapters.options.x] poll_interval_s = 60.0"),
    ] = msgspec.field(default_factory=dict)


class SendLimitConfig(_Section, frozen=True):
    """At most ``limit`` sends per ``per_s`` seconds per ``scope`` (adapters.capabilities)."""

    scope: Literal["account", "recipient", "app", "user"]
    limit: Annotated[int, msgspec.Meta(ge=1)]
    per_s: Annotated[float, msgspec.Meta(gt=0)]


class EgressConfig(_Section, frozen=True):
    poll_s: Annotated[float, msgspec.Meta(gt=0), _doc("look for due replies this often")] = 0.5
    batch: Annotated[int, msgspec.Meta(ge=1, le=1000),
                     _doc("replies one process leases (and sends concurrently) per round")] = 16
    lease_s: Annotated[float, msgspec.Meta(ge=45),
                       _doc("a lease not finished by then is taken over by another process;"
                            " renewed before each platform call, which may take 30 s")] = 60.0
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=100),
                            _doc("platform attempts before a reply ends failed (exhausted)")] = 8
    backoff_base_s: Annotated[float, msgspec.Meta(gt=0), _doc("first retry delay")] = 1.0
    backoff_cap_s: Annotated[float, msgspec.Meta(gt=0), _doc("longest retry delay")] = 300.0
    rate_limits: Annotated[
        dict[str, list[SendLimitConfig]],
        _doc("per adapter name, send limits replacing the adapter's declared ones (shared by"
             " every process), e.g. a WhatsApp number on a higher throughput tier"),
    ] = msgspec.field(default_factory=dict)


class LoggingConfig(_Section, frozen=True):
    level: Annotated[Literal["debug", "info", "warning", "error"], _doc("minimum level")] = "info"
    format: Annotated[
        Literal["auto", "json", "console"], _doc("auto = console on a TTY, JSON otherwise")
    ] = "auto"


class ChannelConfig(_Section, frozen=True):
    """One platform account of a tenant; the secret names follow ``adapters.sdk.Account``."""

    adapter: Annotated[str, _doc("adapter name, listed in adapters.enabled")]
    account_id: Annotated[str, _doc("the platform's id of the account (phone id, page id…)")]
    app_secret: Secret | None = None
    verify_token: Secret | None = None
    access_token: Secret | None = None
    webhook_secret: Secret | None = None
    consumer_secret: Secret | None = None
    secrets: dict[str, Secret] = msgspec.field(default_factory=dict)
    settings: dict[str, str] = msgspec.field(default_factory=dict)
    poll_interval_s: Annotated[
        float,
        msgspec.Meta(ge=0),
        _doc("also pull new messages every N seconds (adapters that can poll, e.g. X"
             " dm_events; the adapter may ask for longer); 0 = webhooks only"),
    ] = 0.0


class TenantConfig(_Section, frozen=True):
    admin_public_key: Annotated[
        str, _doc("Ed25519 public key (base64) that signs this tenant's device roster")
    ] = ""
    channels: dict[str, ChannelConfig] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.admin_public_key:
            _decode_key(self.admin_public_key, "admin_public_key")

    def admin_key_bytes(self) -> bytes | None:
        if not self.admin_public_key:
            return None
        return _decode_key(self.admin_public_key, "admin_public_key")


class Config(_Section, frozen=True):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    database: DatabaseConfig = msgspec.field(default_factory=DatabaseConfig)
    edge: EdgeConfig = msgspec.field(default_factory=EdgeConfig)
    adapters: AdaptersConfig = msgspec.field(default_factory=AdaptersConfig)
    egress: EgressConfig = msgspec.field(default_factory=EgressConfig)
    logging: LoggingConfig = msgspec.field(default_factory=LoggingConfig)
    tenants: dict[str, TenantConfig] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.egress.rate_limits) - set(self.adapters.enabled))
        if unknown:
            raise ValueError(f"egress.rate_limits names adapters that are not enabled: {unknown}")

    def channel(self, channel_id: str) -> tuple[str, ChannelConfig] | None:
        """``(tenant_id, channel)`` for a webhook's channel id (ids are unique across tenants)."""
        for tenant_id, tenant in self.tenants.items():
            found = tenant.channels.get(channel_id)
            if found is not None:
                return tenant_id, found
        return None


# --------------------------------------------------------------------------- decoding
def _decode_key(text: str, name: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{name} must be base64 of {KEY_BYTES} bytes") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"{name} must be base64 of {KEY_BYTES} bytes")
    return raw


def _dec_hook(type_: type, obj: Any) -> Any:
    if type_ is Secret:
        if not isinstance(obj, str):
            raise TypeError("Expected `str`")
        if not obj.strip():
            raise ValueError("secret is empty (leave the key out instead)")
        if PLACEHOLDER.match(obj):
            raise ValueError("placeholder value refused: put the real secret here")
        return Secret(obj)
    raise NotImplementedError


def _convert(raw: Any, type_: type, path: str) -> Any:
    try:
        return msgspec.convert(raw, type_, dec_hook=_dec_hook, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        if " - at `$" in message:
            message = message.replace(" - at `$", f" - at `{path}", 1)
        else:  # msgspec leaves out the path for errors at the root of what it converted
            message = f"{message} - at `{path}`"
        raise ConfigError(message) from None


def parse_config(data: Mapping[str, Any]) -> Config:
    """Validate a raw mapping (TOML already read, files and env applied) into a :class:`Config`.

    Tenants and channels are converted one by one first so an error names the dict key
    (msgspec alone would say ``$.tenants[...]``).
    """
    data = dict(data)
    tenants = data.get("tenants", {})
    if isinstance(tenants, Mapping):
        checked: dict[str, Any] = {}
        for tenant_id, tenant in tenants.items():
            path = f"$.tenants.{tenant_id}"
            if not ID_PATTERN.match(str(tenant_id)):
                raise ConfigError(f"tenant id must match {ID_PATTERN.pattern} - at `{path}`")
            channels = tenant.get("channels", {}) if isinstance(tenant, Mapping) else {}
            if isinstance(channels, Mapping):
                for channel_id, channel in channels.items():
                    cpath = f"{path}.channels.{channel_id}"
                    if not ID_PATTERN.match(str(channel_id)):
                        raise ConfigError(
                            f"channel id must match {ID_PATTERN.pattern} - at `{cpath}`"
                        )
                    _convert(channel, ChannelConfig, cpath)
            checked[tenant_id] = _convert(tenant, TenantConfig, path)
        data["tenants"] = checked
    config: Config = _convert(data, Config, "$")
    _check_cross_references(config)
    return config


def _check_cross_references(config: Config) -> None:
    seen: dict[str, str] = {}
    for tenant_id, tenant in config.tenants.items():
        for channel_id, channel in tenant.channels.items():
            path = f"$.tenants.{tenant_id}.channels.{channel_id}"
            if channel_id in seen:
                raise ConfigError(
                    f"channel id is already used by tenant {seen[channel_id]!r}"
                    f" (webhook URLs need unique ids) - at `{path}`"
                )
            seen[channel_id] = tenant_id
            if channel.adapter not in config.adapters.enabled:
                raise ConfigError(
                    f"adapter {channel.adapter!r} is not in adapters.enabled - at `{path}.adapter`"
                )
    for name in config.adapters.options:
        if name not in config.adapters.enabled:
            raise ConfigError(f"adapter {name!r} is not in adapters.enabled"
                              f" - at `$.adapters.options.{name}`")
    if seen:
        for name in EDGE_KEYS:
            if getattr(config.edge, name) is None:
                raise ConfigError(f"channels are configured but the edge key is missing"
                                  f" - at `$.edge.{name}`")


# --------------------------------------------------------------------------- sources
def _env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Overlay ``UNIGATE__A__B=value`` and ``DATABASE_URL`` onto ``data`` in place."""
    overrides: list[tuple[list[str], Any]] = []
    if environ.get("DATABASE_URL"):
        overrides.append((["database", "url"], environ["DATABASE_URL"]))
    for name in sorted(environ):
        if name.startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX):
            path = name[len(ENV_PREFIX):].lower().split("__")
            overrides.append((path, _env_value(environ[name])))
    for path, value in overrides:
        table = data
        for part in path[:-1]:
            nxt = table.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"environment override {'.'.join(path)} crosses a value")
            table = nxt
        leaf = path[-1]
        # the newest source wins, so drop the sibling spelling (NAME vs NAME_file)
        sibling = leaf[: -len("_file")] if leaf.endswith("_file") else f"{leaf}_file"
        table.pop(sibling, None)
        table[leaf] = value


def resolve_files(data: dict[str, Any], base: Path, path: str = "$") -> None:
    """Replace every ``NAME_file = "path"`` by ``NAME = <file contents>`` in place."""
    for key in list(data):
        value = data[key]
        if isinstance(value, dict):
            resolve_files(value, base, f"{path}.{key}")
        elif key.endswith("_file") and len(key) > len("_file"):
            target = key[: -len("_file")]
            where = f"{path}.{key}"
            if target in data:
                raise ConfigError(f"give either {target} or {key}, not both - at `{where}`")
            if not isinstance(value, str):
                raise ConfigError(f"Expected `str` (a file path) - at `{where}`")
            file = Path(value) if Path(value).is_absolute() else base / value
            try:
                data[target] = file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read {file} ({exc.strerror or type(exc).__name__}) - at `{where}`"
                ) from None
            del data[key]


def load_config(path: Path | str | None = None,
                environ: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (or ``$UNIGATE_CONFIG``; none = defaults), apply env and files, validate."""
    env = os.environ if environ is None else environ
    chosen = path if path is not None else env.get("UNIGATE_CONFIG") or None
    data: dict[str, Any] = {}
    base = Path.cwd()
    if chosen is not None:
        file = Path(chosen)
        base = file.resolve().parent
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {file}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file} is not valid TOML: {exc}") from None
    apply_env(data, env)
    resolve_files(data, base)
    _resolve_state_path(data, base)
    return parse_config(data)


def _resolve_state_path(data: dict[str, Any], base: Path) -> None:
    """``edge.state_path`` relative to the config file's folder, like ``NAME_file`` paths."""
    edge = data.get("edge")
    if not isinstance(edge, dict):
        return
    path = edge.get("state_path")
    if isinstance(path, str) and path and not Path(path).is_absolute():
        edge["state_path"] = str(base / path)
