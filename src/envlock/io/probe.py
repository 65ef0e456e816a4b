"""Read facts about this host: the NVIDIA driver (and GPUs) — the one place that looks."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from envlock.host import Gpu, HostFacts
from envlock.io import proc

_PROC_VERSION = re.compile(r"Kernel Module\s+(?:for\s+\S+\s+)?(\d+\.\d+(?:\.\d+)?)")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def probe_host(environ: Mapping[str, str] | None = None, root: Path = Path("/")) -> HostFacts:
    """NVIDIA driver from /proc, /sys or nvidia-smi (ENVLOCK_NVIDIA_SMI names the binary)."""
    env = dict(os.environ if environ is None else environ)
    text = _read(root / "proc/driver/nvidia/version")
    if text and (match := _PROC_VERSION.search(text)):
        return _with_gpus(
            HostFacts(nvidia_driver=match.group(1), driver_source="/proc/driver/nvidia/version"),
            env,
        )
    text = _read(root / "sys/module/nvidia/version")
    if text and text.strip():
        return _with_gpus(
            HostFacts(nvidia_driver=text.strip(), driver_source="/sys/module/nvidia/version"), env
        )
    return _from_nvidia_smi(env)


def _nvidia_smi(env: Mapping[str, str]) -> str | None:
    explicit = env.get("ENVLOCK_NVIDIA_SMI")
    if explicit:
        return explicit
    return shutil.which("nvidia-smi")


def _query(env: Mapping[str, str]) -> list[list[str]] | None:
    binary = _nvidia_smi(env)
    if binary is None:
        return None
    try:
        result = proc.run(
            [binary, "--query-gpu=driver_version,name,compute_cap", "--format=csv,noheader"],
            env=proc.clean_environment(env),
            timeout=20,
        )
    except Exception:
        return None
    if result.returncode != 0:
        return None
    return [
        [c.strip() for c in line.split(",")] for line in result.stdout.splitlines() if line.strip()
    ]


def _from_nvidia_smi(env: Mapping[str, str]) -> HostFacts:
    rows = _query(env)
    if not rows:
        return HostFacts()
    gpus = tuple(Gpu(name=r[1], compute_capability=r[2]) for r in rows if len(r) >= 3)
    return HostFacts(nvidia_driver=rows[0][0], driver_source="nvidia-smi", gpus=gpus)


def _with_gpus(facts: HostFacts, env: Mapping[str, str]) -> HostFacts:
    rows = _query(env)
    if not rows:
        return facts
    gpus = tuple(Gpu(name=r[1], compute_capability=r[2]) for r in rows if len(r) >= 3)
    return HostFacts(
        nvidia_driver=facts.nvidia_driver, driver_source=facts.driver_source, gpus=gpus
    )
