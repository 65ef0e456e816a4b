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
from collections.abc import Iterator, Sequence
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, cast

from envlock.io.files import file_sha256
from envlock.materialise.installed import Dist, VenvState

if TYPE_CHECKING:
    from concurrent.futures import Executor, Future

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


def _rows(record: bytes) -> Iterator[list[str]]:
    # One row at a time: a torch RECORD has ~23,600 rows, and a list of them all (~9 MB for
    # 20,000) was most of verify's peak memory.
    text = record.decode("utf-8", errors="replace")
    if '"' not in text:
        # Nothing quoted (every RECORD uv or pip writes for ordinary file names): csv's default
        # dialect splits such a line at its commas, and so does str.split, at a fraction of the
        # cost (~25 ms of a torch venv's no-op, ~21,700 rows).
        return (row for row in (line.split(",") for line in text.splitlines()) if row[0])
    return (row for row in csv.reader(text.splitlines()) if row and row[0])


def _stat(site: Path, relative: str) -> os.stat_result:
    """os.stat of a RECORD row's file; a string join, not a Path per row (~10 us each, 20,000
    rows), with pathlib's reading of the row where the plain join fails (a trailing `/`)."""
    try:
        return os.stat(os.path.join(site, relative))  # noqa: PTH116, PTH118 - see above
    except OSError:
        return (site / relative).stat()


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
    lines: list[str] = []  # hashed at once: the same digest as one update per row, less work
    prefix = os.path.join(site, "")  # noqa: PTH118 - as _stat
    for row in _rows(record):
        relative = row[0]
        try:
            stat = os.stat(prefix + relative)  # noqa: PTH116 - as _stat, its fast path inline
        except OSError:
            try:
                stat = (site / relative).stat()
            except OSError:
                missing.append(relative)
                continue
        lines.append(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n")
        if len(row) >= 3 and row[2].isdigit() and int(row[2]) != stat.st_size:
            resized.append(relative)
    fingerprint = hashlib.sha256("".join(lines).encode())
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


def changed_files(site: Path, dist: Dist, *, workers: int | None = None) -> tuple[str, ...]:
    """RECORD rows whose file's sha256 differs from the row's (--deep), in RECORD's order
    (see changed_files_each)."""
    return changed_files_each(site, (dist,), workers=workers)[0]


def changed_files_each(
    site: Path, dists: Sequence[Dist], *, workers: int | None = None
) -> tuple[tuple[str, ...], ...]:
    """For each of ``dists``, its RECORD rows whose file's sha256 differs from the row's
    (--deep), in RECORD's order.

    Streamed through 1 MiB buffers, one per file being hashed (memory does not grow with the
    files' size); files of 1 MiB or more, of all the dists, are hashed by ``workers`` threads
    (default: the CPUs, at most 8; hashlib and reads release the GIL) while this thread hashes
    the small ones through one buffer of its own. A row that is not a regular file (a FIFO, a
    device, a directory) or cannot be read is changed: it is not shown to hold the recorded
    bytes, and reading it could block or never end. A file that is gone is left to the scan,
    which reports it missing."""
    count = min(8, os.cpu_count() or 1) if workers is None else workers
    buffer = memoryview(bytearray(_BUFFER))
    if count < 2:
        return tuple(_finish(*_start(site, dist, None, buffer)) for dist in dists)
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415 - only for --deep

    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="envlock-hash") as pool:
        started = [_start(site, dist, pool, buffer) for dist in dists]
        return tuple(_finish(*each) for each in started)


_BIG = 1 << 20  # a file at least this big (by RECORD) goes to the hashing threads
_BUFFER = 1 << 20
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_Changed = list[tuple[int, str]]  # (row number, path)
_Pending = list[tuple[int, str, "Future[bool]"]]


def _start(
    site: Path, dist: Dist, pool: Executor | None, buffer: memoryview
) -> tuple[_Changed, _Pending]:
    """Hash ``dist``'s small files here (its big ones too without ``pool``) and hand its big
    ones to ``pool``: the rows found changed so far, and those still being hashed."""
    changed: _Changed = []
    pending: _Pending = []
    try:
        record = (site / dist.directory / "RECORD").read_bytes()
    except OSError:
        return changed, pending
    rows = (row for row in _rows(record) if len(row) >= 2 and row[1].startswith("sha256="))
    for number, row in enumerate(rows):
        relative, expected = row[0], row[1]
        big = len(row) >= 3 and row[2].isdigit() and int(row[2]) >= _BIG
        if big and pool is not None:  # its own buffer, allocated by the thread that hashes it
            job = pool.submit(_differs, site, relative, expected, None)
            pending.append((number, relative, job))
        elif _differs(site, relative, expected, buffer):
            changed.append((number, relative))
    return changed, pending


def _finish(changed: _Changed, pending: _Pending) -> tuple[str, ...]:
    changed += [(number, relative) for number, relative, job in pending if job.result()]
    return tuple(relative for _, relative in sorted(changed))


def _differs(site: Path, relative: str, expected: str, buffer: memoryview | None) -> bool:
    path = os.path.join(site, relative)  # noqa: PTH118 - as _stat
    try:
        actual = _regular_file_sha256(
            path, buffer if buffer is not None else memoryview(bytearray(_BUFFER))
        )
    except OSError:
        try:
            _stat(site, relative)
        except OSError:
            return False  # gone: the scan reports it missing
        return True  # there, but unreadable
    return actual is None or _record_hash(actual) != expected


def _regular_file_sha256(path: str, buffer: memoryview) -> bytes | None:
    """sha256 of a regular file's bytes, read through ``buffer``; None for anything else.
    O_NONBLOCK: a FIFO in the venv opens at once (else open waits for a writer, forever)."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        if not S_ISREG(os.fstat(fd).st_mode):
            return None
        digest = hashlib.sha256()
        with open(fd, "rb", buffering=0, closefd=False) as handle:
            while size := handle.readinto(buffer):
                digest.update(buffer[:size])
        return digest.digest()
    finally:
        os.close(fd)


def _canonical(name: str) -> NormalizedName:
    """PEP 503's normal form, as packaging.utils.canonicalize_name gives it: written out here
    because sync's no-op fast path (envlock.io.sync_noop) scans with this module, and importing
    packaging.utils (it loads packaging.tags) costs it more than the whole scan."""
    return cast("NormalizedName", _SEPARATORS.sub("-", name).lower())


_SEPARATORS = re.compile(r"[-_.]+")
