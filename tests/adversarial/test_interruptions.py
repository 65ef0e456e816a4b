"""A sync killed half-way leaves the old venv (or the new one) at PATH, never a half one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.support.indexes import StandardIndexes
from tests.support.processes import is_uv, kill_group, wait_for_descendant, wait_until_gone
from tests.support.scenarios import synced_then_relocked
from tests.test_lock_e2e import write_spec


def _wait_for(directory: Path, pattern: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not list(directory.glob(pattern)):
        assert time.monotonic() < deadline, f"{directory / pattern} never appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_sync_keeps_the_old_venv(
    fixture_env: Path,
    cli: Cli,
    indexes: StandardIndexes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sig: signal.Signals,
) -> None:
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(tmp_path / "none"))
    saved = tmp_path / "saved"
    synced_then_relocked(fixture_env, cli, saved)
    env = {**os.environ, "ENVLOCK_CACHE_DIR": str(saved / "cold-cache")}
    indexes.pypi_server.delay("/simple/transformers/files/", 5)
    try:
        asked = len(indexes.pypi_server.requests)
        run = subprocess.Popen(
            [sys.executable, "-m", "envlock", "sync", "--venv", ".venv"],
            cwd=fixture_env,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_for(fixture_env, "..venv.envlock-new*/bin/python")
        uv = wait_for_descendant(run.pid, is_uv("pip sync"))
        deadline = time.monotonic() + 30
        while not any(
            r.startswith("/simple/transformers/files/")
            for r in indexes.pypi_server.requests[asked:]
        ):
            assert time.monotonic() < deadline, "uv never asked for the stalled download"
            time.sleep(0.05)
        run.send_signal(sig)
        run.communicate(timeout=60)
        kill_group(uv)  # SIGKILL: uv, in its own session, lives on; stop the one found above
        wait_until_gone(uv)
    finally:
        indexes.pypi_server.delay("/simple/transformers/files/", 0)
    assert run.returncode != 0
    # PATH is still the complete old venv.
    old = cli("verify", "--venv", ".venv", "--lock", str(saved / "pylock.toml"))
    assert old.code == 0, old.stdout
    # The next sync cleans up and finishes the job.
    assert cli("sync", "--venv", ".venv").code == 0
    assert cli("verify", "--venv", ".venv").code == 0
    assert not list(fixture_env.glob(".*envlock-*"))


def test_a_swap_cut_short_is_undone(
    fixture_env: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between the two renames: PATH is missing, the old venv waits beside it."""
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(tmp_path / "none"))
    write_spec(fixture_env, packages='six = "*"')
    assert cli("lock").code == 0
    assert cli("sync", "--venv", ".venv").code == 0
    (fixture_env / ".venv").rename(fixture_env / "..venv.envlock-old")
    result = cli("sync", "--venv", ".venv")
    assert result.code == 0
    assert "already matches" in result.stderr  # the old venv came back, complete
    assert not (fixture_env / "..venv.envlock-old").exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_lock_keeps_the_old_lock(
    fixture_env: Path,
    cli: Cli,
    indexes: StandardIndexes,
    tmp_path_factory: pytest.TempPathFactory,
    sig: signal.Signals,
) -> None:
    """Killed while uv is resolving (the fixture PyPI stalls a page): the previous lock is
    byte-identical, nothing else is left in the project, and the next lock just works."""
    write_spec(fixture_env, packages='six = "*"')
    assert cli("lock").code == 0
    lock_path = fixture_env / "pylock.toml"
    before = lock_path.read_bytes()
    listing = sorted(p.name for p in fixture_env.iterdir())
    spec = fixture_env / "torchenv.toml"
    spec.write_text(spec.read_text().replace('six = "*"', 'six = "*"\ndatasets = "*"'))
    env = {**os.environ, "ENVLOCK_CACHE_DIR": str(tmp_path_factory.mktemp("cold-cache"))}
    page = "/simple/datasets/"
    indexes.pypi_server.delay(page, 5)
    try:
        asked = len([r for r in indexes.pypi_server.requests if r == page])
        run = subprocess.Popen(
            [sys.executable, "-m", "envlock", "lock"],
            cwd=fixture_env,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        uv = wait_for_descendant(run.pid, is_uv("lock"))
        deadline = time.monotonic() + 30
        while len([r for r in indexes.pypi_server.requests if r == page]) == asked:
            assert time.monotonic() < deadline, "uv never asked for the stalled page"
            time.sleep(0.05)
        run.send_signal(sig)
        _, stderr = run.communicate(timeout=60)
        kill_group(uv)  # SIGKILL: uv, in its own session, lives on; stop the one found above
        wait_until_gone(uv)
    finally:
        indexes.pypi_server.delay(page, 0)
    assert run.returncode != 0
    if sig is signal.SIGINT:
        assert run.returncode == 130, (run.returncode, stderr)
        assert "error: interrupted" in stderr
        assert "Traceback" not in stderr
    assert lock_path.read_bytes() == before
    assert sorted(p.name for p in fixture_env.iterdir()) == listing
    result = cli("lock")  # no stale file lock, no leftovers in the way
    assert result.code == 0, result.stderr
    assert b"datasets" in lock_path.read_bytes()
