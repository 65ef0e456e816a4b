from __future__ import annotations

from pathlib import Path

from envlock.io.probe import probe_host


def test_driver_from_proc(tmp_path: Path) -> None:
    proc = tmp_path / "proc/driver/nvidia"
    proc.mkdir(parents=True)
    (proc / "version").write_text(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024\n"
    )
    facts = probe_host({"PATH": ""}, root=tmp_path)
    assert facts.nvidia_driver == "550.54.14"
    assert facts.driver_source == "/proc/driver/nvidia/version"


def test_driver_from_sys_module(tmp_path: Path) -> None:
    module = tmp_path / "sys/module/nvidia"
    module.mkdir(parents=True)
    (module / "version").write_text("580.65.06\n")
    assert probe_host({"PATH": ""}, root=tmp_path).nvidia_driver == "580.65.06"


def test_driver_from_nvidia_smi(tmp_path: Path) -> None:
    smi = tmp_path / "nvidia-smi"
    smi.write_text('#!/bin/sh\necho "NVIDIA H100 80GB HBM3, 9.0, 535.104.05"\n')
    smi.chmod(0o755)
    facts = probe_host({"PATH": "", "ENVLOCK_NVIDIA_SMI": str(smi)}, root=tmp_path)
    assert facts.nvidia_driver == "535.104.05"
    assert facts.gpus[0].compute_capability == "9.0"


def test_no_driver_anywhere(tmp_path: Path) -> None:
    facts = probe_host({"PATH": "", "ENVLOCK_NVIDIA_SMI": str(tmp_path / "missing")}, root=tmp_path)
    assert facts.nvidia_driver is None


def test_broken_nvidia_smi_means_no_driver(tmp_path: Path) -> None:
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    smi.chmod(0o755)
    assert (
        probe_host({"PATH": "", "ENVLOCK_NVIDIA_SMI": str(smi)}, root=tmp_path).nvidia_driver
        is None
    )
