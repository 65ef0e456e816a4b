"""Locks other tools wrote, made at test time by the real `pip lock` and `uv export --format
pylock.toml` against the fixture indexes: every command reads them (issue 15 items 1-2)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from packaging.version import Version
from uv import find_uv_bin

from envlock.errors import ExitCode
from tests.conftest import Cli, assert_refused
from tests.support.indexes import StandardIndexes
from tests.support.venvs import make_venv

PIP_LOCK = Version("25.1")  # the first pip with `pip lock`
TORCH = "torch==2.6.0+cu124"


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without the machine's pip/uv settings (a global pip config adds indexes
    and a torch constraint here)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "ENVLOCK_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    env.update(extra)
    return env


def _pip_version(python: Path | str) -> Version | None:
    done = subprocess.run(
        [str(python), "-m", "pip", "--version"],
        check=False,
        capture_output=True,
        text=True,
        env=_clean_env(),
    )
    return Version(done.stdout.split()[1]) if done.returncode == 0 else None


@pytest.fixture(scope="session")
def lock_pip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python whose pip has `pip lock`: the test interpreter's, else a venv with pip from
    PyPI."""
    found = _pip_version(sys.executable)
    if found is not None and found >= PIP_LOCK:
        return Path(sys.executable)
    python = make_venv(tmp_path_factory.mktemp("pip-lock") / "venv")
    done = subprocess.run(
        [find_uv_bin(), "pip", "install", "--quiet", "--no-config", "--python", str(python)]
        + [f"pip>={PIP_LOCK}"],
        check=False,
        capture_output=True,
        text=True,
        env=_clean_env(),
    )
    if done.returncode != 0:
        pytest.skip(f"no pip >= {PIP_LOCK} here and none could be installed: {done.stderr[-300:]}")
    return python


def pip_lock(python: Path, out: Path, *args: str) -> Path:
    subprocess.run(
        [str(python), "-m", "pip", "lock", "--isolated", "--quiet", "-o", str(out), *args],
        check=True,
        capture_output=True,
        env=_clean_env(),
    )
    return out


def uv_export(project: Path, out: Path, *, pypi: str) -> Path:
    uv = find_uv_bin()
    common = ["--no-config", "--quiet", "--directory", str(project)]
    lock = ["lock", *common, "--python", sys.executable, "--default-index", pypi]
    subprocess.run([uv, *lock], check=True, capture_output=True, env=_clean_env())
    export = ["export", *common, "--frozen", "--format", "pylock.toml", "--no-emit-project"]
    subprocess.run([uv, *export, "-o", str(out)], check=True, capture_output=True, env=_clean_env())
    return out


UV_PROJECT = """\
[project]
name = "adopted"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["torch==2.6.0", "transformers<5", "six"]

[tool.uv]
environments = ["sys_platform == 'linux' and platform_machine == 'x86_64'"]

[[tool.uv.index]]
name = "pytorch-cu124"
url = "{pytorch}/cu124"
explicit = true

[tool.uv.sources]
torch = {{ index = "pytorch-cu124" }}
"""


@pytest.fixture(scope="session")
def foreign_locks(
    lock_pip: Path, indexes: StandardIndexes, tmp_path_factory: pytest.TempPathFactory
) -> Mapping[str, str]:
    """Lock texts by the tool that wrote them: pip and uv for torch 2.6 cu124 + transformers +
    six; pip for a lock without torch; pip with a file:// artifact (a --find-links folder)."""
    work = tmp_path_factory.mktemp("foreign")
    pypi, torch = indexes.pypi_url, indexes.pytorch_url
    served = ["--index-url", pypi, "--extra-index-url", f"{torch}/cu124"]
    made = {
        "pip": pip_lock(
            lock_pip, work / "pylock.pip.toml", *served, TORCH, "transformers<5", "six"
        ),
        "pip-pure": pip_lock(lock_pip, work / "pylock.pure.toml", "--index-url", pypi, "six"),
    }
    local = work / "wheels"
    local.mkdir()
    for wheel in (indexes.pypi_root / "six" / "files").glob("six-1.17.0-*.whl"):
        shutil.copy(wheel, local)
    made["pip-local"] = pip_lock(
        lock_pip, work / "pylock.local.toml", "--no-index", "--find-links", str(local), "six"
    )
    project = work / "uv-project"
    project.mkdir()
    (project / "pyproject.toml").write_text(UV_PROJECT.format(pytorch=torch))
    made["uv"] = uv_export(project, work / "pylock.uv.toml", pypi=pypi)
    return {tool: path.read_text() for tool, path in made.items()}


