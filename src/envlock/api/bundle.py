"""envlock bundle: every artifact and a path-based lock, for an offline sync."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from envlock import __version__
from envlock.api.export import _check_outputs, _export_platform
from envlock.api.project import Reporter, _digest, _index_auth, _quiet, _read_envlock_lock
from envlock.errors import MaterialiseError
from envlock.io import files
from envlock.lockfile import LOCK_FILENAME, render_lock
from envlock.spec import Platform

if TYPE_CHECKING:
    from envlock.materialise.select import Selected


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleResult:
    directory: Path
    files: int
    fetched: int
    bytes: int
    platforms: tuple[str, ...]


def bundle(
    lock_path: Path,
    output: Path,
    *,
    platforms: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    report: Reporter = _quiet,
    force: bool = False,
) -> BundleResult:
    """Download every artifact the lock selects for the platforms into OUTPUT/wheels, and write
    OUTPUT/pylock.toml (relative `path` artifacts) and OUTPUT/manifest.json, for offline sync.
    Neither may replace the lock being bundled, nor (without ``force``) a file no bundle wrote:
    that is refused before anything is downloaded."""
    import json  # noqa: PLC0415 - see the module note

    from envlock.io.download import Download, download_all  # noqa: PLC0415
    from envlock.materialise.exports import is_bundle_lock, is_bundle_manifest  # noqa: PLC0415
    from envlock.materialise.select import (  # noqa: PLC0415
        bundle_lock,
        platform_target,
        select,
    )

    env = os.environ if environ is None else environ
    files.refuse_symlink(output)
    text, lock, meta = _read_envlock_lock(lock_path)
    for note in meta.derived:  # another tool's lock: what stands in for [tool.envlock]
        report(f"{lock_path.name} has no [tool.envlock]; derived {note}")
    wanted = tuple(platforms) or meta.platforms
    for name in wanted:
        _export_platform(lock_path, meta, name)
    chosen: dict[str, Selected] = {}
    for name in wanted:
        target = platform_target(Platform(name), meta.python)
        for item in select(lock, target, lock_dir=lock_path.parent):
            chosen.setdefault(item.filename, item)
    builds = sorted({canonicalize_name(s.name) for s in chosen.values() if not s.is_wheel})
    if builds:
        raise MaterialiseError(
            f"the lock has only a source distribution of {', '.join(builds)} for "
            f"{', '.join(wanted)}; an offline sync cannot build it",
            hint="A build needs its build requirements, which would come unpinned from PyPI. "
            "Publish a wheel of it to your index and run `envlock lock --upgrade`, or sync "
            "online with --allow-build.",
        )
    _check_outputs(
        {output / LOCK_FILENAME: is_bundle_lock, output / "manifest.json": is_bundle_manifest},
        lock_path=lock_path,
        force=force,
    )
    wheels = output / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    items = [
        Download(url=s.url, sha256=s.sha256, size=s.size, dest=wheels / s.filename)
        for s in sorted(chosen.values(), key=lambda s: s.filename)
    ]
    report(f"Bundling {len(items)} files for {', '.join(wanted)} into {wheels}")
    fetched = download_all(items, auth=_index_auth(env), progress=report)
    bundled = bundle_lock(lock, frozenset(chosen))
    files.write_atomic(output / LOCK_FILENAME, render_lock(bundled))
    manifest = {
        "envlock-version": __version__,
        "source-lock": lock_path.name,
        "source-lock-sha256": _digest(text),
        "platforms": list(wanted),
        "python": meta.python,
        "files": [
            {"path": f"wheels/{i.dest.name}", "sha256": i.sha256, "size": i.dest.stat().st_size}
            for i in items
        ],
    }
    files.write_atomic(output / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    total = sum(i.dest.stat().st_size for i in items)
    return BundleResult(
        directory=output, files=len(items), fetched=fetched, bytes=total, platforms=wanted
    )
