"""envlock.doctor: host facts + lock + channel data -> findings (no probing, no files)."""

from __future__ import annotations

from typing import Any

import pytest
from packaging.version import Version

from envlock.doctor import Finding, Level, diagnose, host_json, locked_build, variants_for_gpu
from envlock.host import Gpu, HostFacts
from envlock.lockfile import lock_meta
from envlock.spec import Platform
from tests.unit.data import channels, lock, meta, package, torch_wheel, wheel

LINUX = {"os": "linux", "machine": "x86_64", "glibc": "2.35", "python": "3.11"}


def _host(**facts: Any) -> HostFacts:
    gpus = tuple(Gpu(name=n, compute_capability=cc) for n, cc in facts.pop("gpus", ()))
    return HostFacts(**{**LINUX, **facts}, gpus=gpus)


def _torch_lock(version: str = "2.6.0", variant: str = "cu126", **recorded: Any) -> Any:
    entry = package("torch", f"{version}+{variant}", torch_wheel(version, variant))
    return lock(entry, envlock=meta(variant=variant, **recorded))


def _run(host: HostFacts, locked: Any) -> list[Finding]:
    recorded = lock_meta(locked)
    assert recorded is not None
    return diagnose(locked, recorded, host, channels())


DIAGNOSES: dict[str, tuple[HostFacts, Any, list[str], list[str]]] = {
    # host, lock, error fragments (in order), ok fragments that must be there too
    "all-fine": (
        _host(nvidia_driver="550.54.14", gpus=[("NVIDIA A100", "8.0")]),
        _torch_lock(),
        [],
        ["platform linux-x86_64 is locked", "driver 550.54.14 runs cu126", "has kernels in cu126"],
    ),
    "cpu-needs-no-driver": (_host(), _torch_lock(variant="cpu"), [], ["needs no NVIDIA driver"]),
    "driver-too-old": (
        _host(nvidia_driver="470.256.02", driver_source="/proc/driver/nvidia/version"),
        _torch_lock(),
        ["NVIDIA driver 470.256.02 is too old for cu126"],
        [],
    ),
    "gpu-without-kernels": (
        _host(nvidia_driver="550.54.14", gpus=[("Tesla P100", "6.0")]),
        _torch_lock(variant="cu124"),
        ["Tesla P100 (sm_60) has no kernels in torch 2.6.0 cu124"],
        ["driver 550.54.14 runs cu124"],
    ),
    "other-platform": (
        _host(machine="aarch64"),
        _torch_lock(),
        ["does not cover this host's platform linux-aarch64"],
        [],
    ),
    "unknown-platform": (
        _host(os="freebsd"),
        _torch_lock(),
        ["is not a platform envlock locks for"],
        [],
    ),
    "other-python": (
        _host(python="3.12"),
        _torch_lock(variant="cpu"),
        ["no Python 3.11 on this host"],
        [],
    ),
    "old-glibc": (
        _host(glibc="2.17"),
        _torch_lock(variant="cpu"),
        ["glibc 2.17 is older than the locked torch wheel needs (2.28)"],
        [],
    ),
    "record-disagrees-with-the-wheel": (
        _host(),
        lock(
            package("torch", "2.6.0+cpu", torch_wheel("2.6.0", "cpu")),
            envlock=meta(variant="cu126"),
        ),
        ["[tool.envlock] says cu126 but torch is 2.6.0+cpu"],
        [],
    ),
}


@pytest.mark.parametrize(
    ("host", "locked", "errors", "oks"), DIAGNOSES.values(), ids=DIAGNOSES.keys()
)
def test_diagnose(host: HostFacts, locked: Any, errors: list[str], oks: list[str]) -> None:
    findings = _run(host, locked)
    found_errors = [f.what for f in findings if f.level is Level.ERROR]
    assert len(found_errors) == len(errors), found_errors
    for what, fragment in zip(found_errors, errors, strict=True):
        assert fragment in what
    shown_ok = "\n".join(f.what for f in findings if f.level is Level.OK)
    for fragment in oks:
        assert fragment in shown_ok
    levels = [f.level for f in findings]
    assert levels == sorted(levels, key=[Level.ERROR, Level.WARNING, Level.NOTE, Level.OK].index)
    assert all(f.fix for f in findings if f.level is Level.ERROR)


@pytest.mark.parametrize(
    ("facts", "warning"),
    [
        ({}, "no NVIDIA driver found; this cu126 lock will run on the CPU only"),
        (
            {"smi_error": "Failed to initialize NVML"},
            "nvidia-smi is installed but failed; the driver could not be read",
        ),
    ],
)
def test_a_cuda_lock_on_a_host_without_a_driver_warns(facts: dict[str, str], warning: str) -> None:
    findings = _run(_host(**facts), _torch_lock())
    assert [f.what for f in findings if f.level is Level.WARNING] == [warning]
    assert not [f for f in findings if f.level is Level.ERROR]


@pytest.mark.parametrize(
    ("cc", "variants"),
    [((8, 0), ["cu118", "cu124", "cu126"]), ((10, 0), ["cu126"]), ((6, 0), [])],
)
def test_variants_for_gpu(cc: tuple[int, int], variants: list[str]) -> None:
    data = channels()
    release = data.release("2.6")
    assert release is not None
    assert variants_for_gpu(release, data, Version("2.6.0"), cc) == variants


@pytest.mark.parametrize(
    ("entry", "platform", "variant", "shown"),
    [
        (
            package("torch", "2.6.0+cu126", torch_wheel("2.6.0", "cu126")),
            Platform.LINUX_X86_64,
            "cu126",
            "2.6.0+cu126",
        ),
        (
            package(
                "torch",
                "2.6.0",
                wheel("https://files.example/torch-2.6.0-cp311-cp311-manylinux_2_28_x86_64.whl"),
            ),
            Platform.LINUX_X86_64,
            "cu124",  # PyPI's own build, from the channel data
            "2.6.0 from PyPI (cu124 on linux-x86_64)",
        ),
        (
            package("six", "1.17.0", wheel("https://f/six-1.17.0-py3-none-any.whl")),
            Platform.LINUX_X86_64,
            None,
            "",
        ),
        (
            package("torch", "2.6.0+cu126", torch_wheel("2.6.0", "cu126")),
            Platform.WINDOWS_X86_64,
            None,
            "",
        ),
    ],
    ids=["label", "pypi-build", "no-torch", "no-wheel-for-the-platform"],
)
def test_locked_build(
    entry: dict[str, Any], platform: Platform, variant: str | None, shown: str
) -> None:
    built = locked_build(lock(entry), platform, "3.11", channels())
    assert (built.variant.name if built.variant else None, built.shown) == (variant, shown)


def test_host_json() -> None:
    host = _host(nvidia_driver="550.54.14", driver_source="nvidia-smi", gpus=[("A100", "8.0")])
    assert host_json(host) == {
        "os": "linux",
        "machine": "x86_64",
        "platform": "linux-x86_64",
        "glibc": "2.35",
        "python": "3.11",
        "nvidia-driver": "550.54.14",
        "driver-source": "nvidia-smi",
        "gpus": [{"name": "A100", "compute-capability": "8.0"}],
    }
    assert host_json(HostFacts())["platform"] is None
