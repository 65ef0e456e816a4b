"""envlock.channels: variant names, channel data parsing, and variant selection."""

from __future__ import annotations

from typing import Any

import pytest
from packaging.specifiers import SpecifierSet

from envlock.channels import (
    TorchOrigin,
    Variant,
    VariantKind,
    parse_channels,
    parse_variant,
    select_variant,
    variant_index_url,
    variant_named,
)
from envlock.errors import ChannelDataError, SpecError
from envlock.spec import Platform, parse_spec_text
from tests.unit.data import channel_files, channels

PYPI = "https://pypi.org/simple"
PYTORCH = "https://download.pytorch.org/whl"


@pytest.mark.parametrize(
    ("name", "kind", "version", "describe"),
    [
        ("cu118", VariantKind.CUDA, (11, 8), "CUDA 11.8 (cu118)"),
        ("cu124", VariantKind.CUDA, (12, 4), "CUDA 12.4 (cu124)"),
        ("cu130", VariantKind.CUDA, (13, 0), "CUDA 13.0 (cu130)"),
        ("rocm6.2", VariantKind.ROCM, (6, 2), "ROCm 6.2 (rocm6.2)"),
        ("rocm6.2.4", VariantKind.ROCM, (6, 2, 4), "ROCm 6.2.4 (rocm6.2.4)"),
        ("cpu", VariantKind.CPU, (), "CPU only (cpu)"),
        ("xpu", VariantKind.XPU, (), "Intel XPU (xpu)"),
    ],
)
def test_variant_names(
    name: str, kind: VariantKind, version: tuple[int, ...], describe: str
) -> None:
    variant = parse_variant(name)
    assert (variant.kind, variant.version, variant.describe) == (kind, version, describe)
    assert variant_named(name) == variant


@pytest.mark.parametrize("name", ["cuda12", "cu12", "rocm6", "CPU", "cu124 ", "", "2.6.0"])
def test_not_a_variant(name: str) -> None:
    assert variant_named(name) is None
    with pytest.raises(ChannelDataError, match="unknown variant"):
        parse_variant(name)


def test_variants_order_by_name_and_join_the_index() -> None:
    assert sorted([Variant(name="cu126"), Variant(name="cu118")])[0].name == "cu118"
    assert variant_index_url(f"{PYTORCH}/", Variant(name="cu126")) == f"{PYTORCH}/cu126"


@pytest.mark.parametrize(
    ("specifier", "covered"),
    [
        ("==2.6.*", True),
        (">=2.5,<2.7", True),
        ("==2.6.3", True),
        ("==2.7.*", False),
        ("<2.6", False),
    ],
)
def test_a_release_covers_a_specifier(specifier: str, covered: bool) -> None:
    release = channels().release("2.6")
    assert release is not None
    assert release.covers(SpecifierSet(specifier)) is covered


def test_parsed_channel_data() -> None:
    data = channels()
    assert [r.name for r in data.releases] == ["2.6", "2.15"]  # sorted by version, not text
    assert data.release("2.6") is not None and data.release("2.7") is None
    floor = data.driver_floor(12)
    assert floor is not None and floor.linux == "525.60.13"
    assert data.driver_floor(10) is None
    assert data.min_cuda == {"12.0": "12.8", "8.9": "11.8"}
    assert data.family.by_kind == {"rocm": ("pytorch-triton-rocm",)}


def _broken(path: list[Any], value: object) -> dict[str, Any]:
    files = channel_files()
    target: Any = files
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return files


