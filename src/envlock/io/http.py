"""Small HTTP look-ups envlock makes itself (uv does the real index traffic)."""

from __future__ import annotations

import os

from envlock import __version__


def timeout_s(default: float) -> float:
    """ENVLOCK_HTTP_TIMEOUT (seconds) for envlock's own requests, as for uv's."""
    try:
        return float(os.environ.get("ENVLOCK_HTTP_TIMEOUT") or default)
    except ValueError:
        return default


def http_status(url: str, auth: tuple[str, str] | None = None, timeout: float = 10.0) -> int | None:
    """The HTTP status a GET of ``url`` answers, or None when nothing answers."""
    import requests  # noqa: PLC0415 - only on the error path; keeps start-up fast

    try:
        response = requests.get(
            url,
            auth=auth,
            timeout=timeout,
            allow_redirects=True,
            headers={"User-Agent": f"envlock/{__version__}", "Accept": "text/html"},
            stream=True,
        )
    except requests.RequestException:
        return None
    response.close()
    return response.status_code
