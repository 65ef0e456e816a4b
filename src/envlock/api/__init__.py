"""Orchestration: one module per verb over ``project`` (what every verb loads). No printing.

cli/ calls these functions; each reads its inputs, calls the pure layers and performs the
effects through io/. `envlock lock --check` runs in pre-commit hooks, so a verb's module
imports only what the freshness check needs at the top; channel data, resolution and uv are
imported where they are used.
"""

from __future__ import annotations

from envlock.api.bundle import BundleResult, bundle
from envlock.api.channels import explain_selection
from envlock.api.conda import sync_conda
from envlock.api.doctor import DoctorReport, _preflight, doctor
from envlock.api.export import (
    DockerExport,
    export_conda,
    export_dockerfile,
    export_requirements,
    export_uv,
    lock_notes,
    write_output,
    write_output_dir,
)
from envlock.api.imports import check_synced_imports
from envlock.api.init import InitResult, init, init_from
from envlock.api.lock import Freshness, HashMissing, LockResult, LockRun, check, freshness, lock
from envlock.api.project import (
    SELECTION_FILES,
    Reporter,
    default_lock_path,
    load_channels,
    read_lock,
    read_spec,
    variant_lock,
    variant_lock_path,
    variant_locks,
)
from envlock.api.review import GitSetupResult, LockSide, diff, git_setup, read_side, textconv
from envlock.api.sync import LinkMode, SyncResult, recover_interrupted_sync, sync
from envlock.api.verify import Verification, verify
from envlock.templates import InitOptions

__all__ = [
    "SELECTION_FILES",
    "BundleResult",
    "DockerExport",
    "DoctorReport",
    "Freshness",
    "GitSetupResult",
    "HashMissing",
    "InitOptions",
    "InitResult",
    "LinkMode",
    "LockResult",
    "LockRun",
    "LockSide",
    "Reporter",
    "SyncResult",
    "Verification",
    "_preflight",
    "bundle",
    "check",
    "check_synced_imports",
    "default_lock_path",
    "diff",
    "doctor",
    "explain_selection",
    "export_conda",
    "export_dockerfile",
    "export_requirements",
    "export_uv",
    "freshness",
    "git_setup",
    "init",
    "init_from",
    "load_channels",
    "lock",
    "lock_notes",
    "read_lock",
    "read_side",
    "read_spec",
    "recover_interrupted_sync",
    "sync",
    "sync_conda",
    "textconv",
    "variant_lock",
    "variant_lock_path",
    "variant_locks",
    "verify",
    "write_output",
    "write_output_dir",
]
