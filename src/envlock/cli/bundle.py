"""envlock bundle."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from envlock import api
from envlock.cli._app import (
    ForceOption,
    LockPathOption,
    VariantOption,
    _progress,
    _with_variant,
    app,
    err,
)
from envlock.spec import Platform

if TYPE_CHECKING:
    pass


@app.command()
def bundle(
    output: Annotated[Path, typer.Option("--output", "-o", help="The bundle directory.")],
    lock_path: LockPathOption = Path("pylock.toml"),
    variant: VariantOption = None,
    platform: Annotated[
        list[Platform] | None,
        typer.Option(help="A platform to bundle (repeatable). Default: every locked platform."),
    ] = None,
    force: ForceOption = False,
) -> None:
    """Download everything the lock installs, for an offline (air-gapped) sync.

    Writes OUTPUT/wheels/ (every selected artifact, verified by sha256 and size; a rerun
    resumes), OUTPUT/pylock.toml (the same lock with relative `path` artifacts, valid PEP 751)
    and OUTPUT/manifest.json. Then, with no network: envlock sync --venv .venv --lock
    OUTPUT/pylock.toml
    """
    with _progress("Bundling…"):
        result = api.bundle(
            _with_variant(lock_path, variant),
            output,
            platforms=[p.value for p in platform or ()],
            report=err.print,
            force=force,
        )
    err.print(
        f"Bundled {result.files} files ({result.bytes / 1e6:.1f} MB, {result.fetched} downloaded) "
        f"for {', '.join(result.platforms)} into {result.directory}. Offline: envlock sync "
        f"--venv .venv --lock {result.directory / 'pylock.toml'}"
    )
