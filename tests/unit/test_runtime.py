"""envlock.runtime, envlock.venv_doctor, envlock.wheelfit: probe output, host facts and locks
in, reasons and findings out (no venv, no subprocess)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from packaging.version import Version

from envlock.channels import Variant
from envlock.doctor import Finding, Level, LockedBuild, diagnose
from envlock.host import Gpu, HostFacts
from envlock.lockfile import lock_meta
from envlock.runtime import (
    Device,
    ProbeFailure,
    TorchRuntime,
    Unavailable,
    cudnn_text,
    driver_cuda_text,
    has_kernels,
    parse_probe_output,
    runtime_json,
    why_unavailable,
)
from envlock.spec import Platform
from envlock.venv_doctor import runtime_findings
from envlock.wheelfit import unfit_wheels
from tests.unit.data import channels, lock, meta, package, torch_wheel, wheel

NO_DRIVER = (
    "Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU and "
    "installed a driver from http://www.nvidia.com/Download/index.aspx"
)
TOO_OLD = "The NVIDIA driver on your system is too old (found version 11040). Please update"
NO_GPUS = "No CUDA GPUs are available"
CPU_HOST = HostFacts(os="linux", machine="x86_64", glibc="2.35", python="3.11")
GPU_HOST = HostFacts(
    os="linux",
    machine="x86_64",
    glibc="2.35",
    python="3.11",
    nvidia_driver="550.54.14",
    gpus=(Gpu(name="NVIDIA A100", compute_capability="8.0"),),
)


def _rt(**fields: Any) -> TorchRuntime:
    base: dict[str, Any] = {
        "python": "3.11.7",
        "torch": "2.6.0+cu126",
        "cuda_build": "12.6",
        "available": False,
        "arch_list": ("sm_70", "sm_80", "sm_90"),
    }
    return TorchRuntime(**{**base, **fields})


def _gpu(name: str, cc: tuple[int, int]) -> Device:
    return Device(index=0, name=name, capability=cc)


# --------------------------------------------------------------------------------------
# reading the probe's answer


def test_probe_output_is_read_from_its_last_line() -> None:
    answer = {
        "python": "3.11.7",
        "torch": "2.6.0+cu126",
        "cuda_build": "12.6",
        "available": True,
        "arch_list": ["sm_80", "compute_90"],
        "devices": [{"index": 0, "name": "NVIDIA H100", "capability": [9, 0]}],
        "cudnn": 90100,
        "env": {"CUDA_VISIBLE_DEVICES": "0"},
        "device_nodes": ["/dev/nvidia0"],
        "container": True,
    }
    rt = parse_probe_output("junk torch printed\n" + json.dumps(answer) + "\n")
    assert rt is not None
    assert (rt.torch, rt.cuda_build, rt.available, rt.cudnn) == ("2.6.0+cu126", "12.6", True, 90100)
    assert rt.devices == (Device(index=0, name="NVIDIA H100", capability=(9, 0)),)
    assert rt.env == {"CUDA_VISIBLE_DEVICES": "0"} and rt.container


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", '{"torch": "2.6.0"'])
def test_no_json_object_is_no_answer(text: str) -> None:
    assert parse_probe_output(text) is None


def test_malformed_fields_read_as_absent() -> None:
    text = json.dumps(
        {"torch": 3, "available": "yes", "devices": [{"index": "x", "capability": [9]}, 7]}
    )
    rt = parse_probe_output(text)
    assert rt is not None
    assert (rt.torch, rt.available) == (None, None)
    assert rt.devices == (Device(index=0, name="GPU 0", capability=None),)
    odd = parse_probe_output(json.dumps({"devices": 5, "arch_list": "sm_80", "env": []}))
    assert odd is not None
    assert (odd.devices, odd.arch_list, odd.env) == ((), (), {})


@pytest.mark.parametrize(("number", "text"), [(90100, "9.1.0"), (91002, "9.10.2"), (8902, "8.9.2")])
def test_cudnn_version_text(number: int, text: str) -> None:
    assert cudnn_text(number) == text


def test_driver_cuda_text() -> None:
    assert (driver_cuda_text(11040), driver_cuda_text(12080)) == ("11.4", "12.8")


# --------------------------------------------------------------------------------------
# why CUDA is unavailable

REASONS: dict[str, tuple[TorchRuntime, HostFacts, Unavailable, list[str]]] = {
    "cpu-build": (
        _rt(torch="2.6.0+cpu", cuda_build=None, init_error="Torch not compiled with CUDA enabled"),
        GPU_HOST,
        Unavailable.CPU_BUILD,
        ["CPU build", "has no CUDA"],
    ),
    "no-driver": (_rt(init_error=NO_DRIVER), CPU_HOST, Unavailable.NO_DRIVER, ["no NVIDIA driver"]),
    "kernel-driver-without-libcuda": (
        _rt(init_error=NO_DRIVER, device_nodes=("/dev/nvidiactl", "/dev/nvidia0")),
        GPU_HOST,
        Unavailable.NO_DRIVER,
        ["kernel driver 550.54.14 is loaded", "libcuda.so.1"],
    ),
    "kernel-driver-without-libcuda-or-nodes": (
        _rt(init_error=NO_DRIVER),
        GPU_HOST,
        Unavailable.NO_DRIVER,
        ["libcuda.so.1", "no /dev/nvidia* device nodes either"],
    ),
    "driver-too-old": (
        _rt(init_error=TOO_OLD),
        GPU_HOST,
        Unavailable.DRIVER_TOO_OLD,
        ["older than the build needs", "CUDA 11.4", "built with CUDA 12.6"],
    ),
    "cuda-visible-devices-empty": (
        _rt(init_error=NO_GPUS, env={"CUDA_VISIBLE_DEVICES": ""}),
        GPU_HOST,
        Unavailable.NO_DEVICE_VISIBLE,
        ["no device visible", 'CUDA_VISIBLE_DEVICES=""'],
    ),
    "cuda-visible-devices-minus-one": (
        _rt(init_error=NO_GPUS, env={"CUDA_VISIBLE_DEVICES": "-1"}),
        GPU_HOST,
        Unavailable.NO_DEVICE_VISIBLE,
        ["no device visible", 'CUDA_VISIBLE_DEVICES="-1"', "hides every GPU"],
    ),
    "cuda-visible-devices-names-no-gpu": (
        _rt(init_error=NO_GPUS, env={"CUDA_VISIBLE_DEVICES": "3"}),
        GPU_HOST,
        Unavailable.NO_DEVICE_VISIBLE,
        ['CUDA_VISIBLE_DEVICES="3" names no GPU'],
    ),
    "nvidia-visible-devices-void": (
        _rt(init_error=NO_DRIVER, env={"NVIDIA_VISIBLE_DEVICES": "void"}, container=True),
        CPU_HOST,
        Unavailable.NO_DEVICE_VISIBLE,
        ['NVIDIA_VISIBLE_DEVICES="void"'],
    ),
    "container-without-gpus": (
        _rt(init_error=NO_DRIVER, container=True),
        GPU_HOST,
        Unavailable.NO_DEVICE_VISIBLE,
        ["no device visible", "container", "--gpus"],
    ),
    "init-failed": (
        _rt(init_error="CUDA driver initialization failed, you might not have a CUDA gpu."),
        GPU_HOST,
        Unavailable.INIT_FAILED,
        ["failed to initialise"],
    ),
    "unknown": (_rt(init_error=""), GPU_HOST, Unavailable.UNKNOWN, ["said nothing"]),
}


@pytest.mark.parametrize(("rt", "host", "kind", "words"), REASONS.values(), ids=REASONS.keys())
def test_why_cuda_is_unavailable(
    rt: TorchRuntime, host: HostFacts, kind: Unavailable, words: list[str]
) -> None:
    reason = why_unavailable(rt, host, channels())
    assert reason.kind is kind
    for fragment in words:
        assert fragment in reason.words
    assert reason.fix


def test_a_driver_too_old_names_the_floor_for_the_build() -> None:
    reason = why_unavailable(_rt(init_error=TOO_OLD), GPU_HOST, channels())
    assert "525.60.13" in reason.fix


# --------------------------------------------------------------------------------------
# the arch list against a GPU


@pytest.mark.parametrize(
    ("build", "arches", "cc", "runs"),
    [
        ("12.6", ("sm_80", "sm_90"), (8, 6), True),  # sm_80 SASS runs on sm_86
        ("12.6", ("sm_80", "sm_90"), (12, 0), False),
        ("12.6", ("sm_80", "sm_90"), (7, 5), False),
        ("12.8", ("sm_90", "compute_90"), (12, 0), True),  # PTX JIT, a toolkit that knows 12.0
        ("12.6", ("sm_90", "compute_90"), (12, 0), False),  # 12.6 predates sm_120
        ("12.6", ("sm_90a",), (9, 0), True),
        ("12.6", ("sm_80", "sm_90a"), (9, 1), False),  # sm_90a runs on 9.0 only
        ("12.6", (), (8, 0), None),
    ],
)
def test_has_kernels(
    build: str, arches: tuple[str, ...], cc: tuple[int, int], runs: bool | None
) -> None:
    assert has_kernels(_rt(cuda_build=build, arch_list=arches), channels(), cc) is runs


# --------------------------------------------------------------------------------------
# the venv judged

BUILT = LockedBuild(
    version=Version("2.6.0+cu126"), variant=Variant(name="cu126"), shown="2.6.0+cu126"
)
CPU_BUILT = LockedBuild(
    version=Version("2.6.0+cpu"), variant=Variant(name="cpu"), shown="2.6.0+cpu"
)


def _findings(
    rt: TorchRuntime, host: HostFacts = GPU_HOST, built: LockedBuild | None = BUILT
) -> list[Finding]:
    return runtime_findings(
        rt, venv=".venv", host=host, channels=channels(), built=built, lock_python="3.11"
    )


def _shown(findings: list[Finding], level: Level) -> list[str]:
    return [f.what for f in findings if f.level is level]


def test_cuda_available_with_kernels_is_all_ok() -> None:
    rt = _rt(available=True, devices=(_gpu("NVIDIA A100", (8, 0)),) * 8, cudnn=90100)
    findings = _findings(rt)
    assert {f.level for f in findings} == {Level.OK}
    assert (
        "CUDA is available in .venv: 8 GPUs visible (torch 2.6.0+cu126, CUDA 12.6, cuDNN 9.1.0)"
        in _shown(findings, Level.OK)
    )
    assert len([f for f in findings if "has kernels" in f.what]) == 1  # 8 A100s: one line


def test_a_gpu_missing_from_the_arch_list_is_an_error() -> None:
    rt = _rt(available=True, devices=(_gpu("NVIDIA GeForce RTX 5090", (12, 0)),))
    (error,) = [f for f in _findings(rt) if f.level is Level.ERROR]
    assert "RTX 5090 (sm_120) is not in the arch list of torch 2.6.0+cu126" in error.what
    assert "sm_70, sm_80, sm_90" in error.why and "no kernel image" in error.why
    assert "No torch 2.6 CUDA build supports sm_120" in error.fix


@pytest.mark.parametrize(
    ("host", "level"), [(GPU_HOST, Level.ERROR), (CPU_HOST, Level.WARNING)], ids=["gpu", "cpu"]
)
def test_unavailable_cuda_is_an_error_only_where_there_is_a_gpu(
    host: HostFacts, level: Level
) -> None:
    (finding,) = [f for f in _findings(_rt(init_error=NO_DRIVER), host) if f.level is level]
    assert finding.what.startswith("torch.cuda.is_available() is False in .venv: ")
    assert finding.why == NO_DRIVER


def test_a_cpu_build_on_a_gpu_host_warns_that_the_gpus_go_unused() -> None:
    rt = _rt(torch="2.6.0+cpu", cuda_build=None, arch_list=())
    findings = _findings(rt, built=CPU_BUILT)
    assert _shown(findings, Level.WARNING) == [
        "torch 2.6.0+cpu is a CPU build: it has no CUDA (torch.version.cuda is None); this "
        "host's NVIDIA GPUs go unused"
    ]
    assert not _shown(findings, Level.ERROR)


def test_a_cpu_build_where_the_lock_has_cuda_is_an_error() -> None:
    findings = _findings(_rt(torch="2.6.0+cpu", cuda_build=None))
    assert ".venv has torch 2.6.0+cpu, not the locked 2.6.0+cu126" in _shown(findings, Level.ERROR)


def test_pypis_torch_reports_a_label_the_lock_does_not_have() -> None:
    pypi = LockedBuild(
        version=Version("2.6.0"), variant=Variant(name="cu124"), shown="2.6.0 from PyPI"
    )
    same = _findings(_rt(torch="2.6.0+cu124", cuda_build="12.4", available=True), built=pypi)
    assert not _shown(same, Level.ERROR)
    other = _findings(_rt(torch="2.6.0+cu124", cuda_build="12.6", available=True), built=pypi)
    assert _shown(other, Level.ERROR) == [
        "torch 2.6.0+cu124 in .venv is built for CUDA 12.6, the lock installs CUDA 12.4 (cu124)"
    ]


def test_another_python_in_the_venv_is_an_error() -> None:
    findings = _findings(_rt(python="3.12.3", available=True))
    assert ".venv runs Python 3.12.3, the lock is for Python 3.11" in _shown(findings, Level.ERROR)


@pytest.mark.parametrize(
    ("error", "what", "why"),
    [
        ("ModuleNotFoundError: No module named 'torch'", "torch is not installed in .venv", ""),
        (
            "ImportError: libcudnn.so.9: cannot open shared object file: No such file",
            "torch does not import in .venv",
            "a CUDA library wheel, nvidia-*, is absent or broken",
        ),
        (
            "ImportError: /lib64/libc.so.6: version `GLIBC_2.28' not found",
            "torch does not import in .venv",
            "needs a newer glibc than this host's 2.35",
        ),
    ],
)
def test_torch_that_does_not_import(error: str, what: str, why: str) -> None:
    (finding,) = _findings(_rt(torch=None, import_error=error))
    assert finding.level is Level.ERROR
    assert (finding.what, error in finding.why, why in finding.why) == (what, True, True)


def test_no_torch_in_a_lock_without_torch_is_a_note() -> None:
    rt = _rt(torch=None, import_error="ModuleNotFoundError: No module named 'torch'")
    (finding,) = _findings(rt, built=LockedBuild(version=None, variant=None))
    assert finding.level is Level.NOTE


@pytest.mark.parametrize(
    ("failure", "detail", "what"),
    [
        (ProbeFailure.TIMED_OUT, "60", "the torch probe in .venv did not finish within 60 s"),
        (ProbeFailure.CRASHED, "killed by SIGSEGV", "crashed while importing torch"),
        (ProbeFailure.NO_RESULT, "exit 1: boom", "printed no result"),
    ],
)
def test_a_probe_that_failed_is_one_clear_error(
    failure: ProbeFailure, detail: str, what: str
) -> None:
    (finding,) = _findings(TorchRuntime(failure=failure, detail=detail))
    assert finding.level is Level.ERROR
    assert what in finding.what
    assert finding.fix


def test_runtime_json() -> None:
    rt = _rt(init_error=NO_GPUS, env={"CUDA_VISIBLE_DEVICES": ""}, cudnn=90100)
    data = runtime_json(rt, why_unavailable(rt, GPU_HOST, channels()))
    assert data["why-unavailable"] == "no-device-visible"
    assert data["environment"] == {"CUDA_VISIBLE_DEVICES": ""}
    assert (data["cuda-available"], data["cudnn"], data["probe-failure"]) == (False, "9.1.0", None)


# --------------------------------------------------------------------------------------
# every locked wheel against glibc and the interpreter

FILES = "https://files.example/packages"


def _lock_with(*entries: dict[str, Any]) -> Any:
    torch = package("torch", "2.6.0+cpu", torch_wheel("2.6.0", "cpu"))
    return lock(torch, *entries, envlock=meta(variant="cpu"))


def _numpy(*tags: str, **extra: Any) -> dict[str, Any]:
    wheels = [wheel(f"{FILES}/numpy-2.2.0-{t}.whl") for t in tags]
    return package("numpy", "2.2.0", *wheels, **extra)


def _errors(locked: Any, host: HostFacts = CPU_HOST) -> list[str]:
    recorded = lock_meta(locked)
    assert recorded is not None
    return [f.what for f in diagnose(locked, recorded, host, channels()) if f.level is Level.ERROR]


def test_a_wheel_needing_a_newer_glibc_is_named() -> None:
    errors = _errors(_lock_with(_numpy("cp311-cp311-manylinux_2_99_x86_64")))
    assert errors == [
        "glibc 2.35 is older than the locked numpy wheel needs (2.99): "
        "numpy-2.2.0-cp311-cp311-manylinux_2_99_x86_64.whl"
    ]


def test_one_wheel_the_host_loads_is_enough() -> None:
    locked = _lock_with(
        _numpy("cp311-cp311-manylinux_2_99_x86_64", "cp311-cp311-manylinux2014_x86_64")
    )
    assert _errors(locked) == []


def test_the_lowest_floor_is_the_one_named() -> None:
    locked = _lock_with(
        _numpy("cp311-cp311-manylinux_2_99_x86_64", "cp311-cp311-manylinux_2_39_x86_64")
    )
    assert _errors(locked, HostFacts(**{**_facts(CPU_HOST), "glibc": "2.17"})) == [
        "glibc 2.17 is older than the locked torch wheel needs (2.28): "
        "torch-2.6.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl",
        "glibc 2.17 is older than the locked numpy wheel needs (2.39): "
        "numpy-2.2.0-cp311-cp311-manylinux_2_39_x86_64.whl",
    ]


def _facts(host: HostFacts) -> dict[str, Any]:
    return {"os": host.os, "machine": host.machine, "glibc": host.glibc, "python": host.python}


def test_a_musllinux_only_wheel_on_a_glibc_host_is_named() -> None:
    (error,) = _errors(_lock_with(_numpy("cp311-cp311-musllinux_1_2_x86_64")))
    assert "numpy wheel is built for musl libc, this host has glibc 2.35" in error


def test_a_wheel_for_another_python_is_named() -> None:
    (error,) = _errors(_lock_with(_numpy("cp312-cp312-manylinux_2_17_x86_64")))
    assert error == (
        "no locked numpy wheel loads in CPython 3.11: "
        "numpy-2.2.0-cp312-cp312-manylinux_2_17_x86_64.whl is built for cp312-cp312"
    )


def test_a_package_whose_marker_excludes_the_host_is_not_judged() -> None:
    entry = _numpy("cp311-cp311-manylinux_2_99_x86_64", marker="sys_platform == 'win32'")
    assert _errors(_lock_with(entry)) == []


def test_glibc_ok_names_the_newest_floor() -> None:
    locked = _lock_with(_numpy("cp311-cp311-manylinux_2_34_x86_64"))
    recorded = lock_meta(locked)
    assert recorded is not None
    oks = [f.what for f in diagnose(locked, recorded, CPU_HOST, channels()) if f.level is Level.OK]
    assert "glibc 2.35 >= 2.34" in oks


def test_unfit_wheels_knows_an_sdist_is_there() -> None:
    entry = _numpy(
        "cp311-cp311-manylinux_2_99_x86_64",
        sdist={"url": f"{FILES}/numpy-2.2.0.tar.gz", "hashes": {"sha256": "b" * 64}},
    )
    fit = unfit_wheels(_lock_with(entry), Platform.LINUX_X86_64, "3.11", (2, 35))
    assert [(u.package, u.glibc, u.has_sdist) for u in fit.unfit] == [("numpy", (2, 99), True)]


def test_a_gpu_no_build_serves_gets_a_fix_that_ends_once() -> None:
    host = HostFacts(
        **{**_facts(GPU_HOST), "nvidia_driver": "570.124.06"},
        gpus=(Gpu(name="RTX 5090", compute_capability="12.0"),),
    )
    locked = lock(package("torch", "2.6.0+cu126", torch_wheel("2.6.0", "cu126")), envlock=meta())
    recorded = lock_meta(locked)
    assert recorded is not None
    (error,) = [f for f in diagnose(locked, recorded, host, channels()) if f.level is Level.ERROR]
    assert error.fix.startswith("No torch 2.6.0 CUDA build supports sm_120")
    assert error.fix.endswith("the CPU build.")
