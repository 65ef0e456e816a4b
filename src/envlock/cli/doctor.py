"""envlock doctor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from envlock import api
from envlock.cli._app import OldLockOption, VariantOption, _lock_path, _with_variant, app, out
from envlock.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from envlock.api import DoctorReport


@app.command()
def doctor(
    lock_path: Annotated[
        Path, typer.Option("--lock", "-l", callback=_lock_path, help="The lock to judge.")
    ] = Path("pylock.toml"),
    _old_lock_path: OldLockOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    variant: VariantOption = None,
    venv: Annotated[
        Path | None,
        typer.Option(
            "--venv",
            help="Also run torch inside this venv's own Python: the locked build? CUDA "
            "available, and if not, why? Kernels for each GPU?",
        ),
    ] = None,
) -> None:
    """Will this lock run on this host? Checks before anything fails at run time.

    Reads the NVIDIA driver (/proc, /sys or nvidia-smi; ENVLOCK_NVIDIA_SMI names the binary),
    the GPUs' compute capabilities, glibc, platform and Python, and judges them against the
    lock with envlock's channel data: driver floors per CUDA major, the GPU architectures each
    build ships kernels for, every locked wheel's manylinux/musllinux and Python tags. With
    --venv, torch itself is asked inside the venv (torch.version.cuda, torch.cuda.init(), the
    arch list against each GPU, cuDNN), and an unavailable CUDA is explained: no driver, a
    driver older than the build, no device visible (CUDA_VISIBLE_DEVICES, a container without
    --gpus), a CPU build. Exit 0 when nothing is an error, 1 otherwise. A CUDA lock on a host
    without a driver is a warning (CPU-only), not an error.
    """
    lock_path = _with_variant(lock_path, variant)
    if variant is None and not lock_path.exists():
        variants = api.variant_locks(lock_path.parent)
        if variants and venv is not None:
            from envlock.api.doctor import lock_synced_into  # noqa: PLC0415

            synced = lock_synced_into(venv, variants)
            if synced is None:
                raise UsageError(
                    f"{lock_path} does not exist and {venv} records none of the variant locks "
                    f"({', '.join(variants)})",
                    hint="Pass --variant NAME: the variant the venv was synced from.",
                )
            lock_path = variants[synced]
        elif variants:
            _doctor_variants(variants, as_json=as_json)
            return
    report = api.doctor(lock_path, venv=venv)
    if as_json:
        out.print(json.dumps(_payload(report), indent=2))
    else:
        _print(report)
    if not report.ok:
        raise typer.Exit(int(ExitCode.CHECK_FAILED))


def _payload(report: DoctorReport) -> dict[str, object]:
    from envlock.doctor import host_json  # noqa: PLC0415
    from envlock.runtime import runtime_json  # noqa: PLC0415

    payload: dict[str, object] = {
        "lock": str(report.lock_path),
        "ok": report.ok,
        "host": host_json(report.host),
        "findings": [f.to_json() for f in report.findings],
    }
    if report.venv is not None and report.runtime is not None:
        payload["venv"] = {
            "path": str(report.venv),
            **runtime_json(report.runtime, report.unavailable),
        }
    return payload


def _print(report: DoctorReport) -> None:
    host = report.host
    gpus = (
        ", ".join(f"{g.name} (sm_{g.compute_capability.replace('.', '')})" for g in host.gpus)
        or "none found"
    )
    out.print(
        f"host: {host.platform.value if host.platform else host.os + ' ' + host.machine}"
        f", Python {host.python or '?'}, glibc {host.glibc or '-'}, NVIDIA driver "
        f"{host.nvidia_driver or 'none'}; GPUs: {gpus}"
    )
    rt = report.runtime
    if rt is not None and rt.failure is None:
        cuda = {True: "available", False: "unavailable", None: "?"}[rt.available]
        torch = (
            f"torch {rt.torch} (CUDA build {rt.cuda_build or 'none'}; CUDA {cuda})"
            if rt.torch
            else "torch does not import"
        )
        out.print(f"venv: {report.venv}, Python {rt.python or '?'}, {torch}")
    for finding in report.findings:
        out.print(f"{finding.level.value:>7}: {finding.what}")
        if finding.why:
            out.print(f"         why: {finding.why}")
        if finding.fix:
            out.print(f"         fix: {finding.fix}")


def _doctor_variants(variants: dict[str, Path], *, as_json: bool) -> None:
    """Which of the spec's variants suits this host? Exit 1 only when none does."""
    reports = {name: api.doctor(path) for name, path in variants.items()}
    suits = [name for name, report in reports.items() if report.ok]
    if as_json:
        out.print(
            json.dumps(
                {
                    "suits": suits,
                    "variants": {n: [f.to_json() for f in r.findings] for n, r in reports.items()},
                },
                indent=2,
            )
        )
    else:
        for name, report in reports.items():
            errors = [f for f in report.findings if f.level.value == "error"]
            if errors:
                for finding in errors:
                    out.print(f"{name}: error: {finding.what}")
            else:
                out.print(f"{name}: ok")
        out.print(f"suits this host: {', '.join(suits) or 'none'}")
    if not suits:
        raise typer.Exit(int(ExitCode.CHECK_FAILED))
