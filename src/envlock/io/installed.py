"""Read a venv's installed state from disk: dist-infos, RECORDs, pyvenv.cfg, start-up code.

No subprocess and no import of the venv's code: a venv whose .pth prints or whose interpreter
is gone is read all the same. The judgement lives in envlock.materialise.installed.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

from envlock.io.files import file_sha256
from envlock.materialise.installed import Dist, VenvState

if TYPE_CHECKING:
    from packaging.utils import NormalizedName

# Start-up code: the site module runs every *.pth line that starts with `import`, and imports
# sitecustomize / usercustomize (a module, a package or compiled) at every interpreter start.
_STARTUP_MODULES = ("sitecustomize", "usercustomize")


def _record_hash(digest: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _read_cfg(venv: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        text = (venv / "pyvenv.cfg").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return values
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip().lower()] = value.strip()
    return values


def _rows(record: bytes) -> list[list[str]]:
    text = record.decode("utf-8", errors="replace")
    return [row for row in csv.reader(text.splitlines()) if row and row[0]]


def _dist(site: Path, entry: Path) -> Dist:
    stem = entry.name.rsplit(".", 1)[0]
    name, _, version = stem.partition("-")
    version = version.partition("-")[0]  # egg-info: name-version-pyX.Y
    record_path = entry / "RECORD"
    try:
        record = record_path.read_bytes()
    except OSError:
        record = b""
    missing: list[str] = []
    resized: list[str] = []
    fingerprint = hashlib.sha256()
    for row in _rows(record):
        path = site / row[0]
        try:
            stat = path.stat()
        except OSError:
            missing.append(row[0])
            continue
        fingerprint.update(f"{row[0]}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        if len(row) >= 3 and row[2].isdigit() and int(row[2]) != stat.st_size:
            resized.append(row[0])
    return Dist(
        name=_canonical(name),
        version=version,
        directory=entry.name,
        record="sha256:" + hashlib.sha256(record).hexdigest() if record else "",
        files="sha256:" + fingerprint.hexdigest() if record else "",
        missing=tuple(missing),
        resized=tuple(resized),
        installer=_small_text(entry / "INSTALLER"),
        source=_direct_url(entry),
    )


def _small_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()[:200]
    except OSError:
        return ""


def _direct_url(entry: Path) -> str:
    import json  # noqa: PLC0415 - only when a direct_url.json exists

    try:
        data = json.loads((entry / "direct_url.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    url = data.get("url") if isinstance(data, dict) else None
    return url if isinstance(url, str) else ""


def _entries(site: Path) -> list[Path]:
    try:
        return sorted(site.iterdir())
    except OSError:
        return []


def _startup(site: Path, entries: list[Path]) -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in entries:
        module = entry.name.split(".", 1)[0]
        if entry.name.endswith(".pth") or module in _STARTUP_MODULES:
            for path in _walk(entry):
                try:
                    found[path.relative_to(site).as_posix()] = file_sha256(path).hex()
                except OSError:
                    found[path.relative_to(site).as_posix()] = "unreadable"
    return found


def _walk(path: Path) -> Iterator[Path]:
    if path.is_dir() and not path.is_symlink():
        for child in sorted(path.rglob("*")):
            if child.is_file():
                yield child
    else:
        yield path


def scan(venv: Path, site: Path) -> VenvState:
    """The installed state of ``venv`` whose site-packages is ``site``."""
    cfg = _read_cfg(venv)
    python = venv / "bin" / "python"
    executable = os.path.realpath(python) if python.exists() else ""
    entries = _entries(site)
    dists = tuple(
        _dist(site, entry)
        for entry in entries
        if entry.name.endswith((".dist-info", ".egg-info")) and entry.is_dir()
    )
    return VenvState(
        executable=executable,
        home=cfg.get("home", ""),
        version=cfg.get("version_info", cfg.get("version", "")),
        system_site_packages=cfg.get("include-system-site-packages", "false").lower() == "true",
        dists=dists,
        startup=_startup(site, entries),
    )


def owned_files(site: Path, dist: Dist) -> frozenset[str]:
    """The paths (relative to site-packages) a distribution's RECORD lists."""
    try:
        record = (site / dist.directory / "RECORD").read_bytes()
    except OSError:
        return frozenset()
    return frozenset(os.path.normpath(row[0]).replace(os.sep, "/") for row in _rows(record))


def changed_files(site: Path, dist: Dist) -> tuple[str, ...]:
    """RECORD rows whose file's sha256 differs from the row's (--deep), streamed."""
    try:
        record = (site / dist.directory / "RECORD").read_bytes()
    except OSError:
        return ()
    changed: list[str] = []
    for row in _rows(record):
        if len(row) < 2 or not row[1].startswith("sha256="):
            continue
        try:
            actual = _record_hash(file_sha256(site / row[0]))
        except OSError:
            continue  # reported as missing by the scan
        if actual != row[1]:
            changed.append(row[0])
    return tuple(changed)


def _canonical(name: str) -> NormalizedName:
    """PEP 503's normal form, as packaging.utils.canonicalize_name gives it: written out here
    because sync's no-op fast path (envlock.io.sync_noop) scans with this module, and importing
    packaging.utils (it loads packaging.tags) costs it more than the whole scan."""
    return cast("NormalizedName", _SEPARATORS.sub("-", name).lower())


_SEPARATORS = re.compile(r"[-_.]+")
