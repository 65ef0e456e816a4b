"""Variant alignment (pure): which shared packages differ between variant locks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from packaging.pylock import Pylock

from envlock.family import varies_with_build


def version_of(lock: Pylock, name: str) -> str | None:
    for package in lock.packages:
        if package.name == name and package.version is not None:
            return str(package.version)
    return None


def misaligned(locks: Mapping[str, Pylock]) -> dict[str, dict[str, list[str]]]:
    """package -> {version: [variants]} for shared packages whose versions differ."""
    seen: dict[str, dict[str, list[str]]] = {}
    for variant, lock in sorted(locks.items()):
        for package in lock.packages:
            if package.version is None or varies_with_build(package.name):
                continue
            names = seen.setdefault(package.name, {}).setdefault(str(package.version), [])
            if variant not in names:
                names.append(variant)
    return {name: versions for name, versions in sorted(seen.items()) if len(versions) > 1}


def only_package(lock: Pylock, name: str) -> Pylock:
    """A lock holding just ``name``: used as the first preference when re-locking."""
    return replace(lock, packages=[p for p in lock.packages if p.name == name])
