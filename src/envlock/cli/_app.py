"""The typer app, the shared options and the output streams every command uses."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from envlock import __version__, api
from envlock.errors import UsageError

if TYPE_CHECKING:
    from envlock.io.transfer import Transfer


app = typer.Typer(
    name="envlock",
    help=(
        "Reproducible, hash-pinned PyTorch environments.\n\n"
        "torchenv.toml names Python, torch, the CUDA build and your packages; `envlock lock` "
        "picks the matching PyTorch wheel index and writes a PEP 751 pylock.toml in which every "
        "artifact is pinned by sha256.\n\n"
        "Start with `envlock init`, then `envlock lock`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class _Stream:
    """Plain text to stdout or stderr, looked up at call time (so tests can capture it).

    rich is imported only to draw a spinner on an interactive terminal: start-up time matters
    for `envlock lock --check` in pre-commit hooks.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def _file(self) -> Any:
        return getattr(sys, self._name)

    @property
    def is_terminal(self) -> bool:
        isatty = getattr(self._file, "isatty", None)
        return bool(isatty and isatty())

    def print(self, text: str = "", *, markup: bool = False) -> None:
        del markup  # plain text always
        self._file.write(f"{text}\n")
        self._file.flush()

    def print_json(self, text: str) -> None:
        self.print(json.dumps(json.loads(text), indent=2))


err = _Stream("stderr")
out = _Stream("stdout")


class _State:
    debug = False


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"envlock {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show uv's command lines and tracebacks.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Show version."),
    ] = False,
) -> None:
    _State.debug = debug
    if debug:
        import logging  # noqa: PLC0415 - only with --debug

        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="debug: %(message)s")


@contextmanager
def _progress(message: str) -> Iterator[None]:
    if err.is_terminal:
        from rich.console import Console  # noqa: PLC0415 - only for a live terminal

        with Console(stderr=True).status(message, spinner="dots"):
            yield
    else:  # logs and CI: the api reports each real step, so stay quiet here
        yield


@contextmanager
def _download_progress(message: str) -> Iterator[Callable[[Transfer], None] | None]:
    """On a terminal, a live line for a sync: a spinner, then the downloads' bar with bytes,
    rate and time left (envlock.io.transfer); messages print above it. Logs and CI get None
    (each finished download is a line of its own there)."""
    if not err.is_terminal:
        yield None
        return
    from rich.console import Console  # noqa: PLC0415 - only for a live terminal
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        DownloadColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        redirect_stderr=True,
    ) as live:
        task = live.add_task(message, total=None)

        def show(moment: Transfer) -> None:
            live.update(
                task,
                description=f"Downloading {moment.finished}/{moment.started}",
                total=moment.total or None,
                completed=moment.done,
            )

        yield show


SpecOption = Annotated[
    Path,
    typer.Option("--spec", "-s", help="The spec to read.", show_default=True),
]
_OLD_O = "envlock.lock-path-from-o"


def _on_command_line(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def _lock_and_old_o() -> UsageError:
    return UsageError(
        "--lock/-l and -o both name the lock path",
        hint="Pass the lock once, with --lock/-l (-o for the lock path is deprecated).",
    )


def _old_o(ctx: typer.Context, value: Path | None) -> None:
    """-o named the lock path of lock, diff and doctor before it meant the output everywhere:
    kept for one release, with a warning; _lock_path hands the value on."""
    if value is None:
        return
    err.print("warning: -o for the lock path is deprecated; use --lock/-l")
    if _on_command_line(ctx, "lock_path"):  # --lock came first on the command line
        raise _lock_and_old_o()
    ctx.meta[_OLD_O] = value


def _lock_path(ctx: typer.Context, param: typer.CallbackParam, value: Path | None) -> Path | None:
    # click processes what the command line names first, in its order: -o before a default.
    old = ctx.meta.get(_OLD_O)
    if old is None:
        return value
    if param.name and _on_command_line(ctx, param.name):
        raise _lock_and_old_o()
    return Path(old)


OldLockOption = Annotated[
    Path | None, typer.Option("-o", hidden=True, expose_value=False, callback=_old_o)
]
LockOption = Annotated[
    Path | None,
    typer.Option(
        "--lock",
        "-l",
        callback=_lock_path,
        help="The lock to write or check (pylock.toml or pylock.<name>.toml). "
        "Default: pylock.toml beside the spec.",
    ),
]


LockPathOption = Annotated[Path, typer.Option("--lock", "-l", help="The lock to materialise.")]
ForceOption = Annotated[
    bool,
    typer.Option(
        "--force", help="Overwrite output files envlock did not write (never the lock or spec)."
    ),
]
VariantOption = Annotated[
    str | None,
    typer.Option(help="Use pylock.<variant>.toml (a [variants.<name>] of torchenv.toml)."),
]


def _with_variant(lock_path: Path, variant: str | None) -> Path:
    return api.variant_lock(lock_path, variant) if variant else lock_path
