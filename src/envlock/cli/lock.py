"""envlock lock."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from envlock import api
from envlock.cli._app import LockOption, OldLockOption, SpecOption, _progress, app, err
from envlock.spec import SPEC_FILENAME

if TYPE_CHECKING:
    pass


@app.command()
def lock(
    spec: SpecOption = Path(SPEC_FILENAME),
    lock_path: LockOption = None,
    _old_lock_path: OldLockOption = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Do not resolve: exit 0 if the lock is fresh for the spec, 1 if it is stale or "
            "missing. Offline; for CI and pre-commit.",
        ),
    ] = False,
    upgrade: Annotated[
        bool, typer.Option("--upgrade", "-U", help="Re-resolve everything to the newest allowed.")
    ] = False,
    variant: Annotated[
        str | None,
        typer.Option(help="Only this [variants.<name>] (written to pylock.<name>.toml)."),
    ] = None,
    upgrade_package: Annotated[
        list[str] | None,
        typer.Option(
            "--upgrade-package",
            "-P",
            help="Re-resolve allowing only this package to change. Repeatable.",
        ),
    ] = None,
    hash_missing: Annotated[
        api.HashMissing,
        typer.Option(
            "--hash-missing",
            help="A file its index lists without a hash: refuse (name the URLs, write "
            "nothing) or download (stream and hash it: trust on first use).",
        ),
    ] = api.HashMissing.REFUSE,
) -> None:
    """Resolve torchenv.toml into a hash-pinned PEP 751 pylock.toml.

    Torch-family packages come only from the chosen PyTorch variant index
    (<pytorch index>/<variant>), everything else only from PyPI: no extra-index-url
    fallbacks, so a higher-versioned torch on another index can never win.

    With nothing changed since the last lock, nothing is re-resolved. After a spec change,
    every package keeps its locked version where it can; --upgrade and --upgrade-package
    allow newer ones. The lock is written atomically: on any error the old one stays.
    """
    if check:
        for result in api.check(spec, lock_path, variant=variant):
            err.print(result.reason)
        return
    with _progress("Locking…"):
        run = api.lock(
            spec,
            lock_path=lock_path,
            variant=variant,
            upgrade=upgrade,
            upgrade_packages=tuple(upgrade_package or ()),
            report=err.print,
            hash_missing=hash_missing,
        )
    for outcome in run.results:
        for warning in outcome.warnings:
            err.print(f"warning: {warning}")
        count = len(outcome.lock.packages)
        if not outcome.changed:
            err.print(f"{outcome.lock_path} is up to date ({count} packages); nothing re-resolved.")
            continue
        if outcome.selection is not None:
            err.print(outcome.selection.explanation)
        err.print(f"Wrote {outcome.lock_path} ({count} packages, every artifact sha256-pinned).")
    for warning in run.warnings:
        err.print(f"warning: {warning}")
