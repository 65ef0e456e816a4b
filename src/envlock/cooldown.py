"""[resolution] cooldown: lock as of now minus the cooldown, and say what it held back. Pure.

A cooldown keeps releases younger than it out of the lock (most malicious uploads are found and
pulled within days). uv has one cut-off for all indexes (``--exclude-newer``) and per-package
ones (``--exclude-newer-package``; uv 0.13.9 has no per-index form), and it drops a file
without an upload time under any cut-off. So:

- PyPI (and a PyPI mirror): the cut-off is ``now - cooldown`` (the earlier of that and
  ``exclude-newer`` when both are set), through uv's ``--exclude-newer``.
- The PyTorch index lists most of its files without an upload time (newer ones have it): a
  cut-off there would leave uv only the few files that have one, which is how a cooldown tool
  chose torch 1.13.1. Names routed there stay exempt (as under exclude-newer), the spec's
  [torch] version picks the release, and a locked file uploaded inside the cooldown is said.

What the cooldown held back is said per package the spec names, with the upload time of the
newer release, and a release held back only because its index gives no upload time is said to
be that, so a cooldown never silently falls back to an old release.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime

from packaging.pylock import Pylock
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from envlock.heldback import Offer, Offers, offered_versions
from envlock.spec import Spec
from envlock.spec_review import format_duration
from envlock.wheels import parse_wheel


def cutoff(spec: Spec, now: datetime) -> datetime | None:
    """The cut-off a lock of ``spec`` resolves under now: now minus the cooldown, or the
    spec's exclude-newer when that is earlier (or the only one); None without either."""
    if not spec.cooldown:
        return spec.exclude_newer
    cut = (now - spec.cooldown).replace(microsecond=0)
    return min(cut, spec.exclude_newer) if spec.exclude_newer is not None else cut


def cooled(spec: Spec, now: datetime) -> Spec:
    """The spec uv is asked to resolve: its exclude-newer is the cooldown's cut-off."""
    if not spec.cooldown:
        return spec
    return replace(spec, exclude_newer=cutoff(spec, now))


def _ago(moment: datetime, now: datetime) -> str:
    days = (now - moment).days
    return f"{days} day{'s' if days != 1 else ''} ago" if days else "today"


def _version_of(filename: str) -> Version | None:
    wheel = parse_wheel(filename) if filename.endswith(".whl") else None
    if wheel is not None:
        return wheel[1]
    stem = filename.removesuffix(".tar.gz").removesuffix(".zip")
    try:
        return Version(stem.rpartition("-")[2])
    except ValueError:
        return None


def _uploaded(offers: Iterable[Offer], version: Version) -> tuple[datetime | None, bool]:
    """The latest upload time of a version's files, and whether any file has none."""
    times = [o.upload_time for o in offers if _version_of(o.filename) == version]
    known = [t for t in times if t is not None]
    return (max(known) if known else None), len(known) < len(times)


def _locked(lock: Pylock) -> dict[NormalizedName, Version]:
    return {canonicalize_name(p.name): p.version for p in lock.packages if p.version is not None}


def held_back(
    spec: Spec,
    lock: Pylock,
    pages: Mapping[NormalizedName, Offers],
    *,
    cut: datetime,
    now: datetime,
) -> list[str]:
    """One line per package the spec names that the cooldown kept below a newer release:
    what was locked, what was held back and why (uploaded when, or no upload time)."""
    assert spec.cooldown is not None
    label = f"cooldown {format_duration(spec.cooldown)} (cut-off {cut:%Y-%m-%d %H:%M} UTC)"
    locked = _locked(lock)
    lines: list[str] = []
    for requirement in spec.packages:
        name = canonicalize_name(requirement.name)
        page = pages.get(name)
        version = locked.get(name)
        if version is None or page is None:
            continue
        if isinstance(page, str):
            lines.append(f"{label}: {name} {version} locked; its index was not read ({page})")
            continue
        # the user's own exclude-newer still holds: only what the cooldown alone removed
        before = offered_versions(page, spec=spec, requirement=requirement, cutoff=None)
        if spec.exclude_newer is not None:
            before = offered_versions(
                page, spec=spec, requirement=requirement, cutoff=spec.exclude_newer
            )
        after = set(offered_versions(page, spec=spec, requirement=requirement, cutoff=cut))
        newer = [
            v
            for v in before
            if v > version and v not in after and requirement.specifier.contains(v, True)
        ]
        if not newer:
            continue
        newest = newer[0]
        uploaded, untimed = _uploaded(page, newest)
        more = f" ({len(newer)} newer releases held back)" if len(newer) > 1 else ""
        if uploaded is None or (untimed and uploaded <= cut):
            lines.append(
                f"{label}: {name} {version} locked, not {newest}{more}: its index gives "
                f"{newest} no upload time, and uv treats a file without one as too new under "
                "a cut-off (the cooldown, not the release's age, holds it back); pin "
                f'{name} = "=={newest}" or remove the cooldown if you want it'
            )
            continue
        lines.append(
            f"{label}: {name} {version} locked, not {newest}{more}: {newest} was uploaded "
            f"{uploaded:%Y-%m-%d} ({_ago(uploaded, now)}), inside the cooldown"
        )
    return lines


def fresh_routed(
    spec: Spec, lock: Pylock, routed: Iterable[str], *, cut: datetime, now: datetime
) -> list[str]:
    """Files of the names routed to the PyTorch index (exempt from the cut-off) that were
    uploaded inside the cooldown, by the upload time the lock records."""
    assert spec.cooldown is not None
    names = {canonicalize_name(n) for n in routed}
    lines = []
    for package in lock.packages:
        if canonicalize_name(package.name) not in names:
            continue
        times = [w.upload_time for w in package.wheels or () if w.upload_time is not None]
        if times and max(times) > cut:
            lines.append(
                f"cooldown {format_duration(spec.cooldown)}: {package.name} {package.version} "
                f"was uploaded {max(times):%Y-%m-%d} ({_ago(max(times), now)}), inside the "
                "cooldown; the PyTorch index gives most of its files no upload time, so no "
                "cut-off applies there: the [torch] version chooses the release (pin it to "
                "an earlier one to hold this back)"
            )
    return lines
