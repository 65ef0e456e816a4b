"""What each installed distribution requires: the Requires-Dist of its METADATA."""

from __future__ import annotations

import os
from pathlib import Path

from envlock.materialise.depcheck import Installed


def installed_requirements(site: Path) -> list[Installed]:
    """Every ``*.dist-info`` in ``site``, with its name, version and Requires-Dist values (the
    metadata's header block, read up to its first blank line)."""
    found: list[Installed] = []
    with os.scandir(site) as entries:
        for entry in entries:
            if not entry.name.endswith(".dist-info") or not entry.is_dir():
                continue
            headers = _headers(Path(entry.path) / "METADATA")
            names, versions = headers.get("name", []), headers.get("version", [])
            if names and versions:
                found.append(
                    Installed(
                        name=names[0],
                        version=versions[0],
                        requires=headers.get("requires-dist", []),
                    )
                )
    return found


def _headers(path: Path) -> dict[str, list[str]]:
    """Core metadata is RFC 822-style: ``Key: value`` lines, a continuation indented, the
    header block ended by a blank line (the description may follow)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    headers: dict[str, list[str]] = {}
    last: str | None = None
    for line in text.splitlines():
        if not line.strip():
            break
        if line[0] in " \t" and last is not None:
            headers[last][-1] += " " + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        last = key.strip().lower()
        headers.setdefault(last, []).append(value.strip())
    return headers
