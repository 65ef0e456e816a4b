"""Will this lock run on this host? Pure rules: host facts + lock + channel data -> findings.

The same rules serve `envlock doctor`, `envlock init` (through envlock.host) and the
preflight of `envlock sync`: one source of truth for driver floors and GPU architectures.
The build is read from the locked torch artifact itself (:func:`locked_build`), never taken on
trust from [tool.envlock], which is only checked against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.pylock import Package, PackageWheel, Pylock
from packaging.version import Version

from envlock.channels import (
    Channels,
    Release,
    Variant,
    VariantKind,
    parse_variant,
    variant_named,
)
from envlock.family import TORCH
from envlock.host import (
    HostFacts,
    arch_row,
    arch_text,
    compute_capability,
    driver_version,
    runs_on,
    sm_name,
    variants_for_driver,
)
from envlock.lockfile import LockMeta
from envlock.resolve import platform_environment
from envlock.spec import Platform
from envlock.wheelfit import Unfit, unfit_wheels
from envlock.wheels import fits_platform, parse_wheel


class Level(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"  # something doctor could not judge; never a failure
    OK = "ok"


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    level: Level
    what: str
    why: str = ""
    fix: str = ""
    stops_sync: bool = False  # sync's preflight refuses to install (unless --no-host-check)

    def to_json(self) -> dict[str, str]:
        return {"level": self.level.value, "what": self.what, "why": self.why, "fix": self.fix}


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


def _recorded_variant(meta: LockMeta, platform: Platform) -> Variant | None:
    """The build [tool.envlock] says this platform gets (None: it names no valid variant)."""
    if platform is Platform.MACOS_ARM64:
        return Variant(name="cpu")
    return variant_named(meta.variant)


# --------------------------------------------------------------------------------------
# the build a lock really installs


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedBuild:
    """The torch build a lock installs on one platform, read from its torch entry."""

    version: Version | None  # None: the lock has no torch for that platform
    variant: Variant | None  # None: neither the entry nor the channel data tells
    shown: str = ""  # how messages name it: "2.6.0+cu126", "2.6.0 from PyPI (cu124 on …)"
    clues: tuple[tuple[str, Variant], ...] = ()  # (where it was read, the variant it names)

    @property
    def contradictory(self) -> bool:
        return len({variant for _, variant in self.clues}) > 1


def _wheel_fits(wheel: PackageWheel, platform: Platform) -> bool:
    parsed = parse_wheel(wheel.filename)
    return parsed is not None and fits_platform(parsed[3], platform)


def _for_platform(package: Package, platform: Platform, python: str) -> bool:
    if package.marker is not None and not package.marker.evaluate(
        platform_environment(platform, python), context="lock_file"
    ):
        return False
    return not package.wheels or any(_wheel_fits(w, platform) for w in package.wheels)


def _folder_variant(url: str) -> Variant | None:
    """The variant folder a URL's path goes through (…/whl/cu126/torch-….whl), if any."""
    folders = unquote(urlsplit(url).path).split("/")[:-1]
    named = [v for v in (variant_named(f) for f in folders) if v is not None]
    return named[-1] if named else None


def _clues(package: Package, platform: Platform) -> list[tuple[str, Variant]]:
    """Every place in the entry that names a build: version label, wheel names, URL folders."""
    clues: list[tuple[str, Variant]] = []
    if package.version is not None and (label := variant_named(package.version.local or "")):
        clues.append((f"version {package.version}", label))
    for wheel in package.wheels or ():
        parsed = parse_wheel(wheel.filename)
        if parsed is None or not fits_platform(parsed[3], platform):
            continue
        local = parsed[1].local
        if local and (label := variant_named(local)):
            clues.append((f"wheel {wheel.filename}", label))
        if wheel.url and (folder := _folder_variant(wheel.url)):
            clues.append((f"wheel URL folder /{folder.name}/", folder))
    if package.index and (folder := _folder_variant(package.index.rstrip("/") + "/")):
        clues.append((f"index folder /{folder.name}/", folder))
    return clues


def _unknown_label(package: Package) -> bool:
    local = package.version.local if package.version is not None else None
    return bool(local) and variant_named(local or "") is None


