"""Channel data (what PyTorch publishes) and variant selection. Pure: dicts in, values out.

The data lives in ``channels/*.toml`` (shipped in the wheel); ``envlock.io.files`` reads it and
:func:`parse_channels` turns it into typed values. :func:`select_variant` is a pure function of
(spec, channel data, optional host facts).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from envlock.errors import ChannelDataError, SpecError
from envlock.family import TORCH_TABLE, TORCHAUDIO, TORCHVISION, Family
from envlock.spec import Platform, Spec, TorchSource
from envlock.urls import redact_url


class VariantKind(StrEnum):
    CPU = "cpu"
    CUDA = "cuda"
    ROCM = "rocm"
    XPU = "xpu"


_VARIANT_RE = re.compile(
    r"^(?:(?P<cpu>cpu)|(?P<xpu>xpu)|cu(?P<cu>\d{3,4})|rocm(?P<rocm>\d+(?:\.\d+){1,2}))$"
)


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Variant:
    """A folder of the PyTorch index and the local version label of its wheels: cu124, cpu…"""

    name: str

    @property
    def kind(self) -> VariantKind:
        match = _VARIANT_RE.match(self.name)
        assert match is not None
        if match.group("cpu"):
            return VariantKind.CPU
        if match.group("xpu"):
            return VariantKind.XPU
        if match.group("cu"):
            return VariantKind.CUDA
        return VariantKind.ROCM

    @property
    def version(self) -> tuple[int, ...]:
        """CUDA/ROCm version as a tuple: cu124 -> (12, 4), rocm6.2.4 -> (6, 2, 4); () otherwise."""
        match = _VARIANT_RE.match(self.name)
        assert match is not None
        if match.group("cu"):
            digits = match.group("cu")
            return (int(digits[:-1]), int(digits[-1]))
        if match.group("rocm"):
            return tuple(int(p) for p in match.group("rocm").split("."))
        return ()

    @property
    def version_text(self) -> str:
        return ".".join(str(p) for p in self.version)

    @property
    def describe(self) -> str:
        if self.kind is VariantKind.CUDA:
            return f"CUDA {self.version_text} ({self.name})"
        if self.kind is VariantKind.ROCM:
            return f"ROCm {self.version_text} ({self.name})"
        if self.kind is VariantKind.XPU:
            return "Intel XPU (xpu)"
        return "CPU only (cpu)"


def parse_variant(name: str) -> Variant:
    if not _VARIANT_RE.match(name):
        raise ChannelDataError(
            f"channel data names an unknown variant {name!r}",
            hint="Variants are cpu, xpu, cuXYZ or rocmX.Y[.Z]; fix channels/releases.toml.",
        )
    return Variant(name=name)


def variant_named(name: str) -> Variant | None:
    """The variant a local version label or index folder names ("cu126"), or None."""
    return Variant(name=name) if _VARIANT_RE.match(name) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    series: Version  # 2.6
    released: date | None
    python: tuple[str, ...]
    variants: tuple[Variant, ...]
    pypi: Mapping[Platform, Variant]
    torchvision: str
    torchaudio: str
    triton: str
    source: str
    unverified: frozenset[str] = frozenset()
    notes: str = ""

    @property
    def name(self) -> str:
        return str(self.series)

    def is_unverified(self, key: str) -> bool:
        return key in self.unverified

    def covers(self, specifier: SpecifierSet) -> bool:
        """Whether some X.Y.p of this series satisfies the specifier (local labels allowed)."""
        return any(
            specifier.contains(f"{self.series}.{patch}", prereleases=False) for patch in range(30)
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DriverFloor:
    cuda_major: int
    linux: str
    windows: str
    source: str
    unverified: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchRow:
    torch: SpecifierSet
    variant: Variant
    sm: tuple[str, ...]
    ptx: bool
    source: str
    unverified: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class DockerImage:
    torch: Version
    cuda: str
    cudnn: str
    python: str
    flavors: tuple[str, ...]
    source: str
    unverified: frozenset[str] = frozenset()

    def tag(self, flavor: str) -> str:
        return f"pytorch/pytorch:{self.torch}-cuda{self.cuda}-cudnn{self.cudnn}-{flavor}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Channels:
    releases: tuple[Release, ...]  # oldest first
    drivers: tuple[DriverFloor, ...] = ()
    arches: tuple[ArchRow, ...] = ()
    images: tuple[DockerImage, ...] = ()
    min_cuda: Mapping[str, str] = field(default_factory=dict)  # sm "12.0" -> first CUDA "12.8"
    family: Family = field(default_factory=Family)  # family.toml

    def release(self, series: str) -> Release | None:
        for release in self.releases:
            if release.name == series:
                return release
        return None

    def driver_floor(self, cuda_major: int) -> DriverFloor | None:
        for floor in self.drivers:
            if floor.cuda_major == cuda_major:
                return floor
        return None


# --------------------------------------------------------------------------------------
# parsing the TOML data


def _fail(file: str, where: str, message: str) -> ChannelDataError:
    return ChannelDataError(
        f"channel data {file} {where}: {message}",
        hint="The channel data shipped with envlock is broken; reinstall envlock or fix "
        f"channels/{file}.",
    )


def _req(d: Mapping[str, Any], key: str, typ: type, file: str, where: str) -> Any:
    value = d.get(key)
    if not isinstance(value, typ):
        raise _fail(file, where, f"key {key!r} must be a {typ.__name__}, got {value!r}")
    return value


def _strs(d: Mapping[str, Any], key: str, file: str, where: str) -> tuple[str, ...]:
    value = d.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(file, where, f"key {key!r} must be an array of strings")
    return tuple(value)


def _parse_release(d: Mapping[str, Any], index: int) -> Release:
    file, where = "releases.toml", f"release[{index}]"
    series = _req(d, "torch", str, file, where)
    where = f"release {series}"
    try:
        version = Version(series)
    except InvalidVersion:
        raise _fail(file, where, f"torch {series!r} is not a version") from None
    released = d.get("released")
    pypi_table = d.get("pypi", {})
    if not isinstance(pypi_table, Mapping):
        raise _fail(file, where, "[release.pypi] must be a table")
    pypi: dict[Platform, Variant] = {}
    for key, value in pypi_table.items():
        try:
            platform = Platform(key)
        except ValueError:
            raise _fail(file, where, f"unknown platform {key!r} in [release.pypi]") from None
        if not isinstance(value, str):
            raise _fail(file, where, f"pypi.{key} must be a string")
        pypi[platform] = parse_variant(value)
    return Release(
        series=version,
        released=released if isinstance(released, date) else None,
        python=_strs(d, "python", file, where),
        variants=tuple(parse_variant(v) for v in _strs(d, "variants", file, where)),
        pypi=pypi,
        torchvision=str(d.get("torchvision", "")),
        torchaudio=str(d.get("torchaudio", "")),
        triton=str(d.get("triton", "")),
        source=str(d.get("source", "")),
        unverified=frozenset(_strs(d, "unverified", file, where)),
        notes=str(d.get("notes", "")),
    )


def _specifier(text: str, file: str, where: str) -> SpecifierSet:
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        raise _fail(file, where, f"{text!r} is not a PEP 440 specifier") from None


def parse_channels(files: Mapping[str, Mapping[str, Any]]) -> Channels:
    """Build Channels from the loaded TOML files, keyed by file name ('releases.toml', …)."""
    releases_doc = files.get("releases.toml")
    if releases_doc is None:
        raise _fail("releases.toml", "", "file is missing")
    raw_releases = releases_doc.get("release", [])
    if not isinstance(raw_releases, list) or not raw_releases:
        raise _fail("releases.toml", "", "no [[release]] tables")
    releases = tuple(
        sorted(
            (_parse_release(r, i) for i, r in enumerate(raw_releases)),
            key=lambda r: r.series,
        )
    )
    drivers = tuple(
        DriverFloor(
            cuda_major=int(_req(row, "major", int, "drivers.toml", f"cuda[{i}]")),
            linux=str(row.get("min-driver-linux", "")),
            windows=str(row.get("min-driver-windows", "")),
            source=str(row.get("source", "")),
            unverified=frozenset(_strs(row, "unverified", "drivers.toml", f"cuda[{i}]")),
        )
        for i, row in enumerate(files.get("drivers.toml", {}).get("cuda", []))
    )
    arches = tuple(
        ArchRow(
            torch=_specifier(
                _req(row, "torch", str, "gpu-arch.toml", f"arch[{i}]"),
                "gpu-arch.toml",
                f"arch[{i}]",
            ),
            variant=parse_variant(_req(row, "variant", str, "gpu-arch.toml", f"arch[{i}]")),
            sm=_strs(row, "sm", "gpu-arch.toml", f"arch[{i}]"),
            ptx=bool(row.get("ptx", False)),
            source=str(row.get("source", "")),
            unverified=frozenset(_strs(row, "unverified", "gpu-arch.toml", f"arch[{i}]")),
        )
        for i, row in enumerate(files.get("gpu-arch.toml", {}).get("arch", []))
    )
    images = tuple(
        DockerImage(
            torch=Version(_req(row, "torch", str, "docker.toml", f"image[{i}]")),
            cuda=str(_req(row, "cuda", str, "docker.toml", f"image[{i}]")),
            cudnn=str(row.get("cudnn", "")),
            python=str(row.get("python", "")),
            flavors=_strs(row, "flavors", "docker.toml", f"image[{i}]") or ("runtime", "devel"),
            source=str(row.get("source", "")),
            unverified=frozenset(_strs(row, "unverified", "docker.toml", f"image[{i}]")),
        )
        for i, row in enumerate(files.get("docker.toml", {}).get("image", []))
    )
    min_cuda = {
        str(row.get("sm", "")): str(row.get("cuda", ""))
        for row in files.get("gpu-arch.toml", {}).get("min-cuda", [])
    }
    return Channels(
        releases=releases,
        drivers=drivers,
        arches=arches,
        images=images,
        min_cuda=min_cuda,
        family=_parse_family(files.get("family.toml", {})),
    )


def _parse_family(doc: Mapping[str, Any]) -> Family:
    """family.toml's [routing]; ``always`` defaults to the [torch] table's packages."""
    routing = doc.get("routing", {})
    if not isinstance(routing, Mapping):
        raise _fail("family.toml", "", "[routing] must be a table")
    by_kind = routing.get("by-kind", {})
    if not isinstance(by_kind, Mapping):
        raise _fail("family.toml", "routing", "[routing.by-kind] must be a table")
    always = tuple(canonicalize_name(n) for n in _strs(routing, "always", "family.toml", "routing"))
    if missing := [n for n in TORCH_TABLE if always and n not in always]:
        # The [torch] table pins these to the variant index: data that does not is broken.
        raise _fail("family.toml", "routing", f"always lacks {', '.join(missing)}")
    return Family(
        always=always or TORCH_TABLE,
        if_requested=tuple(
            canonicalize_name(n) for n in _strs(routing, "if-requested", "family.toml", "routing")
        ),
        by_kind={
            str(kind): tuple(
                canonicalize_name(n) for n in _strs(by_kind, kind, "family.toml", "by-kind")
            )
            for kind in by_kind
            if kind in VariantKind.__members__.values()
        },
        source=str(routing.get("source", "")),
    )


# --------------------------------------------------------------------------------------
# selection


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
