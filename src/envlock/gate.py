"""The supply-chain gate (pure): what new code a lock change will run, and when.

A version and a hash tell a reviewer nothing about what an artifact does. The gate looks at
every artifact that is new between two locks (a hash the old lock did not have for that
package) and reports what could hurt the person who installs it:

- a start-up hook it adds: a site-packages ``.pth`` file with an ``import`` line (site.py runs
  it at every interpreter start: the litellm 1.82.7/1.82.8 and "Hades" stealers), or a
  ``sitecustomize``/``usercustomize`` module;
- code that runs at install: an sdist, a VCS checkout or a source tree, built on the user's
  machine;
- a fresh upload: uploaded less than the cooldown ago (most malicious releases are pulled
  within days);
- the same file name (so the same version and build) with other bytes: an alarm (the triton
  wheels that changed under one URL); the same bytes from a new host is a note;
- a yanked file (PEP 592), and known vulnerabilities of a locked version (``envlock audit``).

Facts come in (``envlock.io.artifact_facts`` gathers them: the wheel's file list read by HTTP
Range, the index page, PyPI's JSON API); findings come out. A reviewer accepts a finding in
torchenv.toml's ``[review.accept]``, bound to the artifact's sha256 and the finding's kind, so
an accept never covers other bytes, nor a finding that appears later (a yank, a new CVE).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from packaging.utils import canonicalize_name

from envlock.gate_artifacts import (
    HOOK_MODULES,
    Artifact,
    Candidate,
    Hook,
    Pairing,
    WheelFiles,
    artifacts,
    find_hooks,
    hook_members,
    pair,
)
from envlock.heldback import Offer, Offers
from envlock.spec_model import Accept
from envlock.spec_review import format_duration
from envlock.wheels import artifact_key

__all__ = [
    "ACCEPTABLE",
    "DEFAULT_COOLDOWN",
    "HOOK_MODULES",
    "Accept",
    "Artifact",
    "Candidate",
    "Facts",
    "Finding",
    "Hook",
    "Kind",
    "Level",
    "Pairing",
    "Vulnerability",
    "WheelFiles",
    "artifacts",
    "evaluate",
    "find_hooks",
    "hook_members",
    "pair",
]

DEFAULT_COOLDOWN = timedelta(days=7)


class Kind(StrEnum):
    HASH_DRIFT = "hash-drift"
    STARTUP_HOOK = "startup-hook"
    INSTALL_CODE = "install-code"
    FRESH_UPLOAD = "fresh-upload"
    YANKED = "yanked"
    VULNERABLE = "vulnerable"
    UNCHECKED = "unchecked"
    NEW_HOST = "new-host"
    RANGE_REFUSED = "range-refused"
    LOCAL_SOURCE = "local-source"


class Level(StrEnum):
    ALARM = "alarm"  # needs attention, and is likely an attack
    ATTENTION = "attention"  # needs a human to look before it merges
    NOTE = "note"  # said, never fails a check


LEVELS: Mapping[Kind, Level] = {
    Kind.HASH_DRIFT: Level.ALARM,
    Kind.STARTUP_HOOK: Level.ATTENTION,
    Kind.INSTALL_CODE: Level.ATTENTION,
    Kind.FRESH_UPLOAD: Level.ATTENTION,
    Kind.YANKED: Level.ATTENTION,
    Kind.VULNERABLE: Level.ATTENTION,
    Kind.UNCHECKED: Level.ATTENTION,
    Kind.NEW_HOST: Level.NOTE,
    Kind.RANGE_REFUSED: Level.NOTE,
    # a source tree of the lock's own checkout: built at install, but reviewed as code
    Kind.LOCAL_SOURCE: Level.NOTE,
}
ACCEPTABLE = frozenset(k.value for k, level in LEVELS.items() if level is not Level.NOTE)


# --------------------------------------------------------------------------------------
# facts in, findings out


@dataclass(frozen=True, slots=True, kw_only=True)
class Vulnerability:
    id: str
    aliases: tuple[str, ...] = ()
    summary: str = ""
    fixed_in: tuple[str, ...] = ()
    link: str | None = None


# What a source says about one (name, version): its vulnerabilities, or why it could not say.
# None: the source has no such project (not on PyPI): nothing to report, said as a note.
Vulnerabilities = tuple[Vulnerability, ...] | str | None


class VulnerabilitySource(Protocol):
    """Known vulnerabilities per (name, version) (envlock.io.artifact_facts.PypiAdvisories)."""

    def vulnerabilities(
        self, wanted: Sequence[tuple[str, str]]
    ) -> Mapping[tuple[str, str], Vulnerabilities]: ...


class WheelFilesReader(Protocol):
    """Lists wheels' files (envlock.io.artifact_facts.WheelLister; tests pass a fake)."""

    def files(self, wanted: Sequence[Artifact]) -> Mapping[str, WheelFiles | str]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    files: Mapping[str, WheelFiles | str] = field(default_factory=dict)  # digest -> list/why not
    pages: Mapping[tuple[str, str], Offers] = field(default_factory=dict)  # (index, project)
    vulnerabilities: Mapping[tuple[str, str], Vulnerabilities] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    kind: Kind
    package: str
    version: str
    filename: str
    digest: str | None
    detail: str
    ident: str = ""  # the vulnerability id, for Kind.VULNERABLE
    accepted: str | None = None  # the reason [review.accept] gives, when it covers this

    @property
    def level(self) -> Level:
        return LEVELS[self.kind]

    @property
    def token(self) -> str:
        """How [review.accept] names this finding: its kind, or vulnerable:ID."""
        return f"{self.kind.value}:{self.ident}" if self.ident else self.kind.value

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "level": self.level.value,
            "package": self.package,
            "version": self.version,
            "file": self.filename,
            "sha256": self.digest,
            "detail": self.detail,
            "id": self.ident or None,
            "accepted": self.accepted,
        }


