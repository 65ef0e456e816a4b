"""Orchestration: read inputs, call the pure layers, perform the effects. No printing."""

from __future__ import annotations

import glob
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.pylock import PackageSdist, PackageWheel, Pylock, is_valid_pylock_path
from packaging.utils import NormalizedName, canonicalize_name

from envlock import __version__
from envlock.errors import (
    CheckFailed,
    HashMismatchError,
    LockfileError,
    MaterialiseError,
    SpecError,
    UsageError,
)
from envlock.io import files
from envlock.lockfile import LOCK_FILENAME, LockMeta, lock_meta, parse_lock_text, render_lock
from envlock.materialise.installed import Drift
from envlock.spec import (
    Indexes,
    Platform,
    Spec,
    effective_indexes,
    parse_spec_text,
    spec_digest,
)
from envlock.urls import redact_url

if TYPE_CHECKING:
    from envlock.channels import Channels, Selection
    from envlock.diff import LockDiff
    from envlock.doctor import Finding
    from envlock.host import HostFacts, Recommendation
    from envlock.io.venv import Interpreter
    from envlock.materialise.installed import Recorded
    from envlock.materialise.select import Selected
    from envlock.resolve import UvProject

# `envlock lock --check` runs in pre-commit hooks, so this module imports only what the
# freshness check needs; channel data, resolution and uv are imported where they are used.

Reporter = Callable[[str], None]


def _quiet(_message: str) -> None:
    return None


SELECTION_FILES = ("releases.toml", "drivers.toml", "family.toml")


def load_channels(names: tuple[str, ...] = files.CHANNEL_FILES) -> Channels:
    """The shipped channel data; ``names`` limits it to the files a command needs."""
    from envlock.channels import parse_channels  # noqa: PLC0415 - see the module note

    return parse_channels(files.read_channel_files(names))


def read_spec(path: Path) -> Spec:
    try:
        text = files.read_text(path)
    except MaterialiseError as exc:  # a directory, binary junk, unreadable: a spec problem
        raise SpecError(exc.message, hint="torchenv.toml must be a UTF-8 TOML text file.") from None
    if text is None:
        raise SpecError(
            f"{path} does not exist",
            hint="Run `envlock init` to write one, or pass --spec PATH.",
        )
    return parse_spec_text(text, source=str(path))


def default_lock_path(spec_path: Path) -> Path:
    return spec_path.parent / LOCK_FILENAME


def _validate_lock_path(path: Path) -> None:
    if not is_valid_pylock_path(path):
        raise UsageError(
            f"{path.name!r} is not a PEP 751 lock file name",
            hint="Name it pylock.toml or pylock.<name>.toml (lowercase, no dots in <name>).",
        )


def redacted(indexes: Indexes) -> Indexes:
    return Indexes(pypi=redact_url(indexes.pypi), pytorch=redact_url(indexes.pytorch))


# --------------------------------------------------------------------------------------
# lock


@dataclass(frozen=True, slots=True, kw_only=True)
class LockResult:
    lock_path: Path
    changed: bool  # False: the lock was already fresh and was not re-resolved
    lock: Pylock
    selection: Selection | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Freshness:
    fresh: bool
    reason: str


def _read_lock(path: Path) -> Pylock | None:
    text = files.read_text(path)
    if text is None:
        return None
    return parse_lock_text(text, source=str(path))


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
) -> LockResult:
    """Lock one (variant's) spec into lock_path. ``also_prefer``: other locks whose versions to
    keep where possible (variant alignment); ``force`` re-resolves even if fresh."""
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
    from envlock.diff import is_runtime_package  # noqa: PLC0415

    prefer = [
        *([prefer_first] if prefer_first is not None else []),
        *([previous] if previous is not None else []),
        *also_prefer,
    ]
    skip = frozenset(
        p.name
        for lock in prefer
        for p in lock.packages
        if p.name in selection.routed or is_runtime_package(p.name)
    )
    preferences = preferences_lock(prefer, str(spec.requires_python), skip=skip) if prefer else None
    outcome = uv.lock_with_uv(
        project,
        environ=env,
        preferences=preferences,
        upgrade=upgrade,
        upgrade_packages=[str(canonicalize_name(n)) for n in upgrade_packages],
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
    new_lock = pylock_from_export(outcome.export, spec=spec, tool=meta.to_tool())
    # uv records each package's index as it was given; a query string there may be a token.
    new_lock = replace(
        new_lock,
        packages=[
            replace(p, index=redact_url(p.index)) if p.index else p for p in new_lock.packages
        ],
    )
    check_routing(
        new_lock,
        selection,
        spec=spec,
        pypi_index=clean_indexes.pypi,
        pytorch_index=meta.variant_index,
    )
    warnings = [*selection.warnings, *_check_index_hashes(new_lock, project, hash_missing, report)]
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
    )


# pypi.org lists a sha256 for every file it serves (PEP 503/691), so its pages are not re-read.
_PYPI = "https://pypi.org/simple"


def _check_index_hashes(
    lock: Pylock, project: UvProject, policy: HashMissing, report: Reporter
) -> list[str]:
    """Every hash in the lock must be one its index listed (uv silently computes one by
    downloading a file listed without any); ``policy`` says what to do about the others."""
    wanted = sorted(
        {(p.index, p.name) for p in lock.packages if p.index and p.index.rstrip("/") != _PYPI}
    )
    if not wanted:
        return []
    from envlock.io import download, pages  # noqa: PLC0415 - only for non-PyPI indexes

    fetched = pages.fetch_listings(
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
            listed = listing.get(pages.artifact_key(artifact.filename), {})
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
        return []
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
            )
            for a in unlisted
        ]
        download.download_all(items, auth=project.auth_for, progress=report)
    return [
        f"{len(unlisted)} hash(es) were computed by downloading (their index lists none); "
        f"they match what uv computed:\n{urls}"
    ]


