"""Virtual environments: find an interpreter, create, query, install exactly, inspect."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from packaging.utils import canonicalize_name

from envlock.errors import (
    EnvlockError,
    HashMismatchError,
    IndexUnavailableError,
    MaterialiseError,
)
from envlock.io import proc
from envlock.io.uv import cache_dir, uv_binary
from envlock.settings import in_envlock_terms
from envlock.urls import private_indexes, redact_text

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


def _uv(
    args: Sequence[str | Path], environ: Mapping[str, str], timeout: float = 900
) -> proc.Completed:
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
    result = _uv(
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
    result = _uv(
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


def _failure(stderr: str, what: str) -> EnvlockError:
    detail = in_envlock_terms(redact_text(stderr.strip()))
    lowered = detail.lower()
    if any(
        m in lowered
        for m in (
            "hash mismatch",
            "do not match the hashes",
            "bad crc",
            "failed to extract archive",
            # bytes that are not even a wheel: uv unpacks while it hashes, and says so first
            "invalid package format",
            "failed to read from zip file",
        )
    ):
        return HashMismatchError(
            f"{what}: an artifact does not match the sha256 in the lock",
            hint="The file changed since it was locked (republished or tampered). Do not "
            "install it; re-lock only if you trust the new artifact.",
            detail=detail,
        )
    if any(
        m in lowered
        for m in (
            "failed to fetch",
            "failed to download",
            "connect",
            "timed out",
            "status code",
            "dns error",
        )
    ):
        return IndexUnavailableError(
            f"{what}: an artifact could not be downloaded",
            hint="Check the network/proxy; the venv was left as it was.",
            detail=detail,
        )
    return MaterialiseError(
        f"{what} failed",
        hint="uv's explanation is above; the venv was left as it was. Re-run with --debug "
        "for the command lines.",
        detail=detail,
    )


def _credentialed_indexes(environ: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """Private indexes from ENVLOCK_*_INDEX_URL as named uv indexes, their credentials in the
    environment (never on the command line): uv then authenticates the lock's artifact URLs
    on those indexes. The lock itself holds no credentials."""
    args: list[str] = []
    env: dict[str, str] = {}
    for index in private_indexes(environ):
        args += ["--index", f"envlock-{index.name}={index.clean}"]
        env[f"UV_INDEX_ENVLOCK_{index.name.upper()}_USERNAME"] = index.user
        env[f"UV_INDEX_ENVLOCK_{index.name.upper()}_PASSWORD"] = index.password
    return args, env


def install_exact(
    python: Path,
    requirements: str,
    environ: Mapping[str, str],
    *,
    installer: str = "uv",
    link_mode: str = "copy",
    install_lock: str | None = None,
    echo: Callable[[str], None] = lambda _line: None,
) -> None:
    """Make the environment exactly the requirements (hashed URLs), removing everything else.

    ``link_mode`` is uv's (copy, clone, hardlink): how files get from uv's cache into the venv.
    ``install_lock`` is the same selection as a PEP 751 lock; uv installs from it when given
    (each artifact downloaded once); pip always reads the requirements.

    uv downloads and checks every artifact before it changes the environment, so a hash
    mismatch or a network failure leaves an existing venv as it was.
    """
    with tempfile.TemporaryDirectory(prefix="envlock-sync-") as tmp:
        reqs = Path(tmp) / "requirements.txt"
        reqs.write_text(requirements, encoding="utf-8")
        if installer == "pip":
            _pip_install(python, reqs, environ)
            return
        source = reqs
        if install_lock is not None:
            source = Path(tmp) / "pylock.toml"
            source.write_text(install_lock, encoding="utf-8")
        offline = (
            ["--offline"]
            if all(
                line.split(" @ ", 1)[1].startswith("file:")
                for line in requirements.splitlines()
                if " @ " in line
            )
            else []
        )
        index_args, index_env = _credentialed_indexes(environ)
        result = proc.run_echoing(
            [
                uv_binary(),
                "pip",
                "sync",
                *offline,
                "--no-config",
                "--python",
                python,
                *(["--require-hashes"] if source == reqs else []),
                "--cache-dir",
                cache_dir(environ),
                "--no-python-downloads",
                "--link-mode",
                link_mode,
                *index_args,
                source,
            ],
            env=proc.clean_environment(environ, index_env),
            echo=echo,
            timeout=1800,
            timeout_error=IndexUnavailableError(
                "installing did not finish within 1800 s",
                hint="Check the network/proxy; the venv was left as it was.",
            ),
        )
    if result.returncode != 0:
        raise _failure(result.stderr, "installing the lock")


def _pip_install(python: Path, reqs: Path, environ: Mapping[str, str]) -> None:
    """pip, isolated from every pip.conf and PIP_* variable, for hosts that do not want uv."""
    env = proc.clean_environment(environ)
    ensure = proc.run([python, "-m", "pip", "--version"], env=env, timeout=60)
    if ensure.returncode != 0:
        seeded = proc.run([python, "-m", "ensurepip", "--default-pip"], env=env, timeout=300)
        if seeded.returncode != 0:
            raise MaterialiseError(
                "pip is not available in the venv",
                hint="Use the default installer (--installer uv), or a Python with ensurepip.",
                detail=seeded.stderr,
            )
    # Private indexes: pip applies an index's credentials to artifact URLs under it. They go
    # in the environment (not argv, which `ps` and --debug show), so this one step runs
    # without --isolated: clean_environment() already dropped every PIP_* variable and set
    # PIP_CONFIG_FILE to os.devnull, which makes pip read no configuration file at all.
    private = " ".join(index.url for index in private_indexes(environ))
    download_env = proc.clean_environment(
        environ, {"PIP_EXTRA_INDEX_URL": private} if private else {}
    )
    # Download and check every artifact first, so a bad hash changes nothing.
    with tempfile.TemporaryDirectory(prefix="envlock-wheels-") as wheels:
        fetched = proc.run(
            [
                python,
                "-m",
                "pip",
                "--no-input",
                "--disable-pip-version-check",
                "download",
                "--require-hashes",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                wheels,
                "-r",
                reqs,
            ],
            env=download_env,
            timeout=1800,
        )
        if fetched.returncode != 0:
            raise _failure(fetched.stderr, "downloading the lock with pip")
        installed = proc.run(
            [
                python,
                "-m",
                "pip",
                "--isolated",
                "--disable-pip-version-check",
                "--no-input",
                "install",
                "--require-hashes",
                "--no-deps",
                "--no-index",
                "-r",
                _local_requirements(reqs, Path(wheels)),
            ],
            env=env,
            timeout=1800,
        )
    if installed.returncode != 0:
        raise _failure(installed.stderr, "installing the lock with pip")
    _pip_remove_extraneous(python, reqs, env)


def _local_requirements(reqs: Path, wheels: Path) -> Path:
    """The same hashed requirements, pointing at the files `pip download` just checked: a URL
    requirement would make `pip install` fetch it again (and without the index credentials)."""
    text = reqs.read_text(encoding="utf-8")
    local = re.sub(
        r" @ (\S+)",
        lambda m: f" @ {(wheels / unquote(m.group(1).rsplit('/', 1)[-1])).as_uri()}",
        text,
    )
    path = reqs.with_name("local-requirements.txt")
    path.write_text(local, encoding="utf-8")
    return path


def _pip_remove_extraneous(python: Path, reqs: Path, env: Mapping[str, str]) -> None:
    """Uninstall what the lock does not list; pip itself goes last (the venv stays exact)."""
    wanted = {
        canonicalize_name(line.split(" @ ", 1)[0].strip())
        for line in reqs.read_text(encoding="utf-8").splitlines()
        if " @ " in line
    }
    listed = proc.run(
        [
            python,
            "-m",
            "pip",
            "--isolated",
            "--disable-pip-version-check",
            "list",
            "--format",
            "json",
        ],
        env=env,
        timeout=120,
    )
    if listed.returncode != 0:
        raise MaterialiseError(
            "pip list failed",
            hint="The new venv was not moved into place; try --installer uv.",
            detail=listed.stderr,
        )
    names = [
        row["name"]
        for row in json.loads(listed.stdout.strip().splitlines()[0])
        if canonicalize_name(row["name"]) not in wanted
    ]
    extra = sorted(n for n in names if n.lower() != "pip") + [
        n for n in names if n.lower() == "pip"
    ]
    if extra:
        removed = proc.run(
            [
                python,
                "-m",
                "pip",
                "--isolated",
                "--disable-pip-version-check",
                "uninstall",
                "-y",
                *extra,
            ],
            env=env,
            timeout=600,
        )
        if removed.returncode != 0:
            raise MaterialiseError(
                "pip could not remove extraneous packages",
                hint="The new venv was not moved into place; try --installer uv.",
                detail=removed.stderr,
            )


def installed(python: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """Installed distributions: normalised name -> version."""
    result = _uv(["pip", "list", "--no-config", "--python", python, "--format", "json"], environ)
    if result.returncode != 0:
        raise MaterialiseError(
            f"cannot list {python}'s packages",
            hint="Is it a working venv? `envlock sync` re-creates it.",
            detail=result.stderr.strip(),
        )
    return {canonicalize_name(row["name"]): row["version"] for row in json.loads(result.stdout)}


def check(python: Path, environ: Mapping[str, str]) -> str | None:
    """None when installed dependencies are consistent, else uv's report."""
    result = _uv(["pip", "check", "--no-config", "--python", python], environ)
    if result.returncode == 0:
        return None
    return (result.stdout + result.stderr).strip()


def read_marker(venv: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((venv / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_marker(venv: Path, data: Mapping[str, object]) -> None:
    (venv / MARKER_FILE).write_text(json.dumps(dict(data), sort_keys=True) + "\n", encoding="utf-8")


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
