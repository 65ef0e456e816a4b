"""`envlock export uv`: a pyproject.toml with which the real `uv lock` picks the lock's torch
build from the fixture indexes (issue 15 item 4)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from uv import find_uv_bin

from tests.conftest import Cli
from tests.support.indexes import StandardIndexes
from tests.test_foreign_locks import foreign_locks, lock_pip  # noqa: F401 - session fixtures
from tests.test_lock_e2e import write_spec


def _uv_lock(project: Path, cache: Path) -> list[dict[str, Any]]:
    """Plain `uv lock` as a team would run it (no envlock, no --no-config: the file's own
    [tool.uv] and indexes count), with no user or machine uv settings around it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_", "ENVLOCK_"))}
    env.update(XDG_CONFIG_HOME=str(project / ".no-config"), UV_CACHE_DIR=str(cache))
    done = subprocess.run(
        [find_uv_bin(), "lock", "--quiet", "--python", sys.executable, "--no-python-downloads"],
        cwd=project,
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr + (project / "pyproject.toml").read_text()
    return list(tomllib.loads((project / "uv.lock").read_text())["package"])


def _versions(packages: list[dict[str, Any]], name: str) -> dict[str, str]:
    """version -> registry, for every entry of ``name`` in uv.lock."""
    return {p["version"]: p["source"].get("registry", "") for p in packages if p["name"] == name}


@pytest.fixture
def locked(fixture_env: Path, indexes: StandardIndexes) -> Path:
    tail = f'[indexes]\npypi = "{indexes.pypi_url}"\npytorch = "{indexes.pytorch_url}"\n'
    write_spec(fixture_env, packages='six = "<1.17"', tail=tail)
    return fixture_env


def test_uv_lock_of_the_export_picks_the_same_torch_build(
    locked: Path, cli: Cli, indexes: StandardIndexes, uv_cache: Path
) -> None:
    assert cli("lock").code == 0
    result = cli("export", "uv", "-o", "team/pyproject.toml")
    assert result.code == 0, result.stderr
    exported = tomllib.loads((locked / "team" / "pyproject.toml").read_text())
    assert exported["tool"]["uv"]["sources"]["torch"] == {"index": "pytorch-cu126"}
    packages = _uv_lock(locked / "team", uv_cache)
    cu126 = f"{indexes.pytorch_url}/cu126"
    # Not PyPI's 2.6.9 (the dependency-confusion copy): only the variant index serves torch.
    assert _versions(packages, "torch") == {"2.6.0+cu126": cu126}
    assert _versions(packages, "torchvision") == {"0.21.0+cu126": cu126}
    assert _versions(packages, "six") == {"1.16.0": indexes.pypi_url}


def test_a_platform_where_pypi_ships_the_build_takes_it_from_pypi(
    locked: Path, cli: Cli, indexes: StandardIndexes, uv_cache: Path
) -> None:
    spec = locked / "torchenv.toml"
    spec.write_text(spec.read_text().replace('["linux-x86_64"]', '["linux-x86_64", "macos-arm64"]'))
    assert cli("lock").code == 0
    assert cli("export", "uv", "-o", "team/pyproject.toml").code == 0
    text = (locked / "team" / "pyproject.toml").read_text()
    assert "macos-arm64: PyPI's own torch is this build there" in text
    locked_torch = {
        p["version"]
        for p in tomllib.loads((locked / "pylock.toml").read_text())["packages"]
        if p["name"] == "torch"
    }
    packages = _uv_lock(locked / "team", uv_cache)
    got = _versions(packages, "torch")
    assert set(got) == locked_torch
    assert got["2.6.0+cu126"] == f"{indexes.pytorch_url}/cu126"
    assert {got[v] for v in locked_torch if "+" not in v} == {indexes.pypi_url}


def test_export_uv_of_a_lock_alone_pins_its_packages(
    locked: Path, cli: Cli, indexes: StandardIndexes, uv_cache: Path
) -> None:
    """No torchenv.toml beside the lock (a lock copied alone, another tool's): every package is
    pinned, since a lock does not say which were asked for."""
    assert cli("lock").code == 0
    alone = locked / "alone"
    alone.mkdir()
    (alone / "pylock.toml").write_text((locked / "pylock.toml").read_text())
    assert cli("export", "uv", "--lock", "alone/pylock.toml", "-o", "team/pyproject.toml").code == 0
    exported = tomllib.loads((locked / "team" / "pyproject.toml").read_text())
    assert "six==1.16.0" in exported["project"]["dependencies"]
    assert not any(d.startswith("nvidia-") for d in exported["project"]["dependencies"])
    assert _versions(_uv_lock(locked / "team", uv_cache), "six") == {"1.16.0": indexes.pypi_url}


def test_export_uv_refuses_to_replace_a_pyproject_it_did_not_write(locked: Path, cli: Cli) -> None:
    assert cli("lock").code == 0
    (locked / "pyproject.toml").write_text('[project]\nname = "mine"\n')
    result = cli("export", "uv", "-o", "pyproject.toml")
    assert result.code != 0 and "was not written by envlock" in result.stderr
    assert (locked / "pyproject.toml").read_text() == '[project]\nname = "mine"\n'


def test_export_uv_of_a_pip_lock_routes_its_torch_build(
    foreign_locks: Mapping[str, str],  # noqa: F811 - the session fixture
    fixture_env: Path,
    cli: Cli,
    indexes: StandardIndexes,
    uv_cache: Path,
) -> None:
    """A lock without [tool.envlock]: the build and its index come from the torch entry."""
    (fixture_env / "pylock.toml").write_text(foreign_locks["pip"])
    result = cli("export", "uv", "-o", "team/pyproject.toml")
    assert result.code == 0, result.stderr
    assert "no [tool.envlock]" in result.stderr
    packages = _uv_lock(fixture_env / "team", uv_cache)
    assert _versions(packages, "torch") == {"2.6.0+cu124": f"{indexes.pytorch_url}/cu124"}
