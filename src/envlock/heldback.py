"""The packages torchenv.toml names come first: raise those uv held back, explain the rest. Pure.

uv's answer depends on the order in which it decides packages: a shared dependency decided
first at its newest can leave a named package many releases behind the newest one that
resolves (issue 18: datasets 2.14.4 instead of 5.0.1 next to torch and torchvision). After uv
resolves, envlock compares each named package with the newest version its index offers for
the lock's platforms and Python and, where a newer one exists, re-resolves with a lower bound
(``name>=candidate``) while every other named package keeps at least its version: what
resolves is kept, so a raise never trades one named package for another. Whatever stays below
the newest is reported with the package and the requirement that hold it back, as uv's own
explanation of the failed re-resolve names them.

The re-resolves run through a ``probe`` the api layer passes in (uv on the throw-away project);
this module only decides what to ask and what the answers mean.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from packaging.pylock import Pylock
from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from envlock.errors import ResolutionError, UvResolutionError
from envlock.resolve import platform_environment, platform_tags
from envlock.spec import Platform, Spec
from envlock.uv_explain import Holder, explain, lowest_version
from envlock.wheels import parse_wheel

# Bounds on the re-resolves one lock may spend (each is a full `uv lock`): per named package,
# and in all. The search needs 1 re-resolve when the newest version resolves, 2 when not even
# the next release above the locked one does, and about log2(releases between) otherwise.
PER_PACKAGE = 5
TOTAL = 12
SPEC_FILE = "torchenv.toml"
PREVIOUS_LOCK = "the previous lock"


@dataclass(frozen=True, slots=True, kw_only=True)
class Offer:
    """One file a project page lists (PEP 503 HTML or PEP 691 JSON)."""

    filename: str
    requires_python: str | None = None
    yanked: bool = False
    upload_time: datetime | None = None


# A project page's files, or why it could not be read.
Offers = tuple[Offer, ...] | str


class OfferReader(Protocol):
    """Reads what project pages offer (envlock.io.pages.PageReader; tests pass a fake)."""

    def offers(
        self, wanted: Sequence[tuple[str, str]], auth: Callable[[str], tuple[str, str] | None]
    ) -> Mapping[tuple[str, str], Offers]:
        """(index URL, project) -> its files, or why the page could not be read."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """A named package: its requirement in the spec, and what its index offers for the lock."""

    name: NormalizedName
    requirement: Requirement
    offered: tuple[Version, ...]  # installable on every platform the requirement applies to
    preferred: Version | None = None  # the version a previous lock asked uv to keep


@dataclass(frozen=True, slots=True, kw_only=True)
class Raised:
    name: NormalizedName
    was: Version
    now: Version
    resolves: int  # re-resolves spent on this package


@dataclass(frozen=True, slots=True, kw_only=True)
class HeldBack:
    name: NormalizedName
    locked: Version
    newest: Version
    by: str | None  # a package name, torchenv.toml, the previous lock, or None (unexplained)
    by_version: Version | None
    requirement: str | None  # the requirement that excludes the newer version
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Settled:
    lock: Pylock
    raised: tuple[Raised, ...] = ()
    held_back: tuple[HeldBack, ...] = ()
    notes: tuple[str, ...] = ()
    resolves: int = 0


# A re-resolve with the spec's packages replaced; raises ResolutionError when uv finds none.
Probe = Callable[[tuple[Requirement, ...]], Pylock]


# --------------------------------------------------------------------------------------
# what an index offers for the lock's targets


@functools.lru_cache(maxsize=4096)  # a page repeats a few strings over its ~1,000 files
def _python_admits(requires_python: str | None, python: str) -> bool:
    if not requires_python:
        return True
    try:
        allowed = SpecifierSet(requires_python)
    except InvalidSpecifier:
        return False  # unreadable: not counted as installable
    # every patch release of the lock's minor (uv resolves for the whole python_version)
    return all(allowed.contains(f"{python}.{patch}", prereleases=True) for patch in (0, 99))


def offered_versions(
    offers: Iterable[Offer],
    *,
    spec: Spec,
    requirement: Requirement,
    cutoff: datetime | None,
) -> tuple[Version, ...]:
    """Versions, newest first, with an installable file for every platform of the spec the
    requirement applies to: a wheel whose tags fit (or an sdist), for the spec's Python, not
    yanked, uploaded before ``cutoff`` (exclude-newer) when one is given."""
    platforms = [
        p
        for p in spec.platforms
        if requirement.marker is None
        or requirement.marker.evaluate(platform_environment(p, spec.python))
    ]
    tags = {p: frozenset(platform_tags(p, spec.python)) for p in platforms}
    fits: dict[Version, set[Platform]] = {}
    for offer in offers:
        if offer.yanked or not _python_admits(offer.requires_python, spec.python):
            continue
        if cutoff is not None and (offer.upload_time is None or offer.upload_time > cutoff):
            continue
        version, covered = _file_fits(offer.filename, tags)
        if version is not None:
            fits.setdefault(version, set()).update(covered)
    return tuple(sorted((v for v, c in fits.items() if c >= set(platforms)), reverse=True))


def _file_fits(
    filename: str, tags: Mapping[Platform, frozenset[Any]]
) -> tuple[Version | None, set[Platform]]:
    wheel = parse_wheel(filename) if filename.endswith(".whl") else None
    if wheel is not None:
        return wheel[1], {p for p, accepted in tags.items() if wheel[3] & accepted}
    match = re.fullmatch(r"(.+)-([^-]+)\.(?:tar\.gz|zip)", filename)
    if match is None:
        return None, set()
    try:
        return Version(match.group(2)), set(tags)  # an sdist builds anywhere (uv may build it)
    except ValueError:  # InvalidVersion
        return None, set()


def named_indexes(spec: Spec, lock: Pylock) -> dict[NormalizedName, str]:
    """The index each named package was locked from (a package its marker keeps out of every
    target is not in the lock, and not checked)."""
    index_of = {p.name: p.index for p in lock.packages if p.index}
    named = (canonicalize_name(r.name) for r in spec.packages)
    return {n: index_of[n] for n in named if n in index_of}


def targets(
    spec: Spec,
    pages: Mapping[NormalizedName, Offers],
    *,
    preferred: Mapping[str, Version],
    exempt: frozenset[NormalizedName] = frozenset(),
) -> tuple[list[Target], list[str]]:
    """The named packages whose page was read, in the spec's order, and a note for each page
    that was not. ``exempt``: names exclude-newer does not apply to (routed to the PyTorch
    index, as resolve.build_uv_project exempts them)."""
    found, notes = [], []
    for requirement in spec.packages:
        name = canonicalize_name(requirement.name)
        page = pages.get(name)
        if page is None:
            continue
        if isinstance(page, str):
            notes.append(f"{name}: not checked against its index ({page})")
            continue
        cutoff = None if name in exempt else spec.exclude_newer
        offered = offered_versions(page, spec=spec, requirement=requirement, cutoff=cutoff)
        found.append(
            Target(
                name=name, requirement=requirement, offered=offered, preferred=preferred.get(name)
            )
        )
    return found, notes


def preferred_versions(prefer: Sequence[Pylock], skip: frozenset[str]) -> dict[str, Version]:
    """The version uv is asked to keep for each package (as resolve.preferences_lock writes
    them: the first lock naming a package wins; ``skip`` names only the first lock's)."""
    preferred: dict[str, Version] = {}
    for position, old in enumerate(prefer):
        for p in old.packages:
            if p.version is None or not p.index or not p.wheels or p.name in preferred:
                continue
            if not (position > 0 and p.name in skip):
                preferred[p.name] = p.version
    return preferred


def names_of(requirements: Iterable[str]) -> frozenset[NormalizedName]:
    """The project names of requirement strings."""
    return frozenset(canonicalize_name(Requirement(r).name) for r in requirements)


# --------------------------------------------------------------------------------------
# the search


def _allows_prereleases(requirement: Requirement, locked: Version) -> bool:
    return requirement.specifier.prereleases is True or locked.is_prerelease


def _bounded(requirement: Requirement, floor: Version) -> Requirement:
    bounded = Requirement(str(requirement))
    bounded.specifier = requirement.specifier & SpecifierSet(f">={floor.public}")
    return bounded


@dataclass(slots=True)
class _Search:
    """The search state: the lock so far, the re-resolves spent, what failed and why."""

    named: Sequence[Requirement]  # all of the spec's packages, in its order
    probe: Probe
    direct: frozenset[NormalizedName]
    budget: int
    current: Pylock
    report: Callable[[str], None]
    spent: int = 0
    failures: dict[NormalizedName, tuple[Version, str]] = field(default_factory=dict)
    movable: dict[NormalizedName, Version] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def requirements(self, raising: NormalizedName, candidate: Version) -> tuple[Requirement, ...]:
        """The spec's packages, ``raising`` at >= candidate, every other locked one at >= its
        locked version (so a raise that resolves lowers no other named package)."""
        out = []
        for requirement in self.named:
            name = canonicalize_name(requirement.name)
            floor = candidate if name == raising else lowest_version(self.current, name)
            out.append(requirement if floor is None else _bounded(requirement, floor))
        return tuple(out)

    def attempt(self, target: Target, candidate: Version) -> Pylock | str:
        """The lock with ``target`` at >= candidate, or uv's (or envlock's) reason why not."""
        locked = lowest_version(self.current, target.name)
        self.spent += 1
        self.report(f"Re-resolving with {target.name}>={candidate} (uv locked {locked})")
        try:
            lock = self.probe(self.requirements(target.name, candidate))
        except UvResolutionError as exc:  # all of uv's words: the holder may come late
            return exc.explanation
        except ResolutionError as exc:
            return exc.detail or exc.message
        for name in sorted(self.direct):  # the torch family too: nothing named may go down
            before, after = lowest_version(self.current, name), lowest_version(lock, name)
            if before is not None and (after is None or after < before):
                return f"it would lower {name} from {before} to {after or 'nothing'}"
        return lock

    def settle(self, target: Target) -> Raised | None:
        locked = lowest_version(self.current, target.name)
        if locked is None:
            return None
        allowed = _allows_prereleases(target.requirement, locked)
        candidates = [
            v
            for v in target.offered
            if v > locked and target.requirement.specifier.contains(v, prereleases=allowed)
        ]
        if not candidates:
            return None
        if self.spent >= self.budget:
            self.notes.append(
                f"{target.name}: neither raised nor explained: the {self.budget} re-resolves one "
                f"lock may spend were spent (pin {target.name}>={candidates[0]} to try it)"
            )
            return None
        start = self.spent
        newest = self.attempt(target, candidates[0])
        kept = target.preferred is not None and target.preferred == locked
        if not isinstance(newest, str):
            if kept:  # the previous lock holds it; -P lets it move, envlock does not
                self.movable[target.name] = candidates[0]
                return None
            return self._take(target, locked, newest, start)
        self.failures[target.name] = (candidates[0], newest)
        if len(candidates) == 1 or (kept and self.spent >= self.budget):
            return None
        if kept:  # would -P move it? (the release above the locked one tells)
            lowest = self.attempt(target, candidates[-1])
            if not isinstance(lowest, str):
                self.movable[target.name] = lowest_version(lowest, target.name) or candidates[-1]
            return None
        return self._bisect(target, locked, candidates, start)

    def _bisect(
        self, target: Target, locked: Version, candidates: list[Version], start: int
    ) -> Raised | None:
        """``>=c`` resolves for fewer c the higher c is, so the newest c that resolves lies
        between the newest candidate (which did not) and the lowest one: probe the lowest, then
        bisect. A success that lands above its bound narrows the interval to what it reached."""
        failed, ok = 0, len(candidates)  # indices: newest known to fail, newest known to work
        best: Pylock | None = None
        at = len(candidates) - 1
        while self.spent - start < PER_PACKAGE and self.spent < self.budget:
            outcome = self.attempt(target, candidates[at])
            if isinstance(outcome, str):
                if best is None:
                    return None  # not even the release above the locked one resolves
                failed = at
            else:
                reached = lowest_version(outcome, target.name) or candidates[at]
                ok, best = min(at, _index_at_or_below(candidates, reached)), outcome
            if best is not None and ok - failed <= 1:
                return self._take(target, locked, best, start)
            at = (failed + ok) // 2
        if best is None:
            self.notes.append(
                f"{target.name}: not raised: the re-resolve bound was reached before "
                f"{target.name}>={candidates[-1]} was tried"
            )
            return None
        self.notes.append(
            f"{target.name}: stopped after {self.spent - start} re-resolves (envlock's bound); "
            f"a version between {candidates[ok]} and {candidates[failed]} may resolve too: pin "
            "it in [packages] to try"
        )
        return self._take(target, locked, best, start)

    def _take(self, target: Target, locked: Version, lock: Pylock, start: int) -> Raised:
        self.current = lock
        now = lowest_version(lock, target.name) or locked
        return Raised(name=target.name, was=locked, now=now, resolves=self.spent - start)


def _index_at_or_below(candidates: Sequence[Version], version: Version) -> int:
    """The index of the newest candidate not above ``version`` (candidates: newest first)."""
    return next((i for i, c in enumerate(candidates) if c <= version), len(candidates) - 1)


def settle(
    lock: Pylock,
    named: Sequence[Requirement],
    targets: Sequence[Target],
    probe: Probe,
    *,
    direct: frozenset[NormalizedName],
    budget: int = TOTAL,
    report: Callable[[str], None] = lambda _message: None,
) -> Settled:
    """Raise each target (a named package whose index was read, in the spec's order) that uv
    left below the newest version that resolves, then report those still below the newest
    their index offers.

    ``named``: all of the spec's packages (each re-resolve keeps them, with floors).
    ``direct``: every direct dependency of the throw-away project (the torch family too); a
    re-resolve that lowers any of them is refused. Deterministic: the same lock, offers and
    answers give the same result."""
    search = _Search(
        named=named, probe=probe, direct=direct, budget=budget, current=lock, report=report
    )
    raised = tuple(r for t in targets if (r := search.settle(t)) is not None)
    held = tuple(h for t in targets if (h := _held_back(t, search)) is not None)
    return Settled(
        lock=search.current,
        raised=raised,
        held_back=held,
        notes=tuple(search.notes),
        resolves=search.spent,
    )


def _held_back(target: Target, search: _Search) -> HeldBack | None:
    locked = lowest_version(search.current, target.name)
    if locked is None:
        return None
    allowed = _allows_prereleases(target.requirement, locked)
    newest = next((v for v in target.offered if allowed or not v.is_prerelease), None)
    if newest is None or newest <= locked:
        return None
    if not target.requirement.specifier.contains(newest, prereleases=allowed):
        holder = Holder(by=SPEC_FILE, requirement=str(target.requirement))
    elif (failure := search.failures.get(target.name)) is not None and failure[0] == newest:
        holder = explain(failure[1], target.name, search.current)
    else:
        holder = Holder(detail="not checked: the re-resolve bound was reached (see the note)")
    if (movable := search.movable.get(target.name)) is not None:
        then = f"; {newest} is held back by {_who(holder)}" if movable < newest else ""
        holder = Holder(
            by=PREVIOUS_LOCK,
            requirement=f"{target.name}=={locked}",
            detail=f"{movable} resolves: `envlock lock -P {target.name}` takes it{then}",
        )
    return HeldBack(
        name=target.name,
        locked=locked,
        newest=newest,
        by=holder.by,
        by_version=holder.by_version,
        requirement=holder.requirement,
        detail=holder.detail,
    )


# --------------------------------------------------------------------------------------
# output


def describe_raised(raised: Raised) -> str:
    return (
        f"Raised {raised.name} {raised.was} -> {raised.now}: uv locked an older version than "
        f"resolves (its order of decisions); {raised.name}>={raised.now} resolves and lowers "
        "no other named package "
        f"({raised.resolves} re-resolve{'s' if raised.resolves != 1 else ''})."
    )


def _who(holder: Holder | HeldBack) -> str:
    if holder.by is None:
        return f"uv: {holder.detail}"
    who = holder.by if holder.by_version is None else f"{holder.by} {holder.by_version}"
    return f"{who} through {holder.requirement}"


def describe_held_back(held: HeldBack) -> str:
    head = f"Held back: {held.name} {held.locked} (newest {held.newest})"
    if held.by is None:
        return f"{head}: {held.detail}" if held.detail else head
    line = f"{head} by {_who(held)}"
    return f"{line} ({held.detail})" if held.by == PREVIOUS_LOCK else line


def settled_json(settled: Settled | None) -> dict[str, Any]:
    """The `lock --json` fields: raised, held_back, notes."""
    if settled is None:
        return {"raised": [], "held_back": [], "notes": []}
    return {
        "raised": [
            {"name": r.name, "from": str(r.was), "to": str(r.now), "resolves": r.resolves}
            for r in settled.raised
        ],
        "held_back": [
            {
                "name": h.name,
                "locked": str(h.locked),
                "newest": str(h.newest),
                "by": h.by,
                "by_version": str(h.by_version) if h.by_version is not None else None,
                "requirement": h.requirement,
                "detail": h.detail,
            }
            for h in settled.held_back
        ],
        "notes": list(settled.notes),
    }
