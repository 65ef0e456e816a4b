"""envlock verify: the installed state against the lock."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import NormalizedName, canonicalize_name

from envlock.api.imports import _recorded_wanted, import_names, scope_warning
from envlock.api.project import read_lock, spec_names
from envlock.errors import MaterialiseError
from envlock.materialise.installed import Drift
from envlock.spec import Platform

if TYPE_CHECKING:
    from envlock.host import HostFacts
    from envlock.io.import_check import ImportReport
    from envlock.io.ports import HostProbe


@dataclass(frozen=True, slots=True, kw_only=True)
class Verification:
    drift: tuple[Drift, ...]
    notes: tuple[str, ...] = ()
    imports: ImportReport | None = None  # with ``imports``: what importing them found
    versions: Mapping[str, str] = field(default_factory=dict)  # the selection: name -> version

    @property
    def ok(self) -> bool:
        return not self.drift and (self.imports is None or self.imports.ok)


def verify(
    venv_path: Path,
    *,
    lock_path: Path,
    deep: bool = False,
    host: HostFacts | None = None,
    environ: Mapping[str, str] | None = None,
    host_probe: HostProbe | None = None,
    conda: bool = False,
    imports: bool = False,
) -> Verification:
    """Installed state vs the lock's selection: packages, versions, the very artifacts the last
    sync installed, files against RECORD (hashed with ``deep``), the interpreter and start-up
    code — the same model sync's no-op check uses — plus notes on what could not be judged.

    With ``conda``, ``venv_path`` is a conda prefix: its conda part is also checked against the
    packages `envlock sync --conda` linked (envlock.api.conda). With ``imports``, the packages
    the spec beside the lock names are imported in it (envlock.api.imports), each failure a
    finding."""
    from envlock.io import installed, probe, venv  # noqa: PLC0415 - see the module note
    from envlock.materialise.installed import DriftKind, Recorded, compare  # noqa: PLC0415
    from envlock.materialise.select import platform_target, select  # noqa: PLC0415

    lock, meta = read_lock(lock_path)
    if conda:
        _check_conda_prefix(venv_path)
    python = venv.python_in(venv_path)
    if not python.exists():
        raise MaterialiseError(
            f"{venv_path} is not a virtual environment (or its Python is gone)",
            hint=f"Create it with `envlock sync --venv {venv_path}`."
            if not os.path.lexists(venv_path) or (venv_path / "pyvenv.cfg").is_file()
            else "Pass the path of the venv to check.",
        )
    interpreter = venv.query(python)
    facts = host if host is not None else (host_probe or probe.LocalHost()).system()
    platform = facts.platform or Platform.LINUX_X86_64
    chosen = select(
        lock,
        platform_target(platform, meta.python, full_version=interpreter.version, glibc=facts.glibc),
        lock_dir=lock_path.parent,
    )
    wanted = {canonicalize_name(s.name): s.version for s in chosen}
    marker = venv.read_marker(venv_path)
    if conda and marker is not None and marker.get("kind") != "conda":
        marker = None  # not a conda sync's state: nothing here describes this prefix
    conda_marker = marker if conda else None  # its conda part holds whichever lock it synced
    recorded = Recorded.from_marker(marker) if marker is not None else None
    notes: list[str] = [f"derived (no [tool.envlock]): {note}" for note in meta.derived]
    if recorded is not None and _recorded_wanted(marker or {}) != wanted:
        recorded = None  # synced from another lock: its record says nothing about this one
        notes.append(f"{venv_path} was last synced from another lock; artifacts not compared")
    elif recorded is None:
        notes.append(
            f"{venv_path} has no state from `envlock sync`: versions, files and start-up code "
            "are checked, not that each package is the locked artifact"
        )
    site = interpreter.purelib
    state = installed.scan(venv_path, site)
    owned = frozenset().union(
        *(installed.owned_files(site, d) for d in state.dists if d.name in wanted)
    )
    drift = list(compare(state, wanted, recorded, owned_startup=owned))
    if deep:
        # one hashing pool over every package: torch's big files are spread over torch, the
        # nvidia-* packages and triton
        checked = [d for d in state.dists if d.name in wanted]
        each = installed.changed_files_each(site, checked)
        changed = dict(zip((d.name for d in checked), each, strict=True))
        drift = [
            d
            for d in drift
            if not (d.kind == DriftKind.MODIFIED and d.found == "files changed")
            or changed.get(NormalizedName(d.name))
        ]
        drift += [
            Drift(name=name, kind=DriftKind.MODIFIED, found=path)
            for name, paths in sorted(changed.items())
            for path in paths
            if not any(x.name == name and x.found == path for x in drift)
        ]
    if conda:
        from envlock.api.conda import conda_drift  # noqa: PLC0415 - only for a conda prefix

        if conda_marker is None:
            notes.append(
                f"{venv_path}'s conda packages are checked against their own conda-meta "
                "records only (no state from `envlock sync --conda`)"
            )
        drift += conda_drift(venv_path, conda_marker or {}, deep=deep)
    report = None
    if imports:
        from envlock.io.import_check import check_imports  # noqa: PLC0415 - only when asked

        named = spec_names(lock_path)
        notes += scope_warning(lock_path, named)
        report = check_imports(python, import_names(wanted, named), environ=environ)
    return Verification(
        drift=tuple(drift),
        notes=tuple(notes),
        imports=report,
        versions={str(k): v for k, v in wanted.items()},
    )


def _check_conda_prefix(prefix: Path) -> None:
    from envlock.api.conda import half_built  # noqa: PLC0415 - only for a conda prefix
    from envlock.io.conda import is_conda_prefix  # noqa: PLC0415

    if half_built(prefix):
        raise MaterialiseError(
            f"{prefix} is a conda prefix an interrupted `envlock sync --conda` left half-built",
            hint=f"Run `envlock sync --conda {prefix}` again: it puts the previous prefix back "
            "and syncs it.",
        )
    if not is_conda_prefix(prefix):
        raise MaterialiseError(
            f"{prefix} is not a conda prefix (no conda-meta)",
            hint=f"Create it with `envlock sync --conda {prefix}`."
            if not os.path.lexists(prefix)
            else "Pass the path of the conda prefix to check (or --venv for a venv).",
        )