def locked_build(lock: Pylock, platform: Platform, python: str, channels: Channels) -> LockedBuild:
    """What torch ``lock`` installs on ``platform`` for CPython ``python``, and which build.

    The build is the variant the torch entry names (its local version label, its wheels'
    labels, the /<variant>/ folder of their URLs or of its index); an entry naming none is
    PyPI's own wheel, whose build the channel data's [release.pypi] gives for that release."""
    entries = [p for p in lock.packages if p.name == TORCH and _for_platform(p, platform, python)]
    versions = [p.version for p in entries if p.version is not None]
    if not versions:
        return LockedBuild(version=None, variant=None)
    version = max(versions)
    clues = tuple(clue for p in entries for clue in _clues(p, platform))
    if clues:
        variant = clues[0][1]
        shown = str(version) if version.local else f"{version} from …/{variant.name}/"
        return LockedBuild(version=version, variant=variant, shown=shown, clues=clues)
    release = channels.release(f"{version.major}.{version.minor}")
    pypi = release.pypi.get(platform) if release is not None else None
    if pypi is None or any(_unknown_label(p) for p in entries):
        return LockedBuild(version=version, variant=None, shown=str(version))
    return LockedBuild(
        version=version,
        variant=pypi,
        shown=f"{version} from PyPI ({pypi.name} on {platform.value})",
    )


_REMAKE = "Re-create the lock with `envlock lock --upgrade`, or restore it from git."


