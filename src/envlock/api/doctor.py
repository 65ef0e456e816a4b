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
    from envlock.io.ports import HostProbe


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
    host_probe: HostProbe | None = None,
) -> DoctorReport:
    """Judge whether the lock will run on this host (driver, GPU architecture, glibc, …).

    ``host`` gives the facts outright; else ``host_probe`` reads them (default: this machine,
    its /proc and /sys under ``root``)."""
    from envlock.doctor import diagnose  # noqa: PLC0415 - see the module note

    if host_probe is None:
        from envlock.io.probe import LocalHost  # noqa: PLC0415

        host_probe = LocalHost(root=root)
    lock, meta = read_lock(lock_path)
    facts = host if host is not None else host_probe.host(environ)
    if host is None and facts.python != meta.python:
        env = os.environ if environ is None else environ
        facts = _with_lock_python(facts, meta.python, env, host_probe)
    findings = diagnose(lock, meta, facts, load_channels())
    return DoctorReport(lock_path=lock_path, host=facts, findings=tuple(findings))


def _with_lock_python(
    facts: HostFacts, minor: str, environ: Mapping[str, str], host_probe: HostProbe
) -> HostFacts:
    """The host as sync will see it: the lock's Python found on this machine (PATH, pyenv,
    uv-managed), not the interpreter envlock happens to run on."""
    found = host_probe.find_python(minor, environ)
    if found is None:
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
