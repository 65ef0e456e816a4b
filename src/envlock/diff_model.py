"""The typed change list of a lock diff (pure): what ``diff.diff_locks`` computes and
``diff_render`` renders. Callers import these names from ``envlock.diff``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


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
