"""envlock diff, git-setup and the textconv driver."""

from __future__ import annotations

import json
import shlex
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from envlock import api
from envlock.cli._app import OldLockOption, VariantOption, _lock_path, _with_variant, app, err, out
from envlock.errors import ExitCode, UsageError

if TYPE_CHECKING:
    pass


class DiffFormat(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    JSON = "json"


class FailOn(StrEnum):
    ATTENTION = "attention"  # a finding of the review gate that no accept covers
    CHANGES = "changes"  # any change (as --exit-code)


@app.command()
def diff(
    old: Annotated[
        str | None,
        typer.Argument(
            help="Old side: a lock file, a git revision (HEAD, main) or REV:path. "
            "Default: the lock at HEAD."
        ),
    ] = None,
    new: Annotated[
        str | None,
        typer.Argument(help="New side, same forms. Default: the lock in the working tree."),
    ] = None,
    lock_path: Annotated[
        Path,
        typer.Option(
            "--lock", "-l", callback=_lock_path, help="The lock file a bare revision refers to."
        ),
    ] = Path("pylock.toml"),
    _old_lock_path: OldLockOption = None,
    fmt: Annotated[
        DiffFormat, typer.Option("--format", "-f", help="text, markdown (PR comment) or json.")
    ] = DiffFormat.TEXT,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit 1 when there are changes (like git diff).")
    ] = False,
    fail_on: Annotated[
        FailOn | None,
        typer.Option(
            "--fail-on",
            help="attention: exit 1 when the review gate finds something no [review.accept] "
            "covers (the CI gate); changes: exit 1 on any change (as --exit-code).",
        ),
    ] = None,
    no_gate: Annotated[
        bool,
        typer.Option(
            "--no-gate",
            help="Skip the review gate (no reads of wheels or index pages): the changes only.",
        ),
    ] = False,
    audit: Annotated[
        bool,
        typer.Option(
            "--audit",
            help="Also ask PyPI's JSON API for known vulnerabilities of the new versions "
            "(as envlock audit does for a whole lock).",
        ),
    ] = False,
    expand: Annotated[
        bool, typer.Option("--expand", help="List the CUDA runtime packages one by one.")
    ] = False,
    variant: VariantOption = None,
) -> None:
    """Show what changed between two locks, for code review.

    Security-relevant changes come first (--exit-code fails on them like on any change): who
    built a package or where its files come from changed (a local version label the lock's
    variant change does not explain, a new artifact host, even with the same bytes), a package
    that moved to another index, or an artifact whose hash changed without a version change.
    The CUDA runtime packages (nvidia-*, cuda-*, triton) collapse into one line unless --expand.

    First, what needs attention (the review gate): for every artifact the old side did not
    have, a start-up hook it adds (a .pth with an import line, sitecustomize/usercustomize;
    its file list is read by HTTP Range), code that runs at install (an sdist), an upload
    younger than the cooldown, a yanked file, the same file name with other bytes (an alarm).
    A finding a reviewer checked is accepted in torchenv.toml's [review.accept], bound to the
    artifact's sha256: the output prints the line to paste. --fail-on attention makes CI
    require a human for anything not accepted.

    Examples: envlock diff; envlock diff main; envlock diff old/pylock.toml pylock.toml;
    envlock diff --format markdown --fail-on attention origin/main
    """
    import os  # noqa: PLC0415

    from envlock.api.project import GATE_OFF, gate_disabled  # noqa: PLC0415
    from envlock.api.review import review  # noqa: PLC0415
    from envlock.diff import diff_json, render_markdown, render_text  # noqa: PLC0415

    before, after, result = api.diff(old, new, lock_path=_with_variant(lock_path, variant))
    for warning in (*before.warnings, *after.warnings):
        err.print(f"warning: {warning}", markup=False)
    skip = no_gate or gate_disabled(os.environ)
    if skip and (fail_on is FailOn.ATTENTION or audit):
        asked = "--audit" if audit else "--fail-on attention"
        raise UsageError(
            f"{asked} needs the review gate, and it is off"
            + (" (--no-gate)" if no_gate else f" ({GATE_OFF}=off)"),
            hint="Drop --no-gate (or unset the variable), or use --fail-on changes.",
        )
    verdict = None if skip else review(before, after, audit=audit)
    if fmt is DiffFormat.JSON:
        out.print(json.dumps(diff_json(result, review=verdict), indent=2))
    elif fmt is DiffFormat.MARKDOWN:
        out.print(render_markdown(result, expand=expand, review=verdict).rstrip("\n"))
    else:
        out.print(render_text(result, expand=expand, review=verdict).rstrip("\n"))
    changes = exit_code or fail_on is FailOn.CHANGES
    if changes and not result.empty:
        raise typer.Exit(int(ExitCode.CHECK_FAILED))
    if fail_on is FailOn.ATTENTION and verdict is not None and verdict.attention:
        raise typer.Exit(int(ExitCode.CHECK_FAILED))


@app.command(hidden=True)
def textconv(path: Annotated[Path, typer.Argument()]) -> None:
    """git textconv driver: print a lock as one line per package."""
    out.print(api.textconv(path).rstrip("\n"))


@app.command("git-setup")
def git_setup(
    uninstall: Annotated[bool, typer.Option(help="Remove the diff driver again.")] = False,
) -> None:
    """Make `git diff` and `git log -p` show pylock*.toml as one line per package.

    Registers a textconv diff driver in .git/config and a `pylock*.toml diff=envlock` line in
    .gitattributes. Idempotent; --uninstall reverses it.
    """
    command = f"{shlex.quote(sys.executable)} -m envlock textconv"
    result = api.git_setup(Path.cwd(), uninstall=uninstall, command=command)
    if result.installed:
        err.print(
            f"git diff driver 'envlock' registered in {result.root}/.git/config"
            + ("; added to .gitattributes." if result.changed else ".")
        )
    else:
        err.print(f"git diff driver 'envlock' removed from {result.root}.")
