"""Variant selection: spec + channel data -> which torch, which build, from which index. Pure.

:func:`select_variant` is a pure function of (spec, channel data); its :class:`Selection`
carries a one-paragraph explanation. The channel data's values (``envlock.channel_model``) are
re-exported here, so callers import both from ``envlock.channels``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName

from envlock.channel_model import (
    ArchRow,
    Channels,
    DockerImage,
    DriverFloor,
    Release,
    Variant,
    VariantKind,
    parse_channels,
    parse_variant,
    variant_named,
)
from envlock.errors import ChannelDataError, SpecError
from envlock.family import TORCHAUDIO, TORCHVISION
from envlock.spec import Platform, Spec, TorchSource
from envlock.urls import redact_url

__all__ = [
    "ArchRow",
    "Channels",
    "DockerImage",
    "DriverFloor",
    "PlatformChoice",
    "Release",
    "Selection",
    "TorchOrigin",
    "Variant",
    "VariantKind",
    "explain",
    "parse_channels",
    "parse_variant",
    "select_variant",
    "variant_index_url",
    "variant_named",
]


class TorchOrigin(StrEnum):
    PYPI = "pypi"
    PYTORCH_INDEX = "pytorch-index"


@dataclass(frozen=True, slots=True, kw_only=True)
class PlatformChoice:
    platform: Platform
    origin: TorchOrigin
    variant: Variant  # what this platform actually gets (macOS: cpu)
    index_url: str  # where torch-family wheels come from for this platform (redacted)


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """The answer of select_variant: what to lock, from where, and why."""

    release: Release
    variant: Variant
    torch_specifier: SpecifierSet
    companions: Mapping[NormalizedName, SpecifierSet]  # torchvision/torchaudio pairings
    platforms: tuple[PlatformChoice, ...]
    routed: tuple[NormalizedName, ...]  # names pinned to the variant index
    family: tuple[NormalizedName, ...] = ()  # every torch-family name (routed or not)
    extra_requirements: tuple[str, ...]  # direct deps added for the variant (e.g. rocm triton)
    index_url: str | None  # the variant index, when any platform uses it (with credentials)
    explanation: str
    warnings: tuple[str, ...] = ()


def variant_index_url(pytorch_base: str, variant: Variant) -> str:
    return f"{pytorch_base.rstrip('/')}/{variant.name}"


def _versions_text(items: Sequence[str]) -> str:
    return ", ".join(items) if items else "none"


def _pick_release(spec: Spec, channels: Channels) -> Release:
    matching = [r for r in channels.releases if r.covers(spec.torch.specifier)]
    known = f"{channels.releases[0].name}-{channels.releases[-1].name}"
    if not matching:
        raise ChannelDataError(
            f"torch {spec.torch.version!r} is not in envlock's channel data (it knows torch "
            f"{known})",
            hint="If this release is new, upgrade envlock (`pip install -U envlock`), or add a "
            "[[release]] table to channels/releases.toml (see channels/README.md) and "
            "reinstall.",
        )
    with_python = [r for r in matching if spec.python in r.python]
    if not with_python:
        newest = matching[-1]
        supported_by = [r.name for r in channels.releases if spec.python in r.python]
        raise SpecError(
            f"torch {newest.name} has no wheels for Python {spec.python} "
            f"(it supports Python {_versions_text(newest.python)})",
            hint=(
                f"Set [env] python to one of {', '.join(newest.python)}"
                + (
                    f", or pick a torch release that supports {spec.python}: "
                    f"{_versions_text(supported_by)}."
                    if supported_by
                    else "."
                )
            ),
        )
    return with_python[-1]


def _driver_note(channels: Channels, major: int) -> str:
    floor = channels.driver_floor(major)
    if floor is None:
        return ""
    return f" A cu{major}x build runs on any NVIDIA driver >= {floor.linux} (Linux)."


def _match_variant(request: str, release: Release, channels: Channels) -> Variant:
    """Turn a normalised cuda request into one of the release's variants, or explain why not."""
    available = [v.name for v in release.variants]
    if request in ("cpu", "xpu"):
        found = [v for v in release.variants if v.name == request]
        if found:
            return found[0]
        raise SpecError(
            f"torch {release.name} has no {request} build on the PyTorch index "
            f"(it has {_versions_text(available)})",
            hint=f"Pick one of: {', '.join(available)}.",
        )
    if request.startswith("rocm"):
        wanted = request.removeprefix("rocm")
        candidates = [
            v
            for v in release.variants
            if v.kind is VariantKind.ROCM
            and (v.version_text == wanted or v.version_text.startswith(wanted + ".") or not wanted)
        ]
        if candidates:
            return max(candidates, key=lambda v: v.version)
        rocm = [v.name for v in release.variants if v.kind is VariantKind.ROCM]
        raise SpecError(
            f"torch {release.name} has no ROCm {wanted} build (its ROCm builds: "
            f"{_versions_text(rocm)})",
            hint=f"Set cuda to one of: {', '.join(rocm) or 'cpu'}.",
        )
    parts = tuple(int(p) for p in request.split("."))
    cuda = [v for v in release.variants if v.kind is VariantKind.CUDA]
    candidates = [v for v in cuda if v.version[: len(parts)] == parts]
    if candidates:
        return max(candidates, key=lambda v: v.version)
    cuda_names = [v.name for v in cuda]
    major = parts[0]
    same_major = [v.name for v in cuda if v.version[0] == major]
    label = "cu" + "".join(str(p) for p in parts) if len(parts) == 2 else f"CUDA {major}.x"
    hint = f"torch {release.name} CUDA builds: {_versions_text(cuda_names)}."
    if same_major:
        hint = (
            f'Use cuda = "{Variant(name=same_major[-1]).version_text}" (or "{major}" for the '
            f"newest {major}.x build).{_driver_note(channels, major)}"
        )
    raise SpecError(
        f"PyTorch never built torch {release.name} for CUDA {request} ({label}); torch "
        f"{release.name} has {_versions_text(available)}",
        hint=hint,
    )


