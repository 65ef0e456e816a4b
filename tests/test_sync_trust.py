"""sync and verify judge the real installed state and never touch what is not theirs.

Each test reproduces a way the promise "sync makes the venv exactly the lock, verify says
whether it still is" was broken, against the fixture indexes with real uv/pip installs.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tracemalloc
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import tomlkit
from uv import find_uv_bin

from envlock.errors import ExitCode
from envlock.io.files import file_sha256
from tests.conftest import Cli, assert_refused
from tests.support.indexes import StandardIndexes
from tests.support.wheels import Dist, build_wheel
from tests.test_lock_e2e import write_spec

SITE = Path("lib/python3.11/site-packages")


@pytest.fixture
def synced(fixture_env: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A project with a lock (six, ruamel.yaml, torch) and .venv synced from it."""
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(tmp_path / "no-nvidia-smi"))
    write_spec(fixture_env, vision=False, packages='six = "*"\n"ruamel.yaml" = "*"')
    assert cli("lock").code == 0
    result = cli("sync", "--venv", ".venv")
    assert result.code == 0, result.stderr
    return fixture_env


def _uv_pip(venv: Path, *args: str) -> None:
    subprocess.run(
        [find_uv_bin(), "pip", *args, "--no-config", "--python", str(venv / "bin" / "python")],
        check=True,
        capture_output=True,
    )


def _tree(path: Path) -> dict[str, bytes]:
    return {
        p.relative_to(path).as_posix(): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(path.rglob("*"))
        if not p.is_symlink()
    }


# --- data loss and harm to what is not envlock's -------------------------------------------


def test_sync_into_a_project_that_is_also_a_venv_deletes_nothing(synced: Path, cli: Cli) -> None:
    """`python -m venv .` in a project, then `envlock sync --venv .`: the swap would have
    replaced the whole project (.git, src/, the spec and the lock)."""
    project = synced / "project"
    project.mkdir()
    for name in ("torchenv.toml", "pylock.toml"):
        shutil.copy(synced / name, project / name)
    (project / "src").mkdir()
    (project / "src" / "train.py").write_text("print('mine')\n")
    (project / ".git").mkdir()
    (project / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(project)], check=True)
    before = _tree(project)
    result = cli("sync", "--venv", str(project), "--lock", str(project / "pylock.toml"))
    assert_refused(result, ExitCode.MATERIALISE)
    assert "also holds other files" in result.stderr
    assert ".git" in result.stderr and "src" in result.stderr
    assert _tree(project) == before
    assert not list(synced.glob(".project.envlock-*"))


