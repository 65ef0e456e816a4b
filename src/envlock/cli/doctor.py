"""envlock doctor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from envlock import api
from envlock.cli._app import OldLockOption, VariantOption, _lock_path, _with_variant, app, out
from envlock.errors import ExitCode

if TYPE_CHECKING:
    pass


@app.command()
def doctor(
    lock_path: Annotated[
        Path, typer.Option("--lock", "-l", callback=_lock_path, help="The lock to judge.")
    ] = Path("pylock.toml"),
    _old_lock_path: OldLockOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    variant: VariantOption = None,
) -> None:
    """Will this lock run on this host? Checks before anything fails at run time.

    Reads the NVIDIA driver (/proc, /sys or nvidia-smi; ENVLOCK_NVIDIA_SMI names the binary),
    the GPUs' compute capabilities, glibc, platform and Python, and judges them against the
    lock with envlock's channel data: driver floors per CUDA major, the GPU architectures each
    build ships kernels for, the torch wheel's manylinux tag. Exit 0 when nothing is an error,
    1 otherwise. A CUDA lock on a host without a driver is a warning (CPU-only), not an error.
    """
    from envlock.doctor import host_json  # noqa: PLC0415

    lock_path = _with_variant(lock_path, variant)
    if variant is None and not lock_path.exists():
        variants = api.variant_locks(lock_path.parent)
        if variants:
            _doctor_variants(variants, as_json=as_json)
            return
    report = api.doctor(lock_path)
    if as_json:
        payload = {
            "lock": str(report.lock_path),
            "ok": report.ok,
            "host": host_json(report.host),
            "findings": [f.to_json() for f in report.findings],
        }
        out.print(json.dumps(payload, indent=2))
    else:
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
        for finding in report.findings:
            out.print(f"{finding.level.value:>7}: {finding.what}")
            if finding.why:
                out.print(f"         why: {finding.why}")
            if finding.fix:
                out.print(f"         fix: {finding.fix}")
    if not report.ok:
        raise typer.Exit(int(ExitCode.CHECK_FAILED))


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
