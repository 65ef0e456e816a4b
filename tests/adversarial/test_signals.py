"""SIGTERM (docker stop, a cancelled CI job, kill) is handled like Ctrl-C: uv is stopped, the
temporaries are removed, the old lock or venv stays, and envlock says so (exit 143). Ctrl-C
works the same where SIGINT was inherited as ignored (a shell's background job, some CI)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from envlock.cli import _signal_handlers
from envlock.errors import InternalError
from envlock.io import proc
from tests.conftest import Cli
from tests.support.indexes import StandardIndexes
from tests.support.processes import (
    is_uv,
    kill_group,
    wait_for_descendant,
    wait_until_gone,
)
from tests.support.scenarios import synced_then_relocked
from tests.test_lock_e2e import write_spec

# Start envlock the way a CI runner's shell starts a background job: SIGINT ignored, which
# Python then leaves ignored (no KeyboardInterrupt) unless envlock asks for it.
_SIGINT_IGNORED = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.executable, [sys.executable, '-m', 'envlock', *sys.argv[1:]])"
)


@dataclass(frozen=True, slots=True)
class Case:
    sig: signal.Signals
    prefix: tuple[str, ...]  # how envlock is started
    code: int
    message: str


CASES = [
    pytest.param(Case(signal.SIGTERM, ("-m", "envlock"), 143, "error: terminated"), id="SIGTERM"),
    pytest.param(
        Case(signal.SIGINT, ("-c", _SIGINT_IGNORED), 130, "error: interrupted"),
        id="SIGINT-inherited-as-ignored",
    ),
]


def _wait_for_request(indexes: StandardIndexes, page: str, asked: int) -> None:
    deadline = time.monotonic() + 30
    while len([r for r in indexes.pypi_server.requests if r.startswith(page)]) == asked:
        assert time.monotonic() < deadline, f"uv never asked for {page}"
        time.sleep(0.02)


def _stop(run: subprocess.Popen[str], case: Case, uv: int) -> str:
    """Signal envlock while uv runs; returns its stderr. uv must be gone when envlock is."""
    try:
        run.send_signal(case.sig)
        _, stderr = run.communicate(timeout=60)
        wait_until_gone(uv, seconds=5)  # SIGKILLed by envlock: gone within moments
    finally:
        kill_group(uv)  # only on failure: never leave the test's own uv running
    assert run.returncode == case.code, (run.returncode, stderr)
    assert case.message in stderr
    assert "\nhint: " in stderr
    assert "Traceback" not in stderr
    return stderr


@pytest.mark.parametrize("case", CASES)
def test_a_signalled_sync_keeps_the_old_venv_and_leaves_nothing(
    fixture_env: Path,
    cli: Cli,
    indexes: StandardIndexes,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    case: Case,
) -> None:
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(tmp_path / "none"))
    saved = tmp_path / "saved"
    synced_then_relocked(fixture_env, cli, saved)
    private_tmp = tmp_path_factory.mktemp("tmpdir")
    env = {
        **os.environ,
        "ENVLOCK_CACHE_DIR": str(saved / "cold-cache"),
        "TMPDIR": str(private_tmp),
    }
    page = "/simple/transformers/files/"
    indexes.pypi_server.delay(page, 10)
    try:
        asked = len([r for r in indexes.pypi_server.requests if r.startswith(page)])
        run = subprocess.Popen(
            [sys.executable, *case.prefix, "sync", "--venv", ".venv"],
            cwd=fixture_env,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        uv = wait_for_descendant(run.pid, is_uv("pip sync"))
        _wait_for_request(indexes, page, asked)  # uv is stalled on the download
        _stop(run, case, uv)
    finally:
        indexes.pypi_server.delay(page, 0)
    old = cli("verify", "--venv", ".venv", "--lock", str(saved / "pylock.toml"))
    assert old.code == 0, old.stdout  # PATH is still the complete old venv
    assert not list(fixture_env.glob(".*envlock-*"))
    assert not list(private_tmp.glob("envlock-*"))
    assert cli("sync", "--venv", ".venv").code == 0  # and the next sync just works
    assert cli("verify", "--venv", ".venv").code == 0


@pytest.mark.parametrize("case", CASES)
def test_a_signalled_lock_keeps_the_old_lock_and_leaves_nothing(
    fixture_env: Path,
    cli: Cli,
    indexes: StandardIndexes,
    tmp_path_factory: pytest.TempPathFactory,
    case: Case,
) -> None:
    write_spec(fixture_env, packages='six = "*"')
    assert cli("lock").code == 0
    lock_path = fixture_env / "pylock.toml"
    before = lock_path.read_bytes()
    spec = fixture_env / "torchenv.toml"
    spec.write_text(spec.read_text().replace('six = "*"', 'six = "*"\ndatasets = "*"'))
    listing = sorted(p.name for p in fixture_env.iterdir())
    private_tmp = tmp_path_factory.mktemp("tmpdir")
    env = {
        **os.environ,
        "ENVLOCK_CACHE_DIR": str(tmp_path_factory.mktemp("cold-cache")),
        "TMPDIR": str(private_tmp),
    }
    page = "/simple/datasets/"
    indexes.pypi_server.delay(page, 10)
    try:
        asked = len([r for r in indexes.pypi_server.requests if r.startswith(page)])
        run = subprocess.Popen(
            [sys.executable, *case.prefix, "lock"],
            cwd=fixture_env,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        uv = wait_for_descendant(run.pid, is_uv("lock"))
        _wait_for_request(indexes, page, asked)
        _stop(run, case, uv)
    finally:
        indexes.pypi_server.delay(page, 0)
    assert lock_path.read_bytes() == before
    assert sorted(p.name for p in fixture_env.iterdir()) == listing
    assert not list(private_tmp.glob("envlock-*"))
    result = cli("lock")  # no stale file lock, no leftovers in the way
    assert result.code == 0, result.stderr
    assert b"datasets" in lock_path.read_bytes()


def _mine(signum: int, frame: object) -> None:
    """A handler of the caller's own (never called), which main must put back."""


