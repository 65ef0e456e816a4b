"""Will this lock run on this host? Pure rules: host facts + lock + channel data -> findings.

The same rules serve `envlock doctor`, `envlock init` (through envlock.host) and the
preflight of `envlock sync`: one source of truth for driver floors and GPU architectures.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from packaging.pylock import Package, Pylock
from packaging.utils import parse_wheel_filename
from packaging.version import Version

from envlock.channels import ArchRow, Channels, Release, Variant, VariantKind, parse_variant
from envlock.host import HostFacts, driver_version, variants_for_driver
from envlock.lockfile import LockMeta
from envlock.spec import Platform


class Level(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    OK = "ok"


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    level: Level
    what: str
    why: str = ""
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return {"level": self.level.value, "what": self.what, "why": self.why, "fix": self.fix}


def _cc(text: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _sm(cc: tuple[int, int]) -> str:
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
    listed = [c for c in (_cc(s) for s in row.sm) if c is not None]
    if any(c[0] == cc[0] and c[1] <= cc[1] for c in listed):
        return True
    return bool(row.ptx and listed and cc > max(listed)) and _toolkit_knows(
        channels, row.variant, cc
    )


def variants_for_gpu(
    release: Release, channels: Channels, torch_version: Version, cc: tuple[int, int]
) -> list[str]:
    names = []
    for variant in release.variants:
        if variant.kind is not VariantKind.CUDA:
            continue
        row = arch_row(channels, torch_version, variant)
        if row is not None and runs_on(row, channels, cc):
            names.append(variant.name)
    return names


def _platform_variant(meta: LockMeta, platform: Platform) -> Variant:
    if platform is Platform.MACOS_ARM64:
        return Variant(name="cpu")
    return parse_variant(meta.variant)


def _torch_packages(lock: Pylock) -> list[Package]:
    return [p for p in lock.packages if p.name == "torch"]


def _required_glibc(package: Package, arch: str) -> tuple[int, int] | None:
    """The lowest glibc any of this package's wheels for ``arch`` accepts (None: unknown)."""
    best: tuple[int, int] | None = None
    for wheel in package.wheels or ():
        for tag in parse_wheel_filename(wheel.filename)[3]:
            if not tag.platform.endswith(arch):
                continue
            need = _manylinux_glibc(tag.platform)
            if need is not None and (best is None or need < best):
                best = need
    return best


def _manylinux_glibc(platform_tag: str) -> tuple[int, int] | None:
    if match := re.match(r"manylinux_(\d+)_(\d+)_", platform_tag):
        return (int(match.group(1)), int(match.group(2)))
    legacy = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}
    return legacy.get(platform_tag.split("_", 1)[0])


def _coverage(meta: LockMeta, host: HostFacts) -> tuple[list[Finding], Platform | None]:
    findings: list[Finding] = []
    platform = host.platform
    locked = ", ".join(meta.platforms)
    if platform is None:
        findings.append(
            Finding(
                level=Level.ERROR,
                what=f"this host ({host.os} {host.machine}) is not a platform envlock locks for",
                fix="Use linux-x86_64, linux-aarch64, macos-arm64 or windows-x86_64.",
            )
        )
    elif platform.value not in meta.platforms:
        findings.append(
            Finding(
                level=Level.ERROR,
                what=f"the lock does not cover this host's platform {platform.value}",
                why=f"it was locked for {locked}",
                fix=f'Add "{platform.value}" to [env] platforms and run `envlock lock`.',
            )
        )
        platform = None
    else:
        findings.append(Finding(level=Level.OK, what=f"platform {platform.value} is locked"))
    if host.python and host.python != meta.python:
        findings.append(
            Finding(
                level=Level.ERROR,
                what=f"no Python {meta.python} on this host (the lock is for Python "
                f"{meta.python}; envlock itself runs on {host.python})",
                fix=f"Install CPython {meta.python} (uv python install {meta.python}, pyenv, or "
                f"the OS's python{meta.python} package) so that `python{meta.python}` is on "
                f'PATH, or set [env] python = "{host.python}" and run `envlock lock`.',
            )
        )
    elif host.python:
        where = f" ({host.python_path})" if host.python_path else ""
        findings.append(
            Finding(level=Level.OK, what=f"Python {host.python}{where} matches the lock")
        )
    return findings, platform