def variant_lock_path(spec_path: Path, name: str) -> Path:
    return spec_path.parent / f"pylock.{name}.toml"


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
) -> LockRun:
    """torchenv.toml -> pylock.toml (see _lock_spec); two runs on one spec take turns."""
    if lock_path is not None:
        _validate_lock_path(lock_path)
    if not spec_path.is_file():
        read_spec(spec_path)  # the clear "does not exist" error
    with files.exclusive(spec_path):
        return _lock_spec(
            spec_path,
            lock_path=lock_path,
            variant=variant,
            upgrade=upgrade,
            upgrade_packages=upgrade_packages,
            environ=environ,
            report=report,
            hash_missing=hash_missing,
        )


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
            )
        )
    by_name = dict(zip(names, results, strict=True))
    warnings = _align(
        spec, spec_path, by_name, others, env=env, report=report, hash_missing=hash_missing
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
    known = set(spec.package_names) | {canonicalize_name(n) for n in ("torch", "torchvision")}
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
                    pinned, variant_lock_path(spec_path, name), env=env, force=True, write=False
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


# --------------------------------------------------------------------------------------
# init


@dataclass(frozen=True, slots=True, kw_only=True)
class InitOptions:
    torch: str | None = None
    cuda: str | None = None
    python: str | None = None
    packages: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    vision: bool = True
    audio: bool = False
    force: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class InitResult:
    path: Path
    text: str
    recommendation: Recommendation | None = None
    host: HostFacts | None = None


def init(
    path: Path,
    options: InitOptions,
    *,
    host: HostFacts | None = None,
    environ: Mapping[str, str] | None = None,
) -> InitResult:
    """Write a commented torchenv.toml; without --cuda, detect this host's driver."""
    env = os.environ if environ is None else environ
    if path.exists() and not options.force:
        raise UsageError(
            f"{path} already exists",
            hint="Pass --force to overwrite it, or edit it by hand.",
        )
    from envlock.io import probe  # noqa: PLC0415 - see the module note
    from envlock.templates import render_spec_template  # noqa: PLC0415

    channels = load_channels()
    text, recommendation, facts = render_spec_template(
        options,
        channels,
        current_python=f"{sys.version_info.major}.{sys.version_info.minor}",
        probe=lambda: host if host is not None else probe.probe_host(env),
    )
    # The template must be a spec envlock accepts and can lock (the build exists for that
    # release and Python): fail before writing anything.
    from envlock.channels import select_variant  # noqa: PLC0415 - see the module note

    spec = parse_spec_text(text, source=str(path))
    indexes = Indexes()
    select_variant(spec, channels, pypi_index=indexes.pypi, pytorch_index=indexes.pytorch)
    if not path.parent.is_dir():
        raise UsageError(
            f"{path.parent} is not a directory",
            hint="Create the project directory first, or pass --path to an existing one.",
        )
    files.write_atomic(path, text)
    return InitResult(path=path, text=text, recommendation=recommendation, host=facts)


# --------------------------------------------------------------------------------------
# channels


def explain_selection(
    *, torch: str, cuda: str, python: str, platforms: Sequence[str], source: str = "auto"
) -> Selection:
    """What `envlock lock` would choose for these inputs (no network)."""
    platform_list = ", ".join(f'"{p}"' for p in platforms)
    text = (
        f'[env]\npython = "{python}"\nplatforms = [{platform_list}]\n'
        f'[torch]\nversion = "{torch}"\ncuda = "{cuda}"\nsource = "{source}"\n'
    )
    from envlock.channels import select_variant  # noqa: PLC0415 - see the module note

    spec = parse_spec_text(text, source="--torch/--cuda")
    indexes = Indexes()
    return select_variant(
        spec, load_channels(), pypi_index=indexes.pypi, pytorch_index=indexes.pytorch
    )


# --------------------------------------------------------------------------------------
# diff and git integration

GITATTRIBUTES_LINE = "pylock*.toml diff=envlock"


@dataclass(frozen=True, slots=True, kw_only=True)
class LockSide:
    label: str  # what the user named: a path, HEAD:pylock.toml, …
    lock: Pylock | None  # None: no lock there (added or deleted between the sides)
    warnings: tuple[str, ...] = ()  # read, but not as written (bytes that are not UTF-8)


def _repo_relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise UsageError(
            f"{path} is outside the git repository at {root}",
            hint="Pass both sides as files, or run envlock inside the repository.",
        ) from None


def _parse_side(text: str | None, label: str, side: str, *, undecodable: bool = False) -> LockSide:
    if text is None:
        return LockSide(label=label, lock=None)
    if not undecodable:
        return LockSide(label=label, lock=parse_lock_text(text, source=f"{label} ({side} side)"))
    # History cannot be fixed: read what decodes, and say so (in the error too, if it fails).
    lock = parse_lock_text(text, source=f"{label} ({side} side, not valid UTF-8)")
    warning = f"{label} ({side} side) is not valid UTF-8; read with U+FFFD for the bad bytes"
    return LockSide(label=label, lock=lock, warnings=(warning,))


def read_side(arg: str | None, *, side: str, lock_path: Path, cwd: Path) -> LockSide:
    """Resolve one side of a diff: a lock file, REV, or REV:path. Defaults: HEAD vs working tree."""
    from envlock.io import git  # noqa: PLC0415 - see the module note

    def from_git(revision: str, path: str, label: str) -> LockSide:
        blob = git.show(revision, path, cwd)
        if blob is None:
            return LockSide(label=label, lock=None)
        return _parse_side(blob.text, label, side, undecodable=blob.undecodable)

    if arg is None and side == "new":
        return _parse_side(files.read_text(lock_path), str(lock_path), side)
    if arg is not None and (cwd / arg).is_file():
        return _parse_side(files.read_text(cwd / arg), arg, side)
    root = git.repo_root(cwd)
    rev = arg or "HEAD"
    if root is None:
        raise UsageError(
            f"{rev!r} is not a lock file, and {cwd} is not in a git repository",
            hint="Pass two lock files: envlock diff OLD.toml NEW.toml",
        )
    if ":" in rev and not git.is_revision(rev, cwd):
        revision, _, path = rev.partition(":")
        return from_git(revision, path, rev)
    if arg is not None and not git.is_revision(arg, cwd):
        raise UsageError(
            f"{arg!r} is neither a lock file nor a git revision",
            hint="Use a path (pylock.toml), a revision (HEAD, main) or REV:path.",
        )
    relative = _repo_relative(lock_path, root)
    return from_git(rev, relative, f"{rev}:{relative}")


def diff(
    old: str | None, new: str | None, *, lock_path: Path, cwd: Path | None = None
) -> tuple[LockSide, LockSide, LockDiff]:
    from envlock.diff import diff_locks  # noqa: PLC0415 - see the module note

    here = cwd or Path.cwd()
    before = read_side(old, side="old", lock_path=lock_path, cwd=here)
    after = read_side(new, side="new", lock_path=lock_path, cwd=here)
    if before.lock is None and after.lock is None:
        raise UsageError(
            f"no lock at {before.label} nor at {after.label}",
            hint="Check the paths/revisions, or pass --lock for a lock with another name.",
        )
    # The torch family may carry the variant's local label (+cu126); no other package may.
    family = load_channels(SELECTION_FILES).routing.family
    return before, after, diff_locks(before.lock, after.lock, family=family)


def textconv(path: Path) -> str:
    """What git shows for a lock after `envlock git-setup`: one line per package."""
    from envlock.diff import render_summary  # noqa: PLC0415 - see the module note
    from envlock.io import git  # noqa: PLC0415 - see the module note

    # git must always be able to show the file: bytes that are not UTF-8 get a note, not an
    # error (git names a temporary file, so the note names only the lock's file name).
    blob = git.read_textconv_input(path)
    note = (
        f"# envlock: {path.name} is not valid UTF-8; undecodable bytes shown as U+FFFD\n"
        if blob.undecodable
        else ""
    )
    try:
        return note + render_summary(parse_lock_text(blob.text, source=str(path)))
    except LockfileError:
        return note + blob.text


@dataclass(frozen=True, slots=True, kw_only=True)
class GitSetupResult:
    root: Path
    changed: bool
    installed: bool


def git_setup(cwd: Path, *, uninstall: bool = False, command: str) -> GitSetupResult:
    """Register (or remove) the textconv diff driver for pylock*.toml. Idempotent."""
    from envlock.io import git  # noqa: PLC0415 - see the module note

    root = git.repo_root(cwd)
    if root is None:
        raise UsageError(f"{cwd} is not in a git repository", hint="Run it inside a git checkout.")
    attributes = root / ".gitattributes"
    lines = (files.read_text(attributes) or "").splitlines()
    present = GITATTRIBUTES_LINE in lines
    if uninstall:
        git.config_unset_section("diff.envlock", root)
        if present:
            kept = [line for line in lines if line != GITATTRIBUTES_LINE]
            files.write_atomic(attributes, "\n".join(kept) + ("\n" if kept else ""))
        return GitSetupResult(root=root, changed=present, installed=False)
    git.config_set("diff.envlock.textconv", command, root)
    if not present:
        files.write_atomic(attributes, "\n".join([*lines, GITATTRIBUTES_LINE]) + "\n")
    return GitSetupResult(root=root, changed=not present, installed=True)


# --------------------------------------------------------------------------------------
# doctor


@dataclass(frozen=True, slots=True, kw_only=True)
class DoctorReport:
    lock_path: Path
    host: HostFacts
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        from envlock.doctor import Level  # noqa: PLC0415 - see the module note

        return all(f.level is not Level.ERROR for f in self.findings)


def variant_lock(lock_path: Path, variant: str) -> Path:
    """pylock.<variant>.toml beside ``lock_path``; an unknown variant is an error that lists
    the variant locks there."""
    path = lock_path.parent / f"pylock.{variant}.toml"
    if path.is_file():
        return path
    known = ", ".join(variant_locks(lock_path.parent)) or "none"
    raise UsageError(
        f"there is no lock for variant {variant!r} in {lock_path.parent} (variant locks "
        f"there: {known})",
        hint="Variants are the [variants.<name>] tables of torchenv.toml; `envlock lock` "
        "writes pylock.<name>.toml for each.",
    )


def variant_locks(directory: Path) -> dict[str, Path]:
    """pylock.<name>.toml files in a directory, by variant name."""
    return {
        path.name.removeprefix("pylock.").removesuffix(".toml"): path
        for path in sorted(directory.glob("pylock.*.toml"))
    }


def doctor(
    lock_path: Path,
    *,
    host: HostFacts | None = None,
    environ: Mapping[str, str] | None = None,
    root: Path = Path("/"),
) -> DoctorReport:
    """Judge whether the lock will run on this host (driver, GPU architecture, glibc, …)."""
    from envlock.doctor import diagnose  # noqa: PLC0415 - see the module note
    from envlock.io import probe  # noqa: PLC0415

    lock, meta = read_lock(lock_path)
    facts = host if host is not None else probe.probe_host(environ, root)
    if host is None and facts.python != meta.python:
        facts = _with_lock_python(facts, meta.python, os.environ if environ is None else environ)
    findings = diagnose(lock, meta, facts, load_channels())
    return DoctorReport(lock_path=lock_path, host=facts, findings=tuple(findings))


def _with_lock_python(facts: HostFacts, minor: str, environ: Mapping[str, str]) -> HostFacts:
    """The host as sync will see it: the lock's Python found on this machine (PATH, pyenv,
    uv-managed), not the interpreter envlock happens to run on."""
    from envlock.io import venv  # noqa: PLC0415 - see the module note

    try:
        found = venv.find_python(minor, environ)
    except MaterialiseError:
        return facts
    return replace(facts, python=minor, python_path=str(found))


# --------------------------------------------------------------------------------------
# materialise: sync, verify, export requirements


def read_lock(lock_path: Path) -> tuple[Pylock, LockMeta]:
    """An envlock lock and its [tool.envlock] record; errors name the file and key path."""
    _, lock, meta = _read_envlock_lock(lock_path)
    return lock, meta


def _read_envlock_lock(lock_path: Path) -> tuple[str, Pylock, LockMeta]:
    text = files.read_text(lock_path)
    if text is None:
        raise LockfileError(
            f"{lock_path} does not exist", hint="Run `envlock lock` first, or pass --lock PATH."
        )
    lock = parse_lock_text(text, source=str(lock_path))
    meta = lock_meta(lock)
    if meta is None:
        raise LockfileError(
            f"{lock_path} was not written by envlock (no [tool.envlock] table)",
            hint="Re-create it with `envlock lock`.",
        )
    return text, lock, meta


def _digest(text: str) -> str:
    import hashlib  # noqa: PLC0415 - only here

    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncResult:
    venv: Path
    changed: bool
    created: bool
    packages: int
    warnings: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()  # why an existing venv was rebuilt


class LinkMode(StrEnum):
    """How sync's installer puts files from the cache into the venv."""

    AUTO = "auto"  # clone where the filesystem can, else copy
    COPY = "copy"
    CLONE = "clone"  # copy-on-write; uv falls back to hard links where reflink fails
    HARDLINK = "hardlink"  # shares inodes with the cache: an edit reaches every venv


def _preflight(lock: Pylock, meta: LockMeta, host: HostFacts) -> tuple[str, ...]:
    """Stop on a driver too old for the locked build or a hand-edited lock record; warn
    (once) on a CPU-only host."""
    from envlock.doctor import Level, diagnose  # noqa: PLC0415 - see the module note

    findings = diagnose(lock, meta, host, load_channels((*SELECTION_FILES, "gpu-arch.toml")))
    for finding in findings:
        if finding.level is Level.ERROR and finding.stops_sync:
            raise MaterialiseError(
                f"{finding.what}: {finding.why}" if finding.why else finding.what,
                hint=f"{finding.fix} Or pass --no-host-check to install anyway.",
            )
    return tuple(
        f"{f.what} ({f.why})" for f in findings if f.level is Level.WARNING and "driver" in f.what
    )


def sync(
    venv_path: Path,
    *,
    lock_path: Path,
    installer: str = "uv",
    host_check: bool = True,
    host: HostFacts | None = None,
    environ: Mapping[str, str] | None = None,
    report: Reporter = _quiet,
    link_mode: str = LinkMode.AUTO,
    reinstall: bool = False,
    allow_build: Sequence[str] = (),
) -> SyncResult:
    """Make the venv exactly the lock's selection for this host; nothing half-done on failure.

    Syncs into one directory take turns (an advisory lock on the venv's parent directory), so
    two runs meet nowhere else, whichever locks they sync from."""
    from envlock.io import venv  # noqa: PLC0415 - see the module note

    if venv_path.is_symlink():  # the swap would replace the link, not fill its target
        raise MaterialiseError(
            f"{venv_path} is a symbolic link; refusing to replace it",
            hint=f"Sync the link's target directly: envlock sync --venv {venv_path.resolve()}",
        )
    if not lock_path.is_file():
        read_lock(lock_path)  # the clear "does not exist" error
    venv_path = venv_path.absolute()
    with venv.exclusive_dir(venv_path.parent):
        return _sync(
            venv_path,
            lock_path=lock_path,
            installer=installer,
            host_check=host_check,
            host=host,
            environ=environ,
            report=report,
            link_mode=link_mode,
            reinstall=reinstall,
            allow_build=frozenset(canonicalize_name(n) for n in allow_build),
        )


def _sync(
    venv_path: Path,
    *,
    lock_path: Path,
    installer: str,
    host_check: bool,
    host: HostFacts | None,
    environ: Mapping[str, str] | None,
    report: Reporter,
    link_mode: str,
    reinstall: bool,
    allow_build: frozenset[NormalizedName],
) -> SyncResult:
    from envlock.io import installed, probe  # noqa: PLC0415 - see the module note
    from envlock.materialise.installed import Recorded, compare  # noqa: PLC0415
    from envlock.materialise.select import (  # noqa: PLC0415
        platform_target,
        render_install_lock,
        render_requirements,
        select,
    )

    env = os.environ if environ is None else environ
    recover_interrupted_sync(venv_path)
    lock_text, lock, meta = _read_envlock_lock(lock_path)
    system = probe.probe_system()
    exists = _sync_target_exists(venv_path)
    marker = _read_state(venv_path) if exists else None
    recorded = Recorded.from_marker(marker) if marker is not None else None
    reasons: tuple[str, ...] = ()
    # Nothing to do? The state file records what the last sync installed from which lock bytes,
    # for which host and Python; the venv is scanned (no subprocess) and must equal it exactly.
    if marker is not None and recorded is not None and not reinstall:
        state = installed.scan(venv_path, venv_path / str(marker.get("purelib", "-")))
        drift = compare(state, _recorded_wanted(marker), recorded)
        key = _sync_key(lock_text, system, str(marker.get("python", "")))
        if not drift and marker.get("key") == key and host is None:
            count = int(str(marker.get("packages", "0")))
            return SyncResult(venv=venv_path, changed=False, created=False, packages=count)
        reasons = tuple(f"{d.name}: {d.kind}" for d in drift)
    facts = host if host is not None else probe.probe_host(env, system=system)
    warnings = _preflight(lock, meta, facts) if host_check else ()
    platform = facts.platform
    if platform is None or platform.value not in meta.platforms:
        raise MaterialiseError(
            f"{lock_path} does not cover this host ({facts.os} {facts.machine}); it was locked "
            f"for {', '.join(meta.platforms)}",
            hint="Add this platform to [env] platforms and run `envlock lock`.",
        )
    interpreter = _base_interpreter(
        venv_path, exists=exists, recorded=recorded, minor=meta.python, environ=env, report=report
    )
    target = platform_target(
        platform, meta.python, full_version=interpreter.version, glibc=facts.glibc
    )
    chosen = select(lock, target, lock_dir=lock_path.parent)
    _refuse_builds(chosen, allow_build, installer=installer)
    requirements = render_requirements(chosen, header=f"envlock sync from {lock_path.name}")
    _build(
        venv_path,
        exists=exists,
        interpreter=interpreter,
        requirements=requirements,
        install_lock=render_install_lock(chosen),
        marker={
            "key": _sync_key(lock_text, system, interpreter.version),
            "python": interpreter.version,
            "lock": lock_path.name,
            "packages": str(len(chosen)),
            "installed": " ".join(f"{canonicalize_name(s.name)}=={s.version}" for s in chosen),
        },
        installer=installer,
        link_mode=link_mode,
        environ=env,
        report=report,
        message=f"Installing {len(chosen)} packages ({target.label})",
    )
    return SyncResult(
        venv=venv_path,
        changed=True,
        created=not exists,
        packages=len(chosen),
        warnings=warnings,
        reasons=reasons,
    )


def _read_state(venv_path: Path) -> dict[str, object] | None:
    from envlock.io import venv  # noqa: PLC0415 - see the module note

    return venv.read_marker(venv_path)


def _recorded_wanted(marker: Mapping[str, object]) -> dict[NormalizedName, str]:
    items = str(marker.get("installed", "")).split()
    return {NormalizedName(n): v for n, _, v in (item.partition("==") for item in items)}


def _refuse_builds(
    chosen: Sequence[Selected], allow_build: frozenset[NormalizedName], *, installer: str
) -> None:
    """An sdist is built on this machine with build requirements resolved live from PyPI: not
    reproducible and not hash-checked, so only for packages the user names."""
    builds = sorted(canonicalize_name(s.name) for s in chosen if not s.is_wheel)
    refused = [name for name in builds if name not in allow_build]
    if refused:
        raise MaterialiseError(
            f"the lock has no wheel for {', '.join(refused)} on this host, only a source "
            "distribution, which would be built here",
            hint="A build runs the package's own code and fetches its build requirements "
            "unpinned from PyPI. To accept that, pass "
            + " ".join(f"--allow-build {name}" for name in refused)
            + "; or publish a wheel to your index and run `envlock lock --upgrade`.",
        )
    if builds and installer == "pip":
        raise MaterialiseError(
            f"--installer pip installs wheels only; {', '.join(builds)} must be built",
            hint="Use the default installer (uv) for a lock that holds source distributions.",
        )


def _base_interpreter(
    venv_path: Path,
    *,
    exists: bool,
    recorded: Recorded | None,
    minor: str,
    environ: Mapping[str, str],
    report: Reporter,
) -> Interpreter:
    """The interpreter a venv for the lock's Python is built from: the one the last sync
    used, else the existing venv's own base, else a CPython ``minor`` found on this machine
    (PATH, pyenv, uv-managed; never downloaded). A venv whose base was removed or that runs
    another Python is rebuilt from the one found."""
    from envlock.io import venv  # noqa: PLC0415 - see the module note

    candidates = [Path(recorded.executable)] if recorded and recorded.executable else []
    if exists:
        candidates.append(venv.python_in(venv_path))
    for candidate in candidates:
        if not candidate.exists():
            continue
        try:
            interpreter = venv.query(candidate)
        except MaterialiseError:
            continue
        if interpreter.minor == minor:
            return interpreter
        report(f"{venv_path} runs Python {interpreter.minor}; rebuilding it with Python {minor}")
    if f"{sys.version_info.major}.{sys.version_info.minor}" == minor:
        return venv.current()  # envlock's own interpreter: no search needed
    return venv.query(venv.find_python(minor, environ))


def _build(
    venv_path: Path,
    *,
    exists: bool,
    interpreter: Interpreter,
    requirements: str,
    install_lock: str,
    marker: dict[str, object],
    installer: str,
    link_mode: str,
    environ: Mapping[str, str],
    report: Reporter,
    message: str,
) -> None:
    """Build the venv beside its path and swap it in only when everything worked.

    An existing venv is never modified in place, so an interrupted or failed sync (even a
    SIGKILL) leaves either the old venv or the new one at PATH, never a half-synced one."""
    from envlock.io import installed, venv  # noqa: PLC0415 - see the module note
    from envlock.io.uv import cache_dir  # noqa: PLC0415
    from envlock.materialise.installed import record_of  # noqa: PLC0415

    workdir = _new_workdir(venv_path)
    old = _old_beside(venv_path)
    verb = "Rebuilding" if exists else "Creating"
    report(f"{verb} {venv_path} with Python {interpreter.version}")
    try:
        venv.create(workdir, interpreter.base, environ)
        report(message)
        if link_mode == LinkMode.AUTO:
            link_mode = venv.link_mode_for(cache_dir(environ), workdir)
        new_python = venv.python_in(workdir)
        venv.install_exact(
            new_python,
            requirements,
            environ,
            installer=installer,
            link_mode=link_mode,
            install_lock=install_lock,
            echo=lambda line: _progress_line(line, report),
        )
        problems = venv.check(new_python, environ)
        if problems:
            raise MaterialiseError(
                "the installed packages have unmet dependencies (is the lock complete?)",
                hint="The venv was left as it was. The lock was resolved from the index's "
                "metadata, and an installed wheel declares more than that metadata did (a broken "
                "or tampered index?): report it, and add the missing package to [packages] to "
                "work around it. For a lock edited by hand, run `envlock lock --upgrade`.",
                detail=problems,
            )
        site = venv.purelib_of(workdir, interpreter.minor)
        marker["purelib"] = site.resolve().relative_to(workdir.resolve()).as_posix()
        marker["link-mode"] = link_mode
        # What each locked artifact installed, for the no-op check and verify: the state is
        # read after the swap's rename too, and a rename changes no file's size or time.
        marker.update(record_of(installed.scan(workdir, site)))
        venv.write_marker(workdir, marker)
        if exists:
            venv.remove_tree(old)
            venv_path.rename(old)
        try:
            workdir.rename(venv_path)
        except OSError:
            if exists:
                old.rename(venv_path)
            raise
        venv.remove_tree(old)
    except BaseException:
        venv.remove_tree(workdir)
        raise


def _new_workdir(venv_path: Path) -> Path:
    """A build directory of this sync's own beside PATH (the rename must not cross devices)."""
    import tempfile  # noqa: PLC0415 - only here

    from envlock.io import venv  # noqa: PLC0415

    venv_path.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f".{venv_path.name}.envlock-new-", dir=venv_path.parent))
    venv.honour_umask(workdir, 0o777)  # mkdtemp makes it 0700; the venv is the user's
    return workdir


