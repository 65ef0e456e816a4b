"""envlock lock and lock --check: torchenv.toml -> pylock.toml (variants too)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.pylock import PackageSdist, PackageWheel, Pylock
from packaging.utils import canonicalize_name
from packaging.version import Version

from envlock import __version__
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
from envlock.errors import CheckFailed, HashMismatchError, IndexUnavailableError, UsageError
from envlock.family import TORCH, TORCHVISION, is_cuda_runtime
from envlock.io import files
from envlock.lockfile import TOOL_KEY, LockMeta, lock_meta, parse_lock_text, render_lock
from envlock.spec import Spec, effective_indexes, spec_digest
from envlock.urls import redact_url

if TYPE_CHECKING:
    from packaging.requirements import Requirement

    from envlock.channels import Selection
    from envlock.heldback import OfferReader, Probe, Settled
    from envlock.io.ports import IndexReader
    from envlock.resolve import UvProject


@dataclass(frozen=True, slots=True, kw_only=True)
class LockResult:
    lock_path: Path
    changed: bool  # False: the lock was already fresh and was not re-resolved
    lock: Pylock
    selection: Selection | None = None
    warnings: tuple[str, ...] = ()
    settled: Settled | None = None  # the named packages raised and held back (heldback.py)


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


class HashMissing(StrEnum):
    REFUSE = "refuse"
    DOWNLOAD = "download"


def _lock_one(
    spec: Spec,
    lock_path: Path,
    *,
    env: Mapping[str, str],
    upgrade: bool = False,
    upgrade_packages: Sequence[str] = (),
    report: Reporter = _quiet,
    also_prefer: Sequence[Pylock] = (),
    prefer_first: Pylock | None = None,
    force: bool = False,
    write: bool = True,
    hash_missing: HashMissing = HashMissing.REFUSE,
    replaces: Pylock | None = None,
    index_reader: IndexReader | None = None,
    offer_reader: OfferReader | None = None,
    settle_named: bool = True,
    keep: Mapping[str, str] | None = None,
) -> LockResult:
    """Lock one (variant's) spec into lock_path. ``also_prefer``: other locks whose versions to
    keep where possible (variant alignment); ``force`` re-resolves even if fresh;
    ``settle_named``: raise the named packages uv held back and explain the rest."""
    files.refuse_symlink(lock_path)
    indexes = effective_indexes(spec.indexes, env)
    clean_indexes = redacted(indexes)
    digest = spec_digest(spec, clean_indexes)
    # --upgrade prefers nothing from the old lock, so it never reads it: that is also how a
    # damaged lock (a bad merge) is replaced.
    # ``replaces``: the not-yet-written lock this one supersedes (variants are written at once)
    previous = None if upgrade else replaces if replaces is not None else _read_lock(lock_path)
    previous_meta = lock_meta(previous) if previous is not None else None
    if (
        previous is not None
        and previous_meta is not None
        and previous_meta.spec_digest == digest
        and not upgrade
        and not upgrade_packages
        and not force
        and not keep
    ):
        return LockResult(lock_path=lock_path, changed=False, lock=previous)

    from envlock.channels import select_variant  # noqa: PLC0415 - see the module note
    from envlock.io import uv  # noqa: PLC0415
    from envlock.resolve import (  # noqa: PLC0415
        build_uv_project,
        check_routing,
        preferences_lock,
        pylock_from_export,
    )

    channels = load_channels(SELECTION_FILES)
    selection = select_variant(
        spec, channels, pypi_index=indexes.pypi, pytorch_index=indexes.pytorch
    )
    report(
        f"Locking torch {selection.release.name} ({selection.variant.name}) for Python "
        f"{spec.python} on {', '.join(p.value for p in spec.platforms)}"
    )
    project = build_uv_project(spec, selection, indexes)
    prefer = [
        *([prefer_first] if prefer_first is not None else []),
        *([previous] if previous is not None else []),
        *also_prefer,
    ]
    skip = frozenset(
        p.name
        for lock in prefer
        for p in lock.packages
        if p.name in selection.routed or is_cuda_runtime(p.name)
    )
    preferences = preferences_lock(prefer, str(spec.requires_python), skip=skip) if prefer else None
    if keep:  # --keep-versions FILE: its versions first, then the previous lock's
        from envlock.keep import with_kept  # noqa: PLC0415 - only with --keep-versions

        preferences = with_kept(
            preferences, keep, registry=project.pypi_url, requires_python=str(spec.requires_python)
        )
    meta = LockMeta(
        spec_digest=digest,
        envlock_version=__version__,
        python=spec.python,
        platforms=tuple(p.value for p in spec.platforms),
        torch=selection.release.name,
        variant=selection.variant.name,
        variant_index=redact_url(selection.index_url) if selection.index_url else None,
        pypi_index=clean_indexes.pypi,
        torch_source={c.platform.value: c.origin.value for c in selection.platforms},
        exclude_newer=spec.exclude_newer,
    )

    def resolve(packages: tuple[Requirement, ...]) -> Pylock:
        """uv's lock of the spec with ``packages`` as its [packages] (the spec's own, or the
        bounds of a re-resolve), filtered to the targets and checked for routing."""
        asked = spec if packages == spec.packages else replace(spec, packages=packages)
        outcome = uv.lock_with_uv(
            build_uv_project(asked, selection, indexes),
            environ=env,
            preferences=preferences,
            upgrade=upgrade,
            upgrade_packages=[str(canonicalize_name(n)) for n in upgrade_packages],
        )
        found = pylock_from_export(outcome.export, spec=spec, tool=meta.to_tool())
        # uv records each package's index as it was given; a query string there may be a token.
        found = replace(
            found,
            packages=[
                replace(p, index=redact_url(p.index)) if p.index else p for p in found.packages
            ],
        )
        check_routing(
            found,
            selection,
            spec=spec,
            pypi_index=clean_indexes.pypi,
            pytorch_index=meta.variant_index,
        )
        return found

    new_lock = resolve(spec.packages)
    settled = None
    if settle_named and spec.packages and not keep:  # kept versions are held on purpose
        from envlock.heldback import preferred_versions  # noqa: PLC0415

        preferred = {} if upgrade else preferred_versions(prefer, skip)
        for name in upgrade_packages:
            preferred.pop(canonicalize_name(name), None)
        settled = _settle_named(
            spec,
            selection,
            new_lock,
            project,
            probe=resolve,
            preferred=preferred,
            reader=offer_reader,
            report=report,
        )
        new_lock = settled.lock
    new_lock, hash_warnings = _check_index_hashes(
        new_lock, project, hash_missing, report, index_reader
    )
    warnings = [*selection.warnings, *hash_warnings]
    images, image_notes = _image_pins(
        spec, new_lock, selection, previous=previous_meta, env=env, report=report
    )
    if images:
        tool = {**(new_lock.tool or {}), TOOL_KEY: replace(meta, images=images).to_tool()}
        new_lock = replace(new_lock, tool=tool)
    warnings += image_notes
    text = render_lock(new_lock)
    # Validate the exact bytes we are about to write, then replace atomically.
    parse_lock_text(text, source=str(lock_path))
    if write:
        files.write_atomic(lock_path, text)
    return LockResult(
        lock_path=lock_path,
        changed=True,
        lock=new_lock,
        selection=selection,
        warnings=tuple(warnings),
        settled=settled,
    )


def _image_pins(
    spec: Spec,
    lock: Pylock,
    selection: Selection,
    *,
    previous: LockMeta | None,
    env: Mapping[str, str],
    report: Reporter,
) -> tuple[dict[str, str], list[str]]:
    """The digests of the official base images this lock matches: the spec's [docker] digests,
    else what the registry serves now, else what the previous lock recorded (a registry out of
    reach never drops a digest, and never invents one). Returns them and notes to show."""
    from envlock.images import official_tags  # noqa: PLC0415
    from envlock.io.registry import image_digest, registry_url  # noqa: PLC0415

    tags = official_tags(
        lock, load_channels(("releases.toml", "docker.toml")), variant=selection.variant,
        python=spec.python,
    )  # fmt: skip
    registry = registry_url(env)
    pins: dict[str, str] = {}
    unreached: list[str] = []
    missing: list[str] = []
    for tag in tags:
        if tag in spec.image_digests:
            pins[tag] = spec.image_digests[tag]
            continue
        if registry is not None and not unreached:  # one failure: do not wait on the others
            report(f"Reading the digest of {tag}")
            try:
                digest = image_digest(tag, registry=registry)
            except IndexUnavailableError as exc:
                unreached.append(exc.message)
            else:
                if digest is not None:
                    pins[tag] = digest
                    continue
                missing.append(tag)
        if previous is not None and tag in previous.images:
            pins[tag] = previous.images[tag]
    notes = [f"the registry has no {tag}: its digest is not pinned" for tag in missing]
    if unreached:
        kept = [t for t in tags if t in pins]
        notes.append(
            f"base image digests not read: {unreached[0]}"
            + (f"; kept the previous lock's for {', '.join(kept)}" if kept else "")
            + " (pin them with [docker] digests in torchenv.toml, or "
            "ENVLOCK_DOCKER_REGISTRY=off to stop asking)"
        )
    return pins, notes


def _settle_named(
    spec: Spec,
    selection: Selection,
    lock: Pylock,
    project: UvProject,
    *,
    probe: Probe,
    preferred: Mapping[str, Version],
    reader: OfferReader | None,
    report: Reporter,
) -> Settled:
    """Read what the named packages' index pages offer, then raise and explain (heldback)."""
    from envlock import heldback  # noqa: PLC0415 - see the module note
    from envlock.resolve import direct_requirements  # noqa: PLC0415

    if reader is None:
        from envlock.io import pages  # noqa: PLC0415

        reader = pages.PageReader()
    wire = {n: project.wire_url(i) for n, i in heldback.named_indexes(spec, lock).items()}
    read = reader.offers(sorted((u, n) for n, u in wire.items()), project.auth_for) if wire else {}
    targets, notes = heldback.targets(
        spec,
        {n: read[(u, n)] for n, u in wire.items()},
        preferred=preferred,
        exempt=frozenset(project.routed),
    )
    direct = heldback.names_of(direct_requirements(spec, selection))
    settled = heldback.settle(lock, spec.packages, targets, probe, direct=direct, report=report)
    return replace(settled, notes=(*notes, *settled.notes))


