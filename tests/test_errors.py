"""Every exception envlock raises on purpose is an EnvlockError with an exit code."""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import pkgutil
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import envlock
from envlock import _toml, errors
from envlock.errors import EnvlockError, ExitCode

README = Path(__file__).resolve().parents[1] / "README.md"

# Raised on purpose although not EnvlockErrors, each for a reason. A stale entry fails the
# test too, so this list only shrinks when the code changes.
ALLOWED: dict[tuple[str, str], str] = {
    # SIGTERM's stand-in for KeyboardInterrupt: a BaseException so nothing swallows it.
    ("envlock.cli", "Terminated"): "turned into exit 143 by cli.main",
    ("envlock.__main__", "Terminated"): "turned into exit 143 by the sync no-op fast path",
    # typer's own control flow for an exit status, inside the CLI boundary.
    ("envlock.cli._app", "Exit"): "typer.Exit: --version",
    ("envlock.cli.doctor", "Exit"): "typer.Exit: exit 1 when the host does not suit",
    ("envlock.cli.review", "Exit"): "typer.Exit: diff --exit-code",
    ("envlock.cli.sync", "Exit"): "typer.Exit: verify found drift",
    # The parser's own error, so every caller's `except _toml.DECODE_ERRORS` maps it.
    ("envlock._toml", "TOMLDecodeError"): "re-raised RecursionError as the TOML error",
    # PEP 562: a module's __getattr__ must raise AttributeError for a name it does not have.
    ("envlock.api", "AttributeError"): "envlock.api's lazy __getattr__",
    ("envlock.cli", "AttributeError"): "envlock.cli's __getattr__ (the app, every command loaded)",
}


def _modules() -> list[ModuleType]:
    names = [m.name for m in pkgutil.walk_packages(envlock.__path__, "envlock.")]
    return [importlib.import_module(n) for n in ["envlock", *names]]


def _trees() -> Iterator[tuple[ModuleType, ast.AST]]:
    for module in _modules():
        yield module, ast.parse(inspect.getsource(module))


def _resolve(module: ModuleType, node: ast.expr) -> object:
    """What a name (``X``, ``pkg.X``) in ``module`` is: a module attribute or a builtin."""
    if isinstance(node, ast.Name):
        return getattr(module, node.id, getattr(builtins, node.id, None))
    if isinstance(node, ast.Attribute):
        owner = _resolve(module, node.value)
        return getattr(owner, node.attr, None) if owner is not None else None
    return None


def _raised_classes(module: ModuleType, exc: ast.expr) -> Iterator[type]:
    """The exception classes ``raise exc`` can raise: a class (or its call), a factory's
    return annotation, each side of ``a or b``; a local variable (a caught error) is unknown."""
    if isinstance(exc, ast.BoolOp):
        for value in exc.values:
            yield from _raised_classes(module, value)
        return
    target = _resolve(module, exc.func if isinstance(exc, ast.Call) else exc)
    if inspect.isclass(target):
        yield target
    elif inspect.isfunction(target) and isinstance(exc, ast.Call):
        returned = typing.get_type_hints(target).get("return")
        if inspect.isclass(returned):
            yield returned


def _raise_sites() -> Iterator[tuple[str, int, type]]:
    for module, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and node.exc is not None:
                for raised in _raised_classes(module, node.exc):
                    yield module.__name__, node.lineno, raised


def test_the_raise_walk_sees_every_kind_of_raise() -> None:
    """The walk below must see classes, factories and `a or b`, or it would prove nothing."""
    sites = list(_raise_sites())
    kinds = {raised for _, _, raised in sites}
    assert errors.ChannelDataError in kinds  # via channel_model._fail(...) -> ChannelDataError
    assert errors.FilesystemError in kinds  # via errors.filesystem_error(...)
    assert errors.InternalError in kinds  # via proc: `timeout_error or _timed_out(...)`
    assert len(sites) > 100


def test_every_raised_class_is_an_envlock_error() -> None:
    offenders = []
    allowed_seen = set()
    for module, line, raised in _raise_sites():
        if issubclass(raised, EnvlockError):
            continue
        key = (module, raised.__name__)
        if key in ALLOWED:
            allowed_seen.add(key)
            continue
        offenders.append(f"{module}:{line} raises {raised.__module__}.{raised.__qualname__}")
    assert offenders == []
    assert sorted(set(ALLOWED) - allowed_seen) == [], "no longer raised: drop from ALLOWED"


def _families() -> dict[str, type[EnvlockError]]:
    """Every EnvlockError class envlock defines, by name, wherever it is defined."""
    found: dict[str, type[EnvlockError]] = {}
    for module in _modules():
        for name, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, EnvlockError):
                found[name] = obj
    return found


def test_every_error_family_has_a_distinct_documented_code() -> None:
    # No aliases: two names for one value would hide in iteration over the enum.
    assert len(ExitCode.__members__) == len(ExitCode)
    # One code per family: the direct subclasses of EnvlockError never share one.
    families = [c for c in _families().values() if EnvlockError in c.__bases__]
    codes = [c.exit_code for c in families]
    assert len(codes) == len(set(codes)), sorted((c.exit_code, c.__name__) for c in families)
    # Every code but success belongs to a family, so each one can really happen.
    assert set(ExitCode) - {ExitCode.OK} == set(codes)
    # Documented: the README's table and errors.py's docstring list exactly these codes
    # (130 and 143 are the signals' codes, not families).
    readme = README.read_text(encoding="utf-8").partition("## Exit codes")[2]
    table = readme.partition("\n## ")[0]
    in_readme = {int(n) for n in re.findall(r"^\| (\d+) \|", table, re.M)}
    in_docstring = {int(n) for n in re.findall(r"^(\d+) {2,}\S", errors.__doc__ or "", re.M)}
    expected = {int(c) for c in ExitCode} | {130, 143}
    assert in_readme == expected
    assert in_docstring == expected


def test_every_envlock_error_raised_says_what_to_do() -> None:
    """error: + hint: for every failure: each EnvlockError built in the code passes a hint."""
    families = set(_families().values())
    built = 0
    missing = []
    for module, tree in _trees():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or _resolve(module, node.func) not in families:
                continue
            built += 1
            hint = next((k for k in node.keywords if k.arg in ("hint", None)), None)
            if hint is None or (isinstance(hint.value, ast.Constant) and not hint.value.value):
                missing.append(f"{module.__name__}:{node.lineno} {ast.unparse(node.func)}")
    assert built > 50  # the walk found the constructors (by plain and dotted names)
    assert missing == []


@pytest.mark.parametrize("item", [1.5, None, b"bytes", [1, 2.5], {"key": {1, 2}}])
def test_a_value_the_toml_writer_cannot_render_is_an_internal_error(item: object) -> None:
    """A bug in envlock (it built a value TOML output has no form for), not a traceback."""
    with pytest.raises(errors.InternalError) as caught:
        _toml.value(item)
    assert "as a TOML value" in str(caught.value)
    assert caught.value.hint
    assert caught.value.exit_code == ExitCode.INTERNAL
