"""URL helpers: credentials are used on the wire but never shown or written."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import SplitResult, quote, unquote, urlsplit, urlunsplit

_URL_IN_TEXT = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
_WHOLE_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"`<>]+")


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """'https://u:p@host/x' -> ('https://host/x', 'u', 'p'). Values are percent-decoded.

    A fragment means nothing to an index and is dropped; a query string is kept (some
    private indexes take a token there): it is used on the wire, never written or shown."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return urlunsplit(parts._replace(fragment="")) if parts.fragment else url, None, None
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    clean = urlunsplit(SplitResult(parts.scheme, host, parts.path, parts.query, ""))
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return clean, user, password


def has_credentials(url: str) -> bool:
    """Whether the URL carries a user or password (user:password@, or a bare token@)."""
    return split_credentials(url)[1] is not None


def redact_url(url: str) -> str:
    """The URL as it may be shown or written: no user:password@, no query string (it may
    carry a token: ?token=...), no fragment."""
    clean = split_credentials(url)[0]
    parts = urlsplit(clean)
    return urlunsplit(parts._replace(query="", fragment="")) if parts.query else clean


def redact_to_host(location: str) -> str | None:
    """Where a URL points, as much of it as may be shown without a secret: 'host[:port]' (no
    credentials, path or query). None for a path, not a URL (C:\\ has a one-letter "scheme")."""
    parts = urlsplit(location)
    if len(parts.scheme) < 2 or not parts.hostname:
        return None
    return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname


def query_secrets(url: str) -> tuple[str, ...]:
    """The values in a URL's query string, to scrub from any output."""
    from urllib.parse import parse_qsl  # noqa: PLC0415 - only for URLs with a query

    return tuple(v for _, v in parse_qsl(urlsplit(url).query) if v)


def page_url(index_url: str, project: str) -> str:
    """A project's page on a PEP 503 index: <index path>/<project>/, the query kept."""
    parts = urlsplit(index_url)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{project}/", fragment=""))


def redact_text(text: str, secrets: tuple[str, ...] = (), *, queries: bool = False) -> str:
    """Remove userinfo from every URL in free text, and any known secret values; with
    ``queries``, every URL's query string and fragment too (redact_url on each URL), for text
    whose tokens no caller can name (a logged command line)."""
    if queries:
        result = _WHOLE_URL.sub(lambda m: redact_url(m.group(0)), text)
    else:
        result = _URL_IN_TEXT.sub(lambda m: m.group("scheme"), text)
    for secret in secrets:
        if secret:
            result = result.replace(secret, "****")
            result = result.replace(quote(secret, safe=""), "****")
    return result


class PrivateIndex(NamedTuple):
    """An ENVLOCK_*_INDEX_URL that carries credentials."""

    name: str  # "pypi" or "pytorch"
    url: str  # with the credentials
    clean: str  # without them
    user: str
    password: str


def private_indexes(environ: Mapping[str, str]) -> list[PrivateIndex]:
    """The index URLs from the environment that carry credentials (for sync and bundle, which
    download the lock's artifacts from those indexes)."""
    found = []
    for name in ("pypi", "pytorch"):
        url = environ.get(f"ENVLOCK_{name.upper()}_INDEX_URL", "")
        clean, user, password = split_credentials(url)
        if user is not None:
            found.append(PrivateIndex(name, url, clean, user, password or ""))
    return found
