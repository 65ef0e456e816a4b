"""envlock bundle: download once, then sync with no network at all."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.pylock import Pylock

from tests.conftest import Cli
from tests.support.indexes import StandardIndexes
from tests.test_lock_e2e import write_spec


@pytest.fixture
def locked(fixture_env: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(tmp_path / "no-nvidia-smi"))
    write_spec(fixture_env, packages='six = "*"\nnumpy = "*"')
    assert cli("lock").code == 0
    return fixture_env


@pytest.fixture
def offline(indexes: StandardIndexes) -> Iterator[None]:
    """Both fixture indexes refuse every request, as if the network were gone."""
    indexes.pypi_server.fail("/", 503)
    indexes.pytorch_server.fail("/", 503)
    try:
        yield
    finally:
        indexes.pypi_server.clear_faults()
        indexes.pytorch_server.clear_faults()


def test_bundle_then_sync_offline(
    locked: Path,
    cli: Cli,
    indexes: StandardIndexes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    result = cli("bundle", "-o", "bundle")
    assert result.code == 0, result.stderr
    bundle = locked / "bundle"
    lock = Pylock.from_dict(tomllib.loads((bundle / "pylock.toml").read_text()))
    paths = [w.path for p in lock.packages for w in p.wheels or ()]
    assert paths and all(path and path.startswith("wheels/") for path in paths)
    assert all(w.url is None for p in lock.packages for w in p.wheels or ())
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert len(manifest["files"]) == len(list((bundle / "wheels").glob("*.whl")))
    # Resumable: a second run reuses every verified file.
    again = cli("bundle", "-o", "bundle")
    assert "already there" in again.stderr
    # No network, empty cache: the bundle alone installs the environment.
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path / "empty-cache"))
    request.getfixturevalue("offline")
    before = len(indexes.pypi_server.requests) + len(indexes.pytorch_server.requests)
    synced = cli("sync", "--venv", ".venv", "--lock", "bundle/pylock.toml")
    assert synced.code == 0, synced.stderr
    assert cli("verify", "--venv", ".venv", "--lock", "bundle/pylock.toml").code == 0
    assert len(indexes.pypi_server.requests) + len(indexes.pytorch_server.requests) == before


def test_bundle_refuses_a_tampered_artifact(
    locked: Path, cli: Cli, indexes: StandardIndexes
) -> None:
    indexes.pypi_server.tamper("six-1.17.0-py2.py3-none-any.whl")
    try:
        result = cli("bundle", "-o", "bundle")
    finally:
        indexes.pypi_server.untamper()
    assert result.code == 6
    assert "six-1.17.0-py2.py3-none-any.whl" in result.stderr
    assert not (locked / "bundle" / "wheels" / "six-1.17.0-py2.py3-none-any.whl").exists()


def test_path_outside_the_bundle_is_refused(locked: Path, cli: Cli) -> None:
    assert cli("bundle", "-o", "bundle").code == 0
    lock_file = locked / "bundle" / "pylock.toml"
    lock_file.write_text(lock_file.read_text().replace('path = "wheels/six', 'path = "../../six'))
    result = cli("sync", "--venv", ".venv", "--lock", "bundle/pylock.toml")
    assert result.code == 7
    assert "outside the lock's directory" in result.stderr