def _companion_specifiers(
    spec: Spec, release: Release
) -> tuple[dict[NormalizedName, SpecifierSet], list[str]]:
    companions: dict[NormalizedName, SpecifierSet] = {}
    warnings: list[str] = []
    pairs = (
        (TORCHVISION, spec.torch.vision, release.torchvision),
        (TORCHAUDIO, spec.torch.audio, release.torchaudio),
    )
    for name, wanted, series in pairs:
        if not wanted:
            continue
        if not series:
            raise SpecError(
                f"no {name} is published for torch {release.name}",
                hint=f"Set [torch] {name.removeprefix('torch')} = false.",
            )
        companions[name] = SpecifierSet(f"=={series}.*")
        if release.is_unverified(name):
            warnings.append(
                f"the {name} {series} pairing for torch {release.name} is unverified in "
                "envlock's channel data"
            )
    return companions, warnings


def _choose_origin(
    spec: Spec, release: Release, variant: Variant, platform: Platform
) -> tuple[TorchOrigin, Variant]:
    if platform is Platform.MACOS_ARM64:
        return TorchOrigin.PYPI, Variant(name="cpu")
    pypi_variant = release.pypi.get(platform)
    if variant.kind is VariantKind.ROCM and platform is not Platform.LINUX_X86_64:
        raise SpecError(
            f"ROCm builds of torch exist only for linux-x86_64, not {platform.value}",
            hint="Remove that platform from [env] platforms, or lock it separately.",
        )
    if spec.torch.source is TorchSource.PYPI:
        if pypi_variant != variant:
            shipped = pypi_variant.name if pypi_variant else "nothing"
            raise SpecError(
                f"PyPI ships {shipped} for torch {release.name} on {platform.value}, not "
                f"{variant.name}",
                hint='Set [torch] source = "auto" to take this build from the PyTorch index.',
            )
        return TorchOrigin.PYPI, variant
    if spec.torch.source is TorchSource.AUTO and pypi_variant == variant:
        return TorchOrigin.PYPI, variant
    return TorchOrigin.PYTORCH_INDEX, variant


def select_variant(
    spec: Spec, channels: Channels, *, pypi_index: str, pytorch_index: str
) -> Selection:
    """Pick the torch release, variant, companions and index per platform for a spec."""
    release = _pick_release(spec, channels)
    variant = _match_variant(spec.torch.cuda, release, channels)
    companions, warnings = _companion_specifiers(spec, release)
    index_url = variant_index_url(pytorch_index, variant)
    choices: list[PlatformChoice] = []
    for platform in spec.platforms:
        origin, got = _choose_origin(spec, release, variant, platform)
        url = index_url if origin is TorchOrigin.PYTORCH_INDEX else pypi_index
        choices.append(
            PlatformChoice(platform=platform, origin=origin, variant=got, index_url=redact_url(url))
        )
    uses_index = any(c.origin is TorchOrigin.PYTORCH_INDEX for c in choices)
    if uses_index and (
        release.is_unverified(f"variants:{variant.name}") or release.is_unverified("variants")
    ):
        warnings.append(
            f"that torch {release.name} has a {variant.name} build is unverified in envlock's "
            "channel data; the lock proves it only if the index serves it"
        )
    routed = channels.family.routed(variant.kind, spec.package_names)
    extra = (
        tuple(
            f"{name}; {Platform.LINUX_X86_64.marker}"
            for name in channels.family.by_kind.get(variant.kind, ())
        )
        if uses_index
        else ()
    )
    selection_specifier = spec.torch.specifier & SpecifierSet(f"=={release.series}.*")
    return Selection(
        release=release,
        variant=variant,
        torch_specifier=selection_specifier,
        companions=companions,
        platforms=tuple(choices),
        routed=routed,
        family=channels.family.names,
        extra_requirements=extra,
        index_url=index_url if uses_index else None,
        explanation=explain(spec, release, variant, choices),
        warnings=tuple(warnings),
    )


def explain(
    spec: Spec, release: Release, variant: Variant, choices: Sequence[PlatformChoice]
) -> str:
    """One paragraph: which torch, which build, from where, and why."""
    parts = [
        f"torch {spec.torch.version!r} -> the {release.name} series "
        f"(newest release in envlock's channel data matching it for Python {spec.python}).",
        f"Build: {variant.describe}.",
    ]
    for choice in choices:
        if choice.origin is TorchOrigin.PYPI:
            if choice.platform is Platform.MACOS_ARM64:
                why = "macOS wheels exist only on PyPI (CPU/MPS)"
            elif spec.torch.source is TorchSource.PYPI:
                why = '[torch] source = "pypi"'
            else:
                why = (
                    f"PyPI's own {choice.platform.value} wheel for {release.name} is {variant.name}"
                )
            parts.append(f"{choice.platform.value}: from PyPI ({why}).")
        else:
            parts.append(
                f"{choice.platform.value}: from the PyTorch index {choice.index_url} "
                "(torch-family packages only; everything else from PyPI)."
            )
    if variant.kind is VariantKind.CUDA:
        parts.append(
            f"Needs an NVIDIA driver for CUDA {variant.version_text} (see `envlock channels`)."
        )
    return " ".join(parts)
