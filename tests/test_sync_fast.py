"""sync's no-op fast path (envlock.io.sync_noop, envlock.__main__): answered before the command
line loads, and only when the full sync would also have had nothing to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from envlock.__main__ import _fast_sync_argv
from envlock.io import installed, sync_noop
from envlock.io import venv as venv_io
from envlock.io.sync_noop import FAST_KEY, unchanged
from envlock.spec_model import SPEC_FILENAME
from tests.conftest import Cli
from tests.test_sync import locked_env  # noqa: F401 - the fixture

LOCK = Path("pylock.toml")


def _envlock(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "envlock", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def _imported(stderr: str) -> set[str]:
    return {
        line.rsplit("|", 1)[-1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:")
    }


def test_a_no_op_sync_loads_no_command_line(locked_env: Path, cli: Cli) -> None:  # noqa: F811
    assert cli("sync", "--venv", ".venv").code == 0
    full = cli("sync", "--venv", ".venv")
    fast = _envlock("sync", "--venv", ".venv", cwd=locked_env)
    assert fast.returncode == 0, fast.stderr
    said = [line for line in fast.stderr.splitlines() if not line.startswith("import time:")]
    assert said == full.stderr.splitlines() == [".venv already matches pylock.toml (11 packages)."]
    modules = _imported(fast.stderr)
    assert "envlock.io.sync_noop" in modules
    # Nothing of the command line, the resolver or the lock parser: start-up is the cost.
    assert not {"typer", "click", "envlock.cli", "envlock.api", "packaging.pylock"} & modules


def test_the_fast_path_takes_only_the_plain_form() -> None:
    assert _fast_sync_argv(["sync", "--venv", ".venv"]) == (Path(".venv"), LOCK)
    assert _fast_sync_argv(["sync", "--venv=v", "-l", "x/pylock.toml"]) == (
        Path("v"),
        Path("x/pylock.toml"),
    )
    for argv in (
        ["sync"],
        ["sync", "--venv"],
        ["sync", "--venv", "--reinstall"],
        ["sync", "--venv", "v", "--reinstall"],
        ["sync", "--venv", "v", "--check-imports"],
        ["sync", "--conda", "p"],
        ["sync", "--venv", "a", "--venv", "b"],
        ["--debug", "sync", "--venv", "v"],
        ["verify", "--venv", "v"],
        ["sync", "--venv", "v", "--lock="],  # click: "" (a directory), the full sync's error
        ["sync", "--venv", "v", "-l=pylock.toml"],  # click: the path "=pylock.toml"
        ["sync", "--venv="],
        [],
    ):
        assert _fast_sync_argv(argv) is None, argv


def _site(venv: Path) -> Path:
    return next((venv / "lib").glob("python3.*")) / "site-packages"


@pytest.mark.parametrize(
    "change",
    [
        "lock edited",
        "spec edited",
        "file edited",
        "package added",
        "leftover of a killed sync",
        "foreign file at the top",
        "import check never ran",
        "no fast key (an older envlock)",
        "state file's count is not a number",
    ],
)
def test_any_doubt_goes_to_the_full_sync(  # noqa: PLR0912 - a branch per kind of doubt
    locked_env: Path,  # noqa: F811
    cli: Cli,
    change: str,
) -> None:
    args = ["sync", "--venv", ".venv"]
    if change == "import check never ran":
        args.append("--no-check-imports")
    assert cli(*args).code == 0
    venv = locked_env / ".venv"
    # (a venv whose packages were never import-checked is one the fast path cannot vouch for)
    assert unchanged(venv, locked_env / LOCK) == (None if "--no-check-imports" in args else 11)
    if change == "lock edited":
        with (locked_env / LOCK).open("a") as lock:
            lock.write("# reviewed\n")
    elif change == "spec edited":
        with (locked_env / "torchenv.toml").open("a") as spec:
            spec.write("\n# a comment\n")
    elif change == "file edited":
        (_site(venv) / "six" / "__init__.py").write_text("tampered = True\n")
    elif change == "package added":
        (_site(venv) / "extra-1.0.dist-info").mkdir()
    elif change == "leftover of a killed sync":
        (locked_env / "..venv.envlock-old").mkdir()  # io.venv.old_beside
    elif change == "foreign file at the top":
        (venv / "notes.txt").write_text("mine\n")
    elif change == "state file's count is not a number":
        marker = venv_io.read_marker(venv) or {}
        venv_io.write_marker(venv, {**marker, "packages": "abc"})
    elif change == "no fast key (an older envlock)":
        marker = venv_io.read_marker(venv) or {}
        venv_io.write_marker(venv, {k: v for k, v in marker.items() if k != FAST_KEY})
    if change != "state file's count is not a number":
        assert unchanged(venv, locked_env / LOCK) is None
    if change == "foreign file at the top":
        assert cli("sync", "--venv", ".venv").code != 0  # the full sync refuses, with reasons
        return
    if change == "state file's count is not a number":  # the count is not read from it
        assert unchanged(venv, locked_env / LOCK) == 11
        again = cli("sync", "--venv", ".venv")  # was: internal error, ValueError
        assert again.code == 0 and "already matches" in again.stderr, again.stderr
        return
    again = cli("sync", "--venv", ".venv")
    assert again.code == 0, again.stderr
    if change in ("file edited", "package added", "lock edited"):
        assert "already matches" not in again.stderr  # rebuilt
    # whatever the full sync did, it left a venv the fast path can vouch for
    assert unchanged(venv, locked_env / LOCK) == 11


def test_the_fast_paths_copies_stay_what_they_copy() -> None:
    """Written out to keep packaging and the spec parser out of the fast path: each must stay
    equal to what it copies."""
    assert sync_noop._SPEC_FILENAME == SPEC_FILENAME
    for name in ("Typing_Extensions", "nvidia.cublas__cu12", "zope-interface", "A", "a-_.b"):
        assert installed._canonical(name) == canonicalize_name(name)
