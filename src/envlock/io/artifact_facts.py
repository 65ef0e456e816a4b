"""Read what the review gate needs to know about artifacts (envlock.gate): the effects.

- A wheel's file list from its zip central directory, with HTTP Range requests
  (``io/wheelzip.py``: a few KB, never the whole torch wheel; a server that refuses Range costs
  one download, checked against the lock's sha256, and the finding says so), plus the text of its
  top-level .pth files. Cached by the wheel's sha256: the same bytes always list the same files.
- Upload times and yanked flags from the package's own index page (``io/pages.PageReader``'s
  ``offers``, PEP 691/700 JSON or PEP 503 HTML), once per (index, project) and run: a yank can
  happen at any time, so pages are not cached across runs.
- Known vulnerabilities from PyPI's JSON API (``/pypi/NAME/VERSION/json``, its
  ``vulnerabilities`` field: what pip-audit reads), behind ``VulnerabilitySource``.

Each reader runs its requests in parallel, bounded by ``workers``.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from envlock.errors import EnvlockError
from envlock.gate import (
    Facts,
    Kind,
    Vulnerabilities,
    Vulnerability,
    VulnerabilitySource,
    WheelFilesReader,
)
from envlock.gate_artifacts import Artifact, Hook, Pairing, WheelFiles, find_hooks, hook_members
from envlock.heldback import OfferReader
from envlock.io import files, http
from envlock.urls import redact_url

AuthFor = Callable[[str], tuple[str, str] | None]
PYPI_JSON = "https://pypi.org/pypi"
_CACHE_FORMAT = 1
_PTH_LIMIT = 1 << 20  # a .pth bigger than this is read no further (site.py reads it whole)


def files_cache(environ: Mapping[str, str]) -> Path:
    """Where wheel file lists are cached (beside the RECORD cache of export dockerfile)."""
    from envlock.io.uv import cache_dir  # noqa: PLC0415 - only with a cache to read

    return cache_dir(environ).parent / "wheel-files"


def _summarise(names: Sequence[str], data: Mapping[str, bytes], how: str) -> WheelFiles:
    # utf-8-sig: site.py (3.13+) drops a byte-order mark before it looks for "import"
    pth = {n: data[n][:_PTH_LIMIT].decode("utf-8-sig", "replace") for n in data}
    return WheelFiles(files=len(names), hooks=find_hooks(names, pth), how=how)


def _dump(listing: WheelFiles) -> str:
    hooks = [{"path": h.path, "kind": h.kind, "lines": list(h.lines)} for h in listing.hooks]
    return json.dumps({"format": _CACHE_FORMAT, "files": listing.files, "hooks": hooks}) + "\n"


def _load(text: str) -> WheelFiles | None:
    try:
        data = json.loads(text)
        if data.get("format") != _CACHE_FORMAT:
            return None
        hooks = tuple(
            Hook(path=str(h["path"]), kind=h["kind"], lines=tuple(str(x) for x in h["lines"]))
            for h in data["hooks"]
        )
        return WheelFiles(files=int(data["files"]), hooks=hooks, how="cached")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # a cache entry from another version, or damaged: read the wheel again


def _local(path: Path) -> WheelFiles:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        data = {n: archive.read(n) for n in hook_members(names)}
    return _summarise(names, data, "local")


def _file_url(url: str) -> Path | None:
    if not url.startswith("file:"):
        return None
    from urllib.parse import urlsplit  # noqa: PLC0415
    from urllib.request import url2pathname  # noqa: PLC0415

    return Path(url2pathname(urlsplit(url).path))


def list_wheel(
    artifact: Artifact, *, cache: Path, auth: AuthFor, base: Path | None = None
) -> WheelFiles | str:
    """A wheel's file list (start-up hooks found), or why it could not be read."""
    from envlock.io.wheelzip import read_members  # noqa: PLC0415 - only when a wheel is read

    digest = artifact.digest
    if artifact.form != "wheel" or not digest:
        return "not a wheel with a sha256"
    entry = cache / f"{digest}.json"
    cached = files.read_text(entry)
    if cached is not None and (listing := _load(cached)) is not None:
        return listing
    local = _file_url(artifact.url) if artifact.url else None
    try:
        if local is not None:
            listing = _local(local)
        elif artifact.url:
            members = read_members(
                artifact.url, sha256=digest, pick=hook_members, auth=auth(artifact.url)
            )
            how = "range" if members.ranged else "download"
            listing = _summarise(members.names, members.data, how)
        elif artifact.path and base is not None:
            listing = _local(base / artifact.path)
        else:
            return "the lock gives no URL or path to read it from"
    except EnvlockError as exc:
        return exc.message
    except zipfile.BadZipFile:
        return "it is not a zip archive (not a valid wheel)"
    except OSError as exc:
        return f"{exc.strerror or type(exc).__name__}"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        files.write_atomic(entry, _dump(listing))
    except EnvlockError:
        pass  # a read-only cache costs a re-read next time, not the review
    return listing


@dataclass(frozen=True, slots=True, kw_only=True)
class WheelLister:
    """Lists wheels' files in parallel (``workers`` at a time), cached under ``cache``."""

    cache: Path
    auth: AuthFor
    base: Path | None = None  # where a lock's relative artifact paths start
    workers: int = 8

    def files(self, wanted: Sequence[Artifact]) -> dict[str, WheelFiles | str]:
        unique = {a.digest: a for a in wanted if a.digest}
        if not unique:
            return {}
        with ThreadPoolExecutor(max_workers=min(self.workers, len(unique))) as pool:
            futures = {
                digest: pool.submit(
                    list_wheel, artifact, cache=self.cache, auth=self.auth, base=self.base
                )
                for digest, artifact in unique.items()
            }
            return {digest: future.result() for digest, future in futures.items()}


