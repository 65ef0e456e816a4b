"""Read facts about this host: OS, architecture, glibc, Python, NVIDIA driver and GPUs.

The one place that looks at the host; `envlock init`, `envlock doctor` (and sync's preflight)
all judge what it returns with the pure rules in envlock.host. ``root`` and ``environ`` are
injectable so tests can describe any host.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from envlock.errors import EnvlockError, MaterialiseError
from envlock.host import Gpu, HostFacts
from envlock.io import proc

_PROC_VERSION = re.compile(r"Kernel Module\s+(?:for\s+\S+\s+)?(\d+\.\d+(?:\.\d+)?)")
SMI_QUERY = ("--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _glibc() -> str | None:
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (AttributeError, ValueError, OSError):
        text = ""
    match = re.search(r"glibc\s+(\d+\.\d+)", text)
    if match:
        return match.group(1)
    name, version = platform.libc_ver()
    return version if name == "glibc" and version else None


def probe_system() -> HostFacts:
    """OS, machine, glibc and the running Python (no GPU facts)."""
    return HostFacts(
        os=platform.system().lower(),
        machine=platform.machine(),
        glibc=_glibc() if sys.platform.startswith("linux") else None,
        python=f"{sys.version_info.major}.{sys.version_info.minor}",
    )


def probe_host(
    environ: Mapping[str, str] | None = None,
    root: Path = Path("/"),
    system: HostFacts | None = None,
) -> HostFacts:
    """All host facts. The driver comes from /proc, then /sys, then nvidia-smi
    (ENVLOCK_NVIDIA_SMI names the binary); GPUs and compute capabilities from nvidia-smi."""
    env = dict(os.environ if environ is None else environ)
    facts = system if system is not None else probe_system()
    driver, source = None, ""
    text = _read(root / "proc/driver/nvidia/version")
    if text and (match := _PROC_VERSION.search(text)):
        driver, source = match.group(1), "/proc/driver/nvidia/version"
    elif (text := _read(root / "sys/module/nvidia/version")) and text.strip():
        driver, source = text.strip(), "/sys/module/nvidia/version"
    gpus, smi_driver, smi_error = _query(env)
    if driver is None and smi_driver is not None:
        driver, source = smi_driver, "nvidia-smi"
    return replace(
        facts, nvidia_driver=driver, driver_source=source, gpus=gpus, smi_error=smi_error
    )


@dataclass(frozen=True, slots=True)
class LocalHost:
    """The HostProbe (envlock.io.ports) of the machine envlock runs on; ``root`` is where
    /proc and /sys are read (tests point it at a directory that describes another host)."""

    root: Path = Path("/")

    def system(self) -> HostFacts:
        return probe_system()

    def host(
        self, environ: Mapping[str, str] | None = None, *, system: HostFacts | None = None
    ) -> HostFacts:
        return probe_host(environ, self.root, system)

    def find_python(self, minor: str, environ: Mapping[str, str]) -> Path | None:
        from envlock.io import venv  # noqa: PLC0415 - runs uv: only when asked

        try:
            return venv.find_python(minor, environ)
        except MaterialiseError:
            return None


def _nvidia_smi(env: Mapping[str, str]) -> str | None:
    explicit = env.get("ENVLOCK_NVIDIA_SMI")
    if explicit:
        return explicit
    return shutil.which("nvidia-smi", path=env.get("PATH"))


def _query(env: Mapping[str, str]) -> tuple[tuple[Gpu, ...], str | None, str | None]:
    """(GPUs, driver, error): error is set when nvidia-smi exists but fails."""
    binary = _nvidia_smi(env)
    if binary is None or not Path(binary).exists():
        return (), None, None
    try:
        result = proc.run([binary, *SMI_QUERY], env=proc.clean_environment(env), timeout=20)
    except EnvlockError as exc:  # not executable, hung
        return (), None, exc.message
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        return (), None, f"nvidia-smi exited {result.returncode}: {message[0] if message else ''}"
    gpus: list[Gpu] = []
    driver = None
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) >= 3:
            gpus.append(Gpu(name=cells[0], compute_capability=cells[1]))
            driver = driver or cells[2]
    return tuple(gpus), driver, None
