"""Semantic diff of two locks (pure): two Pylocks in, a typed list of changes out.

Security-relevant changes come first: a change of who built a package or where its files
come from (a local version label no variant change of the lock explains, an artifact host that is
new to the package), a package that moved to another index, or an artifact that kept its file
name and version but changed its hash (republished or tampered).

This module compares (and gives git's textconv one lock as lines); the change model is
``diff_model``, the renderers ``diff_render``, both re-exported here: callers import from here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace

from packaging.pylock import Package, Pylock
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from envlock.diff_model import (
    _ORDER,
    SECURITY_KINDS,
    Change,
    ChangeKind,
    LockDiff,
    RuntimeGroup,
    _sort_key,
)
from envlock.diff_render import (
    JSON_SCHEMA_VERSION,
    diff_json,
    headline,
    render_markdown,
    render_text,
)
from envlock.family import CUDA_VERSION_PACKAGES, is_cuda_runtime
from envlock.lockfile import LockMeta, lock_meta
from envlock.urls import redact_to_host

__all__ = [
    "JSON_SCHEMA_VERSION",
    "SECURITY_KINDS",
    "Change",
    "ChangeKind",
    "LockDiff",
    "RuntimeGroup",
    "cuda_runtime_version",
    "diff_json",
    "diff_locks",
    "headline",
    "render_markdown",
    "render_summary",
    "render_text",
]


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


def _unchanged(old: Package, new: Package) -> bool:
    """Equal as values and as written: nothing _package_changes could report (most packages of
    two locks; comparing their artifacts' file names and hosts is most of a diff's time).
    Versions, markers and specifiers compare equal across spellings (1.0 == 1.0.0), which
    the changes name, so their text must match too."""
    return (
        old == new
        and str(old.version) == str(new.version)
        and str(old.marker) == str(new.marker)
        and str(old.requires_python) == str(new.requires_python)
    )


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
        elif before is not None and after is not None and not _unchanged(before, after):
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
