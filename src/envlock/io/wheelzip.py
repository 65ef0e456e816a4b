"""Read a file out of a remote wheel without downloading it: HTTP Range requests under zipfile.

A wheel is a zip: its central directory sits at the end, so the list of its files and one member
(RECORD, a few hundred KB even for torch) cost a few small requests, never the 1-3 GB wheel.
When the server refuses Range (answers 200 with the whole body), the wheel is downloaded once to
a temporary file, checked against the lock's sha256, and read locally; the caller is told so.

Bytes read by Range cannot be checked against the lock's sha256 (that covers the whole file);
callers use them for evidence that the lock's own hash pins later (see DECISIONS 44).
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from envlock.errors import HashMismatchError, IndexUnavailableError
from envlock.io import http
from envlock.urls import redact_url

_BLOCK = 1 << 16
_T = TypeVar("_T")
_MAX_READ = 64 << 20  # one central directory or member: torch's RECORD is ~1.5 MB
_RANGE_DEADLINE_S = 120.0  # all Range reads of one wheel (a server dripping bytes)
_DOWNLOAD_DEADLINE_S = 1800.0  # the whole-wheel fallback (a 2.5 GB wheel on a slow link)


def _unreadable(url: str, why: str) -> IndexUnavailableError:
    return IndexUnavailableError(
        f"{redact_url(url)} could not be read as a wheel: {why}",
        hint="Check the index; the Dockerfile's check then compares versions only.",
    )


def _read_capped(response: http.Response, limit: int, deadline: float, url: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes(1 << 16):
        size += len(chunk)
        if size > limit:
            raise _unreadable(url, f"the server sent more than the {limit} bytes asked for")
        if time.monotonic() > deadline:
            raise _unreadable(url, "the server is too slow (deadline passed)")
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class Member:
    name: str  # the member's path inside the wheel
    data: bytes
    ranged: bool  # True: read with Range requests; False: the whole wheel was downloaded


class _RangeFile(io.RawIOBase):
    """A read-only, seekable view of a remote file, fetched in cached blocks."""

    def __init__(
        self,
        client: http.Client,
        url: str,
        auth: tuple[str, str] | None,
        *,
        size: int,
        first: bytes,
    ) -> None:
        self._client = client
        self._url = url
        self._auth = auth
        self._pos = 0
        self._blocks: dict[int, bytes] = {0: first}
        self.size = size
        self._deadline = time.monotonic() + _RANGE_DEADLINE_S

    def _get(self, start: int, end: int) -> bytes:
        if end - start + 1 > _MAX_READ:
            raise _unreadable(self._url, f"a part of {end - start + 1} bytes is not a wheel's")
        headers = {"Range": f"bytes={start}-{end}"}
        with self._client.get(self._url, headers=headers, auth=self._auth) as response:
            if response.status != 206:
                raise IndexUnavailableError(
                    f"reading {redact_url(self._url)} failed (HTTP {response.status} to a Range "
                    "request)",
                    hint="Check the network and the index credentials, then run it again.",
                )
            return _read_capped(response, end - start + 1, self._deadline, self._url)

    def _block(self, index: int) -> bytes:
        if index not in self._blocks:
            start = index * _BLOCK
            data = self._get(start, min(start + _BLOCK, self.size) - 1)
            self._blocks[index] = data
        return self._blocks[index]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int = -1) -> bytes:
        end = self.size if size is None or size < 0 else min(self.size, self._pos + size)
        if end <= self._pos:
            return b""
        wanted = end - self._pos
        if wanted > 4 * _BLOCK:  # a big member: one request, not a block at a time
            data = self._get(self._pos, end - 1)
        else:
            parts = []
            first, last = self._pos // _BLOCK, (end - 1) // _BLOCK
            for index in range(first, last + 1):
                parts.append(self._block(index))
            offset = self._pos - first * _BLOCK
            data = b"".join(parts)[offset : offset + wanted]
        self._pos += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _unavailable(url: str, status: int) -> IndexUnavailableError:
    return IndexUnavailableError(
        f"reading {redact_url(url)} failed (HTTP {status})",
        hint="Check the network and the index credentials, then run it again.",
    )


def _save(response: http.Response, sha256: str) -> IO[bytes]:
    """The whole wheel (a server that ignored Range), checked against the lock's sha256."""
    handle = tempfile.TemporaryFile()  # noqa: SIM115 - returned open, the caller closes it
    digest = hashlib.sha256()
    deadline = time.monotonic() + _DOWNLOAD_DEADLINE_S
    for chunk in response.iter_bytes():
        if time.monotonic() > deadline:
            handle.close()
            raise _unreadable(response.url, "the download is too slow (deadline passed)")
        digest.update(chunk)
        handle.write(chunk)
    if digest.hexdigest() != sha256:
        handle.close()
        raise HashMismatchError(
            f"{redact_url(response.url)} does not match the sha256 in the lock",
            hint="The artifact changed since it was locked (republished or tampered).",
        )
    handle.seek(0)
    return handle


def _read(archive: zipfile.ZipFile, name: str, url: str) -> bytes:
    """One member, at most _MAX_READ bytes once unpacked (a zip bomb stops here)."""
    with archive.open(name) as member:
        data = member.read(_MAX_READ + 1)
    if len(data) > _MAX_READ:
        raise _unreadable(url, f"{name} unpacks to more than {_MAX_READ >> 20} MiB")
    return data


