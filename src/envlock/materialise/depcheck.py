"""Are an environment's installed requirements met? (pure; `uv pip check`'s question)

sync asks it after every install: a lock resolved from an index's metadata can miss a
dependency an installed wheel declares (a broken or tampered index, a lock edited by hand).
The requirements are each installed distribution's ``Requires-Dist`` (read by io), evaluated for
the environment the lock was selected for, without extras: what an import of the package needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version


@dataclass(frozen=True, slots=True, kw_only=True)
class Installed:
    name: str  # as its metadata spells it
    version: str
    requires: Sequence[str]  # its Requires-Dist values
    directory: str = ""  # its .dist-info, to name a project installed twice


def unmet(installed: Sequence[Installed], environment: Mapping[str, str]) -> tuple[str, ...]:
    """One line per requirement an installed distribution declares for ``environment`` that the
    environment does not satisfy (missing, or installed at a version outside it), sorted."""
    versions = {canonicalize_name(d.name): d.version for d in installed}
    problems: set[str] = set()
    seen: dict[str, list[str]] = {}
    for dist in installed:
        seen.setdefault(canonicalize_name(dist.name), []).append(dist.directory or dist.version)
    for name, where in seen.items():
        if len(where) > 1:  # which one imports is the file system's order: as uv pip check
            problems.add(f"{name} is installed more than once ({', '.join(sorted(where))})")
    for dist in installed:
        for text in dist.requires:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                problems.add(
                    f"{dist.name} {dist.version} declares an unreadable requirement {text!r}"
                )
                continue
            if requirement.marker is not None and not requirement.marker.evaluate(
                {**environment, "extra": ""}
            ):
                continue
            found = versions.get(canonicalize_name(requirement.name))
            wanted = f"{requirement.name}{requirement.specifier}"
            if found is None:
                problems.add(
                    f"{dist.name} {dist.version} requires {wanted}, which is not installed"
                )
            elif not _admits(requirement, found):
                problems.add(
                    f"{dist.name} {dist.version} requires {wanted}, but {found} is installed"
                )
    return tuple(sorted(problems))


def _admits(requirement: Requirement, version: str) -> bool:
    if not requirement.specifier:
        return True  # any version, PEP 440 or not
    try:
        return requirement.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False
