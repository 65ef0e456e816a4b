"""Run the uv binary that ships with envlock on a throw-away project."""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envlock import _toml
from envlock.errors import IndexUnavailableError, InternalError
from envlock.io import proc

if TYPE_CHECKING:
    from envlock.resolve import UvProject

DEFAULT_TIMEOUT_S = 900.0


@functools.cache
def uv_binary() -> str:
    try:
        from uv import find_uv_bin  # noqa: PLC0415 - optional at import time for tooling
    except ImportError as exc:  # pragma: no cover - uv is a hard dependency
        raise InternalError(
            "the uv package is not installed", hint="Reinstall envlock; uv is its dependency."
        ) from exc
    return str(find_uv_bin())


def cache_dir(environ: Mapping[str, str]) -> Path:
    """envlock's own uv cache, so the user's uv settings and cache state cannot leak in."""
    explicit = environ.get("ENVLOCK_CACHE_DIR")
    if explicit:
        # Relative to the directory envlock runs in, not to uv's (a temporary one for `lock`,
        # whose cache would then vanish with it).
        return Path(explicit).absolute() / "uv"
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "envlock" / "uv"


def page_clock(cache: Path) -> float:
    """Now, by the clock that stamps the files of uv's cache (a file server's, for a cache on
    one): the time a file made there gets. The system's clock if none can be made."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache, prefix=".envlock-clock-") as probe:
            return os.fstat(probe.fileno()).st_mtime
    except OSError:
        return time.time()


def page_times(cache: Path, names: Iterable[str]) -> dict[str, float]:
    """When uv's cache last wrote the index page of each of ``names`` that it holds
    (``simple-v*/<index>/<name>.rkyv``; uv rewrites an entry each time it fetches or
    revalidates the page), the newest of its indexes' entries. A name with no page is left out.
    """
    times: dict[str, float] = {}
    for name in names:
        for pattern in (f"simple-v*/*/{name}.rkyv", f"simple-v*/*/*/{name}.rkyv"):
            for entry in cache.glob(pattern):
                try:
                    written = entry.stat().st_mtime
                except OSError:
                    continue
                times[name] = max(written, times.get(name, written))
    return times


def _prober(project: UvProject) -> Callable[[str], int | None]:
    from envlock.io.http import http_status  # noqa: PLC0415 - only on the error path

    return lambda url: http_status(url, project.auth_for(url))


# What uv says when an --offline resolution wanted what its cache lacks: a page ("Because X was
# not found in the cache ... hint: Packages were unavailable because the network was
# disabled."), a wheel's metadata ("Network connectivity is disabled, but the requested data
# wasn't found in the cache").
_NOT_CACHED = ("network was disabled", "network connectivity is disabled", "not found in the cache")


@dataclass(frozen=True, slots=True, kw_only=True)
class UvOutcome:
    export: dict[str, Any]
    stderr: str


def lock_with_uv(
    project: UvProject,
    *,
    environ: Mapping[str, str],
    preferences: str | None = None,
    upgrade: bool = False,
    upgrade_packages: Sequence[str] = (),
    timeout: float = DEFAULT_TIMEOUT_S,
    offline: bool = False,
) -> UvOutcome:
    """Write the project in a temp dir, `uv lock` it, `uv export` it as PEP 751, read both.

    ``offline``: from uv's cache alone, no request sent; IndexUnavailableError when the cache
    lacks a page the resolution needs (cached_probe.cache_first asks the index then)."""
    # Here, not at the top: io.venv imports this module for uv_binary, and sync's no-op fast
    # path (envlock.io.sync_noop) must not pay for the resolver's imports.
    from envlock.resolve import classify_uv_failure  # noqa: PLC0415

    env = proc.clean_environment(environ, project.credentials)
    common = [
        "--no-config",
        # envlock's own interpreter: never a pyenv shim or another PATH lookup.
        "--python",
        sys.executable,
        "--no-python-downloads",
        "--cache-dir",
        str(cache_dir(environ)),
        "--color",
        "never",
        *(["--offline"] if offline else []),
    ]
    timeout_error = IndexUnavailableError(
        f"locking did not finish within {int(timeout)} s",
        hint="An index is probably not answering; check the network or the index URLs.",
    )
    with tempfile.TemporaryDirectory(prefix="envlock-") as tmp:
        workdir = Path(tmp)
        (workdir / "pyproject.toml").write_text(project.pyproject, encoding="utf-8")
        if preferences is not None and not upgrade:
            (workdir / "uv.lock").write_text(preferences, encoding="utf-8")
        lock_args = [uv_binary(), "lock", *common, *project.lock_args]
        if upgrade:
            lock_args.append("--upgrade")
        for name in upgrade_packages:
            lock_args += ["--upgrade-package", name]
        locked = proc.run(
            lock_args, cwd=workdir, env=env, timeout=timeout, timeout_error=timeout_error
        )
        if locked.returncode != 0:
            if offline and any(words in locked.stderr.lower() for words in _NOT_CACHED):
                raise IndexUnavailableError(
                    "uv's cache does not hold every page this resolution needs",
                    hint="Run it with the network (without --offline).",
                    detail=locked.stderr,
                )
            raise classify_uv_failure(locked.stderr, project, None if offline else _prober(project))
        exported = proc.run(
            [
                uv_binary(),
                "export",
                *common,
                "--frozen",
                "--format",
                "pylock.toml",
                "--no-header",
                "--no-emit-project",
                "--output-file",
                "pylock.toml",
            ],
            cwd=workdir,
            env=env,
            timeout=timeout,
            timeout_error=timeout_error,
        )
        if exported.returncode != 0:
            if offline:  # whatever it lacked: the caller asks with the network
                raise IndexUnavailableError(
                    "uv could not export the lock from its cache alone",
                    hint="Run it with the network (without --offline).",
                    detail=exported.stderr,
                )
            raise classify_uv_failure(exported.stderr, project)
        try:
            export = _toml.loads((workdir / "pylock.toml").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # ValueError: TOMLDecodeError
            raise InternalError(
                f"could not read uv's output: {exc}",
                hint="A bug in envlock or uv: re-run with --debug and report it.",
            ) from exc
    return UvOutcome(export=export, stderr=locked.stderr)
