"""`envlock init --from FILE` on real-world shaped inputs, each followed by `envlock lock` and a
check that the lock is what the file meant (issue 15 item 3)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from envlock.errors import ExitCode
from tests.conftest import Cli, assert_refused
from tests.support.indexes import StandardIndexes
from tests.test_foreign_locks import lock_pip, pip_lock  # noqa: F401 - the session fixture

# file name -> (text, files beside it, the build and versions the lock must have)
CASES: dict[str, tuple[str, str, dict[str, str], str, dict[str, str]]] = {
    # The seeds' shape: `pip install transformers==… datasets …` on top of a torch cu124 image.
    "seed-dockerfile": (
        "Dockerfile",
        "FROM pytorch/pytorch:2.6.0-cuda12.4-cudnn9-runtime\n"
        "RUN pip install --no-cache-dir transformers==4.50.0 datasets six\n",
        {},
        "cu124",
        {"torch": "2.6.0", "transformers": "4.50.0", "datasets": "3.2.0"},
    ),
    # A PyTorch "get started" command line, pinned to the release the fixture index serves.
    "get-started": (
        "install.sh",
        "pip3 install torch==2.6.0 torchvision --index-url https://download.pytorch.org/whl/cu126\n",
        {},
        "cu126",
        {"torch": "2.6.0+cu126", "torchvision": "0.21.0+cu126"},
    ),
    "requirements-label-and-constraints": (
        "requirements.txt",
        "--extra-index-url https://download.pytorch.org/whl/cu118\n"
        "torch==2.6.0+cu118  # the build pin\n"
        "numpy\nsix==1.16.0\n-c constraints.txt\n",
        {"constraints.txt": "numpy<2.3\n"},
        "cu118",
        {"torch": "2.6.0+cu118", "numpy": "2.2.0", "six": "1.16.0"},
    ),
    "pixi-environment": (
        "environment.yml",
        "name: research\nchannels:\n  - pytorch\n  - nvidia\n  - conda-forge\ndependencies:\n"
        "  - python=3.11\n  - pytorch::pytorch=2.6.0\n  - pytorch-cuda=12.6\n  - pip\n"
        "  - pip:\n      - transformers==4.50.0\n",
        {},
        "cu126",
        {"torch": "2.6.0+cu126", "transformers": "4.50.0"},
    ),
    "uv-pyproject": (
        "pyproject.toml",
        '[project]\nname = "app"\nversion = "1"\nrequires-python = ">=3.11"\n'
        'dependencies = ["torch==2.6.0", "six"]\n\n'
        '[[tool.uv.index]]\nname = "pytorch-cu126"\n'
        'url = "https://download.pytorch.org/whl/cu126"\nexplicit = true\n\n'
        '[tool.uv.sources]\ntorch = [{ index = "pytorch-cu126", marker = "sys_platform == \'linux\'" }]\n',
        {},
        "cu126",
        {"torch": "2.6.0+cu126", "six": "1.17.0"},
    ),
    "poetry-pyproject": (
        "pyproject.toml",
        '[tool.poetry.dependencies]\npython = "^3.11"\n'
        'torch = { version = "2.6.0", source = "pytorch-cpu" }\nsix = "^1.16"\n\n'
        '[[tool.poetry.source]]\nname = "pytorch-cpu"\n'
        'url = "https://download.pytorch.org/whl/cpu"\npriority = "explicit"\n',
        {},
        "cpu",
        {"torch": "2.6.0+cpu", "six": "1.17.0"},
    ),
}


def _locked(project: Path) -> tuple[str, dict[str, str]]:
    data = tomllib.loads((project / "pylock.toml").read_text())
    versions = {p["name"]: p["version"] for p in data["packages"]}
    return data["tool"]["envlock"]["variant"], versions


@pytest.mark.parametrize("case", sorted(CASES))
def test_init_from_then_lock_is_what_the_file_meant(case: str, fixture_env: Path, cli: Cli) -> None:
    name, text, beside, variant, versions = CASES[case]
    (fixture_env / name).write_text(text)
    for other, content in beside.items():
        (fixture_env / other).write_text(content)
    adopted = cli("init", "--from", name)
    assert adopted.code == 0, adopted.stderr
    spec = (fixture_env / "torchenv.toml").read_text()
    assert f"# Adopted from {name} by `envlock init --from`" in spec
    locked = cli("lock")
    assert locked.code == 0, locked.stderr + spec
    got_variant, got = _locked(fixture_env)
    assert got_variant == variant, spec
    assert {k: got.get(k) for k in versions} == versions, spec


def test_each_choice_has_a_comment(fixture_env: Path, cli: Cli) -> None:
    name, text, beside, _, _ = CASES["requirements-label-and-constraints"]
    (fixture_env / name).write_text(text)
    (fixture_env / "constraints.txt").write_text(beside["constraints.txt"])
    assert cli("init", "--from", name).code == 0
    spec = (fixture_env / "torchenv.toml").read_text()
    for said in (
        '--extra-index-url https://download.pytorch.org/whl/cu118 -> [torch] cuda = "11.8"',
        'torch==2.6.0+cu118 -> [torch] version = "2.6.0"',
        "-c constraints.txt: numpy<2.3 narrows numpy",
    ):
        assert f"#   - {said}" in spec or said in spec, spec
    assert 'numpy = "<2.3"' in spec and 'six = "==1.16.0"' in spec


def test_a_build_that_never_existed_is_refused_with_the_ones_that_do(
    isolated_env: Path, cli: Cli
) -> None:
    (isolated_env / "requirements.txt").write_text(
        "--index-url https://download.pytorch.org/whl/cu123\ntorch\n"
    )
    result = cli("init", "--from", "requirements.txt")
    assert_refused(result, ExitCode.SPEC)
    assert "requirements.txt asks for a 12.3 build of torch" in result.stderr
    assert "cu124 (torch 2.4-2.6)" in result.stderr and "--cuda 12.4" in result.stderr
    assert not (isolated_env / "torchenv.toml").exists()


def test_a_mirror_becomes_indexes(isolated_env: Path, cli: Cli) -> None:
    (isolated_env / "requirements.txt").write_text(
        "--index-url https://mirror.example/pypi/simple\n"
        "--extra-index-url https://mirror.example/torch/whl/cu124\ntorch==2.6.0\n"
    )
    assert cli("init", "--from", "requirements.txt").code == 0
    spec = tomllib.loads((isolated_env / "torchenv.toml").read_text())
    assert spec["indexes"] == {
        "pypi": "https://mirror.example/pypi/simple",
        "pytorch": "https://mirror.example/torch/whl",
    }
    assert spec["torch"]["cuda"] == "12.4"


def test_keep_versions_reproduces_a_pip_lock(
    lock_pip: Path,  # noqa: F811 - the session fixture
    indexes: StandardIndexes,
    fixture_env: Path,
    cli: Cli,
) -> None:
    """A pylock lists no roots: init lists its packages unpinned, and `lock --keep-versions`
    keeps the lock's (older) versions; without it they move to the newest."""
    pins = ("numpy==2.2.0", "six==1.16.0", "transformers<5")
    served = ["--index-url", indexes.pypi_url, "--extra-index-url", f"{indexes.pytorch_url}/cu124"]
    pip_lock(lock_pip, fixture_env / "pylock.old.toml", *served, "torch==2.6.0+cu124", *pins)
    assert cli("init", "--from", "pylock.old.toml").code == 0
    assert cli("lock").code == 0
    assert _locked(fixture_env)[1]["numpy"] == "2.3.0"
    kept = cli("lock", "--keep-versions", "pylock.old.toml")
    assert kept.code == 0, kept.stderr
    variant, versions = _locked(fixture_env)
    assert variant == "cu124"
    assert (versions["numpy"], versions["six"], versions["transformers"]) == (
        "2.2.0",
        "1.16.0",
        "4.50.0",
    )
    assert "kept 8 of 8 versions from pylock.old.toml" in kept.stderr