@pytest.fixture
def project(fixture_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(tmp_path / "no-nvidia-smi"))  # no driver here
    return fixture_env


def _place(project: Path, text: str, name: str = "pylock.toml") -> Path:
    path = project / name
    path.write_text(text)
    return path


def test_the_tools_wrote_what_the_issue_describes(foreign_locks: Mapping[str, str]) -> None:
    """The defects depend on these shapes: no [tool.envlock]; pip names no index."""
    for text in foreign_locks.values():
        assert "[tool.envlock]" not in text
    assert "index = " not in foreign_locks["pip"]
    assert "index = " in foreign_locks["uv"]
    assert "file://" in foreign_locks["pip-local"]
    assert "+cu124" in foreign_locks["pip"] and "+cu124" in foreign_locks["uv"]


EXPORTS = {
    "export-requirements": ("export", "requirements", "-o", "requirements.txt"),
    "export-conda": ("export", "conda", "-o", "environment.yml"),
    "export-dockerfile": ("export", "dockerfile", "-o", "image"),
    "bundle": ("bundle", "-o", "offline"),
}


@pytest.mark.parametrize("tool", ["pip", "uv"])
@pytest.mark.parametrize("command", sorted(EXPORTS))
def test_exports_read_a_foreign_lock_and_say_what_they_derived(
    tool: str, command: str, foreign_locks: Mapping[str, str], project: Path, cli: Cli
) -> None:
    _place(project, foreign_locks[tool])
    result = cli(*EXPORTS[command])
    assert result.code == 0, result.stderr
    assert "no [tool.envlock]" in result.stderr
    assert "torch: 2.6.0+cu124, build cu124" in result.stderr


@pytest.mark.parametrize("tool", ["pip", "uv"])
def test_export_requirements_of_a_foreign_lock_is_its_selection(
    tool: str, foreign_locks: Mapping[str, str], project: Path, cli: Cli
) -> None:
    _place(project, foreign_locks[tool])
    result = cli("export", "requirements")
    assert result.code == 0, result.stderr
    assert "(torch 2.6, cu124)" in result.stdout
    assert "/whl/cu124/torch-2.6.0%2Bcu124-cp311" in result.stdout
    assert "transformers @ " in result.stdout and "six @ " in result.stdout


@pytest.mark.parametrize("tool", ["pip", "uv"])
def test_dockerfile_of_a_foreign_lock_extends_the_official_image(
    tool: str, foreign_locks: Mapping[str, str], project: Path, cli: Cli
) -> None:
    """The torch build comes from the lock's own torch entry (+cu124), not [tool.envlock]."""
    _place(project, foreign_locks[tool])
    assert cli("export", "dockerfile", "-o", "image").code == 0
    assert (
        "FROM pytorch/pytorch:2.6.0-cuda12.4-cudnn9-runtime"
        in (project / "image" / "Dockerfile").read_text()
    )


@pytest.mark.parametrize("tool", ["pip", "uv"])
def test_doctor_reads_a_foreign_lock(
    tool: str, foreign_locks: Mapping[str, str], project: Path, cli: Cli
) -> None:
    _place(project, foreign_locks[tool])
    result = cli("doctor", "--json")
    assert result.code == 0, result.stderr
    findings = json.loads(result.stdout)["findings"]
    whats = [f["what"] for f in findings]
    assert "platform linux-x86_64 is locked" in whats
    assert any("no NVIDIA driver found; this cu124 lock" in w for w in whats)
    assert any(w.startswith("derived (no [tool.envlock]): torch: 2.6.0+cu124") for w in whats)
    assert not any("[tool.envlock] says" in w or "records" in w for w in whats)


