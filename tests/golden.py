"""Golden files: compare rendered output; `ENVLOCK_UPDATE_GOLDEN=1 pytest` rewrites them."""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN_DIR = Path(__file__).parent / "golden"
# Read once at import: test fixtures clear ENVLOCK_* variables from the environment.
UPDATE = os.environ.get("ENVLOCK_UPDATE_GOLDEN") == "1"


def assert_golden(name: str, actual: str) -> None:
    path = GOLDEN_DIR / name
    if UPDATE:
        path.write_text(actual, encoding="utf-8", newline="\n")
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} differs; run `ENVLOCK_UPDATE_GOLDEN=1 pytest` if intended"
