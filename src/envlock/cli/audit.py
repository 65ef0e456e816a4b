"""envlock audit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from envlock.cli._app import OldLockOption, VariantOption, _lock_path, _with_variant, app, out
from envlock.errors import CheckFailed


@app.command()
def audit(
    lock_path: Annotated[
        Path, typer.Option("--lock", "-l", callback=_lock_path, help="The lock to audit.")
    ] = Path("pylock.toml"),
    _old_lock_path: OldLockOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    variant: VariantOption = None,
) -> None:
    """Are the locked versions yanked, or known to be vulnerable? Checks a whole lock now.

    Reads each package's index page (PEP 592 yanked files) and PyPI's JSON API (the
    `vulnerabilities` pip-audit reads; ENVLOCK_PYPI_JSON_URL for a mirror of it) for packages
    from public indexes (a private package's name is not sent to PyPI). A finding a reviewer
    checked is accepted in torchenv.toml's [review.accept] (vulnerable:ID for one advisory),
    bound to the artifact's sha256. Exit 0 when nothing needs attention, 1 otherwise.
    """
    from envlock.api.audit import audit as run_audit  # noqa: PLC0415
    from envlock.gate_render import review_json, text_lines  # noqa: PLC0415

    lock_path = _with_variant(lock_path, variant)
    review = run_audit(lock_path)
    if as_json:
        out.print(
            json.dumps({"schema": 1, "lock": str(lock_path), **review_json(review)}, indent=2)
        )
    else:
        out.print("\n".join(text_lines(review)))
    if review.attention:
        count = len(review.attention)
        raise CheckFailed(
            f"{count} finding{'s' if count != 1 else ''} in {lock_path} need attention",
            hint="Upgrade past a yanked or vulnerable version (envlock lock --upgrade-package "
            "NAME), or accept the finding after checking it: paste the line printed above "
            "into torchenv.toml's [review.accept].",
        )