def _record(meta: LockMeta, platform: Platform, built: LockedBuild) -> list[Finding]:
    """[tool.envlock] checked against the torch entry: a disagreement means a hand edit."""
    recorded = _recorded_variant(meta, platform)
    said = meta.variant if platform is not Platform.MACOS_ARM64 else "cpu (macOS)"
    judged = f"judged by [tool.envlock]'s variant {said} instead"
    if built.version is None:
        return [
            Finding(level=Level.NOTE, what=f"the lock has no torch for {platform.value}; {judged}")
        ]
    if built.variant is None:
        return [
            Finding(
                level=Level.NOTE,
                what=f"cannot tell which build torch {built.shown} is; {judged}",
                why="its entry names no variant (no local label, no /<variant>/ folder) and "
                "envlock's channel data has no PyPI build for that release",
            )
        ]
    findings: list[Finding] = []
    if built.contradictory:
        first: dict[Variant, str] = {}
        for where, variant in built.clues:
            first.setdefault(variant, where)
        findings.append(
            Finding(
                level=Level.ERROR,
                what="the lock's torch entry contradicts itself: "
                + ", ".join(f"{where} says {v.name}" for v, where in first.items())
                + ": edited by hand?",
                fix=_REMAKE,
                stops_sync=True,
            )
        )
    if recorded != built.variant:
        findings.append(
            Finding(
                level=Level.ERROR,
                what=f"the lock's [tool.envlock] says {said} but torch is {built.shown}: "
                "edited by hand?",
                fix=_REMAKE,
                stops_sync=True,
            )
        )
    series = f"{built.version.major}.{built.version.minor}"
    if meta.torch and meta.torch != series:
        findings.append(
            Finding(
                level=Level.ERROR,
                what=f"the lock's [tool.envlock] says torch {meta.torch} but torch is "
                f"{built.shown}: edited by hand?",
                fix=_REMAKE,
                stops_sync=True,
            )
        )
    if not findings:
        findings.append(
            Finding(
                level=Level.OK,
                what=f"torch {built.shown} is the build [tool.envlock] records ({said})",
            )
        )
    return findings


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
                f"({runnable[-1].name}) for torch {release.name if release else meta.torch}"
            )
        return [
            Finding(
                level=Level.ERROR,
                what=f"NVIDIA driver {host.nvidia_driver} is too old for {variant.name}",
                why=f"CUDA {variant.version[0]}.x builds need a driver >= {needed} "
                f"({host.driver_source or 'driver'})",
                fix=fix + ".",
                stops_sync=True,
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
        cc = compute_capability(gpu.compute_capability)
        if cc is None:
            continue
        if row is None:
            findings.append(
                Finding(
                    level=Level.WARNING,
                    what=f"{gpu.name} ({sm_name(cc)}): envlock's channel data does not list the "
                    f"architectures of torch {torch_version.public} {variant.name}",
                )
            )
            continue
        shipped = arch_text(row)
        if runs_on(row, channels, cc):
            findings.append(
                Finding(
                    level=Level.OK, what=f"{gpu.name} ({sm_name(cc)}) has kernels in {variant.name}"
                )
            )
            continue
        others = (
            variants_for_gpu(release, channels, torch_version, cc) if release is not None else []
        )
        fix = (
            f"Lock a build with kernels for {sm_name(cc)}: "
            + ", ".join(f'cuda = "{parse_variant(v).version_text}" ({v})' for v in others)
            if others
            else f"No torch {torch_version.public} CUDA build supports {sm_name(cc)}; try another "
            "torch release (`envlock channels`) or the CPU build"
        )
        findings.append(
            Finding(
                level=Level.ERROR,
                what=f"{gpu.name} ({sm_name(cc)}) has no kernels in torch {torch_version.public} "
                f"{variant.name}",
                why=f'{variant.name} ships {shipped}; expect "no kernel image is available for '
                'execution on the device"',
                fix=fix + ".",
            )
        )
    return findings


def _wheels(host: HostFacts, lock: Pylock, platform: Platform, python: str) -> list[Finding]:
    """Every locked wheel for this host against its glibc and the interpreter's tags."""
    linux = platform in (Platform.LINUX_X86_64, Platform.LINUX_AARCH64)
    have = compute_capability(host.glibc) if linux and host.glibc else None  # "2.35" -> (2, 35)
    fit = unfit_wheels(lock, platform, python, have)
    findings = [_unfit(u, host, python) for u in fit.unfit]
    if linux and host.glibc is None and fit.judged:
        findings.append(
            Finding(
                level=Level.NOTE,
                what="this host's glibc version could not be read (a musl distribution such as "
                "Alpine?); manylinux wheels need glibc",
            )
        )
    need = fit.newest_glibc
    if have is not None and need is not None and not any(u.glibc or u.musl for u in fit.unfit):
        findings.append(Finding(level=Level.OK, what=f"glibc {host.glibc} >= {need[0]}.{need[1]}"))
    return findings


def _unfit(unfit: Unfit, host: HostFacts, python: str) -> Finding:
    sdist = (
        "; it has an sdist, but building it is not reproducible (envlock sync refuses)"
        if unfit.has_sdist
        else ""
    )
    if unfit.glibc is not None:
        need = f"{unfit.glibc[0]}.{unfit.glibc[1]}"
        return Finding(
            level=Level.ERROR,
            what=f"glibc {host.glibc} is older than the locked {unfit.package} wheel needs "
            f"({need}): {unfit.filename}",
            why=f"its manylinux_{unfit.glibc[0]}_{unfit.glibc[1]} tag requires glibc >= {need}"
            + sdist,
            fix="Run on a newer Linux distribution (or in a container such as the official "
            f"pytorch/pytorch image), or lock an older {unfit.package} release.",
        )
    if unfit.musl:
        return Finding(
            level=Level.ERROR,
            what=f"the locked {unfit.package} wheel is built for musl libc, this host has glibc "
            f"{host.glibc}: {unfit.filename}",
            why="a musllinux wheel loads only on a musl distribution (Alpine)" + sdist,
            fix=f"Lock {unfit.package} where it publishes manylinux wheels, or run on Alpine.",
        )
    return Finding(
        level=Level.ERROR,
        what=f"no locked {unfit.package} wheel loads in CPython {python}: {unfit.filename} is "
        f"built for {', '.join(unfit.built_for)}",
        why="a wheel's interpreter and ABI tags must match the Python that installs it" + sdist,
        fix=f"Run `envlock lock` for Python {python} ([env] python in torchenv.toml).",
    )


def rank(findings: Sequence[Finding]) -> list[Finding]:
    """Errors first, then warnings, notes and what is fine (stable within a level)."""
    order = {Level.ERROR: 0, Level.WARNING: 1, Level.NOTE: 2, Level.OK: 3}
    return sorted(findings, key=lambda f: order[f.level])


def diagnose(lock: Pylock, meta: LockMeta, host: HostFacts, channels: Channels) -> list[Finding]:
    """Every finding about running ``lock`` on ``host``, errors first."""
    findings, platform = _coverage(meta, host)
    if platform is not None:
        built = locked_build(lock, platform, meta.python, channels)
        findings += _record(meta, platform, built)
        variant = built.variant or _recorded_variant(meta, platform)
        release = channels.release(
            f"{built.version.major}.{built.version.minor}" if built.version else meta.torch
        )
        if variant is not None:
            findings += _driver(meta, host, channels, variant, release)
            findings += _gpus(
                host, channels, variant=variant, release=release, torch_version=built.version
            )
        findings += _wheels(host, lock, platform, meta.python)
    return rank(findings)


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
