"""envlock diff, the git textconv driver and git-setup."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.pylock import Pylock

from envlock.api.project import SELECTION_FILES, load_channels
from envlock.errors import LockfileError, UsageError
from envlock.io import files
from envlock.lockfile import PackageTables, parse_lock_text
from envlock.spec import SPEC_FILENAME

if TYPE_CHECKING:
    from envlock.api.review_gate import GatePorts
    from envlock.diff import LockDiff
    from envlock.gate_render import Review

GITATTRIBUTES_LINE = "pylock*.toml diff=envlock"


@dataclass(frozen=True, slots=True, kw_only=True)
class LockSide:
    label: str  # what the user named: a path, HEAD:pylock.toml, …
    lock: Pylock | None  # None: no lock there (added or deleted between the sides)
    warnings: tuple[str, ...] = ()  # read, but not as written (bytes that are not UTF-8)
    spec_text: str | None = None  # torchenv.toml beside the lock, on the same side
    spec_label: str = SPEC_FILENAME
    base: Path | None = None  # where the lock's relative artifact paths start


def _repo_relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise UsageError(
            f"{path} is outside the git repository at {root}",
            hint="Pass both sides as files, or run envlock inside the repository.",
        ) from None


def _parse_side(
    text: str | None,
    label: str,
    side: str,
    *,
    undecodable: bool = False,
    seen: PackageTables | None = None,
) -> LockSide:
    if text is None:
        return LockSide(label=label, lock=None)
    if not undecodable:
        source = f"{label} ({side} side)"
        lock = parse_lock_text(text, source=source, installs=False, seen=seen)
        return LockSide(label=label, lock=lock)
    # History cannot be fixed: read what decodes, and say so (in the error too, if it fails).
    source = f"{label} ({side} side, not valid UTF-8)"
    lock = parse_lock_text(text, source=source, installs=False, seen=seen)
    warning = f"{label} ({side} side) is not valid UTF-8; read with U+FFFD for the bad bytes"
    return LockSide(label=label, lock=lock, warnings=(warning,))


def _from_file(path: Path, label: str, side: str, seen: PackageTables | None) -> LockSide:
    parsed = _parse_side(files.read_text(path), label, side, seen=seen)
    spec = path.parent / SPEC_FILENAME
    return replace(
        parsed,
        spec_text=files.read_text(spec) if spec.is_file() else None,
        spec_label=str(spec),
        base=path.parent,
    )


def read_side(
    arg: str | None,
    *,
    side: str,
    lock_path: Path,
    cwd: Path,
    seen: PackageTables | None = None,
) -> LockSide:
    """Resolve one side of a diff: a lock file, REV, or REV:path. Defaults: HEAD vs working tree.
    ``seen``: package tables the other side validated (envlock.lockfile.parse_lock_text)."""
    from envlock.io import git  # noqa: PLC0415 - see the module note

    def from_git(revision: str, path: str, label: str) -> LockSide:
        blob = git.show(revision, path, cwd)
        if blob is None:
            return LockSide(label=label, lock=None)
        parsed = _parse_side(blob.text, label, side, undecodable=blob.undecodable, seen=seen)
        spec_path = posixpath.join(posixpath.dirname(path), SPEC_FILENAME)
        spec = git.show(revision, spec_path, cwd)
        root = git.repo_root(cwd)
        return replace(
            parsed,
            spec_text=spec.text if spec is not None else None,
            spec_label=f"{revision}:{spec_path}",
            base=(root / posixpath.dirname(path)) if root is not None else None,
        )

    if arg is None and side == "new":
        return _from_file(lock_path, str(lock_path), side, seen)
    if arg is not None and (cwd / arg).is_file():
        return _from_file(cwd / arg, arg, side, seen)
    root = git.repo_root(cwd)
    rev = arg or "HEAD"
    if root is None:
        raise UsageError(
            f"{rev!r} is not a lock file, and {cwd} is not in a git repository",
            hint="Pass two lock files: envlock diff OLD.toml NEW.toml",
        )
    if ":" in rev and not git.is_revision(rev, cwd):
        revision, _, path = rev.partition(":")
        return from_git(revision, path, rev)
    if arg is not None and not git.is_revision(arg, cwd):
        raise UsageError(
            f"{arg!r} is neither a lock file nor a git revision",
            hint="Use a path (pylock.toml), a revision (HEAD, main) or REV:path.",
        )
    relative = _repo_relative(lock_path, root)
    return from_git(rev, relative, f"{rev}:{relative}")


def diff(
    old: str | None, new: str | None, *, lock_path: Path, cwd: Path | None = None
) -> tuple[LockSide, LockSide, LockDiff]:
    from envlock.diff import diff_locks  # noqa: PLC0415 - see the module note

    here = cwd or Path.cwd()
    seen: PackageTables = {}  # the sides share most package tables: each read once
    before = read_side(old, side="old", lock_path=lock_path, cwd=here, seen=seen)
    after = read_side(new, side="new", lock_path=lock_path, cwd=here, seen=seen)
    if before.lock is None and after.lock is None:
        raise UsageError(
            f"no lock at {before.label} nor at {after.label}",
            hint="Check the paths/revisions, or pass --lock for a lock with another name.",
        )
    # The torch family may carry the variant's local label (+cu126); no other package may.
    family = load_channels(SELECTION_FILES).family.names
    return before, after, diff_locks(before.lock, after.lock, family=family)


def review(
    before: LockSide,
    after: LockSide,
    *,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
    ports: GatePorts | None = None,
    audit: bool = False,
) -> Review:
    """The supply-chain gate on a diff's two sides (envlock.gate): what the new side's new
    artifacts run at start-up or install, fresh, yanked or drifted uploads; the accepts and
    cooldown of the torchenv.toml beside the new side; ``audit``: known vulnerabilities of
    the new versions too (PyPI's JSON API)."""
    from envlock.api.review_gate import AUDIT_KINDS, DIFF_KINDS, review_spec, run_gate  # noqa: PLC0415
    from envlock.gate_render import Review  # noqa: PLC0415

    if after.lock is None:
        return Review(checked=0)
    spec, note = review_spec(after.spec_text, after.spec_label)
    old_spec, _ = review_spec(before.spec_text, before.spec_label)
    return run_gate(
        before.lock,
        after.lock,
        spec=spec,
        old_spec=old_spec,
        base=after.base,
        environ=environ,
        now=now,
        ports=ports,
        kinds=DIFF_KINDS | AUDIT_KINDS if audit else DIFF_KINDS,
        notes=(note,) if note else (),
    )


def textconv(path: Path) -> str:
    """What git shows for a lock after `envlock git-setup`: one line per package."""
    from envlock.diff import render_summary  # noqa: PLC0415 - see the module note
    from envlock.io import git  # noqa: PLC0415 - see the module note

    # git must always be able to show the file: bytes that are not UTF-8 get a note, not an
    # error (git names a temporary file, so the note names only the lock's file name).
    blob = git.read_textconv_input(path)
    note = (
        f"# envlock: {path.name} is not valid UTF-8; undecodable bytes shown as U+FFFD\n"
        if blob.undecodable
        else ""
    )
    try:
        lock = parse_lock_text(blob.text, source=str(path), installs=False)
        return note + render_summary(lock)
    except LockfileError:
        return note + blob.text


@dataclass(frozen=True, slots=True, kw_only=True)
class GitSetupResult:
    root: Path
    changed: bool
    installed: bool


def git_setup(cwd: Path, *, uninstall: bool = False, command: str) -> GitSetupResult:
    """Register (or remove) the textconv diff driver for pylock*.toml. Idempotent."""
    from envlock.io import git  # noqa: PLC0415 - see the module note

    root = git.repo_root(cwd)
    if root is None:
        raise UsageError(f"{cwd} is not in a git repository", hint="Run it inside a git checkout.")
    attributes = root / ".gitattributes"
    lines = (files.read_text(attributes) or "").splitlines()
    present = GITATTRIBUTES_LINE in lines
    if uninstall:
        git.config_unset_section("diff.envlock", root)
        if present:
            kept = [line for line in lines if line != GITATTRIBUTES_LINE]
            files.write_atomic(attributes, "\n".join(kept) + ("\n" if kept else ""))
        return GitSetupResult(root=root, changed=present, installed=False)
    git.config_set("diff.envlock.textconv", command, root)
    if not present:
        files.write_atomic(attributes, "\n".join([*lines, GITATTRIBUTES_LINE]) + "\n")
    return GitSetupResult(root=root, changed=not present, installed=True)
