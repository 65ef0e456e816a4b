"""envlock doctor --venv: the venv's torch judged against the lock and the host. Pure.

The probe's result (envlock.runtime.TorchRuntime) + host facts + the locked build + channel
data -> doctor's findings: torch imports, is the locked build, runs the lock's Python, CUDA is
available (or why not, in words) and the build has kernels for every visible GPU.
"""

from __future__ import annotations

from packaging.version import InvalidVersion, Version

from envlock.channels import Channels, VariantKind, parse_variant
from envlock.doctor import Finding, Level, LockedBuild, variants_for_gpu
from envlock.host import HostFacts, sm_name
from envlock.runtime import (
    ProbeFailure,
    TorchRuntime,
    cudnn_text,
    has_kernels,
    why_unavailable,
)


def _arch_findings(rt: TorchRuntime, channels: Channels, venv: str) -> list[Finding]:
    findings = []
    shipped = ", ".join(rt.arch_list) or "none"
    seen: set[tuple[str, tuple[int, int]]] = set()
    for device in rt.devices:
        cc = device.capability
        if cc is None or (device.name, cc) in seen:  # 8 H100s are one finding
            continue
        seen.add((device.name, cc))
        runs = has_kernels(rt, channels, cc)
        if runs is None:
            findings.append(
                Finding(
                    level=Level.NOTE,
                    what=f"{device.name} ({sm_name(cc)}): torch in {venv} lists no architectures",
                )
            )
        elif runs:
            findings.append(
                Finding(
                    level=Level.OK,
                    what=f"{device.name} ({sm_name(cc)}) has kernels in torch {rt.torch} "
                    f"(arch list {shipped})",
                )
            )
        else:
            findings.append(
                Finding(
                    level=Level.ERROR,
                    what=f"{device.name} ({sm_name(cc)}) is not in the arch list of torch "
                    f"{rt.torch} in {venv}",
                    why=f'the build ships {shipped}; expect "no kernel image is available for '
                    'execution on the device"',
                    fix=_arch_fix(rt, channels, cc),
                )
            )
    return findings


def _arch_fix(rt: TorchRuntime, channels: Channels, cc: tuple[int, int]) -> str:
    try:
        version = Version(rt.torch or "")
    except InvalidVersion:
        version = None
    release = channels.release(f"{version.major}.{version.minor}") if version else None
    if release is None or version is None:
        return f"Lock a torch build whose kernels include {sm_name(cc)} (`envlock channels`)."
    others = variants_for_gpu(release, channels, version, cc)
    if not others:
        return (
            f"No torch {release.name} CUDA build supports {sm_name(cc)}; lock a newer torch "
            "release (`envlock channels`)."
        )
    return f"Lock a build with kernels for {sm_name(cc)}: " + ", ".join(
        f'cuda = "{parse_variant(v).version_text}" ({v})' for v in others
    )


def _failed(rt: TorchRuntime, venv: str) -> Finding:
    if rt.failure is ProbeFailure.TIMED_OUT:
        return Finding(
            level=Level.ERROR,
            what=f"the torch probe in {venv} did not finish within {rt.detail} s",
            why="importing torch or initialising CUDA hung: a wedged driver or a GPU in a bad "
            "state (check `nvidia-smi`), or a very slow file system",
            fix="Run `python -c 'import torch; torch.cuda.init()'` in the venv to see where it "
            "stops; `nvidia-smi` should answer at once.",
        )
    if rt.failure is ProbeFailure.CRASHED:
        return Finding(
            level=Level.ERROR,
            what=f"the venv's Python crashed while importing torch in {venv} ({rt.detail})",
            why="a compiled library of torch or of a package it loads aborted the interpreter",
            fix=f"Run `envlock verify --venv {venv} --deep`, then `envlock sync --venv {venv} "
            "--reinstall`.",
        )
    return Finding(
        level=Level.ERROR,
        what=f"the torch probe in {venv} printed no result",
        why=rt.detail or "its output had no JSON object",
        fix=f"Run `envlock sync --venv {venv} --reinstall`; report it if it persists.",
    )


