"""envlock's own settings that reach uv under uv's names (one table, both directions)."""

from __future__ import annotations

# ENVLOCK_* variable -> the uv variable it is passed on as (uv's own never reach uv)
OURS_TO_UV = (
    ("ENVLOCK_HTTP_TIMEOUT", "UV_HTTP_TIMEOUT"),
    ("ENVLOCK_HTTP_RETRIES", "UV_HTTP_RETRIES"),
)


def in_envlock_terms(text: str) -> str:
    """uv's advice ("set UV_HTTP_TIMEOUT") in the names a user of envlock sets."""
    for ours, theirs in OURS_TO_UV:
        text = text.replace(theirs, ours)
    return text
