"""Semantic diff of two locks (pure): two Pylocks in, a typed list of changes out.

Security-relevant changes come first: a change of who built a package or where its files
come from (a local version label no variant change of the lock explains, an artifact host that is
new to the package), a package that moved to another index, or an artifact that kept its file
name and version but changed its hash (republished or tampered).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from packaging.pylock import Package, Pylock
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from envlock.family import CUDA_VERSION_PACKAGES, is_cuda_runtime
from envlock.lockfile import LockMeta, lock_meta
from envlock.urls import redact_to_host


class ChangeKind(StrEnum):
    SOURCE_CHANGED = "source-changed"
    INDEX_CHANGED = "index-changed"
    HASH_CHANGED = "hash-changed"
    VARIANT_CHANGED = "variant-changed"
    ADDED = "added"
    REMOVED = "removed"
    UPGRADED = "upgraded"
    DOWNGRADED = "downgraded"
    ARTIFACTS_CHANGED = "artifacts-changed"
    MARKER_CHANGED = "marker-changed"
    REQUIRES_PYTHON_CHANGED = "requires-python-changed"
    ENVIRONMENTS_CHANGED = "environments-changed"
    PLATFORMS_CHANGED = "platforms-changed"
    PYTHON_CHANGED = "python-changed"


SECURITY_KINDS = frozenset(
    {ChangeKind.SOURCE_CHANGED, ChangeKind.INDEX_CHANGED, ChangeKind.HASH_CHANGED}
)
_ORDER = list(ChangeKind)


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    kind: ChangeKind
    name: str  # package name, or "" for a lock-level change
    old: str | None = None
    new: str | None = None
    detail: str = ""

    @property
    def security(self) -> bool:
        return self.kind in SECURITY_KINDS

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "name": self.name,
            "old": self.old,
            "new": self.new,
            "detail": self.detail,
            "security": self.security,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeGroup:
    """The CUDA runtime packages (envlock.family.is_cuda_runtime) collapsed into one line."""

    old_cuda: str | None
    new_cuda: str | None
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class LockDiff:
    changes: tuple[Change, ...]  # security first, then by kind and name
    runtime: RuntimeGroup | None = None
    old_exists: bool = True
    new_exists: bool = True
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.changes and (self.runtime is None or not self.runtime.changes)

    def all_changes(self) -> tuple[Change, ...]:
        runtime = self.runtime.changes if self.runtime else ()
        return tuple(sorted((*self.changes, *runtime), key=_sort_key))


def _sort_key(change: Change) -> tuple[int, int, str]:
    # Security first, then lock-level changes (python, platforms, torch build), then packages.
    group = 0 if change.security else 1 if not change.name else 2
    return (group, _ORDER.index(change.kind), change.name)


def _key(package: Package, siblings: int) -> tuple[str, str]:
    # A name that appears once is matched by name alone, so a marker edit is a change of that
    # package rather than a remove + add; forked names are matched by marker too.
    return (package.name, str(package.marker or "") if siblings > 1 else "")


def _index(lock: Pylock | None) -> dict[tuple[str, str], Package]:
    if lock is None:
        return {}
    counts: dict[str, int] = {}
    for package in lock.packages:
        counts[package.name] = counts.get(package.name, 0) + 1
    return {_key(p, counts[p.name]): p for p in lock.packages}


def _label(package: Package) -> str:
    return str(package.version) if package.version is not None else "(no version)"


def _artifact_hashes(package: Package) -> dict[str, str]:
    result: dict[str, str] = {}
    for wheel in package.wheels or ():
        result[wheel.filename] = wheel.hashes.get("sha256", next(iter(wheel.hashes.values())))
    if package.sdist is not None:
        result[package.sdist.filename] = package.sdist.hashes.get(
            "sha256", next(iter(package.sdist.hashes.values()))
        )
    if package.archive is not None:
        result["(archive)"] = next(iter(package.archive.hashes.values()))
    return result


def _local(version: str | None) -> str:
    if version is None:
        return ""
    try:
        return Version(version).local or ""
    except InvalidVersion:
        return ""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Sides:
    """What the lock says around its packages: [tool.envlock] of each side, the torch family."""

    old: LockMeta | None
    new: LockMeta | None
    family: frozenset[str]

    @property
    def variant_changed(self) -> bool:
        return (
            self.old is not None and self.new is not None and self.old.variant != self.new.variant
        )

    def follows_variant(self, name: str, old_local: str, new_local: str) -> bool:
        """A torch-family build change the lock's own variant change explains: +cu124 -> +cu126
        with [tool.envlock] variant cu124 -> cu126 (no label: the build PyPI ships)."""
        if self.old is None or self.new is None or not self.variant_changed:
            return False
        return (
            canonicalize_name(name) in self.family
            and old_local in ("", self.old.variant)
            and new_local in ("", self.new.variant)
        )

    def names_index(self, index: str | None) -> bool:
        """Whether the new lock's [tool.envlock] names this index (its variant's or PyPI)."""
        if self.new is None or index is None:
            return False
        named = (self.new.variant_index, self.new.pypi_index)
        return index.rstrip("/") in {i.rstrip("/") for i in named if i}

    def unexplained(self, name: str) -> str:
        """Why a label change is not a variant change, for the change's detail."""
        if self.old is None or self.new is None:
            return "in a lock without [tool.envlock]"
        if canonicalize_name(name) not in self.family:
            return "on a package outside the torch family"
        if not self.variant_changed:
            return f"while the lock's variant stays {self.new.variant}"
        return f"but the lock's variant is {self.old.variant} -> {self.new.variant}"


