"""Find the processes a test's envlock started, through /proc (Linux), and stop only those.

Tests use these instead of name patterns (pkill -f), which could hit anyone's processes."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

_PROC = Path("/proc")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, or None when it is gone."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()  # the name in (…) may hold spaces and parentheses
    return fields[0], int(fields[1])


def argv_of(pid: int) -> list[str]:
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, their children, …)."""
    parents: dict[int, int] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = stat[1]
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def wait_for_descendant(
    pid: int, matches: Callable[[list[str]], bool], seconds: float = 30.0
) -> int:
    """The pid of a process below ``pid`` whose argv ``matches``, once one runs."""
    deadline = time.monotonic() + seconds
    while True:
        for child in sorted(descendants(pid)):
            if matches(argv_of(child)):
                return child
        assert time.monotonic() < deadline, f"no matching process appeared below {pid}"
        time.sleep(0.02)


def is_gone(pid: int) -> bool:
    """Exited: no such process, or a zombie waiting for its parent to reap it."""
    stat = _stat(pid)
    return stat is None or stat[0] in {"Z", "X"}


def wait_until_gone(pid: int, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not is_gone(pid):
        assert time.monotonic() < deadline, f"process {pid} is still running"
        time.sleep(0.02)


def kill_group(pid: int) -> None:
    """SIGKILL the process group a test found (envlock starts each child as its own group)."""
    if not is_gone(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def is_uv(name: str) -> Callable[[list[str]], bool]:
    """A matcher for the uv subcommand ``name`` ("lock", "pip sync"), whatever uv's path."""
    words = name.split()

    def matches(argv: list[str]) -> bool:
        return bool(argv) and Path(argv[0]).name == "uv" and argv[1 : 1 + len(words)] == words

    return matches
