"""envlock sync and verify."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from envlock import api
from envlock.cli._app import LockPathOption, VariantOption, _progress, _with_variant, app, err, out
from envlock.errors import ExitCode

if TYPE_CHECKING:
    pass


class Installer(StrEnum):
    UV = "uv"
    PIP = "pip"


@app.command()
def sync(
    venv_path: Annotated[Path, typer.Option("--venv", help="The virtual environment to sync.")],
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
    """
    with _progress("Syncing…"):
        result = api.sync(
            venv_path,
            lock_path=_with_variant(lock_path, variant),
            installer=installer.value,
            host_check=host_check,
            report=err.print,
            link_mode=link_mode.value,
            reinstall=reinstall,
            allow_build=tuple(allow_build or ()),
        )
    for warning in result.warnings:
        err.print(f"warning: {warning}", markup=False)
    if result.reasons:
        shown = ", ".join(result.reasons[:5])
        more = f" and {len(result.reasons) - 5} more" if len(result.reasons) > 5 else ""
        err.print(f"{venv_path} differed from the lock ({shown}{more}).", markup=False)
    if not result.changed:
        err.print(f"{venv_path} already matches {lock_path} ({result.packages} packages).")
    else:
        verb = "Created" if result.created else "Synced"
        err.print(f"{verb} {venv_path}: {result.packages} packages, exactly as locked.")


@app.command()
def verify(
    venv_path: Annotated[Path, typer.Option("--venv", help="The virtual environment to check.")],
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
    pyvenv.cfg, and start-up code (.pth, sitecustomize) that no locked package installed."""
    report = api.verify(venv_path, lock_path=_with_variant(lock_path, variant), deep=deep)
    drift = report.drift
    for note in report.notes:
        err.print(f"note: {note}", markup=False)
    if not drift:
        err.print(f"{venv_path} matches {lock_path}.")
        return
    rows = [("package", "drift", "locked", "installed")] + [
        (d.name, d.kind, d.expected, d.found) for d in drift
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        out.print("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip())
    raise typer.Exit(int(ExitCode.CHECK_FAILED))