_LOCAL = "(local path)"


def _host(location: str) -> str:
    return redact_to_host(location) or _LOCAL


def _artifact_hosts(package: Package) -> dict[str, str]:
    """Where each file (keyed as in _artifact_hashes) is fetched from: the host only, so no
    credentials or tokens."""
    places: dict[str, str | None] = {w.filename: w.url or w.path for w in package.wheels or ()}
    if package.sdist is not None:
        places[package.sdist.filename] = package.sdist.url or package.sdist.path
    for key, artifact in (("(archive)", package.archive), ("(vcs)", package.vcs)):
        if artifact is not None:
            places[key] = artifact.url or artifact.path
    if package.directory is not None:
        places["(directory)"] = package.directory.path
    return {key: _host(place) for key, place in places.items() if place}


def _source_change(name: str, old: Package, new: Package, sides: _Sides) -> Change | None:
    """Who built it (a local label no variant change explains) or where its files come from
    (a host none of its files came from before) changed: review before anything else."""
    reasons: list[str] = []
    old_local, new_local = _local(_label(old)), _local(_label(new))
    if old_local != new_local and not sides.follows_variant(name, old_local, new_local):
        reasons.append(
            f"build label {'+' + old_local if old_local else '(none)'} -> "
            f"{'+' + new_local if new_local else '(none)'} {sides.unexplained(name)}"
        )
    old_hosts, new_hosts = _artifact_hosts(old), _artifact_hosts(new)
    arrived = {f for f, host in new_hosts.items() if host not in old_hosts.values()}
    old_hashes, new_hashes = _artifact_hashes(old), _artifact_hashes(new)
    same = all(f in old_hashes and old_hashes[f] == new_hashes.get(f) for f in arrived)
    # A file now at a local path with bytes it had before is a bundled copy: nothing serves it.
    bundled = same and all(new_hosts[f] == _LOCAL for f in arrived)
    if arrived and not bundled:
        reasons.append(
            f"{'same bytes, ' if same else ''}files now from "
            f"{', '.join(sorted(set(new_hosts.values())))} "
            f"(were from {', '.join(sorted(set(old_hosts.values()))) or 'nowhere'})"
        )
    if not reasons:
        return None
    return Change(
        kind=ChangeKind.SOURCE_CHANGED,
        name=name,
        old=_label(old),
        new=_label(new),
        detail="; ".join(reasons),
    )


def _version_change(name: str, old: Package, new: Package, sides: _Sides) -> Change | None:
    # A label change the lock's variant change does not explain is a source change instead.
    old_v, new_v = _label(old), _label(new)
    if old_v == new_v:
        return None
    if _local(old_v) != _local(new_v):
        if not sides.follows_variant(name, _local(old_v), _local(new_v)):
            return None
        return Change(
            kind=ChangeKind.VARIANT_CHANGED,
            name=name,
            old=old_v,
            new=new_v,
            detail=f"build {_local(old_v) or 'PyPI'} -> {_local(new_v) or 'PyPI'}",
        )
    try:
        newer = Version(new_v) > Version(old_v)
    except InvalidVersion:
        newer = True
    kind = ChangeKind.UPGRADED if newer else ChangeKind.DOWNGRADED
    return Change(kind=kind, name=name, old=old_v, new=new_v)


