"""`envlock lock --keep-versions FILE`: the versions an adopted file pinned, as uv preferences.
Pure.

uv keeps the versions of the uv.lock beside the project it locks where the requirements allow
(that is how envlock keeps a previous lock's versions); an entry needs no artifacts to count as
a preference. The file's pins are added to that uv.lock ahead of the previous lock's, except
the torch family and the CUDA runtime, which follow [torch].
"""

from __future__ import annotations

from collections.abc import Mapping

from packaging.pylock import Pylock
from packaging.utils import canonicalize_name

from envlock import _toml
from envlock.family import varies_with_build


def kept_pins(pins: Mapping[str, str]) -> dict[str, str]:
    """The pins uv may prefer: everything but what follows the torch build."""
    return {
        canonicalize_name(name): version
        for name, version in sorted(pins.items())
        if not varies_with_build(canonicalize_name(name))
    }


def with_kept(
    preferences: str | None, pins: Mapping[str, str], *, registry: str, requires_python: str
) -> str | None:
    """``preferences`` (a uv.lock text or None) with an entry for each pin at ``registry``
    (the PyPI index uv is given); entries for the same names already there are dropped."""
    if not pins:
        return preferences
    head = [
        f"version = {_toml.value(1)}",
        f"revision = {_toml.value(3)}",
        f"requires-python = {_toml.value(requires_python)}",
        "",
    ]
    kept = []
    for name, version in pins.items():
        kept += [
            "[[package]]",
            f"name = {_toml.value(name)}",
            f"version = {_toml.value(version)}",
            f"source = {_toml.inline_table({'registry': registry})}",
            "",
        ]
    if preferences is None:
        return "\n".join([*head, *kept])
    blocks = preferences.split("\n[[package]]\n")
    others = [b for b in blocks[1:] if _name(b) not in pins]
    rest = "".join(f"[[package]]\n{b}\n" for b in others)
    return "\n".join([*head, *kept]) + rest


def _name(block: str) -> str:
    first = block.split("\n", 1)[0]
    return canonicalize_name(first.partition("=")[2].strip().strip('"'))


def kept_report(lock: Pylock, pins: Mapping[str, str], *, source: str) -> list[str]:
    """One line for the versions kept and one per pin the lock could not keep."""
    locked: dict[str, str] = {
        str(p.name): str(p.version) for p in lock.packages if p.version is not None
    }
    missed = [
        f"{name}: {source} has {version}, the lock has {locked.get(name, 'none')} "
        "(that version does not fit the spec, the Python or the other packages)"
        for name, version in pins.items()
        if locked.get(name) != version
    ]
    lines = [f"kept {len(pins) - len(missed)} of {len(pins)} versions from {source}"]
    return lines + missed
