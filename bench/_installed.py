"""envlock's modules compiled to bytecode, as `pip install` leaves them.

An editable install has no `__pycache__` until a run writes one, and this machine's
environment sets PYTHONDONTWRITEBYTECODE=1, so without this every timed `python -m envlock`
compiled each module it imports from source first (~0.07 s of a 0.3 s sync): a cost no
installed envlock has. Each benchmark calls as_installed() before it times anything.
"""

from __future__ import annotations

import compileall
from pathlib import Path

import envlock


def as_installed() -> None:
    compileall.compile_dir(Path(envlock.__file__).parent, quiet=1)
