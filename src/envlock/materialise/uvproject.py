"""`envlock export uv`: a pyproject.toml with which a plain `uv lock` picks the lock's torch
build. Pure: the lock, its record and the spec's requirements in, text out.

What envlock knows and uv must be told: the variant index, declared ``explicit`` so that only
the packages routed to it come from there; ``[tool.uv.sources]`` routing the torch family to it
on the platforms that take it from there (the others get PyPI's own build); the platforms and
Python as ``environments``; the PyPI mirror as the default index; the exclude-newer cut-off.
Every comment says which fact of the lock it carries.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from packaging.pylock import Pylock
from packaging.utils import canonicalize_name

from envlock import _toml
from envlock.family import TORCH, is_cuda_runtime
from envlock.lockfile import LockMeta
from envlock.materialise.exports import EXPORT_MARK
from envlock.spec import DEFAULT_PYPI_INDEX, Platform

PYPI_NAME = "pypi"


def _index_name(variant: str) -> str:
    return f"pytorch-{variant}" if variant else "pytorch"


def _project_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")
    return cleaned or "envlock-project"


def _routed(lock: Pylock, family: Collection[str], meta: LockMeta) -> list[str]:
    """The torch-family packages of the lock that come from the variant index."""
    index = (meta.variant_index or "").rstrip("/")
    names = set()
    for package in lock.packages:
        if canonicalize_name(package.name) not in family:
            continue
        urls = [w.url or "" for w in package.wheels or ()]
        if (package.index or "").rstrip("/") == index or any(u.startswith(index) for u in urls):
            names.add(package.name)
    return sorted(names)


def _pins(lock: Pylock, names: Sequence[str]) -> list[str]:
    """``name==version`` for these names (the local label left to the index: uv matches
    ==2.6.0 against 2.6.0+cu124); a name locked at other versions on other platforms gets one
    pin per entry, under the entry's marker."""
    pins: list[str] = []
    for name in sorted(set(names)):
        entries = [p for p in lock.packages if p.name == name and p.version is not None]
        versions = {p.version.public for p in entries if p.version is not None}
        if len(versions) == 1:
            pins.append(f"{name}=={versions.pop()}")
            continue
        for entry in entries:
            assert entry.version is not None
            marker = f"; {entry.marker}" if entry.marker is not None else ""
            pins.append(f"{name}=={entry.version.public}{marker}")
    return pins


def render_uv_project(
    lock: Pylock,
    meta: LockMeta,
    *,
    name: str,
    requirements: Sequence[str] | None,
    family: Collection[str],
    lock_name: str,
) -> str:
    """pyproject.toml text. ``requirements``: the spec's [packages] (None: no spec beside the
    lock, so every other package of the lock is pinned, as it does not say which were asked
    for); ``family``: the torch-family names (channel data)."""
    routed = _routed(lock, family, meta) if meta.variant_index else []
    torch_names = routed or sorted(
        {p.name for p in lock.packages if canonicalize_name(p.name) in family}
    )
    dependencies = _pins(lock, torch_names)
    if requirements is None:
        dependencies += _pins(
            lock,
            [
                p.name
                for p in lock.packages
                if p.name not in torch_names
                and not is_cuda_runtime(p.name)
                and canonicalize_name(p.name) not in family
            ],
        )
    else:
        dependencies += sorted(requirements)
    platforms = [Platform(p) for p in meta.platforms]
    environments = [f"python_version == '{meta.python}' and {p.marker}" for p in platforms]
    torch = f"torch {meta.torch} {meta.variant}" if meta.torch else "no torch"
    lines = [
        f"{EXPORT_MARK} from {lock_name} ({torch}, CPython {meta.python}).",
        "# `uv lock` with this file picks the same torch build: the PyTorch index is declared",
        "# explicit and only the torch family is routed to it ([tool.uv.sources]).",
        "",
        "[project]",
        f"name = {_toml.value(_project_name(name))}",
        f"version = {_toml.value('0')}",
        f"requires-python = {_toml.value(f'>={meta.python}')}",
        f"dependencies = {_toml.multiline_array(dependencies)}",
        "",
        "[tool.uv]",
        "# The lock's platforms and Python: uv resolves for these only.",
        f"environments = {_toml.multiline_array(environments)}",
    ]
    if meta.exclude_newer is not None:
        stamp = meta.exclude_newer.strftime("%Y-%m-%dT%H:%M:%SZ")
        lines += [
            "# The lock's cut-off: no file uploaded later.",
            f"exclude-newer = {_toml.value(stamp)}",
        ]
    lines.append("")
    if meta.pypi_index and meta.pypi_index.rstrip("/") != DEFAULT_PYPI_INDEX:
        lines += [
            "# The PyPI mirror the lock was made from.",
            "[[tool.uv.index]]",
            f"name = {_toml.value(PYPI_NAME)}",
            f"url = {_toml.value(meta.pypi_index)}",
            f"default = {_toml.value(True)}",
            "",
        ]
    if routed and meta.variant_index:
        lines += _routing(meta, routed)
    return "\n".join(lines).rstrip("\n") + "\n"


def _routing(meta: LockMeta, routed: Sequence[str]) -> list[str]:
    index = _index_name(meta.variant)
    via = [p for p in meta.platforms if meta.torch_source.get(p, "pytorch-index") != "pypi"]
    lines = [
        f"# The {meta.variant} build: its own index, used only for what [tool.uv.sources] routes.",
        "[[tool.uv.index]]",
        f"name = {_toml.value(index)}",
        f"url = {_toml.value(meta.variant_index)}",
        f"explicit = {_toml.value(True)}",
        "",
    ]
    source: object = {"index": index}
    if len(via) != len(meta.platforms):
        source = [{"index": index, "marker": Platform(p).marker} for p in via]
        others = ", ".join(p for p in meta.platforms if p not in via)
        lines.append(f"# {others}: PyPI's own torch is this build there, as in the lock.")
    lines.append("[tool.uv.sources]")
    ordered = [TORCH, *(n for n in routed if n != TORCH)] if TORCH in routed else list(routed)
    lines += [f"{_toml.key(n)} = {_toml.value(source)}" for n in ordered]
    return [*lines, ""]
