"""Host facts and pure judgments about them (the probe that reads them is io/probe.py)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from envlock.channels import ArchRow, Channels, Release, Variant, VariantKind
from envlock.errors import SpecError
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


def compute_capability(text: str) -> tuple[int, int] | None:
    """ "8.6" -> (8, 6); None for anything else (nvidia-smi may print junk or "[N/A]")."""
    match = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def sm_name(cc: tuple[int, int]) -> str:
    return f"sm_{cc[0]}{cc[1]}"


def arch_row(channels: Channels, torch_version: Version, variant: Variant) -> ArchRow | None:
    """The architectures a (torch release, variant) ships kernels for, if the data knows."""
    public = Version(torch_version.public)
    for row in channels.arches:
        if row.variant == variant and row.torch.contains(public, prereleases=True):
            return row
    return None


def _toolkit_knows(channels: Channels, variant: Variant, cc: tuple[int, int]) -> bool:
    needed = channels.min_cuda.get(f"{cc[0]}.{cc[1]}")
    if needed is None:
        return True
    have = variant.version
    return have >= tuple(int(p) for p in needed.split("."))


def runs_on(row: ArchRow, channels: Channels, cc: tuple[int, int]) -> bool:
    """Kernels for this compute capability: SASS for the same major and an equal or lower
    minor (sm_86 code runs on sm_89), or PTX the driver can JIT for a newer GPU, provided the
    variant's CUDA toolkit knows that architecture at all."""
    listed = [c for c in (compute_capability(s) for s in row.sm) if c is not None]
    if any(c[0] == cc[0] and c[1] <= cc[1] for c in listed):
        return True
    return bool(row.ptx and listed and cc > max(listed)) and _toolkit_knows(
        channels, row.variant, cc
    )


def arch_text(row: ArchRow) -> str:
    """ "sm_75, sm_80, sm_120 +PTX": what a build ships, as users read it."""
    return ", ".join(f"sm_{s.replace('.', '')}" for s in row.sm) + (" +PTX" if row.ptx else "")


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
    """Pick a concrete [torch] cuda value for this host (what `envlock init` writes).

    With a driver: the newest CUDA build it runs whose kernels cover every detected GPU;
    raises SpecError when no such build exists (rather than write one that cannot run)."""
    pypi = release.pypi.get(platform)
    if host.nvidia_driver:
        usable = variants_for_driver(release, channels, host.nvidia_driver)
        if usable:
            return _gpu_build(release, channels, host, usable)
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


def _gpus_to_serve(host: HostFacts) -> tuple[tuple[Gpu, tuple[int, int]], ...]:
    """Each distinct detected GPU with a readable compute capability (8 H100s are one)."""
    seen: dict[tuple[str, tuple[int, int]], Gpu] = {}
    for gpu in host.gpus:
        cc = compute_capability(gpu.compute_capability)
        if cc is not None:
            seen.setdefault((gpu.name, cc), gpu)
    return tuple((gpu, cc) for (_, cc), gpu in seen.items())


def _covers(
    channels: Channels, release: Release, variant: Variant, ccs: Sequence[tuple[int, int]]
) -> bool | None:
    """Whether the build has kernels for all of ``ccs``; None when the data has no row."""
    row = arch_row(channels, release.series, variant)
    if row is None:
        return None
    return all(runs_on(row, channels, cc) for cc in ccs)


def _gpu_list(gpus: Sequence[tuple[Gpu, tuple[int, int]]]) -> str:
    return ", ".join(f"{gpu.name} ({sm_name(cc)})" for gpu, cc in gpus)


