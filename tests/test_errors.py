"""Every exception envlock raises on purpose is an EnvlockError with an exit code."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil

import envlock
from envlock.errors import EnvlockError, ExitCode, Terminated


def _modules() -> list[object]:
    names = [m.name for m in pkgutil.walk_packages(envlock.__path__, "envlock.")]
    return [importlib.import_module(n) for n in ["envlock", *names]]


def test_every_raised_class_is_an_envlock_error() -> None:
    offenders = []
    for module in _modules():
        tree = ast.parse(inspect.getsource(module))  # type: ignore[arg-type]
        for node in ast.walk(tree):
            if not isinstance(node, ast.Raise) or node.exc is None:
                continue
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if not isinstance(target, ast.Name):
                continue
            raised = getattr(module, target.id, None)
            if raised is Terminated:  # SIGTERM's stand-in for KeyboardInterrupt, by design
                continue
            if inspect.isclass(raised) and not issubclass(raised, EnvlockError):
                offenders.append(f"{module.__name__}:{node.lineno} raises {target.id}")  # type: ignore[attr-defined]
    assert offenders == []


def test_every_error_family_has_a_distinct_documented_code() -> None:
    codes = {c.value for c in ExitCode}
    assert codes == {0, 1, 2, 3, 4, 5, 6, 7, 8, 70}


def test_every_envlock_error_raised_says_what_to_do() -> None:
    """error: + hint: for every failure: each EnvlockError built in the code passes a hint."""
    families = {
        name
        for name, obj in inspect.getmembers(importlib.import_module("envlock.errors"))
        if inspect.isclass(obj) and issubclass(obj, EnvlockError)
    }
    missing = []
    for module in _modules():
        tree = ast.parse(inspect.getsource(module))  # type: ignore[arg-type]
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in families
                and not any(k.arg in ("hint", None) for k in node.keywords)
            ):
                missing.append(f"{module.__name__}:{node.lineno} {node.func.id}")  # type: ignore[attr-defined]
    assert missing == []
