"""The command line imports only the module of the command it runs (start-up is most of a short
command's time, issue 16), and every command is still there for --help and a typo."""

from __future__ import annotations

import pytest
import typer

import envlock.cli
from tests.unit.test_api_lazy import _fresh


def _loaded_after(*argv: str) -> list[str]:
    found = _fresh(
        f"""
        import contextlib, io, sys
        from envlock.cli import main
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                main({list(argv)!r})
            except SystemExit:
                pass
        print(" ".join(sorted(m for m in sys.modules if m.startswith("envlock.cli"))))
        """
    )
    return found.split()


@pytest.mark.parametrize(
    ("argv", "module"),
    [
        (("sync", "--help"), "sync"),
        (("--debug", "verify", "--help"), "sync"),
        (("lock", "--help"), "lock"),
        (("diff", "--help"), "review"),
        (("export", "--help"), "export"),
    ],
)
def test_a_command_loads_only_its_own_module(argv: tuple[str, ...], module: str) -> None:
    assert _loaded_after(*argv) == ["envlock.cli", "envlock.cli._app", f"envlock.cli.{module}"]


def test_the_root_help_and_an_unknown_command_load_every_command() -> None:
    every = sorted(
        {"envlock.cli", "envlock.cli._app"}
        | {f"envlock.cli.{m}" for m in envlock.cli.COMMANDS.values()}
    )
    assert _loaded_after("--help") == every
    assert _loaded_after("sycn") == every


def test_the_table_names_each_command_by_the_module_that_registers_it() -> None:
    group = typer.main.get_group(envlock.cli.app)  # every command registered
    found = {}
    for name, command in group.commands.items():
        callback = command.callback
        if isinstance(command, typer.core.TyperGroup) and not callback:
            callback = next(iter(command.commands.values())).callback  # export's subcommands
        assert callback is not None
        found[name] = callback.__module__.rsplit(".", 1)[-1]
    assert found == envlock.cli.COMMANDS


def test_help_lists_the_commands_in_the_users_order() -> None:
    text = _fresh(
        """
        import contextlib, io
        from envlock.cli import main
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            try:
                main(["--help"])
            except SystemExit:
                pass
        print(buf.getvalue())
        """
    )
    listed = [
        line.split()[0] for line in text.splitlines() if line.startswith("  ") and line.split()
    ]
    order = [name for name in envlock.cli.HELP_ORDER if name in listed]
    assert order == [name for name in listed if name in envlock.cli.HELP_ORDER]
    assert set(envlock.cli.COMMANDS) - {"textconv"} <= set(listed)