def _gpu_build(
    release: Release, channels: Channels, host: HostFacts, usable: Sequence[Variant]
) -> Recommendation:
    detected = f"detected NVIDIA driver {host.nvidia_driver} ({host.driver_source}); "
    newest = f"is the newest torch {release.name} CUDA build it can run"
    gpus = _gpus_to_serve(host)
    if not gpus:  # nvidia-smi absent or unreadable: the driver alone decides, as before
        best = usable[-1]
        return Recommendation(cuda=best.version_text, reason=f"{detected}{best.name} {newest}")
    ccs = [cc for _, cc in gpus]
    covering = [v for v in usable if _covers(channels, release, v, ccs)]
    if covering:
        best = covering[-1]
        skipped = [v.name for v in usable if v.version > best.version]
        reason = (
            f"{detected}{best.name} {newest} with kernels for {_gpu_list(gpus)}"
            if not skipped
            else f"{detected}{best.name} is the newest torch {release.name} CUDA build it can "
            f"run with kernels for {_gpu_list(gpus)} ({', '.join(skipped)} lack them)"
        )
        return Recommendation(cuda=best.version_text, reason=reason)
    unknown = [v for v in usable if _covers(channels, release, v, ccs) is None]
    if unknown:  # no data to refuse on: keep the driver's choice and say it is unchecked
        best = unknown[-1]
        return Recommendation(
            cuda=best.version_text,
            reason=f"{detected}{best.name} {newest}; envlock's channel data does not list its "
            f"GPU architectures, so kernels for {_gpu_list(gpus)} are unchecked",
        )
    raise _no_build_for(release, channels, host, gpus)


def _no_build_for(
    release: Release,
    channels: Channels,
    host: HostFacts,
    gpus: Sequence[tuple[Gpu, tuple[int, int]]],
) -> SpecError:
    driver = host.nvidia_driver or ""
    ccs = [cc for _, cc in gpus]
    usable = variants_for_driver(release, channels, driver)
    lines = []
    for variant in release.variants:
        if variant.kind is not VariantKind.CUDA:
            continue
        row = arch_row(channels, release.series, variant)
        shipped = arch_text(row) if row is not None else "architectures not in envlock's data"
        floor = channels.driver_floor(variant.version[0])
        runs = (
            f"runs on driver {driver}"
            if variant in usable
            else f"needs driver >= {floor.linux if floor else '?'}"
        )
        lines.append(f"{variant.name}: {shipped} ({runs})")
    # The first release matters only for a GPU none of the runnable builds serves at all.
    alone = [
        cc
        for cc in dict.fromkeys(ccs)
        if not any(_covers(channels, release, v, [cc]) for v in usable)
    ]
    firsts = "".join(f"{_first_release_text(channels, cc)}. " for cc in alone)
    ways = []
    newer_driver = sorted(
        (
            v
            for v in release.variants
            if v.kind is VariantKind.CUDA and v not in usable and _covers(channels, release, v, ccs)
        ),
        key=lambda v: v.version,
    )
    if newer_driver:
        floor = channels.driver_floor(newer_driver[0].version[0])
        ways.append(
            f"upgrade the NVIDIA driver to >= {floor.linux if floor else '?'} for torch "
            f"{release.name}'s {', '.join(v.name for v in newer_driver)}"
        )
    other = _newest_release_for(channels, driver, ccs, exclude=release)
    if other is not None:
        ways.append(
            f"pass --torch {other[0].name} (its {other[1].name} build runs on driver {driver} "
            "and has those kernels)"
        )
    ways.append("choose the build yourself with --cuda (e.g. --cuda cpu)")
    every = "all of " if len(gpus) > 1 else ""
    return SpecError(
        f"no torch {release.name} CUDA build that NVIDIA driver {driver} runs has kernels for "
        f'{every}{_gpu_list(gpus)}; such a build fails with "no kernel image is available for '
        'execution on the device"',
        detail="\n".join(lines),
        hint=f"{firsts}To proceed: " + "; or ".join(ways) + ".",
    )


def _first_release_text(channels: Channels, cc: tuple[int, int]) -> str:
    for release in channels.releases:
        names = [
            v.name
            for v in release.variants
            if v.kind is VariantKind.CUDA and _covers(channels, release, v, [cc])
        ]
        if names:
            return (
                f"torch {release.name} ({', '.join(names)}) is the first release with kernels "
                f"for {sm_name(cc)}"
            )
    return f"no torch release in envlock's channel data has kernels for {sm_name(cc)}"


def _newest_release_for(
    channels: Channels, driver: str, ccs: Sequence[tuple[int, int]], *, exclude: Release
) -> tuple[Release, Variant] | None:
    """The newest release with a build this driver runs that covers ``ccs``, and that build."""
    for release in reversed(channels.releases):
        if release is exclude:
            continue
        covering = [
            v
            for v in variants_for_driver(release, channels, driver)
            if _covers(channels, release, v, ccs)
        ]
        if covering:
            return release, covering[-1]
    return None