def _old_beside(venv_path: Path) -> Path:
    """Where the old venv waits during the swap (one sync per directory at a time)."""
    return venv_path.parent / f".{venv_path.name}.envlock-old"


def recover_interrupted_sync(venv_path: Path) -> None:
    """Finish or undo a swap a killed sync left behind: the old venv comes back if PATH is
    missing; leftovers are removed. Runs under the directory's sync lock."""
    from envlock.io import venv  # noqa: PLC0415 - see the module note

    old = _old_beside(venv_path)
    if old.exists() and not os.path.lexists(venv_path):
        old.rename(venv_path)
    venv.remove_tree(old)
    for workdir in venv_path.parent.glob(f".{glob.escape(venv_path.name)}.envlock-new-*"):
        venv.remove_tree(workdir)


def _progress_line(line: str, report: Reporter) -> None:
    """uv's progress lines (Prepared/Installed/+ name==version); its errors come later, once."""
    text = line.strip()
    if text and not text.startswith(("error", "cause", "Caused by", "hint", "warning")):
        report(f"  {text}")


def _sync_target_exists(venv_path: Path) -> bool:
    """True for a venv to replace, False for a path to create (missing or an empty directory).

    sync replaces only a directory it can prove is a venv: a pyvenv.cfg and nothing at the
    top level but a venv's own entries. A project folder that holds a venv's files too, a
    file, a conda env or /usr is refused before anything changes: no path of the user's is
    ever deleted."""
    from envlock.io import venv  # noqa: PLC0415 - see the module note

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


