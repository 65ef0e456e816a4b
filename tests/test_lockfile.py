from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from typing import Any

import pytest
from packaging.pylock import Pylock

from envlock.errors import ExitCode, LockfileError
from envlock.lockfile import LockMeta, lock_meta, parse_lock_text, render_lock
from tests.golden import assert_golden

SHA = "a" * 64


def _lock_dict() -> dict[str, Any]:
    meta = LockMeta(
        spec_digest="sha256:" + "b" * 64,
        envlock_version="0.1.0",
        python="3.11",
        platforms=("linux-x86_64",),
        torch="2.6",
        variant="cu124",
        variant_index="https://download.pytorch.org/whl/cu124",
        pypi_index="https://pypi.org/simple",
        torch_source={"linux-x86_64": "pytorch-index"},
        exclude_newer=datetime(2026, 11, 1, tzinfo=UTC),
    )
    return {
        "lock-version": "1.0",
        "environments": ["sys_platform == 'linux' and platform_machine == 'x86_64'"],
        "requires-python": "==3.11.*",
        "created-by": "envlock",
        "packages": [
            {
                "name": "torch",
                "version": "2.6.0+cu124",
                "index": "https://download.pytorch.org/whl/cu124",
                "wheels": [
                    {
                        "url": "https://download.pytorch.org/whl/cu124/torch-2.6.0%2Bcu124-cp311-cp311-manylinux_2_28_x86_64.whl",
                        "hashes": {"sha256": SHA},
                    }
                ],
            },
            {
                "name": "six",
                "version": "1.17.0",
                "marker": "sys_platform == 'linux'",
                "index": "https://pypi.org/simple",
                "sdist": {
                    "url": "https://files.example/six-1.17.0.tar.gz",
                    "upload-time": datetime(2024, 12, 4, 17, 35, 28, tzinfo=UTC),
                    "size": 34031,
                    "hashes": {"sha256": SHA},
                },
                "wheels": [
                    {
                        "url": "https://files.example/six-1.17.0-py2.py3-none-any.whl",
                        "upload-time": datetime(2024, 12, 4, 17, 35, 26, tzinfo=UTC),
                        "size": 11050,
                        "hashes": {"sha256": SHA},
                    }
                ],
            },
        ],
        "tool": {"envlock": meta.to_tool()},
    }


def test_render_is_golden_and_valid() -> None:
    text = render_lock(Pylock.from_dict(_lock_dict()))
    assert_golden("lock_basic.toml", text)
    Pylock.from_dict(tomllib.loads(text))


def test_render_is_deterministic_and_sorted() -> None:
    lock = Pylock.from_dict(_lock_dict())
    first = render_lock(lock)
    again = render_lock(parse_lock_text(first))
    assert first == again
    assert first.index('name = "six"') < first.index('name = "torch"')
    assert "\r" not in first


def test_meta_round_trips() -> None:
    lock = parse_lock_text(render_lock(Pylock.from_dict(_lock_dict())))
    meta = lock_meta(lock)
    assert meta is not None
    assert meta.variant == "cu124"
    assert meta.torch_source == {"linux-x86_64": "pytorch-index"}
    assert meta.exclude_newer == datetime(2026, 11, 1, tzinfo=UTC)


def test_corrupt_lock_names_the_key_path() -> None:
    text = render_lock(Pylock.from_dict(_lock_dict())).replace(
        f'size = 11050, hashes = {{ sha256 = "{SHA}" }}', "size = 11050, hashes = {}"
    )
    with pytest.raises(LockfileError) as info:
        parse_lock_text(text, source="pylock.toml")
    assert "packages[0].wheels[0].hashes" in info.value.message
    assert info.value.exit_code == ExitCode.MATERIALISE


def test_lock_that_is_not_toml() -> None:
    with pytest.raises(LockfileError, match="not valid TOML"):
        parse_lock_text("[[packages]\n")
