"""envlock sync: make a venv exactly the lock, built beside it and swapped in."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import NormalizedName, canonicalize_name

from envlock.api.doctor import _preflight
from envlock.api.imports import _check_imports
from envlock.api.imports import _recorded_wanted as _recorded_wanted  # noqa: PLC0414 - api.conda imports it from here
from envlock.api.project import Reporter, _digest, _quiet, _read_envlock_lock, read_lock
from envlock.errors import MaterialiseError
from envlock.io import swap
from envlock.io.swap import recover_interrupted_sync as recover_interrupted_sync  # noqa: PLC0414 - the api's
from envlock.io.sync_noop import FAST_KEY, fast_key, recorded_site

if TYPE_CHECKING:
    from packaging.pylock import Pylock

    from envlock.host import HostFacts
    from envlock.io.import_check import ImportReport
    from envlock.io.ports import HostProbe, Installer
    from envlock.io.transfer import Transfer
    from envlock.io.venv import Interpreter
    from envlock.lockfile import LockMeta
    from envlock.materialise.installed import Recorded
    from envlock.materialise.select import Selected


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncResult:
    venv: Path
    changed: bool
    created: bool
    packages: int
    warnings: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()  # why an existing venv was rebuilt
    conda: tuple[str, ...] = ()  # a conda prefix's conda part: "python 3.11.7", …
    imports: ImportReport | None = None  # the import check, when it ran


class LinkMode(StrEnum):
    """How sync's installer puts files from the cache into the venv."""

    AUTO = "auto"  # clone where the filesystem can, else copy
    COPY = "copy"
    CLONE = "clone"  # copy-on-write; uv falls back to hard links where reflink fails
    HARDLINK = "hardlink"  # shares inodes with the cache: an edit reaches every venv


def sync_target(path: Path, lock_path: Path, *, option: str) -> Path:
    """The absolute path a sync (``option``: --venv or --conda) replaces, after the checks
    every sync makes first: a symbolic link is refused (the swap would replace the link, not
    fill its target) and a missing lock is its own clear error."""
    if path.is_symlink():
        raise MaterialiseError(
            f"{path} is a symbolic link; refusing to replace it",
            hint=f"Sync the link's target directly: envlock sync {option} {path.resolve()}",
        )
    if not lock_path.is_file():
        read_lock(lock_path)  # the clear "does not exist" error
    return path.absolute()


def sync(
    venv_path: Path,
    *,
    lock_path: Path,
    installer: str | Installer = "uv",
    host_check: bool = True,
    host: HostFacts | None = None,
    environ: Mapping[str, str] | None = None,
    report: Reporter = _quiet,
    link_mode: str = LinkMode.AUTO,
    reinstall: bool = False,
    allow_build: Sequence[str] = (),
    host_probe: HostProbe | None = None,
    check_imports: bool | None = None,
    progress: Callable[[Transfer], None] | None = None,
) -> SyncResult:
    """Make the venv exactly the lock's selection for this host; nothing half-done on failure.

    ``installer``: "uv", "pip" or an Installer (envlock.io.ports); ``host_probe`` reads the
    host (default: this machine). Syncs into one directory take turns (an advisory lock on the
    venv's parent directory), so two runs meet nowhere else, whichever locks they sync from.

    Then the packages the spec names are imported in the venv (``check_imports``, see
    check_synced_imports): one that does not import raises ImportCheckError, the venv synced.
    ``progress`` gets the downloads' bytes as they move (envlock.io.transfer.Transfer)."""
    from envlock.io import venv  # noqa: PLC0415 - see the module note

    venv_path = sync_target(venv_path, lock_path, option="--venv")
    with venv.exclusive_dir(venv_path.parent):
        return _sync(
            venv_path,
            lock_path=lock_path,
            installer=installer,
            host_check=host_check,
            host=host,
            environ=environ,
            report=report,
            link_mode=link_mode,
            reinstall=reinstall,
            allow_build=frozenset(canonicalize_name(n) for n in allow_build),
            host_probe=host_probe,
            check_imports=check_imports,
            progress=progress,
        )


