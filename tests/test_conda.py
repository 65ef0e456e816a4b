"""conda, for real: environment.yml created the way conda does (rattler solving and linking
from a local channel, then conda's own pip step), and `envlock sync --conda` / `verify --conda`.

The channel (tests/support/conda.py) holds a python package made from this machine's
interpreter and a pip package, built once per test session and shared by xdist workers."""

from __future__ import annotations

import bz2
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from uv import find_uv_bin

from envlock.errors import ExitCode
from tests.conftest import Cli, assert_refused
from tests.support.conda import (
    MINOR,
    VERSION,
    Channel,
    cached_channel,
    conda_env_create,
    unrelocatable,
)
from tests.support.indexes import StandardIndexes
from tests.test_lock_e2e import write_spec

LOCKED = {"torch": "2.6.0+cu126", "numpy": "2.3.0", "six": "1.17.0"}
IMPORT = "import torch, numpy, six; print(torch.__version__, numpy.__version__, six.__version__)"


@pytest.fixture(scope="session")
def channel(tmp_path_factory: pytest.TempPathFactory) -> Channel:
    reason = unrelocatable()
    if reason is not None:
        pytest.skip(reason)
    base = tmp_path_factory.getbasetemp()
    # xdist workers each have a basetemp under one shared run directory: build there once.
    return cached_channel(base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base)


@pytest.fixture
def locked(fixture_env: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(tmp_path / "no-nvidia-smi"))
    write_spec(fixture_env, packages='six = "*"\nnumpy = "*"')
    assert cli("lock").code == 0
    return fixture_env


def _python(prefix: Path) -> Path:
    return prefix / "bin" / "python"


