"""sync's dependency check: every installed package's requirements are installed, checked in
process from the installed metadata (no `uv pip check` process)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from envlock.errors import ExitCode
from tests.conftest import Cli, assert_refused
from tests.test_sync import locked_env  # noqa: F401 - the fixture


def _drop_package(lock: Path, name: str) -> None:
    """A lock edited by hand: one package's table removed (its dependents still need it)."""
    text = lock.read_text()
    blocks = re.split(r"(?=^\[\[packages\]\]$)", text, flags=re.M)
    kept = [b for b in blocks if not re.search(rf'^name = "{name}"$', b, re.M)]
    assert len(kept) == len(blocks) - 1
    lock.write_text("".join(kept))


def test_a_lock_missing_a_dependency_is_refused_and_nothing_changes(
    locked_env: Path,  # noqa: F811
    cli: Cli,
) -> None:
    _drop_package(locked_env / "pylock.toml", "mpmath")  # sympy requires it
    result = cli("sync", "--venv", ".venv")
    assert_refused(result, ExitCode.MATERIALISE)
    assert "unmet dependencies" in result.stderr
    assert re.search(r"sympy.*requires.*mpmath", result.stderr), result.stderr
    assert not (locked_env / ".venv").exists()
    assert not list(locked_env.glob(".*envlock-new*"))


def test_the_check_runs_no_process(
    locked_env: Path,  # noqa: F811
    cli: Cli,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG):
        assert cli("--debug", "sync", "--venv", ".venv").code == 0
    ran = [r.getMessage() for r in caplog.records if r.getMessage().startswith("run:")]
    assert any(" pip sync " in line for line in ran), ran
    assert not [line for line in ran if " pip check " in line]