@pytest.mark.parametrize("tool", ["pip", "uv"])
def test_sync_and_verify_a_foreign_lock(
    tool: str, foreign_locks: Mapping[str, str], project: Path, cli: Cli
) -> None:
    _place(project, foreign_locks[tool], "pylock.a.toml")
    synced = cli("sync", "--venv", ".venv", "--lock", "pylock.a.toml")
    assert synced.code == 0, synced.stderr
    done = subprocess.run(
        [str(project / ".venv" / "bin" / "python"), "-c", "import torch; print(torch.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "2.6.0+cu124"
    verified = cli("verify", "--venv", ".venv", "--lock", "pylock.a.toml")
    assert verified.code == 0, verified.stderr


def test_a_foreign_lock_without_torch(
    foreign_locks: Mapping[str, str], project: Path, cli: Cli
) -> None:
    """requests + rich shaped: no torch, pure-Python wheels that install anywhere."""
    _place(project, foreign_locks["pip-pure"])
    doctor = cli("doctor", "--json")
    assert doctor.code == 0, doctor.stderr
    whats = [f["what"] for f in json.loads(doctor.stdout)["findings"]]
    assert any("the lock has no torch" in w for w in whats)
    image = cli("export", "dockerfile", "--platform", "linux-x86_64", "-o", "image")
    assert image.code == 0, image.stderr
    assert "uses python:3.11-slim with the whole lock (the lock has no torch)" in image.stderr
    assert "(no torch)" in (project / "image" / "Dockerfile").read_text()


def _diff_json(cli: Cli, old: str, new: str) -> dict[str, object]:
    result = cli("diff", old, new, "--format", "json")
    assert result.code == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_diff_of_a_lock_without_index_keys_reports_no_index_change(
    foreign_locks: Mapping[str, str], project: Path, cli: Cli
) -> None:
    """pip writes no `index`, uv does: unknown on one side is not a move."""
    _place(project, foreign_locks["pip"], "pylock.pip.toml")
    _place(project, foreign_locks["uv"], "pylock.uv.toml")
    for old, new in (("pylock.pip.toml", "pylock.uv.toml"), ("pylock.uv.toml", "pylock.pip.toml")):
        counts = _diff_json(cli, old, new)["counts"]
        assert isinstance(counts, dict)
        assert "index-changed" not in counts, counts


def test_diff_reads_a_lock_with_file_artifacts_and_shows_them_local(
    foreign_locks: Mapping[str, str], project: Path, cli: Cli
) -> None:
    _place(project, foreign_locks["pip-pure"], "pylock.pure.toml")
    _place(project, foreign_locks["pip-local"], "pylock.local.toml")
    assert cli("diff", "pylock.pure.toml", "pylock.local.toml").stdout == "no changes\n"
    result = cli("diff", "pylock.local.toml", "pylock.pure.toml")  # same bytes, now served
    assert result.code == 0, result.stderr
    assert "same bytes, files now from 127.0.0.1:" in result.stdout
    assert "(were from (local path))" in result.stdout
    textconv = cli("textconv", "pylock.local.toml")
    assert textconv.code == 0 and "six 1.17.0 [-]" in textconv.stdout
    assert "from (local path)" in textconv.stdout


def test_installing_commands_still_refuse_file_artifacts(
    foreign_locks: Mapping[str, str], project: Path, cli: Cli
) -> None:
    """diff installs nothing; sync and export would read a file anywhere on the machine."""
    _place(project, foreign_locks["pip-local"])
    for args in (("sync", "--venv", ".venv"), ("export", "requirements")):
        result = cli(*args)
        assert_refused(result, ExitCode.MATERIALISE)
        assert "is not http(s)" in result.stderr


def test_verify_judges_a_venv_against_a_foreign_lock(
    foreign_locks: Mapping[str, str], project: Path, cli: Cli
) -> None:
    """An empty venv is reported as missing the lock's packages, not refused for the lock."""
    _place(project, foreign_locks["pip-pure"])
    make_venv(project / "empty")
    result = cli("verify", "--venv", "empty")
    assert result.code == ExitCode.CHECK_FAILED, result.stderr
    assert "six" in result.stderr + result.stdout
    assert "not written by envlock" not in result.stderr
