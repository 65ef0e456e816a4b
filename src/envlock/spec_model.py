"""torchenv.toml's values: Spec, its [torch] and [variants] tables, platforms, and its digest.

Pure values (frozen dataclasses, StrEnums); ``envlock.spec`` parses text into them and
re-exports every name here, so callers import from ``envlock.spec``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

from envlock.errors import SpecError

SPEC_FILENAME = "torchenv.toml"
DEFAULT_PYPI_INDEX = "https://pypi.org/simple"
DEFAULT_PYTORCH_INDEX = "https://download.pytorch.org/whl"


class Platform(StrEnum):
    LINUX_X86_64 = "linux-x86_64"
    LINUX_AARCH64 = "linux-aarch64"
    MACOS_ARM64 = "macos-arm64"
    WINDOWS_X86_64 = "windows-x86_64"

    @property
    def marker(self) -> str:
        """The PEP 508 marker that selects this platform (as uv and PEP 751 use it)."""
        return _PLATFORM_MARKERS[self]

    @property
    def environment(self) -> dict[str, str]:
        """Marker variables for this platform (Python ones are added by the caller)."""
        return dict(_PLATFORM_ENVIRONMENTS[self])


_PLATFORM_MARKERS = {
    Platform.LINUX_X86_64: "sys_platform == 'linux' and platform_machine == 'x86_64'",
    Platform.LINUX_AARCH64: "sys_platform == 'linux' and platform_machine == 'aarch64'",
    Platform.MACOS_ARM64: "sys_platform == 'darwin' and platform_machine == 'arm64'",
    Platform.WINDOWS_X86_64: "sys_platform == 'win32' and platform_machine == 'AMD64'",
}

_PLATFORM_ENVIRONMENTS: dict[Platform, dict[str, str]] = {
    Platform.LINUX_X86_64: {
        "sys_platform": "linux",
        "platform_machine": "x86_64",
        "platform_system": "Linux",
        "os_name": "posix",
    },
    Platform.LINUX_AARCH64: {
        "sys_platform": "linux",
        "platform_machine": "aarch64",
        "platform_system": "Linux",
        "os_name": "posix",
    },
    Platform.MACOS_ARM64: {
        "sys_platform": "darwin",
        "platform_machine": "arm64",
        "platform_system": "Darwin",
        "os_name": "posix",
    },
    Platform.WINDOWS_X86_64: {
        "sys_platform": "win32",
        "platform_machine": "AMD64",
        "platform_system": "Windows",
        "os_name": "nt",
    },
}


class TorchSource(StrEnum):
    """Where torch-family wheels come from when PyPI ships the requested build itself."""

    AUTO = "auto"  # PyPI when PyPI's own wheel is the requested variant, else the PyTorch index
    PYTORCH_INDEX = "pytorch-index"  # always the variant index (macOS still uses PyPI)
    PYPI = "pypi"  # PyPI only; an error if PyPI does not ship the requested variant


@dataclass(frozen=True, slots=True, kw_only=True)
class Indexes:
    pypi: str = DEFAULT_PYPI_INDEX
    pytorch: str = DEFAULT_PYTORCH_INDEX


@dataclass(frozen=True, slots=True, kw_only=True)
class TorchSpec:
    version: str  # as written ("2.6", ">=2.5,<2.7")
    specifier: SpecifierSet  # "2.6" becomes "==2.6.*"
    cuda: str  # normalised request: "12.4", "12", "cpu", "rocm6.2", "xpu"
    vision: bool = False
    audio: bool = False
    source: TorchSource = TorchSource.AUTO


@dataclass(frozen=True, slots=True, kw_only=True)
class VariantSpec:
    """[variants.<name>]: a [torch] override (and optionally fewer platforms)."""

    name: str
    torch: TorchSpec
    platforms: tuple[Platform, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Accept:
    """[review.accept] NAME: a reviewer accepted these findings (envlock.gate kinds, or
    vulnerable:ID) for exactly these artifact digests, and said why."""

    sha256: frozenset[str]
    findings: frozenset[str]
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Spec:
    python: str  # "3.11"
    platforms: tuple[Platform, ...]
    torch: TorchSpec
    packages: tuple[Requirement, ...] = ()
    exclude_newer: datetime | None = None
    indexes: Indexes = field(default_factory=Indexes)
    variants: tuple[VariantSpec, ...] = ()
    # [docker] digests: base image name:tag -> sha256:… the user pins (recorded in the lock)
    image_digests: Mapping[str, str] = field(default_factory=dict)
    # [resolution] cooldown: lock as of now minus this (None: no cooldown)
    cooldown: timedelta | None = None
    # [review] accept: normalised package name -> what a reviewer accepted (not in the digest:
    # accepting a finding changes no resolution, so it never makes a lock stale)
    accepts: Mapping[str, Accept] = field(default_factory=dict)

    def variant(self, name: str) -> Spec:
        """The spec one variant locks: its [torch] and platforms, everything else shared."""
        for item in self.variants:
            if item.name == name:
                return replace(self, torch=item.torch, platforms=item.platforms, variants=())
        known = ", ".join(v.name for v in self.variants) or "none"
        raise SpecError(
            f"torchenv.toml has no variant {name!r} (it has: {known})",
            hint="Variants are the [variants.<name>] tables of torchenv.toml.",
        )

    @property
    def requires_python(self) -> SpecifierSet:
        return SpecifierSet(f"=={self.python}.*")

    @property
    def package_names(self) -> frozenset[NormalizedName]:
        return frozenset(canonicalize_name(r.name) for r in self.packages)


# --------------------------------------------------------------------------------------
# digest


def effective_indexes(spec_indexes: Indexes, environ: Mapping[str, str]) -> Indexes:
    """Apply ENVLOCK_PYPI_INDEX_URL / ENVLOCK_PYTORCH_INDEX_URL over the spec's [indexes]."""
    pypi = environ.get("ENVLOCK_PYPI_INDEX_URL") or spec_indexes.pypi
    pytorch = environ.get("ENVLOCK_PYTORCH_INDEX_URL") or spec_indexes.pytorch
    return Indexes(pypi=pypi.rstrip("/"), pytorch=pytorch.rstrip("/"))


def spec_digest(spec: Spec, indexes: Indexes) -> str:
    """A sha256 over the normalised spec and the effective (credential-free) index URLs.

    Two specs that differ only in formatting, comments or key order have the same digest.
    """
    payload = {
        "python": spec.python,
        "platforms": [p.value for p in spec.platforms],
        "torch": {
            "specifier": str(spec.torch.specifier),
            "cuda": spec.torch.cuda,
            "vision": spec.torch.vision,
            "audio": spec.torch.audio,
            "source": spec.torch.source.value,
        },
        "packages": sorted(str(r) for r in spec.packages),
        "exclude-newer": spec.exclude_newer.isoformat() if spec.exclude_newer else None,
        "indexes": {"pypi": indexes.pypi, "pytorch": indexes.pytorch},
    }
    if spec.image_digests:  # only when present: every earlier lock's digest stays as it was
        payload["docker-digests"] = dict(sorted(spec.image_digests.items()))
    if spec.cooldown is not None:  # likewise
        payload["cooldown"] = str(int(spec.cooldown.total_seconds()))  # seconds
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()
