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
from packaging.version import InvalidVersion, Version


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
# which packages an explanation speaks of (to know whether a re-resolve read only fresh pages)

# The words of uv's explanations (crates/uv-resolver/src/pubgrub/report.rs: "Because ...
# depends on ..., we can conclude that ... cannot be used", "only X<=1 is available", "there is
# no version of X==2", "split (markers: ...)") and the marker variables it quotes. Every other
# word is taken for a package name: a word this list lacks (a yanked release's reason, a hint,
# new wording) only makes a name more, never one less.
_UV_WORDS = frozenset(
    """
    a abi all an and are at available be because build built but can cannot cause conclude
    current depend dependencies dependency depends distribution distributions does error extra
    following for found from has hint implementation_name implementation_version in incompatible
    installed is it itself know markers matching must no not of on only or os_name package
    platform_machine platform_python_implementation platform_release platform_system
    platform_version project python python_full_version python_version registry requested
    require required requirements requires resolving satisfied satisfy solution solving source
    split sys_platform tag that the there these they this those unsatisfiable unusable used
    version versions was we were wheel wheels when with workspace yanked you your
    """.split()  # noqa: SIM905 - a list of words reads better as words
)
_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"|\[[^\]\n]*\]|\{[^}\n]*\}")  # and extras, markers
_SPECIFIER = re.compile(r"(?:===|==|!=|<=|>=|~=|<|>)\s*[^\s,;()\[\]{}]*")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def explanation_names(text: str) -> frozenset[NormalizedName]:
    """Every package ``text`` (uv's explanation of a failed resolution) may speak of: each word
    that is not one of uv's own, nor a version. Over-inclusive by design."""
    text = _SPECIFIER.sub(" ", _QUOTED.sub(" ", text.replace("'s ", " ")))
    names = set()
    for found in _WORD.findall(text):
        word = found.rstrip("._-")
        if not word or word.lower() in _UV_WORDS:
            continue
        try:
            Version(word)
        except InvalidVersion:
            names.add(canonicalize_name(word))
    return frozenset(names)
