"""Variant alignment, the second pass of locking a spec with [variants]: each variant moved
to the version of a shared package another variant chose, and what cannot move explained.
Part of ``api.lock``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from envlock.api.lock_hashes import HashMissing
from envlock.api.lock_one import LockResult, _lock_one
from envlock.api.project import Reporter, variant_lock_path
from envlock.spec import Spec

if TYPE_CHECKING:
    from packaging.pylock import Pylock

    from envlock.heldback import OfferReader
    from envlock.io.ports import IndexReader


def _align(
    spec: Spec,
    spec_path: Path,
    results: dict[str, LockResult],
    others: Sequence[Pylock],
    *,
    env: Mapping[str, str],
    report: Reporter,
    hash_missing: HashMissing = HashMissing.REFUSE,
    index_reader: IndexReader | None = None,
    offer_reader: OfferReader | None = None,
) -> list[str]:
    """Second pass: move each variant to the lowest version of a package another variant
    chose (the most constrained one usually cannot move up); explain what still differs."""
    from packaging.requirements import Requirement  # noqa: PLC0415
    from packaging.version import Version  # noqa: PLC0415

    from envlock.errors import ResolutionError  # noqa: PLC0415
    from envlock.variants import misaligned, only_package, version_of  # noqa: PLC0415

    def locks() -> dict[str, Pylock]:
        return {n: r.lock for n, r in results.items()}

    for package, versions in misaligned(locks()).items():
        target = min(versions, key=Version)
        hint = only_package(locks()[versions[target][0]], package)
        for name in [n for n, lock in locks().items() if version_of(lock, package) != target]:
            report(f"Aligning {package} {target} in variant {name}")
            rest = [lock for n, lock in locks().items() if n != name]
            results[name] = _lock_one(
                spec.variant(name),
                variant_lock_path(spec_path, name),
                env=env,
                prefer_first=hint,
                also_prefer=[*rest, *others],
                replaces=results[name].lock,
                force=True,
                report=report,
                hash_missing=hash_missing,
                write=False,
                index_reader=index_reader,
                offer_reader=offer_reader,
            )
    warnings = []
    for package, versions in misaligned(locks()).items():
        target = max(versions, key=lambda v: (len(versions[v]), Version(v)))
        described = "; ".join(f"{v} in {', '.join(names)}" for v, names in versions.items())
        reasons = []
        for name in [n for n, lock in locks().items() if version_of(lock, package) != target]:
            pinned = replace(
                spec.variant(name),
                packages=(*spec.packages, Requirement(f"{package}=={target}")),
            )
            try:
                _lock_one(
                    pinned,
                    variant_lock_path(spec_path, name),
                    env=env,
                    force=True,
                    write=False,
                    index_reader=index_reader,
                    settle_named=False,
                )
                why = "uv preferred another version; pin it in [packages] to align"
            except ResolutionError as exc:
                why = _first_cause(exc.detail) or exc.message
            reasons.append(f"{name} cannot take {package} {target}: {why}")
        warnings.append(
            f"{package} is not aligned across variants ({described}). " + " ".join(reasons)
        )
    return warnings


def _first_cause(detail: str) -> str:
    for line in detail.splitlines():
        text = line.strip().lstrip("╰─▶ ").strip().removeprefix("cause:").strip()
        if text.startswith("Because"):
            return text.split(", we can conclude")[0]
    return ""
