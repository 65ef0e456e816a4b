"""envlock doctor: a table of real-world hosts, probed through a fake nvidia-smi and /proc."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from packaging.pylock import Pylock

from envlock import api
from envlock.doctor import Level
from envlock.host import HostFacts
from envlock.io.probe import probe_host
from envlock.lockfile import LockMeta, render_lock
from tests.conftest import Cli

SYSTEM = HostFacts(os="linux", machine="x86_64", glibc="2.35", python="3.11")


def _lock(torch: str, variant: str, *, tag: str = "manylinux_2_28_x86_64") -> str:
    series = ".".join(torch.split(".")[:2])
    meta = LockMeta(
        spec_digest="sha256:" + "0" * 64,
        envlock_version="0.1.0",
        python="3.11",
        platforms=("linux-x86_64",),
        torch=series,
        variant=variant,
        variant_index=None,
        pypi_index="https://pypi.org/simple",
        torch_source={"linux-x86_64": "pytorch-index"},
    )
    url = f"https://download.pytorch.org/whl/{variant}/torch-{torch}%2B{variant}-cp311-cp311-{tag}.whl"
    lock = Pylock.from_dict(
        {
            "lock-version": "1.0",
            "created-by": "envlock",
            "requires-python": "==3.11.*",
            "packages": [
                {
                    "name": "torch",
                    "version": f"{torch}+{variant}",
                    "wheels": [{"url": url, "hashes": {"sha256": "a" * 64}}],
                }
            ],
            "tool": {"envlock": meta.to_tool()},
        }
    )
    return render_lock(lock)


def _smi(tmp_path: Path, gpu: str, cc: str, driver: str) -> Path:
    script = tmp_path / "nvidia-smi"
    script.write_text(f'#!/bin/sh\necho "{gpu}, {cc}, {driver}"\n')
    script.chmod(0o755)
    return script


def _host(
    tmp_path: Path, *, driver: str | None, gpu: str = "", cc: str = "", via_proc: bool = False
) -> HostFacts:
    env: dict[str, Any] = {"PATH": ""}
    if driver is not None and gpu:
        env["ENVLOCK_NVIDIA_SMI"] = str(_smi(tmp_path, gpu, cc, driver))
    if via_proc and driver is not None:
        proc = tmp_path / "root/proc/driver/nvidia"
        proc.mkdir(parents=True)
        (proc / "version").write_text(
            f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {driver}  Tue\n"
        )
    return probe_host(env, root=tmp_path / "root", system=SYSTEM)


def _verdict(tmp_path: Path, lock_text: str, host: HostFacts) -> api.DoctorReport:
    path = tmp_path / "pylock.toml"
    path.write_text(lock_text)
    return api.doctor(path, host=host)


def _errors(report: api.DoctorReport) -> list[str]:
    return [f"{f.what} | {f.fix}" for f in report.findings if f.level is Level.ERROR]


# (driver, GPU, compute capability, locked torch, variant, expected error fragments)
HOSTS = [
    (
        "470.256.02",
        "Tesla V100-SXM2-16GB",
        "7.0",
        "2.6.0",
        "cu124",
        ["driver 470.256.02 is too old for cu124", 'cuda = "11.8" (cu118)'],
    ),
    ("535.104.05", "NVIDIA A100-SXM4-80GB", "8.0", "2.6.0", "cu124", []),
    ("550.54.14", "NVIDIA GeForce RTX 4090", "8.9", "2.6.0", "cu124", []),
    (
        "570.124.06",
        "NVIDIA GeForce RTX 5090",
        "12.0",
        "2.6.0",
        "cu126",
        ["RTX 5090 (sm_120) has no kernels in torch 2.6.0 cu126", "No torch 2.6.0 CUDA build"],
    ),
    ("570.124.06", "NVIDIA GeForce RTX 5090", "12.0", "2.8.0", "cu128", []),
    (
        "570.124.06",
        "NVIDIA GeForce RTX 5090",
        "12.0",
        "2.14.0",
        "cu130",
        ["driver 570.124.06 is too old for cu130", 'cuda = "12.6" (cu126)'],
    ),
    ("580.65.06", "NVIDIA H100 80GB HBM3", "9.0", "2.14.0", "cu130", []),
    (
        "580.65.06",
        "NVIDIA GeForce GTX 1080",
        "6.1",
        "2.14.0",
        "cu130",
        ["GTX 1080 (sm_61) has no kernels in torch 2.14.0 cu130", 'cuda = "12.6" (cu126)'],
    ),
    (
        "580.65.06",
        "NVIDIA GeForce GTX 1080",
        "6.1",
        "2.8.0",
        "cu128",
        ["GTX 1080 (sm_61) has no kernels in torch 2.8.0 cu128", "(cu126)"],
    ),
]


@pytest.mark.parametrize(
    ("driver", "gpu", "cc", "torch", "variant", "expected"),
    HOSTS,
    ids=[f"{h[0]}-{h[1].split()[-1]}-{h[4]}" for h in HOSTS],
)
def test_real_world_hosts(
    tmp_path: Path, driver: str, gpu: str, cc: str, torch: str, variant: str, expected: list[str]
) -> None:
    report = _verdict(
        tmp_path, _lock(torch, variant), _host(tmp_path, driver=driver, gpu=gpu, cc=cc)
    )
    errors = _errors(report)
    assert report.ok is (not expected), errors
    joined = "\n".join(errors)
    for fragment in expected:
        assert fragment in joined


def test_driver_from_proc_without_nvidia_smi(tmp_path: Path) -> None:
    host = _host(tmp_path, driver="470.256.02", via_proc=True)
    assert host.driver_source == "/proc/driver/nvidia/version"
    report = _verdict(tmp_path, _lock("2.6.0", "cu124"), host)
    assert not report.ok


def test_no_driver_is_a_warning_not_an_error(tmp_path: Path) -> None:
    report = _verdict(tmp_path, _lock("2.14.0", "cu130"), _host(tmp_path, driver=None))
    assert report.ok
    warning = next(f for f in report.findings if f.level is Level.WARNING)
    assert "CPU only" in warning.what


def test_failing_nvidia_smi_is_a_warning(tmp_path: Path) -> None:
    smi = tmp_path / "nvidia-smi"
    smi.write_text(
        "#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not communicate "
        "with the NVIDIA driver.' >&2\nexit 9\n"
    )
    smi.chmod(0o755)
    host = probe_host({"PATH": "", "ENVLOCK_NVIDIA_SMI": str(smi)}, root=tmp_path, system=SYSTEM)
    report = _verdict(tmp_path, _lock("2.14.0", "cu130"), host)
    assert report.ok
    warning = next(f for f in report.findings if f.level is Level.WARNING)
    assert "nvidia-smi is installed but failed" in warning.what
    assert "could not communicate" in warning.why


def test_old_glibc_is_an_error(tmp_path: Path) -> None:
    host = HostFacts(os="linux", machine="x86_64", glibc="2.17", python="3.11")
    errors = _errors(_verdict(tmp_path, _lock("2.14.0", "cpu"), host))
    assert any("glibc 2.17 is older than the locked torch wheel needs (2.28)" in e for e in errors)


def test_uncovered_platform_and_python(tmp_path: Path) -> None:
    host = HostFacts(os="linux", machine="aarch64", glibc="2.35", python="3.12")
    errors = _errors(_verdict(tmp_path, _lock("2.14.0", "cu130"), host))
    assert any("does not cover this host's platform linux-aarch64" in e for e in errors)
    assert any("no Python 3.11 on this host" in e and "runs on 3.12" in e for e in errors)


def test_cpu_lock_needs_no_driver(tmp_path: Path) -> None:
    report = _verdict(tmp_path, _lock("2.6.0", "cpu"), _host(tmp_path, driver=None))
    assert report.ok
    assert all(f.level is Level.OK for f in report.findings)


def test_doctor_cli_exit_codes_and_json(
    isolated_env: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (isolated_env / "pylock.toml").write_text(_lock("2.14.0", "cu130"))
    monkeypatch.setenv(
        "ENVLOCK_NVIDIA_SMI", str(_smi(tmp_path, "NVIDIA GeForce GTX 1080", "6.1", "580.65.06"))
    )
    result = cli("doctor", "--json")
    assert result.code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert data["host"]["gpus"] == [
        {"name": "NVIDIA GeForce GTX 1080", "compute-capability": "6.1"}
    ]
    assert data["findings"][0]["level"] == "error"
    text = cli("doctor")
    assert text.code == 1
    assert "error: NVIDIA GeForce GTX 1080 (sm_61)" in text.stdout
    assert "fix:" in text.stdout


def test_doctor_without_lock(isolated_env: Path, cli: Cli) -> None:
    result = cli("doctor")
    assert result.code == 7
    assert "envlock lock" in result.stderr
