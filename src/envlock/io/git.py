"""git look-ups for `envlock diff` and `envlock git-setup` (the one place that runs git)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from envlock.errors import MaterialiseError, UsageError
from envlock.io import proc


@dataclass(frozen=True, slots=True, kw_only=True)
class Blob:
    """A lock's text as git holds it; bytes that are not UTF-8 become U+FFFD, never an error
    (history cannot be fixed, and `git log -p` must keep working)."""

    text: str
    undecodable: bool = False  # some bytes were not UTF-8


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


def show(rev: str, path: str, cwd: Path) -> Blob | None:
    """The file at ``rev:path`` (path relative to the repository root), None if absent there."""
    if not is_revision(rev, cwd):
        raise UsageError(
            f"{rev!r} is not a git revision here",
            hint="Use a commit, branch or tag (HEAD, main, v1.2), or a path to a lock file.",
        )
    result = _git(["show", "--end-of-options", f"{rev}:{path}"], cwd)
    if result.returncode != 0:
        return None
    # proc decodes with replacement, so U+FFFD marks bytes that were not UTF-8 (a lock that
    # holds a real U+FFFD is warned about too: harmless, and proc hands out no bytes).
    text = result.stdout.removeprefix("\ufeff")  # a byte-order mark, as files.read_text drops
    return Blob(text=text, undecodable="\ufffd" in text)


def read_textconv_input(path: Path) -> Blob:
    """The file git hands a textconv driver (a blob it wrote out, or the work-tree file)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Blob(text="")
    except OSError as exc:
        raise MaterialiseError(
            f"cannot read {path}: {exc.strerror or exc}",
            hint="git passes the textconv driver a file to read; check that it is readable.",
        ) from exc
    try:
        return Blob(text=data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return Blob(text=data.decode("utf-8-sig", errors="replace"), undecodable=True)


def config_set(key: str, value: str, cwd: Path) -> None:
    result = _git(["config", "--local", key, value], cwd)
    if result.returncode != 0:
        raise UsageError(
            f"git config {key} failed: {result.stderr.strip()}",
            hint="Run it inside a git work tree you can write to.",
        )


def config_unset_section(section: str, cwd: Path) -> None:
    _git(["config", "--local", "--remove-section", section], cwd)
