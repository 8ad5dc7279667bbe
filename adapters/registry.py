"""Adapter discovery (entry points, group ``unigate.adapters``) and loading checks.

Built-in and third-party adapters use the same path: an entry point ``name = "pkg.mod:Class"``.
Discovery only reads metadata; :func:`load_adapters` imports the names on the config allowlist
and checks each class (SDK major version, Protocol conformance, capabilities data, matching
name). Any failure raises :class:`AdapterLoadError` with a one-line reason — nothing is printed
and skipped. Tests pass their adapter classes explicitly through :func:`check_adapter_class`.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import msgspec

from adapters.errors import AdapterLoadError
from adapters.sdk import OPTIONAL_PROTOCOLS, SDK_VERSION, Capabilities, sdk_major

ENTRY_POINT_GROUP = "unigate.adapters"
REQUIRED_METHODS = {
    "verify": 2,
    "parse": 2,
    "build_send": 2,
    "parse_send_response": 3,
}


@dataclass(frozen=True, slots=True)
class AdapterEntry:
    """An installed adapter as its entry point describes it (nothing imported yet)."""

    name: str
    value: str  # "package.module:Class"
    distribution: str
    version: str

    def load_class(self) -> type:
        try:
            obj = metadata.EntryPoint(self.name, self.value, ENTRY_POINT_GROUP).load()
        except Exception as exc:
            raise AdapterLoadError(
                f"adapter {self.name!r} ({self.value}, from {self.distribution}) failed to"
                f" import: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(obj, type):
            raise AdapterLoadError(f"adapter {self.name!r} entry point {self.value} is not a class")
        return obj


@dataclass(frozen=True, slots=True)
class LoadedAdapter:
    name: str
    cls: type
    entry: AdapterEntry | None
    optional: frozenset[str]  # keys of sdk.OPTIONAL_PROTOCOLS the class implements

    @property
    def capabilities(self) -> Capabilities:
        caps: Capabilities = self.cls.capabilities  # type: ignore[attr-defined]
        return caps


def discover(
    entry_points: Iterable[metadata.EntryPoint] | None = None,
) -> dict[str, AdapterEntry]:
    """Installed adapters by name. Two distributions claiming one name is an error."""
    found: dict[str, AdapterEntry] = {}
    points = (
        metadata.entry_points(group=ENTRY_POINT_GROUP) if entry_points is None else entry_points
    )
    for point in points:
        dist = point.dist
        entry = AdapterEntry(
            name=point.name,
            value=point.value,
            distribution=dist.metadata["Name"] if dist is not None else "<unknown>",
            version=dist.version if dist is not None else "?",
        )
        previous = found.get(entry.name)
        if previous is not None and previous.value != entry.value:
            raise AdapterLoadError(
                f"adapter name {entry.name!r} is claimed twice: {previous.value} from"
                f" {previous.distribution} {previous.version} and {entry.value} from"
                f" {entry.distribution} {entry.version}"
            )
        found[entry.name] = entry
    return found


def sdk_status(cls: type) -> str:
    """"ok", or why the adapter's declared SDK version cannot be loaded by this gateway."""
    declared = getattr(cls, "sdk_version", None)
    if not isinstance(declared, str):
        return "missing sdk_version"
    try:
        major = sdk_major(declared)
    except ValueError:
        return f"malformed sdk_version {declared!r}"
    if major != sdk_major(SDK_VERSION):
        return f"built for SDK {declared}, gateway has {SDK_VERSION}"
    return "ok"


def conformance_problems(cls: type) -> list[str]:
    """What keeps ``cls`` from satisfying :class:`adapters.sdk.Adapter` (empty when fine)."""
    problems: list[str] = []
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        problems.append("class attribute 'name' must be a non-empty str")
    status = sdk_status(cls)
    if status != "ok":
        problems.append(status)
    config_type = getattr(cls, "config_type", None)
    if not (isinstance(config_type, type) and issubclass(config_type, msgspec.Struct)):
        problems.append("class attribute 'config_type' must be a msgspec.Struct subclass")
    if not isinstance(getattr(cls, "capabilities", None), Capabilities):
        problems.append("class attribute 'capabilities' must be an adapters.sdk.Capabilities")
    for method, arity in REQUIRED_METHODS.items():
        func = getattr(cls, method, None)
        if not callable(func):
            problems.append(f"missing method {method}()")
            continue
        if inspect.iscoroutinefunction(func):
            problems.append(f"{method}() must be synchronous")
        if not _accepts(func, arity + 1):
            problems.append(f"{method}() must accept {arity} positional arguments")
    if not _accepts(inspect.getattr_static(cls, "__init__"), 2):
        problems.append("__init__ must accept one AdapterContext argument")
    return problems


def optional_capabilities(cls: type) -> frozenset[str]:
    """Which optional capability Protocols ``cls`` implements (detected once, at load)."""
    return frozenset(
        key
        for key, proto in OPTIONAL_PROTOCOLS.items()
        if all(callable(getattr(cls, m, None)) for m in _protocol_methods(proto))
    )


def check_adapter_class(cls: type, entry: AdapterEntry | None = None) -> LoadedAdapter:
    """Validate one adapter class; raise :class:`AdapterLoadError` listing every problem."""
    problems = conformance_problems(cls)
    label = f"{cls.__module__}.{cls.__qualname__}"
    if entry is not None:
        label += f" (entry point {entry.name!r} from {entry.distribution} {entry.version})"
        if not problems and cls.name != entry.name:  # type: ignore[attr-defined]
            problems.append(f"class name {cls.name!r} differs from the entry point name")  # type: ignore[attr-defined]
    if problems:
        raise AdapterLoadError(f"adapter {label} is not loadable: " + "; ".join(problems))
    return LoadedAdapter(
        name=cls.name,  # type: ignore[attr-defined]
        cls=cls,
        entry=entry,
        optional=optional_capabilities(cls),
    )


def load_adapters(
    enabled: Iterable[str],
    available: Mapping[str, AdapterEntry] | None = None,
) -> dict[str, LoadedAdapter]:
    """Import and check every adapter named in the allowlist ``enabled``; fail loudly."""
    entries = discover() if available is None else available
    loaded: dict[str, LoadedAdapter] = {}
    for name in enabled:
        entry = entries.get(name)
        if entry is None:
            known = ", ".join(sorted(entries)) or "none"
            raise AdapterLoadError(f"adapter {name!r} is enabled but not installed (have: {known})")
        loaded[name] = check_adapter_class(entry.load_class(), entry)
    return loaded


def register_classes(classes: Iterable[type]) -> dict[str, LoadedAdapter]:
    """Explicit adapter set (tests, embedding): check each class, refuse duplicate names."""
    loaded: dict[str, LoadedAdapter] = {}
    for cls in classes:
        item = check_adapter_class(cls)
        if item.name in loaded:
            raise AdapterLoadError(f"adapter name {item.name!r} given twice")
        loaded[item.name] = item
    return loaded


def _protocol_methods(proto: type) -> list[str]:
    return [
        name
        for name, value in vars(proto).items()
        if callable(value) and not name.startswith("_")
    ]


def _accepts(func: Any, count: int) -> bool:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return True
    params = list(signature.parameters.values())
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    return len(required) <= count <= len(positional)
