"""Static PEP 503 indexes shaped like PyPI and like download.pytorch.org/whl/<variant>/, and a
threaded HTTP server on 127.0.0.1 with fault injection, for the hermetic tests."""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import re
import socket
import ssl
import threading
import time
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

from tests.support import catalog
from tests.support.wheels import Dist, build_sdist, build_wheel, metadata_text

Style = Literal["pypi", "pytorch"]
# How a 200 response is spoiled: cut short after its headers promised more; served under a
# content type no index uses; replaced by junk; or (pages only) listed without any hashes.
Mangle = Literal["truncate", "content-type", "garbage", "strip-hashes"]
JSON_TYPE = "application/vnd.pypi.simple.v1+json"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class _File:
    filename: str
    href: str  # root-relative URL path, percent-encoded
    sha256: str
    size: int
    metadata_sha256: str | None
    dist: Dist


def _artifacts(dist: Dist, directory: Path, url_dir: str) -> list[_File]:
    files: list[_File] = []
    metadata = metadata_text(dist).encode()
    for tag in dist.tags:
        path = build_wheel(dist, tag, directory)
        (directory / f"{path.name}.metadata").write_bytes(metadata)
        data = path.read_bytes()
        files.append(
            _File(
                path.name,
                f"{url_dir}/{quote(path.name)}",
                _sha256(data),
                len(data),
                _sha256(metadata),
                dist,
            )
        )
    if dist.sdist:
        path = build_sdist(dist, directory)
        data = path.read_bytes()
        files.append(
            _File(path.name, f"{url_dir}/{quote(path.name)}", _sha256(data), len(data), None, dist)
        )
    return files


def _anchor(file: _File, style: Style) -> str:
    attrs = [f'href="{file.href}#sha256={file.sha256}"']
    if file.metadata_sha256:
        attrs.append(f'data-dist-info-metadata="sha256={file.metadata_sha256}"')
        attrs.append(f'data-core-metadata="sha256={file.metadata_sha256}"')
    if style == "pypi" and file.dist.requires_python:
        attrs.append(f'data-requires-python="{html.escape(file.dist.requires_python)}"')
    if file.dist.yanked:
        reason = file.dist.yanked if isinstance(file.dist.yanked, str) else ""
        attrs.append(f'data-yanked="{html.escape(reason)}"')
    if style == "pytorch" and file.dist.upload_time is not None:
        stamp = file.dist.upload_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        attrs.append(f'data-upload-time="{stamp}"')
    return f"<a {' '.join(attrs)}>{html.escape(file.filename)}</a><br/>"


def _json_file(file: _File) -> dict[str, object]:
    entry: dict[str, object] = {
        "filename": file.filename,
        "url": file.href,
        "hashes": {"sha256": file.sha256},
        "requires-python": file.dist.requires_python,
        "size": file.size,
        "core-metadata": {"sha256": file.metadata_sha256} if file.metadata_sha256 else False,
        "yanked": file.dist.yanked,
    }
    if file.dist.upload_time is not None:
        stamp = file.dist.upload_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        entry["upload-time"] = stamp
    return entry


