"""Channel data (what PyTorch publishes) as typed values. Pure: dicts in, values out.

The data lives in ``channels/*.toml`` (shipped in the wheel as ``envlock/channel_data/``);
``envlock.io.files`` reads it and :func:`parse_channels` turns it into these values.
``envlock.channels`` re-exports every name here next to variant selection, so callers import
from ``envlock.channels``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from envlock.errors import ChannelDataError
from envlock.family import TORCH_TABLE, Family
from envlock.spec import Platform


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
