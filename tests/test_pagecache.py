"""Project pages kept between locks as the index's HTTP caching headers allow (io.pagecache).

The hash check re-read every page of a non-PyPI index on every lock (50 MB for 1,000 packages
on bench/bigindex.py, where uv itself read nothing): a page the index lets clients reuse is
reused, one with a validator is revalidated, one with neither is read again as before."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from envlock.errors import IndexUnavailableError
from envlock.io.pagecache import PageCache
from envlock.io.pages import PageReader

SHA = "a" * 64
PAGE = f'<a href="demo-1.0-py3-none-any.whl#sha256={SHA}">demo-1.0-py3-none-any.whl</a>'.encode()


class _Index:
    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.requests: list[dict[str, str]] = []
        self.always_304 = False  # a broken proxy: 304 to any request
        self.body = PAGE
        index = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                index.requests.append(dict(self.headers))
                etag = index.headers.get("ETag")
                if index.always_304 and len(index.requests) > 1:
                    self.send_response(304)
                    self.send_header("Cache-Control", "max-age=31536000")
                    self.end_headers()
                    return
                if etag and self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(index.body)))
                for key, value in index.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(index.body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple"


@pytest.fixture
def index() -> Iterator[_Index]:
    served = _Index()
    yield served
    served.server.shutdown()
    served.server.server_close()


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _read(index: _Index, cache: PageCache) -> dict[str, dict[str, str]]:
    listing = PageReader(cache=cache).listings([(index.url, "demo")], lambda _url: None)
    return dict(listing[(index.url, "demo")])


def test_a_page_within_its_max_age_is_not_read_again(index: _Index, tmp_path: Path) -> None:
    clock = _Clock()
    cache = PageCache(tmp_path, now=clock)
    index.headers = {"Cache-Control": "max-age=600, public"}
    first = _read(index, cache)
    clock.now += 599
    assert _read(index, cache) == first
    assert len(index.requests) == 1
    clock.now += 2  # past max-age, no validator: read whole again
    index.body = PAGE.replace(b"a" * 64, b"b" * 64)
    assert _read(index, cache) != first
    assert len(index.requests) == 2


def test_a_page_with_an_etag_is_revalidated(index: _Index, tmp_path: Path) -> None:
    cache = PageCache(tmp_path)
    index.headers = {"ETag": '"v1"', "Cache-Control": "no-cache"}
    first = _read(index, cache)
    assert _read(index, cache) == first
    assert len(index.requests) == 2
    assert index.requests[1].get("If-None-Match") == '"v1"'  # answered 304, the kept page used


@pytest.mark.parametrize("headers", [{}, {"Cache-Control": "no-store", "ETag": '"v1"'}])
def test_a_page_without_caching_headers_is_never_kept(
    index: _Index, tmp_path: Path, headers: dict[str, str]
) -> None:
    cache = PageCache(tmp_path)
    index.headers = headers
    _read(index, cache)
    index.body = PAGE.replace(b"a" * 64, b"c" * 64)
    assert [h["sha256"] for h in _read(index, cache).values()] == ["c" * 64]
    assert "If-None-Match" not in index.requests[1]
    assert not list(tmp_path.rglob("*.page"))


def test_a_damaged_entry_is_read_again(index: _Index, tmp_path: Path) -> None:
    cache = PageCache(tmp_path)
    index.headers = {"Cache-Control": "max-age=600"}
    _read(index, cache)
    (entry,) = tmp_path.rglob("*.page")
    entry.write_bytes(b'{"stored": "yesterday"}\n' + PAGE)
    _read(index, cache)
    assert len(index.requests) == 2
    assert oct(entry.stat().st_mode & 0o777) == oct(0o600)


def test_a_reading_is_kept_by_the_digest_of_its_bytes(tmp_path: Path) -> None:
    cache = PageCache(tmp_path)
    calls: list[bytes] = []

    def parse(body: bytes) -> dict[str, object]:
        calls.append(body)
        return {"files": len(body)}

    for body in (b"page one", b"page one", b"page two", b"page one"):
        assert cache.derived("listing", "u", body, lambda b=body: parse(b)) == {"files": 8}
    assert calls == [b"page one", b"page two"]


def test_a_304_to_a_request_without_validators_vouches_for_nothing(
    index: _Index, tmp_path: Path
) -> None:
    """A page kept for its max-age alone, gone stale, is asked for again with no validator: a
    304 then (a broken proxy) must not bring the old page back for another year."""
    clock = _Clock()
    cache = PageCache(tmp_path, now=clock)
    index.headers = {"Cache-Control": "max-age=1"}
    _read(index, cache)
    clock.now += 2
    index.always_304 = True
    with pytest.raises(IndexUnavailableError, match="HTTP 304"):
        _read(index, cache)


def test_a_page_held_by_a_cache_in_between_has_less_life_left(
    index: _Index, tmp_path: Path
) -> None:
    clock = _Clock()
    cache = PageCache(tmp_path, now=clock)
    index.headers = {"Cache-Control": "max-age=600", "Age": "590"}
    _read(index, cache)
    clock.now += 5
    _read(index, cache)
    assert len(index.requests) == 1  # 5 s of its 10 s left
    clock.now += 6
    _read(index, cache)
    assert len(index.requests) == 2