def parse_advisories(body: bytes) -> tuple[Vulnerability, ...]:
    """The ``vulnerabilities`` of a PyPI JSON API answer (withdrawn ones left out)."""
    data = json.loads(body)
    found = []
    for item in data.get("vulnerabilities") or ():
        if item.get("withdrawn"):
            continue
        found.append(
            Vulnerability(
                id=str(item.get("id") or "?"),
                aliases=tuple(str(a) for a in item.get("aliases") or ()),
                summary=" ".join(str(item.get("summary") or "").split())[:200],
                fixed_in=tuple(str(v) for v in item.get("fixed_in") or ()),
                link=item.get("link"),
            )
        )
    return tuple(found)


NOT_SERVED = "does not serve per-version JSON"


def _json(url: str, client: http.Client) -> tuple[int, bytes]:
    with client.get(url, headers={"Accept": "application/json"}) as response:
        return response.status, response.read() if response.status == 200 else b""


def _released(body: bytes, version: str) -> bool:
    from packaging.version import InvalidVersion, Version  # noqa: PLC0415

    try:
        wanted = Version(version)
        return any(Version(v) == wanted for v in json.loads(body).get("releases") or {})
    except (InvalidVersion, ValueError, AttributeError):
        return False


def _advisories(base: str, name: str, version: str, client: http.Client) -> Vulnerabilities:
    project = f"{base.rstrip('/')}/{quote(name)}"
    url = f"{project}/{quote(version)}/json"
    try:
        status, body = _json(url, client)
        if status == 404:
            # Not on PyPI (a private package, a local build), or a mirror without the
            # per-version endpoint: the project's own page tells the two apart.
            status, body = _json(f"{project}/json", client)
            if status == 200 and _released(body, version):
                return f"{redact_url(base)} {NOT_SERVED} (HTTP 404 for {name} {version})"
            return None
        if status != 200:
            return f"{redact_url(url)} answered HTTP {status}"
        return parse_advisories(body)
    except http.TransportError as exc:
        return f"could not read {redact_url(url)}: {exc.reason}"
    except (ValueError, TypeError, AttributeError):
        return f"{redact_url(url)} is not a PyPI JSON API answer"


@dataclass(frozen=True, slots=True, kw_only=True)
class PypiAdvisories:
    """The VulnerabilitySource of PyPI's JSON API (``base``: https://pypi.org/pypi, or the
    ENVLOCK_PYPI_JSON_URL a test or a mirror sets)."""

    base: str = PYPI_JSON
    workers: int = 8

    def vulnerabilities(
        self, wanted: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], Vulnerabilities]:
        if not wanted:
            return {}
        with (
            http.Client(timeout=http.timeout_s(30)) as client,
            ThreadPoolExecutor(max_workers=min(self.workers, len(wanted))) as pool,
        ):
            futures = {
                key: pool.submit(_advisories, self.base, key[0], key[1], client)
                for key in dict.fromkeys(wanted)
            }
            return {key: future.result() for key, future in futures.items()}


def advisory_source(environ: Mapping[str, str]) -> PypiAdvisories:
    return PypiAdvisories(base=environ.get("ENVLOCK_PYPI_JSON_URL") or PYPI_JSON)


def gather(
    pairing: Pairing,
    *,
    kinds: frozenset[Kind],
    lister: WheelFilesReader | None,
    pages: OfferReader,
    auth: AuthFor,
    advisories: VulnerabilitySource | None = None,
    public: Callable[[Artifact], bool] = lambda _artifact: True,
) -> Facts:
    """Read the facts ``kinds`` need for the paired artifacts (and the old wheels they are
    compared with): file lists, index pages, advisories (for artifacts ``public`` admits:
    a private package's name is not sent to PyPI)."""
    wheels: list[Artifact] = []
    wanted_pages: dict[tuple[str, str], None] = {}
    wanted_vulns: dict[tuple[str, str], None] = {}
    for candidate in pairing.candidates:
        artifact = candidate.new
        if Kind.STARTUP_HOOK in kinds and artifact.form == "wheel":
            wheels.append(artifact)
            # not the old file of the same name (other bytes now): its URL serves the new
            # ones, whose list must not be cached under the old sha256
            baseline = candidate.baseline
            if baseline is not None and baseline.form == "wheel" and candidate.drift is None:
                wheels.append(baseline)
        paged = artifact.index and artifact.form in ("wheel", "sdist")
        if paged and kinds & {Kind.YANKED, Kind.FRESH_UPLOAD}:
            wanted_pages[(str(artifact.index), artifact.package)] = None
        if Kind.VULNERABLE in kinds and public(artifact):
            wanted_vulns[(artifact.package, artifact.version.partition("+")[0])] = None
    listed = lister.files(wheels) if lister is not None and wheels else {}
    read = pages.offers(list(wanted_pages), auth) if wanted_pages else {}
    vulns = (
        advisories.vulnerabilities(list(wanted_vulns))
        if advisories is not None and wanted_vulns
        else {}
    )
    return Facts(files=listed, pages=dict(read), vulnerabilities=dict(vulns))


__all__ = [
    "PYPI_JSON",
    "PypiAdvisories",
    "WheelLister",
    "advisory_source",
    "files_cache",
    "gather",
    "list_wheel",
    "parse_advisories",
]
