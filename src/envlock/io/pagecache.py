"""Project pages kept between locks, by the index's own HTTP caching rules.

A lock re-reads the project page of every package from a non-PyPI index to check the hashes
uv wrote (decision 17); on a mirror of 1,000 packages that was 50 MB read again on every lock,
while uv itself, honouring the index's ``Cache-Control: max-age``, read nothing. A page an
index allows to be reused (max-age not yet over) is reused; one with a validator (ETag,
Last-Modified) is revalidated (a 304 reuses it); one with neither, or ``no-store``, is never
kept. The bytes kept are the bytes the index served, so every check reads what it would read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_MAX_AGE = re.compile(r"(?:^|[,\s])max-age=(\d+)")


@dataclass(frozen=True, slots=True, kw_only=True)
class Kept:
    body: bytes
    content_type: str
    etag: str
    last_modified: str
    stored: float  # time.time() when stored or last revalidated
    max_age: int  # seconds the index allows it to be reused without asking (0: always ask)

    def fresh(self, now: float) -> bool:
        return now - self.stored < self.max_age

    def validators(self) -> dict[str, str]:
        """The conditional request's headers."""
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


class PageCache:
    """Pages under ``directory``, one file each (a JSON line of headers, then the body), keyed
    by URL and Accept header; written atomically, readable only by the user."""

    def __init__(self, directory: Path, *, now: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self._now = now

    def _path(self, url: str, accept: str) -> Path:
        key = hashlib.sha256(f"{url}\0{accept}".encode()).hexdigest()
        return self.directory / key[:2] / f"{key}.page"

    def lookup(self, url: str, accept: str) -> Kept | None:
        try:
            data = self._path(url, accept).read_bytes()
            head, _, body = data.partition(b"\n")
            meta = json.loads(head)
            kept = Kept(body=body, **{k: meta[k] for k in _FIELDS})
        except (OSError, ValueError, KeyError, TypeError):
            return None
        texts = (kept.content_type, kept.etag, kept.last_modified)
        numbers_ok = isinstance(kept.stored, int | float) and isinstance(kept.max_age, int)
        return kept if numbers_ok and all(isinstance(t, str) for t in texts) else None

    def derived(
        self, kind: str, source: str, body: bytes, compute: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """``compute()`` (a JSON-able reading of ``body``, such as its listing), kept under the
        digest of the very bytes it was computed from: the PyTorch index's 2.8 MB torch page
        took 0.3 s to parse on every lock, while its bytes had not changed."""
        digest = hashlib.sha256(body).hexdigest()
        key = hashlib.sha256(f"{kind}\0{source}\0{digest}".encode()).hexdigest()
        path = self.directory / key[:2] / f"{key}.{kind}"
        try:
            found = json.loads(path.read_bytes())
            if isinstance(found, dict) and found.get("digest") == digest:
                value = found.get("value")
                if isinstance(value, dict):
                    return value
        except (OSError, ValueError):
            pass
        value = compute()
        self._put(path, json.dumps({"digest": digest, "value": value}).encode())
        return value

    def fresh(self, kept: Kept) -> bool:
        return kept.fresh(self._now())

    def store(self, url: str, accept: str, body: bytes, headers: Mapping[str, str]) -> None:
        """Keep the page if its headers allow reuse or revalidation; never fails a lock."""
        control = headers.get("cache-control", "").lower()
        max_age = _max_age(control, default=0)
        etag, modified = headers.get("etag", ""), headers.get("last-modified", "")
        if "no-store" in control or not (max_age or etag or modified):
            return
        self._write(
            url,
            accept,
            body,
            content_type=headers.get("content-type", ""),
            etag=etag,
            last_modified=modified,
            max_age=max_age,
            age=headers.get("age", ""),
        )

    def refreshed(self, url: str, accept: str, kept: Kept, headers: Mapping[str, str]) -> None:
        """A 304: the kept page is current again, for as long as the new headers say."""
        self._write(
            url,
            accept,
            kept.body,
            content_type=kept.content_type,
            etag=headers.get("etag", "") or kept.etag,
            last_modified=headers.get("last-modified", "") or kept.last_modified,
            max_age=_max_age(headers.get("cache-control", "").lower(), default=kept.max_age),
            age=headers.get("age", ""),
        )

    def _write(self, url: str, accept: str, body: bytes, *, age: str = "", **meta: object) -> None:
        path = self._path(url, accept)
        # A response a cache in between already held for ``Age`` seconds has that much less
        # of its max-age left (RFC 9111 4.2.3): it is kept as if stored that long ago.
        meta["stored"] = self._now() - (int(age) if age.strip().isdigit() else 0)
        self._put(path, json.dumps(meta).encode() + b"\n" + body)

    @staticmethod
    def _put(path: Path, data: bytes) -> None:
        """Written whole or not at all, readable by the user alone; never fails a lock."""
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            temporary = path.with_name(f"{path.name}.{os.getpid()}.{id(data)}.tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            temporary.replace(path)


def _max_age(control: str, *, default: int) -> int:
    """Seconds a Cache-Control value (lower case) lets a page be reused without asking:
    0 with no-cache, ``default`` when it names no max-age."""
    if "no-cache" in control:
        return 0
    found = _MAX_AGE.search(control)
    return default if found is None else int(found.group(1))


_FIELDS = ("content_type", "etag", "last_modified", "stored", "max_age")


def for_environment(environ: Mapping[str, str]) -> PageCache:
    """envlock's page cache, beside its uv cache (ENVLOCK_CACHE_DIR, else ~/.cache/envlock)."""
    from envlock.io.uv import cache_dir  # noqa: PLC0415 - only when locking

    return PageCache(cache_dir(environ).parent / "pages-v1")
