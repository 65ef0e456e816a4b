"""envlock doctor --venv: torch asked inside a real venv (a fake torch that answers like the real
one on the host it describes), and every locked wheel's tags against the host."""

from __future__ import annotations

import ast
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from envlock import api
from envlock.doctor import Level
from envlock.errors import ExitCode
from envlock.host import Gpu, HostFacts
from envlock.lockfile import render_lock
from tests.conftest import Cli, assert_refused
from tests.support.venvs import make_venv
from tests.support.wheels import FakeTorch, write_fake_torch
from tests.unit.data import lock, meta, package, wheel

PY = f"{sys.version_info.major}.{sys.version_info.minor}"
CP = f"cp{sys.version_info.major}{sys.version_info.minor}"
A100 = ("NVIDIA A100-SXM4-80GB", (8, 0))
RTX5090 = ("NVIDIA GeForce RTX 5090", (12, 0))
DRIVER_12_8 = 12080  # what cudaDriverGetVersion says for a 570 driver


def _host(*gpus: tuple[str, tuple[int, int]], driver: str | None = "570.124.06") -> HostFacts:
    """The host as io/probe reads it (nvidia-smi's GPUs, /proc's driver)."""
    return HostFacts(
        os="linux",
        machine="x86_64",
        glibc="2.35",
        python=PY,
        nvidia_driver=driver if gpus else None,
        driver_source="nvidia-smi" if gpus else "",
        gpus=tuple(Gpu(name=n, compute_capability=f"{cc[0]}.{cc[1]}") for n, cc in gpus),
    )


def _lock_text(variant: str = "cu126", *extra: dict[str, Any]) -> str:
    url = (
        f"https://download.pytorch.org/whl/{variant}/"
        f"torch-2.6.0%2B{variant}-{CP}-{CP}-manylinux_2_28_x86_64.whl"
    )
    torch = package("torch", f"2.6.0+{variant}", wheel(url))
    return render_lock(lock(torch, *extra, envlock=meta(variant=variant, python=PY)))


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    path = tmp_path / ".venv"
    make_venv(path)
    return path


def _site(venv: Path) -> Path:
    return venv / "lib" / f"python{PY}" / "site-packages"


def _doctor(
    tmp_path: Path,
    venv: Path,
    fake: FakeTorch | None,
    host: HostFacts,
    *,
    variant: str = "cu126",
    environ: dict[str, str] | None = None,
    timeout: float | None = None,
) -> api.DoctorReport:
    if fake is not None:
        write_fake_torch(_site(venv), fake)
    lock_path = tmp_path / "pylock.toml"
    lock_path.write_text(_lock_text(variant))
    root = tmp_path / "root"  # no /dev/nvidia*, no container markers unless a test adds them
    root.mkdir(exist_ok=True)
    return api.doctor(
        lock_path,
        host=host,
        venv=venv,
        environ={"PATH": "/usr/bin:/bin", **(environ or {})},
        root=root,
        probe_timeout=timeout,
    )


def _at(report: api.DoctorReport, level: Level) -> list[str]:
    return [f"{f.what} | {f.why}" for f in report.findings if f.level is level]


def test_cuda_available_with_the_gpus_arch_in_the_build_is_ok(tmp_path: Path, venv: Path) -> None:
    fake = FakeTorch(gpus=(A100, A100), driver_cuda=DRIVER_12_8, cudnn=90100)
    report = _doctor(tmp_path, venv, fake, _host(A100, A100))
    assert report.ok, _at(report, Level.ERROR)
    oks = "\n".join(_at(report, Level.OK))
    assert f"CUDA is available in {venv}: 2 GPUs visible" in oks
    assert "cuDNN 9.1.0" in oks
    assert "NVIDIA A100-SXM4-80GB (sm_80) has kernels in torch 2.6.0+cu126" in oks
    assert f"torch 2.6.0+cu126 in {venv} is the locked build" in oks


def test_a_gpu_whose_arch_is_not_in_the_build_is_named(tmp_path: Path, venv: Path) -> None:
    fake = FakeTorch(gpus=(RTX5090,), driver_cuda=DRIVER_12_8)
    report = _doctor(tmp_path, venv, fake, _host(RTX5090))
    assert not report.ok
    (error,) = _at(report, Level.ERROR)  # torch's own arch list replaces the channel data's
    assert "RTX 5090 (sm_120) is not in the arch list of torch 2.6.0+cu126" in error
    assert "sm_50, sm_60, sm_70, sm_75, sm_80, sm_86, sm_90" in error


def test_no_driver_says_so(tmp_path: Path, venv: Path) -> None:
    report = _doctor(tmp_path, venv, FakeTorch(driver_cuda=None), _host())
    (warning,) = [w for w in _at(report, Level.WARNING) if "is_available() is False" in w]
    assert "no NVIDIA driver" in warning
    assert "Found no NVIDIA driver on your system" in warning
    assert report.ok  # a CPU-only host: the venv runs on the CPU, as doctor says of the lock