def _imports(prefix: Path) -> str:
    done = subprocess.run(
        [str(_python(prefix)), "-c", IMPORT], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _conda_packages(prefix: Path) -> list[str]:
    return sorted(json.loads(p.read_text())["name"] for p in (prefix / "conda-meta").glob("*.json"))


def _sync(cli: Cli, channel: Channel, *args: str) -> object:
    return cli("sync", "--conda", "env", "--channel", str(channel.path), *args)


# ---------------------------------------------------------------------------------------
# export conda -> a conda prefix, as `conda env create -f environment.yml` makes it


def test_exported_environment_creates_a_conda_prefix_that_imports_the_lock(
    locked: Path, cli: Cli, channel: Channel, uv_cache: Path
) -> None:
    assert cli("export", "conda", "-o", "environment.yml").code == 0
    prefix = locked / "condaenv"
    pip = conda_env_create(
        locked / "environment.yml", prefix, channels=[channel.url], cache=uv_cache / "rattler"
    )
    assert pip.returncode == 0, pip.stderr
    assert _conda_packages(prefix) == ["pip", "python"]
    assert _imports(prefix) == " ".join(LOCKED[n] for n in ("torch", "numpy", "six"))
    assert not list(locked.glob("condaenv.*.requirements.txt"))  # conda removes its file


def test_a_tampered_hash_in_environment_yml_fails_conda_s_pip_step(
    locked: Path, cli: Cli, channel: Channel, uv_cache: Path
) -> None:
    assert cli("export", "conda", "-o", "environment.yml").code == 0
    environment = locked / "environment.yml"
    data = yaml.safe_load(environment.read_text())
    pip_lines = next(d["pip"] for d in data["dependencies"] if isinstance(d, dict))
    six = next(i for i, line in enumerate(pip_lines) if line.startswith("six @ "))
    digest = pip_lines[six].rsplit("sha256:", 1)[1]
    pip_lines[six] = pip_lines[six].replace(digest, "0" * 64)
    environment.write_text(yaml.safe_dump(data))
    prefix = locked / "condaenv"
    pip = conda_env_create(environment, prefix, channels=[channel.url], cache=uv_cache / "rattler")
    assert pip.returncode != 0
    assert "DO NOT MATCH THE HASHES" in pip.stderr
    assert not list((prefix / "lib" / f"python{MINOR}" / "site-packages").glob("six*"))


# ---------------------------------------------------------------------------------------
# envlock sync --conda / verify --conda


def test_sync_conda_creates_the_prefix_and_a_second_sync_is_a_no_op(
    locked: Path, cli: Cli, channel: Channel, indexes: StandardIndexes
) -> None:
    created = _sync(cli, channel)
    assert created.code == 0, created.stderr
    assert f"11 packages over conda's python {VERSION}, exactly as locked" in created.stderr
    prefix = locked / "env"
    assert _conda_packages(prefix) == ["python"]  # python from the channel, nothing else
    assert _python(prefix).stat().st_nlink == 1  # copied: no hard link into rattler's cache
    assert _imports(prefix) == " ".join(LOCKED[n] for n in ("torch", "numpy", "six"))
    requests = len(indexes.pypi_server.requests) + len(indexes.pytorch_server.requests)
    again = _sync(cli, channel)
    assert again.code == 0, again.stderr
    assert "already matches" in again.stderr
    assert len(indexes.pypi_server.requests) + len(indexes.pytorch_server.requests) == requests
    assert not list(locked.glob(".env.envlock-*"))


def test_verify_conda_reports_drift_in_both_parts_and_sync_repairs_it(
    locked: Path, cli: Cli, channel: Channel, indexes: StandardIndexes
) -> None:
    assert _sync(cli, channel).code == 0
    clean = cli("verify", "--conda", "env")
    assert clean.code == 0, clean.stdout + clean.stderr
    prefix = locked / "env"
    subprocess.run(
        [find_uv_bin(), "pip", "install", "--no-config", "--python", str(_python(prefix))]
        + ["--index-url", indexes.pypi_url, "six==1.16.0"],
        check=True,
        capture_output=True,
    )
    stdlib = prefix / "lib" / f"python{MINOR}"
    with (stdlib / "json" / "__init__.py").open("a") as module:
        module.write("\ntampered = True\n")
    drift = cli("verify", "--conda", "env")
    assert drift.code == 1
    rows = drift.stdout.splitlines()
    assert any(r.split() == ["six", "version", "1.17.0", "1.16.0"] for r in rows), rows
    assert any(r.startswith("python (conda)") and "json/__init__.py" in r for r in rows), rows
    repaired = _sync(cli, channel)
    assert repaired.code == 0, repaired.stderr
    assert "differed from the lock" in repaired.stderr
    assert cli("verify", "--conda", "env", "--deep").code == 0
    assert "tampered" not in (stdlib / "json" / "__init__.py").read_text()


def test_verify_conda_sees_a_conda_file_edited_to_the_same_size(
    locked: Path, cli: Cli, channel: Channel
) -> None:
    assert _sync(cli, channel).code == 0
    module = locked / "env" / "lib" / f"python{MINOR}" / "json" / "__init__.py"
    text = module.read_text()
    module.write_text(text.replace("import", "imqort", 1))
    shallow = cli("verify", "--conda", "env")
    assert shallow.code == 1
    assert "files changed" in shallow.stdout
    deep = cli("verify", "--conda", "env", "--deep")
    assert deep.code == 1
    assert "json/__init__.py" in deep.stdout
    assert "already matches" not in _sync(cli, channel).stderr  # the no-op check sees it too


def test_a_hash_failure_puts_the_old_prefix_back(
    locked: Path,
    cli: Cli,
    channel: Channel,
    indexes: StandardIndexes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _sync(cli, channel).code == 0
    spec = locked / "torchenv.toml"
    spec.write_text(spec.read_text().replace('six = "*"', 'six = "*"\ntransformers = "<5"'))
    assert cli("lock").code == 0
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path / "fresh-cache"))  # force a download
    indexes.pypi_server.tamper("transformers-4.50.0-py3-none-any.whl")
    try:
        result = _sync(cli, channel)
    finally:
        indexes.pypi_server.untamper()
    assert_refused(result, ExitCode.HASH)
    prefix = locked / "env"
    assert _imports(prefix) == " ".join(LOCKED[n] for n in ("torch", "numpy", "six"))
    assert not list((prefix / "lib" / f"python{MINOR}" / "site-packages").glob("transformers*"))
    assert not (prefix / ".envlock-building").exists()
    assert not list(locked.glob(".env.envlock-*"))


def test_a_rebuilt_conda_package_is_a_hash_failure(
    locked: Path, cli: Cli, channel: Channel, tmp_path: Path
) -> None:
    """Valid archive, other bytes than the channel's repodata lists (rattler itself checks
    only what it downloads, not a file:// channel's archives)."""
    mirror = tmp_path / "mirror"
    shutil.copytree(channel.path, mirror)
    archive = next((mirror / "linux-64").glob("python-*.tar.bz2"))
    archive.write_bytes(bz2.compress(bz2.decompress(archive.read_bytes()), 2))
    result = cli("sync", "--conda", "env", "--channel", str(mirror))
    assert_refused(result, ExitCode.HASH)
    assert "does not match the sha256 its channel lists" in result.stderr
    assert not (locked / "env").exists()
    assert not list(locked.glob(".env.envlock-*"))


