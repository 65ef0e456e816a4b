"""Only the spec and its indexes decide the lock (issue: lock integrity)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from envlock.errors import ExitCode
from tests.conftest import Cli, assert_refused
from tests.support.indexes import StandardIndexes
from tests.support.wheels import Dist, build_wheel
from tests.test_lock_e2e import read_lock, write_spec

HOSTILE = """\
[project]
name = "hostile"
version = "0"

[tool.uv.workspace]
members = ["envlock-*", "*"]

[tool.uv]
override-dependencies = ["six==1.16.0"]
constraint-dependencies = ["six<1.17"]
"""


def test_a_workspace_planted_above_tmpdir_and_the_project_changes_nothing(
    fixture_env: Path, tmp_path: Path
) -> None:
    """uv discovers workspaces upward: a pyproject.toml in a parent of envlock's temporary
    directory (/tmp on a shared machine) or of the project made six come from its override."""
    hostile = tmp_path / "hostile"
    tmpdir = hostile / "tmp"
    tmpdir.mkdir(parents=True)
    (hostile / "pyproject.toml").write_text(HOSTILE)
    (tmpdir / "pyproject.toml").write_text(HOSTILE)
    project = hostile / "project"
    project.mkdir()
    write_spec(project, vision=False)
    env = {**os.environ, "TMPDIR": str(tmpdir), "ENVLOCK_NVIDIA_SMI": str(tmp_path / "none")}
    result = subprocess.run(
        [sys.executable, "-m", "envlock", "lock"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    six = next(p for p in read_lock(project).packages if p.name == "six")
    assert str(six.version) == "1.17.0"
    assert not (hostile / "uv.lock").exists()
    assert not (tmpdir / "uv.lock").exists()
    assert sorted(p.name for p in tmpdir.iterdir()) == ["pyproject.toml"]


def _dotted_project(indexes: StandardIndexes) -> None:
    """A mirror serving `zope.interface-7.0-py3-none-any.whl` (the dotted spelling older
    uploads have) on the normalised page /simple/zope-interface/."""
    root = indexes.pypi_root
    files = root / "zope-interface" / "files"
    if files.exists():
        return
    wheel = build_wheel(Dist(name="zope.interface", version="7.0"), "py3-none-any", files)
    dotted = wheel.rename(files / "zope.interface-7.0-py3-none-any.whl")
    sha = hashlib.sha256(dotted.read_bytes()).hexdigest()
    href = f"/simple/zope-interface/files/{dotted.name}#sha256={sha}"
    (root / "zope-interface" / "index.html").write_text(
        f'<html><body><a href="{href}">{dotted.name}</a></body></html>\n'
    )


def test_a_dotted_project_name_on_a_mirror_is_no_false_hash_refusal(
    fixture_env: Path, cli: Cli, indexes: StandardIndexes
) -> None:
    _dotted_project(indexes)
    write_spec(fixture_env, vision=False, packages='"zope.interface" = "*"\n"ruamel.yaml" = "*"')
    result = cli("lock")
    assert result.code == 0, result.stderr
    names = {p.name for p in read_lock(fixture_env).packages}
    assert {"zope-interface", "ruamel-yaml"} <= names


@pytest.mark.parametrize("suffix", ["?token=s3cr3t-t0ken", "#section"])
def test_index_urls_with_a_query_or_fragment_lock_and_leak_nothing(
    fixture_env: Path,
    cli: Cli,
    indexes: StandardIndexes,
    monkeypatch: pytest.MonkeyPatch,
    suffix: str,
) -> None:
    monkeypatch.setenv("ENVLOCK_PYPI_INDEX_URL", indexes.pypi_url + suffix)
    write_spec(fixture_env, vision=False)
    before = len(indexes.pypi_server.targets)
    result = cli("--debug", "lock")
    assert result.code == 0, result.stderr
    text = (fixture_env / "pylock.toml").read_text()
    assert "s3cr3t" not in text and "#section" not in text
    assert "s3cr3t" not in result.stdout + result.stderr
    assert f'index = "{indexes.pypi_url}"' in text
    if suffix.startswith("?"):  # the token is used on the wire, for envlock's page reads too
        pages = [t for t in indexes.pypi_server.targets[before:] if t.endswith(suffix)]
        assert "/simple/six/" + suffix in pages, pages
    assert cli("lock", "--check").code == 0


VARIANTS = """\
[env]
python = "3.11"
platforms = ["linux-x86_64"]

