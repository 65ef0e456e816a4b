"""conda prefixes, through rattler (the conda implementation behind pixi; the `conda` extra).

The only module that imports rattler, and only inside the functions that solve or link: the
state of a prefix (``conda-meta/*.json``, conda's own record of each package it linked, with
every file's size and sha256) is read as JSON, so sync's no-op check and verify need neither
rattler nor a subprocess.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envlock.errors import (
    EnvlockError,
    HashMismatchError,
    IndexUnavailableError,
    MaterialiseError,
    ResolutionError,
    UsageError,
)
from envlock.io.files import file_sha256
from envlock.urls import redact_text

if TYPE_CHECKING:
    from types import ModuleType

CONDA_META = "conda-meta"
DEFAULT_CHANNELS = ("conda-forge",)
_EXTRA_HINT = "Install the conda extra: pip install 'envlock[conda]' (it brings py-rattler)."


def rattler_module() -> ModuleType:
    """rattler, or a usage error that names the extra to install."""
    try:
        import rattler  # noqa: PLC0415 - the optional `conda` extra, loaded only when used
    except ImportError as exc:
        raise UsageError(
            "conda prefixes need py-rattler (the `conda` extra), which is not installed",
            hint=_EXTRA_HINT,
        ) from exc
    return rattler


@dataclass(frozen=True, slots=True, kw_only=True)
class CondaPackage:
    """One package of a prefix's conda part, as its conda-meta record names it."""

    name: str
    version: str
    build: str
    sha256: str  # of the package archive; "" when the record has none
    url: str
    meta: str  # the conda-meta/*.json file name

    @property
    def label(self) -> str:
        return f"{self.version}-{self.build}"

    def to_json(self) -> dict[str, str]:
        return {
            "version": self.version,
            "build": self.build,
            "sha256": self.sha256,
            "url": redact_text(self.url),
            "meta": self.meta,
        }


def is_conda_prefix(path: Path) -> bool:
    return (path / CONDA_META).is_dir()


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _meta_files(prefix: Path) -> list[Path]:
    try:
        return sorted(p for p in (prefix / CONDA_META).iterdir() if p.suffix == ".json")
    except OSError:
        return []


def read_packages(prefix: Path) -> tuple[CondaPackage, ...]:
    """The conda packages linked into ``prefix`` (its conda-meta records; unreadable ones are
    reported as a package named after the file, version "?")."""
    found: list[CondaPackage] = []
    for path in _meta_files(prefix):
        data = _read_json(path) or {}
        found.append(
            CondaPackage(
                name=str(data.get("name", path.stem)),
                version=str(data.get("version", "?")),
                build=str(data.get("build", "?")),
                sha256=str(data.get("sha256", "")),
                url=str(data.get("url", "")),
                meta=path.name,
            )
        )
    return tuple(found)


def _paths(prefix: Path, meta: str) -> list[dict[str, Any]]:
    data = _read_json(prefix / CONDA_META / meta) or {}
    paths_data = data.get("paths_data")
    entries = paths_data.get("paths") if isinstance(paths_data, dict) else None
    if isinstance(entries, list):
        return [e for e in entries if isinstance(e, dict) and isinstance(e.get("_path"), str)]
    files = data.get("files")
    return [{"_path": f} for f in files if isinstance(f, str)] if isinstance(files, list) else []


def owned_paths(prefix: Path) -> frozenset[str]:
    """Every path (relative to the prefix) some conda-meta record lists."""
    return frozenset(
        str(entry["_path"]) for meta in _meta_files(prefix) for entry in _paths(prefix, meta.name)
    )


