"""envlock sync / verify / export requirements against the fixture indexes (real installs)."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest
from uv import find_uv_bin

from envlock.errors import ExitCode
from tests.conftest import Cli, assert_refused
from tests.support.indexes import StandardIndexes
from tests.support.venvs import make_venv
from tests.test_doctor import _lock
from tests.test_lock_e2e import write_spec


@pytest.fixture
def locked_env(
    fixture_env: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Path:
    # No NVIDIA driver on the test host: the preflight only warns.
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(tmp_path / "no-nvidia-smi"))
    write_spec(fixture_env, packages='six = "*"\nnumpy = "*"')
    assert cli("lock").code == 0
    return fixture_env


def _py(venv: Path) -> Path:
    return venv / "bin" / "python"


def _run(python: Path, code: str) -> str:
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_sync_creates_exactly_the_lock(locked_env: Path, cli: Cli) -> None:
    result = cli("sync", "--venv", ".venv")
    assert result.code == 0, result.stderr
    assert "no NVIDIA driver found" in result.stderr
    venv = locked_env / ".venv"
    assert (
        _run(_py(venv), "import torch, numpy; print(torch.__version__, numpy.__version__)")
        == "2.6.0+cu126 2.3.0"
    )
    assert not list(locked_env.glob(".*envlock-new*"))


def test_second_sync_is_a_no_op(locked_env: Path, cli: Cli, indexes: StandardIndexes) -> None:
    assert cli("sync", "--venv", ".venv").code == 0
    before = len(indexes.pypi_server.requests) + len(indexes.pytorch_server.requests)
    again = cli("sync", "--venv", ".venv")
    assert again.code == 0
    assert "already matches" in again.stderr
    assert len(indexes.pypi_server.requests) + len(indexes.pytorch_server.requests) == before


def test_a_new_venv_from_a_warm_cache_downloads_nothing(
    locked_env: Path, cli: Cli, indexes: StandardIndexes
) -> None:
    """Each artifact is downloaded once: the second venv of the same lock comes from uv's
    cache. Handed to uv without the artifact's index, a wheel was a URL requirement that uv
    revalidated by downloading it again, every sync (27 wheels, ~3 GB, for the quickstart)."""
    assert cli("sync", "--venv", ".venv").code == 0
    servers = (indexes.pypi_server, indexes.pytorch_server)
    before = [len(s.full_downloads) for s in servers]
    assert cli("sync", "--venv", ".venv-second").code == 0
    again = [
        path
        for server, since in zip(servers, before, strict=True)
        for path in server.full_downloads[since:]
        if path.endswith(".whl")
    ]
    assert again == []


def test_sync_removes_extraneous_and_fixes_versions(
    locked_env: Path, cli: Cli, indexes: StandardIndexes
) -> None:
    assert cli("sync", "--venv", ".venv").code == 0
    venv = locked_env / ".venv"
    subprocess.run(
        [
            find_uv_bin(),
            "pip",
            "install",
            "--no-config",
            "--python",
            str(_py(venv)),
            "--index-url",
            indexes.pypi_url,
            "mpmath==1.3.0",
            "six==1.16.0",
        ],
        check=True,
        capture_output=True,
    )
    drift = cli("verify", "--venv", ".venv")
    assert drift.code == 1
    assert "six" in drift.stdout and "version" in drift.stdout
    assert "mpmath" not in drift.stdout  # a dependency of sympy: locked too
    assert cli("sync", "--venv", ".venv").code == 0
    assert cli("verify", "--venv", ".venv").code == 0


def test_verify_reports_missing_extra_and_modified(locked_env: Path, cli: Cli) -> None:
    assert cli("sync", "--venv", ".venv").code == 0
    assert cli("verify", "--venv", ".venv", "--deep").code == 0
    venv = locked_env / ".venv"
    purelib = Path(_run(_py(venv), "import sysconfig; print(sysconfig.get_path('purelib'))"))
    (purelib / "six" / "__init__.py").write_text("tampered = True\n")
    deep = cli("verify", "--venv", ".venv", "--deep")
    assert deep.code == 1
    assert "modified" in deep.stdout and "six/__init__.py" in deep.stdout
    for item in purelib.glob("numpy*"):
        subprocess.run(["rm", "-rf", str(item)], check=True)
    missing = cli("verify", "--venv", ".venv")
    assert missing.code == 1
    assert "missing" in missing.stdout


def test_tampered_artifact_creates_nothing(
    locked_env: Path,
    cli: Cli,
    indexes: StandardIndexes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path / "fresh-cache"))  # force a download
    indexes.pypi_server.tamper("six-1.17.0-py2.py3-none-any.whl")
    try:
        result = cli("sync", "--venv", ".venv-new")
    finally:
        indexes.pypi_server.untamper()
    assert result.code == 6, result.stderr
    assert "does not match the sha256" in result.stderr
    assert not (locked_env / ".venv-new").exists()
    assert not list(locked_env.glob(".*envlock-new*"))


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_a_republished_wheel_of_another_size_is_a_hash_failure(
    locked_env: Path,
    cli: Cli,
    indexes: StandardIndexes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    installer: str,
) -> None:
    """Other bytes and another size than the lock records (a valid wheel, republished)."""
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path / "fresh-cache"))  # force a download
    indexes.pypi_server.tamper("six-1.17.0-py2.py3-none-any.whl", resized=True)
    try:
        result = cli("sync", "--venv", ".venv-new", "--installer", installer)
    finally:
        indexes.pypi_server.untamper()
    assert_refused(result, ExitCode.HASH)
    assert not (locked_env / ".venv-new").exists()


def test_tampered_artifact_leaves_an_existing_venv_alone(
    locked_env: Path,
    cli: Cli,
    indexes: StandardIndexes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert cli("sync", "--venv", ".venv").code == 0
    spec = locked_env / "torchenv.toml"
    spec.write_text(spec.read_text().replace('six = "*"', 'six = "*"\ntransformers = "<5"'))
    assert cli("lock").code == 0
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path / "fresh-cache"))  # force a download
    before = sorted(p.name for p in (locked_env / ".venv").rglob("*.dist-info"))
    indexes.pypi_server.tamper("transformers-4.50.0-py3-none-any.whl")
    try:
        result = cli("sync", "--venv", ".venv")
    finally:
        indexes.pypi_server.untamper()
    assert result.code == 6, result.stderr
    assert sorted(p.name for p in (locked_env / ".venv").rglob("*.dist-info")) == before


def test_old_driver_stops_sync(
    locked_env: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    smi = tmp_path / "nvidia-smi"
    smi.write_text('#!/bin/sh\necho "Tesla V100-SXM2-16GB, 7.0, 470.256.02"\n')
    smi.chmod(0o755)
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(smi))
    result = cli("sync", "--venv", ".venv")
    assert result.code == 7
    assert "470.256.02" in result.stderr and "525.60.13" in result.stderr
    assert "cu118" in result.stderr
    assert not (locked_env / ".venv").exists()
    assert cli("sync", "--venv", ".venv", "--no-host-check").code == 0


def test_sync_with_pip(locked_env: Path, cli: Cli) -> None:
    result = cli("sync", "--venv", ".venv", "--installer", "pip")
    assert result.code == 0, result.stderr
    assert cli("verify", "--venv", ".venv").code == 0


def test_exported_requirements_install_with_plain_pip(
    locked_env: Path, cli: Cli, tmp_path: Path
) -> None:
    result = cli("export", "requirements", "-o", "requirements.txt")
    assert result.code == 0, result.stderr
    reqs = locked_env / "requirements.txt"
    assert "--hash=sha256:" in reqs.read_text()
    venv = tmp_path / "pipvenv"
    make_venv(venv, pip=True)
    env = {"PATH": "/usr/bin:/bin", "PIP_CONFIG_FILE": "/dev/null"}
    pip = [str(_py(venv)), "-m", "pip", "install", "--isolated", "--require-hashes", "--no-deps"]
    ok = subprocess.run(
        [*pip, "-r", str(reqs)], capture_output=True, text=True, env=env, check=False
    )
    assert ok.returncode == 0, ok.stderr
    assert _run(_py(venv), "import torch; print(torch.__version__)") == "2.6.0+cu126"
    first = reqs.read_text().split("--hash=sha256:")[1][:64]
    reqs.write_text(
        reqs.read_text().replace(first, first[:-1] + ("0" if first[-1] != "0" else "1"))
    )
    venv2 = tmp_path / "pipvenv2"
    make_venv(venv2, pip=True)
    pip2 = [str(_py(venv2)), "-m", "pip", "install", "--isolated", "--require-hashes", "--no-deps"]
    rejected = subprocess.run(
        [*pip2, "-r", str(reqs)], capture_output=True, text=True, env=env, check=False
    )
    assert rejected.returncode != 0
    assert "DO NOT MATCH THE HASHES" in rejected.stderr


def test_export_errors(locked_env: Path, cli: Cli) -> None:
    wrong = cli("export", "requirements", "--platform", "windows-x86_64")
    assert wrong.code == 7
    assert "not locked for windows-x86_64" in wrong.stderr
    (locked_env / "pylock.toml").write_text("lock-version = '1.0'\n")
    corrupt = cli("export", "requirements")
    assert corrupt.code == 7
    assert "created-by" in corrupt.stderr or "packages" in corrupt.stderr


def test_missing_python_is_named(
    isolated_env: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(tmp_path / "no-nvidia-smi"))
    text = _lock("2.6.0", "cpu").replace('python = "3.11"', 'python = "3.7"')
    (isolated_env / "pylock.toml").write_text(text.replace("==3.11.*", "==3.7.*"))
    result = cli("sync", "--venv", ".venv")
    assert result.code == 7, result.stderr
    assert "no Python 3.7 interpreter found" in result.stderr
    assert not (isolated_env / ".venv").exists()


def test_sync_refuses_a_lock_for_another_platform(
    isolated_env: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(tmp_path / "no-nvidia-smi"))
    text = _lock("2.6.0", "cpu").replace(
        'platforms = ["linux-x86_64"]', 'platforms = ["macos-arm64"]'
    )
    (isolated_env / "pylock.toml").write_text(text)
    result = cli("sync", "--venv", ".venv")
    assert result.code == 7
    assert "does not cover this host" in result.stderr


def test_ambient_configuration_does_not_change_what_is_installed(
    locked_env: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("six==1.16.0\n")
    for key, value in {
        "UV_INDEX_URL": "http://127.0.0.1:9/simple",
        "UV_CONSTRAINT": str(constraints),
        "UV_NO_CACHE": "1",
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PIP_CONSTRAINT": str(constraints),
        "PIP_NO_DEPS": "0",
    }.items():
        monkeypatch.setenv(key, value)
    for installer in ("uv", "pip"):
        result = cli("sync", "--venv", f".venv-{installer}", "--installer", installer)
        assert result.code == 0, result.stderr
        assert cli("verify", "--venv", f".venv-{installer}").code == 0


def test_a_hand_edited_index_is_not_handed_to_uv(
    locked_env: Path, cli: Cli, caplog: pytest.LogCaptureFixture
) -> None:
    """The install lock's `index` is uv's cache key and goes on uv's command line: one the
    lock's record does not name (another host, credentials, a space) stays out of both; the
    artifact is still installed by its URL and sha256."""
    lock = locked_env / "pylock.toml"
    text = lock.read_text()
    decoy = "http://user:secret@decoy.invalid/simple"
    first = text.index('index = "', text.index("[[packages]]"))
    end = text.index("\n", first)
    lock.write_text(text[:first] + f'index = "{decoy}"' + text[end:])
    with caplog.at_level(logging.DEBUG):
        result = cli("--debug", "sync", "--venv", ".venv")
    assert result.code == 0, result.stderr
    ran = " ".join(r.getMessage() for r in caplog.records if r.getMessage().startswith("run:"))
    assert "decoy" not in ran and "secret" not in ran
    lock.write_text(text[:first] + 'index = "http://a b/simple"' + text[end:])
    assert cli("sync", "--venv", ".venv-space").code == 0
