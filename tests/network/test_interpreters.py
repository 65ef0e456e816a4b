"""The same spec gives the same lock bytes whichever Python runs envlock (network: the second
interpreter's copy of envlock's dependencies comes from the real PyPI)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from uv import find_uv_bin

from tests.support.indexes import StandardIndexes
from tests.test_lock_e2e import write_spec

pytestmark = pytest.mark.network

SRC = Path(__file__).resolve().parents[2] / "src"
DEPENDENCIES = ("packaging>=26.1", "tomli", "typer>=0.26.7,<0.28", "rich")


def _other_python() -> Path | None:
    mine = f"{sys.version_info.major}.{sys.version_info.minor}"
    for minor in ("3.12", "3.13", "3.11"):
        if minor == mine:
            continue
        for candidate in sorted(Path("/root/.pyenv/versions").glob(f"{minor}*/bin/python{minor}")):
            return candidate
        found = shutil.which(f"python{minor}")
        if found:
            return Path(found)
    return None


@pytest.fixture(scope="module")
def other_envlock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python of another minor with envlock's dependencies (envlock itself from src/)."""
    python = _other_python()
    if python is None:
        pytest.skip("no second CPython minor on this machine")
    venv = tmp_path_factory.mktemp("other-python") / "venv"
    uv = find_uv_bin()
    subprocess.run(
        [uv, "venv", "-q", "--no-config", "--python", str(python), str(venv)], check=True
    )
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "-q",
            "--no-config",
            "--python",
            str(venv / "bin" / "python"),
            f"uv=={_uv_version()}",
            *DEPENDENCIES,
        ],
        check=True,
    )
    return venv / "bin" / "python"


def _uv_version() -> str:
    from importlib.metadata import version  # noqa: PLC0415

    return version("uv")


@pytest.mark.parametrize("spec_python", ["3.11", "3.12"])
def test_lock_bytes_do_not_depend_on_envlocks_python(
    other_envlock: Path, indexes: StandardIndexes, tmp_path: Path, spec_python: str
) -> None:
    locks = []
    for name, python in (("mine", Path(sys.executable)), ("other", other_envlock)):
        project = tmp_path / name
        project.mkdir()
        spec = write_spec(
            project,
            packages='six = "*"\nnumpy = "*"',
            platforms='["linux-x86_64", "macos-arm64"]',
        )
        spec.write_text(spec.read_text().replace('python = "3.11"', f'python = "{spec_python}"'))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ENVLOCK_")},
            "PYTHONPATH": str(SRC),
            "ENVLOCK_PYPI_INDEX_URL": indexes.pypi_url,
            "ENVLOCK_PYTORCH_INDEX_URL": indexes.pytorch_url,
            "ENVLOCK_CACHE_DIR": str(tmp_path / f"cache-{name}"),
        }
        result = subprocess.run(
            [str(python), "-m", "envlock", "lock"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, (name, result.stderr)
        locks.append((project / "pylock.toml").read_bytes())
    assert locks[0] == locks[1]
