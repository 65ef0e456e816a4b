"""Virtual environments for tests that need one of their own, made by uv in a few milliseconds.

``python -m venv`` spends ~3 s in ensurepip seeding pip; uv installs the very same bundled
wheels (ensurepip's pip and, on 3.11, setuptools) in ~0.2 s, so a test that runs pip in a
venv gets the pip a plain ``python -m venv`` would have given it."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

from uv import find_uv_bin

# Where ensurepip keeps its wheels (Debian moves them: then ensurepip itself seeds pip).
_BUNDLED = Path(sysconfig.get_path("stdlib")) / "ensurepip" / "_bundled"


def make_venv(path: Path, *, pip: bool = False) -> Path:
    """A venv at ``path`` for the interpreter running the tests; returns its python. With
    ``pip``: the pip (and setuptools) that ``python -m venv`` would have seeded."""
    uv = find_uv_bin()
    python = path / "bin" / "python"
    subprocess.run(
        [uv, "venv", "--quiet", "--no-config", "--python", sys.executable, str(path)],
        check=True,
        capture_output=True,
    )
    if pip:
        wheels = sorted(_BUNDLED.glob("*.whl"))
        if not any(w.name.startswith("pip-") for w in wheels):
            subprocess.run([python, "-m", "ensurepip", "--default-pip"], check=True)
            return python
        subprocess.run(
            [uv, "pip", "install", "--quiet", "--no-config", "--no-cache", "--no-index"]
            + ["--python", str(python), *map(str, wheels)],
            check=True,
            capture_output=True,
        )
    return python
