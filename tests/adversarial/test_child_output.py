"""Children that print bytes which are not UTF-8 (a localised nvidia-smi, a .pth printing junk):
envlock reads them with replacement characters instead of crashing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from envlock.io.proc import run, run_echoing
from tests.conftest import Cli
from tests.test_lock_e2e import write_spec

JUNK = r"\377\376\200 caf\351 \303"  # printf(1) octal escapes: invalid UTF-8 throughout


def _junk_smi(tmp_path: Path, *, status: int) -> Path:
    """An nvidia-smi that answers the query with a GPU name in Latin-1 and junk on stderr."""
    script = tmp_path / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        f"printf 'NVIDIA {JUNK} RTX, 8.9, 550.54.15\\n'\n"
        f"printf '{JUNK}\\n' >&2\n"
        f"exit {status}\n"
    )
    script.chmod(0o755)
    return script


def test_run_replaces_bytes_that_are_not_utf8() -> None:
    done = run(["printf", r"ok \377 \376\n"], env=dict(os.environ))
    assert done.stdout == "ok \ufffd \ufffd\n"


def test_run_echoing_replaces_bytes_that_are_not_utf8() -> None:
    seen: list[str] = []
    done = run_echoing(
        ["sh", "-c", r"printf 'out \377\n'; printf 'err \376\n' >&2"],
        env=dict(os.environ),
        echo=seen.append,
    )
    assert done.stdout == "out \ufffd\n"
    assert done.stderr == "err \ufffd\n"
    assert seen == ["err \ufffd"]


@pytest.mark.parametrize("status", [0, 1], ids=["answers", "fails"])
def test_doctor_survives_an_nvidia_smi_printing_junk(
    fixture_env: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    write_spec(fixture_env)
    assert cli("lock").code == 0
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(_junk_smi(tmp_path, status=status)))
    result = cli("doctor")
    assert result.code in {0, 1}, result.stderr
    assert "internal error" not in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("status", [0, 1], ids=["answers", "fails"])
def test_init_survives_an_nvidia_smi_printing_junk(
    isolated_env: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(_junk_smi(tmp_path, status=status)))
    result = cli("init")
    assert result.code == 0, result.stderr
    assert "internal error" not in result.stderr
    assert (isolated_env / "torchenv.toml").is_file()
