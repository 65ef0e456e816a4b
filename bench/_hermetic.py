"""Shared by the hermetic benchmarks: the test suite's fixture indexes and a clean environment."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.indexes import StandardIndexes, start_standard_indexes  # noqa: E402

SPEC = """\
[env]
python = "3.11"
[torch]
version = "2.6"
cuda = "12.6"
vision = true
[packages]
numpy = "*"
six = "*"
transformers = "<5"
"""


def hermetic(work: Path) -> tuple[StandardIndexes, dict[str, str]]:
    """Serve the fixture indexes; an environment pointing envlock at them, no ambient config."""
    served = start_standard_indexes(work / "indexes")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_", "ENVLOCK_"))}
    env.update(
        ENVLOCK_PYPI_INDEX_URL=served.pypi_url,
        ENVLOCK_PYTORCH_INDEX_URL=served.pytorch_url,
        ENVLOCK_CACHE_DIR=str(work / "cache"),
    )
    return served, env