[torch]
version = "2.6"
cuda = "12.6"
vision = false

[packages]
six = "*"

[variants.cpu]
cuda = "cpu"

[variants.cu126]
cuda = "12.6"
"""


def test_a_failing_variant_leaves_every_variant_lock_as_it_was(
    fixture_env: Path, cli: Cli, indexes: StandardIndexes
) -> None:
    spec = fixture_env / "torchenv.toml"
    spec.write_text(VARIANTS)
    assert cli("lock").code == 0
    before = {p.name: p.read_bytes() for p in fixture_env.glob("pylock.*.toml")}
    assert sorted(before) == ["pylock.cpu.toml", "pylock.cu126.toml"]
    spec.write_text(VARIANTS.replace('six = "*"', 'six = "*"\nnumpy = "*"'))
    indexes.pytorch_server.fail("/whl/cu126/", 500)  # the variant locked second fails
    try:
        result = cli("lock")
    finally:
        indexes.pytorch_server.clear_faults()
    assert result.code == 5, result.stderr
    assert {p.name: p.read_bytes() for p in fixture_env.glob("pylock.*.toml")} == before
    assert not [p for p in fixture_env.iterdir() if p.name.endswith(".tmp")]
    assert cli("lock").code == 0  # and the next run writes both
    after = {p.name: p.read_bytes() for p in fixture_env.glob("pylock.*.toml")}
    assert all(after[name] != before[name] for name in before)


# --- messages and exit codes that misled --------------------------------------------------


def test_a_timeout_names_envlocks_own_setting(
    fixture_env: Path, cli: Cli, indexes: StandardIndexes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVLOCK_HTTP_TIMEOUT", "1")
    write_spec(fixture_env, vision=False)
    indexes.pypi_server.delay("/simple/six/", 4)
    try:
        result = cli("lock", "--upgrade")
    finally:
        indexes.pypi_server.clear_faults()
    assert result.code == 5, result.stderr
    assert "UV_HTTP_TIMEOUT" not in result.stderr
    assert "ENVLOCK_HTTP_TIMEOUT" in result.stderr


@pytest.mark.parametrize("name", ["", "tourch", "six @ x"])
def test_upgrade_package_names_a_package_of_the_lock(
    fixture_env: Path, cli: Cli, name: str
) -> None:
    write_spec(fixture_env, vision=False)
    assert cli("lock").code == 0
    before = (fixture_env / "pylock.toml").read_bytes()
    result = cli("lock", "-P", name)
    assert_refused(result, ExitCode.USAGE)
    if name == "tourch":
        assert "did you mean torch" in result.stderr
    assert (fixture_env / "pylock.toml").read_bytes() == before


def test_a_relative_cache_dir_is_the_invoking_directorys(
    fixture_env: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", "relative-cache")
    write_spec(fixture_env, vision=False)
    assert cli("lock").code == 0
    assert (fixture_env / "relative-cache" / "uv").is_dir()


def test_a_fifo_as_the_spec_is_refused_not_waited_on(fixture_env: Path) -> None:
    fifo = fixture_env / "torchenv.toml"
    os.mkfifo(fifo)
    result = subprocess.run(
        [sys.executable, "-m", "envlock", "lock"],
        cwd=fixture_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == ExitCode.SPEC, result.stderr
    assert "not a regular file" in result.stderr


def test_an_unknown_variant_lists_the_variants(fixture_env: Path, cli: Cli) -> None:
    (fixture_env / "torchenv.toml").write_text(VARIANTS)
    assert cli("lock").code == 0
    for args in (
        ("sync", "--venv", ".venv", "--variant", "cu999"),
        ("verify", "--venv", ".venv", "--variant", "cu999"),
        ("export", "requirements", "--variant", "cu999"),
        ("doctor", "--variant", "cu999"),
        ("lock", "--variant", "cu999"),
    ):
        result = cli(*args)
        assert result.code != 0, args
        assert "cpu" in result.stderr and "cu126" in result.stderr, (args, result.stderr)
