"""Download artifacts in parallel, resumably, verified by sha256 (and size when known), over the
one HTTP client (envlock.io.http: connections reused per host, netrc, TLS trust, proxies)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from envlock.errors import EnvlockError, HashMismatchError, IndexUnavailableError
from envlock.io import http
from envlock.io.files import file_sha256
from envlock.urls import redact_url, split_credentials

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Download:
    url: str
    sha256: str  # "" when no sha256 is known yet: the download is trusted on first use
    size: int | None
    dest: Path
    also: tuple[tuple[str, str], ...] = ()  # other (algorithm, digest) the file must match


def _sha256_of(path: Path) -> str:
    return file_sha256(path).hex()


def _digest_of(path: Path, algorithm: str) -> str:
    import hashlib  # noqa: PLC0415 - only for an index that lists a weaker hash (md5)

    with path.open("rb") as handle:
        return hashlib.file_digest(handle, algorithm).hexdigest()


def _fetch(
    item: Download, auth: Callable[[str], tuple[str, str] | None], client: http.Client
) -> bool:
    """Fetch one file; False when a verified copy was already there (resume)."""
    if item.dest.exists() and _sha256_of(item.dest) == item.sha256:
        return False
    part = item.dest.with_name(item.dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    url, user, password = split_credentials(item.url)
    credentials = (user, password or "") if user is not None else auth(url)
    try:
        with client.get(url, headers=headers, auth=credentials) as r:
            if r.status == 416 or (offset and r.status == 200):
                offset = 0  # the server does not resume: start over
            if r.status >= 400 and r.status != 416:
                raise IndexUnavailableError(
                    f"downloading {redact_url(url)} failed (HTTP {r.status})",
                    hint="Check the network and the index credentials; completed files are kept "
                    "and the next run resumes.",
                )
            with part.open("ab" if offset else "wb") as handle:
                for chunk in r.iter_bytes(_CHUNK):
                    handle.write(chunk)
    except http.TransportError as exc:
        raise IndexUnavailableError(
            f"downloading {redact_url(url)} failed: {exc.reason}",
            hint=http.UNTRUSTED_HINT
            if exc.untrusted
            else "Run the same command again: completed files are kept and it resumes.",
        ) from None
    got = part.stat().st_size
    if item.size is not None and got != item.size:
        part.unlink()
        raise HashMismatchError(
            f"{item.dest.name}: {got} bytes, the lock says {item.size}",
            hint="The artifact changed since it was locked; do not use it.",
        )
    actual = _sha256_of(part)
    expected = [("sha256", item.sha256, actual)] if item.sha256 else []
    expected += [(name, digest, _digest_of(part, name)) for name, digest in item.also]
    for name, digest, found in expected:
        if found != digest.lower():
            part.unlink()
            raise HashMismatchError(
                f"{item.dest.name} does not match the {name} in the lock",
                hint="The artifact changed since it was locked (republished or tampered).",
                detail=f"expected {digest}\nfound    {found}",
            )
    part.replace(item.dest)
    return True


def download_all(
    items: Sequence[Download],
    *,
    auth: Callable[[str], tuple[str, str] | None],
    progress: Callable[[str], None],
    workers: int = 8,
) -> int:
    """Download every item (in parallel); returns how many were fetched rather than reused."""
    fetched = 0
    errors: list[EnvlockError] = []
    with (
        http.Client(timeout=http.timeout_s(60)) as client,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        futures = {pool.submit(_fetch, item, auth, client): item for item in items}
        for done, (future, item) in enumerate(futures.items(), start=1):
            try:
                was_fetched = future.result()
            except EnvlockError as exc:
                errors.append(exc)
                continue
            fetched += int(was_fetched)
            verb = "downloaded" if was_fetched else "already there"
            progress(f"[{done}/{len(items)}] {item.dest.name} ({verb}, sha256 ok)")
    if errors:
        first = errors[0]
        if len(errors) > 1:
            first.detail = (first.detail + "\n" if first.detail else "") + (
                f"{len(errors) - 1} more file(s) failed too"
            )
        raise first
    return fetched
