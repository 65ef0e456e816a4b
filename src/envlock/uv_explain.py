"""uv's explanation of a failed resolution -> who holds a package back, through what. Pure.

uv explains a conflict in sentences of "A depends on B<spec>" clauses ("Because
datasets>=5.2.0 depends on huggingface-hub>=1.31.0,<3.0 and transformers==4.40.0 depends on
huggingface-hub>=0.19.3,<1.0, we can conclude ..."). envlock.heldback asks uv for the newest
version of a named package and reads the answer here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.pylock import Pylock
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version


@dataclass(frozen=True, slots=True, kw_only=True)
class Holder:
    """Who holds a package back (see HeldBack), as read from uv's explanation."""

    by: str | None = None
    by_version: Version | None = None
    requirement: str | None = None
    detail: str = ""


def lowest_version(lock: Pylock, name: NormalizedName) -> Version | None:
    """The lowest version of ``name`` in the lock (one per platform fork), or None."""
    found = [Version(str(p.version)) for p in lock.packages if p.name == name and p.version]
    return min(found) if found else None


# --------------------------------------------------------------------------------------
# uv's explanation -> who holds a package back, through which requirement

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_SPEC = r"(?:===|==|!=|<=|>=|~=|<|>)[^\s,]*(?:,(?:===|==|!=|<=|>=|~=|<|>)[^\s,]*)*"
_TERM = (
    r"(?:(?P<{g}root>your project)|(?:all versions of |only )?(?P<{g}>{n})(?P<{g}x>\[[^\]]*\])?"
    r"(?:\{{[^}}]*\}})?(?P<{g}s>{s})?)"
)
_DEPENDS = re.compile(
    _TERM.format(g="who", n=_NAME, s=_SPEC)
    + r" depends? on "
    + _TERM.format(g="dep", n=_NAME, s=_SPEC)
)


@dataclass(frozen=True, slots=True)
class _Edge:
    who: NormalizedName | None  # None: the project itself ("your project depends on ...")
    dep: NormalizedName
    requirement: str


def _edges(text: str) -> list[_Edge]:
    flat = " ".join(line.strip() for line in text.splitlines())
    edges = []
    for match in _DEPENDS.finditer(flat):
        if match.group("dep") is None:
            continue
        who = None if match.group("whoroot") else canonicalize_name(match.group("who").rstrip("."))
        dep = match.group("dep").rstrip(".")
        requirement = dep + (match.group("depx") or "") + (match.group("deps") or "").rstrip(".")
        edges.append(_Edge(who, canonicalize_name(dep), requirement))
    return edges


def first_cause(text: str) -> str:
    """uv's first "Because ..." clause, without the conclusion."""
    flat = " ".join(line.strip() for line in text.splitlines())
    start = flat.find("Because ")
    if start < 0:
        return ""
    return flat[start:].split(", we can conclude")[0].rstrip(".")


def explain(detail: str, name: NormalizedName, lock: Pylock) -> Holder:
    """Who holds ``name`` back and through which requirement, from uv's explanation of why
    ``name>=newest`` does not resolve. What the newer ``name`` pulls in is followed through
    uv's "depends on" clauses; the holder is the first package outside it whose requirement
    excludes a part of it, else a package the project itself pins (the spec, the torch series,
    or the floor that keeps another named package from going down), through the requirement
    the newer ``name`` has on it."""
    edges = _edges(detail)
    reach = {name}
    grown = True
    while grown:
        grown = False
        for edge in edges:
            if edge.who in reach and edge.dep not in reach:
                reach.add(edge.dep)
                grown = True
    for edge in edges:
        if edge.who is not None and edge.who not in reach and edge.dep in reach:
            return _holder(edge.who, edge.requirement, lock, detail)
    for edge in edges:
        if edge.who is None and edge.dep in reach and edge.dep != name:
            need = next(e for e in edges if e.who in reach and e.dep == edge.dep)
            return _holder(edge.dep, need.requirement, lock, detail)
    lines = [line.strip() for line in detail.strip().splitlines() if line.strip()]
    return Holder(detail=first_cause(detail) or (lines[-1] if lines else "uv gave no reason"))


def _holder(by: NormalizedName, requirement: str, lock: Pylock, detail: str) -> Holder:
    return Holder(
        by=by,
        by_version=lowest_version(lock, by),
        requirement=requirement,
        detail=first_cause(detail),
    )


# --------------------------------------------------------------------------------------
# which packages an explanation may speak of (to know whether it rests on pages just read)

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def explanation_words(text: str) -> frozenset[NormalizedName]:
    """Every word of ``text`` (uv's explanation of a failed resolution) as a package name would
    be normalised: the packages it speaks of are among them, with uv's own words, versions and
    marker names, which name no page of uv's cache (cached_probe.cache_first looks up each)."""
    words = (w.rstrip("._-") for w in _WORD.findall(text))  # "... cannot be used." ends one
    return frozenset(canonicalize_name(w) for w in words if w)
