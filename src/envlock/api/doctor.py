"""envlock doctor, and the host preflight sync runs."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.pylock import Pylock

from envlock.api.project import SELECTION_FILES, load_channels, read_lock
from envlock.errors import MaterialiseError
from envlock.lockfile import LockMeta

if TYPE_CHECKING:
    from envlock.channels import Channels
    from envlock.doctor import Finding
    from envlock.host import HostFacts
    from envlock.io.ports import HostProbe
    from envlock.runtime import Reason, TorchRuntime


@dataclass(frozen=True, slots=True, kw_only=True)
class DoctorReport:
    lock_path: Path
    host: HostFacts
    findings: tuple[Finding, ...]
    venv: Path | None = None  # doctor --venv: the venv whose torch was probed
    runtime: TorchRuntime | None = None  # what the probe saw there
    unavailable: Reason | None = None  # why CUDA is unavailable there, when it is

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
    venv: Path | None = None,
    probe_timeout: float | None = None,
) -> DoctorReport:
    """Judge whether the lock will run on this host (driver, GPU architecture, glibc, …).

    ``host`` gives the facts outright; else ``host_probe`` reads them (default: this machine,
    its /proc and /sys under ``root``). With ``venv``, torch is also asked inside that venv's
    own interpreter (within ``probe_timeout`` seconds): is it the locked build, is CUDA
    available (why not, in words), has it kernels for each GPU."""
    from envlock.doctor import diagnose  # noqa: PLC0415 - see the module note

    if host_probe is None:
        from envlock.io.probe import LocalHost  # noqa: PLC0415

        host_probe = LocalHost(root=root)
    lock, meta = read_lock(lock_path)
    python = _venv_python(venv) if venv is not None else None
    env = os.environ if environ is None else environ
    facts = host if host is not None else host_probe.host(environ)
    if host is None and facts.python != meta.python:
        facts = _with_lock_python(facts, meta.python, env, host_probe)
    channels = load_channels()
    if venv is None or python is None:
        findings = _foreign(meta, diagnose(lock, meta, facts, channels))
        return DoctorReport(lock_path=lock_path, host=facts, findings=tuple(findings))
    from envlock.io.runtime_probe import PROBE_TIMEOUT, probe_python  # noqa: PLC0415

    runtime = probe_python(
        python,
        environ=env,
        root=root,
        timeout=PROBE_TIMEOUT if probe_timeout is None else probe_timeout,
    )
    return _with_runtime(
        DoctorReport(lock_path=lock_path, host=facts, findings=(), venv=venv, runtime=runtime),
        lock,
        meta,
        channels,
    )


def _venv_python(venv: Path) -> Path:
    from envlock.io.venv import python_in  # noqa: PLC0415 - see the module note

    python = python_in(venv)
    if not python.exists():
        raise MaterialiseError(
            f"{venv} is not a virtual environment (or its Python is gone)",
            hint=f"Create it with `envlock sync --venv {venv}`."
            if not os.path.lexists(venv) or (venv / "pyvenv.cfg").is_file()
            else "Pass the path of the venv to check.",
        )
    return python


def _with_runtime(
    report: DoctorReport, lock: Pylock, meta: LockMeta, channels: Channels
) -> DoctorReport:
    """The lock judged on the host, and the venv's torch against both. Where torch itself saw
    the GPUs and its arch list, that verdict replaces the channel data's for the lock."""
    from envlock.doctor import diagnose, locked_build, rank  # noqa: PLC0415 - the module note
    from envlock.runtime import judges_arches, unavailable_reason  # noqa: PLC0415
    from envlock.venv_doctor import runtime_findings  # noqa: PLC0415

    runtime, host = report.runtime, report.host
    assert runtime is not None
    judged = replace(host, gpus=()) if judges_arches(runtime) else host
    platform = host.platform
    built = locked_build(lock, platform, meta.python, channels) if platform else None
    found = runtime_findings(
        runtime,
        venv=str(report.venv),
        host=host,
        channels=channels,
        built=built,
        lock_python=meta.python,
    )
    return replace(
        report,
        findings=tuple(rank(_foreign(meta, [*diagnose(lock, meta, judged, channels), *found]))),
        unavailable=unavailable_reason(runtime, host, channels),
    )


def _foreign(meta: LockMeta, findings: Sequence[Finding]) -> list[Finding]:
    """A lock another tool wrote: its record was derived from the torch entry itself, so the
    record-against-entry check says nothing; one note per derived fact says how instead."""
    from envlock.doctor import Finding, Level  # noqa: PLC0415 - see the module note

    if not meta.foreign:
        return list(findings)
    kept = [f for f in findings if "[tool.envlock]" not in f.what]
    notes = [
        Finding(level=Level.NOTE, what=f"derived (no [tool.envlock]): {n}") for n in meta.derived
    ]
    return [*kept, *notes]


def lock_synced_into(venv: Path, locks: Mapping[str, Path]) -> str | None:
    """Which of ``locks`` (variant name -> path) the last `envlock sync` into ``venv`` used."""
    from envlock.io.venv import read_marker  # noqa: PLC0415 - see the module note

    marker = read_marker(venv) or {}
    return next((name for name, path in locks.items() if path.name == marker.get("lock")), None)


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
