"""envlock sync and verify."""

from __future__ import annotations

import contextlib
import dataclasses
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from envlock import api
from envlock.cli._app import (
    LockPathOption,
    VariantOption,
    _download_progress,
    _progress,
    _with_variant,
    app,
    err,
    out,
)
from envlock.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from envlock.io.import_check import ImportReport


class Installer(StrEnum):
    UV = "uv"
    PIP = "pip"


VenvOption = Annotated[
    Path | None, typer.Option("--venv", help="The virtual environment (one of --venv, --conda).")
]
CondaOption = Annotated[
    Path | None,
    typer.Option(
        "--conda",
        metavar="PREFIX",
        help="A conda prefix instead of a venv: python from a conda channel (rattler, no conda "
        "needed; pip install 'envlock[conda]'), the lock's packages as for a venv.",
    ),
]


def _target(venv_path: Path | None, conda_prefix: Path | None) -> Path:
    """The one environment --venv or --conda names."""
    if venv_path is not None and conda_prefix is None:
        return venv_path
    if conda_prefix is not None and venv_path is None:
        return conda_prefix
    raise UsageError(
        "pass --venv PATH or --conda PREFIX" + (", not both" if venv_path is not None else ""),
        hint="--venv names a virtual environment; --conda a conda prefix.",
    )