def _pick(
    archive: zipfile.ZipFile, pick: Callable[[list[str]], str | None], ranged: bool, url: str
) -> Member | None:
    name = pick(archive.namelist())
    return None if name is None else Member(name, _read(archive, name, url), ranged)


# What a broken or hostile archive raises inside zipfile: all mean "not a readable wheel".
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    NotImplementedError,
    RuntimeError,
    ValueError,
    EOFError,
)


def _with_archive(
    url: str,
    *,
    sha256: str,
    use: Callable[[zipfile.ZipFile, bool], _T],
    auth: tuple[str, str] | None,
    timeout: float | None,
) -> _T:
    """``use(archive, ranged)`` over the remote wheel: read by Range, or downloaded whole (and
    checked against ``sha256``) when the server refuses Range."""
    try:
        with http.Client(timeout=timeout or http.timeout_s(30)) as client:
            local: IO[bytes] | None = None
            head, total = b"", ""
            with client.get(url, headers={"Range": f"bytes=0-{_BLOCK - 1}"}, auth=auth) as first:
                if first.status == 200:  # Range refused: this is the whole wheel
                    local = _save(first, sha256)
                elif first.status != 206:
                    raise _unavailable(url, first.status)
                else:
                    head = _read_capped(first, _BLOCK, time.monotonic() + _RANGE_DEADLINE_S, url)
                    total = first.header("Content-Range").rpartition("/")[2]
            if local is None and not total.isdigit():
                raise IndexUnavailableError(
                    f"{redact_url(url)} answered a Range request without the file's size",
                    hint="Use an index that sends Content-Range (PyPI and download.pytorch.org "
                    "do).",
                )
            try:
                if local is not None:
                    with local, zipfile.ZipFile(local) as archive:
                        return use(archive, False)
                remote = _RangeFile(client, url, auth, size=int(total), first=head)
                with zipfile.ZipFile(remote) as archive:
                    return use(archive, True)
            except _ZIP_ERRORS as exc:
                raise _unreadable(url, str(exc)[:200] or type(exc).__name__) from None
    except http.TransportError as exc:
        raise IndexUnavailableError(
            f"reading {redact_url(url)} failed: {exc.reason}",
            hint=http.UNTRUSTED_HINT if exc.untrusted else "Check the network, then run it again.",
        ) from None


def read_member(
    url: str,
    *,
    sha256: str,
    pick: Callable[[list[str]], str | None],
    auth: tuple[str, str] | None = None,
    timeout: float | None = None,
) -> Member | None:
    """The member ``pick`` chooses from the wheel's file list (None: no such member).

    Raises IndexUnavailableError (unreachable, HTTP errors, not a readable wheel, too big, too
    slow) or HashMismatchError (a downloaded wheel that is not the locked one)."""
    return _with_archive(
        url,
        sha256=sha256,
        use=lambda archive, ranged: _pick(archive, pick, ranged, url),
        auth=auth,
        timeout=timeout,
    )


@dataclass(frozen=True, slots=True)
class Members:
    names: tuple[str, ...]  # every member of the wheel (its zip central directory)
    data: dict[str, bytes]  # the members ``pick`` chose, read
    ranged: bool  # True: read with Range requests; False: the whole wheel was downloaded


def _members(
    archive: zipfile.ZipFile, pick: Callable[[list[str]], list[str]], ranged: bool, url: str
) -> Members:
    names = archive.namelist()
    return Members(tuple(names), {n: _read(archive, n, url) for n in pick(names)}, ranged)


def read_members(
    url: str,
    *,
    sha256: str,
    pick: Callable[[list[str]], list[str]],
    auth: tuple[str, str] | None = None,
    timeout: float | None = None,
) -> Members:
    """The wheel's file list and the (small) members ``pick`` chooses from it: the central
    directory and those members by Range, a few KB beside the wheel. Raises as read_member."""
    return _with_archive(
        url,
        sha256=sha256,
        use=lambda archive, ranged: _members(archive, pick, ranged, url),
        auth=auth,
        timeout=timeout,
    )


def _is_record(names: list[str]) -> str | None:
    found = [n for n in names if n.count("/") == 1 and n.endswith(".dist-info/RECORD")]
    return found[0] if len(found) == 1 else None


def wheel_record(
    url: str, *, sha256: str, cache: Path, auth: tuple[str, str] | None = None
) -> tuple[str, str]:
    """The RECORD of the wheel at ``url`` (cached under ``cache`` by the wheel's sha256), and
    how it was read ("cached", "range" or "download"). Raises as read_member does, and
    IndexUnavailableError when the wheel has no single RECORD."""
    from envlock.io import files  # noqa: PLC0415 - only here

    # By the wheel's sha256 *and* its URL: bytes read by Range are not checked against that
    # sha256, so a lock naming a real hash at another server must not fix the proof for others.
    where = hashlib.sha256(url.encode()).hexdigest()[:16]
    path = cache / f"{sha256}-{where}.RECORD"
    cached = files.read_text(path)
    if cached is not None:
        return cached, "cached"
    member = read_member(url, sha256=sha256, pick=_is_record, auth=auth)
    if member is None:
        raise IndexUnavailableError(
            f"{redact_url(url)} has no single .dist-info/RECORD",
            hint="The artifact is not a valid wheel; do not use it.",
        )
    text = member.data.decode("utf-8", "replace")
    cache.mkdir(parents=True, exist_ok=True)
    files.write_atomic(path, text)
    return text, "range" if member.ranged else "download"