def _ago(moment: datetime, now: datetime) -> str:
    delta = now - moment
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} h" if hours < 48 else f"{delta.days} days"


def _base(artifact: Artifact) -> dict[str, Any]:
    return {
        "package": artifact.package,
        "version": artifact.version,
        "filename": artifact.filename,
        "digest": artifact.digest,
    }


def _page(facts: Facts, artifact: Artifact) -> Offer | str | None:
    if artifact.index is None or artifact.form not in ("wheel", "sdist"):
        return None
    offers = facts.pages.get((artifact.index, artifact.package))
    if offers is None:
        return None
    if isinstance(offers, str):
        return offers
    return next((o for o in offers if artifact_key(o.filename) == artifact.key), None)


def _hooks(candidate: Candidate, facts: Facts, out: list[Finding]) -> None:
    artifact = candidate.new
    listing = facts.files.get(artifact.digest or "")
    base = _base(artifact)
    if listing is None:
        return
    if isinstance(listing, str):
        out.append(
            Finding(kind=Kind.UNCHECKED, detail=f"its files were not listed: {listing}", **base)
        )
        return
    if listing.how == "download":
        out.append(
            Finding(
                kind=Kind.RANGE_REFUSED,
                detail="the server refused HTTP Range requests: the whole wheel was downloaded "
                "(and checked against the lock's sha256) to list its files",
                **base,
            )
        )
    baseline = candidate.baseline if candidate.drift is None else None
    old = facts.files.get(baseline.digest or "") if baseline is not None else None
    before = set(old.hooks) if isinstance(old, WheelFiles) else set()
    if candidate.drift is not None:  # the old bytes are not served any more: all hooks count
        since = " (the old file of this name had other bytes)"
    elif baseline is None:
        since = ""
    elif isinstance(old, WheelFiles):
        since = f" (not in {baseline.filename})"
    else:
        since = f" (the old {baseline.filename} could not be listed to compare)"
    for hook in listing.hooks:
        if hook not in before:
            out.append(Finding(kind=Kind.STARTUP_HOOK, detail=hook.describe() + since, **base))


def _install_code(candidate: Candidate, out: list[Finding], base: dict[str, Any]) -> None:
    form = candidate.new.form
    if form == "wheel":
        return
    what = {
        "sdist": "an sdist",
        "archive": "a source archive",
        "vcs": "a VCS checkout",
        "directory": "a local source tree",
    }[form]
    change = "changed from wheels to " if candidate.was_wheel else ""
    out.append(
        Finding(
            kind=Kind.LOCAL_SOURCE if form == "directory" else Kind.INSTALL_CODE,
            detail=f"{change}{what}: its build backend runs on the installing machine",
            **base,
        )
    )


