"""Just enough YAML to read ``docker-compose.yml`` in tests (PyYAML is not a dependency).

Supported: block mappings and sequences by indentation, ``- key: value`` items, comments,
plain / single- / double-quoted scalars (ints, booleans and null as YAML 1.1 reads them),
flow sequences of scalars, ``|`` block literals, anchors (``&name``), aliases (``*name``) and
merge keys (``<<: *name``, explicit keys win). Anything else raises :class:`YamlSubsetError`,
so the compose file stays within what this reader (and a reviewer) can check.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

__all__ = ["YamlSubsetError", "load"]

_MAPPING_ITEM = re.compile(r"""^("[^"]*"|'[^']*'|[^\s"'\[{#&*|>-][^:]*?|-[^\s:][^:]*?):(\s|$)""")
_INT = re.compile(r"^[-+]?\d+$")


class YamlSubsetError(ValueError):
    pass


def _strip_comment(line: str) -> str:
    quote = ""
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'" and (index == 0 or line[index - 1] in " [,:"):
            quote = char
        elif char == "#" and (index == 0 or line[index - 1] in " \t"):
            return line[:index]
    return line


def _scalar(text: str) -> Any:
    text = text.strip()
    if text.startswith('"'):
        if not text.endswith('"') or len(text) < 2:
            raise YamlSubsetError(f"unterminated string: {text}")
        return json.loads(text)
    if text.startswith("'"):
        if not text.endswith("'") or len(text) < 2:
            raise YamlSubsetError(f"unterminated string: {text}")
        return text[1:-1].replace("''", "'")
    if text.startswith("["):
        return _flow_sequence(text)
    if text.startswith(("{", ">", "!", "%", "@", "`")):
        raise YamlSubsetError(f"unsupported YAML: {text}")
    if text in ("true", "True"):
        return True
    if text in ("false", "False"):
        return False
    if text in ("", "null", "~"):
        return None
    if _INT.match(text):
        return int(text)
    return text


def _flow_sequence(text: str) -> list[Any]:
    if not text.endswith("]"):
        raise YamlSubsetError(f"unterminated flow sequence: {text}")
    items, current, quote = [], "", ""
    for char in text[1:-1]:
        if quote:
            current += char
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
            current += char
        elif char in "[{":
            raise YamlSubsetError(f"nested flow collections are not supported: {text}")
        elif char == ",":
            items.append(_scalar(current))
            current = ""
        else:
            current += char
    if current.strip():
        items.append(_scalar(current))
    return items


class _Parser:
    def __init__(self, text: str) -> None:
        self.raw = text.splitlines()
        self.pos = 0
        self.anchors: dict[str, Any] = {}

    def peek(self) -> tuple[int, str] | None:
        """(indent, content) of the next line with content, skipping blanks and comments."""
        while self.pos < len(self.raw):
            line = self.raw[self.pos]
            if "\t" in line[: len(line) - len(line.lstrip())]:
                raise YamlSubsetError(f"line {self.pos + 1}: tab in indentation")
            content = _strip_comment(line).rstrip()
            if content.strip():
                return len(content) - len(content.lstrip(" ")), content.strip()
            self.pos += 1
        return None

    def block(self, parent_indent: int) -> Any:
        nxt = self.peek()
        if nxt is None or nxt[0] <= parent_indent:
            return None
        indent, text = nxt
        if text == "-" or text.startswith("- "):
            return self.sequence(indent)
        return self.mapping(indent, {}, {})

    def mapping(self, indent: int, explicit: dict[str, Any],
                merged: dict[str, Any]) -> dict[str, Any]:
        while (nxt := self.peek()) is not None and nxt[0] >= indent:
            if nxt[0] > indent:
                raise YamlSubsetError(f"line {self.pos + 1}: unexpected indentation")
            if nxt[1].startswith("- ") or nxt[1] == "-":
                break
            self.pos += 1
            self.entry(indent, nxt[1], explicit, merged)
        return {**merged, **explicit}

    def entry(self, indent: int, text: str, explicit: dict[str, Any],
              merged: dict[str, Any]) -> None:
        match = _MAPPING_ITEM.match(text)
        if match is None:
            raise YamlSubsetError(f"line {self.pos}: expected `key: value`: {text}")
        key = str(_scalar(match.group(1)))
        rest = text[match.end():].strip()
        if key == "<<":
            value = self.value(indent, rest)
            if not isinstance(value, dict):
                raise YamlSubsetError(f"line {self.pos}: merge of a non-mapping")
            merged.update(value)
            return
        if key in explicit:
            raise YamlSubsetError(f"line {self.pos}: duplicate key {key!r}")
        explicit[key] = self.value(indent, rest)

    def value(self, indent: int, rest: str) -> Any:
        anchor = None
        if rest.startswith("&"):
            anchor, _, rest = rest[1:].partition(" ")
            rest = rest.strip()
        if rest.startswith("*"):
            name = rest[1:]
            if name not in self.anchors:
                raise YamlSubsetError(f"line {self.pos}: unknown alias *{name}")
            value = copy.deepcopy(self.anchors[name])
        elif rest == "|":
            value = self.literal(indent)
        elif rest == "":
            value = self.block(indent)
        else:
            value = _scalar(rest)
        if anchor:
            self.anchors[anchor] = copy.deepcopy(value)
        return value

    def literal(self, indent: int) -> str:
        lines: list[str] = []
        body_indent = None
        while self.pos < len(self.raw):
            line = self.raw[self.pos]
            width = len(line) - len(line.lstrip(" "))
            if line.strip() and width <= indent:
                break
            if line.strip() and body_indent is None:
                body_indent = width
            lines.append(line[body_indent or 0:] if line.strip() else "")
            self.pos += 1
        while lines and not lines[-1]:
            lines.pop()
        return "\n".join(lines) + "\n"

    def sequence(self, indent: int) -> list[Any]:
        items: list[Any] = []
        while (nxt := self.peek()) is not None and nxt[0] == indent and (
                nxt[1] == "-" or nxt[1].startswith("- ")):
            self.pos += 1
            item = nxt[1][1:].strip()
            if not item:
                items.append(self.block(indent))
            elif _MAPPING_ITEM.match(item):
                explicit: dict[str, Any] = {}
                merged: dict[str, Any] = {}
                self.entry(indent + 2, item, explicit, merged)
                items.append(self.mapping(indent + 2, explicit, merged))
            else:
                items.append(self.value(indent, item))
        return items


def load(text: str) -> Any:
    parser = _Parser(text)
    document = parser.block(-1)
    if parser.peek() is not None:
        raise YamlSubsetError(f"line {parser.pos + 1}: unexpected content")
    return document
