"""Files envlock writes: atomic, and with the permissions any other tool would give them."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from envlock.errors import FilesystemError
from envlock.io import files
from tests.conftest import Cli
from tests.test_lock_e2e import write_spec


@pytest.fixture
def umask() -> Iterator[None]:
    """Whatever a test sets with os.umask is undone afterwards."""
    before = os.umask(0o022)  # the umask can only be read by setting it
    try:
        yield
    finally:
        os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    ("mask", "expected"),
    [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)],
    ids=["022", "077", "002"],
)
def test_a_new_file_gets_the_umask_mode(
    tmp_path: Path, umask: None, mask: int, expected: int
) -> None:
    os.umask(mask)
    files.write_atomic(tmp_path / "out.txt", "text\n")
    assert _mode(tmp_path / "out.txt") == expected


def test_an_existing_file_keeps_its_mode(tmp_path: Path, umask: None) -> None:
    os.umask(0o022)
    path = tmp_path / "out.txt"
    path.write_text("old\n")
    path.chmod(0o640)
    files.write_atomic(path, "new\n")
    assert _mode(path) == 0o640
    assert path.read_text() == "new\n"


def test_a_failed_write_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(FilesystemError):
        files.write_atomic(tmp_path / "out.txt", "text\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600)], ids=["022", "077"])
def test_lock_export_and_bundle_files_follow_the_umask(
    fixture_env: Path, cli: Cli, umask: None, mask: int, expected: int
) -> None:
    os.umask(mask)
    write_spec(fixture_env, vision=False)
    assert cli("lock").code == 0
    assert cli("export", "requirements", "-o", "requirements.txt").code == 0
    assert cli("export", "dockerfile", "-o", "docker").code == 0
    bundled = cli("bundle", "-o", "bundle")
    assert bundled.code == 0, bundled.stderr
    written = [
        fixture_env / "pylock.toml",
        fixture_env / "requirements.txt",
        *(p for p in (fixture_env / "docker").iterdir() if p.is_file()),
        fixture_env / "bundle" / "pylock.toml",
        fixture_env / "bundle" / "manifest.json",
        *(fixture_env / "bundle" / "wheels").iterdir(),
    ]
    assert {p.relative_to(fixture_env).as_posix(): _mode(p) for p in written} == {
        p.relative_to(fixture_env).as_posix(): expected for p in written
    }
