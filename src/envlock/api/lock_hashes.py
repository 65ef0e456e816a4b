"""The lock's index-hash policy: every hash it pins is one its index listed.

uv computes a sha256 by downloading a file its index lists without one; envlock refuses such a
hash, or (``--hash-missing=download``) downloads the file and says so. Part of ``api.lock``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.pylock import PackageSdist, PackageWheel, Pylock

from envlock.api.project import Reporter
from envlock.errors import HashMismatchError
from envlock.io import files
from envlock.urls import redact_url

if TYPE_CHECKING:
    from envlock.io.ports import IndexReader
    from envlock.resolve import UvProject


class HashMissing(StrEnum):
    REFUSE = "refuse"
    DOWNLOAD = "download"


# pypi.org lists a sha256 for every file it serves (PEP 503/691), so its pages are not re-read.
_PYPI = "https://pypi.org/simple"


def _check_index_hashes(
    lock: Pylock,
    project: UvProject,
    policy: HashMissing,
    report: Reporter,
    reader: IndexReader | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> tuple[Pylock, list[str]]:
    """Every hash in the lock must be one its index listed (uv silently computes one by
    downloading a file listed without any); ``policy`` says what to do about the others.
    ``reader`` reads the listings (default: the real indexes, envlock.io.pages.PageReader,
    keeping pages in the page cache of ``environ`` as their indexes allow).
    Returns the lock (with the sha256 of a file uv knew only a weaker hash of, such as an
    index's md5, once downloaded) and the warnings."""
    wanted = sorted(
        {(p.index, p.name) for p in lock.packages if p.index and p.index.rstrip("/") != _PYPI}
    )
    if not wanted:
        return lock, []
    from envlock.io import download, pagecache, pages  # noqa: PLC0415 - only for non-PyPI indexes
    from envlock.wheels import artifact_key  # noqa: PLC0415

    if reader is None:
        reader = pages.PageReader(cache=pagecache.for_environment(environ or {}))
    fetched = reader.listings(
        [(project.wire_url(index), name) for index, name in wanted], project.auth_for
    )
    listings = {(index, name): fetched[(project.wire_url(index), name)] for index, name in wanted}
    unlisted: list[PackageWheel | PackageSdist] = []
    for package in lock.packages:
        listing = listings.get((package.index or "", package.name))
        if listing is None:
            continue
        artifacts: list[PackageWheel | PackageSdist] = [*(package.wheels or ())]
        artifacts += [package.sdist] if package.sdist else []
        for artifact in artifacts:
            listed = listing.get(artifact_key(artifact.filename), {})
            ours = artifact.hashes.get("sha256", "")
            if listed.get("sha256") and listed["sha256"].lower() != ours.lower():
                raise HashMismatchError(
                    f"{artifact.filename}: the index now lists another sha256 than the one "
                    "uv resolved",
                    hint="The index changed while locking (a republished file?); run "
                    "`envlock lock` again. The previous lock was left as it was.",
                    detail=f"index {listed['sha256']}\nuv    {ours}",
                )
            if not pages.vouched(listed):
                unlisted.append(artifact)
    if not unlisted:
        return lock, []
    urls = "\n".join(redact_url(a.url or "") for a in unlisted)
    if policy is HashMissing.REFUSE:
        raise HashMismatchError(
            f"{len(unlisted)} file(s) in the lock are listed by their index without a hash",
            hint="envlock does not pin a hash no index vouched for. Ask the index to publish "
            "sha256 hashes, or run `envlock lock --hash-missing=download` to hash these files "
            "by downloading them (trust on first use). The previous lock was left as it was.",
            detail=urls,
        )
    import tempfile  # noqa: PLC0415

    report(f"Hashing {len(unlisted)} file(s) their index lists without a hash (downloading)")
    with tempfile.TemporaryDirectory(prefix="envlock-hash-") as tmp:
        items = [
            download.Download(
                url=a.url or "",
                sha256=a.hashes.get("sha256", ""),
                size=a.size,
                dest=Path(tmp) / a.filename,
                also=tuple((k, v) for k, v in a.hashes.items() if k != "sha256"),
            )
            for a in unlisted
        ]
        download.download_all(items, auth=project.auth_for, progress=report)
        found = {i.url: files.file_sha256(i.dest).hex() for i in items if not i.sha256}
    checked = "they match what uv computed" if not found else "each matches the hash it listed"
    return _with_sha256(lock, found), [
        f"{len(unlisted)} hash(es) were computed by downloading (their index lists no "
        f"sha256); {checked}:\n{urls}"
    ]


def _with_sha256(lock: Pylock, found: Mapping[str, str]) -> Pylock:
    """The lock with each artifact in ``found`` (URL -> sha256) given that sha256 as well."""
    if not found:
        return lock

    def pinned(artifact: PackageWheel | PackageSdist) -> dict[str, str]:
        digest = found.get(artifact.url or "")
        return {**artifact.hashes, "sha256": digest} if digest else dict(artifact.hashes)

    return replace(
        lock,
        packages=[
            replace(
                p,
                wheels=[replace(w, hashes=pinned(w)) for w in p.wheels] if p.wheels else p.wheels,
                sdist=replace(p.sdist, hashes=pinned(p.sdist)) if p.sdist else None,
            )
            for p in lock.packages
        ],
    )