def test_a_driver_older_than_the_build_needs_says_so(tmp_path: Path, venv: Path) -> None:
    v100 = ("Tesla V100-SXM2-16GB", (7, 0))
    fake = FakeTorch(gpus=(v100,), driver_cuda=11040)
    report = _doctor(tmp_path, venv, fake, _host(v100, driver="470.256.02"))
    assert not report.ok
    (error,) = [e for e in _at(report, Level.ERROR) if "is_available() is False" in e]
    assert "the NVIDIA driver 470.256.02 is older than the build needs" in error
    assert "it supports CUDA 11.4, torch was built with CUDA 12.6" in error
    assert report.unavailable is not None and report.unavailable.kind.value == "driver-too-old"


@pytest.mark.parametrize("value", ["", "-1"], ids=["empty", "minus-one"])
def test_cuda_visible_devices_hiding_every_gpu_is_named(
    tmp_path: Path, venv: Path, value: str
) -> None:
    fake = FakeTorch(gpus=(A100,), driver_cuda=DRIVER_12_8)
    report = _doctor(tmp_path, venv, fake, _host(A100), environ={"CUDA_VISIBLE_DEVICES": value})
    assert not report.ok
    (error,) = [e for e in _at(report, Level.ERROR) if "is_available() is False" in e]
    assert f'no device visible: CUDA_VISIBLE_DEVICES="{value}" hides every GPU' in error


def test_a_container_run_without_gpus_says_no_device_visible(tmp_path: Path, venv: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / ".dockerenv").write_text("")
    report = _doctor(tmp_path, venv, FakeTorch(driver_cuda=None), _host(A100))
    (error,) = [e for e in _at(report, Level.ERROR) if "is_available() is False" in e]
    assert "no device visible: this container has no /dev/nvidia* device nodes" in error
    assert "--gpus" in error


def test_a_cpu_build_on_a_gpu_host_says_the_build_has_no_cuda(tmp_path: Path, venv: Path) -> None:
    fake = FakeTorch(version="2.6.0+cpu", cuda=None, arch_list=())
    report = _doctor(tmp_path, venv, fake, _host(A100), variant="cpu")
    warnings = "\n".join(_at(report, Level.WARNING))
    assert "torch 2.6.0+cpu is a CPU build: it has no CUDA" in warnings
    assert "GPUs go unused" in warnings


def test_a_cpu_build_in_the_venv_of_a_cuda_lock_is_an_error(tmp_path: Path, venv: Path) -> None:
    fake = FakeTorch(version="2.6.0+cpu", cuda=None, arch_list=())
    report = _doctor(tmp_path, venv, fake, _host(A100))
    assert f"{venv} has torch 2.6.0+cpu, not the locked 2.6.0+cu126 | " in _at(report, Level.ERROR)


def test_a_probe_that_hangs_is_a_finding_not_a_hang(tmp_path: Path, venv: Path) -> None:
    started = time.monotonic()
    report = _doctor(tmp_path, venv, FakeTorch(hang=True), _host(A100), timeout=1.5)
    assert time.monotonic() - started < 20
    errors = _at(report, Level.ERROR)
    assert any(f"the torch probe in {venv} did not finish within 1.5 s" in e for e in errors)


def test_torch_that_cannot_import_shows_the_last_traceback_line(tmp_path: Path, venv: Path) -> None:
    missing = "libcudnn.so.9: cannot open shared object file: No such file or directory"
    report = _doctor(tmp_path, venv, FakeTorch(import_error=missing), _host(A100))
    (error,) = [e for e in _at(report, Level.ERROR) if "does not import" in e]
    assert f"torch does not import in {venv} | ImportError: {missing}" in error


def test_a_venv_without_torch_says_it_is_not_installed(tmp_path: Path, venv: Path) -> None:
    report = _doctor(tmp_path, venv, None, _host(A100))
    errors = "\n".join(_at(report, Level.ERROR))
    assert f"torch is not installed in {venv} | ModuleNotFoundError: No module named 'torch'" in (
        errors
    )


def test_what_torch_prints_while_loading_does_not_spoil_the_answer(
    tmp_path: Path, venv: Path
) -> None:
    fake = FakeTorch(gpus=(A100,), driver_cuda=DRIVER_12_8, prints='{"torch": "junk"}')
    report = _doctor(tmp_path, venv, fake, _host(A100))
    assert report.runtime is not None and report.runtime.torch == "2.6.0+cu126"


# --------------------------------------------------------------------------------------
# through the command line


