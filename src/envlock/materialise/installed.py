"""One model of "what is installed", shared by sync's no-op check, sync and verify (pure).

``VenvState`` is what a scan of a venv found; ``Recorded`` is what the last sync wrote in the
venv's state file about the artifacts it installed. ``compare`` turns the two, and the lock's
selection, into drift: every way the venv is not (or can no longer be shown to be) the lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    # Typing only: sync's no-op fast path (envlock.io.sync_noop) must not load packaging.
    from packaging.utils import NormalizedName

STATE_FORMAT = 2


class DriftKind(StrEnum):
    MISSING = "missing"  # a locked package is not installed
    EXTRA = "extra"  # installed, not in the lock
    VERSION = "version"  # installed at another version
    DUPLICATE = "duplicate"  # two .dist-info directories of one project
    REPLACED = "replaced"  # same version, not the artifact the lock pinned (RECORD differs)
    MODIFIED = "modified"  # a file the package installed is missing or changed
    INTERPRETER = "interpreter"  # the venv's Python is not the one it was built with
    SYSTEM_SITE = "system-site-packages"  # the venv also sees the base's packages
    STARTUP = "startup"  # start-up code (.pth, sitecustomize) no locked package installed


@dataclass(frozen=True, slots=True, kw_only=True)
class Drift:
    name: str
    kind: str
    expected: str = ""
    found: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Dist:
    """One installed distribution (a .dist-info or .egg-info directory)."""

    name: NormalizedName
    version: str
    directory: str  # relative to site-packages
    record: str  # "sha256:<hex>" of RECORD's bytes; "" when there is none
    files: str  # "sha256:<hex>" over (path, size, mtime) of every RECORD row; "" likewise
    missing: tuple[str, ...] = ()  # RECORD rows whose file is gone
    resized: tuple[str, ...] = ()  # RECORD rows whose file has another size than recorded
    installer: str = ""
    source: str = ""  # direct_url.json's url, if any


@dataclass(frozen=True, slots=True, kw_only=True)
class VenvState:
    executable: str  # the real path bin/python points at ("" when it is dangling)
    home: str  # pyvenv.cfg `home`
    version: str  # pyvenv.cfg `version_info` / `version`
    system_site_packages: bool
    dists: tuple[Dist, ...]
    startup: Mapping[str, str] = field(default_factory=dict)  # relative path -> sha256


@dataclass(frozen=True, slots=True, kw_only=True)
class Recorded:
    """What the last sync wrote about the venv it built (the state file)."""

    executable: str
    home: str
    version: str
    dists: Mapping[str, Mapping[str, str]]  # name -> {version, directory, record, files}
    startup: Mapping[str, str]

    @staticmethod
    def from_marker(marker: Mapping[str, object]) -> Recorded | None:
        """The record in a state file, or None for an older or damaged one."""
        if marker.get("format") != STATE_FORMAT:
            return None
        interpreter, dists, startup = (
            marker.get("interpreter"),
            marker.get("dists"),
            marker.get("startup"),
        )
        if not (
            isinstance(interpreter, dict)
            and isinstance(dists, dict)
            and isinstance(startup, dict)
            and all(isinstance(v, dict) for v in dists.values())
        ):
            return None
        return Recorded(
            executable=str(interpreter.get("executable", "")),
            home=str(interpreter.get("home", "")),
            version=str(interpreter.get("version", "")),
            dists={str(k): {str(a): str(b) for a, b in v.items()} for k, v in dists.items()},
            startup={str(k): str(v) for k, v in startup.items()},
        )


def recorded_wanted(marker: Mapping[str, object]) -> dict[NormalizedName, str]:
    """What a state file says the last sync installed: name -> version."""
    items = str(marker.get("installed", "")).split()
    return {cast("NormalizedName", n): v for n, _, v in (item.partition("==") for item in items)}


def record_of(state: VenvState) -> dict[str, object]:
    """The state-file form of a freshly built venv's state (see ``Recorded``)."""
    return {
        "format": STATE_FORMAT,
        "interpreter": {
            "executable": state.executable,
            "home": state.home,
            "version": state.version,
        },
        "dists": {
            d.name: {
                "version": d.version,
                "directory": d.directory,
                "record": d.record,
                "files": d.files,
            }
            for d in sorted(state.dists, key=lambda d: d.name)
        },
        "startup": dict(sorted(state.startup.items())),
    }


