"""The review gate over two locks (or one, for audit): the spec's accepts and cooldown, the
facts read through the ports, the verdict (envlock.gate). Shared by `diff` and `audit`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.pylock import Pylock

from envlock.api.project import GATE_OFF as GATE_OFF  # noqa: PLC0414 - its old home
from envlock.api.project import gate_disabled as gate_disabled  # noqa: PLC0414
from envlock.errors import EnvlockError
from envlock.gate import (
    DEFAULT_COOLDOWN,
    Kind,
    Vulnerability,
    VulnerabilitySource,
    WheelFilesReader,
)
from envlock.gate_artifacts import Artifact
from envlock.heldback import OfferReader
from envlock.spec import Spec, parse_spec_text

if TYPE_CHECKING:
    from envlock.gate_render import Review

# diff: everything but advisories (audit's); audit: what can change after a lock is made.
DIFF_KINDS = frozenset(Kind) - {Kind.VULNERABLE}
AUDIT_KINDS = frozenset({Kind.YANKED, Kind.VULNERABLE, Kind.UNCHECKED})
# Indexes whose package names are public anyway: advisories are asked of PyPI only for these.
_PUBLIC_HOSTS = ("pypi.org", "files.pythonhosted.org", "download.pytorch.org")

_ = Vulnerability  # re-exported for tests that build a fake source


@dataclass(frozen=True, slots=True, kw_only=True)
class GatePorts:
    """The gate's effects; None: the real one (pages: io/pages.PageReader; wheels:
    io/artifact_facts.WheelLister; advisories: PyPI's JSON API)."""

    pages: OfferReader | None = None
    wheels: WheelFilesReader | None = None
    advisories: VulnerabilitySource | None = None


def review_spec(text: str | None, label: str) -> tuple[Spec | None, str | None]:
    """The torchenv.toml beside a lock side, or a note saying why there is none to use."""
    if text is None:
        return None, None
    try:
        return parse_spec_text(text, source=label), None
    except EnvlockError as exc:
        first = exc.message.splitlines()[0]
        return None, f"{label} could not be read ({first}): no accepts applied"


def _public(meta_indexes: frozenset[str]) -> Callable[[Artifact], bool]:
    from urllib.parse import urlsplit  # noqa: PLC0415

    def public(artifact: Artifact) -> bool:
        if artifact.index is not None:
            index = artifact.index.rstrip("/")
            return index in meta_indexes or urlsplit(index).hostname in _PUBLIC_HOSTS
        return bool(artifact.url) and urlsplit(artifact.url or "").hostname in _PUBLIC_HOSTS

    return public


def run_gate(
    old: Pylock | None,
    new: Pylock,
    *,
    spec: Spec | None,
    old_spec: Spec | None = None,
    base: Path | None,
    kinds: frozenset[Kind] = DIFF_KINDS,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
    ports: GatePorts | None = None,
    notes: Sequence[str] = (),
    scope: str = "new artifact(s)",
) -> Review:
    """The gate's verdict on the artifacts ``new`` has that ``old`` lacked (all of them when
    ``old`` is None), with the accepts of ``spec``; those ``old_spec`` did not have already
    are said to come with this change."""
    from envlock import gate  # noqa: PLC0415 - only when the gate runs
    from envlock.api.project import _index_auth  # noqa: PLC0415
    from envlock.gate_render import Review  # noqa: PLC0415
    from envlock.io import artifact_facts  # noqa: PLC0415
    from envlock.io.pages import PageReader  # noqa: PLC0415
    from envlock.lockfile import lock_meta  # noqa: PLC0415

    env = os.environ if environ is None else environ
    ports = ports or GatePorts()
    auth = _index_auth(env)
    pairing = gate.pair(old, new)
    wheels = ports.wheels or artifact_facts.WheelLister(
        cache=artifact_facts.files_cache(env), auth=auth, base=base
    )
    meta = lock_meta(new)
    named = frozenset(
        i.rstrip("/") for i in ((meta.pypi_index, meta.variant_index) if meta else ()) if i
    )
    advisories = ports.advisories
    if advisories is None and Kind.VULNERABLE in kinds:
        advisories = artifact_facts.advisory_source(env)
    facts = artifact_facts.gather(
        pairing,
        kinds=kinds,
        lister=wheels,
        pages=ports.pages or PageReader(),
        auth=auth,
        advisories=advisories,
        public=_public(named),
    )
    cooldown = spec.cooldown if spec is not None and spec.cooldown is not None else None
    accepts = spec.accepts if spec is not None else {}
    findings = gate.evaluate(
        pairing,
        facts,
        now=now or datetime.now(UTC),
        cooldown=cooldown if cooldown is not None else DEFAULT_COOLDOWN,
        accepts=accepts,
        kinds=kinds,
    )
    before = old_spec.accepts if old_spec is not None else {}
    carried = {
        (f.package, f.digest, f.token)
        for f in gate.apply_accepts([replace(f, accepted=None) for f in findings], before)
        if f.accepted is not None
    }
    fresh = tuple(
        f"{f.package} {f.version}: {f.token} accepted by this change: {f.accepted}"
        for f in findings
        if f.accepted is not None and (f.package, f.digest, f.token) not in carried
    )
    return Review(
        findings=findings,
        checked=len(pairing.candidates),
        cooldown=(cooldown if cooldown is not None else DEFAULT_COOLDOWN)
        if Kind.FRESH_UPLOAD in kinds
        else None,
        cooldown_from="torchenv.toml" if cooldown is not None else "default",
        notes=tuple(notes),
        accepted_here=fresh,
        scope=scope,
    )
