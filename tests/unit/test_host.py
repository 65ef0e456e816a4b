"""envlock.host: host facts, and what builds a driver and its GPUs can run."""

from __future__ import annotations

import pytest
from packaging.version import Version

from envlock.channels import Variant
from envlock.errors import SpecError
from envlock.host import (
    Gpu,
    HostFacts,
    arch_row,
    arch_text,
    compute_capability,
    driver_version,
    recommend_build,
    runs_on,
    sm_name,
    variants_for_driver,
)
from envlock.spec import Platform
from tests.unit.data import channels


@pytest.mark.parametrize(
    ("os", "machine", "platform"),
    [
        ("linux", "x86_64", Platform.LINUX_X86_64),
        ("linux", "AMD64", Platform.LINUX_X86_64),
        ("linux", "aarch64", Platform.LINUX_AARCH64),
        ("linux", "arm64", Platform.LINUX_AARCH64),
        ("darwin", "arm64", Platform.MACOS_ARM64),
        ("darwin", "x86_64", None),  # Intel macs: no torch wheels any more
        ("windows", "AMD64", Platform.WINDOWS_X86_64),
        ("windows", "arm64", None),
        ("freebsd", "x86_64", None),
        ("", "", None),
    ],
)
def test_host_platform(os: str, machine: str, platform: Platform | None) -> None:
    assert HostFacts(os=os, machine=machine).platform is platform


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("550.54.14", Version("550.54.14")),
        (" 470.256.02\n", Version("470.256.02")),
        ("[N/A]", None),
        ("", None),
        ("No devices were found", None),
    ],
)
def test_driver_version(text: str, version: Version | None) -> None:
    assert driver_version(text) == version


@pytest.mark.parametrize(
    ("text", "cc"),
    [
        ("8.6", (8, 6)),
        (" 12.0 ", (12, 0)),
        ("[N/A]", None),
        ("8", None),
        ("8.6.1", None),
        ("", None),
    ],
)
def test_compute_capability(text: str, cc: tuple[int, int] | None) -> None:
    assert compute_capability(text) == cc


@pytest.mark.parametrize(
    ("cc", "name"), [((8, 6), "sm_86"), ((12, 0), "sm_120"), ((7, 0), "sm_70")]
)
def test_sm_name(cc: tuple[int, int], name: str) -> None:
    assert sm_name(cc) == name


@pytest.mark.parametrize(
    ("torch", "variant", "found"),
    [
        ("2.6.0", "cu126", True),
        ("2.6.0+cu126", "cu126", True),  # the local label does not hide the release
        ("2.6.3", "cu124", True),
        ("2.7.0", "cu126", False),  # no row: the data does not know
        ("2.6.0", "cpu", False),
    ],
)
def test_arch_row(torch: str, variant: str, found: bool) -> None:
    row = arch_row(channels(), Version(torch), Variant(name=variant))
    assert (row is not None) is found
    if row is not None:
        assert row.variant.name == variant


@pytest.mark.parametrize(
    ("variant", "cc", "runs"),
    [
        ("cu124", (8, 0), True),  # SASS for the very architecture
        ("cu124", (8, 6), True),  # sm_80 code runs on sm_86 (same major, higher minor)
        ("cu124", (7, 5), True),
        ("cu124", (6, 1), False),  # older than anything shipped
        ("cu124", (10, 0), False),  # newer major, no PTX
        ("cu126", (10, 0), True),  # newer major, PTX to JIT
        ("cu126", (12, 0), False),  # PTX, but CUDA 12.6 does not know sm_120 (needs 12.8)
        ("cu118", (8, 9), True),  # sm_86 SASS covers sm_89
    ],
)
def test_runs_on(variant: str, cc: tuple[int, int], runs: bool) -> None:
    data = channels()
    row = arch_row(data, Version("2.6.0"), Variant(name=variant))
    assert row is not None
    assert runs_on(row, data, cc) is runs


@pytest.mark.parametrize(
    ("variant", "text"),
    [("cu124", "sm_70, sm_80, sm_90"), ("cu126", "sm_70, sm_80, sm_90 +PTX")],
)
def test_arch_text(variant: str, text: str) -> None:
    row = arch_row(channels(), Version("2.6.0"), Variant(name=variant))
    assert row is not None
    assert arch_text(row) == text


@pytest.mark.parametrize(
    ("driver", "variants"),
    [
        ("570.124.06", ["cu118", "cu124", "cu126"]),
        ("525.60.13", ["cu118", "cu124", "cu126"]),  # exactly the floor
        ("525.60.12", ["cu118"]),
        ("470.256.02", ["cu118"]),
        ("440.33.01", []),
        ("not a driver", []),
    ],
)
def test_variants_for_driver(driver: str, variants: list[str]) -> None:
    data = channels()
    release = data.release("2.6")
    assert release is not None
    assert [v.name for v in variants_for_driver(release, data, driver)] == variants


def _host(driver: str | None = None, *gpus: tuple[str, str]) -> HostFacts:
    return HostFacts(
        os="linux",
        machine="x86_64",
        nvidia_driver=driver,
        driver_source="nvidia-smi" if driver else "",
        gpus=tuple(Gpu(name=n, compute_capability=cc) for n, cc in gpus),
    )


RECOMMENDATIONS = {
    "no-driver-pypi-cuda": (_host(), Platform.LINUX_X86_64, "12.4", "build PyPI itself ships"),
    "no-driver-pypi-cpu": (_host(), Platform.LINUX_AARCH64, "cpu", "PyPI ships a CPU build"),
    "driver-too-old": (_host("440.33.01"), Platform.LINUX_X86_64, "cpu", "too old for every"),
    "driver-only": (_host("570.124.06"), Platform.LINUX_X86_64, "12.6", "newest torch 2.6 CUDA"),
    "old-driver-newest-it-runs": (_host("470.256.02"), Platform.LINUX_X86_64, "11.8", "cu118"),
    "gpu-covered": (
        _host("570.124.06", ("NVIDIA A100", "8.0")),
        Platform.LINUX_X86_64,
        "12.6",
        "kernels for NVIDIA A100 (sm_80)",
    ),
    "gpu-only-in-an-older-build": (
        _host("570.124.06", ("RTX 4090", "8.9")),
        Platform.LINUX_X86_64,
        "12.6",  # cu126 has sm_80 SASS, which sm_89 runs
        "RTX 4090 (sm_89)",
    ),
    "unreadable-cc-is-the-driver-alone": (
        _host("570.124.06", ("GPU", "[N/A]")),
        Platform.LINUX_X86_64,
        "12.6",
        "can run",
    ),
}


@pytest.mark.parametrize(
    ("host", "platform", "cuda", "reason"), RECOMMENDATIONS.values(), ids=RECOMMENDATIONS.keys()
)
def test_recommend_build(host: HostFacts, platform: Platform, cuda: str, reason: str) -> None:
    data = channels()
    release = data.release("2.6")
    assert release is not None
    recommended = recommend_build(release, data, host, platform)
    assert recommended.cuda == cuda
    assert reason in recommended.reason


def test_no_build_with_kernels_for_the_gpu_is_refused() -> None:
    data = channels()
    release = data.release("2.6")
    assert release is not None
    host = _host("570.124.06", ("NVIDIA P100", "6.0"))
    with pytest.raises(SpecError) as raised:
        recommend_build(release, data, host, Platform.LINUX_X86_64)
    assert "has kernels for NVIDIA P100 (sm_60)" in raised.value.message
    assert "cu124: sm_70, sm_80, sm_90 (runs on driver 570.124.06)" in raised.value.detail
    assert "--cuda cpu" in raised.value.hint
