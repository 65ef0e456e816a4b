"""Re-lock every example under lockfiles/ against the live indexes.

    python lockfiles/regenerate.py            # re-resolve only specs that changed
    python lockfiles/regenerate.py --upgrade  # re-resolve everything to the newest allowed

A test (tests/test_lockfiles.py) checks that each committed lock is fresh for its spec.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    extra = sys.argv[1:]
    status = 0
    for spec in sorted(HERE.glob("*/torchenv.toml")):
        print(f"== {spec.parent.name}", flush=True)
        result = subprocess.run(
            [sys.executable, "-m", "envlock", "lock", "--spec", str(spec), *extra], check=False
        )
        status = status or result.returncode
    return status


if __name__ == "__main__":
    raise SystemExit(main())
