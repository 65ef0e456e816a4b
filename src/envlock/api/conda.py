"""envlock sync --conda: a conda prefix that is exactly the lock, without conda installed.

The conda part (python, from a conda channel: conda-forge unless --channel says otherwise) is
solved and linked by rattler; the lock's packages are installed by envlock's own installer,
as into a venv. The state file records both parts, so the no-op check and verify judge the
prefix as strictly as a venv: every conda package against the one sync linked (conda-meta),
every Python package against the lock.

A conda package embeds its prefix in files (placeholders replaced when linked; pip's scripts
name the interpreter), so a prefix cannot be built beside PATH and renamed into place as a venv
is. sync moves the old prefix aside, builds at PATH with a ``.envlock-building`` mark, and
removes the mark last: a failure puts the old prefix back, and the next sync (or verify)
recognises what a killed one left.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import NormalizedName, canonicalize_name

from envlock.api.project import Reporter, _quiet, _read_envlock_lock
from envlock.api.sync import (
    LinkMode,
    SyncResult,
    _checked_host,
    _install_locked,
    _recorded_wanted,
    _refuse_builds,
    _sync_key,
    sync_target,
)
from envlock.errors import MaterialiseError
from envlock.io.swap import BUILDING, new_workdir, recover_interrupted_sync
from envlock.io.sync_noop import recorded_site
from envlock.materialise.installed import Drift, DriftKind

if TYPE_CHECKING:
    from envlock.host import HostFacts
    from envlock.io.conda import Solution
    from envlock.io.ports import HostProbe, Installer

KIND = "conda"


def sync_conda(
    prefix: Path,
    *,
    lock_path: Path,
    channels: Sequence[str] = (),
    installer: str | Installer = "uv",
    host_check: bool = True,
    host: HostFacts | None = None,
    environ: Mapping[str, str] | None = None,
    report: Reporter = _quiet,
    link_mode: str = LinkMode.AUTO,
    reinstall: bool = False,
    allow_build: Sequence[str] = (),
    host_probe: HostProbe | None = None,
) -> SyncResult:
    """Make the conda prefix exactly python (from ``channels``, default conda-forge) plus the
    lock's selection for this host; on failure the old prefix is put back. Syncs into one
    directory take turns, as for venvs."""
    from envlock.io import conda, venv  # noqa: PLC0415 - see the api module note

    conda.rattler_module()  # a missing extra is a usage error before anything else
    prefix = sync_target(prefix, lock_path, option="--conda")
    with venv.exclusive_dir(prefix.parent):
        return _sync_conda(
            prefix,
            lock_path=lock_path,
            channels=tuple(channels) or conda.DEFAULT_CHANNELS,
            installer=installer,
            host_check=host_check,
            host=host,
            environ=os.environ if environ is None else environ,
            report=report,
            link_mode=link_mode,
            reinstall=reinstall,
            allow_build=frozenset(canonicalize_name(n) for n in allow_build),
            host_probe=host_probe,
        )


def _sync_conda(
    prefix: Path,
    *,
    lock_path: Path,
    channels: tuple[str, ...],
    installer: str | Installer,
    host_check: bool,
    host: HostFacts | None,
    environ: Mapping[str, str],
    report: Reporter,
    link_mode: str,
    reinstall: bool,
    allow_build: frozenset[NormalizedName],
    host_probe: HostProbe | None,
) -> SyncResult:
    from envlock.io import conda, probe  # noqa: PLC0415 - see the api module note
    from envlock.io.uv import cache_dir  # noqa: PLC0415
    from envlock.materialise.installed import Recorded  # noqa: PLC0415
    from envlock.materialise.select import (  # noqa: PLC0415
        platform_target,
        render_install_lock,
        render_requirements,
        select,
    )

    recover_interrupted_sync(prefix)  # also removes a marked half-built prefix
    lock_text, lock, meta = _read_envlock_lock(lock_path)
    host_probe = host_probe if host_probe is not None else probe.LocalHost()
    system = host_probe.system()
    exists = _conda_target_exists(prefix)
    marker = _conda_marker(prefix) if exists else None
    recorded = Recorded.from_marker(marker) if marker is not None else None
    reasons: tuple[str, ...] = ()
    if marker is not None and recorded is not None and not reinstall:
        drift = prefix_drift(prefix, marker)
        key = _sync_key(lock_text, system, str(marker.get("python", "")))
        if not drift and marker.get("key") == key and host is None:
            count = len(_recorded_wanted(marker))
            linked = conda.recorded_packages(marker) or {}
            return SyncResult(
                venv=prefix,
                changed=False,
                created=False,
                packages=count,
                conda=_labels((n, f.get("version", "?")) for n, f in linked.items()),
            )
        reasons = tuple(f"{d.name}: {d.kind}" for d in drift)
    elif exists and recorded is None:
        reasons = ("a conda prefix envlock did not sync: replaced by the lock's",)
    facts, warnings = _checked_host(
        lock_path,
        lock,
        meta,
        host=host,
        host_probe=host_probe,
        system=system,
        environ=environ,
        host_check=host_check,
    )
    assert facts.platform is not None  # _checked_host refused a host the lock does not cover
    cache = cache_dir(environ).parent / "rattler"
    specs = (f"python {meta.python}.*",)
    before = _python_minor(prefix) if exists else None
    report(f"Solving {' '.join(specs)} from {', '.join(channels)}")
    solution = conda.solve(
        specs,
        channels,
        cache=cache,
        preferred=prefix if before == meta.python else None,
        exclude_newer=meta.exclude_newer,
    )
    if before is not None and before != meta.python:
        report(f"{prefix} runs Python {before}; rebuilding it with Python {meta.python}")
    target = platform_target(
        facts.platform, meta.python, full_version=solution.python, glibc=facts.glibc
    )
    chosen = select(lock, target, lock_dir=lock_path.parent)
    if isinstance(installer, str):
        from envlock.io.install import installer_named  # noqa: PLC0415 - see the module note

        installer = installer_named(installer)
    _refuse_builds(chosen, allow_build, installer=installer)
    marker = {
        "kind": KIND,
        "key": _sync_key(lock_text, system, solution.python),
        "python": solution.python,
        "lock": lock_path.name,
        "packages": str(len(chosen)),
        "installed": " ".join(f"{canonicalize_name(s.name)}=={s.version}" for s in chosen),
    }
    report(f"{'Rebuilding' if exists else 'Creating'} {prefix} with Python {solution.python}")
    _build_conda(
        prefix,
        exists=exists,
        solution=solution,
        cache=cache,
        requirements=render_requirements(chosen, header=f"envlock sync from {lock_path.name}"),
        install_lock=render_install_lock(chosen, indexes=meta.indexes),
        marker=marker,
        channels=channels,
        specs=specs,
        installer=installer,
        link_mode=link_mode,
        environ=environ,
        report=report,
        message=f"Installing {len(chosen)} packages ({target.label})",
    )
    return SyncResult(
        venv=prefix,
        changed=True,
        created=not exists,
        packages=len(chosen),
        warnings=warnings,
        reasons=reasons,
        conda=_labels((p.name, p.version) for p in solution.packages),
    )


def _labels(packages: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """Each conda package as "name version", python first."""
    return tuple(f"{n} {v}" for n, v in sorted(packages, key=lambda p: (p[0] != "python", p[0])))


def _build_conda(
    prefix: Path,
    *,
    exists: bool,
    solution: Solution,
    cache: Path,
    requirements: str,
    install_lock: str,
    marker: dict[str, object],
    channels: Sequence[str],
    specs: Sequence[str],
    installer: Installer,
    link_mode: str,
    environ: Mapping[str, str],
    report: Reporter,
    message: str,
) -> None:
    """Build the prefix at its path, the old one moved aside until the new one is complete."""
    from envlock.io import conda, venv  # noqa: PLC0415 - see the api module note
    from envlock.urls import redact_text  # noqa: PLC0415

    old = venv.old_beside(prefix)
    # The new prefix appears at PATH already marked (a rename), so whatever a kill leaves at
    # PATH is the old prefix, or a build the next sync knows to remove.
    fresh = new_workdir(prefix)
    moved = False
    try:
        (fresh / BUILDING).write_text(
            "envlock sync --conda is building this prefix; if it was interrupted, the next "
            "`envlock sync --conda` removes it and puts the previous prefix back\n",
            encoding="utf-8",
        )
        if exists:
            venv.remove_tree(old)
            prefix.rename(old)
            moved = True
        fresh.rename(prefix)
        conda.link(solution, prefix, cache=cache, link_mode=link_mode)
        linked = venv.query(venv.python_in(prefix))  # the conda python runs, relocated
        if linked.version != solution.python:
            raise MaterialiseError(
                f"the conda python package {solution.python} runs as Python {linked.version}",
                hint="The channel's python package is mislabelled: use another --channel.",
            )
        report(message)
        _install_locked(
            prefix,
            minor=linked.minor,
            requirements=requirements,
            install_lock=install_lock,
            marker=marker,
            installer=installer,
            link_mode=link_mode,
            environ=environ,
            report=report,
            site=linked.purelib,
        )
        marker["conda"] = {
            "channels": [redact_text(c) for c in channels],
            "specs": list(specs),
            "packages": {
                p.name: {**p.to_json(), "files": conda.fingerprint(prefix, p.meta)}
                for p in conda.read_packages(prefix)
            },
        }
        venv.write_marker(prefix, marker)
        (prefix / BUILDING).unlink()  # the commit point: from here PATH is the new prefix
    except BaseException:
        venv.remove_tree(fresh)  # still there if the failure came before its rename
        if (prefix / BUILDING).is_file():
            venv.remove_tree(prefix)
        if moved and not os.path.lexists(prefix):
            old.rename(prefix)
        raise
    venv.remove_tree(old)


def _conda_marker(prefix: Path) -> dict[str, object] | None:
    from envlock.io import venv  # noqa: PLC0415 - see the api module note

    marker = venv.read_marker(prefix)
    return marker if marker is not None and marker.get("kind") == KIND else None


def _python_minor(prefix: Path) -> str | None:
    """The minor of the python package linked in a conda prefix (from conda-meta)."""
    from envlock.io import conda  # noqa: PLC0415 - see the api module note

    found = next((p for p in conda.read_packages(prefix) if p.name == "python"), None)
    return ".".join(found.version.split(".")[:2]) if found is not None else None


def _conda_target_exists(prefix: Path) -> bool:
    """True for a conda prefix to replace, False for a path to create (missing or empty).

    Only a directory that is provably nothing but a conda environment is replaced: a
    conda-meta folder, and at the top level nothing that neither a conda package linked
    (conda-meta lists every file) nor a Python install puts there. A venv, a project folder
    or any other directory is refused before anything changes."""
    from envlock.io import conda, venv  # noqa: PLC0415 - see the api module note

    if not os.path.lexists(prefix):
        return False
    hint = "Pass the path of a conda prefix, or a new path (it is created)."
    if not prefix.is_dir():
        raise MaterialiseError(
            f"{prefix} exists and is not a conda prefix (it is a file); refusing to replace it",
            hint=hint,
        )
    entries = {entry.name for entry in prefix.iterdir()}
    if not entries:
        return False
    if "pyvenv.cfg" in entries:
        raise MaterialiseError(
            f"{prefix} is a virtual environment, not a conda prefix; refusing to replace it",
            hint=f"Sync a venv with `envlock sync --venv {prefix}`, or pass a new path.",
        )
    if not conda.is_conda_prefix(prefix):
        raise MaterialiseError(
            f"{prefix} exists and is not a conda prefix (no conda-meta); refusing to replace it",
            hint=hint,
        )
    owned = {path.split("/", 1)[0] for path in conda.owned_paths(prefix)}
    allowed = (venv.VENV_ENTRIES - {"pyvenv.cfg"}) | {conda.CONDA_META, BUILDING} | owned
    foreign = sorted(entries - allowed)
    if foreign:
        shown = ", ".join(foreign[:5]) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        )
        raise MaterialiseError(
            f"{prefix} is a conda prefix that also holds other files ({shown}); refusing to "
            "replace it",
            hint="sync rebuilds a prefix, which would delete those files. Sync into a dedicated "
            f"path (e.g. --conda {prefix / 'env'}), or move the files out.",
        )
    return True


def prefix_drift(
    prefix: Path, marker: Mapping[str, object], *, deep: bool = False
) -> tuple[Drift, ...]:
    """Every way a conda prefix sync built is not what it built: the Python part (the venv
    model, against the lock's selection) and the conda part (against the packages it linked)."""
    from envlock.io import installed  # noqa: PLC0415 - see the api module note
    from envlock.materialise.installed import Recorded, compare  # noqa: PLC0415

    recorded = Recorded.from_marker(marker)
    state = installed.scan(prefix, recorded_site(prefix, marker))
    drift = list(compare(state, _recorded_wanted(marker), recorded))
    return (*drift, *conda_drift(prefix, marker, deep=deep))


def conda_drift(
    prefix: Path, marker: Mapping[str, object], *, deep: bool = False
) -> tuple[Drift, ...]:
    """The conda part against the packages the last sync linked (``marker``'s record):
    missing, extra, another version or build, another archive (sha256), files changed. Without
    a record, only each package's files against its own conda-meta record are checked."""
    from envlock.io import conda  # noqa: PLC0415 - see the api module note

    recorded = conda.recorded_packages(marker)
    found = {p.name: p for p in conda.read_packages(prefix)}
    drift: list[Drift] = []

    def files(package: conda.CondaPackage, before: Mapping[str, str] | None) -> list[Drift]:
        changed = conda.changed_files(prefix, package.meta, deep=deep)
        unchanged = before is None or before.get("files") == conda.fingerprint(prefix, package.meta)
        if not changed and not deep and not unchanged:
            changed = ("files changed",)
        return [
            Drift(name=f"{package.name} (conda)", kind=DriftKind.MODIFIED, found=path)
            for path in changed
        ]

    for name, before in sorted((recorded or {}).items()):
        label = f"{before.get('version', '?')}-{before.get('build', '?')}"
        package = found.get(name)
        if package is None:
            drift.append(Drift(name=f"{name} (conda)", kind=DriftKind.MISSING, expected=label))
        elif package.label != label:
            drift.append(
                Drift(
                    name=f"{name} (conda)",
                    kind=DriftKind.VERSION,
                    expected=label,
                    found=package.label,
                )
            )
        elif before.get("sha256") and package.sha256 != before.get("sha256"):
            drift.append(
                Drift(
                    name=f"{name} (conda)",
                    kind=DriftKind.REPLACED,
                    expected=label,
                    found=f"{label}, another archive",
                )
            )
        else:
            drift += files(package, before)
    for name, package in sorted(found.items()):
        if recorded is None:
            drift += files(package, None)
        elif name not in recorded:
            drift.append(Drift(name=f"{name} (conda)", kind=DriftKind.EXTRA, found=package.label))
    return tuple(drift)


def half_built(prefix: Path) -> bool:
    """Did a conda sync stop while building this prefix (its mark is still there)?"""
    return (prefix / BUILDING).is_file()
