"""Line numbers for the keys of a TOML file.

tomllib parses without positions, yet a config error is only useful if it says
where it is. This scans the text for ``[table]`` / ``[[array]]`` headers and
``key =`` lines, which is enough for a hand-written config file. Limits: a key
inside an inline table (``x = {a = 1}``) or an array element gets the line of
the key that holds it; a table only defined by dotted keys gets the line of its
first key; lines inside multi-line strings are skipped.
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

#: A key path: table names and keys, and the index of an array element.
KeyPath = tuple[str | int, ...]

_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED = rf"{_PART}(?:\s*\.\s*{_PART})*"
_TABLE = re.compile(rf"^\s*\[\s*({_DOTTED})\s*\]\s*(?:#.*)?$")
_ARRAY = re.compile(rf"^\s*\[\[\s*({_DOTTED})\s*\]\]\s*(?:#.*)?$")
_ASSIGN = re.compile(rf"^\s*({_DOTTED})\s*=")
_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def dotted(path: KeyPath) -> str:
    """``("sites", "www.bbc.com", "body")`` -> ``sites."www.bbc.com".body``;
    array elements as ``routes[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if _BARE.match(part) else json.dumps(part, ensure_ascii=False)
            out += f".{name}" if out else name
    return out


def _split(text: str) -> tuple[str, ...] | None:
    """A dotted key as its parts, unquoted the way TOML does it."""
    try:
        node: Any = tomllib.loads(f"{text} = 0")
    except tomllib.TOMLDecodeError:
        return None
    parts: list[str] = []
    while isinstance(node, dict) and len(node) == 1:
        ((name, node),) = node.items()
        parts.append(name)
    return tuple(parts)


class KeyLines:
    """Where each key path of a TOML text is first defined (1-based lines)."""

    def __init__(self, text: str) -> None:
        self._lines: dict[KeyPath, int] = {}
        self._arrays: dict[KeyPath, int] = {}  # array-of-tables path -> elements so far
        table: KeyPath = ()
        in_string = False
        for number, line in enumerate(text.splitlines(), 1):
            starts_in_string = in_string
            if (line.count('"""') + line.count("'''")) % 2:
                in_string = not in_string
            if starts_in_string:
                continue
            table = self._scan(line, number, table)

    def _scan(self, line: str, number: int, table: KeyPath) -> KeyPath:
        """Record what ``line`` defines; return the table it leaves us in."""
        if m := _ARRAY.match(line):
            parts = _split(m.group(1))
            if parts is not None:
                parent = self._resolve(parts)
                self._arrays[parent] = self._arrays.get(parent, 0) + 1
                table = (*parent, self._arrays[parent] - 1)
                self._record(table, number)
        elif m := _TABLE.match(line):
            parts = _split(m.group(1))
            if parts is not None:
                table = self._resolve(parts)
                self._record(table, number)
        elif m := _ASSIGN.match(line):
            parts = _split(m.group(1))
            if parts is not None:
                self._record((*table, *parts), number)
        return table

    def _resolve(self, parts: tuple[str, ...]) -> KeyPath:
        """A header's path, with the current element of each array of tables in it."""
        path: KeyPath = ()
        for part in parts:
            if path in self._arrays:
                path = (*path, self._arrays[path] - 1)
            path = (*path, part)
        return path

    def _record(self, path: KeyPath, number: int) -> None:
        for end in range(1, len(path) + 1):
            self._lines.setdefault(path[:end], number)

    def line(self, path: KeyPath) -> int | None:
        """The line of ``path``, or of the nearest enclosing key we found."""
        for end in range(len(path), 0, -1):
            if path[:end] in self._lines:
                return self._lines[path[:end]]
        return None