BROKEN = {
    "no-releases-file": (["releases.toml"], KeyError, "releases.toml : file is missing"),
    "no-releases": (["releases.toml", "release"], [], "no [[release]] tables"),
    "torch-not-a-string": (["releases.toml", "release", 0, "torch"], 2.6, "release[0]"),
    "torch-not-a-version": (["releases.toml", "release", 0, "torch"], "two", "'two' is not a"),
    "unknown-variant": (["releases.toml", "release", 0, "variants"], ["cuda12"], "'cuda12'"),
    "pypi-unknown-platform": (
        ["releases.toml", "release", 0, "pypi"],
        {"linux-riscv": "cpu"},
        "unknown platform 'linux-riscv'",
    ),
    "python-not-strings": (["releases.toml", "release", 0, "python"], [3.11], "'python'"),
    "driver-major-missing": (["drivers.toml", "cuda", 0, "major"], KeyError, "cuda[0]"),
    "arch-bad-specifier": (["gpu-arch.toml", "arch", 0, "torch"], "2.6", "not a PEP 440"),
    "family-always-lacks-torch": (
        ["family.toml", "routing", "always"],
        ["torchvision"],
        "always lacks torch",
    ),
}


@pytest.mark.parametrize(("path", "value", "named"), BROKEN.values(), ids=BROKEN.keys())
def test_broken_channel_data_names_the_file_and_entry(
    path: list[Any], value: object, named: str
) -> None:
    with pytest.raises(ChannelDataError) as raised:
        parse_channels(_broken(path, value))
    assert named in raised.value.message
    assert str(path[0]) in f"{raised.value.message} {raised.value.hint}"  # the file to fix


def _select(
    cuda: str, *, torch: str = "2.6", extra: str = "", env: str = "", python: str = "3.11"
) -> Any:
    spec = parse_spec_text(
        f'[env]\npython = "{python}"\n{env}\n[torch]\nversion = "{torch}"\ncuda = "{cuda}"\n'
        f"{extra}\n"
    )
    return select_variant(spec, channels(), pypi_index=PYPI, pytorch_index=PYTORCH)


SELECTIONS = {
    # request -> (variant, origin on linux-x86_64, variant index or None)
    "pypi-own-build": ("12.4", "", ("cu124", TorchOrigin.PYPI, None)),
    "other-cuda": ("12.6", "", ("cu126", TorchOrigin.PYTORCH_INDEX, f"{PYTORCH}/cu126")),
    "cu-spelling": ("cu118", "", ("cu118", TorchOrigin.PYTORCH_INDEX, f"{PYTORCH}/cu118")),
    "major-only-newest": ("12", "", ("cu126", TorchOrigin.PYTORCH_INDEX, f"{PYTORCH}/cu126")),
    "forced-index": (
        "12.4",
        'source = "pytorch-index"',
        ("cu124", TorchOrigin.PYTORCH_INDEX, f"{PYTORCH}/cu124"),
    ),
    "pypi-allowed": ("12.4", 'source = "pypi"', ("cu124", TorchOrigin.PYPI, None)),
    "cpu": ("cpu", "", ("cpu", TorchOrigin.PYTORCH_INDEX, f"{PYTORCH}/cpu")),
    "xpu": ("xpu", "", ("xpu", TorchOrigin.PYTORCH_INDEX, f"{PYTORCH}/xpu")),
    "rocm-prefix-newest-patch": (
        "rocm6.2",
        "",
        ("rocm6.2.4", TorchOrigin.PYTORCH_INDEX, f"{PYTORCH}/rocm6.2.4"),
    ),
}


@pytest.mark.parametrize(("cuda", "extra", "expected"), SELECTIONS.values(), ids=SELECTIONS.keys())
def test_select_variant(
    cuda: str, extra: str, expected: tuple[str, TorchOrigin, str | None]
) -> None:
    selection = _select(cuda, extra=extra)
    choice = selection.platforms[0]
    assert (selection.variant.name, choice.origin, selection.index_url) == expected
    assert selection.torch_specifier == SpecifierSet("==2.6.*")


