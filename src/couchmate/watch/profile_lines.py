"""Find the line of a key in a profile's source text, so schema errors can name it.

tomllib keeps no positions, so TOML is scanned line by line: each `key =` line gets its
full dotted path from the table header above it; the line whose path shares the longest
prefix with the error's location wins. YAML keeps marks, so its node tree is walked.
"""

from __future__ import annotations

import re

import yaml

Loc = tuple[str | int, ...]

_AOT = re.compile(r"^\[\[\s*([^\]]+?)\s*\]\]")
_TABLE = re.compile(r"^\[\s*([^\]]+?)\s*\]")
_PART = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
_KEY = re.compile(rf"^({_PART}(?:\s*\.\s*{_PART})*)\s*=")


def _split_key(dotted: str) -> tuple[str, ...]:
    parts = re.findall(r'"([^"]*)"|\'([^\']*)\'|([A-Za-z0-9_-]+)', dotted)
    return tuple(a or b or c for a, b, c in parts)


def _toml_paths(text: str) -> list[tuple[int, Loc]]:
    entries: list[tuple[int, Loc]] = []
    header: Loc = ()
    aot_index: dict[tuple[str, ...], int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if m := _AOT.match(s):
            path = _split_key(m.group(1))
            aot_index[path] = aot_index.get(path, -1) + 1
            header = (*path, aot_index[path])
            entries.append((lineno, header))
        elif m := _TABLE.match(s):
            header = _split_key(m.group(1))
            entries.append((lineno, header))
        elif m := _KEY.match(s):
            entries.append((lineno, (*header, *_split_key(m.group(1)))))
    return entries


def _common(a: Loc, b: Loc) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if str(x) != str(y):
            break
        n += 1
    return n


def _toml_line(text: str, loc: Loc) -> int | None:
    best, best_n = None, 0
    for lineno, path in _toml_paths(text):
        n = _common(path, loc)
        # a deeper path than the error's location is not where the error is
        if n > best_n and n == min(len(path), len(loc)):
            best, best_n = lineno, n
    return best


def _yaml_line(text: str, loc: Loc) -> int | None:
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if str(k.value) == str(key):
                    line, node = k.start_mark.line + 1, v
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            if key >= len(node.value):
                return line
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def line_of(text: str, suffix: str, loc: Loc) -> int | None:
    """The 1-based line where `loc` (a pydantic error location) is written, if found."""
    if suffix == ".toml":
        return _toml_line(text, loc)
    return _yaml_line(text, loc)
