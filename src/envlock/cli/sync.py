"""envlock sync and verify."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from envlock import api
from envlock.cli._app import LockPathOption, VariantOption, _progress, _with_variant, app, err, out
from envlock.errors import ExitCode, UsageError

if TYPE_CHECKING:
    pass


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
    """
    target = _target(venv_path, conda_prefix)
    if channel and conda_prefix is None:
        raise UsageError(
            "--channel is for --conda (a venv's python is found on this machine)",
            hint="Drop --channel, or sync a conda prefix with --conda PREFIX.",
        )
    lock = _with_variant(lock_path, variant)
    builds = tuple(allow_build or ())
    with _progress("Syncing…"):
        if conda_prefix is not None:
            from envlock.api.conda import sync_conda  # noqa: PLC0415 - only for --conda

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
) -> None:
    """Does the venv still equal the lock? Exit 1 with a table of drift.

    Checks every installed package against the lock (missing, extra, other version, duplicate
    .dist-info), against the artifact the last sync installed (replaced by another build of the
    same version), its files against RECORD (sizes; sha256 with --deep), the interpreter and
    pyvenv.cfg, and start-up code (.pth, sitecustomize) that no locked package installed. For
    a conda prefix, also every conda package against the one sync linked (conda-meta)."""
    target = _target(venv_path, conda_prefix)
    report = api.verify(
        target,
        lock_path=_with_variant(lock_path, variant),
        deep=deep,
        conda=conda_prefix is not None,
    )
    drift = report.drift
    for note in report.notes:
        err.print(f"note: {note}", markup=False)
    if not drift:
        err.print(f"{target} matches {lock_path}.")
        return
    rows = [("package", "drift", "locked", "installed")] + [
        (d.name, d.kind, d.expected, d.found) for d in drift
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        out.print("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip())
    raise typer.Exit(int(ExitCode.CHECK_FAILED))
