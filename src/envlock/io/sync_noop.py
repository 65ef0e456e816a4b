"""A sync with nothing to do, answered before the command line is loaded.

`envlock sync --venv PATH` on a venv that already is the lock is the command run most often (a
shell hook, a Makefile target, every CI job), so its cost is start-up. ``unchanged`` makes the
no-op decision of api.sync with the same checks (the state file's record of the last sync, a
scan of the venv against what that sync installed, the import check's outcome) and imports
nothing else: no typer, no resolver, no lock parser. Any doubt (no record, another lock, other
host facts, drift, leftovers of an interrupted sync, a path that is not only a venv) answers
None, and the full sync decides, reports and rebuilds as before. It only reads: the one thing
it takes is the directory's sync lock, as every sync does.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from envlock.io import files, installed, swap, venv
from envlock.materialise.installed import Recorded, compare, recorded_wanted

# The state-file key: a digest of the lock's text and the host facts a no-op depends on.
FAST_KEY = "fast-key"
_SPEC_FILENAME = "torchenv.toml"  # envlock.spec_model.SPEC_FILENAME, not imported for its cost


def fast_key(lock_text: str, python: str) -> str:
    """The lock's text, this host's OS, machine and C library, and the venv's Python: what the
    last sync installed is still the answer while all of them are the same."""
    uname = os.uname()
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (AttributeError, ValueError, OSError):
        libc = ""
    facts = "\0".join((lock_text, uname.sysname, uname.machine, libc, python))
    return "sha256:" + hashlib.sha256(facts.encode()).hexdigest()


def spec_digest(lock_path: Path) -> str | None:
    """The digest of the torchenv.toml beside the lock (whose [packages] the import check
    imports), None when there is none to read."""
    try:
        data = (lock_path.parent / _SPEC_FILENAME).read_bytes()
    except OSError:
        return None
    return "sha256:" + hashlib.sha256(data).hexdigest()


def unchanged(venv_path: Path, lock_path: Path) -> int | None:
    """The number of packages when ``venv_path`` is exactly what the last sync from
    ``lock_path`` made on this host, and the packages the spec names imported after it; else
    None (then only the full sync can tell)."""
    if venv_path.is_symlink() or not venv_path.is_dir() or not lock_path.is_file():
        return None
    venv_path = venv_path.absolute()
    with venv.exclusive_dir(venv_path.parent):
        if swap.leftovers(venv_path) or not swap.only_a_venv(venv_path):
            return None
        marker = venv.read_marker(venv_path)
        if marker is None:
            return None
        text = files.read_text(lock_path)
        if text is None or marker.get(FAST_KEY) != fast_key(text, str(marker.get("python", ""))):
            return None
        imports = marker.get("imports")
        if not (
            isinstance(imports, dict)
            and imports.get("failed") == []
            and "spec" in imports
            and imports.get("spec") == spec_digest(lock_path)
        ):
            return None
        recorded = Recorded.from_marker(marker)
        if recorded is None:
            return None
        state = installed.scan(venv_path, recorded_site(venv_path, marker))
        if compare(state, wanted := recorded_wanted(marker), recorded):
            return None
        return len(wanted)


def recorded_site(root: Path, marker: Mapping[str, object]) -> Path:
    """The site-packages the state file names, inside ``root`` (a venv or a conda prefix); a
    state file naming one elsewhere (absolute, or with ``..``: forged to point the no-op at an
    empty folder) gets a path that does not exist, so its packages are all missing."""
    relative = str(marker.get("purelib", ""))
    parts = Path(relative).parts
    if not relative or Path(relative).is_absolute() or ".." in parts:
        return root / ".envlock-no-site-packages"
    return root / relative
