"""git look-ups for `envlock diff` and `envlock git-setup` (the one place that runs git)."""

from __future__ import annotations

import os
from pathlib import Path

from envlock.errors import UsageError
from envlock.io import proc


def _git(args: list[str], cwd: Path) -> proc.Completed:
    # git keeps the user's environment (HOME, GIT_* settings): it reads, never resolves.
    return proc.run(["git", *args], cwd=cwd, env=dict(os.environ), timeout=60)


def repo_root(cwd: Path) -> Path | None:
    result = _git(["rev-parse", "--show-toplevel"], cwd)
    if result.returncode != 0:
        return None
    return Path(result.stdout.strip())


def is_revision(rev: str, cwd: Path) -> bool:
    if rev.startswith("-"):  # never let a "revision" become an option of git
        return False
    result = _git(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"], cwd
    )
    return result.returncode == 0


def show(rev: str, path: str, cwd: Path) -> str | None:
    """The file at ``rev:path`` (path relative to the repository root), None if absent there."""
    if not is_revision(rev, cwd):
        raise UsageError(
            f"{rev!r} is not a git revision here",
            hint="Use a commit, branch or tag (HEAD, main, v1.2), or a path to a lock file.",
        )
    result = _git(["show", "--end-of-options", f"{rev}:{path}"], cwd)
    if result.returncode != 0:
        return None
    return result.stdout


def config_set(key: str, value: str, cwd: Path) -> None:
    result = _git(["config", "--local", key, value], cwd)
    if result.returncode != 0:
        raise UsageError(
            f"git config {key} failed: {result.stderr.strip()}",
            hint="Run it inside a git work tree you can write to.",
        )


def config_unset_section(section: str, cwd: Path) -> None:
    _git(["config", "--local", "--remove-section", section], cwd)
