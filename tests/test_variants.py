"""[variants.<name>]: one lock per build, aligned where the requirements allow."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.pylock import Pylock

from tests.conftest import Cli

SPEC = """\
[env]
python = "3.11"
platforms = ["linux-x86_64"]

[torch]
version = "2.6"
cuda = "12.6"
vision = true

[packages]
numpy = "*"
six = "*"

[variants.cpu]
cuda = "cpu"

[variants.cu124]
cuda = "12.4"
source = "pytorch-index"

[variants.cu126]
cuda = "12.6"
"""


def _versions(path: Path) -> dict[str, str]:
    lock = Pylock.from_dict(tomllib.loads(path.read_text()))
    return {p.name: str(p.version) for p in lock.packages}


@pytest.fixture
def variant_dir(fixture_env: Path) -> Path:
    (fixture_env / "torchenv.toml").write_text(SPEC)
    return fixture_env


def test_three_variants_lock_with_aligned_versions(variant_dir: Path, cli: Cli) -> None:
    result = cli("lock")
    assert result.code == 0, result.stderr
    assert "warning" not in result.stderr
    locks = {n: _versions(variant_dir / f"pylock.{n}.toml") for n in ("cpu", "cu124", "cu126")}
    assert not (variant_dir / "pylock.toml").exists()
    assert {v["torch"] for v in locks.values()} == {"2.6.0+cpu", "2.6.0+cu124", "2.6.0+cu126"}
    for shared in ("numpy", "six", "sympy", "filelock"):
        assert len({v[shared] for v in locks.values()}) == 1, shared
    assert cli("lock", "--check").code == 0
    spec = variant_dir / "torchenv.toml"
    spec.write_text(
        spec.read_text().replace(
            '[variants.cu126]\ncuda = "12.6"', '[variants.cu126]\ncuda = "12.6"\naudio = true'
        )
    )
    stale = cli("lock", "--check")
    assert stale.code == 1
    assert "pylock.cu126.toml is stale" in stale.stderr


def test_a_variant_that_cannot_align_is_explained(variant_dir: Path, cli: Cli) -> None:
    spec = variant_dir / "torchenv.toml"
    spec.write_text(
        spec.read_text().replace('[variants.cpu]\ncuda = "cpu"', '[variants.cu118]\ncuda = "11.8"')
    )
    result = cli("lock")
    assert result.code == 0, result.stderr
    assert "sympy is not aligned across variants" in result.stderr
    assert "cu118 cannot take sympy 1.13.1" in result.stderr
    assert "depend on sympy==1.13.3" in result.stderr  # uv's reason, trimmed
    assert _versions(variant_dir / "pylock.cu118.toml")["sympy"] == "1.13.3"
    assert _versions(variant_dir / "pylock.cu126.toml")["sympy"] == "1.13.1"


def test_one_variant_at_a_time_and_the_other_commands(
    variant_dir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert cli("lock", "--variant", "cpu").code == 0
    assert (variant_dir / "pylock.cpu.toml").exists()
    assert not (variant_dir / "pylock.cu126.toml").exists()
    unknown = cli("lock", "--variant", "rocm")
    assert unknown.code == 3
    assert "has no variant 'rocm' (it has: cpu, cu124, cu126)" in unknown.stderr
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(tmp_path / "no-nvidia-smi"))
    assert cli("sync", "--venv", ".venv", "--variant", "cpu").code == 0
    assert cli("verify", "--venv", ".venv", "--variant", "cpu").code == 0
    exported = cli("export", "requirements", "--variant", "cpu")
    assert exported.code == 0
    assert "torch @" in exported.stdout and "%2Bcpu" in exported.stdout
    assert cli("doctor", "--variant", "cpu").code == 0


def test_doctor_says_which_variant_suits_this_host(
    variant_dir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert cli("lock").code == 0
    smi = tmp_path / "nvidia-smi"
    smi.write_text('#!/bin/sh\necho "Tesla V100-SXM2-16GB, 7.0, 470.256.02"\n')
    smi.chmod(0o755)
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(smi))
    result = cli("doctor")
    assert result.code == 0, result.stdout + result.stderr
    assert "suits this host: cpu" in result.stdout
    assert "cu124: error" in result.stdout


def test_bad_variant_tables(variant_dir: Path, cli: Cli) -> None:
    spec = variant_dir / "torchenv.toml"
    spec.write_text(
        SPEC + '\n[variants."cu.bad"]\ncuda = "cpu"\n[variants.mac]\n'
        'platforms = ["macos-arm64"]\ncudaa = "cpu"\n'
    )
    result = cli("lock")
    assert result.code == 3
    assert "no dots" in result.stderr
    assert "not in [env] platforms" in result.stderr
    assert "did you mean 'cuda'" in result.stderr


def test_diff_of_one_variant_against_head(variant_dir: Path, cli: Cli) -> None:
    assert cli("lock", "--variant", "cpu").code == 0
    for args in (
        ["init", "-q"],
        ["add", "pylock.cpu.toml"],
        ["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "cpu"],
    ):
        subprocess.run(["git", *args], cwd=variant_dir, check=True, capture_output=True)
    assert cli("diff", "--variant", "cpu", "--exit-code").code == 0
    spec = variant_dir / "torchenv.toml"
    spec.write_text(spec.read_text().replace('six = "*"', 'six = "<1.17"'))
    assert cli("lock", "--variant", "cpu").code == 0
    changed = cli("diff", "--variant", "cpu", "--exit-code")
    assert changed.code == 1
    assert "six" in changed.stdout and "1.17.0 -> 1.16.0" in changed.stdout
