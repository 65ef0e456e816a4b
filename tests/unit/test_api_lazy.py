"""envlock.api loads each verb's module on first use, and its names stay what they were."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import envlock.api

VERBS = ("bundle", "doctor", "init", "lock", "sync", "verify")


def _fresh(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_a_verb_is_its_function_even_after_its_module_is_imported() -> None:
    imports = "; ".join(f"import envlock.api.{verb}" for verb in VERBS)
    found = _fresh(
        f"""
        {imports}
        import types, envlock.api as api
        print(sorted(v for v in {VERBS!r} if isinstance(getattr(api, v), types.ModuleType)))
        """
    )
    assert found == "[]"


def test_the_command_line_loads_no_verb_it_does_not_run() -> None:
    loaded = _fresh(
        """
        import sys, envlock.cli
        print(sorted(m for m in sys.modules if m.startswith("envlock.api.")))
        """
    )
    for unused in ("bundle", "conda", "review", "audit", "review_gate", "verify", "init"):
        assert f"'envlock.api.{unused}'" not in loaded


def test_every_name_resolves() -> None:
    for name in envlock.api.__all__:
        assert getattr(envlock.api, name) is not None