def _package_changes(name: str, old: Package, new: Package, sides: _Sides) -> list[Change]:
    changes: list[Change] = []
    source = _source_change(name, old, new, sides)
    if source is not None:
        changes.append(source)
    version = _version_change(name, old, new, sides)
    # A lock that names no index (pip lock writes none) leaves it unknown: not a move. Where
    # the files come from is still compared, host by host (_source_change).
    moved = bool(old.index and new.index) and old.index != new.index
    rebuilt = version is not None and version.kind is ChangeKind.VARIANT_CHANGED
    if moved and version is not None and rebuilt and sides.names_index(new.index):
        # A new build (cu124 -> cu126) lives on its own index, the one the new lock names.
        version = replace(version, detail=f"{version.detail}; index {old.index} -> {new.index}")
    elif moved:
        changes.append(
            Change(kind=ChangeKind.INDEX_CHANGED, name=name, old=old.index, new=new.index)
        )
    if version is not None:
        changes.append(version)
    elif _label(old) == _label(new):  # (else: a label change, reported as the source change)
        old_hashes, new_hashes = _artifact_hashes(old), _artifact_hashes(new)
        changed = sorted(
            f for f in old_hashes.keys() & new_hashes.keys() if old_hashes[f] != new_hashes[f]
        )
        if changed:
            changes.append(
                Change(
                    kind=ChangeKind.HASH_CHANGED,
                    name=name,
                    old=_label(old),
                    new=_label(new),
                    detail=f"same version, different sha256 for {', '.join(changed)}",
                )
            )
        elif old_hashes.keys() != new_hashes.keys():
            added = sorted(new_hashes.keys() - old_hashes.keys())
            removed = sorted(old_hashes.keys() - new_hashes.keys())
            parts = [f"+{f}" for f in added] + [f"-{f}" for f in removed]
            changes.append(
                Change(
                    kind=ChangeKind.ARTIFACTS_CHANGED,
                    name=name,
                    old=_label(old),
                    new=_label(new),
                    detail=" ".join(parts),
                )
            )
    for kind, before, after in (
        (ChangeKind.MARKER_CHANGED, old.marker, new.marker),
        (ChangeKind.REQUIRES_PYTHON_CHANGED, old.requires_python, new.requires_python),
    ):
        if str(before or "") != str(after or ""):
            changes.append(
                Change(
                    kind=kind,
                    name=name,
                    old=str(before) if before else "(none)",
                    new=str(after) if after else "(none)",
                )
            )
    return changes


def _lock_level(old: Pylock | None, new: Pylock | None) -> list[Change]:
    if old is None or new is None:
        return []
    changes: list[Change] = []
    if str(old.requires_python or "") != str(new.requires_python or ""):
        changes.append(
            Change(
                kind=ChangeKind.REQUIRES_PYTHON_CHANGED,
                name="",
                old=str(old.requires_python or "") or None,
                new=str(new.requires_python or "") or None,
            )
        )
    old_env = sorted(str(m) for m in old.environments or ())
    new_env = sorted(str(m) for m in new.environments or ())
    if old_env != new_env:
        changes.append(
            Change(
                kind=ChangeKind.ENVIRONMENTS_CHANGED,
                name="",
                old="; ".join(old_env) or None,
                new="; ".join(new_env) or None,
            )
        )
    old_meta, new_meta = lock_meta(old), lock_meta(new)
    if old_meta is not None and new_meta is not None:
        if old_meta.variant != new_meta.variant:
            changes.append(
                Change(
                    kind=ChangeKind.VARIANT_CHANGED,
                    name="",
                    old=old_meta.variant,
                    new=new_meta.variant,
                    detail=f"torch build {old_meta.variant} -> {new_meta.variant}",
                )
            )
        if old_meta.platforms != new_meta.platforms:
            changes.append(
                Change(
                    kind=ChangeKind.PLATFORMS_CHANGED,
                    name="",
                    old=", ".join(old_meta.platforms),
                    new=", ".join(new_meta.platforms),
                )
            )
        if old_meta.python != new_meta.python:
            changes.append(
                Change(
                    kind=ChangeKind.PYTHON_CHANGED,
                    name="",
                    old=old_meta.python,
                    new=new_meta.python,
                )
            )
    return changes


