"""envlock.diff on locks other tools wrote: no `index` key, local artifacts."""

from __future__ import annotations

from typing import Any

import pytest

from envlock.diff import ChangeKind, diff_locks
from envlock.errors import LockfileError
from envlock.lockfile import parse_lock_text
from tests.unit.data import SHA, lock, package, wheel

PYPI = "https://pypi.org/simple"
FILES = "https://files.pythonhosted.org/packages"


def _pure(name: str = "six", version: str = "1.17.0", **extra: Any) -> dict[str, Any]:
    return package(name, version, wheel(f"{FILES}/{name}-{version}-py3-none-any.whl"), **extra)


def _foreign(*packages: dict[str, Any]) -> Any:
    return lock(*packages, **{"created-by": "pip", "requires-python": None})


def test_a_missing_index_is_unknown_not_a_change() -> None:
    """pip lock writes no `index`: against a lock that names one, nothing moved."""
    named = lock(_pure(index=PYPI))
    unnamed = _foreign(_pure())
    for old, new in ((named, unnamed), (unnamed, named)):
        result = diff_locks(old, new, family=("torch",))
        assert ChangeKind.INDEX_CHANGED not in {c.kind for c in result.all_changes()}


def test_a_real_index_move_is_still_a_change() -> None:
    moved = diff_locks(lock(_pure(index=PYPI)), lock(_pure(index="https://m/simple")), family=())
    assert [c.kind for c in moved.changes] == [ChangeKind.INDEX_CHANGED]


FILE_LOCK = f"""lock-version = "1.0"
created-by = "pip"

[[packages]]
name = "six"
version = "1.17.0"

[[packages.wheels]]
url = "file:///home/me/wheels/six-1.17.0-py2.py3-none-any.whl"
hashes = {{ sha256 = "{SHA}" }}

[[packages]]
name = "idna"
version = "3.0"

[[packages.wheels]]
path = "../elsewhere/idna-3.0-py3-none-any.whl"
hashes = {{ sha256 = "{SHA}" }}
"""


def test_review_reads_local_artifacts_that_installs_refuse() -> None:
    reviewed = parse_lock_text(FILE_LOCK, installs=False)
    assert [p.name for p in reviewed.packages] == ["six", "idna"]
    with pytest.raises(LockfileError, match="is not http"):
        parse_lock_text(FILE_LOCK)
