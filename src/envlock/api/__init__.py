"""Orchestration: one module per verb over ``project`` (what every verb loads). No printing.

cli/ calls these functions; each reads its inputs, calls the pure layers and performs the
effects through io/. `envlock lock --check` runs in pre-commit hooks, so a verb's module
imports only what the freshness check needs at the top; channel data, resolution and uv are
imported where they are used.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Each name is imported from its module on first use (PEP 562): a command loads its own verb's
# modules, not every verb's (`envlock lock` paid ~0.1 s of start-up for export, bundle, conda,
# review and audit it never ran).
_WHERE: dict[str, str] = {
    "BundleResult": "envlock.api.bundle",
    "DockerExport": "envlock.api.export",
    "DoctorReport": "envlock.api.doctor",
    "Freshness": "envlock.api.lock",
    "GitSetupResult": "envlock.api.review",
    "HashMissing": "envlock.api.lock",
    "InitOptions": "envlock.templates",
    "InitResult": "envlock.api.init",
    "LinkMode": "envlock.api.sync",
    "LockResult": "envlock.api.lock",
    "LockRun": "envlock.api.lock",
    "LockSide": "envlock.api.review",
    "Reporter": "envlock.api.project",
    "SELECTION_FILES": "envlock.api.project",
    "SyncResult": "envlock.api.sync",
    "Verification": "envlock.api.verify",
    "_preflight": "envlock.api.doctor",
    "bundle": "envlock.api.bundle",
    "check": "envlock.api.lock",
    "check_synced_imports": "envlock.api.imports",
    "default_lock_path": "envlock.api.project",
    "diff": "envlock.api.review",
    "doctor": "envlock.api.doctor",
    "explain_selection": "envlock.api.channels",
    "export_conda": "envlock.api.export",
    "export_dockerfile": "envlock.api.export",
    "export_requirements": "envlock.api.export",
    "export_uv": "envlock.api.export",
    "freshness": "envlock.api.lock",
    "git_setup": "envlock.api.review",
    "init": "envlock.api.init",
    "init_from": "envlock.api.init",
    "load_channels": "envlock.api.project",
    "lock": "envlock.api.lock",
    "lock_notes": "envlock.api.export",
    "read_lock": "envlock.api.project",
    "read_side": "envlock.api.review",
    "read_spec": "envlock.api.project",
    "recover_interrupted_sync": "envlock.api.sync",
    "sync": "envlock.api.sync",
    "sync_conda": "envlock.api.conda",
    "textconv": "envlock.api.review",
    "variant_lock": "envlock.api.project",
    "variant_lock_path": "envlock.api.project",
    "variant_locks": "envlock.api.project",
    "verify": "envlock.api.verify",
    "write_output": "envlock.api.export",
    "write_output_dir": "envlock.api.export",
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value


class _Api(types.ModuleType):
    """Importing a submodule binds it on its package: ``envlock.api.sync`` would then be the
    module, not the function the API promises. A verb's own name keeps its function."""

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, types.ModuleType) and _WHERE.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Api

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
