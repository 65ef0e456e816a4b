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
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from envlock.errors import HashMismatchError, IndexUnavailableError
from envlock.io import http
from envlock.urls import redact_url

_BLOCK = 1 << 16


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

    def _get(self, start: int, end: int) -> bytes:
        headers = {"Range": f"bytes={start}-{end}"}
        with self._client.get(self._url, headers=headers, auth=self._auth) as response:
            if response.status != 206:
                raise IndexUnavailableError(
                    f"reading {redact_url(self._url)} failed (HTTP {response.status} to a Range "
                    "request)",
                    hint="Check the network and the index credentials, then run it again.",
                )
            return response.read()

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
    for chunk in response.iter_bytes():
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


def _pick(
    archive: zipfile.ZipFile, pick: Callable[[list[str]], str | None], ranged: bool
) -> Member | None:
    name = pick(archive.namelist())
    return None if name is None else Member(name, archive.read(name), ranged)


def read_member(
    url: str,
    *,
    sha256: str,
    pick: Callable[[list[str]], str | None],
    auth: tuple[str, str] | None = None,
    timeout: float = 30.0,
) -> Member | None:
    """The member ``pick`` chooses from the wheel's file list (None: no such member).

    Raises IndexUnavailableError (unreachable, HTTP errors), HashMismatchError (a downloaded
    wheel that is not the locked one) or zipfile.BadZipFile (not a zip)."""
    try:
        with http.Client(timeout=timeout) as client:
            local: IO[bytes] | None = None
            with client.get(url, headers={"Range": f"bytes=0-{_BLOCK - 1}"}, auth=auth) as first:
                if first.status == 200:  # Range refused: this is the whole wheel
                    local = _save(first, sha256)
                elif first.status != 206:
                    raise _unavailable(url, first.status)
                else:
                    head = first.read()
                    total = first.header("Content-Range").rpartition("/")[2]
            if local is not None:
                with local, zipfile.ZipFile(local) as archive:
                    return _pick(archive, pick, ranged=False)
            if not total.isdigit():
                raise IndexUnavailableError(
                    f"{redact_url(url)} answered a Range request without the file's size",
                    hint="Use an index that sends Content-Range (PyPI and download.pytorch.org "
                    "do).",
                )
            remote = _RangeFile(client, url, auth, size=int(total), first=head)
            with zipfile.ZipFile(remote) as archive:
                return _pick(archive, pick, ranged=True)
    except http.TransportError as exc:
        raise IndexUnavailableError(
            f"reading {redact_url(url)} failed: {exc.reason}",
            hint=http.UNTRUSTED_HINT if exc.untrusted else "Check the network, then run it again.",
        ) from None


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

    path = cache / f"{sha256}.RECORD"
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