def write_index(root: Path, url_prefix: str, dists: Iterable[Dist], *, style: Style) -> None:
    """Lay out a PEP 503 index under ``root``, served at ``url_prefix`` (e.g. /whl/cu124)."""
    by_project: dict[str, list[Dist]] = {}
    for dist in dists:
        by_project.setdefault(dist.project, []).append(dist)
    root.mkdir(parents=True, exist_ok=True)
    for project, project_dists in sorted(by_project.items()):
        project_dir = root / project
        project_dir.mkdir(parents=True, exist_ok=True)
        if style == "pypi":
            files_dir, url_dir = project_dir / "files", f"{url_prefix}/{project}/files"
        else:  # download.pytorch.org keeps wheels beside the project folders
            files_dir, url_dir = root, url_prefix
        files = [f for d in project_dists for f in _artifacts(d, files_dir, url_dir)]
        anchors = "\n".join(_anchor(f, style) for f in sorted(files, key=lambda f: f.filename))
        (project_dir / "index.html").write_text(
            f"<!DOCTYPE html>\n<html><body>\n<h1>Links for {project}</h1>\n{anchors}\n"
            "</body></html>\n"
        )
        if style == "pypi":
            versions = sorted({d.version for d in project_dists})
            payload = {
                "meta": {"api-version": "1.1"},
                "name": project,
                "versions": versions,
                "files": [_json_file(f) for f in sorted(files, key=lambda f: f.filename)],
            }
            (project_dir / "index.json").write_text(json.dumps(payload))
    listing = "\n".join(f'<a href="{p}/">{p}</a><br/>' for p in sorted(by_project))
    (root / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{listing}\n</body></html>\n")


@dataclass
class _ServerState:
    mounts: dict[str, tuple[Path, Style]]
    requests: list[str] = field(default_factory=list)
    gets: list[str] = field(default_factory=list)  # paths served whole (GET, no Range header)
    targets: list[str] = field(default_factory=list)  # request targets as sent (with ?query)
    faults: dict[str, int] = field(default_factory=dict)
    auth: str | None = None
    tampered: dict[str, bool] = field(default_factory=dict)  # filename -> resized
    delays: dict[str, float] = field(default_factory=dict)
    mangles: dict[str, Mangle] = field(default_factory=dict)
    ranges: bool = True  # answer Range requests with 206 (False: the whole file, as some do)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def do_GET(self) -> None:
        self._respond(head=False)

    def _send(self, status: int, body: bytes, content_type: str, head: bool) -> None:
        mangle = self._mangle() if status == 200 else None
        if mangle == "strip-hashes":
            if content_type == JSON_TYPE:
                page = json.loads(body)
                for entry in page["files"]:
                    entry["hashes"] = {}
                body = json.dumps(page).encode()
            else:
                body = re.sub(rb"#sha256=[0-9a-f]+", b"", body)
        elif mangle == "content-type":
            content_type = "application/x-envlock-test"
        elif mangle == "garbage":
            body = b"<html><a href=\x00\xff\xfe" + bytes(range(256)) * 4 + b"<<<<</a"
            content_type = "text/html"
        elif mangle == "truncate" and not head:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="fixture"')
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _mangle(self) -> Mangle | None:
        path = unquote(urlsplit(self.path).path)
        with self.server.state.lock:
            return next(
                (m for p, m in self.server.state.mangles.items() if path.startswith(p)), None
            )

    def _respond(self, *, head: bool) -> None:
        state = self.server.state
        path = unquote(urlsplit(self.path).path)
        with state.lock:
            state.requests.append(path)
            state.targets.append(self.path)
            if not head and self.headers.get("Range") is None:
                state.gets.append(path)
            fault = next((s for p, s in state.faults.items() if path.startswith(p)), None)
            auth = state.auth
            tampered = dict(state.tampered)
            delay = next((d for p, d in state.delays.items() if path.startswith(p)), 0.0)
        if delay:
            time.sleep(min(delay, 30.0))  # a stalling server, bounded
        if auth is not None and self.headers.get("Authorization") != auth:
            self._send(401, b"unauthorized", "text/plain", head)
            return
        if fault is not None:
            self._send(fault, f"fault {fault}".encode(), "text/plain", head)
            return
        for prefix, (root, style) in state.mounts.items():
            if path == prefix or path.startswith(prefix + "/"):
                self._serve(root, style, path[len(prefix) :].strip("/"), tampered, head)
                return
        self._send(404, b"not found", "text/plain", head)

    def _serve(
        self, root: Path, style: Style, rel: str, tampered: dict[str, bool], head: bool
    ) -> None:
        missing = 403 if style == "pytorch" else 404
        target = (root / rel).resolve()
        if not target.is_relative_to(root.resolve()):
            self._send(missing, b"forbidden", "text/plain", head)
            return
        if target.is_dir():
            wants_json = JSON_TYPE in self.headers.get("Accept", "")
            page = target / "index.json"
            if style == "pypi" and wants_json and page.exists():
                self._send(200, page.read_bytes(), JSON_TYPE, head)
                return
            page = target / "index.html"
            if page.exists():
                self._send(200, page.read_bytes(), "text/html", head)
                return
        elif target.is_file():
            data = target.read_bytes()
            if target.name in tampered:
                data = _tampered(data, resized=tampered[target.name])
            wanted = byte_range(self.headers.get("Range"), len(data))
            with self.server.state.lock:
                ranges = self.server.state.ranges
            if wanted is not None and ranges and not head:
                start, end = wanted
                self.send_response(206)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                self.send_header("Content-Length", str(end - start + 1))
                self.end_headers()
                self.wfile.write(data[start : end + 1])
                return
            self._send(200, data, "application/octet-stream", head)
            return
        self._send(missing, b"not found", "text/plain", head)


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """One `bytes=a-b`, `bytes=a-` or `bytes=-n` range, clamped; None for none or others."""
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", header or "")
    if match is None or match.groups() == ("", "") or size == 0:
        return None
    first, last = match.groups()
    if not first:
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(size - 1, int(last)) if last else size - 1
    return (start, end) if start <= end else None


def _tampered(data: bytes, *, resized: bool) -> bytes:
    """A republished wheel: still a valid archive with the same files, other bytes. The same
    size (its files stamped with another date), or ``resized`` (8 bytes of zip comment more).
    Anything that is not a zip gets one byte flipped in the middle."""
    try:
        original = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        middle = len(data) // 2
        return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
    out = io.BytesIO()
    with original, zipfile.ZipFile(out, "w") as rebuilt:
        for info in original.infolist():
            stamped = zipfile.ZipInfo(info.filename, date_time=(2001, 2, 3, 4, 5, 6))
            stamped.external_attr = info.external_attr
            stamped.compress_type = info.compress_type
            rebuilt.writestr(stamped, original.read(info))
        if resized:
            rebuilt.comment = b"tampered"
    changed = out.getvalue()
    assert changed != data and (len(changed) != len(data)) is resized
    return changed


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _ServerState
    tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        """HTTPS: the handshake happens here, in the request's own thread (a slow or refusing
        client holds up no one else)."""
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        with self.tls.wrap_socket(request, server_side=True) as wrapped:
            self.RequestHandlerClass(wrapped, client_address, self)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hung up (a timeout, a cut-short body) or refused our certificate is
        expected here: stay quiet instead of printing a traceback into the test's stderr."""


class IndexServer:
    """Serve index roots on 127.0.0.1: ``IndexServer({"/simple": (root, "pypi")})``; HTTPS
    with ``tls`` (a server context, e.g. tests.support.tls.Authority.server_context())."""

    def __init__(
        self, mounts: Mapping[str, tuple[Path, Style]], *, tls: ssl.SSLContext | None = None
    ) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = _ServerState(mounts=dict(mounts))
        self._server.tls = tls
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        scheme = "http" if self._server.tls is None else "https"
        return f"{scheme}://{host!s}:{port}"

    @property
    def requests(self) -> list[str]:
        with self._server.state.lock:
            return list(self._server.state.requests)

    @property
    def targets(self) -> list[str]:
        """Request targets as sent, query string included."""
        with self._server.state.lock:
            return list(self._server.state.targets)

    @property
    def full_downloads(self) -> list[str]:
        """Paths answered with a whole body (a GET without a Range header)."""
        with self._server.state.lock:
            return list(self._server.state.gets)

    def fail(self, path_prefix: str, status: int) -> None:
        with self._server.state.lock:
            self._server.state.faults[path_prefix] = status

    def clear_faults(self) -> None:
        """Undo every fault: statuses, mangles, stalls and tampered files."""
        with self._server.state.lock:
            self._server.state.faults.clear()
            self._server.state.mangles.clear()
            self._server.state.delays.clear()
            self._server.state.tampered.clear()

    def mangle(self, path_prefix: str, how: Mangle) -> None:
        """Spoil successful responses under a path (see Mangle); clear_faults() undoes it."""
        with self._server.state.lock:
            self._server.state.mangles[path_prefix] = how

    def require_auth(self, user: str | None, password: str | None) -> None:
        """Demand HTTP Basic credentials on every request; ``None`` turns that off."""
        value = None
        if user is not None:
            token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
            value = f"Basic {token}"
        with self._server.state.lock:
            self._server.state.auth = value

    def tamper(self, filename: str, *, resized: bool = False) -> None:
        """Serve ``filename`` with different bytes: for a wheel, a valid archive of the same
        files, the same size unless ``resized`` (see _tampered)."""
        with self._server.state.lock:
            self._server.state.tampered[filename] = resized

    def refuse_ranges(self, refuse: bool = True) -> None:
        """Answer Range requests with the whole file (200), as some mirrors do."""
        with self._server.state.lock:
            self._server.state.ranges = not refuse

    def delay(self, path_prefix: str, seconds: float) -> None:
        """Stall responses under a path (at most 30 s each); 0 removes the stall."""
        with self._server.state.lock:
            if seconds:
                self._server.state.delays[path_prefix] = seconds
            else:
                self._server.state.delays.pop(path_prefix, None)

    def untamper(self) -> None:
        with self._server.state.lock:
            self._server.state.tampered.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> IndexServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class StandardIndexes:
    pypi_server: IndexServer
    pytorch_server: IndexServer
    pypi_root: Path  # the served PyPI folder (a test may add a project page to it)

    @property
    def pypi_url(self) -> str:
        return f"{self.pypi_server.base_url}/simple"

    @property
    def pytorch_url(self) -> str:
        return f"{self.pytorch_server.base_url}/whl"

    def close(self) -> None:
        self.pypi_server.close()
        self.pytorch_server.close()


def start_standard_indexes(tmp: Path, *, tls: ssl.SSLContext | None = None) -> StandardIndexes:
    """Build the catalog into ``tmp`` and serve a fake PyPI and a fake PyTorch index (over
    HTTPS with ``tls``)."""
    pypi_root = tmp / "pypi"
    write_index(pypi_root, "/simple", catalog.pypi(), style="pypi")
    torch_root = tmp / "whl"
    for variant, dists in catalog.pytorch_variants().items():
        write_index(torch_root / variant, f"/whl/{variant}", dists, style="pytorch")
    return StandardIndexes(
        pypi_server=IndexServer({"/simple": (pypi_root, "pypi")}, tls=tls),
        pytorch_server=IndexServer({"/whl": (torch_root, "pytorch")}, tls=tls),
        pypi_root=pypi_root,
    )
