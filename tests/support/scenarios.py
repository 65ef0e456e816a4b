"""Project states several test files start from."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import Cli
from tests.test_lock_e2e import write_spec


def synced_then_relocked(project: Path, cli: Cli, saved: Path) -> Path:
    """.venv synced from a lock of six; that lock copied to ``saved``; the spec then grown by
    transformers and re-locked, so the next sync has downloads to make. Returns the old lock."""
    write_spec(project, packages='six = "*"')
    assert cli("lock").code == 0
    assert cli("sync", "--venv", ".venv").code == 0
    saved.mkdir()
    old_lock = saved / "pylock.toml"
    shutil.copy(project / "pylock.toml", old_lock)
    spec = project / "torchenv.toml"
    spec.write_text(spec.read_text().replace('six = "*"', 'six = "*"\ntransformers = "<5"'))
    assert cli("lock").code == 0
    return old_lock