def _driver(
    meta: LockMeta, host: HostFacts, channels: Channels, variant: Variant, release: Release | None
) -> list[Finding]:
    if variant.kind is not VariantKind.CUDA:
        return [
            Finding(
                level=Level.OK, what=f"the lock's build ({variant.name}) needs no NVIDIA driver"
            )
        ]
    if host.nvidia_driver is None:
        if host.smi_error:
            return [
                Finding(
                    level=Level.WARNING,
                    what="nvidia-smi is installed but failed; the driver could not be read",
                    why=host.smi_error,
                    fix="Check the driver installation (is the kernel module loaded?).",
                )
            ]
        return [
            Finding(
                level=Level.WARNING,
                what=f"no NVIDIA driver found; this {variant.name} lock will run on the CPU only",
                why="torch.cuda.is_available() will be False on this host",
                fix="Fine for a CPU-only host; on a GPU host install the NVIDIA driver.",
            )
        ]
    floor = channels.driver_floor(variant.version[0])
    found = driver_version(host.nvidia_driver)
    if floor is None or found is None:
        return [Finding(level=Level.WARNING, what=f"cannot judge driver {host.nvidia_driver}")]
    needed = floor.windows if host.os == "windows" else floor.linux
    minimum = driver_version(needed)
    if minimum is not None and found < minimum:
        runnable = variants_for_driver(release, channels, host.nvidia_driver) if release else ()
        fix = f"Upgrade the NVIDIA driver to >= {needed}"
        if runnable:
            fix += (
                f', or lock a build this driver runs: cuda = "{runnable[-1].version_text}" '
                f"({runnable[-1].name}) for torch {meta.torch}"
            )
        return [
            Finding(
                level=Level.ERROR,
                what=f"NVIDIA driver {host.nvidia_driver} is too old for {variant.name}",
                why=f"CUDA {variant.version[0]}.x builds need a driver >= {needed} "
                f"({host.driver_source or 'driver'})",
                fix=fix + ".",
            )
        ]
    return [
        Finding(
            level=Level.OK,
            what=f"NVIDIA driver {host.nvidia_driver} runs {variant.name} (needs >= {needed})",
        )
    ]


def _gpus(
    host: HostFacts,
    channels: Channels,
    *,
    variant: Variant,
    release: Release | None,
    torch_version: Version | None,
) -> list[Finding]:
    if variant.kind is not VariantKind.CUDA or not host.gpus or torch_version is None:
        return []
    row = arch_row(channels, torch_version, variant)
    findings: list[Finding] = []
    for gpu in host.gpus:
        cc = _cc(gpu.compute_capability)
        if cc is None:
            continue
        if row is None:
            findings.append(
                Finding(
                    level=Level.WARNING,
                    what=f"{gpu.name} ({_sm(cc)}): envlock's channel data does not list the "
                    f"architectures of torch {torch_version.public} {variant.name}",
                )
            )
            continue
        shipped = ", ".join(f"sm_{s.replace('.', '')}" for s in row.sm) + (
            " +PTX" if row.ptx else ""
        )
        if runs_on(row, channels, cc):
            findings.append(
                Finding(
                    level=Level.OK, what=f"{gpu.name} ({_sm(cc)}) has kernels in {variant.name}"
                )
            )
            continue
        others = (
            variants_for_gpu(release, channels, torch_version, cc) if release is not None else []
        )
        fix = (
            f"Lock a build with kernels for {_sm(cc)}: "
            + ", ".join(f'cuda = "{parse_variant(v).version_text}" ({v})' for v in others)
            if others
            else f"No torch {torch_version.public} CUDA build supports {_sm(cc)}; try another "
            "torch release (`envlock channels`) or the CPU build."
        )
        findings.append(
            Finding(
                level=Level.ERROR,
                what=f"{gpu.name} ({_sm(cc)}) has no kernels in torch {torch_version.public} "
                f"{variant.name}",
                why=f'{variant.name} ships {shipped}; expect "no kernel image is available for '
                'execution on the device"',
                fix=fix + ".",
            )
        )
    return findings


def _glibc(host: HostFacts, torch: Sequence[Package], platform: Platform) -> list[Finding]:
    if platform not in (Platform.LINUX_X86_64, Platform.LINUX_AARCH64) or host.glibc is None:
        return []
    arch = "x86_64" if platform is Platform.LINUX_X86_64 else "aarch64"
    needs = [n for n in (_required_glibc(p, arch) for p in torch) if n is not None]
    if not needs:
        return []
    need = min(needs)
    have = _cc(host.glibc)
    if have is not None and have < need:
        return [
            Finding(
                level=Level.ERROR,
                what=f"glibc {host.glibc} is older than the locked torch wheel needs "
                f"({need[0]}.{need[1]})",
                why=f"its manylinux_{need[0]}_{need[1]} tag requires glibc >= {need[0]}.{need[1]}",
                fix="Run on a newer Linux distribution (or in a container such as the official "
                "pytorch/pytorch image), or lock an older torch release.",
            )
        ]
    return [Finding(level=Level.OK, what=f"glibc {host.glibc} >= {need[0]}.{need[1]}")]


def diagnose(lock: Pylock, meta: LockMeta, host: HostFacts, channels: Channels) -> list[Finding]:
    """Every finding about running ``lock`` on ``host``, errors first."""
    findings, platform = _coverage(meta, host)
    release = channels.release(meta.torch)
    torch = _torch_packages(lock)
    if platform is not None:
        variant = _platform_variant(meta, platform)
        versions = [p.version for p in torch if p.version is not None]
        torch_version = max(versions) if versions else None
        findings += _driver(meta, host, channels, variant, release)
        findings += _gpus(
            host, channels, variant=variant, release=release, torch_version=torch_version
        )
        findings += _glibc(host, torch, platform)
    order = {Level.ERROR: 0, Level.WARNING: 1, Level.OK: 2}
    return sorted(findings, key=lambda f: order[f.level])


def host_json(host: HostFacts) -> dict[str, Any]:
    return {
        "os": host.os,
        "machine": host.machine,
        "platform": host.platform.value if host.platform else None,
        "glibc": host.glibc,
        "python": host.python,
        "nvidia-driver": host.nvidia_driver,
        "driver-source": host.driver_source or None,
        "gpus": [{"name": g.name, "compute-capability": g.compute_capability} for g in host.gpus],
    }
