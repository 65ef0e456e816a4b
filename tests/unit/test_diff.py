"""envlock.diff: what changed between two locks, each kind from the smallest edit that makes it."""

from __future__ import annotations

from typing import Any

import pytest
from packaging.pylock import Pylock

from envlock.diff import ChangeKind, cuda_runtime_version, diff_locks, headline
from tests.unit.data import lock, meta, package, wheel

FAMILY = ("torch", "torchvision", "torchaudio")
PYPI = "https://pypi.org/simple"
FILES = "https://files.pythonhosted.org/packages"
TORCH_124 = "https://download.pytorch.org/whl/cu124"
TORCH_126 = "https://download.pytorch.org/whl/cu126"


def _six(version: str = "1.17.0", *, sha: str = "a" * 64, host: str = FILES, **extra: Any) -> Any:
    fields = {"index": PYPI, **extra}
    return package("six", version, wheel(f"{host}/six-{version}-py3-none-any.whl", sha), **fields)


def _torch(version: str, index: str) -> Any:
    url = f"{index}/torch-{version.replace('+', '%2B')}-cp311-cp311-manylinux_2_28_x86_64.whl"
    return package("torch", version, wheel(url), index=index)


BASE = _six()

# one edit per row -> the one change it must produce: (kind, name, old, new)
EDITS: dict[str, tuple[Any, Any, tuple[ChangeKind, str, str | None, str | None]]] = {
    "added": (None, BASE, (ChangeKind.ADDED, "six", None, "1.17.0")),
    "removed": (BASE, None, (ChangeKind.REMOVED, "six", "1.17.0", None)),
    "upgraded": (_six("1.16.0"), BASE, (ChangeKind.UPGRADED, "six", "1.16.0", "1.17.0")),
    "downgraded": (BASE, _six("1.16.0"), (ChangeKind.DOWNGRADED, "six", "1.17.0", "1.16.0")),
    "hash": (BASE, _six(sha="b" * 64), (ChangeKind.HASH_CHANGED, "six", "1.17.0", "1.17.0")),
    "index": (
        BASE,
        _six(index="https://mirror/simple"),
        (ChangeKind.INDEX_CHANGED, "six", PYPI, "https://mirror/simple"),
    ),
    "source-host": (
        BASE,
        _six(host="https://evil.example"),
        (ChangeKind.SOURCE_CHANGED, "six", "1.17.0", "1.17.0"),
    ),
    "source-label": (
        BASE,
        _six("1.17.0+evil"),
        (ChangeKind.SOURCE_CHANGED, "six", "1.17.0", "1.17.0+evil"),
    ),
    "marker": (
        BASE,
        _six(marker="sys_platform == 'linux'"),
        (ChangeKind.MARKER_CHANGED, "six", "(none)", 'sys_platform == "linux"'),
    ),
    "requires-python": (
        BASE,
        _six(**{"requires-python": ">=3.8"}),
        (ChangeKind.REQUIRES_PYTHON_CHANGED, "six", "(none)", ">=3.8"),
    ),
}


FILELOCK = package("filelock", "3.16.1", wheel(f"{FILES}/filelock-3.16.1-py3-none-any.whl"))


@pytest.mark.parametrize(("old", "new", "expected"), EDITS.values(), ids=EDITS.keys())
def test_each_edit_is_one_change(old: Any, new: Any, expected: tuple[Any, ...]) -> None:
    """Both locks hold filelock too; six (or its absence) is the only difference."""
    old_lock = lock(FILELOCK, *[old] if old else [])
    new_lock = lock(FILELOCK, *[new] if new else [])
    result = diff_locks(old_lock, new_lock, family=FAMILY)
    assert [(c.kind, c.name, c.old, c.new) for c in result.all_changes()] == [expected]
    security = {ChangeKind.SOURCE_CHANGED, ChangeKind.INDEX_CHANGED, ChangeKind.HASH_CHANGED}
    assert result.changes[0].security is (expected[0] in security)


def test_identical_locks_have_no_changes() -> None:
    result = diff_locks(lock(BASE), lock(BASE), family=FAMILY)
    assert result.empty
    assert headline(result) == "no changes"


def test_a_torch_build_that_follows_the_locks_variant_is_no_source_change() -> None:
    old = lock(
        _torch("2.6.0+cu124", TORCH_124), envlock=meta(variant="cu124", variant_index=TORCH_124)
    )
    new = lock(
        _torch("2.6.0+cu126", TORCH_126), envlock=meta(variant="cu126", variant_index=TORCH_126)
    )
    changes = diff_locks(old, new, family=FAMILY).all_changes()
    assert [(c.kind, c.name) for c in changes] == [
        (ChangeKind.VARIANT_CHANGED, ""),
        (ChangeKind.VARIANT_CHANGED, "torch"),
    ]
    assert "index" in changes[1].detail  # the new index is the one the new lock names


