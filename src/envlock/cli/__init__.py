"""The command line: parse, call api, render, map errors to exit codes.

The only package that prints or exits. Data goes to stdout, messages and progress to stderr.
Each command lives in a module of its own (a thin translation of options into one api call);
this module is the entry point, and imports (so registers) only the one a run names.
"""

from __future__ import annotations

import importlib
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn

import typer
from typer.exceptions import TyperException

from envlock.cli import _app
from envlock.cli._app import _State, err
from envlock.errors import EnvlockError, ExitCode, Terminated, filesystem_error

# Each command, by the module whose import registers it on the app. A run imports only the
# module of the command it names (start-up is most of a short command's time: typer building
# every command, and what every command module imports); --help, no command or a name not
# here (a typo, for typer's error) import them all. tests/unit/test_cli_lazy.py holds this
# table to what the modules register.
COMMANDS = {
    "init": "init",
    "lock": "lock",
    "sync": "sync",
    "verify": "sync",
    "bundle": "bundle",
    "diff": "review",
    "audit": "audit",
    "git-setup": "review",
    "doctor": "doctor",
    "channels": "channels",
    "textconv": "review",
    "export": "export",
}

# `envlock --help` lists commands in the order of the user's loop.
HELP_ORDER = (
    "init",
    "lock",
    "sync",
    "verify",
    "bundle",
    "diff",
    "audit",
    "git-setup",
    "doctor",
    "channels",
    "textconv",
)


def load(argv: Sequence[str] | None = None) -> typer.Typer:
    """The app, with the command ``argv`` runs registered; every command when ``argv`` names
    none of them (or is None). The root's options are flags, so the first word that is not an
    option is the command."""
    name = next((arg for arg in argv if not arg.startswith("-")), None) if argv else None
    modules = [COMMANDS[name]] if name in COMMANDS else dict.fromkeys(COMMANDS.values())
    for module in modules:
        importlib.import_module(f"envlock.cli.{module}")
    _app.app.registered_commands.sort(
        key=lambda c: HELP_ORDER.index(c.name or (c.callback.__name__ if c.callback else ""))
    )
    return _app.app


def __getattr__(name: str) -> typer.Typer:
    """``envlock.cli.app``: the app with every command registered."""
    if name == "app":
        return load()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------------------
# entry point


def _interrupted(what: str = "interrupted", code: int = 128 + signal.SIGINT) -> NoReturn:
    err.print(f"error: {what}")
    err.print(
        "hint: nothing was half-written (locks, exports and venvs are replaced only when "
        "complete; a bundle resumes where it stopped). Run the command again.",
        markup=False,
    )
    sys.exit(code)


def _terminate(signum: int, frame: object) -> NoReturn:
    """SIGTERM: unwind like Ctrl-C, so uv is killed and temporaries removed on the way up."""
    del frame
    signal.signal(signum, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
    raise Terminated


@contextmanager
def _signal_handlers() -> Iterator[None]:
    """While main runs, SIGTERM raises Terminated and SIGINT KeyboardInterrupt, even where
    SIGINT was inherited as ignored (a background job of a CI runner's shell): either way the
    clean-up paths run. The previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (main() called from a worker thread)
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            # None: a handler installed outside Python, which cannot be put back; the default
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


def _clip(text: str, limit: int = 600) -> str:
    """Long lines (a 10 MB value quoted back) shortened in the middle, each line alone."""
    lines = []
    for line in text.splitlines() or [""]:
        lines.append(
            f"{line[: limit // 2]} … ({len(line):,} characters) … {line[-limit // 4 :]}"
            if len(line) > limit
            else line
        )
    return "\n".join(lines)


def _print_error(exc: EnvlockError) -> None:
    err.print(f"error: {_clip(exc.message)}", markup=False)
    if exc.detail:
        for line in exc.detail.splitlines():
            err.print(f"  {_clip(line)}", markup=False)
    if exc.hint:
        err.print(f"hint: {_clip(exc.hint)}", markup=False)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: the one place that turns exceptions into messages and exit codes."""
    with _signal_handlers():
        try:
            _main(argv)
        except Terminated:  # here, not in _main: it may arrive while _main handles another
            _interrupted("terminated", 128 + signal.SIGTERM)


def _main(argv: list[str] | None) -> None:
    try:
        # Without standalone mode, click returns (not raises) the code of a typer.Exit.
        args = sys.argv[1:] if argv is None else argv
        returned = load(args)(args=args, standalone_mode=False)
        if returned == 130:  # typer turns Ctrl-C into a returned 130
            _interrupted()
        if isinstance(returned, int) and returned:
            sys.exit(returned)
    except (EnvlockError, OSError) as exc:  # OSError: the OS refused what no layer mapped
        if _State.debug:
            traceback.print_exc()
        error = exc if isinstance(exc, EnvlockError) else filesystem_error(exc)
        _print_error(error)
        sys.exit(int(error.exit_code))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        _interrupted("aborted")
    except TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            err.print(exc.format_message(), markup=False)
            sys.exit(int(ExitCode.USAGE))
        err.print(f"error: {exc.format_message()}", markup=False)
        err.print("hint: run `envlock --help` or `envlock COMMAND --help`.", markup=False)
        sys.exit(int(ExitCode.USAGE))
    except KeyboardInterrupt:
        _interrupted()
    except Exception as exc:
        if _State.debug:
            traceback.print_exc()
        err.print(f"error: internal error: {type(exc).__name__}: {exc}", markup=False)
        err.print(
            "hint: this is a bug in envlock; re-run with --debug and report it.", markup=False
        )
        sys.exit(int(ExitCode.INTERNAL))
