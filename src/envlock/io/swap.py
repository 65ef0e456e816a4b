"""Where a sync builds an environment, swaps it in, and what a killed one leaves behind.

A sync builds beside PATH (io.venv.new_prefix) and renames the result in, the old environment
waiting beside PATH (io.venv.old_beside) until the swap is done; `sync --conda` builds at PATH
under the BUILDING mark. recover_interrupted_sync undoes what a kill left; ``replaceable`` says
whether PATH may be replaced at all. The no-op fast path (io.sync_noop) asks the same two
questions without raising: ``leftovers`` and ``only_a_venv``.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

from envlock.errors import MaterialiseError
from envlock.io import venv

# At the top of a conda prefix `sync --conda` is building at its final path (envlock.api.conda).
BUILDING = ".envlock-building"


def new_workdir(venv_path: Path) -> Path:
    """A build directory of this sync's own beside PATH (the rename must not cross devices)."""
    import tempfile  # noqa: PLC0415 - only here

    venv_path.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=venv.new_prefix(venv_path), dir=venv_path.parent))
    venv.honour_umask(workdir, 0o777)  # mkdtemp makes it 0700; the venv is the user's
    return workdir


def recover_interrupted_sync(venv_path: Path) -> None:
    """Finish or undo a swap a killed sync left behind: the old venv (or conda prefix) comes
    back if PATH is missing or is a conda prefix marked as still being built (envlock's own,
    removed); leftovers are removed. Runs under the directory's sync lock."""

    if not venv_path.is_symlink() and (venv_path / BUILDING).is_file():
        venv.remove_tree(venv_path)  # `sync --conda` builds at PATH under this mark
    old = venv.old_beside(venv_path)
    if old.exists() and not os.path.lexists(venv_path):
        old.rename(venv_path)
    venv.remove_tree(old)
    for workdir in venv_path.parent.glob(f"{glob.escape(venv.new_prefix(venv_path))}*"):
        venv.remove_tree(workdir)


def replaceable(venv_path: Path) -> bool:
    """True for a venv to replace, False for a path to create (missing or an empty directory).

    sync replaces only a directory it can prove is a venv: a pyvenv.cfg and nothing at the
    top level but a venv's own entries. A project folder that holds a venv's files too, a
    file, a conda env or /usr is refused before anything changes: no path of the user's is
    ever deleted."""

    if not os.path.lexists(venv_path):
        return False
    if not venv_path.is_dir():
        raise MaterialiseError(
            f"{venv_path} exists and is not a virtual environment (it is a file); refusing to "
            "replace it",
            hint="Pass the path of a venv, or a new path (it is created).",
        )
    entries = {entry.name for entry in venv_path.iterdir()}
    if not entries:
        return False
    if "pyvenv.cfg" not in entries:
        raise MaterialiseError(
            f"{venv_path} exists and is not a virtual environment (no pyvenv.cfg); refusing to "
            "replace it",
            hint="Pass the path of a venv, or a new path (it is created).",
        )
    foreign = sorted(entries - venv.VENV_ENTRIES)
    if foreign:
        shown = ", ".join(foreign[:5]) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        )
        raise MaterialiseError(
            f"{venv_path} is a virtual environment that also holds other files ({shown}); "
            "refusing to replace it",
            hint="sync rebuilds a venv and swaps it in, which would delete those files. Sync into "
            f"a dedicated path (e.g. --venv {venv_path / '.venv'}), or move the files out.",
        )
    return True


def leftovers(venv_path: Path) -> bool:
    """Whether an interrupted sync left something beside PATH (recover_interrupted_sync's
    work)."""
    if os.path.lexists(venv.old_beside(venv_path)):
        return True
    prefix = venv.new_prefix(venv_path)
    return any(entry.name.startswith(prefix) for entry in venv_path.parent.iterdir())


def only_a_venv(venv_path: Path) -> bool:
    """A pyvenv.cfg and nothing at the top level but a venv's own entries: what ``replaceable``
    accepts as a venv to replace, asked without its reasons."""
    entries = {entry.name for entry in venv_path.iterdir()}
    return "pyvenv.cfg" in entries and entries <= venv.VENV_ENTRIES