def test_a_torch_label_the_variant_does_not_explain_is_a_source_change() -> None:
    old = lock(_torch("2.6.0+cu126", TORCH_126), envlock=meta())
    new = lock(_torch("2.6.0+cu124", TORCH_126), envlock=meta())  # variant still cu126
    (change,) = diff_locks(old, new, family=FAMILY).all_changes()
    assert change.kind is ChangeKind.SOURCE_CHANGED
    assert "while the lock's variant stays cu126" in change.detail


@pytest.mark.parametrize(
    ("old", "new", "kind"),
    [
        ({"python": "3.11"}, {"python": "3.12"}, ChangeKind.PYTHON_CHANGED),
        (
            {"platforms": ("linux-x86_64",)},
            {"platforms": ("linux-x86_64", "macos-arm64")},
            ChangeKind.PLATFORMS_CHANGED,
        ),
        ({"variant": "cu124"}, {"variant": "cu126"}, ChangeKind.VARIANT_CHANGED),
    ],
)
def test_lock_level_changes(old: dict[str, Any], new: dict[str, Any], kind: ChangeKind) -> None:
    result = diff_locks(
        lock(BASE, envlock=meta(**old)), lock(BASE, envlock=meta(**new)), family=FAMILY
    )
    assert [(c.kind, c.name) for c in result.changes] == [(kind, "")]


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        (None, None, "no lock on either side"),
        (None, lock(BASE), "lock added"),
        (lock(BASE), None, "lock removed"),
        (lock(_six("1.16.0")), lock(BASE), "1 upgraded"),
    ],
)
def test_headline(old: Pylock | None, new: Pylock | None, line: str) -> None:
    assert headline(diff_locks(old, new, family=FAMILY)) == line


def test_cuda_runtime_changes_collapse_into_one_group() -> None:
    def cudnn(version: str) -> Any:
        url = f"{FILES}/nvidia_cudnn_cu12-{version}-py3-none-manylinux2014_x86_64.whl"
        return package("nvidia-cudnn-cu12", version, wheel(url), index=PYPI)

    def runtime(version: str) -> Any:
        url = f"{FILES}/nvidia_cuda_runtime_cu12-{version}-py3-none-manylinux2014_x86_64.whl"
        return package("nvidia-cuda-runtime-cu12", version, wheel(url), index=PYPI)

    old = lock(BASE, cudnn("9.1.0.70"), runtime("12.4.127"))
    new = lock(_six("1.16.0"), cudnn("9.5.1.17"), runtime("12.6.77"))
    result = diff_locks(old, new, family=FAMILY)
    assert [c.name for c in result.changes] == ["six"]
    assert result.runtime is not None
    assert (result.runtime.old_cuda, result.runtime.new_cuda) == ("12.4", "12.6")
    assert {c.name for c in result.runtime.changes} == {
        "nvidia-cudnn-cu12",
        "nvidia-cuda-runtime-cu12",
    }
    assert cuda_runtime_version(lock(BASE)) is None


# Equal as values, written differently: the diff skips equal packages, and these still differ.
RESPELLED = {
    "version": ({}, {"version": "1.17"}, ("six", "1.17.0", "1.17")),
    "requires-python": (
        {"requires-python": ">=3.8"},
        {"requires-python": ">=3.8.0"},
        ("six", ">=3.8", ">=3.8.0"),
    ),
}


@pytest.mark.parametrize(("old", "new", "expected"), RESPELLED.values(), ids=RESPELLED.keys())
def test_a_respelled_field_is_still_a_change(
    old: dict[str, Any], new: dict[str, Any], expected: tuple[str, str, str]
) -> None:
    six = wheel(f"{FILES}/six-1.17.0-py3-none-any.whl")
    before = lock(package("six", "1.17.0", six, index=PYPI, **old))
    fields = {"version": "1.17.0", **new}
    after = lock(package("six", fields.pop("version"), six, index=PYPI, **fields))
    result = diff_locks(before, after, family=FAMILY)
    assert [(c.name, c.old, c.new) for c in result.all_changes()] == [expected]


def test_identical_packages_are_no_change() -> None:
    result = diff_locks(lock(FILELOCK, BASE), lock(FILELOCK, _six()), family=FAMILY)
    assert result.empty
