"""The import check of `envlock sync` and `envlock verify --imports`: which packages, and when.

A venv can be exactly the lock, every hash verified, and still not work: two locked versions
that do not fit together (datasets 2.14.4 with pyarrow 26: ``import datasets`` raises
AttributeError: module 'pyarrow' has no attribute 'PyExtensionType'). The packages the spec
names are imported in the environment's own interpreter (envlock.io.import_check runs them);
their dependencies are imported through them. The outcome is recorded in the environment's
state file, so a sync with nothing to do imports nothing when the last check passed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import NormalizedName, canonicalize_name

from envlock.api.project import Reporter, _quiet, spec_names
from envlock.family import TORCH_TABLE
from envlock.io.sync_noop import spec_digest
from envlock.materialise.installed import recorded_wanted

if TYPE_CHECKING:
    from envlock.io.import_check import ImportReport

# sync, conda and verify read the state file's record with it
_recorded_wanted = recorded_wanted


def import_names(
    installed: Iterable[str], named: Iterable[str] | None
) -> tuple[NormalizedName, ...]:
    """What the import check imports: of the ``installed`` distributions, those the spec
    ``named`` ([packages]; None: no spec) and the [torch] table's."""
    direct = {*(named or ()), *TORCH_TABLE}
    return tuple(sorted({canonicalize_name(n) for n in installed} & direct))


def scope_warning(lock_path: Path, named: Iterable[str] | None) -> tuple[str, ...]:
    """Said when no spec tells which packages are the user's own."""
    if named is not None:
        return ()
    return (
        f"no torchenv.toml beside {lock_path.name}: the import check covered the torch family "
        "only (keep the lock beside its spec to check the packages the spec names)",
    )


def check_synced_imports(
    env_path: Path,
    *,
    lock_path: Path,
    check: bool | None = None,
    changed: bool = True,
    environ: Mapping[str, str] | None = None,
    report: Reporter = _quiet,
) -> ImportReport | None:
    """Import the packages the spec beside ``lock_path`` names (import_names) in an
    environment `envlock sync` made from it (a venv or a conda prefix), under the directory's
    sync lock, and record the outcome in its state file. ``check``: True always, False
    never, None (the default) when the sync ``changed`` the environment or its state file
    cannot vouch that these packages imported. Returns None when nothing ran; a package that
    does not import raises ImportCheckError (the environment stays as synced)."""
    from envlock.io import venv  # noqa: PLC0415 - see the api module note

    env_path = env_path.absolute()
    with venv.exclusive_dir(env_path.parent):
        checked, _ = _check_imports(
            env_path,
            lock_path=lock_path,
            check=check,
            changed=changed,
            environ=os.environ if environ is None else environ,
            report=report,
        )
    return checked


def _check_imports(
    env_path: Path,
    *,
    lock_path: Path,
    check: bool | None,
    changed: bool,
    environ: Mapping[str, str],
    report: Reporter = _quiet,
) -> tuple[ImportReport | None, tuple[str, ...]]:
    """check_synced_imports under the sync lock already held, with scope_warning's words."""
    from envlock.io import venv  # noqa: PLC0415 - see the api module note

    if check is False:
        return None, ()
    marker = venv.read_marker(env_path) or {}
    installed = _recorded_wanted(marker)
    named = spec_names(lock_path)
    names = list(import_names(installed, named))
    # A no-op stays a no-op: its environment imported these very packages after the sync that
    # built it. One never checked (an older envlock, --no-check-imports) or broken is checked.
    last = marker.get("imports")
    if (
        check is None
        and not changed
        and isinstance(last, dict)
        and last.get("checked") == names
        and last.get("failed") == []
    ):
        spec = spec_digest(lock_path)
        if last.get("spec") != spec:  # these names are still this spec's (an older envlock's)
            venv.write_marker(env_path, {**marker, "imports": {**last, "spec": spec}})
        return None, ()
    from envlock.io.import_check import check_imports, import_error  # noqa: PLC0415 - when run

    if names:
        report(f"Importing {', '.join(names)}")
    found = check_imports(venv.python_in(env_path), names, environ=environ)
    failed = sorted({f.name for f in found.failures})
    # The spec's digest lets sync's fast no-op path (io.sync_noop) vouch for the same names
    # without reading the spec: the same spec bytes and installed set give the same names.
    venv.write_marker(
        env_path,
        {
            **marker,
            "imports": {"checked": names, "failed": failed, "spec": spec_digest(lock_path)},
        },
    )
    if found.failures:
        raise import_error(env_path, lock_path, found.failures, installed)
    return found, scope_warning(lock_path, named)
