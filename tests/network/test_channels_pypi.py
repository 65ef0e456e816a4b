"""Cross-check the channel data against real PyPI: PyPI's own Linux torch wheel must depend on
the CUDA runtime of the variant channels/releases.toml names as PyPI's default."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.pylock import Pylock
from packaging.version import Version

from envlock import api
from envlock.channels import VariantKind
from envlock.spec import Platform
from tests.conftest import Cli

pytestmark = pytest.mark.network

RUNTIME_PACKAGES = (
    "nvidia-cuda-runtime-cu11",
    "nvidia-cuda-runtime-cu12",
    "nvidia-cuda-runtime-cu13",
    "nvidia-cuda-runtime",
    "cuda-toolkit",
)


def _cuda_runtime(lock: Pylock) -> str | None:
    for name in RUNTIME_PACKAGES:
        for package in lock.packages:
            if package.name == name and package.version is not None:
                version = Version(str(package.version))
                return f"{version.major}.{version.minor}"
    return None


@pytest.mark.parametrize("series", ["2.6", "2.8", "2.11", "2.14", "2.15"])
def test_pypi_default_variant_matches_pypi_wheel(series: str, isolated_env: Path, cli: Cli) -> None:
    release = api.load_channels().release(series)
    assert release is not None
    variant = release.pypi[Platform.LINUX_X86_64]
    assert variant.kind is VariantKind.CUDA
    (isolated_env / "torchenv.toml").write_text(
        f'[env]\npython = "3.11"\n[torch]\nversion = "{series}"\n'
        f'cuda = "{variant.version_text}"\nsource = "pypi"\n'
    )
    result = cli("lock")
    assert result.code == 0, result.stderr
    lock = Pylock.from_dict(tomllib.loads((isolated_env / "pylock.toml").read_text()))
    assert _cuda_runtime(lock) == variant.version_text