def _sync(
    venv_path: Path,
    *,
    lock_path: Path,
    installer: str | Installer,
    host_check: bool,
    host: HostFacts | None,
    environ: Mapping[str, str] | None,
    report: Reporter,
    link_mode: str,
    reinstall: bool,
    allow_build: frozenset[NormalizedName],
    host_probe: HostProbe | None,
    check_imports: bool | None,
    progress: Callable[[Transfer], None] | None = None,
) -> SyncResult:
    from envlock.io import installed, probe, venv  # noqa: PLC0415 - see the module note
    from envlock.materialise.installed import Recorded, compare  # noqa: PLC0415
    from envlock.materialise.select import (  # noqa: PLC0415
        platform_target,
        render_install_lock,
        render_requirements,
        select,
    )

    env = os.environ if environ is None else environ
    recover_interrupted_sync(venv_path)
    lock_text, lock, meta = _read_envlock_lock(lock_path)
    for note in meta.derived:  # a lock another tool wrote: say what was taken from it
        report(f"{lock_path.name} has no [tool.envlock]; derived {note}")
    host_probe = host_probe if host_probe is not None else probe.LocalHost()
    system = host_probe.system()
    exists = swap.replaceable(venv_path)
    marker = venv.read_marker(venv_path) if exists else None
    recorded = Recorded.from_marker(marker) if marker is not None else None
    reasons: tuple[str, ...] = ()
    # Nothing to do? The state file records what the last sync installed from which lock bytes,
    # for which host and Python; the venv is scanned (no subprocess) and must equal it exactly.
    if marker is not None and recorded is not None and not reinstall:
        state = installed.scan(venv_path, recorded_site(venv_path, marker))
        drift = compare(state, wanted := _recorded_wanted(marker), recorded)
        key = _sync_key(lock_text, system, str(marker.get("python", "")))
        if not drift and marker.get("key") == key and host is None:
            count = len(wanted)
            fast = fast_key(lock_text, str(marker.get("python", "")))
            if not meta.derived and marker.get(FAST_KEY) != fast:  # a venv an older envlock made
                venv.write_marker(venv_path, {**marker, FAST_KEY: fast})
            checked, _ = _check_imports(
                venv_path,
                lock_path=lock_path,
                check=check_imports,
                changed=False,
                environ=env,
                report=report,
            )
            return SyncResult(
                venv=venv_path, changed=False, created=False, packages=count, imports=checked
            )
        reasons = tuple(f"{d.name}: {d.kind}" for d in drift)
    facts, warnings = _checked_host(
        lock_path,
        lock,
        meta,
        host=host,
        host_probe=host_probe,
        system=system,
        environ=env,
        host_check=host_check,
    )
    platform = facts.platform
    assert platform is not None  # _checked_host refused a host the lock does not cover
    interpreter = _base_interpreter(
        venv_path, exists=exists, recorded=recorded, minor=meta.python, environ=env, report=report
    )
    target = platform_target(
        platform, meta.python, full_version=interpreter.version, glibc=facts.glibc
    )
    chosen = select(lock, target, lock_dir=lock_path.parent)
    if isinstance(installer, str):
        from envlock.io.install import installer_named  # noqa: PLC0415 - see the module note

        installer = installer_named(installer)
    _refuse_builds(chosen, allow_build, installer=installer)
    requirements = render_requirements(chosen, header=f"envlock sync from {lock_path.name}")
    _build(
        venv_path,
        exists=exists,
        interpreter=interpreter,
        requirements=requirements,
        install_lock=render_install_lock(chosen, indexes=meta.indexes),
        marker={
            "key": _sync_key(lock_text, system, interpreter.version),
            # the no-op fast path's own key (io.sync_noop); never for a lock another tool wrote
            **({} if meta.derived else {FAST_KEY: fast_key(lock_text, interpreter.version)}),
            "python": interpreter.version,
            "lock": lock_path.name,
            "packages": str(len(chosen)),
            "installed": " ".join(f"{canonicalize_name(s.name)}=={s.version}" for s in chosen),
        },
        installer=installer,
        link_mode=link_mode,
        environ=env,
        report=report,
        message=f"Installing {len(chosen)} packages ({target.label})",
        progress=progress,
        environment=target.environment,
    )
    checked, scope = _check_imports(
        venv_path,
        lock_path=lock_path,
        check=check_imports,
        changed=True,
        environ=env,
        report=report,
    )
    return SyncResult(
        venv=venv_path,
        changed=True,
        created=not exists,
        packages=len(chosen),
        warnings=warnings + scope,
        reasons=reasons,
        imports=checked,
    )


