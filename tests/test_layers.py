"""The "core is pure" import contract names every core module: a new one cannot slip out of it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Not core: the package's own entry points, and the layers above the core.
NOT_CORE = {"__init__", "__main__"}


def test_every_core_module_is_in_the_purity_contract() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    pure = next(c for c in contracts if c["name"].startswith("The core is pure"))
    listed = {m.removeprefix("envlock.") for m in pure["source_modules"]}
    modules = {p.stem for p in (ROOT / "src" / "envlock").glob("*.py")} - NOT_CORE
    packages = {
        p.name
        for p in (ROOT / "src" / "envlock").iterdir()
        if p.is_dir() and (p / "__init__.py").exists()
    } - {"io", "api", "cli"}
    assert sorted((modules | packages) - listed) == []