def test_macos_always_gets_pypis_cpu_build() -> None:
    selection = _select("12.6", env='platforms = ["linux-x86_64", "macos-arm64"]')
    linux, mac = selection.platforms
    assert (linux.platform, linux.origin, linux.variant.name) == (
        Platform.LINUX_X86_64,
        TorchOrigin.PYTORCH_INDEX,
        "cu126",
    )
    assert (mac.platform, mac.origin, mac.variant.name, mac.index_url) == (
        Platform.MACOS_ARM64,
        TorchOrigin.PYPI,
        "cpu",
        PYPI,
    )


@pytest.mark.parametrize(
    ("extra", "companions"),
    [
        ("", {}),
        ("vision = true", {"torchvision": SpecifierSet("==0.21.*")}),
        (
            "vision = true\naudio = true",
            {"torchvision": SpecifierSet("==0.21.*"), "torchaudio": SpecifierSet("==2.6.*")},
        ),
    ],
)
def test_companions_pair_with_the_release(extra: str, companions: dict[str, SpecifierSet]) -> None:
    assert dict(_select("12.4", extra=extra).companions) == companions


def test_rocm_adds_its_triton_and_routes_it() -> None:
    selection = _select("rocm6.2")
    assert selection.extra_requirements == (
        "pytorch-triton-rocm; sys_platform == 'linux' and platform_machine == 'x86_64'",
    )
    assert {"torch", "pytorch-triton-rocm"} <= set(selection.routed)


def test_unverified_channel_facts_become_warnings() -> None:
    selection = _select("13.0", torch="2.15", extra="vision = true")
    assert selection.variant.name == "cu130"
    assert len(selection.warnings) == 2
    assert any("torchvision 0.30 pairing" in w for w in selection.warnings)
    assert any("cu130 build is unverified" in w for w in selection.warnings)


REFUSALS = {
    "never-built": (
        {"cuda": "12.3"},
        SpecError,
        ["never built torch 2.6 for CUDA 12.3", "cu118, cu124, cu126"],
        'Use cuda = "12.6"',
    ),
    "major-never-built": ({"cuda": "10"}, SpecError, ["CUDA 10.x"], "CUDA builds: cu118"),
    "no-rocm": ({"cuda": "rocm5.7"}, SpecError, ["no ROCm 5.7 build"], "rocm6.1, rocm6.2.4"),
    "no-xpu-build": ({"cuda": "xpu", "torch": "2.15"}, SpecError, ["no xpu build"], "cu130"),
    "unknown-release": (
        {"cuda": "12.4", "torch": "2.9"},
        ChannelDataError,
        ["2.6-2.15"],
        "upgrade",
    ),
    "python-not-supported": (
        {"cuda": "13.0", "torch": "2.15", "python": "3.9"},
        SpecError,
        ["torch 2.15 has no wheels for Python 3.9 (it supports Python 3.10, 3.11"],
        "pick a torch release that supports 3.9: 2.6",
    ),
    "audio-unpublished": (
        {"cuda": "13.0", "torch": "2.15", "extra": "audio = true"},
        SpecError,
        ["no torchaudio is published for torch 2.15"],
        "audio = false",
    ),
    "pypi-only-but-pypi-lacks-it": (
        {"cuda": "12.6", "extra": 'source = "pypi"'},
        SpecError,
        ["PyPI ships cu124 for torch 2.6 on linux-x86_64, not cu126"],
        'source = "auto"',
    ),
    "rocm-on-windows": (
        {"cuda": "rocm6.2", "env": 'platforms = ["windows-x86_64"]'},
        SpecError,
        ["only for linux-x86_64, not windows-x86_64"],
        "Remove that platform",
    ),
}


@pytest.mark.parametrize(
    ("request_", "error", "fragments", "hint"), REFUSALS.values(), ids=REFUSALS.keys()
)
def test_select_variant_refuses_with_the_way_out(
    request_: dict[str, str], error: type[SpecError], fragments: list[str], hint: str
) -> None:
    with pytest.raises(error) as raised:
        _select(**request_)
    for fragment in fragments:
        assert fragment in raised.value.message
    assert hint in raised.value.hint
