"""Virtual environments: find an interpreter, create, query, inspect (installing into one is
envlock.io.install)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envlock.errors import (
    IndexUnavailableError,
    MaterialiseError,
)

if TYPE_CHECKING:
    from envlock.io import proc

# proc, uv, tempfile and packaging are imported where used: sync's no-op fast path
# (envlock.io.sync_noop) loads this module, and every import is start-up time there.
MARKER_FILE = ".envlock-sync.json"
# Output ends with a delimiter line and the JSON: a .pth in the venv may print anything first.
_DELIMITER = "--envlock-interpreter-query--"
_QUERY = (
    "import json, platform, sys, sysconfig; "
    f"print('\\n{_DELIMITER}'); "
    "print(json.dumps({'version': platform.python_version(), "
    "'minor': f'{sys.version_info[0]}.{sys.version_info[1]}', "
    "'implementation': sys.implementation.name, 'platform': sysconfig.get_platform(), "
    "'purelib': sysconfig.get_path('purelib'), "
    "'base': getattr(sys, '_base_executable', sys.executable)}))"
)
# What a venv holds at its top level (python -m venv, virtualenv, uv venv, and envlock's state
# file). sync replaces only a directory that holds nothing else: anything more is the user's.
VENV_ENTRIES = frozenset(
    {
        "bin",
        "Scripts",
        "lib",
        "Lib",
        "lib64",
        "include",
        "Include",
        "share",
        "etc",  # data files some wheels install (jupyter's etc/jupyter)
        "pyvenv.cfg",
        ".gitignore",
        "CACHEDIR.TAG",
        ".lock",
        MARKER_FILE,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Interpreter:
    python: Path
    version: str  # "3.11.7"
    minor: str  # "3.11"
    implementation: str
    purelib: Path
    base: Path  # the interpreter a venv of it is built from


def python_in(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def run_uv(
    args: Sequence[str | Path], environ: Mapping[str, str], timeout: float = 900
) -> proc.Completed:
    from envlock.io import proc  # noqa: PLC0415 - see the note at the top
    from envlock.io.uv import uv_binary  # noqa: PLC0415

    env = proc.clean_environment(environ)
    return proc.run(
        [uv_binary(), *args],
        env=env,
        timeout=timeout,
        timeout_error=IndexUnavailableError(
            f"uv did not finish within {int(timeout)} s",
            hint="Check the network/proxy (a stalled index?); nothing was changed.",
        ),
    )


def find_python(minor: str, environ: Mapping[str, str]) -> Path:
    """A CPython ``minor`` interpreter on this machine (never downloaded)."""
    # --system: never a virtual environment (the project's own .venv is not an interpreter to
    # build from); PATH (python3.12), pyenv and uv-managed interpreters are all searched.
    result = run_uv(
        ["python", "find", "--no-config", "--system", "--no-python-downloads", minor], environ
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise MaterialiseError(
            f"no Python {minor} interpreter found on this machine (the lock is for Python {minor})",
            hint=f"Install CPython {minor} (e.g. `uv python install {minor}`), then sync again.",
        )
    return Path(result.stdout.strip().splitlines()[-1])


def create(path: Path, python: Path, environ: Mapping[str, str]) -> None:
    # Relocatable: the venv is built beside its final path and renamed into place.
    result = run_uv(
        ["venv", "--no-config", "--relocatable", "--python", python, "--no-python-downloads", path],
        environ,
    )
    if result.returncode != 0:
        raise MaterialiseError(
            f"could not create a venv at {path}",
            hint="Check that the parent directory is writable and the interpreter works.",
            detail=result.stderr.strip(),
        )


def current() -> Interpreter:
    """The interpreter envlock runs on, without spawning it."""
    import platform  # noqa: PLC0415
    import sysconfig  # noqa: PLC0415

    return Interpreter(
        python=Path(sys.executable),
        version=platform.python_version(),
        minor=f"{sys.version_info.major}.{sys.version_info.minor}",
        implementation=sys.implementation.name,
        purelib=Path(sysconfig.get_path("purelib")),
        base=Path(getattr(sys, "_base_executable", sys.executable)),
    )


def purelib_of(venv: Path, minor: str) -> Path:
    """site-packages of a CPython venv, by the layout venv/uv create."""
    if sys.platform == "win32":
        return venv / "Lib" / "site-packages"
    return venv / "lib" / f"python{minor}" / "site-packages"


def query(python: Path) -> Interpreter:
    from envlock.io import proc  # noqa: PLC0415 - see the note at the top

    result = proc.run(
        [python, "-I", "-c", _QUERY], env=proc.clean_environment(os.environ), timeout=60
    )
    if result.returncode != 0:
        raise MaterialiseError(
            f"{python} does not run",
            hint="Remove the broken venv or pick another path.",
            detail=result.stderr.strip(),
        )
    _, found, payload = result.stdout.rpartition(_DELIMITER)
    try:
        data = json.loads(payload) if found else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise MaterialiseError(
            f"{python} did not answer envlock's interpreter query",
            hint="Is it a CPython interpreter? Remove the broken venv or pick another path.",
            detail=result.stdout.strip()[-2000:],
        )
    return Interpreter(
        python=python,
        version=data["version"],
        minor=data["minor"],
        implementation=data["implementation"],
        purelib=Path(data["purelib"]),
        base=Path(data["base"]),
    )


def installed(python: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """Installed distributions: normalised name -> version."""
    result = run_uv(["pip", "list", "--no-config", "--python", python, "--format", "json"], environ)
    if result.returncode != 0:
        raise MaterialiseError(
            f"cannot list {python}'s packages",
            hint="Is it a working venv? `envlock sync` re-creates it.",
            detail=result.stderr.strip(),
        )
    from packaging.utils import canonicalize_name  # noqa: PLC0415 - see the note at the top

    return {canonicalize_name(row["name"]): row["version"] for row in json.loads(result.stdout)}


def read_marker(venv: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((venv / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_marker(venv: Path, data: Mapping[str, object]) -> None:
    (venv / MARKER_FILE).write_text(json.dumps(dict(data), sort_keys=True) + "\n", encoding="utf-8")


def old_beside(path: Path) -> Path:
    """Where the old environment waits while a sync swaps the new one in (one sync per
    directory at a time)."""
    return path.parent / f".{path.name}.envlock-old"


def new_prefix(path: Path) -> str:
    """How the name of each build directory of a sync of PATH (beside it) begins."""
    return f".{path.name}.envlock-new-"


def remove_tree(path: Path) -> None:
    import shutil  # noqa: PLC0415 - only on the failure path

    shutil.rmtree(path, ignore_errors=True)


def link_mode_for(cache: Path, target_dir: Path) -> str:
    """``auto``'s choice: clone (copy-on-write) where the filesystem can reflink from uv's
    cache into ``target_dir``, else copy. Never hardlink: an edit in one venv would reach the
    cache and every venv synced from it. (uv's own clone falls back to hard links silently.)"""
    if sys.platform == "darwin":
        return "clone"  # APFS clonefile; uv's default there
    try:
        import fcntl  # noqa: PLC0415 - POSIX only
    except ImportError:  # pragma: no cover - Windows
        return "copy"
    import tempfile  # noqa: PLC0415 - see the note at the top

    ficlone = 0x40049409  # linux/fs.h FICLONE
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with (
            tempfile.NamedTemporaryFile(dir=cache, prefix=".envlock-reflink-") as source,
            tempfile.NamedTemporaryFile(dir=target_dir, prefix=".envlock-reflink-") as dest,
        ):
            source.write(b"envlock")
            source.flush()
            fcntl.ioctl(dest.fileno(), ficlone, source.fileno())
    except OSError:
        return "copy"
    return "clone"


def honour_umask(path: Path, mode: int) -> None:
    """Give ``path`` ``mode`` less the process umask, as a plain mkdir/open would have."""
    current = os.umask(0)
    os.umask(current)
    path.chmod(mode & ~current)


@contextlib.contextmanager
def exclusive_dir(directory: Path) -> Iterator[None]:
    """Hold an advisory lock on a directory (no file is created): syncs that swap venvs in
    one directory take turns, whatever lock each one syncs from."""
    try:
        import fcntl  # noqa: PLC0415 - POSIX only
    except ImportError:  # pragma: no cover - Windows: no advisory locks, run unguarded
        yield
        return
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
