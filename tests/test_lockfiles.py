"""The example locks in lockfiles/ are fresh for their specs and select cleanly per platform.

Regenerate them with `python lockfiles/regenerate.py` (needs PyPI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from envlock.lockfile import lock_meta, parse_lock_text
from envlock.resolve import platform_environment, platform_tags
from envlock.spec import Platform
from tests.conftest import Cli

LOCKFILES = Path(__file__).resolve().parents[1] / "lockfiles"
EXAMPLES = sorted(p.parent for p in LOCKFILES.glob("*/torchenv.toml"))


def test_there_are_examples() -> None:
    assert {p.name for p in EXAMPLES} >= {"quickstart", "finetune"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_lock_is_fresh(example: Path, isolated_env: Path, cli: Cli) -> None:
    result = cli("lock", "--check", "--spec", str(example / "torchenv.toml"))
    assert result.code == 0, result.stderr


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_lock_selects_on_every_platform(example: Path) -> None:
    lock = parse_lock_text((example / "pylock.toml").read_text())
    meta = lock_meta(lock)
    assert meta is not None
    assert meta.platforms  # else the loop below would check nothing
    for platform in meta.platforms:
        target = Platform(platform)
        selected = list(
            lock.select(
                environment=platform_environment(target, meta.python),  # type: ignore[arg-type]
                tags=platform_tags(target, meta.python),
            )
        )
        names = {package.name for package, _ in selected}
        assert "torch" in names
        assert all(artifact.hashes for _, artifact in selected)  # type: ignore[union-attr]
