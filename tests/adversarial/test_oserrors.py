"""The operating system refusing a write (read-only, no space, a name too long, a busy mount
point) is exit 8 with error: naming the path and a hint, never a traceback, and nothing lost.

Tests run as root in CI, where chmod cannot make anything read-only: the errors are injected
into os.replace / os.rename (Path.rename calls os.rename), except the name that is really too
long."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from envlock.errors import ExitCode, filesystem_error
from tests.conftest import Cli, Result, assert_refused
from tests.test_lock_e2e import write_spec

INJECTED = [
    pytest.param(errno.EROFS, "read-only", id="EROFS"),
    pytest.param(errno.ENOSPC, "TMPDIR", id="ENOSPC"),
    pytest.param(errno.EBUSY, "mount point", id="EBUSY"),
]


class Refusal:
    """os.rename and os.replace failing with one errno for the calls ``when`` picks, until
    ``stop()``; ``calls`` records the refused (source, target) pairs."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, code: int, when: Callable[[Path, Path], bool]
    ) -> None:
        self.calls: list[tuple[Path, Path]] = []
        self._on = True
        for name in ("rename", "replace"):
            real = getattr(os, name)

            def fake(src: Any, dst: Any, *args: Any, _real: Any = real, **kwargs: Any) -> None:
                source, target = Path(os.fspath(src)).absolute(), Path(os.fspath(dst)).absolute()
                if self._on and when(source, target):
                    self.calls.append((source, target))
                    raise OSError(code, os.strerror(code), str(source), None, str(target))
                _real(src, dst, *args, **kwargs)

            monkeypatch.setattr(os, name, fake)

    def stop(self) -> None:
        self._on = False


def _assert_filesystem_error(result: Result, path: Path | str, word: str) -> None:
    """Exit 8; error: names the path (as the user gave it); the hint has ``word``."""
    assert_refused(result, ExitCode.FILESYSTEM)
    assert str(path) in result.stderr.split("hint:")[0], result.stderr
    assert word in result.stderr.split("hint:")[1], result.stderr


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and ".venv" not in p.parts
    }


def test_a_lock_name_too_long_is_a_filesystem_error(fixture_env: Path, cli: Cli) -> None:
    write_spec(fixture_env)
    long_lock = fixture_env / f"pylock.{'x' * 260}.toml"
    result = cli("lock", "--lock", str(long_lock))
    _assert_filesystem_error(result, long_lock, "Shorten")
    assert sorted(p.name for p in fixture_env.iterdir()) == ["torchenv.toml"]


def test_an_export_name_too_long_is_a_filesystem_error(fixture_env: Path, cli: Cli) -> None:
    write_spec(fixture_env)
    assert cli("lock").code == 0
    before = _snapshot(fixture_env)
    long_output = fixture_env / f"{'r' * 300}.txt"
    result = cli("export", "requirements", "-o", str(long_output))
    _assert_filesystem_error(result, long_output, "Shorten")
    assert _snapshot(fixture_env) == before


@pytest.mark.parametrize(("code", "word"), INJECTED)
def test_a_refused_lock_write_keeps_the_old_lock(
    fixture_env: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, code: int, word: str
) -> None:
    write_spec(fixture_env, packages='six = "*"')
    assert cli("lock").code == 0
    write_spec(fixture_env, packages='six = "==1.16.0"')  # the lock must change
    lock = fixture_env / "pylock.toml"
    before = _snapshot(fixture_env)
    refusal = Refusal(monkeypatch, code, lambda _src, dst: dst == lock)
    result = cli("lock")
    assert refusal.calls, result.stderr
    _assert_filesystem_error(result, "error: cannot write pylock.toml", word)
    assert _snapshot(fixture_env) == before  # the old lock, and no temporary file


@pytest.mark.parametrize(("code", "word"), INJECTED)
def test_a_refused_export_keeps_the_old_export(
    fixture_env: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, code: int, word: str
) -> None:
    write_spec(fixture_env)
    assert cli("lock").code == 0
    output = fixture_env / "requirements.txt"
    output.write_text("# the previous export\n")
    before = _snapshot(fixture_env)
    refusal = Refusal(monkeypatch, code, lambda _src, dst: dst == output)
    result = cli("export", "requirements", "-o", str(output))
    assert refusal.calls, result.stderr
    _assert_filesystem_error(result, output, word)
    assert _snapshot(fixture_env) == before


@pytest.fixture
def synced(fixture_env: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A venv synced from a lock of six 1.16.0, then the lock moved on to six 1.17.0 (so the
    next sync builds a new venv and swaps it in). Returns the old lock's copy."""
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(tmp_path / "none"))
    write_spec(fixture_env, packages='six = "==1.16.0"')
    assert cli("lock").code == 0
    assert cli("sync", "--venv", ".venv").code == 0
    old_lock = tmp_path.parent / f"{tmp_path.name}-old-pylock.toml"
    old_lock.write_bytes((fixture_env / "pylock.toml").read_bytes())
    write_spec(fixture_env, packages='six = "*"')
    assert cli("lock").code == 0
    return old_lock


def _built_beside(path: Path, venv: Path) -> bool:
    """A directory sync built beside the venv (its name is sync's business: match loosely)."""
    return path.parent == venv.parent and path.name.startswith(f".{venv.name}.envlock-new")


@pytest.mark.parametrize(("code", "word"), INJECTED)
def test_a_refused_swap_keeps_the_old_venv(
    fixture_env: Path,
    cli: Cli,
    synced: Path,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    word: str,
) -> None:
    """The new venv cannot be moved to PATH: the old one is put back."""
    venv = fixture_env / ".venv"
    refusal = Refusal(monkeypatch, code, lambda src, dst: dst == venv and _built_beside(src, venv))
    result = cli("sync", "--venv", ".venv")
    assert refusal.calls, result.stderr
    _assert_filesystem_error(result, venv, word)
    refusal.stop()
    assert cli("verify", "--venv", ".venv", "--lock", str(synced)).code == 0
    assert not list(fixture_env.glob(".*envlock-*"))


def test_a_venv_that_is_a_mount_point_is_a_filesystem_error(
    fixture_env: Path, cli: Cli, synced: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mount point (a Docker volume) cannot be renamed away (EBUSY): said so, and kept."""
    venv = fixture_env / ".venv"
    refusal = Refusal(monkeypatch, errno.EBUSY, lambda src, _dst: src == venv)
    result = cli("sync", "--venv", ".venv")
    assert refusal.calls, result.stderr
    _assert_filesystem_error(result, venv, "not a mount point")
    refusal.stop()
    assert cli("verify", "--venv", ".venv", "--lock", str(synced)).code == 0
    assert not list(fixture_env.glob(".*envlock-*"))


def test_an_oserror_names_its_paths_and_says_what_to_do() -> None:
    rename = filesystem_error(OSError(errno.EXDEV, "Invalid cross-device link", "/a", None, "/b"))
    assert rename.message == "cannot move /a to /b: Invalid cross-device link"
    assert rename.exit_code == ExitCode.FILESYSTEM
    other = filesystem_error(OSError(errno.EIO, "Input/output error", "/x/pylock.toml"), "write")
    assert other.message == "cannot write /x/pylock.toml: Input/output error"
    assert other.hint  # errnos without their own hint still get one