def cuda_runtime_version(lock: Pylock | None) -> str | None:
    """The CUDA runtime major.minor a lock installs (from nvidia-cuda-runtime*/cuda-toolkit)."""
    if lock is None:
        return None
    for name in CUDA_VERSION_PACKAGES:
        for package in lock.packages:
            if package.name == name and package.version is not None:
                return f"{package.version.major}.{package.version.minor}"
    return None


def diff_locks(old: Pylock | None, new: Pylock | None, *, family: Collection[str]) -> LockDiff:
    """Compare two locks; ``None`` means the lock does not exist on that side.

    ``family`` names the torch-family packages (channel data, family.toml): only their local
    label may follow the lock's variant (+cu124 -> +cu126); any other label change is a
    change of source."""
    old_index, new_index = _index(old), _index(new)
    sides = _Sides(
        old=lock_meta(old) if old is not None else None,
        new=lock_meta(new) if new is not None else None,
        family=frozenset(canonicalize_name(n) for n in family),
    )
    changes: list[Change] = []
    for key in sorted(old_index.keys() | new_index.keys()):
        name = key[0]
        before, after = old_index.get(key), new_index.get(key)
        if before is None and after is not None:
            changes.append(
                Change(
                    kind=ChangeKind.ADDED, name=name, new=_label(after), detail=after.index or ""
                )
            )
        elif after is None and before is not None:
            changes.append(Change(kind=ChangeKind.REMOVED, name=name, old=_label(before)))
        elif before is not None and after is not None:
            changes += _package_changes(name, before, after, sides)
    changes += _lock_level(old, new)
    # Security changes are never collapsed into the CUDA-runtime line.
    runtime = [c for c in changes if is_cuda_runtime(c.name) and not c.security]
    others = [c for c in changes if c not in runtime]
    group = (
        RuntimeGroup(
            old_cuda=cuda_runtime_version(old),
            new_cuda=cuda_runtime_version(new),
            changes=tuple(sorted(runtime, key=_sort_key)),
        )
        if runtime
        else None
    )
    counts = _count(changes)
    return LockDiff(
        changes=tuple(sorted(others, key=_sort_key)),
        runtime=group,
        old_exists=old is not None,
        new_exists=new is not None,
        counts=counts,
    )


def _count(changes: Iterable[Change]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for change in changes:
        counts[change.kind.value] = counts.get(change.kind.value, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: _ORDER.index(ChangeKind(kv[0]))))


# --------------------------------------------------------------------------------------
# renderers (pure: a LockDiff in, text out)

_VERBS = {
    ChangeKind.SOURCE_CHANGED: "source changed",
    ChangeKind.INDEX_CHANGED: "index changed",
    ChangeKind.HASH_CHANGED: "hash changed",
    ChangeKind.VARIANT_CHANGED: "build changed",
    ChangeKind.ADDED: "added",
    ChangeKind.REMOVED: "removed",
    ChangeKind.UPGRADED: "upgraded",
    ChangeKind.DOWNGRADED: "downgraded",
    ChangeKind.ARTIFACTS_CHANGED: "files changed",
    ChangeKind.MARKER_CHANGED: "marker changed",
    ChangeKind.REQUIRES_PYTHON_CHANGED: "requires-python changed",
    ChangeKind.ENVIRONMENTS_CHANGED: "environments changed",
    ChangeKind.PLATFORMS_CHANGED: "platforms changed",
    ChangeKind.PYTHON_CHANGED: "python changed",
}


def _arrow(change: Change) -> str:
    if change.old is not None and change.new is not None:
        return f"{change.old} -> {change.new}"
    return change.new or change.old or ""


def _runtime_line(group: RuntimeGroup) -> str:
    cuda = ""
    if group.old_cuda != group.new_cuda:
        cuda = f" {group.old_cuda or 'none'} -> {group.new_cuda or 'none'}"
    elif group.new_cuda:
        cuda = f" {group.new_cuda}"
    count = len(group.changes)
    return f"CUDA runtime{cuda}: {count} package{'s' if count != 1 else ''}"


def headline(diff: LockDiff) -> str:
    if not diff.old_exists and not diff.new_exists:
        return "no lock on either side"
    if not diff.old_exists:
        return "lock added"
    if not diff.new_exists:
        return "lock removed"
    if diff.empty:
        return "no changes"
    parts = [f"{n} {ChangeKind(k).value}" for k, n in diff.counts.items()]
    return ", ".join(parts)