@pytest.fixture
def gpu_host(isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with a cu126 lock on a host whose nvidia-smi lists an A100."""
    smi = tmp_path / "nvidia-smi"
    smi.write_text('#!/bin/sh\necho "NVIDIA A100-SXM4-80GB, 8.0, 570.124.06"\n')
    smi.chmod(0o755)
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(smi))
    (isolated_env / "pylock.toml").write_text(_lock_text())
    make_venv(isolated_env / ".venv")
    return isolated_env


def test_doctor_venv_json_says_why_cuda_is_unavailable(
    gpu_host: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_fake_torch(_site(gpu_host / ".venv"), FakeTorch(gpus=(A100,), driver_cuda=DRIVER_12_8))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    result = cli("doctor", "--venv", ".venv", "--json")
    assert result.code == ExitCode.CHECK_FAILED, result.stderr
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert data["venv"]["path"] == ".venv"
    assert data["venv"]["why-unavailable"] == "no-device-visible"
    assert data["venv"]["environment"] == {"CUDA_VISIBLE_DEVICES": ""}
    assert data["findings"][0]["level"] == "error"
    assert 'CUDA_VISIBLE_DEVICES=""' in data["findings"][0]["what"]


def test_doctor_venv_text_shows_the_venv_and_exits_0_when_it_works(
    gpu_host: Path, cli: Cli
) -> None:
    write_fake_torch(_site(gpu_host / ".venv"), FakeTorch(gpus=(A100,), driver_cuda=DRIVER_12_8))
    result = cli("doctor", "--venv", ".venv")
    assert result.code == 0, result.stdout
    assert f"venv: .venv, Python {PY}." in result.stdout
    assert "torch 2.6.0+cu126 (CUDA build 12.6; CUDA available)" in result.stdout
    assert "ok: CUDA is available in .venv: 1 GPU visible" in result.stdout


def test_doctor_venv_that_is_not_a_venv_is_refused(gpu_host: Path, cli: Cli) -> None:
    (gpu_host / "notavenv").mkdir()
    result = cli("doctor", "--venv", "notavenv")
    assert_refused(result, ExitCode.MATERIALISE)
    assert "notavenv is not a virtual environment" in result.stderr


def test_doctor_names_a_locked_wheel_that_needs_a_newer_glibc(
    isolated_env: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(tmp_path / "no-nvidia-smi"))
    numpy = package(
        "numpy",
        "2.2.0",
        wheel(f"https://files.example/numpy-2.2.0-{CP}-{CP}-manylinux_2_99_x86_64.whl"),
    )
    (isolated_env / "pylock.toml").write_text(_lock_text("cpu", numpy))
    result = cli("doctor", "--json")
    data = json.loads(result.stdout)
    glibc = data["host"]["glibc"]
    if data["host"]["platform"] != "linux-x86_64" or glibc is None:
        pytest.skip("needs a glibc linux-x86_64 host")
    assert result.code == ExitCode.CHECK_FAILED
    assert [f["what"] for f in data["findings"] if f["level"] == "error"] == [
        f"glibc {glibc} is older than the locked numpy wheel needs (2.99): "
        f"numpy-2.2.0-{CP}-{CP}-manylinux_2_99_x86_64.whl"
    ]


# --------------------------------------------------------------------------------------
# the probe program itself


def test_the_probe_runs_on_any_python3_with_the_standard_library_only() -> None:
    from envlock.io.runtime_probe import PROBE  # noqa: PLC0415

    tree = ast.parse(PROBE.read_text(encoding="utf-8"), feature_version=(3, 8))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (
            node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
        )
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


def test_a_torch_without_torch_cuda_is_a_finding_not_a_crash(tmp_path: Path, venv: Path) -> None:
    # what tests/support/wheels.build_wheel's torch has: __version__ and torch.version.cuda
    torch = _site(venv) / "torch"
    torch.mkdir()
    (torch / "__init__.py").write_text('__version__ = "2.6.0+cu126"\nfrom torch import version\n')
    (torch / "version.py").write_text('cuda = "12.6"\n')
    report = _doctor(tmp_path, venv, None, _host(A100))
    (error,) = [e for e in _at(report, Level.ERROR) if "is_available() is False" in e]
    assert "asking torch failed (cuda" in error
    assert "has no attribute 'cuda'" in error


def test_doctor_venv_judges_the_variant_the_venv_was_synced_from(
    fixture_env: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.test_variants import SPEC  # noqa: PLC0415 - the three-variant project

    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(tmp_path / "no-nvidia-smi"))
    (fixture_env / "torchenv.toml").write_text(SPEC)
    assert cli("lock").code == 0
    make_venv(fixture_env / "other")
    refused = cli("doctor", "--venv", "other")
    assert_refused(refused, ExitCode.USAGE)
    assert "Pass --variant NAME" in refused.stderr
    assert cli("sync", "--venv", ".venv", "--variant", "cpu").code == 0
    result = cli("doctor", "--venv", ".venv")
    assert result.code == 0, result.stdout
    assert "torch 2.6.0+cpu in .venv is the locked build" in result.stdout
    assert "torch 2.6.0+cpu (CPU build) imports in .venv" in result.stdout