def fingerprint(prefix: Path, meta: str) -> str:
    """sha256 over (path, size, mtime) of every file one conda package linked: sync records
    it, and a file edited since (even to the same size) changes it, with no file read."""
    digest = hashlib.sha256()
    for entry in _paths(prefix, meta):
        try:
            stat = (prefix / str(entry["_path"])).lstat()
        except OSError:
            digest.update(f"{entry['_path']}\0missing\n".encode())
            continue
        digest.update(f"{entry['_path']}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return "sha256:" + digest.hexdigest()


def changed_files(prefix: Path, meta: str, *, deep: bool = False) -> tuple[str, ...]:
    """The files of one conda package that are missing or have another size than the package
    had (for files without a prefix placeholder), or (with ``deep``) whose sha256 is not the
    one rattler recorded when it linked them: "path missing" / "path"."""
    changed: list[str] = []
    for entry in _paths(prefix, meta):
        path = prefix / str(entry["_path"])
        try:
            size = path.lstat().st_size
        except OSError:
            changed.append(f"{entry['_path']} missing")
            continue
        plain = entry.get("path_type", "hardlink") == "hardlink"
        expected_size = entry.get("size_in_bytes")
        sized = plain and "prefix_placeholder" not in entry and isinstance(expected_size, int)
        if sized and size != expected_size:
            changed.append(str(entry["_path"]))
            continue
        expected = entry.get("sha256_in_prefix") or entry.get("sha256")
        if not deep or not plain or not isinstance(expected, str):
            continue
        try:
            actual = file_sha256(path).hex()
        except OSError:
            actual = ""
        if actual != expected:
            changed.append(str(entry["_path"]))
    return tuple(changed)


# ---------------------------------------------------------------------------------------
# solving and linking (rattler)


@dataclass(frozen=True, slots=True, kw_only=True)
class Solution:
    """The conda packages a solve chose; ``records`` are rattler's, for ``link``."""

    packages: tuple[CondaPackage, ...]
    python: str  # the python package's version ("3.11.7")
    channels: tuple[str, ...]  # where from, as rattler was given them
    records: tuple[object, ...]


def channel_source(channel: str) -> str:
    """A --channel value as rattler takes it: a name (conda-forge), a URL, or a local
    directory (an absolute or relative path), which becomes a file:// URL."""
    if "://" not in channel and (channel.startswith((".", "/", "~")) or os.sep in channel):
        path = Path(channel).expanduser()
        if not path.is_dir():
            raise UsageError(
                f"--channel {channel}: no such directory",
                hint="Pass a channel name (conda-forge), a URL, or the directory of a local "
                "channel (one holding noarch/repodata.json).",
            )
        return path.resolve().as_uri()
    return channel


def _failure(exc: Exception, what: str, channels: Sequence[str]) -> EnvlockError:
    rattler_module()
    import rattler.exceptions as errors  # noqa: PLC0415 - the extra is installed (just checked)

    detail = redact_text(str(exc))
    shown = ", ".join(redact_text(c) for c in channels)
    lowered = detail.lower()
    if isinstance(exc, errors.SolverError):
        return ResolutionError(
            f"{what}: the conda channels ({shown}) have nothing that satisfies it",
            hint="Check that the channel has a python build of the lock's Python for this "
            "platform (or pass --channel with one that does).",
            detail=detail,
        )
    if "sha256" in lowered or "hash" in lowered or "checksum" in lowered:
        return HashMismatchError(
            f"{what}: a conda package does not match the sha256 its channel lists",
            hint="The package changed since the channel was indexed (republished or tampered); "
            "the prefix was left as it was.",
            detail=detail,
        )
    if isinstance(exc, errors.InvalidChannelError | errors.InvalidUrlError):
        return UsageError(
            f"{what}: a --channel is not a channel name, URL or directory ({shown})",
            hint="Pass a name (conda-forge), a URL, or a local channel's directory.",
            detail=detail,
        )
    if isinstance(exc, errors.FetchRepoDataError | errors.GatewayError) or any(
        m in lowered for m in ("connect", "timed out", "dns", "status code", "404", "403")
    ):
        return IndexUnavailableError(
            f"{what}: a conda channel could not be read ({shown})",
            hint="Check the network/proxy, or pass --channel with a reachable mirror or a "
            "local channel; nothing was changed.",
            detail=detail,
        )
    return MaterialiseError(f"{what} failed", hint="rattler's explanation is above.", detail=detail)


def _package(record: Any) -> CondaPackage:
    sha256 = record.sha256
    return CondaPackage(
        name=str(record.name.normalized),
        version=str(record.version),
        build=str(record.build),
        sha256=sha256.hex() if isinstance(sha256, bytes) else "",
        url=str(record.url),
        meta=f"{record.name.normalized}-{record.version}-{record.build}.json",
    )


def solve(
    specs: Sequence[str],
    channels: Sequence[str],
    *,
    cache: Path,
    preferred: Path | None = None,
    exclude_newer: datetime | None = None,
) -> Solution:
    """rattler's solve of ``specs`` for this machine (its virtual packages: glibc, CUDA
    driver) from ``channels``; the packages linked in ``preferred`` (a prefix) are kept where
    they still satisfy the specs, so a re-sync does not move python for nothing."""
    import asyncio  # noqa: PLC0415 - rattler's API is async

    rattler = rattler_module()
    sources = [channel_source(c) for c in channels]
    locked = _linked_records(preferred) if preferred is not None else []
    what = f"solving {' '.join(specs)}"
    try:
        platform = str(rattler.Subdir.current())
        records = asyncio.run(
            rattler.solve(
                sources=sources,
                specs=list(specs),
                gateway=rattler.Gateway(cache_dir=cache / "repodata"),
                platforms=[platform, "noarch"],
                locked_packages=locked or None,
                virtual_packages=rattler.VirtualPackage.detect(),
                exclude_newer=exclude_newer,
            )
        )
    except Exception as exc:  # rattler raises its own exception types, all Exceptions
        raise _failure(exc, what, sources) from exc
    packages = tuple(sorted((_package(r) for r in records), key=lambda p: p.name))
    python = next((p.version for p in packages if p.name == "python"), None)
    if python is None:
        raise ResolutionError(
            f"{what}: the solution has no python package",
            hint="Check the conda channels: they must provide python.",
        )
    return Solution(
        packages=packages, python=python, channels=tuple(sources), records=tuple(records)
    )


def _linked_records(prefix: Path) -> list[Any]:
    """rattler's records of the packages linked in ``prefix`` (unreadable ones left out:
    they are only preferences)."""
    rattler = rattler_module()
    records = []
    for package in read_packages(prefix):
        try:
            records.append(rattler.PrefixRecord.from_path(prefix / CONDA_META / package.meta))
        except Exception:  # noqa: S112 - rattler's parse errors; a preference only
            continue
    return records


def _config(link_mode: str) -> Any:
    """rattler's link settings for envlock's --link-mode: never hard links unless asked (an
    edit in one prefix would reach rattler's cache and every prefix linked from it)."""
    rattler = rattler_module()
    config = rattler.Config()
    config.set("allow-hard-links", "true" if link_mode == "hardlink" else "false")
    config.set("allow-ref-links", "false" if link_mode == "copy" else "true")
    config.set("allow-symbolic-links", "false")
    config.set("run-post-link-scripts", "false")
    return config


def link(solution: Solution, prefix: Path, *, cache: Path, link_mode: str) -> None:
    """Link the solved packages into ``prefix`` (a fresh directory), as conda would:
    placeholders replaced with the prefix, conda-meta records written; no link scripts run."""
    import asyncio  # noqa: PLC0415 - rattler's API is async

    rattler = rattler_module()
    _check_local_archives(solution)
    try:
        asyncio.run(
            rattler.install(
                list(solution.records),
                target_prefix=prefix,
                cache_dir=cache / "pkgs",
                installed_packages=[],
                show_progress=False,
                execute_link_scripts=False,
                config=_config(link_mode),
            )
        )
    except Exception as exc:  # rattler raises its own exception types, all Exceptions
        what = f"linking {len(solution.records)} conda packages"
        raise _failure(exc, what, solution.channels) from exc


def _check_local_archives(solution: Solution) -> None:
    """rattler checks the sha256 of what it downloads, not of a file:// channel's archives (it
    reads them in place): those are hashed here, against the channel's repodata."""
    from urllib.parse import unquote, urlparse  # noqa: PLC0415

    for package in (_package(record) for record in solution.records):
        parsed = urlparse(package.url)
        if parsed.scheme != "file" or not package.sha256:
            continue
        path = Path(unquote(parsed.path))
        try:
            actual = file_sha256(path).hex()
        except OSError as exc:
            raise MaterialiseError(
                f"cannot read the conda package {path}",
                hint="Check the local channel (--channel): was it moved or re-indexed?",
                detail=str(exc),
            ) from exc
        if actual != package.sha256:
            raise HashMismatchError(
                f"the conda package {path.name} does not match the sha256 its channel lists",
                hint="The archive changed since the channel was indexed (rebuilt or tampered): "
                "re-index the channel only if you trust the new file; nothing was changed.",
                detail=f"expected sha256 {package.sha256}, got {actual} ({path})",
            )


def recorded_packages(marker: Mapping[str, object]) -> dict[str, dict[str, str]] | None:
    """The conda packages a sync's state file says it linked (name -> fields), or None."""
    conda = marker.get("conda")
    packages = conda.get("packages") if isinstance(conda, dict) else None
    if not isinstance(packages, dict):
        return None
    return {
        str(name): {str(k): str(v) for k, v in fields.items()}
        for name, fields in packages.items()
        if isinstance(fields, dict)
    }
