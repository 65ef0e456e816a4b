from __future__ import annotations

from typing import Any

import pytest

from envlock.channels import (
    Channels,
    TorchOrigin,
    VariantKind,
    parse_channels,
    parse_variant,
    select_variant,
)
from envlock.errors import ChannelDataError, SpecError
from envlock.host import HostFacts, recommend_build, variants_for_driver
from envlock.spec import Platform, parse_spec_text
from tests.unit.data import channel_files

PYPI = "https://pypi.org/simple"
PYTORCH = "https://download.pytorch.org/whl"


def _data() -> dict[str, Any]:
    """The unit layer's made-up channel data, without its GPU architecture rows (these tests
    choose builds by driver alone)."""
    return {k: v for k, v in channel_files().items() if k != "gpu-arch.toml"}


@pytest.fixture
def channels() -> Channels:
    return parse_channels(_data())


def _spec(torch: str = "2.6", cuda: str = "12.4", extra: str = "", python: str = "3.11") -> Any:
    return parse_spec_text(
        f'[env]\npython = "{python}"\n{extra}\n[torch]\nversion = "{torch}"\ncuda = "{cuda}"\n'
    )


def _select(channels: Channels, **kwargs: Any) -> Any:
    return select_variant(_spec(**kwargs), channels, pypi_index=PYPI, pytorch_index=PYTORCH)


def test_variant_parsing() -> None:
    assert parse_variant("cu124").version == (12, 4)
    assert parse_variant("cu118").kind is VariantKind.CUDA
    assert parse_variant("rocm6.2.4").version == (6, 2, 4)
    assert parse_variant("xpu").kind is VariantKind.XPU
    with pytest.raises(ChannelDataError):
        parse_variant("cuda12")


def test_pypi_default_variant_comes_from_pypi(channels: Channels) -> None:
    selection = _select(channels, cuda="12.4")
    assert selection.variant.name == "cu124"
    assert selection.platforms[0].origin is TorchOrigin.PYPI
    assert selection.index_url is None


def test_other_cuda_variant_comes_from_the_variant_index(channels: Channels) -> None:
    selection = _select(channels, cuda="12.6")
    assert selection.platforms[0].origin is TorchOrigin.PYTORCH_INDEX
    assert selection.index_url == f"{PYTORCH}/cu126"
    assert "torch" in selection.routed


def test_source_pytorch_index_forces_the_index(channels: Channels) -> None:
    spec = parse_spec_text(
        '[env]\npython = "3.11"\n[torch]\nversion = "2.6"\ncuda = "12.4"\n'
        'source = "pytorch-index"\n'
    )
    selection = select_variant(spec, channels, pypi_index=PYPI, pytorch_index=PYTORCH)
    assert selection.platforms[0].origin is TorchOrigin.PYTORCH_INDEX


def test_major_only_picks_newest_build(channels: Channels) -> None:
    assert _select(channels, cuda="12").variant.name == "cu126"
    assert _select(channels, cuda="11").variant.name == "cu118"


def test_cu123_never_built_lists_alternatives_and_driver_floor(channels: Channels) -> None:
    with pytest.raises(SpecError) as info:
        _select(channels, cuda="12.3")
    error = info.value
    assert "never built torch 2.6 for CUDA 12.3" in error.message
    assert "cu118, cu124, cu126" in error.message
    assert "525.60.13" in error.hint


def test_rocm_prefix_matches_patch_variant(channels: Channels) -> None:
    selection = _select(channels, cuda="rocm6.2")
    assert selection.variant.name == "rocm6.2.4"
    assert "pytorch-triton-rocm" in selection.routed
    assert selection.extra_requirements


def test_macos_always_pypi_cpu(channels: Channels) -> None:
    selection = _select(channels, cuda="12.6", extra='platforms = ["linux-x86_64", "macos-arm64"]')
    origins = {c.platform: (c.origin, c.variant.name) for c in selection.platforms}
    assert origins[Platform.LINUX_X86_64] == (TorchOrigin.PYTORCH_INDEX, "cu126")
    assert origins[Platform.MACOS_ARM64] == (TorchOrigin.PYPI, "cpu")
    assert "macOS" in selection.explanation


def test_unsupported_python(channels: Channels) -> None:
    with pytest.raises(SpecError) as info:
        _select(channels, python="3.8")
    assert "Python 3.8" in info.value.message
    assert "3.9" in info.value.hint


def test_unknown_release_says_how_to_update(channels: Channels) -> None:
    with pytest.raises(ChannelDataError) as info:
        _select(channels, torch="2.16")
    assert "not in envlock's channel data" in info.value.message
    assert "channels/releases.toml" in info.value.hint


def test_range_picks_newest_matching_release(channels: Channels) -> None:
    selection = _select(channels, torch=">=2.5,<2.7")
    assert selection.release.name == "2.6"
    assert str(selection.torch_specifier) == "<2.7,==2.6.*,>=2.5"


def test_unverified_facts_become_warnings(channels: Channels) -> None:
    spec = parse_spec_text(
        '[env]\npython = "3.11"\n[torch]\nversion = "2.15"\ncuda = "13.0"\nvision = true\n'
    )
    selection = select_variant(spec, channels, pypi_index=PYPI, pytorch_index=PYTORCH)
    assert any("torchvision" in w for w in selection.warnings)
    assert any("unverified" in w for w in selection.warnings)


def test_audio_without_published_torchaudio(channels: Channels) -> None:
    spec = parse_spec_text(
        '[env]\npython = "3.11"\n[torch]\nversion = "2.15"\ncuda = "cpu"\naudio = true\n'
    )
    with pytest.raises(SpecError, match="no torchaudio"):
        select_variant(spec, channels, pypi_index=PYPI, pytorch_index=PYTORCH)


def test_source_pypi_refuses_what_pypi_does_not_ship(channels: Channels) -> None:
    spec = parse_spec_text(
        '[env]\npython = "3.11"\n[torch]\nversion = "2.6"\ncuda = "12.6"\nsource = "pypi"\n'
    )
    with pytest.raises(SpecError, match="PyPI ships cu124"):
        select_variant(spec, channels, pypi_index=PYPI, pytorch_index=PYTORCH)


def test_rocm_on_macos_only_is_fine_but_on_windows_refused(channels: Channels) -> None:
    with pytest.raises(SpecError, match="linux-x86_64"):
        _select(channels, cuda="rocm6.2", extra='platforms = ["windows-x86_64"]')


def test_driver_picks_newest_runnable_build(channels: Channels) -> None:
    release = channels.releases[0]
    assert [v.name for v in variants_for_driver(release, channels, "535.104.05")] == [
        "cu118",
        "cu124",
        "cu126",
    ]
    assert [v.name for v in variants_for_driver(release, channels, "470.1")] == ["cu118"]


def test_recommend_without_gpu_uses_pypi_build(channels: Channels) -> None:
    release = channels.releases[0]
    rec = recommend_build(release, channels, HostFacts(), Platform.LINUX_X86_64)
    assert rec.cuda == "12.4"
    assert "no NVIDIA driver" in rec.reason


def test_recommend_with_old_driver_falls_back_to_cpu(channels: Channels) -> None:
    release = channels.releases[0]
    facts = HostFacts(nvidia_driver="390.1", driver_source="nvidia-smi")
    assert recommend_build(release, channels, facts, Platform.LINUX_X86_64).cuda == "cpu"
