"""envlock audit: what a whole lock's packages are known for now (yanked files, known
vulnerabilities), which can change after the lock was made; `envlock diff --audit` asks the
same for a change's new artifacts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from envlock.api.review_gate import AUDIT_KINDS, GatePorts, review_spec, run_gate
from envlock.errors import LockfileError
from envlock.io import files
from envlock.lockfile import parse_lock_text
from envlock.spec import SPEC_FILENAME

if TYPE_CHECKING:
    from envlock.gate_render import Review


def audit(
    lock_path: Path,
    *,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
    ports: GatePorts | None = None,
) -> Review:
    """Every artifact of the lock at ``lock_path``: yanked on its index (PEP 592), and the
    known vulnerabilities of its version (PyPI's JSON API, for packages from public indexes);
    [review.accept] of the torchenv.toml beside it applies."""
    text = files.read_text(lock_path)
    if text is None:
        raise LockfileError(
            f"{lock_path} does not exist",
            hint="Run `envlock lock` first, or pass the lock with --lock.",
        )
    lock = parse_lock_text(text, source=str(lock_path), installs=False)
    spec_path = lock_path.parent / SPEC_FILENAME
    spec, note = review_spec(
        files.read_text(spec_path) if spec_path.is_file() else None, str(spec_path)
    )
    return run_gate(
        None,
        lock,
        spec=spec,
        old_spec=spec,
        base=lock_path.parent,
        kinds=AUDIT_KINDS,
        environ=environ,
        now=now,
        ports=ports,
        notes=(note,) if note else (),
        scope="locked artifact(s)",
    )
