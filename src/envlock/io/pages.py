"""Which files an index lists for a project, and with which hashes (PEP 503 HTML, PEP 691 JSON).

uv fills in a sha256 for a file its index lists without one by downloading it, silently (trust
on first use). envlock reads the project pages itself after resolving, so a lock never holds
a hash that no index vouched for unless the user asked for that (``--hash-missing=download``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urljoin, urlsplit

from envlock import urls
from envlock.errors import IndexUnavailableError
from envlock.heldback import Offer, Offers
from envlock.io import http
from envlock.io.pagecache import PageCache
from envlock.io.ports import AuthFor, Listing
from envlock.urls import redact_url
from envlock.wheels import artifact_key

_R = TypeVar("_R")

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
# parse_page's result as the page cache keeps it (io.pagecache.derived): bump it when a change to
# the parsing would read the same bytes differently, so no listing of the old parser is reused.
LISTING_FORMAT = "1"
# Algorithms envlock accepts as "the index vouched for this file" (PEP 503 allows these).
_SECURE = ("sha256", "sha384", "sha512")


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.attributes: list[dict[str, str | None]] = []  # each anchor's, beside its href

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)
                self.attributes.append(dict(attrs))


def _filename(href: str, page_url: str) -> str:
    return unquote(urlsplit(urljoin(page_url, href)).path.rsplit("/", 1)[-1])


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


def _stamp(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def parse_offers(body: bytes, content_type: str, page_url: str) -> tuple[Offer, ...]:
    """The files a project page offers, with Requires-Python, yanked and upload time (PEP 503
    data-requires-python / data-yanked, PEP 691/700 JSON); raises ValueError if unreadable."""
    if content_type.split(";", maxsplit=1)[0].strip() == JSON_TYPE:
        return tuple(
            Offer(
                filename=str(entry["filename"]),
                requires_python=str(entry.get("requires-python") or "") or None,
                yanked=bool(entry.get("yanked")),
                upload_time=_stamp(entry.get("upload-time")),
            )
            for entry in json.loads(body)["files"]
        )
    parser = _Anchors()
    parser.feed(body.decode("utf-8"))
    parser.close()
    return tuple(
        Offer(
            filename=_filename(href, page_url),
            requires_python=attributes.get("data-requires-python") or None,
            yanked="data-yanked" in attributes,
            upload_time=_stamp(attributes.get("data-upload-time")),
        )
        for href, attributes in zip(parser.hrefs, parser.attributes, strict=True)
    )


def fetch_offers(
    index_url: str,
    project: str,
    auth: tuple[str, str] | None,
    *,
    client: http.Client,
    cache: PageCache | None = None,
) -> Offers:
    """What a project page offers, or (never raising) why it could not be read: the held-back
    report is advice, and a page uv already read successfully is no reason to fail a lock."""
    page_url = urls.page_url(index_url, project)
    try:
        status, body, content_type = _get(page_url, auth, client, cache)
        if status != 200:
            return f"{redact_url(page_url)} answered HTTP {status}"
        return parse_offers(body, content_type, page_url)
    except http.TransportError as exc:
        return f"could not read {redact_url(page_url)}: {exc.reason}"
    except OSError as exc:
        return f"could not read {redact_url(page_url)}: {exc.strerror or type(exc).__name__}"
    except (ValueError, KeyError, TypeError) as exc:
        return f"{redact_url(page_url)} is not a readable project page ({type(exc).__name__})"


def vouched(hashes: Mapping[str, str]) -> bool:
    return any(hashes.get(a) for a in _SECURE)


def _get(
    url: str, auth: tuple[str, str] | None, client: http.Client, cache: PageCache | None = None
) -> tuple[int, bytes, str]:
    """(status, body, content type) of a project page: over HTTP(S) through the one client
    (kept in ``cache`` as the index's caching headers allow, io.pagecache), or a local index's
    folder (file://), whose page is its index.html."""
    if url.startswith("file:"):
        from urllib.request import url2pathname  # noqa: PLC0415 - see the module note

        page = Path(url2pathname(urlsplit(url).path)) / "index.html"
        return 200, page.read_bytes(), "text/html"
    accept = f"{JSON_TYPE}, text/html;q=0.5"
    kept = cache.lookup(url, accept) if cache is not None else None
    if cache is not None and kept is not None and cache.fresh(kept):
        return 200, kept.body, kept.content_type
    validators = kept.validators() if kept is not None else {}
    with client.get(url, headers={"Accept": accept, **validators}, auth=auth) as r:
        # A 304 answers a conditional request only (RFC 9111): to one without validators it
        # vouches for nothing, and the kept page may be one the index has since changed.
        if r.status == 304 and cache is not None and kept is not None and validators:
            cache.refreshed(url, accept, kept, _caching(r))
            return 200, kept.body, kept.content_type
        if not 200 <= r.status < 300:
            return r.status, b"", ""
        body = r.read()
        if cache is not None:
            cache.store(url, accept, body, _caching(r))
        return 200, body, r.header("Content-Type")


def _caching(response: http.Response) -> dict[str, str]:
    names = ("Cache-Control", "ETag", "Last-Modified", "Content-Type", "Age")
    return {name.lower(): response.header(name) for name in names}


def fetch_listing(
    index_url: str,
    project: str,
    auth: tuple[str, str] | None,
    *,
    client: http.Client,
    cache: PageCache | None = None,
) -> Listing:
    page_url = urls.page_url(index_url, project)
    shown = redact_url(page_url)
    try:
        status, body, content_type = _get(page_url, auth, client, cache)
    except http.TransportError as exc:
        raise IndexUnavailableError(
            f"could not read {shown} to check its hashes: {exc.reason}",
            hint=http.UNTRUSTED_HINT
            if exc.untrusted
            else "Check the network/proxy and run `envlock lock` again; the previous lock was "
            "left as it was.",
        ) from None
    except OSError as exc:  # a local index's folder
        raise IndexUnavailableError(
            f"could not read {shown} to check its hashes: {exc.strerror or type(exc).__name__}",
            hint="Check the local index's path and run `envlock lock` again; the previous lock "
            "was left as it was.",
        ) from None
    if status != 200:
        raise IndexUnavailableError(
            f"{shown} answered HTTP {status} when envlock checked its hashes",
            hint="Check the index URL and credentials; the previous lock was left as it was.",
        )
    try:
        if cache is None:
            return parse_page(body, content_type, page_url)
        return cache.derived(
            "listing",
            f"{page_url}\0{content_type}\0{LISTING_FORMAT}",
            body,
            lambda: parse_page(body, content_type, page_url),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise IndexUnavailableError(
            f"{shown} is not a readable project page ({type(exc).__name__})",
            hint="The index served something other than a PEP 503/691 page; check its URL.",
        ) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class PageReader:
    """The IndexReader of real indexes (PEP 503 HTML, PEP 691 JSON, a local folder): pages
    read in parallel, over one HTTP client (one kept-alive connection per host and worker)."""

    # A page is a round trip: the hash check reads as many pages as uv resolved (1,025 on
    # bench/bigindex.py), so at 30 ms each 8 workers took 3.8 s of network alone; 32 measured
    # 8.8 s -> 7.2 s for the whole cold lock (uv itself runs up to 50 requests at once).
    workers: int = 32
    cache: PageCache | None = None  # pages kept between locks (io.pagecache); None: none

    def listings(
        self, wanted: Sequence[tuple[str, str]], auth: AuthFor
    ) -> dict[tuple[str, str], Listing]:
        """(index URL, project) -> listing, fetched in parallel."""
        return self._each(fetch_listing, wanted, auth)

    def offers(
        self, wanted: Sequence[tuple[str, str]], auth: AuthFor
    ) -> dict[tuple[str, str], Offers]:
        """(index URL, project) -> the files its page offers (or why it could not be read)."""
        return self._each(fetch_offers, wanted, auth)

    def _each(
        self,
        fetch: Callable[..., _R],
        wanted: Sequence[tuple[str, str]],
        auth: AuthFor,
    ) -> dict[tuple[str, str], _R]:
        """``fetch(index, project, credentials, client=...)`` for every pair, in parallel over
        one client."""
        with (
            http.Client(timeout=http.timeout_s(30)) as client,
            ThreadPoolExecutor(max_workers=self.workers) as pool,
        ):
            futures = {
                key: pool.submit(
                    fetch, key[0], key[1], auth(key[0]), client=client, cache=self.cache
                )
                for key in wanted
            }
            return {key: future.result() for key, future in futures.items()}
