"""Host facts and pure judgments about them (the probe that reads them is io/probe.py)."""

from __future__ import annotations

from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from envlock.channels import Channels, Release, Variant, VariantKind
from envlock.spec import Platform


@dataclass(frozen=True, slots=True, kw_only=True)
class Gpu:
    name: str
    compute_capability: str  # "8.6"


@dataclass(frozen=True, slots=True, kw_only=True)
class HostFacts:
    os: str = ""  # "linux", "darwin", "windows"
    machine: str = ""  # "x86_64", "aarch64", "arm64", "AMD64"
    glibc: str | None = None  # "2.35"
    python: str = ""  # "3.11": the lock's Python when one was found on the host, else envlock's
    python_path: str = ""  # where the lock's Python was found ("" when it is envlock's own)
    nvidia_driver: str | None = None  # "550.54.14"
    driver_source: str = ""  # where the driver version was read
    gpus: tuple[Gpu, ...] = ()
    smi_error: str | None = None  # nvidia-smi exists but failed

    @property
    def platform(self) -> Platform | None:
        machine = self.machine.lower()
        if self.os == "linux" and machine in ("x86_64", "amd64"):
            return Platform.LINUX_X86_64
        if self.os == "linux" and machine in ("aarch64", "arm64"):
            return Platform.LINUX_AARCH64
        if self.os == "darwin" and machine == "arm64":
            return Platform.MACOS_ARM64
        if self.os == "windows" and machine in ("amd64", "x86_64"):
            return Platform.WINDOWS_X86_64
        return None


def driver_version(text: str) -> Version | None:
    try:
        return Version(text.strip())
    except InvalidVersion:
        return None


def variants_for_driver(release: Release, channels: Channels, driver: str) -> tuple[Variant, ...]:
    """The release's CUDA variants whose minimum driver (Linux) the given driver meets."""
    found = driver_version(driver)
    if found is None:
        return ()
    result = []
    for variant in release.variants:
        if variant.kind is not VariantKind.CUDA:
            continue
        floor = channels.driver_floor(variant.version[0])
        floor_version = driver_version(floor.linux) if floor is not None else None
        if floor_version is not None and found >= floor_version:
            result.append(variant)
    return tuple(sorted(result, key=lambda v: v.version))


@dataclass(frozen=True, slots=True, kw_only=True)
class Recommendation:
    cuda: str  # what to write in torchenv.toml: "12.4" or "cpu"
    reason: str


def recommend_build(
    release: Release, channels: Channels, host: HostFacts, platform: Platform
) -> Recommendation:
    """Pick a concrete [torch] cuda value for this host (what `envlock init` writes)."""
    pypi = release.pypi.get(platform)
    if host.nvidia_driver:
        usable = variants_for_driver(release, channels, host.nvidia_driver)
        if usable:
            best = usable[-1]
            return Recommendation(
                cuda=best.version_text,
                reason=(
                    f"detected NVIDIA driver {host.nvidia_driver} ({host.driver_source}); "
                    f"{best.name} is the newest torch {release.name} CUDA build it can run"
                ),
            )
        return Recommendation(
            cuda="cpu",
            reason=(
                f"detected NVIDIA driver {host.nvidia_driver} ({host.driver_source}), too old "
                f"for every torch {release.name} CUDA build; using the CPU build"
            ),
        )
    if pypi is not None and pypi.kind is VariantKind.CUDA:
        return Recommendation(
            cuda=pypi.version_text,
            reason=(
                f"no NVIDIA driver found on this host; {pypi.name} is the build PyPI itself "
                f"ships for torch {release.name} on {platform.value}"
            ),
        )
    return Recommendation(
        cuda="cpu",
        reason=f"no NVIDIA driver found; PyPI ships a CPU build for {platform.value}",
    )
