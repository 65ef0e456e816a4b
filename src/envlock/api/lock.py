"""envlock lock and lock --check: torchenv.toml -> pylock.toml (variants too).

This module decides what is locked (the spec, or each of its variants, in turn) and writes it;
its parts, used by it alone: ``lock_one`` (one spec -> one lock, the held-back packages raised,
the base image digests), ``lock_hashes`` (the index-hash policy) and ``lock_variants`` (the
alignment pass). Their public names are re-exported here: callers import from here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from envlock.api.lock_hashes import HashMissing, _check_index_hashes
from envlock.api.lock_one import LockResult, _lock_one
from envlock.api.lock_variants import _align
from envlock.api.project import (
    SELECTION_FILES,
    Reporter,
    _quiet,
    _read_lock,
    _validate_lock_path,
    default_lock_path,
    load_channels,
    read_spec,
    redacted,
    variant_lock_path,
)
from envlock.errors import CheckFailed, UsageError
from envlock.family import TORCH, TORCHVISION
from envlock.io import files
from envlock.lockfile import lock_meta, parse_lock_text, render_lock
from envlock.spec import Spec, effective_indexes, spec_digest

if TYPE_CHECKING:
    from envlock.heldback import OfferReader
    from envlock.io.ports import IndexReader

__all__ = [
    "Freshness",
    "HashMissing",
    "LockResult",
    "LockRun",
    "_check_index_hashes",
    "check",
    "freshness",
    "lock",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Freshness:
    fresh: bool
    reason: str


def freshness(
    spec_path: Path,
    lock_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    variant: str | None = None,
) -> Freshness:
    """Is the lock fresh for the spec? Offline: compares the spec digest, reads no index."""
    spec = read_spec(spec_path)
    return _freshness(
        spec.variant(variant) if variant is not None else spec,
        spec_path,
        lock_path or default_lock_path(spec_path),
        os.environ if environ is None else environ,
    )


def _freshness(spec: Spec, spec_path: Path, lock_path: Path, env: Mapping[str, str]) -> Freshness:
    digest = spec_digest(spec, redacted(effective_indexes(spec.indexes, env)))
    text = files.read_text(lock_path)
    if text is None:
        return Freshness(fresh=False, reason=f"{lock_path} does not exist; run `envlock lock`")
    lock = parse_lock_text(text, source=str(lock_path))
    meta = lock_meta(lock)
    if meta is None:
        return Freshness(
            fresh=False, reason=f"{lock_path} was not written by envlock (no [tool.envlock])"
        )
    if meta.spec_digest != digest:
        return Freshness(
            fresh=False,
            reason=f"{lock_path} is stale: {spec_path} changed since it was locked; "
            "run `envlock lock`",
        )
    return Freshness(fresh=True, reason=f"{lock_path} is fresh for {spec_path}")


def check(
    spec_path: Path,
    lock_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    variant: str | None = None,
) -> tuple[Freshness, ...]:
    """Every lock of the spec (one per variant) is fresh, or CheckFailed with the first reason."""
    env = os.environ if environ is None else environ
    spec = read_spec(spec_path)  # once, for every variant
    if spec.variants and lock_path is None:
        names = [variant] if variant else [v.name for v in spec.variants]
        targets = [(spec.variant(n), variant_lock_path(spec_path, n)) for n in names]
    else:
        targets = [(spec, lock_path or default_lock_path(spec_path))]
    results = tuple(_freshness(one, spec_path, path, env) for one, path in targets)
    for result in results:
        if not result.fresh:
            # A spec that can never be locked is a spec error, not a stale lock (offline).
            from envlock.channels import select_variant  # noqa: PLC0415 - see the module note

            indexes = effective_indexes(spec.indexes, env)
            channels = load_channels(SELECTION_FILES)
            for one, _ in targets:
                select_variant(
                    one, channels, pypi_index=indexes.pypi, pytorch_index=indexes.pytorch
                )
            raise CheckFailed(result.reason, hint="Run `envlock lock` and commit the new lock.")
    return results


@dataclass(frozen=True, slots=True, kw_only=True)
class LockRun:
    results: tuple[LockResult, ...]
    warnings: tuple[str, ...] = ()


def lock(
    spec_path: Path,
    *,
    lock_path: Path | None = None,
    variant: str | None = None,
    upgrade: bool = False,
    upgrade_packages: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    report: Reporter = _quiet,
    hash_missing: HashMissing = HashMissing.REFUSE,
    index_reader: IndexReader | None = None,
    offer_reader: OfferReader | None = None,
    keep_versions: Path | None = None,
) -> LockRun:
    """torchenv.toml -> pylock.toml (see _lock_spec); two runs on one spec take turns.

    ``index_reader`` reads the project pages of the lock's hash check, ``offer_reader`` what
    the named packages' pages offer (default: the real indexes); tests pass fakes.
    ``keep_versions``: a requirements.txt / pyproject.toml / environment.yml / pylock.toml
    whose exact versions the lock keeps where the spec and the indexes allow."""
    if lock_path is not None:
        _validate_lock_path(lock_path)
    if not spec_path.is_file():
        read_spec(spec_path)  # the clear "does not exist" error
    keep = _kept_versions(keep_versions) if keep_versions is not None else {}
    with files.exclusive(spec_path):
        run = _lock_spec(
            spec_path,
            lock_path=lock_path,
            variant=variant,
            upgrade=upgrade,
            upgrade_packages=upgrade_packages,
            environ=environ,
            report=report,
            hash_missing=hash_missing,
            index_reader=index_reader,
            offer_reader=offer_reader,
            keep=keep,
        )
    if keep_versions is not None:
        from envlock.keep import kept_report  # noqa: PLC0415 - only with --keep-versions

        for result in run.results:
            for line in kept_report(result.lock, keep, source=keep_versions.name):
                report(line)
    return run


def _kept_versions(path: Path) -> dict[str, str]:
    """The exact versions ``path`` pins (envlock.adopt reads it as `init --from` does)."""
    from envlock.adopt import adopt_text, referenced_files  # noqa: PLC0415 - only here
    from envlock.keep import kept_pins  # noqa: PLC0415

    text = files.read_text(path)
    if text is None:
        raise UsageError(
            f"--keep-versions {path}: no such file",
            hint="Pass the requirements.txt, environment.yml or pylock.toml the spec was "
            "adopted from (envlock init --from).",
        )
    includes = {}
    for ref in referenced_files(text) if not path.name.endswith((".toml", ".yml")) else ():
        included = files.read_text(path.parent / ref)
        if included is not None:
            includes[ref] = included
    channels = load_channels(SELECTION_FILES)
    intent = adopt_text(path.name, text, channels=channels, includes=includes)
    return kept_pins(intent.pins)


def _lock_spec(
    spec_path: Path,
    *,
    lock_path: Path | None = None,
    variant: str | None = None,
    upgrade: bool = False,
    upgrade_packages: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    report: Reporter = _quiet,
    hash_missing: HashMissing = HashMissing.REFUSE,
    index_reader: IndexReader | None = None,
    offer_reader: OfferReader | None = None,
    keep: Mapping[str, str] | None = None,
) -> LockRun:
    """torchenv.toml -> pylock.toml (or pylock.<variant>.toml for each [variants.<name>]).

    Re-resolves only when the spec changed or on --upgrade. Variants are locked in turn, each
    preferring the versions chosen before it; a second pass then aligns shared packages and
    explains what cannot be aligned."""
    env = os.environ if environ is None else environ
    if lock_path is not None:
        _validate_lock_path(lock_path)
    spec = read_spec(spec_path)
    if upgrade_packages:
        _check_upgrade_packages(spec, spec_path, lock_path, upgrade_packages)
    if not spec.variants:
        if variant is not None:
            spec.variant(variant)  # raises: no variants
        path = lock_path or default_lock_path(spec_path)
        _validate_lock_path(path)
        return LockRun(
            results=(
                _lock_one(
                    spec,
                    path,
                    env=env,
                    upgrade=upgrade,
                    upgrade_packages=upgrade_packages,
                    report=report,
                    hash_missing=hash_missing,
                    index_reader=index_reader,
                    offer_reader=offer_reader,
                    keep=keep,
                ),
            )
        )
    if lock_path is not None:
        raise UsageError(
            "torchenv.toml has [variants]: each is written to pylock.<name>.toml",
            hint="Drop --lock; use --variant NAME to lock only one.",
        )
    names = [variant] if variant is not None else [v.name for v in spec.variants]
    for name in names:
        spec.variant(name)
    existing = {
        v.name: None if upgrade else _read_lock(variant_lock_path(spec_path, v.name))
        for v in spec.variants
    }
    others = [lock for n, lock in existing.items() if n not in names and lock is not None]
    results: list[LockResult] = []
    # One after the other: each variant prefers the versions the variants locked before it
    # chose (then its own previous lock, then the rest), which aligns most packages at once.
    # (Measured: running the variants' uv processes in parallel was slower, not faster.)
    for name in names:
        previous = [lock for n, lock in existing.items() if n != name and n not in names and lock]
        results.append(
            _lock_one(
                spec.variant(name),
                variant_lock_path(spec_path, name),
                env=env,
                upgrade=upgrade,
                upgrade_packages=upgrade_packages,
                report=report,
                hash_missing=hash_missing,
                also_prefer=[*(r.lock for r in results), *previous],
                write=False,
                index_reader=index_reader,
                offer_reader=offer_reader,
                keep=keep,
            )
        )
    by_name = dict(zip(names, results, strict=True))
    warnings = _align(
        spec,
        spec_path,
        by_name,
        others,
        env=env,
        report=report,
        hash_missing=hash_missing,
        index_reader=index_reader,
        offer_reader=offer_reader,
    )
    # All variants or none: nothing is written until every variant has locked, and then
    # every file is staged before any is renamed into place.
    files.write_all_atomic(
        [(r.lock_path, render_lock(r.lock)) for r in (by_name[n] for n in names) if r.changed]
    )
    return LockRun(results=tuple(by_name[n] for n in names), warnings=tuple(warnings))


_PROJECT_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)


def _check_upgrade_packages(
    spec: Spec, spec_path: Path, lock_path: Path | None, names: Sequence[str]
) -> None:
    """-P NAME must name a package of the lock (or the spec): uv ignores any other silently."""
    import difflib  # noqa: PLC0415 - only for --upgrade-package

    paths = [lock_path or default_lock_path(spec_path)]
    paths += [variant_lock_path(spec_path, v.name) for v in spec.variants]
    known = set(spec.package_names) | {TORCH, TORCHVISION}
    for path in paths:
        lock = _read_lock(path) if path.is_file() else None
        known |= {p.name for p in lock.packages} if lock is not None else set()
    for name in names:
        if not _PROJECT_NAME.match(name):
            raise UsageError(
                f"--upgrade-package {name!r} is not a package name",
                hint="Name a package of the lock, e.g. `envlock lock -P numpy`.",
            )
        if canonicalize_name(name) not in known:
            close = difflib.get_close_matches(canonicalize_name(name), sorted(known), n=3)
            raise UsageError(
                f"--upgrade-package {name}: the lock has no package of that name"
                + (f" (did you mean {' or '.join(close)}?)" if close else ""),
                hint="Name a package the lock holds (`envlock export requirements` lists "
                "them); to add one, add it to [packages] in torchenv.toml.",
            )
