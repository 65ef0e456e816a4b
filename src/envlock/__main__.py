"""The entry point (`envlock`, `python -m envlock`).

A sync with nothing to do is answered here, before the command line (typer, every command's
module) is imported: see envlock.io.sync_noop. Everything else goes to envlock.cli.main.

``run`` (the console script and ``python -m envlock``) ends the process without the
interpreter's teardown, as mypy does (``mypy.util.hard_exit``): freeing every module and object
of a run that is over took ~16 ms of a `lock` (decision 56). ``main`` is the same without it,
for callers in a process that goes on.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

from envlock.errors import Terminated


def _fast_sync_argv(argv: list[str]) -> tuple[Path, Path] | None:
    """(venv, lock) for exactly `sync --venv PATH [--lock/-l LOCK]`, else None."""
    if not argv or argv[0] != "sync":
        return None
    options: dict[str, str] = {}
    rest = argv[1:]
    while rest:
        arg = rest.pop(0)
        # click reads `--lock=X` as X but `-l=X` as "=X": only the long forms take an `=`
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        key = "--lock" if name == "-l" else name
        if key not in ("--venv", "--lock") or key in options:
            return None
        if not eq:
            if not rest or rest[0].startswith("-"):
                return None
            value = rest.pop(0)
        if not value:  # an empty path is the full sync's error to give
            return None
        options[key] = value
    if "--venv" not in options:
        return None
    return Path(options["--venv"]), Path(options.get("--lock", "pylock.toml"))


def _fast_sync(argv: list[str]) -> bool:
    """True when this was a sync with nothing to do, said as the full sync says it."""
    paths = _fast_sync_argv(argv)
    if paths is None:
        return False
    venv_path, lock_path = paths
    try:
        from envlock.io.sync_noop import unchanged  # noqa: PLC0415 - only for a sync

        packages = unchanged(venv_path, lock_path)
    except Exception:  # any doubt: the full sync decides and reports
        return False
    if packages is None:
        return False
    sys.stderr.write(f"{venv_path} already matches {lock_path} ({packages} packages).\n")
    sys.stderr.flush()
    return True


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM while the fast path runs (it only reads: nothing to undo)."""
    del signum, frame
    raise Terminated


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    import signal  # noqa: PLC0415 - here: the module stays importable without side effects

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        if _fast_sync(args):
            return
    except (KeyboardInterrupt, Terminated) as stop:
        terminated = isinstance(stop, Terminated)
        what = "terminated" if terminated else "interrupted"
        sys.stderr.write(
            f"error: {what}\nhint: nothing was changed (a sync with nothing to do only "
            "reads). Run the command again.\n"
        )
        sys.exit(143 if terminated else 130)
    finally:
        signal.signal(signal.SIGTERM, previous)
    from envlock.cli import main as cli_main  # noqa: PLC0415 - the full command line

    cli_main(argv)


def run() -> NoReturn:
    """The console script: ``main``, then ``hard_exit`` with its code."""
    try:
        main()
    except SystemExit as exc:
        hard_exit(exc.code)
    hard_exit(0)


def hard_exit(code: str | int | None) -> NoReturn:
    """Exit with ``code`` (as SystemExit reads it) after the atexit handlers and a flush of
    stdout and stderr, skipping the interpreter's teardown. With a thread still alive, or an
    output that cannot be flushed (a closed pipe), this is a normal exit: Python's shutdown
    joins the threads and reports the pipe as it always did."""
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        sys.exit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # a message: printed, exit 1, as the interpreter does with SystemExit("...")
        sys.stderr.write(f"{code}\n")
        status = 1
    import atexit  # noqa: PLC0415 - loaded by the interpreter already
    import os  # noqa: PLC0415 - as atexit

    atexit._run_exitfuncs()  # what the teardown would have run (then forgotten: run once)
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        sys.exit(status)
    os._exit(status & 0xFF)  # the point: no teardown


if __name__ == "__main__":
    run()
