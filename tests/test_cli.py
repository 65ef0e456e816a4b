"""The command line: exit codes, error/hint lines, init, channels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from envlock.spec import parse_spec_text
from tests.conftest import Cli


def _fake_nvidia_smi(tmp_path: Path, driver: str) -> Path:
    script = tmp_path / "nvidia-smi"
    script.write_text(f'#!/bin/sh\necho "NVIDIA A100-SXM4-80GB, 8.0, {driver}"\n')
    script.chmod(0o755)
    return script


def test_no_arguments_shows_help(cli: Cli) -> None:
    result = cli()
    assert result.code == 2
    assert "envlock init" in result.stderr


def test_unknown_option_is_a_usage_error(cli: Cli) -> None:
    result = cli("lock", "--frobnicate")
    assert result.code == 2
    assert result.stderr.startswith("error:")
    assert "hint:" in result.stderr


def test_missing_spec(isolated_env: Path, cli: Cli) -> None:
    result = cli("lock")
    assert result.code == 3
    assert "torchenv.toml does not exist" in result.stderr
    assert "hint: Run `envlock init`" in result.stderr


def test_invalid_lock_name(isolated_env: Path, cli: Cli) -> None:
    result = cli("lock", "--lock", "my.lock.toml")
    assert result.code == 2
    assert "PEP 751" in result.stderr


def test_spec_errors_exit_3_and_write_nothing(isolated_env: Path, cli: Cli) -> None:
    (isolated_env / "torchenv.toml").write_text(
        '[env]\npython = "3.11"\n[torch]\nversion = "2.6"\n'
    )
    result = cli("lock")
    assert result.code == 3
    assert "torch.cuda: missing" in result.stderr
    assert not (isolated_env / "pylock.toml").exists()


def test_unsupported_python_for_release(isolated_env: Path, cli: Cli) -> None:
    (isolated_env / "torchenv.toml").write_text(
        '[env]\npython = "3.14"\n[torch]\nversion = "2.6"\ncuda = "cpu"\n'
    )
    result = cli("lock")
    assert result.code == 3
    assert "torch 2.6 has no wheels for Python 3.14" in result.stderr
    assert "2.9" in result.stderr  # a release that does support 3.14


def test_release_missing_from_channel_data(isolated_env: Path, cli: Cli) -> None:
    (isolated_env / "torchenv.toml").write_text(
        '[env]\npython = "3.11"\n[torch]\nversion = "2.99"\ncuda = "cpu"\n'
    )
    result = cli("lock")
    assert result.code == 3
    assert "not in envlock's channel data" in result.stderr
    assert "channels/releases.toml" in result.stderr


def test_errors_never_show_a_traceback_unless_debug(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVLOCK_")}
    base = [sys.executable, "-m", "envlock"]
    plain = subprocess.run(
        [*base, "lock"], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert plain.returncode == 3
    assert "Traceback" not in plain.stderr
    debug = subprocess.run(
        [*base, "--debug", "lock"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert debug.returncode == 3
    assert "Traceback" in debug.stderr


def test_init_with_everything_on_the_command_line(isolated_env: Path, cli: Cli) -> None:
    result = cli(
        "init",
        "--torch",
        "2.6",
        "--cuda",
        "12.4",
        "--python",
        "3.11",
        "--with",
        "transformers",
        "--with",
        "datasets>=3",
        "--platform",
        "linux-x86_64",
    )
    assert result.code == 0, result.stderr
    text = (isolated_env / "torchenv.toml").read_text()
    spec = parse_spec_text(text)
    assert spec.torch.cuda == "12.4"
    assert spec.python == "3.11"
    assert [str(r) for r in spec.packages] == ["datasets>=3", "transformers"]
    assert "# " in text  # commented


def test_init_refuses_to_overwrite(isolated_env: Path, cli: Cli) -> None:
    (isolated_env / "torchenv.toml").write_text("keep me")
    result = cli("init", "--cuda", "cpu")
    assert result.code == 2
    assert "--force" in result.stderr
    assert (isolated_env / "torchenv.toml").read_text() == "keep me"
    assert cli("init", "--cuda", "cpu", "--force").code == 0


def test_init_detects_the_driver(
    isolated_env: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(_fake_nvidia_smi(tmp_path, "550.54.14")))
    result = cli("init", "--torch", "2.6")
    assert result.code == 0, result.stderr
    text = (isolated_env / "torchenv.toml").read_text()
    assert 'cuda = "12.6"' in text
    assert "550.54.14" in text
    assert "auto" not in tomllib.loads(text)["torch"]["cuda"]


def test_init_without_gpu_writes_pypi_build(
    isolated_env: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(tmp_path / "absent-nvidia-smi"))
    monkeypatch.setenv("PATH", str(tmp_path))
    result = cli("init", "--torch", "2.6")
    assert result.code == 0, result.stderr
    text = (isolated_env / "torchenv.toml").read_text()
    assert 'cuda = "12.4"' in text
    assert "no NVIDIA driver" in text


def test_channels_matrix(cli: Cli) -> None:
    result = cli("channels")
    assert result.code == 0
    assert "2.6 " in result.stdout
    assert "cu124" in result.stdout


def test_channels_json(cli: Cli) -> None:
    result = cli("channels", "--json")
    data = json.loads(result.stdout)
    release = next(r for r in data["releases"] if r["torch"] == "2.6")
    assert release["pypi"]["linux-x86_64"] == "cu124"
    assert "cu126" in release["variants"]
    assert release["torchvision"] == "0.21"


def test_channels_explains_a_choice(cli: Cli) -> None:
    result = cli("channels", "--torch", "2.6", "--cuda", "12.6", "--json")
    data = json.loads(result.stdout)
    assert data["variant"] == "cu126"
    assert data["platforms"][0]["source"] == "pytorch-index"
    assert data["platforms"][0]["index"] == "https://download.pytorch.org/whl/cu126"


def test_channels_explains_cu123(cli: Cli) -> None:
    result = cli("channels", "--torch", "2.6", "--cuda", "12.3")
    assert result.code == 3
    assert "cu118, cu124, cu126" in result.stderr
    assert "525.60.13" in result.stderr


def test_binary_junk_spec_is_a_spec_error(isolated_env: Path, cli: Cli) -> None:
    (isolated_env / "torchenv.toml").write_bytes(b"\xff\xfe\x00junk\x80" * 100)
    result = cli("lock")
    assert result.code == 3
    assert "not UTF-8" in result.stderr
    assert "hint:" in result.stderr
