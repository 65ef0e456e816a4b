"""TOML in and out: the one reader and the one writer envlock uses. Pure.

Reading: tomli's compiled wheels parse a large lock ~3x faster than the stdlib's pure-Python
tomllib (0.08 s vs 0.26 s for a 2,000-package lock); same API, same results.

Writing: every TOML file envlock writes (the lock, the throw-away uv project and its
preferences, the install lock sync hands uv, the spec `envlock channels` checks) gets its
values, keys and tables from the functions below; the callers only lay lines out. One small
emitter rather than tomlkit or tomli-w: the lock's bytes must never depend on a library's
formatting choices (they are reviewed and committed), it costs no import and no dependency,
and quoting follows one rule everywhere (markers, full of double quotes, as literal strings).
The commented torchenv.toml of `envlock init` is text by design (comments between keys); its
values come from :func:`value` too.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import tomli

from envlock.errors import InternalError

DECODE_ERRORS: tuple[type[ValueError], ...] = (tomllib.TOMLDecodeError, tomli.TOMLDecodeError)


def loads(text: str) -> dict[str, Any]:
    try:
        return tomli.loads(text)
    except RecursionError:  # '[[[[…' thousands deep: hostile input, not a crash
        raise tomli.TOMLDecodeError("arrays or tables are nested too deeply", text, 0) from None


# --------------------------------------------------------------------------------------
# writing


def value(item: object) -> str:
    """One TOML value on one line: strings, booleans, integers, UTC datetimes, dates, arrays
    and inline tables (whose None values are left out)."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, datetime):
        stamp = item.astimezone(UTC) if item.tzinfo else item.replace(tzinfo=UTC)
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(item, date):
        return item.isoformat()
    if isinstance(item, str):
        return _string(item)
    if isinstance(item, Mapping):
        return inline_table(item)
    if isinstance(item, Sequence) and not isinstance(item, bytes | bytearray | memoryview):
        return "[" + ", ".join(value(v) for v in item) + "]"
    # Callers pass only values envlock built itself: anything else (a float, None, bytes,
    # which would pass as an array of integers) is a bug.
    raise InternalError(
        f"envlock tried to write a {type(item).__name__} as a TOML value",
        hint="A bug in envlock: re-run with --debug and report it with the output.",
    )


def _string(text: str) -> str:
    # Markers are full of double quotes; a literal string keeps them readable.
    if '"' in text and "'" not in text and text.isprintable():
        return f"'{text}'"
    return json.dumps(text, ensure_ascii=False)


def inline_table(mapping: Mapping[str, object]) -> str:
    items = [f"{key(k)} = {value(v)}" for k, v in mapping.items() if v is not None]
    return "{ " + ", ".join(items) + " }" if items else "{}"


def key(name: str) -> str:
    if name and all(c.isalnum() or c in "-_" for c in name):
        return name
    return json.dumps(name)


def multiline_array(items: Sequence[object]) -> str:
    """An array with one item per line (indented four spaces, trailing comma); [] when empty."""
    if not items:
        return "[]"
    return "[\n" + "".join(f"    {value(v)},\n" for v in items) + "]"


def table(header: str, mapping: Mapping[str, Any]) -> list[str]:
    """``[header]`` and its keys, in order: arrays of two or more items one per line, nested
    mappings as ``[header.key]`` tables after the keys (each after a blank line)."""
    lines = [f"[{header}]"]
    nested: list[tuple[str, Mapping[str, Any]]] = []
    for name, item in mapping.items():
        if isinstance(item, Mapping):
            nested.append((name, item))
        elif isinstance(item, list | tuple) and len(item) > 1:
            lines.append(f"{key(name)} = {multiline_array(list(item))}")
        else:
            lines.append(f"{key(name)} = {value(item)}")
    for name, item in nested:
        lines.append("")
        lines += table(f"{header}.{key(name)}", item)
    return lines
