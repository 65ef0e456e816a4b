"""One spec (or one variant of it) -> one lock: uv's resolution, the named packages uv held
back raised (heldback.py), the index-hash check (lock_hashes) and the base image digests
(images.py). Part of ``api.lock``, which decides what is locked and writes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.pylock import Pylock
from packaging.utils import canonicalize_name
from packaging.version import Version

from envlock import __version__
from envlock.api.lock_hashes import HashMissing, _check_index_hashes
from envlock.api.project import (
    SELECTION_FILES,
    Reporter,
    _quiet,
    _read_lock,
    load_channels,
    redacted,
)
from envlock.errors import IndexUnavailableError
from envlock.family import is_cuda_runtime
from envlock.io import files
from envlock.lockfile import TOOL_KEY, LockMeta, lock_meta, parse_lock_text, render_lock
from envlock.spec import Spec, effective_indexes, spec_digest
from envlock.urls import redact_url

if TYPE_CHECKING:
    from packaging.requirements import Requirement

    from envlock.cached_probe import CachedProbe
    from envlock.channels import Channels, Selection
    from envlock.heldback import OfferReader, Settled
    from envlock.io.ports import IndexReader
    from envlock.io.registry import Prefetch
    from envlock.resolve import UvProject


@dataclass(frozen=True, slots=True, kw_only=True)
class LockResult:
    lock_path: Path
    changed: bool  # False: the lock was already fresh and was not re-resolved
    lock: Pylock
    selection: Selection | None = None
    warnings: tuple[str, ...] = ()
    settled: Settled | None = None  # the named packages raised and held back (heldback.py)


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
    # [resolution] cooldown: resolve as of now minus it (the digest above is the spec's own)
    original, spec, now = spec, *_cooled(spec)

    from envlock.channels import select_variant  # noqa: PLC0415 - see the module note
    from envlock.io import uv  # noqa: PLC0415
    from envlock.resolve import (  # noqa: PLC0415
        build_uv_project,
        check_routing,
        preferences_lock,
        pylock_from_export,
    )

    channels = load_channels((*SELECTION_FILES, "docker.toml"))  # docker.toml: image pins
    selection = select_variant(
        spec, channels, pypi_index=indexes.pypi, pytorch_index=indexes.pytorch
    )
    report(
        f"Locking torch {selection.release.name} ({selection.variant.name}) for Python "
        f"{spec.python} on {', '.join(p.value for p in spec.platforms)}, reading "
        + " and ".join(
            dict.fromkeys(redact_url(u) for u in (indexes.pypi, selection.index_url) if u)
        )
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

    def resolve(packages: tuple[Requirement, ...], *, offline: bool = False) -> Pylock:
        """uv's lock of the spec with ``packages`` as its [packages] (the spec's own, or the
        bounds of a re-resolve), filtered to the targets and checked for routing; ``offline``
        from uv's cache alone (cached_probe.cache_first)."""
        asked = spec if packages == spec.packages else replace(spec, packages=packages)
        outcome = uv.lock_with_uv(
            build_uv_project(asked, selection, indexes),
            environ=env,
            preferences=preferences,
            upgrade=upgrade,
            upgrade_packages=[str(canonicalize_name(n)) for n in upgrade_packages],
            offline=offline,
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

    offer_reader = _early_offers(
        spec,
        project,
        clean_indexes.pypi,
        offer_reader,
        settling=(settling := _settling(spec, settle_named, keep)),
        env=env,
    )
    # the base image digests are asked for first, in a thread, while uv resolves
    # (and the moment the resolve began, by the clock of uv's cache: see cached_probe.cache_first)
    since, digests, new_lock = (
        uv.page_clock(uv.cache_dir(env)),
        _prefetch_digests(spec, selection, channels, env),
        resolve(spec.packages),
    )
    settled = None
    if settling:
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
            env=env,
            since=since,
        )
        new_lock = settled.lock
    new_lock, hash_warnings = _check_index_hashes(
        new_lock, project, hash_missing, report, index_reader, environ=env
    )
    warnings = [
        *selection.warnings,
        *hash_warnings,
        *_cooldown_notes(original, spec, new_lock, project, now=now, reader=offer_reader),
    ]
    images, image_notes = _image_pins(
        spec,
        new_lock,
        selection,
        channels,
        previous=previous_meta,
        env=env,
        report=report,
        prefetched=digests.found() if digests is not None else {},
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
    channels: Channels,
    *,
    previous: LockMeta | None,
    env: Mapping[str, str],
    report: Reporter,
    prefetched: Mapping[str, str | IndexUnavailableError | None],
) -> tuple[dict[str, str], list[str]]:
    """The digests of the official base images this lock matches: the spec's [docker] digests,
    else what the registry serves now, else what the previous lock recorded (a registry out of
    reach never drops a digest, and never invents one). Returns them and notes to show.
    ``prefetched``: what the registry already said while uv resolved (see _prefetch_digests)."""
    from envlock.images import official_tags  # noqa: PLC0415
    from envlock.io.registry import image_digest, registry_url  # noqa: PLC0415

    tags = official_tags(lock, channels, variant=selection.variant, python=spec.python)
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
                digest = (
                    _answer(prefetched[tag])
                    if tag in prefetched
                    else image_digest(tag, registry=registry)
                )
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
    unused = sorted(set(spec.image_digests) - set(tags))
    if unused:  # a typo, or an image of another torch: it pins nothing, say so
        notes.append(
            f"[docker] digests names {', '.join(unused)}, which no Dockerfile of this lock uses "
            f"(its official images: {', '.join(tags) or 'none'})"
        )
    if unreached:
        kept = [t for t in tags if t in pins]
        notes.append(
            f"base image digests not read: {unreached[0]}"
            + (f"; kept the previous lock's for {', '.join(kept)}" if kept else "")
            + " (pin them with [docker] digests in torchenv.toml, or "
            "ENVLOCK_DOCKER_REGISTRY=off to stop asking)"
        )
    return pins, notes