def _sync_key(lock_text: str, system: HostFacts, python: str) -> str:
    return _digest(f"{lock_text}\0{system.platform}\0{system.glibc}\0{python}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Verification:
    drift: tuple[Drift, ...]
    notes: tuple[str, ...] = ()


def verify(
    venv_path: Path,
    *,
    lock_path: Path,
    deep: bool = False,
    host: HostFacts | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Drift, ...]:
    """Installed state vs the lock's selection: packages, versions, the very artifacts the last
    sync installed, files against RECORD (hashed with ``deep``), the interpreter and start-up
    code. The same model sync's no-op check uses."""
    return verify_venv(venv_path, lock_path=lock_path, deep=deep, host=host, environ=environ).drift


def verify_venv(
    venv_path: Path,
    *,
    lock_path: Path,
    deep: bool = False,
    host: HostFacts | None = None,
    environ: Mapping[str, str] | None = None,
) -> Verification:
    from envlock.io import installed, probe, venv  # noqa: PLC0415 - see the module note
    from envlock.materialise.installed import DriftKind, Recorded, compare  # noqa: PLC0415
    from envlock.materialise.select import platform_target, select  # noqa: PLC0415

    del environ  # the state is read from disk; nothing runs but the interpreter query
    lock, meta = read_lock(lock_path)
    python = venv.python_in(venv_path)
    if not python.exists():
        raise MaterialiseError(
            f"{venv_path} is not a virtual environment (or its Python is gone)",
            hint=f"Create it with `envlock sync --venv {venv_path}`."
            if not os.path.lexists(venv_path) or (venv_path / "pyvenv.cfg").is_file()
            else "Pass the path of the venv to check.",
        )
    interpreter = venv.query(python)
    facts = host if host is not None else probe.probe_system()
    platform = facts.platform or Platform.LINUX_X86_64
    chosen = select(
        lock,
        platform_target(platform, meta.python, full_version=interpreter.version, glibc=facts.glibc),
        lock_dir=lock_path.parent,
    )
    wanted = {canonicalize_name(s.name): s.version for s in chosen}
    marker = venv.read_marker(venv_path)
    recorded = Recorded.from_marker(marker) if marker is not None else None
    notes: list[str] = []
    if recorded is not None and _recorded_wanted(marker or {}) != wanted:
        recorded = None  # synced from another lock: its record says nothing about this one
        notes.append(f"{venv_path} was last synced from another lock; artifacts not compared")
    elif recorded is None:
        notes.append(
            f"{venv_path} has no state from `envlock sync`: versions, files and start-up code "
            "are checked, not that each package is the locked artifact"
        )
    site = interpreter.purelib
    state = installed.scan(venv_path, site)
    owned = frozenset().union(
        *(installed.owned_files(site, d) for d in state.dists if d.name in wanted)
    )
    drift = list(compare(state, wanted, recorded, owned_startup=owned))
    if deep:
        changed = {
            d.name: installed.changed_files(site, d) for d in state.dists if d.name in wanted
        }
        drift = [
            d
            for d in drift
            if not (d.kind == DriftKind.MODIFIED and d.found == "files changed")
            or changed.get(NormalizedName(d.name))
        ]
        drift += [
            Drift(name=name, kind=DriftKind.MODIFIED, found=path)
            for name, paths in sorted(changed.items())
            for path in paths
            if not any(x.name == name and x.found == path for x in drift)
        ]
    return Verification(drift=tuple(drift), notes=tuple(notes))


def _export_platform(lock_path: Path, meta: LockMeta, platform: str | None) -> Platform:
    from envlock.io import probe  # noqa: PLC0415 - see the module note

    if platform is None:
        host = probe.probe_system().platform
        if len(meta.platforms) == 1:
            platform = meta.platforms[0]
        elif host is not None and host.value in meta.platforms:
            platform = host.value
        else:
            raise UsageError(
                f"{lock_path} covers {', '.join(meta.platforms)}; which one?",
                hint="Pass --platform with one of them.",
            )
    if platform not in meta.platforms:
        raise MaterialiseError(
            f"{lock_path} was not locked for {platform} (it covers {', '.join(meta.platforms)})",
            hint=f'Add "{platform}" to [env] platforms and run `envlock lock`.',
        )
    return Platform(platform)


def _export_selection(
    lock_path: Path, platform: str | None
) -> tuple[LockMeta, Platform, tuple[Selected, ...]]:
    from envlock.materialise.select import platform_target, select  # noqa: PLC0415

    lock, meta = read_lock(lock_path)
    target_platform = _export_platform(lock_path, meta, platform)
    chosen = select(lock, platform_target(target_platform, meta.python), lock_dir=lock_path.parent)
    return meta, target_platform, chosen


def _header(lock_path: Path, platform: Platform, meta: LockMeta, how: str) -> str:
    return (
        f"Generated by envlock from {lock_path.name} for {platform.value} / CPython "
        f"{meta.python} (torch {meta.torch}, {meta.variant}).\n{how}"
    )


def export_requirements(lock_path: Path, *, platform: str | None = None) -> str:
    """Hashed requirements for one platform of the lock (pip/uv: --require-hashes --no-deps)."""
    from envlock.materialise.select import render_requirements  # noqa: PLC0415

    meta, target, chosen = _export_selection(lock_path, platform)
    how = "Install with: pip install --require-hashes --no-deps -r requirements.txt"
    return render_requirements(chosen, header=_header(lock_path, target, meta, how))


def export_conda(
    lock_path: Path,
    *,
    platform: str | None = None,
    channels: Sequence[str] = ("conda-forge",),
    name: str | None = None,
) -> str:
    """environment.yml: conda's python + pip, the lock as hashed pip lines."""
    from envlock.materialise.exports import render_conda  # noqa: PLC0415

    meta, target, chosen = _export_selection(lock_path, platform)
    env_name = name or (lock_path.resolve().parent.name or "envlock")
    how = "Create with: conda env create -f environment.yml"
    return render_conda(
        chosen,
        name=env_name,
        python=meta.python,
        channels=channels,
        header=_header(lock_path, target, meta, how),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DockerExport:
    dockerfile: str
    requirements: str
    base: str
    official: bool
    note: str  # why the official image was or was not used


def export_dockerfile(
    lock_path: Path,
    *,
    platform: str | None = None,
    flavor: str = "runtime",
    base: str = "auto",
    user: str = "envlock",
    allow_root: bool = False,
    base_digest: str | None = None,
) -> DockerExport:
    """A Dockerfile extending the official pytorch/pytorch image when one matches the lock."""
    from envlock.channels import parse_variant  # noqa: PLC0415 - see the module note
    from envlock.materialise.exports import (  # noqa: PLC0415
        docker_user,
        official_image,
        render_dockerfile,
    )

    user_name = docker_user(user, allow_root=allow_root)
    if base_digest is not None and not re.fullmatch(r"sha256:[0-9a-f]{64}", base_digest):
        raise UsageError(
            f"--base-digest {base_digest!r} is not a sha256 digest",
            hint="Pass the image digest as sha256:<64 hex digits> (docker buildx imagetools "
            "inspect IMAGE shows it).",
        )
    meta, target, chosen = _export_selection(lock_path, platform)
    if target not in (Platform.LINUX_X86_64, Platform.LINUX_AARCH64):
        raise MaterialiseError(
            f"Docker images are Linux; {target.value} cannot be exported as a Dockerfile",
            hint="Pass --platform linux-x86_64 (or linux-aarch64).",
        )
    torch = next((s for s in chosen if s.name == "torch"), None)
    image, why_not = (None, "the lock has no torch")
    if torch is not None:
        image, why_not = official_image(
            load_channels(),
            torch_version=torch.version,
            variant=parse_variant(meta.variant),
            python=meta.python,
        )
    if base == "official" and image is None:
        raise MaterialiseError(
            f"no official base image: {why_not}",
            hint="Use --base python (a python:X.Y-slim base with the whole lock).",
        )
    if base == "python":
        image = None
        why_not = "--base python"
    how = "See the Build/Run lines below."
    plan = render_dockerfile(
        chosen,
        python=meta.python,
        image=image,
        flavor=flavor,
        user=user_name,
        base_digest=base_digest,
        header=_header(lock_path, target, meta, how),
    )
    note = (
        f"extends the official {plan.base}; installs {plan.requirements.count(' @ ')} packages "
        "the image does not provide"
        if plan.official
        else f"uses {plan.base} with the whole lock ({why_not})"
    )
    return DockerExport(
        dockerfile=plan.dockerfile,
        requirements=plan.requirements,
        base=plan.base,
        official=plan.official,
        note=note,
    )


def _inputs(lock_path: Path) -> tuple[Path, ...]:
    """What an export or bundle of this lock reads, or is made from: no output may land there."""
    from envlock.spec import SPEC_FILENAME  # noqa: PLC0415 - see the module note

    return lock_path, lock_path.parent / SPEC_FILENAME


def _is_envlocks(path: Path, mark: Callable[[str], bool]) -> bool:
    """Is there nothing at ``path``, or a file envlock wrote (``mark`` recognises it)?"""
    try:
        text = files.read_text(path)
    except MaterialiseError:
        if path.is_dir():
            raise
        return False  # not UTF-8 text: not a file envlock wrote
    return text is None or mark(text)


def _check_outputs(
    outputs: Mapping[Path, Callable[[str], bool]], *, lock_path: Path, force: bool
) -> None:
    """Before anything is written: no output may be an input of ``lock_path``'s (--force or
    not), and without ``force`` none may replace a file its mark does not recognise."""
    for path, mark in outputs.items():
        files.refuse_symlink(path)
        source = next((i for i in _inputs(lock_path) if files.same_file(path, i)), None)
        if source is not None:
            raise MaterialiseError(
                f"{path} is {source}, which this command reads; refusing to write over it",
                hint="Write the output somewhere else with -o/--output.",
            )
        if not force and not _is_envlocks(path, mark):
            raise MaterialiseError(
                f"{path} exists and was not written by envlock; refusing to overwrite it",
                hint="Pass --force to replace it, or write somewhere else with -o/--output.",
            )


def write_output(path: Path, text: str, *, lock_path: Path, force: bool = False) -> None:
    """An export of the lock at ``lock_path``, written atomically to ``path``: never over the
    lock or its spec, and over a file envlock did not write only with ``force``."""
    from envlock.materialise.exports import has_export_mark  # noqa: PLC0415

    _check_outputs({path: has_export_mark}, lock_path=lock_path, force=force)
    files.write_atomic(path, text)


def write_output_dir(
    directory: Path, texts: Mapping[str, str], *, lock_path: Path, force: bool = False
) -> None:
    """Exports into an output directory the user named (a symlinked directory is refused),
    checked as write_output checks one, all before the first is written."""
    from envlock.materialise.exports import has_export_mark  # noqa: PLC0415

    files.refuse_symlink(directory)
    _check_outputs(
        {directory / name: has_export_mark for name in texts}, lock_path=lock_path, force=force
    )
    files.write_all_atomic([(directory / name, text) for name, text in texts.items()])


# --------------------------------------------------------------------------------------
# bundle


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleResult:
    directory: Path
    files: int
    fetched: int
    bytes: int
    platforms: tuple[str, ...]


def bundle(
    lock_path: Path,
    output: Path,
    *,
    platforms: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    report: Reporter = _quiet,
    force: bool = False,
) -> BundleResult:
    """Download every artifact the lock selects for the platforms into OUTPUT/wheels, and write
    OUTPUT/pylock.toml (relative `path` artifacts) and OUTPUT/manifest.json, for offline sync.
    Neither may replace the lock being bundled, nor (without ``force``) a file no bundle wrote:
    that is refused before anything is downloaded."""
    import json  # noqa: PLC0415 - see the module note

    from envlock.io.download import Download, download_all  # noqa: PLC0415
    from envlock.materialise.exports import is_bundle_lock, is_bundle_manifest  # noqa: PLC0415
    from envlock.materialise.select import (  # noqa: PLC0415
        bundle_lock,
        platform_target,
        select,
    )

    env = os.environ if environ is None else environ
    files.refuse_symlink(output)
    text, lock, meta = _read_envlock_lock(lock_path)
    wanted = tuple(platforms) or meta.platforms
    for name in wanted:
        _export_platform(lock_path, meta, name)
    chosen: dict[str, Selected] = {}
    for name in wanted:
        target = platform_target(Platform(name), meta.python)
        for item in select(lock, target, lock_dir=lock_path.parent):
            chosen.setdefault(item.filename, item)
    builds = sorted({canonicalize_name(s.name) for s in chosen.values() if not s.is_wheel})
    if builds:
        raise MaterialiseError(
            f"the lock has only a source distribution of {', '.join(builds)} for "
            f"{', '.join(wanted)}; an offline sync cannot build it",
            hint="A build needs its build requirements, which would come unpinned from PyPI. "
            "Publish a wheel of it to your index and run `envlock lock --upgrade`, or sync "
            "online with --allow-build.",
        )
    _check_outputs(
        {output / LOCK_FILENAME: is_bundle_lock, output / "manifest.json": is_bundle_manifest},
        lock_path=lock_path,
        force=force,
    )
    wheels = output / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    items = [
        Download(url=s.url, sha256=s.sha256, size=s.size, dest=wheels / s.filename)
        for s in sorted(chosen.values(), key=lambda s: s.filename)
    ]
    report(f"Bundling {len(items)} files for {', '.join(wanted)} into {wheels}")
    fetched = download_all(items, auth=_index_auth(env), progress=report)
    bundled = bundle_lock(lock, frozenset(chosen))
    files.write_atomic(output / LOCK_FILENAME, render_lock(bundled))
    manifest = {
        "envlock-version": __version__,
        "source-lock": lock_path.name,
        "source-lock-sha256": _digest(text),
        "platforms": list(wanted),
        "python": meta.python,
        "files": [
            {"path": f"wheels/{i.dest.name}", "sha256": i.sha256, "size": i.dest.stat().st_size}
            for i in items
        ],
    }
    files.write_atomic(output / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    total = sum(i.dest.stat().st_size for i in items)
    return BundleResult(
        directory=output, files=len(items), fetched=fetched, bytes=total, platforms=wanted
    )


def _index_auth(environ: Mapping[str, str]) -> Callable[[str], tuple[str, str] | None]:
    """Credentials from ENVLOCK_*_INDEX_URL for artifacts on the same host (private mirrors)."""
    from urllib.parse import urlsplit  # noqa: PLC0415

    from envlock.urls import private_indexes  # noqa: PLC0415

    hosts = {urlsplit(i.clean).netloc: (i.user, i.password) for i in private_indexes(environ)}
    return lambda url: hosts.get(urlsplit(url).netloc)