def test_main_restores_the_signal_handlers_it_replaced(cli: Cli) -> None:
    # main sets handlers only in the main thread; elsewhere this test would prove nothing.
    assert threading.current_thread() is threading.main_thread()
    signals = (signal.SIGINT, signal.SIGTERM)
    saved = {s: signal.signal(s, _mine) for s in signals}
    try:
        with _signal_handlers():  # what main wraps itself in
            inside = {s: signal.getsignal(s) for s in signals}
        assert cli("--version").code == 0
        after = {s: signal.getsignal(s) for s in signals}
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    assert inside[signal.SIGINT] is signal.default_int_handler  # Ctrl-C: KeyboardInterrupt
    assert callable(inside[signal.SIGTERM]) and inside[signal.SIGTERM] is not _mine
    assert after == {signal.SIGINT: _mine, signal.SIGTERM: _mine}


_GRANDCHILD = 'sleep 60 & echo $! > "$1"; wait'  # a child whose own child holds the pipes


def test_a_timed_out_command_is_stopped_with_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild"
    started = time.monotonic()
    with pytest.raises(InternalError, match="did not finish"):
        proc.run(["sh", "-c", _GRANDCHILD, "sh", str(pid_file)], env=dict(os.environ), timeout=0.5)
    assert time.monotonic() - started < 10  # not held until the grandchild closes the pipes
    wait_until_gone(int(pid_file.read_text()), seconds=5)


# The child script says when proc.run waits on its command (inside its try block, where a
# signal must stop the command): signalling earlier would race subprocess.Popen instead.
_SAY_WHEN_WAITING = (
    "import subprocess, sys\n"
    "_communicate = subprocess.Popen.communicate\n"
    "def communicate(self, *args, **kwargs):\n"
    "    open(sys.argv[2], 'w').close()\n"
    "    return _communicate(self, *args, **kwargs)\n"
    "subprocess.Popen.communicate = communicate\n"
)


def _under_main(command: str, prelude: str = "", runner: str = "run") -> str:
    """A script that runs ``command`` (argv[1] is its file) through proc.run (or another of
    proc's runners), as main does."""
    echo = ", echo=print" if runner == "run_echoing" else ""
    return (
        f"{prelude}import os, sys; from envlock.cli import _signal_handlers; "
        f"from envlock.io.proc import {runner}\n"
        "with _signal_handlers():\n"
        f"    {runner}(['sh', '-c', {command!r}, 'sh', sys.argv[1]], env=dict(os.environ){echo})\n"
    )


def _wait_for_file(path: Path, what: str) -> str:
    deadline = time.monotonic() + 30
    while not path.exists() or (what and not path.read_text().strip()):
        assert time.monotonic() < deadline, f"{what or path.name} never appeared"
        time.sleep(0.02)
    return path.read_text()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_command_is_stopped_with_its_children(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """What envlock's main does on Ctrl-C or SIGTERM, in a process of its own."""
    pid_file, waiting = tmp_path / "grandchild", tmp_path / "waiting"
    script = _under_main(_GRANDCHILD, _SAY_WHEN_WAITING)
    python = subprocess.Popen(
        [sys.executable, "-c", script, str(pid_file), str(waiting)], stderr=subprocess.PIPE
    )
    sh = 0
    try:
        sh = wait_for_descendant(python.pid, lambda argv: argv[:2] == ["sh", "-c"])
        grandchild = int(_wait_for_file(pid_file, "the grandchild"))
        _wait_for_file(waiting, "")
        python.send_signal(sig)
        python.communicate(timeout=30)
        wait_until_gone(sh, seconds=5)
        wait_until_gone(grandchild, seconds=5)
    finally:
        if sh:
            kill_group(sh)  # only on failure; the grandchild is in sh's process group


# A signal that arrives the moment the command has started: subprocess.Popen has forked it,
# proc.run is not yet in the try block that stops it. The command's pid is written first, from
# this side: the command itself may be stopped before it could say anything.
_SIGTERM_AT_START = (
    "import os, pathlib, signal, subprocess, sys\n"
    "_init = subprocess.Popen.__init__\n"
    "def init(self, *args, **kwargs):\n"
    "    _init(self, *args, **kwargs)\n"
    "    pathlib.Path(sys.argv[2]).write_text(str(self.pid))\n"
    "    os.kill(os.getpid(), signal.SIGTERM)\n"
    "subprocess.Popen.__init__ = init\n"
)


@pytest.mark.parametrize("runner", ["run", "run_echoing"])
def test_a_signal_as_the_command_starts_still_stops_it(tmp_path: Path, runner: str) -> None:
    grandchild_file, started = tmp_path / "grandchild", tmp_path / "started"
    script = _under_main(_GRANDCHILD, _SIGTERM_AT_START, runner)
    python = subprocess.Popen(
        [sys.executable, "-c", script, str(grandchild_file), str(started)], stderr=subprocess.PIPE
    )
    sh = 0
    try:
        _, stderr = python.communicate(timeout=30)
        sh = int(started.read_text())
        wait_until_gone(sh, seconds=2)
        # sh may be stopped before it starts sleep; a sleep it did start went with its group
        grandchild = grandchild_file.read_text().strip() if grandchild_file.exists() else ""
        if grandchild:
            wait_until_gone(int(grandchild), seconds=2)
    finally:
        if sh:
            kill_group(sh)  # sh leads its own process group (start_new_session)
    assert b"Terminated" in stderr  # the signal held while sh started was raised, not lost