def _checked_host(
    lock_path: Path,
    lock: Pylock,
    meta: LockMeta,
    *,
    host: HostFacts | None,
    host_probe: HostProbe,
    system: HostFacts,
    environ: Mapping[str, str],
    host_check: bool,
) -> tuple[HostFacts, tuple[str, ...]]:
    """The host's facts and the preflight's warnings; a host the lock does not cover (or,
    with ``host_check``, whose driver cannot run the locked build) is refused."""
    facts = host if host is not None else host_probe.host(environ, system=system)
    warnings = _preflight(lock, meta, facts) if host_check else ()
    platform = facts.platform
    if platform is None or platform.value not in meta.platforms:
        raise MaterialiseError(
            f"{lock_path} does not cover this host ({facts.os} {facts.machine}); it was locked "
            f"for {', '.join(meta.platforms)}",
            hint="Add this platform to [env] platforms and run `envlock lock`.",
        )
    return facts, warnings


def _refuse_builds(
    chosen: Sequence[Selected], allow_build: frozenset[NormalizedName], *, installer: Installer
) -> None:
    """An sdist is built on this machine with build requirements resolved live from PyPI: not
    reproducible and not hash-checked, so only for packages the user names."""
    builds = sorted(canonicalize_name(s.name) for s in chosen if not s.is_wheel)
    refused = [name for name in builds if name not in allow_build]
    if refused:
        raise MaterialiseError(
            f"the lock has no wheel for {', '.join(refused)} on this host, only a source "
            "distribution, which would be built here",
            hint="A build runs the package's own code and fetches its build requirements "
            "unpinned from PyPI. To accept that, pass "
            + " ".join(f"--allow-build {name}" for name in refused)
            + "; or publish a wheel to your index and run `envlock lock --upgrade`.",
        )
    if builds and not installer.builds_sdists:
        raise MaterialiseError(
            f"--installer {installer.name} installs wheels only; {', '.join(builds)} must be built",
            hint="Use the default installer (uv) for a lock that holds source distributions.",
        )


def _base_interpreter(
    venv_path: Path,
    *,
    exists: bool,
    recorded: Recorded | None,
    minor: str,
    environ: Mapping[str, str],
    report: Reporter,
) -> Interpreter:
    """The interpreter a venv for the lock's Python is built from: the one the last sync
    used, else the existing venv's own base, else a CPython ``minor`` found on this machine
    (PATH, pyenv, uv-managed; never downloaded). A venv whose base was removed or that runs
    another Python is rebuilt from the one found."""
    from envlock.io import venv  # noqa: PLC0415 - see the module note

    candidates = [Path(recorded.executable)] if recorded and recorded.executable else []
    if exists:
        candidates.append(venv.python_in(venv_path))
    for candidate in candidates:
        if not candidate.exists():
            continue
        try:
            interpreter = venv.query(candidate)
        except MaterialiseError:
            continue
        if interpreter.minor == minor:
            return interpreter
        report(f"{venv_path} runs Python {interpreter.minor}; rebuilding it with Python {minor}")
    if f"{sys.version_info.major}.{sys.version_info.minor}" == minor:
        return venv.current()  # envlock's own interpreter: no search needed
    return venv.query(venv.find_python(minor, environ))