def test_an_interrupted_conda_sync_is_recovered(locked: Path, cli: Cli, channel: Channel) -> None:
    """What a SIGKILL mid-build leaves: the old prefix aside, a marked half-built one at PATH."""
    assert _sync(cli, channel).code == 0
    prefix = locked / "env"
    prefix.rename(locked / ".env.envlock-old")
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / ".envlock-building").write_text("")
    (locked / ".env.envlock-new-killed").mkdir()  # a build dir not yet renamed into place
    assert_refused(cli("verify", "--conda", "env"), ExitCode.MATERIALISE)
    again = _sync(cli, channel)
    assert again.code == 0, again.stderr
    assert "already matches" in again.stderr  # the old prefix is back, untouched
    assert not list(locked.glob(".env.envlock-*"))


def test_a_conda_prefix_envlock_did_not_sync_is_replaced_by_the_lock(
    locked: Path, cli: Cli, channel: Channel, uv_cache: Path
) -> None:
    """An existing conda prefix (conda-meta/history, conda's own pip): verify judges what it
    can, and sync makes it exactly the lock."""
    assert cli("export", "conda", "-o", "environment.yml").code == 0
    prefix = locked / "env"
    made = conda_env_create(
        locked / "environment.yml", prefix, channels=[channel.url], cache=uv_cache / "rattler"
    )
    assert made.returncode == 0, made.stderr
    assert (prefix / "conda-meta" / "history").is_file()
    before = cli("verify", "--conda", "env")
    assert before.code == 1
    assert "no state from `envlock sync --conda`" in before.stderr
    assert any(r.split()[:2] == ["pip", "extra"] for r in before.stdout.splitlines())
    synced = _sync(cli, channel)
    assert synced.code == 0, synced.stderr
    assert _conda_packages(prefix) == ["python"]
    assert cli("verify", "--conda", "env").code == 0


def test_a_prefix_on_another_python_is_rebuilt(locked: Path, cli: Cli, channel: Channel) -> None:
    assert _sync(cli, channel).code == 0
    meta = next((locked / "env" / "conda-meta").glob("python-*.json"))
    record = json.loads(meta.read_text())
    record["version"] = "3.10.13"
    meta.write_text(json.dumps(record))
    result = _sync(cli, channel)
    assert result.code == 0, result.stderr
    assert f"runs Python 3.10; rebuilding it with Python {MINOR}" in result.stderr
    assert cli("verify", "--conda", "env").code == 0


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (lambda p: (p / "notes.txt").write_text("mine"), "not a conda prefix (no conda-meta)"),
        (lambda p: (p / "pyvenv.cfg").write_text("home = /usr/bin\n"), "virtual environment"),
        (
            lambda p: ((p / "conda-meta").mkdir(), (p / "src").mkdir()),
            "also holds other files (src)",
        ),
    ],
    ids=["project-folder", "venv", "conda-prefix-with-user-files"],
)
def test_sync_conda_replaces_nothing_that_is_not_only_a_conda_prefix(
    locked: Path, cli: Cli, channel: Channel, make: object, what: str
) -> None:
    target = locked / "env"
    target.mkdir()
    make(target)  # type: ignore[operator]
    before = sorted(p.name for p in target.iterdir())
    result = _sync(cli, channel)
    assert_refused(result, ExitCode.MATERIALISE)
    assert what in result.stderr
    assert sorted(p.name for p in target.iterdir()) == before


def test_sync_without_the_conda_extra_names_it(
    locked: Path, cli: Cli, channel: Channel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "rattler", None)  # `import rattler` raises ImportError
    result = _sync(cli, channel)
    assert_refused(result, ExitCode.USAGE)
    assert "pip install 'envlock[conda]'" in result.stderr
    assert not (locked / "env").exists()


def test_sync_takes_one_environment(locked: Path, cli: Cli, channel: Channel) -> None:
    both = cli("sync", "--venv", ".venv", "--conda", "env")
    assert_refused(both, ExitCode.USAGE)
    assert_refused(cli("sync"), ExitCode.USAGE)
    stray = cli("sync", "--venv", ".venv", "--channel", str(channel.path))
    assert_refused(stray, ExitCode.USAGE)
    missing = cli("sync", "--conda", "env", "--channel", str(locked / "no-such-channel"))
    assert_refused(missing, ExitCode.USAGE)


def test_an_unreachable_channel_is_an_index_error(locked: Path, cli: Cli) -> None:
    result = cli("sync", "--conda", "env", "--channel", "http://127.0.0.1:9/channel")
    assert_refused(result, ExitCode.INDEX)
    assert "a conda channel could not be read" in result.stderr
    assert not (locked / "env").exists()
