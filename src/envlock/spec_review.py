"""torchenv.toml's supply-chain keys: [resolution] cooldown and [review] accept. Pure.

``cooldown = "7d"`` locks as of now minus the cooldown and is what the review gate calls a
fresh upload. ``[review.accept]`` records what a reviewer looked at and accepted, bound to the
artifact's sha256 and the finding's kind, so the accept covers neither other bytes nor a finding
that appears later (envlock.gate applies it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from packaging.utils import canonicalize_name

from envlock.spec_fields import Problems, check_keys
from envlock.spec_model import Accept

# The finding kinds an accept may name (envlock.gate.ACCEPTABLE; a unit test keeps them equal),
# and vulnerable:ID for one known vulnerability.
ACCEPT_KINDS = (
    "hash-drift",
    "startup-hook",
    "install-code",
    "fresh-upload",
    "yanked",
    "vulnerable",
    "unchecked",
)
_ACCEPT_KEYS = ("sha256", "findings", "reason")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_COMMIT = re.compile(r"^[0-9a-f]{7,64}$")  # a VCS artifact is bound to its commit id
_DURATION = re.compile(
    r"^\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>m|mins?|minutes?|h|hours?|d|days?|w|weeks?)\s*$"
)
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
_EXAMPLE = (
    '[review.accept]\nNAME = { sha256 = "<the artifact\'s sha256>", findings = ["startup-hook"], '
    'reason = "what you checked" }'
)


def parse_duration(text: str) -> timedelta | None:
    """ "7d", "36h", "2w", "90m", "7 days" -> a timedelta; None when it is not one."""
    match = _DURATION.match(text.lower())
    if match is None:
        return None
    unit = match.group("unit")
    return timedelta(seconds=float(match.group("n")) * _UNITS[unit[0]])


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_cooldown(problems: Problems, table: Mapping[str, Any]) -> timedelta | None:
    """[resolution] cooldown: "7d" (m, h, d, w); "0d" turns it off (None)."""
    value = table.get("cooldown")
    if value is None:
        return None
    parsed = parse_duration(value) if isinstance(value, str) else None
    if parsed is None:
        problems.add(
            "resolution.cooldown",
            f'expected a duration such as "7d", got {str(value)[:100]!r}',
            'Write cooldown = "7d" (minutes m, hours h, days d or weeks w).',
        )
        return None
    return parsed  # "0d": no cooldown, said explicitly (and part of the digest)


def _strings(value: object) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _accept(problems: Problems, where: str, value: object) -> Accept | None:
    if isinstance(value, str):
        problems.add(
            where,
            "an accept must name the artifact it was checked for, not only a reason",
            "Bind it to the artifact's sha256 and the finding: envlock diff prints the line "
            f"to paste, e.g.\n{_EXAMPLE}",
        )
        return None
    if not isinstance(value, Mapping):
        problems.add(where, "expected an inline table", f"Write it as\n{_EXAMPLE}")
        return None
    check_keys(problems, value, _ACCEPT_KEYS, where=f"[{where}]")
    digests = _strings(value.get("sha256"))
    tokens = _strings(value.get("findings"))
    reason = value.get("reason")
    ok = True
    if digests is None or not all(_SHA256.match(d) or _COMMIT.match(d) for d in digests):
        problems.add(f"{where}.sha256", "expected the artifact's sha256 (64 hex), or a list")
        ok = False
    if tokens is None:
        problems.add(f"{where}.findings", 'expected a list of finding kinds, e.g. ["yanked"]')
        ok = False
    else:
        for token in tokens:
            kind, _, ident = token.partition(":")
            if kind not in ACCEPT_KINDS or (ident and kind != "vulnerable"):
                problems.add(
                    f"{where}.findings",
                    f"unknown finding {token[:100]!r}",
                    f"Findings are {', '.join(ACCEPT_KINDS)} (vulnerable:ID for one advisory).",
                )
                ok = False
    if not isinstance(reason, str) or not reason.strip():
        problems.add(f"{where}.reason", "say why it is acceptable (what you checked)")
        ok = False
    if not ok or digests is None or tokens is None or not isinstance(reason, str):
        return None
    return Accept(sha256=frozenset(digests), findings=frozenset(tokens), reason=reason.strip())


def parse_review(problems: Problems, table: Mapping[str, Any]) -> dict[str, Accept]:
    """[review] accept: package name -> Accept (normalised names)."""
    check_keys(problems, table, ("accept",), where="[review]")
    raw = table.get("accept", {})
    if not isinstance(raw, Mapping):
        problems.add("review.accept", "expected a table of NAME = { sha256, findings, reason }")
        return {}
    accepts: dict[str, Accept] = {}
    for name, value in raw.items():
        accept = _accept(problems, f"review.accept.{str(name)[:100]}", value)
        if accept is not None:
            accepts[canonicalize_name(str(name))] = accept
    return accepts