def evaluate(
    pairing: Pairing,
    facts: Facts,
    *,
    now: datetime,
    cooldown: timedelta = DEFAULT_COOLDOWN,
    accepts: Mapping[str, Accept] | None = None,
    kinds: frozenset[Kind] | None = None,
) -> tuple[Finding, ...]:
    """The findings for the paired artifacts, those [review.accept] covers marked accepted;
    ``kinds`` limits which are looked for (audit: yanked and vulnerable)."""
    found: list[Finding] = []
    wanted = kinds if kinds is not None else frozenset(Kind)
    for candidate in pairing.candidates:
        artifact = candidate.new
        base: dict[str, Any] = _base(artifact)
        here: list[Finding] = []
        if candidate.drift is not None:
            here.append(
                Finding(
                    kind=Kind.HASH_DRIFT,
                    detail=f"same file name, other bytes: sha256 {candidate.drift.digest} "
                    f"({candidate.drift.host}) -> {artifact.digest} ({artifact.host}); "
                    "republished or tampered",
                    **base,
                )
            )
        _hooks(candidate, facts, here)
        _install_code(candidate, here, base)
        offer = _page(facts, artifact)
        # the index's word first: the lock's upload-time is part of the change under review
        uploaded = (offer.upload_time if isinstance(offer, Offer) else None) or artifact.upload_time
        if uploaded is not None and cooldown and now - uploaded < cooldown:
            here.append(
                Finding(
                    kind=Kind.FRESH_UPLOAD,
                    detail=f"uploaded {_ago(uploaded, now)} ago ({uploaded:%Y-%m-%d %H:%M} UTC), "
                    f"under the {format_duration(cooldown)} cooldown",
                    **base,
                )
            )
        if isinstance(offer, Offer) and offer.yanked:
            here.append(Finding(kind=Kind.YANKED, detail="yanked on its index (PEP 592)", **base))
        elif isinstance(offer, str):
            detail = f"yanked and upload time not checked: {offer}"
            here.append(Finding(kind=Kind.UNCHECKED, detail=detail, **base))
        found += [f for f in here if f.kind in wanted]
    found += _vulnerabilities(pairing, facts, wanted)
    if Kind.NEW_HOST in wanted:
        for old, new in pairing.moved:
            found.append(
                Finding(
                    kind=Kind.NEW_HOST,
                    package=new.package,
                    version=new.version,
                    filename=new.filename,
                    digest=new.digest,
                    detail=f"same bytes, now from {new.host} (was {old.host})",
                )
            )
    return tuple(sorted(apply_accepts(found, accepts or {}), key=_order))


def _public(version: str) -> str:
    return version.partition("+")[0]


def _vulnerabilities(pairing: Pairing, facts: Facts, wanted: frozenset[Kind]) -> list[Finding]:
    if Kind.VULNERABLE not in wanted:
        return []
    found: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for candidate in pairing.candidates:
        artifact = candidate.new
        key = (artifact.package, _public(artifact.version))
        if key in seen or key not in facts.vulnerabilities:
            continue
        seen.add(key)
        known = facts.vulnerabilities[key]
        base: dict[str, Any] = _base(artifact)
        if isinstance(known, str):
            found.append(
                Finding(kind=Kind.UNCHECKED, detail=f"vulnerabilities not checked: {known}", **base)
            )
            continue
        for item in known or ():
            aliases = f" ({', '.join(item.aliases)})" if item.aliases else ""
            fixed = f"; fixed in {', '.join(item.fixed_in)}" if item.fixed_in else "; no fix yet"
            summary = f": {item.summary}" if item.summary else ""
            found.append(
                Finding(
                    kind=Kind.VULNERABLE,
                    ident=item.id,
                    detail=f"{item.id}{aliases}{summary}{fixed}",
                    **base,
                )
            )
    return found


def _order(finding: Finding) -> tuple[int, int, int, str, str]:
    levels = list(Level)
    return (
        finding.accepted is not None,
        levels.index(finding.level),
        list(Kind).index(finding.kind),
        finding.package,
        finding.filename,
    )


# --------------------------------------------------------------------------------------
# the accept rule


def apply_accepts(findings: Iterable[Finding], accepts: Mapping[str, Accept]) -> list[Finding]:
    """Mark a finding accepted when [review.accept] names its package, the exact digest of its
    artifact, and its kind (vulnerable:ID for a vulnerability). Notes need no accepting."""
    result: list[Finding] = []
    for finding in findings:
        accept = accepts.get(canonicalize_name(finding.package))
        if (
            accept is not None
            and finding.level is not Level.NOTE
            and finding.digest is not None
            and finding.digest in accept.sha256
            and finding.token in accept.findings
        ):
            result.append(replace(finding, accepted=accept.reason))
        else:
            result.append(finding)
    return result


def attention(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """What a human must look at: alarms and attention findings no accept covers."""
    return tuple(f for f in findings if f.level is not Level.NOTE and f.accepted is None)


def accept_lines(findings: Iterable[Finding]) -> tuple[str, ...]:
    """The [review.accept] lines that would accept ``findings`` (a reviewer pastes them after
    looking, with the reason filled in): one per package, bound to the digests and kinds."""
    by_package: dict[str, tuple[list[str], list[str]]] = {}
    for finding in findings:
        if finding.level is Level.NOTE or finding.accepted is not None or not finding.digest:
            continue
        digests, tokens = by_package.setdefault(finding.package, ([], []))
        if finding.digest not in digests:
            digests.append(finding.digest)
        if finding.token not in tokens:
            tokens.append(finding.token)
    lines = []
    for package, (digests, tokens) in sorted(by_package.items()):
        sha = (
            f'"{digests[0]}"'
            if len(digests) == 1
            else "[" + ", ".join(f'"{d}"' for d in digests) + "]"
        )
        kinds = ", ".join(f'"{t}"' for t in tokens)
        key = package if re.fullmatch(r"[A-Za-z0-9_-]+", package) else f'"{package}"'
        lines.append(
            f'{key} = {{ sha256 = {sha}, findings = [{kinds}], reason = "WHY: what you checked" }}'
        )
    return tuple(lines)