def compare(
    state: VenvState,
    wanted: Mapping[NormalizedName, str],
    recorded: Recorded | None,
    *,
    owned_startup: frozenset[str] = frozenset(),
) -> tuple[Drift, ...]:
    """Every difference between the venv and the lock's selection ``wanted`` (name -> version).

    With a record of the last sync, a package is also checked to be the very artifact that
    sync installed (its RECORD and the size and time of each of its files); without one, only
    names, versions, files against RECORD and start-up code can be judged. ``owned_startup`` are
    start-up files some locked package's RECORD lists (used when there is no record)."""
    drift = _venv_drift(state, recorded)
    by_name: dict[str, list[Dist]] = {}
    for dist in state.dists:
        by_name.setdefault(dist.name, []).append(dist)
    for name, dists in sorted(by_name.items()):
        if len(dists) > 1:
            drift.append(
                Drift(
                    name=name,
                    kind=DriftKind.DUPLICATE,
                    expected=wanted.get(cast("NormalizedName", name), ""),
                    found=", ".join(sorted(d.directory for d in dists)),
                )
            )
    for name, version in sorted(wanted.items()):
        dists = by_name.get(name, [])
        if not dists:
            drift.append(Drift(name=name, kind=DriftKind.MISSING, expected=version))
            continue
        dist = dists[0]
        if dist.version != version:
            drift.append(
                Drift(name=name, kind=DriftKind.VERSION, expected=version, found=dist.version)
            )
            continue
        drift += _artifact_drift(dist, version, recorded)
    drift += [
        Drift(name=name, kind=DriftKind.EXTRA, found=dists[0].version)
        for name, dists in sorted(by_name.items())
        if name not in wanted
    ]
    drift += _startup_drift(state, recorded, owned_startup)
    return tuple(drift)


def _venv_drift(state: VenvState, recorded: Recorded | None) -> list[Drift]:
    """The interpreter and pyvenv.cfg against what the last sync built."""
    drift: list[Drift] = []
    if recorded is not None:
        for what, before, now in (
            ("python", recorded.executable, state.executable),
            ("home", recorded.home, state.home),
            ("version", recorded.version, state.version),
        ):
            if before != now:
                drift.append(
                    Drift(
                        name=what,
                        kind=DriftKind.INTERPRETER,
                        expected=before,
                        found=now or "(missing)",
                    )
                )
    elif not state.executable:
        drift.append(Drift(name="python", kind=DriftKind.INTERPRETER, found="(missing)"))
    if state.system_site_packages:
        drift.append(
            Drift(
                name="pyvenv.cfg",
                kind=DriftKind.SYSTEM_SITE,
                expected="include-system-site-packages = false",
                found="true",
            )
        )
    return drift


def _startup_drift(
    state: VenvState, recorded: Recorded | None, owned_startup: frozenset[str]
) -> list[Drift]:
    """Start-up files the last sync did not install (or, without its record, that no locked
    package's RECORD lists)."""
    drift: list[Drift] = []
    for path, digest in sorted(state.startup.items()):
        if recorded is None:
            if path in owned_startup:
                continue
        elif recorded.startup.get(path) == digest:
            continue
        drift.append(Drift(name=path, kind=DriftKind.STARTUP, found="not installed by the lock"))
    return drift


def _artifact_drift(dist: Dist, version: str, recorded: Recorded | None) -> list[Drift]:
    drift: list[Drift] = []
    if not dist.record:
        return [Drift(name=dist.name, kind=DriftKind.MODIFIED, found="RECORD missing")]
    before = recorded.dists.get(dist.name) if recorded is not None else None
    if before is not None and before.get("record") != dist.record:
        found = f"{version}, another build"
        if dist.installer or dist.source:
            found += f" ({' from '.join(x for x in (dist.installer, dist.source) if x)})"
        return [Drift(name=dist.name, kind=DriftKind.REPLACED, expected=version, found=found)]
    drift += [
        Drift(name=dist.name, kind=DriftKind.MODIFIED, found=f"{path} missing")
        for path in dist.missing
    ]
    drift += [Drift(name=dist.name, kind=DriftKind.MODIFIED, found=path) for path in dist.resized]
    if not drift and before is not None and before.get("files") != dist.files:
        drift.append(Drift(name=dist.name, kind=DriftKind.MODIFIED, found="files changed"))
    return drift
