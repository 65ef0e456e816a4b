"""Installers: make a venv's packages exactly a hashed selection, and check the result.

:class:`UvInstaller` (`uv pip sync`, the default) and :class:`PipInstaller` (pip, isolated,
wheels only) are the real implementations of the ``Installer`` port (envlock.io.ports) that
`envlock sync` installs through; :func:`installer_named` picks one by its --installer name.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from packaging.utils import canonicalize_name

from envlock import _toml
from envlock.errors import (
    EnvlockError,
    HashMismatchError,
    IndexUnavailableError,
    MaterialiseError,
)
from envlock.io import proc, transfer, venv
from envlock.io.transfer import Transfer
from envlock.io.uv import cache_dir, uv_binary
from envlock.settings import in_envlock_terms
from envlock.urls import private_indexes, redact_text


@dataclass(frozen=True, slots=True)
class UvInstaller:
    """`uv pip sync` from the selection as a PEP 751 lock (each artifact downloaded once)."""

    name: str = "uv"
    builds_sdists: bool = True

    def install_exact(
        self,
        python: Path,
        requirements: str,
        environ: Mapping[str, str],
        *,
        link_mode: str,
        install_lock: str | None,
        echo: Callable[[str], None],
        progress: Callable[[Transfer], None] | None = None,
    ) -> None:
        _uv_sync(
            python,
            requirements,
            environ,
            link_mode=link_mode,
            install_lock=install_lock,
            echo=echo,
            progress=progress,
        )

    def check(self, python: Path, environ: Mapping[str, str]) -> str | None:
        return check(python, environ)


@dataclass(frozen=True, slots=True)
class PipInstaller:
    """pip, isolated from every pip.conf and PIP_* variable: download and verify every wheel,
    install them offline, remove the rest (for hosts that do not want uv)."""

    name: str = "pip"
    builds_sdists: bool = False

    def install_exact(
        self,
        python: Path,
        requirements: str,
        environ: Mapping[str, str],
        *,
        link_mode: str,
        install_lock: str | None,
        echo: Callable[[str], None],
        progress: Callable[[Transfer], None] | None = None,
    ) -> None:
        del link_mode, install_lock, echo, progress  # pip reads the requirements; copies files
        with tempfile.TemporaryDirectory(prefix="envlock-sync-") as tmp:
            reqs = Path(tmp) / "requirements.txt"
            reqs.write_text(requirements, encoding="utf-8")
            _pip_install(python, reqs, environ)

    def check(self, python: Path, environ: Mapping[str, str]) -> str | None:
        return check(python, environ)


def installer_named(name: str) -> UvInstaller | PipInstaller:
    """The installer --installer names: pip, else uv."""
    return PipInstaller() if name == "pip" else UvInstaller()


def _failure(stderr: str, what: str) -> EnvlockError:
    detail = in_envlock_terms(redact_text(stderr.strip()))
    lowered = detail.lower()
    if any(
        m in lowered
        for m in (
            "hash mismatch",
            # the install lock carries each file's size, and uv checks it before the hash
            "size mismatch",
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


def _cache_indexes(packages: Sequence[Mapping[str, Any]], *, already: Sequence[str]) -> list[str]:
    """``--index URL`` for each index the selection's packages came from.

    uv finds an index artifact in its cache only under an index it was given: without them,
    every wheel of a non-PyPI index (and every wheel, for a lock without ``index`` keys) is a
    URL requirement that uv revalidates, and PyPI's CDN answers with the whole file again.
    The lock's artifact URLs are still what uv installs from; the indexes only key the cache
    (whose entries uv checks against the lock's hashes)."""
    named = {arg.split("=", 1)[-1] for arg in already}
    indexes = dict.fromkeys(str(p["index"]) for p in packages if p.get("index"))
    return [arg for url in indexes if url not in named for arg in ("--index", url)]


def _packages(install_lock: str | None) -> list[Mapping[str, Any]]:
    if install_lock is None:
        return []
    found = _toml.loads(install_lock).get("packages", [])
    return [p for p in found if isinstance(p, dict)] if isinstance(found, list) else []


def _sizes(packages: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """name -> the size of the artifact the selection installs (what each download moves)."""
    sizes: dict[str, int] = {}
    for package in packages:
        artifacts = package.get("wheels") or [package.get("sdist") or {}]
        size = artifacts[0].get("size") if isinstance(artifacts[0], dict) else None
        if isinstance(size, int):
            sizes[str(package.get("name", ""))] = size
    return sizes


def _uv_sync(
    python: Path,
    requirements: str,
    environ: Mapping[str, str],
    *,
    link_mode: str,
    install_lock: str | None,
    echo: Callable[[str], None],
    progress: Callable[[Transfer], None] | None = None,
) -> None:
    """`uv pip sync`: make the environment exactly the selection, removing everything else.

    ``link_mode`` is uv's (copy, clone, hardlink): how files get from uv's cache into the venv.
    ``install_lock`` is the selection as a PEP 751 lock; uv installs from it when given (each
    artifact downloaded once), else from the hashed requirements. ``progress`` gets the
    downloads' bytes as they move (io.transfer); ``echo`` each line, a finished download's
    with its size.

    uv downloads and checks every artifact before it changes the environment, so a hash
    mismatch or a network failure leaves an existing venv as it was.
    """
    with tempfile.TemporaryDirectory(prefix="envlock-sync-") as tmp:
        reqs = Path(tmp) / "requirements.txt"
        reqs.write_text(requirements, encoding="utf-8")
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
        packages = _packages(install_lock)
        index_args += _cache_indexes(packages, already=index_args)
        downloads = transfer.Downloads(_sizes(packages), progress)
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
            echo=lambda line: echo(downloads.line(line)),
            timeout=1800,
            timeout_error=IndexUnavailableError(
                "installing did not finish within 1800 s",
                hint="Check the network/proxy; the venv was left as it was.",
            ),
        )
    if result.returncode != 0:
        raise _failure(result.stderr, "installing the lock")
    if summary := downloads.summary():
        echo(summary)


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


def check(python: Path, environ: Mapping[str, str]) -> str | None:
    """None when installed dependencies are consistent, else uv's report."""
    result = venv.run_uv(["pip", "check", "--no-config", "--python", python], environ)
    if result.returncode == 0:
        return None
    return (result.stdout + result.stderr).strip()
