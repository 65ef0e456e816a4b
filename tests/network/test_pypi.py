"""A few tests against the real PyPI: properties, not versions (they move every day)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.pylock import Pylock
from packaging.utils import parse_wheel_filename

from envlock.channels import VariantKind
from envlock.resolve import platform_environment, platform_tags
from envlock.spec import Platform
from tests.conftest import Cli

pytestmark = pytest.mark.network

SPEC = """\
[env]
python = "3.11"
platforms = ["linux-x86_64"]

[torch]
version = "2.14"
cuda = "13.0"
vision = true

[packages]
transformers = ">=4.40,<6"
datasets = "*"
"""


@pytest.fixture
def pypi_env(isolated_env: Path) -> Path:
    return isolated_env


def test_torch_transformers_datasets_lock_from_real_pypi(pypi_env: Path, cli: Cli) -> None:
    (pypi_env / "torchenv.toml").write_text(SPEC)
    result = cli("lock")
    assert result.code == 0, result.stderr
    lock = Pylock.from_dict(tomllib.loads((pypi_env / "pylock.toml").read_text()))
    names = {p.name for p in lock.packages}
    assert {"torch", "torchvision", "transformers", "datasets"} <= names
    torch = next(p for p in lock.packages if p.name == "torch")
    assert str(torch.version).startswith("2.14.")
    assert torch.index == "https://pypi.org/simple"
    supported = frozenset(platform_tags(Platform.LINUX_X86_64, "3.11"))
    for package in lock.packages:
        assert package.wheels or package.sdist, package.name
        for wheel in package.wheels or ():
            assert re.fullmatch(r"[0-9a-f]{64}", wheel.hashes["sha256"])
            # Installable by CPython 3.11 on glibc x86_64 Linux: no PyPy, no other ABI/OS.
            assert parse_wheel_filename(wheel.filename)[3] & supported, wheel.filename
            assert "musllinux" not in wheel.filename
    # The lock installs on its own target, by the book: PEP 751 selection for linux-x86_64.
    selected = list(
        lock.select(
            environment=platform_environment(Platform.LINUX_X86_64, "3.11"),  # type: ignore[arg-type]
            tags=platform_tags(Platform.LINUX_X86_64, "3.11"),
        )
    )
    assert {p.name for p, _ in selected} == names


def test_cu123_is_refused_before_any_network(isolated_env: Path, cli: Cli) -> None:
    (isolated_env / "torchenv.toml").write_text(
        SPEC.replace('"13.0"', '"12.3"').replace("2.14", "2.6")
    )
    result = cli("lock")
    assert result.code == 3
    assert "cu118, cu124, cu126" in result.stderr
    assert "525.60.13" in result.stderr
    _ = VariantKind
