"""envlock lock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from envlock import api
from envlock.cli._app import LockOption, OldLockOption, SpecOption, _progress, app, err, out
from envlock.errors import UsageError
from envlock.spec import SPEC_FILENAME


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
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Also print the result to stdout as JSON: each lock written, the named "
            "packages raised and those held back (by what, through which requirement).",
        ),
    ] = False,
    keep_versions: Annotated[
        Path | None,
        typer.Option(
            "--keep-versions",
            help="Keep the exact versions this file pins (the requirements.txt, "
            "environment.yml or pylock.toml adopted with `envlock init --from`) where the "
            "spec and the indexes allow; says which it could not keep.",
        ),
    ] = None,
) -> None:
    """Resolve torchenv.toml into a hash-pinned PEP 751 pylock.toml.

    Torch-family packages come only from the chosen PyTorch variant index
    (<pytorch index>/<variant>), everything else only from PyPI: no extra-index-url
    fallbacks, so a higher-versioned torch on another index can never win.

    With nothing changed since the last lock, nothing is re-resolved. After a spec change,
    every package keeps its locked version where it can; --upgrade and --upgrade-package
    allow newer ones. The lock is written atomically: on any error the old one stays.

    The packages [packages] names come first: one uv held below the newest version that
    resolves is raised (re-resolved with a lower bound, never lowering another named
    package), and each one still below the newest its index offers is listed with the
    package and requirement that hold it back.
    """
    if check and as_json:
        raise UsageError(
            "--json reports what a lock run did; --check only reports freshness",
            hint="Drop --json (`envlock lock --check` exits 0 when fresh, 1 when stale).",
        )
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
            keep_versions=keep_versions,
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
        _print_settled(outcome)
    for warning in run.warnings:
        err.print(f"warning: {warning}")
    if as_json:
        out.print(json.dumps(_run_json(run), indent=2))


def _print_settled(outcome: api.LockResult) -> None:
    from envlock.heldback import describe_held_back, describe_raised  # noqa: PLC0415

    settled = outcome.settled
    if settled is None:
        return
    for raised in settled.raised:
        err.print(describe_raised(raised))
    for held in settled.held_back:
        err.print(describe_held_back(held))
    for note in settled.notes:
        err.print(f"note: {note}")


def _run_json(run: api.LockRun) -> dict[str, Any]:
    from envlock.heldback import settled_json  # noqa: PLC0415

    return {
        "locks": [
            {
                "lock": str(r.lock_path),
                "changed": r.changed,
                "packages": len(r.lock.packages),
                **settled_json(r.settled),
            }
            for r in run.results
        ],
        "warnings": [w for r in run.results for w in r.warnings] + list(run.warnings),
    }