def render_text(diff: LockDiff, *, expand: bool = False) -> str:
    """A terminal table: one change per line, security first."""
    lines = [headline(diff)]
    rows: list[tuple[str, str, str, str]] = []
    for change in diff.changes:
        flag = "!" if change.security else " "
        rows.append((flag, _VERBS[change.kind], change.name or "(lock)", _arrow(change)))
        if change.detail and change.kind not in (ChangeKind.ADDED,):
            rows.append((" ", "", "", f"  {change.detail}"))
    if diff.runtime is not None:
        if expand:
            for change in diff.runtime.changes:
                rows.append((" ", _VERBS[change.kind], change.name, _arrow(change)))
        else:
            rows.append((" ", "collapsed", _runtime_line(diff.runtime), "(--expand to list)"))
    if rows:
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for row in rows:
            lines.append("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip())
    return "\n".join(lines) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(diff: LockDiff, *, expand: bool = False) -> str:
    """A PR comment: headline counts first, then a table; security changes flagged."""
    lines = [f"### envlock: {headline(diff)}", ""]
    security = [c for c in diff.changes if c.security]
    if security:
        lines += [
            f"> **{len(security)} security-relevant change(s)**: who built a package or "
            "where its files come from changed (build label, host), a package changed index, "
            "or an artifact changed its hash without a version change.",
            "",
        ]
    rows = list(diff.changes)
    if diff.runtime is not None and expand:
        rows += list(diff.runtime.changes)
    if rows or diff.runtime is not None:
        lines += ["| | change | package | old | new |", "|---|---|---|---|---|"]
        for change in rows:
            flag = "⚠️" if change.security else ""
            lines.append(
                f"| {flag} | {_VERBS[change.kind]} | {_md_escape(change.name or '(lock)')} | "
                f"{_md_escape(change.old or '')} | {_md_escape(change.new or '')} |"
            )
        if diff.runtime is not None and not expand:
            lines.append(f"| | collapsed | {_runtime_line(diff.runtime)} | | |")
    details = [c for c in rows if c.detail and c.kind is not ChangeKind.ADDED]
    if details:
        lines += ["", "<details><summary>details</summary>", ""]
        lines += [f"- `{c.name or '(lock)'}`: {_md_escape(c.detail)}" for c in details]
        lines += ["", "</details>"]
    return "\n".join(lines).rstrip() + "\n"


JSON_SCHEMA_VERSION = 1


def diff_json(diff: LockDiff) -> dict[str, Any]:
    """The stable JSON document `envlock diff --format json` prints (schema in the README)."""
    runtime: dict[str, Any] | None = None
    if diff.runtime is not None:
        runtime = {
            "old-cuda": diff.runtime.old_cuda,
            "new-cuda": diff.runtime.new_cuda,
            "changes": [c.to_json() for c in diff.runtime.changes],
        }
    return {
        "schema": JSON_SCHEMA_VERSION,
        "old-exists": diff.old_exists,
        "new-exists": diff.new_exists,
        "headline": headline(diff),
        "counts": dict(diff.counts),
        "changes": [c.to_json() for c in diff.changes],
        "cuda-runtime": runtime,
    }


# --------------------------------------------------------------------------------------
# textconv: one lock as sorted lines, for `git diff` (see `envlock git-setup`)


def render_summary(lock: Pylock) -> str:
    """One line per package: what git's textconv diffs line by line."""
    lines: list[str] = []
    meta = lock_meta(lock)
    if meta is not None:
        lines.append(
            f"# torch {meta.torch} {meta.variant}; python {meta.python}; "
            f"platforms {', '.join(meta.platforms)}"
        )
    for package in sorted(lock.packages, key=lambda p: (p.name, str(p.marker or ""))):
        hashes = _artifact_hashes(package)
        digest = ",".join(f"{h[:12]}" for _, h in sorted(hashes.items()))
        hosts = ",".join(sorted(set(_artifact_hosts(package).values())))
        where = f" from {hosts}" if hosts else ""
        marker = f" ; {package.marker}" if package.marker else ""
        lines.append(
            f"{package.name} {_label(package)} [{package.index or '-'}] {digest}{where}{marker}"
        )
    return "\n".join(lines) + "\n"
