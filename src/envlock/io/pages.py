"""Which files an index lists for a project, and with which hashes (PEP 503 HTML, PEP 691 JSON).

uv fills in a sha256 for a file its index lists without one by downloading it, silently (trust
on first use). envlock reads the project pages itself after resolving, so a lock never holds
a hash that no index vouched for unless the user asked for that (``--hash-missing=download``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit

from envlock import __version__, urls
from envlock.errors import IndexUnavailableError
from envlock.io.http import timeout_s
from envlock.urls import redact_url

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
# Algorithms envlock accepts as "the index vouched for this file" (PEP 503 allows these).
_SECURE = ("sha256", "sha384", "sha512")

Listing = dict[str, dict[str, str]]  # filename -> {algorithm: hex digest}


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def _filename(href: str, page_url: str) -> str:
    return unquote(urlsplit(urljoin(page_url, href)).path.rsplit("/", 1)[-1])


def artifact_key(filename: str) -> str:
    """One spelling of an artifact's file name, so that an index listing
    `ruamel.yaml-0.18.6-py3-none-any.whl` and a lock naming `ruamel_yaml-0.18.6-...` meet:
    the normalised project name, the version and the tags (packaging's parsers)."""
    from packaging.utils import (  # noqa: PLC0415 - see the module note
        InvalidSdistFilename,
        InvalidWheelFilename,
        parse_sdist_filename,
        parse_wheel_filename,
    )

    try:
        if filename.endswith(".whl"):
            name, version, build, tags = parse_wheel_filename(filename)
            tag_text = ".".join(sorted(str(t) for t in tags))
            return f"{name}-{version}-{''.join(map(str, build))}-{tag_text}.whl"
        name, version = parse_sdist_filename(filename)
        return f"{name}-{version}.sdist"
    except (InvalidWheelFilename, InvalidSdistFilename):
        return filename


def parse_page(body: bytes, content_type: str, page_url: str) -> Listing:
    """The files a project page lists with their hashes; raises ValueError if unreadable."""
    listing: Listing = {}
    if content_type.split(";", maxsplit=1)[0].strip() == JSON_TYPE:
        data = json.loads(body)
        for entry in data["files"]:
            hashes = entry.get("hashes") or {}
            listing[artifact_key(str(entry["filename"]))] = {
                str(k): str(v) for k, v in hashes.items()
            }
        return listing
    parser = _Anchors()
    parser.feed(body.decode("utf-8"))
    parser.close()
    for href in parser.hrefs:
        fragment = urlsplit(href).fragment
        algorithm, _, digest = fragment.partition("=")
        listing[artifact_key(_filename(href, page_url))] = {algorithm: digest} if digest else {}
    return listing


def vouched(hashes: Mapping[str, str]) -> bool:
    return any(hashes.get(a) for a in _SECURE)


def _get(url: str, auth: tuple[str, str] | None) -> tuple[int, bytes, str]:
    """(status, body, content type) of a GET; urllib, not requests: 40 ms to import, not 100."""
    import base64  # noqa: PLC0415 - see the module note
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    if url.startswith("file:"):  # a local index: the page is the folder's index.html
        url = url.rstrip("/") + "/index.html"
    request = urllib.request.Request(  # noqa: S310 - http(s) or a local file:// index
        url,
        headers={
            "User-Agent": f"envlock/{__version__}",
            "Accept": f"{JSON_TYPE}, text/html;q=0.5",
        },
    )
    auth = auth or _netrc_auth(url)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s(30)) as response:  # noqa: S310
            return 200, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, b"", ""


def _netrc_auth(url: str) -> tuple[str, str] | None:
    """Credentials for the host from ~/.netrc (or $NETRC), as uv and pip would use them."""
    import netrc  # noqa: PLC0415 - see the module note
    import os  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    host = urlsplit(url).hostname
    if not host or not path.is_file():
        return None
    try:
        entry = netrc.netrc(str(path)).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return None
    return (entry[0] or "", entry[2] or "") if entry else None


def fetch_listing(index_url: str, project: str, auth: tuple[str, str] | None) -> Listing:
    import http.client  # noqa: PLC0415 - see the module note

    page_url = urls.page_url(index_url, project)
    shown = redact_url(page_url)
    try:
        status, body, content_type = _get(page_url, auth)
    except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise IndexUnavailableError(
            f"could not read {shown} to check its hashes: {reason}",
            hint="Check the network/proxy and run `envlock lock` again; the previous lock was "
            "left as it was.",
        ) from None
    if status != 200:
        raise IndexUnavailableError(
            f"{shown} answered HTTP {status} when envlock checked its hashes",
            hint="Check the index URL and credentials; the previous lock was left as it was.",
        )
    try:
        return parse_page(body, content_type, page_url)
    except (ValueError, KeyError, TypeError) as exc:
        raise IndexUnavailableError(
            f"{shown} is not a readable project page ({type(exc).__name__})",
            hint="The index served something other than a PEP 503/691 page; check its URL.",
        ) from None


def fetch_listings(
    wanted: Sequence[tuple[str, str]],
    auth: Callable[[str], tuple[str, str] | None],
    workers: int = 8,
) -> dict[tuple[str, str], Listing]:
    """(index URL, project) -> listing, fetched in parallel."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {key: pool.submit(fetch_listing, key[0], key[1], auth(key[0])) for key in wanted}
        return {key: future.result() for key, future in futures.items()}
