"""Facts envlock derives rather than trusts: the build a lock's torch entry really is, and the
build `envlock init` may write for the GPUs a host really has."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.pylock import Pylock

from envlock import api
from envlock.channels import Channels
from envlock.doctor import locked_build
from envlock.errors import SpecError
from envlock.host import Gpu, HostFacts, recommend_build
from envlock.spec import Platform
from tests.conftest import Cli, assert_refused

WHL = "https://download.pytorch.org/whl"
PYPI = "https://files.pythonhosted.org/packages/aa/bb"
LINUX = Platform.LINUX_X86_64


@pytest.fixture(scope="module")
def channels() -> Channels:
    return api.load_channels()


def _torch(version: str, *urls: str, marker: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": "torch",
        "version": version,
        "wheels": [{"url": u, "hashes": {"sha256": "a" * 64}} for u in urls],
    }
    if marker is not None:
        entry["marker"] = marker
    return entry


def _pylock(*packages: dict[str, Any]) -> Pylock:
    return Pylock.from_dict(
        {"lock-version": "1.0", "created-by": "test", "packages": list(packages)}
    )


# --------------------------------------------------------------------------------------
# the locked torch artifact


def test_local_label_names_the_build(channels: Channels) -> None:
    lock = _pylock(
        _torch("2.6.0+cu126", f"{WHL}/cu126/torch-2.6.0%2Bcu126-cp311-cp311-linux_x86_64.whl")
    )
    built = locked_build(lock, LINUX, "3.11", channels)
    assert built.variant is not None and built.variant.name == "cu126"
    assert built.shown == "2.6.0+cu126"


def test_wheel_url_folder_names_the_build_without_a_label(channels: Channels) -> None:
    lock = _pylock(
        _torch("2.6.0", f"{WHL}/cu118/torch-2.6.0-cp311-cp311-manylinux_2_28_x86_64.whl")
    )
    built = locked_build(lock, LINUX, "3.11", channels)
    assert built.variant is not None and built.variant.name == "cu118"


def test_no_label_no_folder_is_pypis_own_build_for_that_release(channels: Channels) -> None:
    lock = _pylock(_torch("2.6.0", f"{PYPI}/torch-2.6.0-cp311-cp311-manylinux1_x86_64.whl"))
    built = locked_build(lock, LINUX, "3.11", channels)
    assert built.variant is not None and built.variant.name == "cu124"
    assert built.shown == "2.6.0 from PyPI (cu124 on linux-x86_64)"


def test_pypi_build_depends_on_the_platform(channels: Channels) -> None:
    lock = _pylock(_torch("2.6.0", f"{PYPI}/torch-2.6.0-cp311-cp311-manylinux_2_28_aarch64.whl"))
    built = locked_build(lock, Platform.LINUX_AARCH64, "3.11", channels)
    assert built.variant is not None and built.variant.name == "cpu"


def test_the_platforms_own_torch_entry_is_read(channels: Channels) -> None:
    lock = _pylock(
        _torch(
            "2.6.0+cu124",
            f"{WHL}/cu124/torch-2.6.0%2Bcu124-cp311-cp311-manylinux_2_28_x86_64.whl",
            marker="sys_platform == 'linux'",
        ),
        _torch(
            "2.6.0",
            f"{PYPI}/torch-2.6.0-cp311-none-macosx_11_0_arm64.whl",
            marker="sys_platform == 'darwin'",
        ),
    )
    mac = locked_build(lock, Platform.MACOS_ARM64, "3.11", channels)
    assert mac.variant is not None and mac.variant.name == "cpu"
    linux = locked_build(lock, LINUX, "3.11", channels)
    assert linux.variant is not None and linux.variant.name == "cu124"


def test_label_and_folder_that_disagree_are_reported(channels: Channels) -> None:
    lock = _pylock(
        _torch("2.6.0+cu126", f"{WHL}/cu124/torch-2.6.0%2Bcu126-cp311-cp311-linux_x86_64.whl")
    )
    built = locked_build(lock, LINUX, "3.11", channels)
    assert sorted({v.name for _, v in built.clues}) == ["cu124", "cu126"]


def test_no_torch_derives_nothing(channels: Channels) -> None:
    built = locked_build(_pylock(), LINUX, "3.11", channels)
    assert built.version is None
    assert built.variant is None


def test_unknown_release_without_label_derives_no_build(channels: Channels) -> None:
    lock = _pylock(_torch("1.13.1", f"{PYPI}/torch-1.13.1-cp311-cp311-manylinux1_x86_64.whl"))
    built = locked_build(lock, LINUX, "3.11", channels)
    assert built.version is not None
    assert built.variant is None


# --------------------------------------------------------------------------------------
# the build init chooses for the host's GPUs

RTX_5090 = Gpu(name="NVIDIA GeForce RTX 5090", compute_capability="12.0")
RTX_3090 = Gpu(name="NVIDIA GeForce RTX 3090", compute_capability="8.6")
GTX_1080 = Gpu(name="NVIDIA GeForce GTX 1080", compute_capability="6.1")


def _gpu_host(driver: str, *gpus: Gpu) -> HostFacts:
    return HostFacts(
        os="linux", machine="x86_64", nvidia_driver=driver, driver_source="nvidia-smi", gpus=gpus
    )


def _recommend(channels: Channels, torch: str, driver: str, *gpus: Gpu) -> str:
    release = channels.release(torch)
    assert release is not None
    return recommend_build(release, channels, _gpu_host(driver, *gpus), LINUX).cuda


def test_newest_build_that_covers_the_gpu(channels: Channels) -> None:
    assert _recommend(channels, "2.8", "570.124.06", RTX_5090) == "12.9"


def test_older_build_when_the_newest_dropped_the_gpu(channels: Channels) -> None:
    assert _recommend(channels, "2.14", "580.65.06", GTX_1080) == "12.6"


def test_every_gpu_must_be_covered(channels: Channels) -> None:
    release = channels.release("2.8")
    assert release is not None
    with pytest.raises(SpecError) as info:
        recommend_build(release, channels, _gpu_host("580.65.06", RTX_5090, GTX_1080), LINUX)
    assert info.value.message.startswith(
        "no torch 2.8 CUDA build that NVIDIA driver 580.65.06 runs has kernels for all of "
        "NVIDIA GeForce RTX 5090 (sm_120), NVIDIA GeForce GTX 1080 (sm_61)"
    )
    assert "--torch 2.7 (its cu128 build" in info.value.hint


def test_no_runnable_build_for_the_gpu_is_refused(channels: Channels) -> None:
    release = channels.release("2.14")
    assert release is not None
    with pytest.raises(SpecError) as info:
        recommend_build(release, channels, _gpu_host("570.124.06", RTX_5090), LINUX)
    assert "NVIDIA GeForce RTX 5090 (sm_120)" in info.value.message


def test_refusal_lists_each_build_with_its_architectures(channels: Channels) -> None:
    release = channels.release("2.14")
    assert release is not None
    with pytest.raises(SpecError) as info:
        recommend_build(release, channels, _gpu_host("570.124.06", RTX_5090), LINUX)
    assert info.value.detail.splitlines() == [
        "cu126: sm_50, sm_60, sm_70, sm_75, sm_80, sm_86, sm_90 (runs on driver 570.124.06)",
        "cu130: sm_75, sm_80, sm_86, sm_90, sm_100, sm_120 +PTX (needs driver >= 580.65.06)",
        "cu132: sm_75, sm_80, sm_86, sm_90, sm_100, sm_120 +PTX (needs driver >= 580.65.06)",
    ]


def test_refusal_names_the_first_release_and_the_ways_out(channels: Channels) -> None:
    release = channels.release("2.14")
    assert release is not None
    with pytest.raises(SpecError) as info:
        recommend_build(release, channels, _gpu_host("570.124.06", RTX_5090), LINUX)
    hint = info.value.hint
    assert hint.startswith("torch 2.7 (cu128) is the first release with kernels for sm_120.")
    assert "upgrade the NVIDIA driver to >= 580.65.06 for torch 2.14's cu130, cu132" in hint
    assert "--torch 2.13 (its cu129 build runs on driver 570.124.06" in hint


def test_older_gpu_choice_is_unchanged(channels: Channels) -> None:
    release = channels.release("2.14")
    assert release is not None
    rec = recommend_build(release, channels, _gpu_host("580.65.06", RTX_3090), LINUX)
    assert rec.cuda == "13.2"
    assert rec.reason.startswith(
        "detected NVIDIA driver 580.65.06 (nvidia-smi); cu132 is the newest torch 2.14 CUDA "
        "build it can run"
    )


def _smi(tmp_path: Path, gpu: str, cc: str, driver: str) -> Path:
    script = tmp_path / "nvidia-smi"
    script.write_text(f'#!/bin/sh\necho "{gpu}, {cc}, {driver}"\n')
    script.chmod(0o755)
    return script


@pytest.mark.parametrize("driver", ["570.124.06", "550.54.14"])
def test_init_on_an_rtx_5090_refuses_a_build_without_its_kernels(
    isolated_env: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, driver: str
) -> None:
    smi = _smi(tmp_path, "NVIDIA GeForce RTX 5090", "12.0", driver)
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(smi))
    result = cli("init", "--torch", "2.14")
    assert_refused(result, SpecError.exit_code)
    assert "RTX 5090 (sm_120)" in result.stderr
    assert "torch 2.7 (cu128)" in result.stderr
    assert not (isolated_env / "torchenv.toml").exists()


def test_init_on_an_rtx_5090_writes_a_build_with_its_kernels(
    isolated_env: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    smi = _smi(tmp_path, "NVIDIA GeForce RTX 5090", "12.0", "570.124.06")
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(smi))
    result = cli("init", "--torch", "2.8")
    assert result.code == 0, result.stderr
    text = (isolated_env / "torchenv.toml").read_text()
    assert tomllib.loads(text)["torch"]["cuda"] == "12.9"
    assert "sm_120" in text


@pytest.mark.parametrize(("driver", "cuda"), [("580.65.06", "13.2"), ("550.54.14", "12.6")])
def test_init_on_an_rtx_3090_is_unchanged(
    isolated_env: Path,
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    driver: str,
    cuda: str,
) -> None:
    smi = _smi(tmp_path, "NVIDIA GeForce RTX 3090", "8.6", driver)
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(smi))
    result = cli("init", "--torch", "2.14")
    assert result.code == 0, result.stderr
    text = (isolated_env / "torchenv.toml").read_text()
    assert tomllib.loads(text)["torch"]["cuda"] == cuda
    assert f"detected NVIDIA driver {driver} (nvidia-smi); cu" in text
