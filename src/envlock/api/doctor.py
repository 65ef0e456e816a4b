"""envlock doctor, and the host preflight sync runs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.pylock import Pylock

from envlock.api.project import SELECTION_FILES, load_channels, read_lock
from envlock.errors import MaterialiseError
from envlock.lockfile import LockMeta

if TYPE_CHECKING:
    from envlock.doctor import Finding
    from envlock.host import HostFacts


@dataclass(frozen=True, slots=True, kw_only=True)
class DoctorReport:
    lock_path: Path
    host: HostFacts
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        from envlock.doctor import Level  # noqa: PLC0415 - see the module note

        return all(f.level is not Level.ERROR for f in self.findings)


def doctor(
    lock_path: Path,
    *,
    host: HostFacts | None = None,
    environ: Mapping[str, str] | None = None,
    root: Path = Path("/"),
) -> DoctorReport:
    """Judge whether the lock will run on this host (driver, GPU architecture, glibc, …)."""
    from envlock.doctor import diagnose  # noqa: PLC0415 - see the module note
    from envlock.io import probe  # noqa: PLC0415

    lock, meta = read_lock(lock_path)
    facts = host if host is not None else probe.probe_host(environ, root)
    if host is None and facts.python != meta.python:
        facts = _with_lock_python(facts, meta.python, os.environ if environ is None else environ)
    findings = diagnose(lock, meta, facts, load_channels())
    return DoctorReport(lock_path=lock_path, host=facts, findings=tuple(findings))


def _with_lock_python(facts: HostFacts, minor: str, environ: Mapping[str, str]) -> HostFacts:
    """The host as sync will see it: the lock's Python found on this machine (PATH, pyenv,
    uv-managed), not the interpreter envlock happens to run on."""
    from envlock.io import venv  # noqa: PLC0415 - see the module note

    try:
        found = venv.find_python(minor, environ)
    except MaterialiseError:
        return facts
    return replace(facts, python=minor, python_path=str(found))


def _preflight(lock: Pylock, meta: LockMeta, host: HostFacts) -> tuple[str, ...]:
    """Stop on a driver too old for the locked build or a hand-edited lock record; warn
    (once) on a CPU-only host."""
    from envlock.doctor import Level, diagnose  # noqa: PLC0415 - see the module note

    findings = diagnose(lock, meta, host, load_channels((*SELECTION_FILES, "gpu-arch.toml")))
    for finding in findings:
        if finding.level is Level.ERROR and finding.stops_sync:
            raise MaterialiseError(
                f"{finding.what}: {finding.why}" if finding.why else finding.what,
                hint=f"{finding.fix} Or pass --no-host-check to install anyway.",
            )
    return tuple(
        f"{f.what} ({f.why})" for f in findings if f.level is Level.WARNING and "driver" in f.what
    )
