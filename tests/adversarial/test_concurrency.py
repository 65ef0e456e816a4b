"""Two envlock runs at once, and an output path that is a symlink."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.pylock import Pylock

from tests.conftest import Cli
from tests.support.indexes import StandardIndexes
from tests.test_lock_e2e import write_spec


def test_two_locks_at_once_take_turns(fixture_env: Path, indexes: StandardIndexes) -> None:
    write_spec(fixture_env, packages='six = "*"\nnumpy = "*"')
    env = dict(os.environ)
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "envlock", "lock"],
            cwd=fixture_env,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    messages = "".join(err for _, err in outputs)
    assert messages.count("Wrote") == 1  # the second waited, then found the lock fresh
    assert "up to date" in messages
    Pylock.from_dict(tomllib.loads((fixture_env / "pylock.toml").read_text()))


def test_a_symlinked_output_is_refused(fixture_env: Path, cli: Cli, tmp_path: Path) -> None:
    write_spec(fixture_env)
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    (fixture_env / "pylock.toml").symlink_to(target)
    result = cli("lock", "--upgrade")
    assert result.code == 7
    assert "symbolic link" in result.stderr
    assert target.read_text() == "keep me\n"
    assert (fixture_env / "pylock.toml").is_symlink()


def test_two_syncs_of_one_venv_at_once(fixture_env: Path, cli: Cli, tmp_path: Path) -> None:
    write_spec(fixture_env, packages='six = "*"')
    assert cli("lock").code == 0
    env = {**os.environ, "ENVLOCK_NVIDIA_SMI": str(tmp_path / "none")}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "envlock", "sync", "--venv", ".venv"],
            cwd=fixture_env,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert "already matches" in "".join(err for _, err in outputs)
    assert cli("verify", "--venv", ".venv").code == 0


SYMLINK_OUTPUTS = {
    "init": (("init", "--cuda", "cpu", "--force", "--path", "LINK"), "file"),
    "export-requirements": (("export", "requirements", "-o", "LINK"), "file"),
    "export-conda": (("export", "conda", "-o", "LINK"), "file"),
    "export-dockerfile": (("export", "dockerfile", "-o", "LINK"), "dir"),
    "bundle": (("bundle", "-o", "LINK"), "dir"),
    "sync": (("sync", "--venv", "LINK"), "dir"),
}


@pytest.mark.parametrize("command", sorted(SYMLINK_OUTPUTS))
def test_every_output_that_is_a_symlink_is_refused(
    command: str, fixture_env: Path, cli: Cli, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """An output path that is a symbolic link (to a file or a directory elsewhere) is refused:
    envlock neither follows it nor replaces it, and the target is untouched."""
    write_spec(fixture_env, packages='six = "*"')
    assert cli("lock").code == 0
    args, kind = SYMLINK_OUTPUTS[command]
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    if kind == "file":
        target = elsewhere / "precious.txt"
        target.write_text("keep me\n")
    else:
        target = elsewhere / "precious"
        target.mkdir()
        (target / "keep.txt").write_text("keep me\n")
    link = fixture_env / "LINK"
    link.symlink_to(target)
    before = sorted(p.name for p in fixture_env.iterdir())

    result = cli(*args)

    assert result.code == 7, result.stderr
    assert "symbolic link" in result.stderr
    assert "hint:" in result.stderr
    assert link.is_symlink()
    if kind == "file":
        assert target.read_text() == "keep me\n"
    else:
        assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in fixture_env.iterdir()) == before