def _prefetch_digests(
    spec: Spec, selection: Selection, channels: Channels, env: Mapping[str, str]
) -> Prefetch | None:
    """Ask the registry for the base image digests a lock of this torch series is likely to
    pin, in a thread while uv resolves (None when it is off, or nothing is to be asked)."""
    from envlock.images import likely_tags  # noqa: PLC0415

    tags = likely_tags(
        channels,
        series=selection.release.series,
        variant=selection.variant,
        python=spec.python,
        known=spec.image_digests,
    )
    if not tags:  # no official image: the HTTP client is not even imported before uv runs
        return None
    from envlock.io.registry import Prefetch, registry_url  # noqa: PLC0415

    registry = registry_url(env)
    return Prefetch(tags, registry=registry) if registry is not None else None


def _answer(found: str | IndexUnavailableError | None) -> str | None:
    if isinstance(found, IndexUnavailableError):
        raise found
    return found


def _settling(spec: Spec, settle_named: bool, keep: Mapping[str, str] | None) -> bool:
    """Whether the lock raises and explains held-back named packages (kept versions are held
    on purpose)."""
    return settle_named and bool(spec.packages) and not keep


def _early_offers(
    spec: Spec,
    project: UvProject,
    pypi: str,
    given: OfferReader | None,
    *,
    settling: bool,
    env: Mapping[str, str],
) -> OfferReader | None:
    """The reader of the named packages' pages: ``given`` (a test's), else, when the lock will
    settle them, one that reads their PyPI pages while uv resolves (io.early_offers.EarlyOffers
    says which indexes allow that), so the held-back check after it waits for no network."""
    if given is not None or not settling:
        return given
    from envlock.io.early_offers import EarlyOffers  # noqa: PLC0415 - see the module note

    named = (canonicalize_name(r.name) for r in spec.packages)
    wanted = [(project.wire_url(pypi), n) for n in named if n not in project.routed]
    return EarlyOffers(wanted, project.auth_for, reader=lambda: _page_reader(env))


def _page_reader(env: Mapping[str, str]) -> OfferReader:
    from envlock.io import pagecache, pages  # noqa: PLC0415 - see the module note

    return pages.PageReader(cache=pagecache.for_environment(env))


def _settle_named(
    spec: Spec,
    selection: Selection,
    lock: Pylock,
    project: UvProject,
    *,
    probe: CachedProbe,
    preferred: Mapping[str, Version],
    reader: OfferReader | None,
    report: Reporter,
    env: Mapping[str, str],
    since: float,
) -> Settled:
    """Read what the named packages' index pages offer, then raise and explain (heldback)."""
    from envlock import heldback  # noqa: PLC0415 - see the module note
    from envlock.cached_probe import cache_first  # noqa: PLC0415
    from envlock.io.uv import cache_dir, page_times  # noqa: PLC0415
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
    # a re-resolve asks uv's cache first: the resolve before it just read most of its pages
    cache = cache_dir(env)
    first = cache_first(probe, lock, since=since, written=lambda names: page_times(cache, names))
    settled = heldback.settle(lock, spec.packages, targets, first, direct=direct, report=report)
    return replace(settled, notes=(*notes, *settled.notes))


def _cooled(spec: Spec) -> tuple[Spec, datetime]:
    """The spec uv resolves (its exclude-newer now minus the cooldown, envlock.cooldown), and
    the moment that was taken as now."""
    now = datetime.now(UTC)
    if not spec.cooldown:
        return spec, now
    from envlock.cooldown import cooled  # noqa: PLC0415 - only with a cooldown

    return cooled(spec, now), now


def _cooldown_notes(
    spec: Spec,
    resolved: Spec,
    lock: Pylock,
    project: UvProject,
    *,
    now: datetime,
    reader: OfferReader | None,
) -> list[str]:
    """What the cooldown held back, package by package, and why (envlock.cooldown); nothing
    without one. ``resolved``: the spec uv was asked (its exclude-newer the cut-off)."""
    cut = resolved.exclude_newer
    if not spec.cooldown or cut is None:
        return []
    from envlock import cooldown, heldback  # noqa: PLC0415 - only with a cooldown

    if reader is None:
        from envlock.io import pages  # noqa: PLC0415

        reader = pages.PageReader()
    wire = {
        n: project.wire_url(i)
        for n, i in heldback.named_indexes(spec, lock).items()
        if n not in project.routed
    }
    read = reader.offers(sorted((u, n) for n, u in wire.items()), project.auth_for) if wire else {}
    pages_of = {n: read[(u, n)] for n, u in wire.items()}
    return [
        *cooldown.held_back(spec, lock, pages_of, cut=cut, now=now),
        *cooldown.fresh_routed(spec, lock, project.routed, cut=cut, now=now),
    ]
