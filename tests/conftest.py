from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from envlock.cli import main
from envlock.errors import ExitCode
from tests.support.indexes import StandardIndexes, start_standard_indexes

# Session fixtures are per process: under pytest-xdist (`-n auto`) each worker serves its own
# indexes on its own ports and has its own uv cache, so workers share no state.


@pytest.fixture(scope="session")
def indexes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandardIndexes]:
    """A fake PyPI and a fake download.pytorch.org/whl, served on 127.0.0.1 for the session."""
    served = start_standard_indexes(tmp_path_factory.mktemp("indexes"))
    try:
        yield served
    finally:
        served.close()


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("envlock-cache")


@dataclass(frozen=True, slots=True)
class Result:
    code: int
    stdout: str
    stderr: str


Cli = Callable[..., Result]


def assert_refused(result: Result, code: ExitCode) -> None:
    """A refusal as users must see it: the exit code, error: and hint:, never a traceback."""
    assert result.code == code, (result.code, result.stderr)
    assert "Traceback" not in result.stderr
    assert re.search(r"^error: \S", result.stderr, re.M), result.stderr
    assert re.search(r"^hint: \S", result.stderr, re.M), result.stderr
    assert "internal error" not in result.stderr


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, uv_cache: Path) -> Path:
    """A clean working directory and environment: no ENVLOCK_* leaking from the developer."""
    for key in list(os.environ):
        if key.startswith("ENVLOCK_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(uv_cache))
    # Base image digests are read from a registry only where a test serves one.
    monkeypatch.setenv("ENVLOCK_DOCKER_REGISTRY", "off")
    # The review gate reads index pages and wheels a diff names: only where a test asks for it.
    monkeypatch.setenv("ENVLOCK_REVIEW_GATE", "off")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def fixture_env(
    isolated_env: Path, indexes: StandardIndexes, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Point envlock at the fixture indexes (the way a mirror would be configured)."""
    monkeypatch.setenv("ENVLOCK_PYPI_INDEX_URL", indexes.pypi_url)
    monkeypatch.setenv("ENVLOCK_PYTORCH_INDEX_URL", indexes.pytorch_url)
    monkeypatch.setenv("ENVLOCK_HTTP_RETRIES", "0")
    return isolated_env


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run the envlock CLI in-process; returns exit code, stdout and stderr."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        else:
            code = 0
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