def test_sync_replaces_a_plain_venv(synced: Path, cli: Cli) -> None:
    """A directory holding only a venv's own entries is still replaced."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "plain"], check=True)
    result = cli("sync", "--venv", "plain")
    assert result.code == 0, result.stderr
    assert cli("verify", "--venv", "plain").code == 0


def test_an_edit_in_one_venv_never_reaches_the_cache_or_another_venv(
    synced: Path, cli: Cli
) -> None:
    installed = synced / ".venv" / SITE / "six" / "__init__.py"
    original = installed.read_bytes()
    assert installed.stat().st_nlink == 1  # not shared with uv's cache
    with installed.open("ab") as handle:
        handle.write(b"X = 'edited in one venv'\n")
    assert cli("sync", "--venv", ".venv2").code == 0
    assert (synced / ".venv2" / SITE / "six" / "__init__.py").read_bytes() == original


def test_hardlink_is_there_when_asked_for(synced: Path, cli: Cli) -> None:
    assert cli("sync", "--venv", ".linked", "--link-mode", "hardlink").code == 0
    assert (synced / ".linked" / SITE / "six" / "__init__.py").stat().st_nlink > 1


# --- identity: the same version is not the same artifact -----------------------------------


def test_another_build_of_the_same_version_is_caught_and_replaced(
    synced: Path, cli: Cli, tmp_path: Path
) -> None:
    """six 1.17.0 from elsewhere (same name and version, other bytes) over the synced one."""
    other = build_wheel(Dist(name="six", version="1.17.0"), "py3-none-any", tmp_path / "other")
    venv = synced / ".venv"
    _uv_pip(venv, "install", "--reinstall", "--no-deps", str(other))
    deep = cli("verify", "--venv", ".venv", "--deep")
    assert deep.code == 1, deep.stdout
    assert "six" in deep.stdout and "replaced" in deep.stdout
    result = cli("sync", "--venv", ".venv")
    assert result.code == 0, result.stderr
    assert "already matches" not in result.stderr
    assert "six: replaced" in result.stderr
    assert cli("verify", "--venv", ".venv", "--deep").code == 0


@pytest.mark.parametrize(
    "damage",
    [
        "extra-package",
        "deleted-file",
        "edited-file",
        "startup-pth",
        "sitecustomize",
        "duplicate-dist-info",
        "system-site-packages",
        "swapped-interpreter",
    ],
)
def test_sync_is_no_no_op_on_a_damaged_venv(
    synced: Path, cli: Cli, indexes: StandardIndexes, tmp_path: Path, damage: str
) -> None:
    """The no-op check, verify and sync share one model of what is installed."""
    venv = synced / ".venv"
    site = venv / SITE
    if damage == "extra-package":
        _uv_pip(
            venv, "install", "--index-url", indexes.pypi_url, "numpy==2.3.0"
        )  # not in this lock
    elif damage == "deleted-file":
        (site / "six" / "__init__.py").unlink()
    elif damage == "edited-file":
        target = site / "six" / "__init__.py"
        target.write_text(target.read_text().replace("1.17.0", "6.66.6"))  # same size
    elif damage == "startup-pth":
        (site / "zz-hook.pth").write_text("import os; os.environ['HOOKED'] = '1'\n")
    elif damage == "sitecustomize":
        (site / "sitecustomize.py").write_text("print('every start')\n")
    elif damage == "duplicate-dist-info":
        shutil.copytree(site / "six-1.17.0.dist-info", site / "six-1.16.0.dist-info")
    elif damage == "system-site-packages":
        cfg = venv / "pyvenv.cfg"
        cfg.write_text(
            cfg.read_text().replace(
                "include-system-site-packages = false", "include-system-site-packages = true"
            )
        )
    elif damage == "swapped-interpreter":
        wrapper = tmp_path / "python-wrapper"
        wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
        wrapper.chmod(0o755)
        (venv / "bin" / "python").unlink()
        (venv / "bin" / "python").symlink_to(wrapper)
    drift = cli("verify", "--venv", ".venv", "--deep")
    assert drift.code == 1, (drift.stdout, drift.stderr)
    result = cli("sync", "--venv", ".venv")
    assert result.code == 0, result.stderr
    assert "already matches" not in result.stderr
    assert cli("verify", "--venv", ".venv", "--deep").code == 0
    again = cli("sync", "--venv", ".venv")
    assert "already matches" in again.stderr


def test_reinstall_rebuilds_a_matching_venv(synced: Path, cli: Cli) -> None:
    marker = synced / ".venv" / ".envlock-sync.json"
    before = marker.stat().st_ino
    assert "already matches" in cli("sync", "--venv", ".venv").stderr
    result = cli("sync", "--venv", ".venv", "--reinstall")
    assert result.code == 0 and "already matches" not in result.stderr
    assert marker.stat().st_ino != before


# --- installers and interpreters ------------------------------------------------------------


def test_pip_keeps_dotted_project_names(synced: Path, cli: Cli) -> None:
    """pip lists ruamel.yaml by its dotted name; comparing by lower()/replace('_','-') took it
    for an extraneous package and uninstalled it, and sync still said it succeeded."""
    result = cli("sync", "--venv", ".pipvenv", "--installer", "pip")
    assert result.code == 0, result.stderr
    assert (synced / ".pipvenv" / SITE / "ruamel_yaml-0.18.6.dist-info").is_dir()
    assert cli("verify", "--venv", ".pipvenv").code == 0


def test_a_venv_whose_python_was_removed_is_rebuilt(synced: Path, cli: Cli) -> None:
    venv = synced / ".venv"
    for name in ("python", "python3", "python3.11"):
        link = venv / "bin" / name
        if os.path.lexists(link):
            link.unlink()
            link.symlink_to("/nonexistent/python3.11")
    result = cli("sync", "--venv", ".venv")
    assert result.code == 0, result.stderr
    assert cli("verify", "--venv", ".venv").code == 0


def _other_python() -> Path | None:
    """A CPython 3.12 on this machine (pyenv's), to put on PATH as `python3.12`."""
    for candidate in sorted(Path("/root/.pyenv/versions").glob("3.12*/bin/python3.12")):
        probe = subprocess.run([str(candidate), "-c", "pass"], check=False, capture_output=True)
        if probe.returncode == 0:
            return candidate
    found = shutil.which("python3.12")
    return Path(found) if found else None


def test_sync_and_doctor_find_the_locks_python_on_path(
    fixture_env: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python312 = _other_python()
    if python312 is None:
        pytest.skip("no CPython 3.12 on this machine")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python3.12").symlink_to(python312)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(tmp_path / "no-nvidia-smi"))
    spec = write_spec(fixture_env, vision=False)
    spec.write_text(spec.read_text().replace('python = "3.11"', 'python = "3.12"'))
    assert cli("lock").code == 0
    doctor = cli("doctor")
    assert "no Python 3.12" not in doctor.stdout + doctor.stderr
    assert "Python 3.12" in doctor.stdout and "matches the lock" in doctor.stdout
    result = cli("sync", "--venv", ".venv312")
    assert result.code == 0, result.stderr
    version = subprocess.run(
        [str(fixture_env / ".venv312" / "bin" / "python"), "-c", "import sys; print(sys.version)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert version.startswith("3.12")


def test_a_pth_that_prints_breaks_nothing(synced: Path, cli: Cli) -> None:
    """The interpreter query parsed a venv Python's whole stdout as JSON."""
    venv = synced / ".venv"
    (venv / SITE / "chatty.pth").write_text("import sys; print('hello from a .pth {')\n")
    verify = cli("verify", "--venv", ".venv")
    assert verify.code == 1, verify.stderr
    assert "chatty.pth" in verify.stdout and "startup" in verify.stdout
    assert "internal error" not in verify.stderr
    result = cli("sync", "--venv", ".venv")
    assert result.code == 0, result.stderr
    assert not (venv / SITE / "chatty.pth").exists()


# --- source distributions -------------------------------------------------------------------


def _sdist_only(lock_path: Path, name: str, indexes: StandardIndexes) -> None:
    """Rewrite a lock so that ``name`` has only its source distribution (as a lock for a
    platform without wheels would)."""
    doc = tomlkit.parse(lock_path.read_text())
    assert name in [p["name"] for p in doc["packages"]]  # type: ignore[union-attr]
    for package in doc["packages"]:  # type: ignore[union-attr]
        if package["name"] == name:
            filename = f"{name}-{package['version']}.tar.gz"
            with urllib.request.urlopen(f"{indexes.pypi_url}/{name}/") as page:
                html = page.read().decode()
            match = re.search(rf'href="([^"#]*{re.escape(filename)})#sha256=(\w+)"', html)
            assert match, html
            url = urllib.parse.urljoin(f"{indexes.pypi_url}/{name}/", match.group(1))
            digest = match.group(2)
            del package["wheels"]
            package["sdist"] = {"name": filename, "url": url, "hashes": {"sha256": digest}}
    lock_path.write_text(tomlkit.dumps(doc))


def test_sdists_are_built_only_when_allowed(
    synced: Path, cli: Cli, indexes: StandardIndexes
) -> None:
    _sdist_only(synced / "pylock.toml", "six", indexes)
    for args in (("sync", "--venv", ".new"), ("sync", "--venv", ".new", "--installer", "pip")):
        result = cli(*args)
        assert_refused(result, ExitCode.MATERIALISE)
        assert "--allow-build six" in result.stderr
        assert not (synced / ".new").exists()
    bundle = cli("bundle", "-o", "offline")
    assert_refused(bundle, ExitCode.MATERIALISE)
    assert "six" in bundle.stderr
    assert not (synced / "offline").exists()


# --- concurrency and resources --------------------------------------------------------------


def test_two_syncs_from_different_locks_never_share_a_build_directory(
    synced: Path, indexes: StandardIndexes, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    write_spec(other, vision=False, packages='six = "*"\nnumpy = "*"')
    env = {**os.environ, "ENVLOCK_NVIDIA_SMI": str(tmp_path / "none")}
    assert (
        subprocess.run(
            [sys.executable, "-m", "envlock", "lock"], cwd=other, env=env, check=False
        ).returncode
        == 0
    )
    indexes.pypi_server.delay("/files/numpy", 1)
    try:
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "envlock", "sync", "--venv", str(synced / "shared"), *lock],
                cwd=synced,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for lock in (("--lock", str(other / "pylock.toml")), ())
        ]
        outputs = [run.communicate(timeout=300) for run in runs]
    finally:
        indexes.pypi_server.delay("/files/numpy", 0)
    assert [run.returncode for run in runs] == [0, 0], outputs
    # The one that ran second left the venv exactly its lock.
    results = [
        subprocess.run(
            [sys.executable, "-m", "envlock", "verify", "--venv", "shared", *lock],
            cwd=synced,
            env=env,
            check=False,
            capture_output=True,
        ).returncode
        for lock in (("--lock", str(other / "pylock.toml")), ())
    ]
    assert sorted(results) == [0, 1]
    assert not list(synced.glob(".shared.envlock-*"))


def test_deep_verify_streams_files(tmp_path: Path) -> None:
    """verify --deep read each file whole (2.1 GB resident on a torch venv)."""
    big = tmp_path / "big.bin"
    with big.open("wb") as handle:
        for _ in range(32):
            handle.write(os.urandom(1 << 20))
    tracemalloc.start()
    try:
        digest = file_sha256(big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest == hashlib.sha256(big.read_bytes()).digest()
    assert peak < 4 << 20, peak


def test_a_cold_sync_downloads_each_wheel_once(
    synced: Path,
    cli: Cli,
    indexes: StandardIndexes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path / "cold"))
    before = len(indexes.pypi_server.requests)
    for installer in ("uv", "pip"):
        start = len(indexes.pypi_server.requests)
        assert cli("sync", "--venv", f".cold-{installer}", "--installer", installer).code == 0
        fetched = [r for r in indexes.pypi_server.requests[start:] if r.endswith(".whl")]
        assert len(fetched) == len(set(fetched)), (installer, fetched)
    assert len(indexes.pypi_server.requests) > before