def _import_finding(
    rt: TorchRuntime, venv: str, host: HostFacts, built: LockedBuild | None
) -> Finding:
    error = rt.import_error
    if error.startswith("ModuleNotFoundError") and "'torch'" in error:
        if built is None or built.version is None:
            return Finding(level=Level.NOTE, what=f"no torch in {venv} (the lock has none)")
        return Finding(
            level=Level.ERROR,
            what=f"torch is not installed in {venv}",
            why=error,
            fix=f"Run `envlock sync --venv {venv}`.",
        )
    why = error
    if "GLIBC_" in error:
        why += f" (a compiled library needs a newer glibc than this host's {host.glibc or '?'})"
    elif "cannot open shared object file" in error:
        why += " (a shared library is missing: a CUDA library wheel, nvidia-*, is absent or broken)"
    return Finding(
        level=Level.ERROR,
        what=f"torch does not import in {venv}",
        why=why,
        fix=f"Run `envlock verify --venv {venv}` to see what differs from the lock, then "
        f"`envlock sync --venv {venv} --reinstall`.",
    )


def _build_text(rt: TorchRuntime) -> str:
    if rt.cuda_build:
        return f"CUDA {rt.cuda_build}"
    return f"ROCm {rt.hip_build}" if rt.hip_build else "the CPU only"


def _against_lock(rt: TorchRuntime, venv: str, built: LockedBuild | None) -> list[Finding]:
    if built is None or built.version is None:
        return []
    sync = f"Run `envlock sync --venv {venv}`."
    try:
        found: Version | None = Version(rt.torch or "")
    except InvalidVersion:
        found = None
    expected = built.version
    if found is None or not (
        found == expected or (not expected.local and found.public == expected.public)
    ):
        return [
            Finding(
                level=Level.ERROR,
                what=f"{venv} has torch {rt.torch}, not the locked {built.shown}",
                fix=sync,
            )
        ]
    variant = built.variant
    if variant is not None and variant.kind in (VariantKind.CPU, VariantKind.CUDA):
        wanted = variant.version_text if variant.kind is VariantKind.CUDA else None
        if rt.cuda_build != wanted:
            return [
                Finding(
                    level=Level.ERROR,
                    what=f"torch {rt.torch} in {venv} is built for {_build_text(rt)}, the lock "
                    f"installs {variant.describe}",
                    fix=sync,
                )
            ]
    return [Finding(level=Level.OK, what=f"torch {rt.torch} in {venv} is the locked build")]


def runtime_findings(
    rt: TorchRuntime,
    *,
    venv: str,
    host: HostFacts,
    channels: Channels,
    built: LockedBuild | None,
    lock_python: str,
) -> list[Finding]:
    """Every finding about the venv's torch: it imports, is the locked build, and CUDA works
    (or why not, in words), with kernels for each visible GPU. Unsorted."""
    if rt.failure is not None:
        return [_failed(rt, venv)]
    findings: list[Finding] = []
    minor = ".".join(rt.python.split(".")[:2])
    if minor and lock_python and minor != lock_python:
        findings.append(
            Finding(
                level=Level.ERROR,
                what=f"{venv} runs Python {rt.python}, the lock is for Python {lock_python}",
                fix=f"Run `envlock sync --venv {venv}`: it rebuilds the venv with the lock's "
                "Python.",
            )
        )
    if rt.torch is None:
        return [*findings, _import_finding(rt, venv, host, built)]
    findings += _against_lock(rt, venv, built)
    gpu_host = bool(host.gpus or host.nvidia_driver or rt.device_nodes)
    if rt.cuda_build is None and rt.hip_build is None:
        reason = why_unavailable(rt, host, channels)
        if gpu_host:
            findings.append(
                Finding(
                    level=Level.WARNING,
                    what=f"{reason.words}; this host's NVIDIA GPUs go unused",
                    fix=reason.fix,
                )
            )
        else:
            findings.append(
                Finding(level=Level.OK, what=f"torch {rt.torch} (CPU build) imports in {venv}")
            )
        return findings
    if rt.cuda_build is None:
        findings.append(
            Finding(
                level=Level.NOTE,
                what=f"torch {rt.torch} is a ROCm build ({rt.hip_build}); envlock judges CUDA "
                "builds only",
            )
        )
        return findings
    if rt.available:
        cudnn = f", cuDNN {cudnn_text(rt.cudnn)}" if rt.cudnn else ""
        count = len(rt.devices)
        findings.append(
            Finding(
                level=Level.OK,
                what=f"CUDA is available in {venv}: {count} GPU{'s' if count != 1 else ''} "
                f"visible (torch {rt.torch}, CUDA {rt.cuda_build}{cudnn})",
            )
        )
        return findings + _arch_findings(rt, channels, venv)
    reason = why_unavailable(rt, host, channels)
    findings.append(
        Finding(
            level=Level.ERROR if gpu_host else Level.WARNING,
            what=f"torch.cuda.is_available() is False in {venv}: {reason.words}",
            why=rt.init_error or "; ".join(f"{k}: {v}" for k, v in rt.errors.items()),
            fix=reason.fix,
        )
    )
    return findings