@app.command()
def sync(
    venv_path: VenvOption = None,
    conda_prefix: CondaOption = None,
    channel: Annotated[
        list[str] | None,
        typer.Option(
            "--channel",
            metavar="CHANNEL",
            help="With --conda: the conda channel python comes from (a name, a URL, or a "
            "local channel's directory such as ./channel; repeatable). Default: conda-forge.",
        ),
    ] = None,
    lock_path: LockPathOption = Path("pylock.toml"),
    variant: VariantOption = None,
    installer: Annotated[
        Installer, typer.Option(help="uv (default) or pip (isolated, --require-hashes --no-deps).")
    ] = Installer.UV,
    host_check: Annotated[
        bool,
        typer.Option(
            "--host-check/--no-host-check",
            help="Stop when the NVIDIA driver is too old for the locked build.",
        ),
    ] = True,
    link_mode: Annotated[
        api.LinkMode,
        typer.Option(
            help="How files get from the cache into the venv. auto: copy-on-write clone where "
            "the filesystem supports it, else copy. hardlink is fastest but shares files with "
            "the cache: an edit in one venv then reaches every venv synced from it.",
        ),
    ] = api.LinkMode.AUTO,
    reinstall: Annotated[
        bool,
        typer.Option("--reinstall", help="Rebuild the venv even when it already matches the lock."),
    ] = False,
    allow_build: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-build",
            metavar="NAME",
            help="Allow building this package from its source distribution (repeatable). "
            "A build runs the package's code and fetches its build requirements unpinned.",
        ),
    ] = None,
    check_imports: Annotated[
        bool | None,
        typer.Option(
            "--check-imports/--no-check-imports",
            help="Import the packages torchenv.toml names (and torch) in the synced venv; one "
            "that does not import fails the sync (exit 9). Default: after every change, and "
            "on a sync with nothing to do only when the last check did not pass; "
            "--check-imports checks even then.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Make a venv exactly the lock: install by URL and sha256, remove everything else.

    The venv (with the lock's Python, found on this machine) is built beside PATH and swapped
    in only when everything worked: on a hash mismatch, a network failure, Ctrl-C, SIGTERM or
    even SIGKILL, the old venv stays at PATH. Only a directory that is nothing but a venv is
    ever replaced. A second sync with nothing to do returns at once, after checking that every
    package is still the artifact it installed (no extra package, no edited file, no foreign
    start-up code, the same interpreter). Credentials in ENVLOCK_*_INDEX_URL authenticate
    downloads from private indexes.

    --conda PREFIX makes a conda prefix the same way, without conda: rattler links python from
    the conda channel (--channel; conda-forge by default), then the lock is installed as into a
    venv. The old prefix waits beside PATH until the new one is complete, and comes back on
    any failure; only a directory that is nothing but a conda environment is ever replaced.

    Then the packages torchenv.toml names, and torch, are imported in the environment's own
    Python (no GPU needed): a venv exactly the lock whose locked versions do not work together
    (an ABI break) exits 9, left as synced, with each failure's last traceback line.
    """
    target = _target(venv_path, conda_prefix)
    if channel and conda_prefix is None:
        raise UsageError(
            "--channel is for --conda (a venv's python is found on this machine)",
            hint="Drop --channel, or sync a conda prefix with --conda PREFIX.",
        )
    lock = _with_variant(lock_path, variant)
    builds = tuple(allow_build or ())
    with (
        _progress("Syncing…") if conda_prefix is not None else _download_progress("Syncing…")
    ) as watch:
        if conda_prefix is not None:
            from envlock.api.conda import sync_conda  # noqa: PLC0415 - only for --conda
            from envlock.api.imports import check_synced_imports  # noqa: PLC0415

            result = sync_conda(
                conda_prefix,
                lock_path=lock,
                channels=tuple(channel or ()),
                installer=installer.value,
                host_check=host_check,
                report=err.print,
                link_mode=link_mode.value,
                reinstall=reinstall,
                allow_build=builds,
            )
            # sync_conda records what it linked; the import check is the same as for a venv
            imports = check_synced_imports(
                conda_prefix,
                lock_path=lock,
                check=check_imports,
                changed=result.changed,
                report=err.print,
            )
            result = dataclasses.replace(result, imports=imports)
        else:
            result = api.sync(
                target,
                lock_path=lock,
                installer=installer.value,
                host_check=host_check,
                report=err.print,
                link_mode=link_mode.value,
                reinstall=reinstall,
                allow_build=builds,
                check_imports=check_imports,
                progress=watch,
            )
    for warning in result.warnings:
        err.print(f"warning: {warning}", markup=False)
    if result.reasons:
        shown = ", ".join(result.reasons[:5])
        more = f" and {len(result.reasons) - 5} more" if len(result.reasons) > 5 else ""
        err.print(f"{target} differed from the lock ({shown}{more}).", markup=False)
    conda = ""
    if result.conda:
        more = f" and {len(result.conda) - 1} more" if len(result.conda) > 1 else ""
        conda = f" over conda's {result.conda[0]}{more}"
    if not result.changed:
        err.print(f"{target} already matches {lock_path} ({result.packages} packages{conda}).")
    else:
        verb = "Created" if result.created else "Synced"
        err.print(f"{verb} {target}: {result.packages} packages{conda}, exactly as locked.")
    if result.imports is not None:
        err.print(_imports_ok(result.imports), markup=False)


def _imports_ok(report: ImportReport) -> str:
    """imports ok: numpy, six, torch (0.4 s)"""
    shown = ", ".join(report.imported) or "nothing to import"
    return f"imports ok: {shown} ({report.seconds:.1f} s)"


@app.command()
def verify(
    venv_path: Annotated[
        Path | None,
        typer.Option("--venv", help="The virtual environment to check (or --conda)."),
    ] = None,
    conda_prefix: Annotated[
        Path | None,
        typer.Option("--conda", metavar="PREFIX", help="The conda prefix to check."),
    ] = None,
    lock_path: LockPathOption = Path("pylock.toml"),
    variant: VariantOption = None,
    deep: Annotated[
        bool, typer.Option("--deep", help="Also check every installed file against RECORD.")
    ] = False,
    imports: Annotated[
        bool,
        typer.Option(
            "--imports",
            help="Also import the packages torchenv.toml names (and torch) in the venv's "
            "Python; each one that does not import is a finding, with its last traceback line.",
        ),
    ] = False,
) -> None:
    """Does the venv still equal the lock? Exit 1 with a table of drift.

    Checks every installed package against the lock (missing, extra, other version, duplicate
    .dist-info), against the artifact the last sync installed (replaced by another build of the
    same version), its files against RECORD (sizes; sha256 with --deep), the interpreter and
    pyvenv.cfg, and start-up code (.pth, sitecustomize) that no locked package installed. For
    a conda prefix, also every conda package against the one sync linked (conda-meta). With
    --imports, also that each package torchenv.toml names (and torch) imports."""
    target = _target(venv_path, conda_prefix)
    with _progress("Importing…") if imports else contextlib.nullcontext():
        report = api.verify(
            target,
            lock_path=_with_variant(lock_path, variant),
            deep=deep,
            conda=conda_prefix is not None,
            imports=imports,
        )
    drift = report.drift
    for note in report.notes:
        err.print(f"note: {note}", markup=False)
    if report.imports is not None and report.imports.ok:
        err.print(_imports_ok(report.imports), markup=False)
    if report.ok:
        err.print(f"{target} matches {lock_path}.")
        return
    failures = report.imports.failures if report.imports is not None else ()
    rows = [("package", "drift", "locked", "installed")] + [
        (d.name, d.kind, d.expected, d.found) for d in drift
    ]
    rows += [(f.name, "import", report.versions.get(f.name, ""), f.message) for f in failures]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        out.print("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip())
    raise typer.Exit(int(ExitCode.CHECK_FAILED))