def _build(
    venv_path: Path,
    *,
    exists: bool,
    interpreter: Interpreter,
    requirements: str,
    install_lock: str,
    marker: dict[str, object],
    installer: Installer,
    link_mode: str,
    environ: Mapping[str, str],
    report: Reporter,
    message: str,
    progress: Callable[[Transfer], None] | None = None,
    environment: Mapping[str, str] | None = None,
) -> None:
    """Build the venv beside its path and swap it in only when everything worked.

    An existing venv is never modified in place, so an interrupted or failed sync (even a
    SIGKILL) leaves either the old venv or the new one at PATH, never a half-synced one."""
    from envlock.io import venv  # noqa: PLC0415 - see the module note

    workdir = swap.new_workdir(venv_path)
    old = venv.old_beside(venv_path)
    verb = "Rebuilding" if exists else "Creating"
    report(f"{verb} {venv_path} with Python {interpreter.version}")
    try:
        venv.create(workdir, interpreter.base, environ)
        report(message)
        _install_locked(
            workdir,
            minor=interpreter.minor,
            requirements=requirements,
            install_lock=install_lock,
            marker=marker,
            installer=installer,
            link_mode=link_mode,
            environ=environ,
            report=report,
            progress=progress,
            environment=environment,
        )
        venv.write_marker(workdir, marker)
        if exists:
            venv.remove_tree(old)
            venv_path.rename(old)
        try:
            workdir.rename(venv_path)
        except OSError:
            if exists:
                old.rename(venv_path)
            raise
        venv.remove_tree(old)
    except BaseException:
        venv.remove_tree(workdir)
        raise


def _install_locked(
    root: Path,
    *,
    minor: str,
    requirements: str,
    install_lock: str,
    marker: dict[str, object],
    installer: Installer,
    link_mode: str,
    environ: Mapping[str, str],
    report: Reporter,
    site: Path | None = None,
    progress: Callable[[Transfer], None] | None = None,
    environment: Mapping[str, str] | None = None,
) -> None:
    """Install the selection into the environment at ``root`` (a venv, or a conda prefix) with
    its own Python, check its dependencies, and add what it installed to ``marker``. ``site``
    is its site-packages (default: where a CPython venv of ``minor`` has it). With the
    ``environment`` (marker variables) the lock was selected for, the dependency check runs in
    process; else the installer's own check does it."""
    from envlock.io import installed, venv  # noqa: PLC0415 - see the module note
    from envlock.io.uv import cache_dir  # noqa: PLC0415
    from envlock.materialise.installed import record_of  # noqa: PLC0415

    if link_mode == LinkMode.AUTO:
        link_mode = venv.link_mode_for(cache_dir(environ), root)
    python = venv.python_in(root)
    installer.install_exact(
        python,
        requirements,
        environ,
        link_mode=link_mode,
        install_lock=install_lock,
        echo=lambda line: _progress_line(line, report),
        # only when someone watches: an Installer of a test need not know the keyword
        **({"progress": progress} if progress is not None else {}),
    )
    site = site if site is not None else venv.purelib_of(root, minor)
    if environment is not None:  # in process, from the installed metadata (no uv pip check)
        from envlock.io.requires import installed_requirements  # noqa: PLC0415
        from envlock.materialise.depcheck import unmet  # noqa: PLC0415

        problems: str | None = "\n".join(unmet(installed_requirements(site), environment))
    else:
        problems = installer.check(python, environ)
    if problems:
        raise MaterialiseError(
            "the installed packages have unmet dependencies (is the lock complete?)",
            hint="The environment was left as it was. The lock was resolved from the index's "
            "metadata, and an installed wheel declares more than that metadata did (a broken "
            "or tampered index?): report it, and add the missing package to [packages] to "
            "work around it. For a lock edited by hand, run `envlock lock --upgrade`.",
            detail=problems,
        )
    marker["purelib"] = site.resolve().relative_to(root.resolve()).as_posix()
    marker["link-mode"] = link_mode
    # What each locked artifact installed, for the no-op check and verify: the state is read
    # after the swap's rename too, and a rename changes no file's size or time.
    marker.update(record_of(installed.scan(root, site)))


def _progress_line(line: str, report: Reporter) -> None:
    """uv's progress lines (Prepared/Installed/+ name==version); its errors come later, once."""
    text = line.strip()
    if text and not text.startswith(("error", "cause", "Caused by", "hint", "warning")):
        report(f"  {text}")


def _sync_key(lock_text: str, system: HostFacts, python: str) -> str:
    return _digest(f"{lock_text}\0{system.platform}\0{system.glibc}\0{python}")