# pypi.org lists a sha256 for every file it serves (PEP 503/691), so its pages are not re-read.
_PYPI = "https://pypi.org/simple"


def _check_index_hashes(
    lock: Pylock,
    project: UvProject,
    policy: HashMissing,
    report: Reporter,
    reader: IndexReader | None = None,
) -> tuple[Pylock, list[str]]:
    """Every hash in the lock must be one its index listed (uv silently computes one by
    downloading a file listed without any); ``policy`` says what to do about the others.
    ``reader`` reads the listings (default: the real indexes, envlock.io.pages.PageReader).
    Returns the lock (with the sha256 of a file uv knew only a weaker hash of, such as an
    index's md5, once downloaded) and the warnings."""
    wanted = sorted(
        {(p.index, p.name) for p in lock.packages if p.index and p.index.rstrip("/") != _PYPI}
    )
    if not wanted:
        return lock, []
    from envlock.io import download, pages  # noqa: PLC0415 - only for non-PyPI indexes
    from envlock.wheels import artifact_key  # noqa: PLC0415

    reader = reader if reader is not None else pages.PageReader()
    fetched = reader.listings(
        [(project.wire_url(index), name) for index, name in wanted], project.auth_for
    )
    listings = {(index, name): fetched[(project.wire_url(index), name)] for index, name in wanted}
    unlisted: list[PackageWheel | PackageSdist] = []
    for package in lock.packages:
        listing = listings.get((package.index or "", package.name))
        if listing is None:
            continue
        artifacts: list[PackageWheel | PackageSdist] = [*(package.wheels or ())]
        artifacts += [package.sdist] if package.sdist else []
        for artifact in artifacts:
            listed = listing.get(artifact_key(artifact.filename), {})
            ours = artifact.hashes.get("sha256", "")
            if listed.get("sha256") and listed["sha256"].lower() != ours.lower():
                raise HashMismatchError(
                    f"{artifact.filename}: the index now lists another sha256 than the one "
                    "uv resolved",
                    hint="The index changed while locking (a republished file?); run "
                    "`envlock lock` again. The previous lock was left as it was.",
                    detail=f"index {listed['sha256']}\nuv    {ours}",
                )
            if not pages.vouched(listed):
                unlisted.append(artifact)
    if not unlisted:
        return lock, []
    urls = "\n".join(redact_url(a.url or "") for a in unlisted)
    if policy is HashMissing.REFUSE:
        raise HashMismatchError(
            f"{len(unlisted)} file(s) in the lock are listed by their index without a hash",
            hint="envlock does not pin a hash no index vouched for. Ask the index to publish "
            "sha256 hashes, or run `envlock lock --hash-missing=download` to hash these files "
            "by downloading them (trust on first use). The previous lock was left as it was.",
            detail=urls,
        )
    import tempfile  # noqa: PLC0415

    report(f"Hashing {len(unlisted)} file(s) their index lists without a hash (downloading)")
    with tempfile.TemporaryDirectory(prefix="envlock-hash-") as tmp:
        items = [
            download.Download(
                url=a.url or "",
                sha256=a.hashes.get("sha256", ""),
                size=a.size,
                dest=Path(tmp) / a.filename,
                also=tuple((k, v) for k, v in a.hashes.items() if k != "sha256"),
            )
            for a in unlisted
        ]
        download.download_all(items, auth=project.auth_for, progress=report)
        found = {i.url: files.file_sha256(i.dest).hex() for i in items if not i.sha256}
    checked = "they match what uv computed" if not found else "each matches the hash it listed"
    return _with_sha256(lock, found), [
        f"{len(unlisted)} hash(es) were computed by downloading (their index lists no "
        f"sha256); {checked}:\n{urls}"
    ]


def _with_sha256(lock: Pylock, found: Mapping[str, str]) -> Pylock:
    """The lock with each artifact in ``found`` (URL -> sha256) given that sha256 as well."""
    if not found:
        return lock

    def pinned(artifact: PackageWheel | PackageSdist) -> dict[str, str]:
        digest = found.get(artifact.url or "")
        return {**artifact.hashes, "sha256": digest} if digest else dict(artifact.hashes)

    return replace(
        lock,
        packages=[
            replace(
                p,
                wheels=[replace(w, hashes=pinned(w)) for w in p.wheels] if p.wheels else p.wheels,
                sdist=replace(p.sdist, hashes=pinned(p.sdist)) if p.sdist else None,
            )
            for p in lock.packages
        ],
    )


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
