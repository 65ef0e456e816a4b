"""What export dockerfile proves about the official image's torch before the build: the locked
wheel's RECORD, read with HTTP Range requests (never the whole wheel), cached by sha256; a
server that ignores Range costs one verified download; an unreadable wheel is said, not hidden.
And the registry protocol `envlock lock` reads base image digests with (Docker Hub's bearer
token flow; the real distribution server without auth is in tests/test_docker.py)."""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote

import pytest
from uv import find_uv_bin

from envlock.errors import IndexUnavailableError
from envlock.io import wheelzip
from envlock.io.registry import image_digest, registry_url
from envlock.io.wheelzip import wheel_record
from tests.conftest import Cli
from tests.support.indexes import IndexServer, StandardIndexes
from tests.support.venvs import make_venv
from tests.support.wheels import Dist, build_wheel
from tests.test_lock_e2e import write_spec


@pytest.fixture
def locked(fixture_env: Path, cli: Cli, indexes: StandardIndexes) -> Iterator[Path]:
    write_spec(fixture_env, packages='six = "*"')
    assert cli("lock").code == 0
    yield fixture_env
    indexes.pytorch_server.refuse_ranges(False)
    indexes.pytorch_server.untamper()


def _expect(project: Path) -> dict[str, Any]:
    """The expectations export wrote into envlock-check.py (its EXPECT_JSON literal)."""
    program = (project / "docker" / "envlock-check.py").read_text()
    literal = program.split("EXPECT_JSON = ", 1)[1].split("\n", 1)[0]
    data = json.loads(ast.literal_eval(literal))
    assert isinstance(data, dict)
    return data


def _torch_wheels(indexes: StandardIndexes, since: int = 0) -> list[str]:
    """Whole-file GETs of a torch wheel, from the ``since``-th whole download on."""
    return [
        p
        for p in indexes.pytorch_server.full_downloads[since:]
        if "/torch-" in p and p.endswith(".whl")
    ]


def test_the_locked_torch_record_is_read_by_range_requests_then_cached(
    locked: Path,
    cli: Cli,
    indexes: StandardIndexes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path / "fresh-cache"))
    before = len(indexes.pytorch_server.requests)
    whole = len(indexes.pytorch_server.full_downloads)
    result = cli("export", "dockerfile", "-o", "docker")
    assert result.code == 0, result.stderr
    assert "RECORD read (range); the build compares files" in result.stderr
    assert not _torch_wheels(indexes, whole), "a whole wheel was downloaded"
    assert len(indexes.pytorch_server.requests) > before
    torch = next(p for p in _expect(locked)["provided"] if p["name"] == "torch")
    assert len(torch["record"]) == 64
    # the second export asks nothing of the index for it
    seen = len(indexes.pytorch_server.requests)
    again = cli("export", "dockerfile", "-o", "docker")
    assert again.code == 0, again.stderr
    assert "RECORD read (cached)" in again.stderr
    assert len(indexes.pytorch_server.requests) == seen


def test_a_server_that_ignores_range_costs_one_verified_download(
    locked: Path,
    cli: Cli,
    indexes: StandardIndexes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path / "fresh-cache"))
    indexes.pytorch_server.refuse_ranges()
    before = len(indexes.pytorch_server.requests)
    result = cli("export", "dockerfile", "-o", "docker")
    assert result.code == 0, result.stderr
    assert "RECORD read (download)" in result.stderr
    asked = [
        p for p in indexes.pytorch_server.requests[before:] if "/torch-" in p and p.endswith(".whl")
    ]
    assert len(asked) == 1  # the first answer was the whole wheel: nothing asked twice


def test_a_wheel_that_is_not_the_locked_one_is_not_used_as_proof(
    locked: Path,
    cli: Cli,
    indexes: StandardIndexes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Downloaded whole, the wheel is checked against the lock's sha256 first: a republished
    wheel proves nothing, and the Dockerfile says its files were not compared."""
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path / "fresh-cache"))
    indexes.pytorch_server.refuse_ranges()
    requirements = cli("export", "requirements").stdout
    torch_file = next(
        unquote(line.split(" @ ")[1].split()[0].rsplit("/", 1)[1])
        for line in requirements.splitlines()
        if line.startswith("torch @ ")
    )
    indexes.pytorch_server.tamper(torch_file)
    result = cli("export", "dockerfile", "-o", "docker")
    assert result.code == 0, result.stderr
    assert "could not be read at export time" in result.stderr
    assert "does not match the sha256 in the lock" in result.stderr
    torch = next(p for p in _expect(locked)["provided"] if p["name"] == "torch")
    assert torch["record"] is None
    assert "does not match the sha256 in the lock" in torch["unread"]


# ---------------------------------------------------------------------------------------
# the registry protocol


class _Registry(BaseHTTPRequestHandler):
    manifest = b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}'
    token = "t0ken"
    seen: ClassVar[list[tuple[str, str]]] = []

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_HEAD(self) -> None:  # no Docker-Content-Digest here: envlock must GET and digest
        type(self).seen.append(("HEAD " + self.path, self.headers.get("Authorization", "")))
        authorized = self.headers.get("Authorization") == f"Bearer {self.token}"
        self.send_response(200 if authorized else 401)
        if not authorized:
            host = f"http://127.0.0.1:{self.server.server_address[1]}"
            self.send_header("WWW-Authenticate", f'Bearer realm="{host}/token",service="fixture"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        type(self).seen.append((self.path, self.headers.get("Authorization", "")))
        host = f"http://127.0.0.1:{self.server.server_address[1]}"
        if self.path.startswith("/token?"):
            self._send(200, json.dumps({"token": self.token}).encode())
        elif self.headers.get("Authorization") != f"Bearer {self.token}":
            self.send_response(401)
            self.send_header(
                "WWW-Authenticate",
                f'Bearer realm="{host}/token",service="fixture",'
                'scope="repository:pytorch/pytorch:pull"',
            )
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/v2/pytorch/pytorch/manifests/2.6.0-cuda12.4-cudnn9-runtime":
            self._send(200, self.manifest, "application/vnd.oci.image.index.v1+json")
        elif self.path == "/v2/pytorch/pytorch/manifests/portal":  # a captive portal's answer
            self._send(200, b"<html>Please log in</html>", "text/html")
        elif self.path == "/v2/pytorch/pytorch/manifests/lying":
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.oci.image.index.v1+json")
            self.send_header("Docker-Content-Digest", "sha256:" + "1" * 64)
            self.send_header("Content-Length", str(len(self.manifest)))
            self.end_headers()
            self.wfile.write(self.manifest)
        else:
            self._send(404, b"{}")

    def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def registry() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Registry.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_bearer_challenge_is_answered_with_an_anonymous_token(registry: str) -> None:
    digest = image_digest("pytorch/pytorch:2.6.0-cuda12.4-cudnn9-runtime", registry=registry)
    # no Docker-Content-Digest header: the digest of the manifest bytes as served
    assert digest == "sha256:" + hashlib.sha256(_Registry.manifest).hexdigest()
    paths = [path for path, _ in _Registry.seen]
    assert paths[0] == "HEAD /v2/pytorch/pytorch/manifests/2.6.0-cuda12.4-cudnn9-runtime"
    assert paths[1].startswith("/token?")
    assert "scope=repository%3Apytorch%2Fpytorch%3Apull" in paths[1]
    assert _Registry.seen[2] == (
        "HEAD /v2/pytorch/pytorch/manifests/2.6.0-cuda12.4-cudnn9-runtime",
        "Bearer t0ken",
    )
    assert paths[-1] == "/v2/pytorch/pytorch/manifests/2.6.0-cuda12.4-cudnn9-runtime"


def test_a_page_that_is_not_a_manifest_is_never_a_digest(registry: str) -> None:
    """A captive portal or proxy answering 200 with HTML used to be digested and pinned."""
    with pytest.raises(IndexUnavailableError, match="text/html, not an image manifest"):
        image_digest("pytorch/pytorch:portal", registry=registry)


def test_a_manifest_whose_bytes_are_not_its_digest_is_refused(registry: str) -> None:
    with pytest.raises(IndexUnavailableError, match="whose bytes are not the digest it names"):
        image_digest("pytorch/pytorch:lying", registry=registry)


def test_a_missing_tag_is_none_and_an_unreachable_registry_an_index_error(registry: str) -> None:
    assert image_digest("pytorch/pytorch:9.9.9-nope", registry=registry) is None
    with pytest.raises(IndexUnavailableError):
        image_digest("pytorch/pytorch:2.6.0", registry="http://127.0.0.1:9", timeout=2)


def test_the_registry_is_docker_hub_unless_named_and_off_means_never() -> None:
    assert registry_url({}) == "https://registry-1.docker.io"
    assert registry_url({"ENVLOCK_DOCKER_REGISTRY": "http://mirror:5000/"}) == "http://mirror:5000"
    assert registry_url({"ENVLOCK_DOCKER_REGISTRY": "off"}) is None


# ---------------------------------------------------------------------------------------
# envlock-check.py base, run in a venv standing in for the image's Python


def _image_with(tmp_path: Path, torch: Dist) -> Path:
    """A venv holding ``torch`` installed by uv from a wheel, as an image's Python would."""
    python = make_venv(tmp_path / "image")
    wheel = build_wheel(torch, "cp311-cp311-manylinux_2_28_x86_64", tmp_path / "w")
    subprocess.run(
        [find_uv_bin(), "pip", "install", "--no-config", "--no-deps", "--python", str(python),
         str(wheel)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return python


def _base_check(locked: Path, python: Path) -> subprocess.CompletedProcess[str]:
    program = locked / "docker" / "envlock-check.py"
    return subprocess.run(
        [str(python), str(program), "base"], capture_output=True, text=True, check=False
    )


def _only_torch(locked: Path) -> None:
    """Keep the check to torch (the stand-in image has no torchvision)."""
    program = locked / "docker" / "envlock-check.py"
    text = program.read_text()
    literal = text.split("EXPECT_JSON = ", 1)[1].split("\n", 1)[0]
    expect = json.loads(ast.literal_eval(literal))
    expect["provided"] = [p for p in expect["provided"] if p["name"] == "torch"]
    program.write_text(text.replace(literal, repr(json.dumps(expect))))


def test_the_same_version_from_another_wheel_is_said_to_be_unproven(
    locked: Path, cli: Cli, tmp_path: Path
) -> None:
    """An image whose torch is 2.6.0 from another index (another local label, so another
    wheel: PyPI's torch-2.6.0 vs the image's torch-2.6.0+cu126) cannot be compared file by
    file; the build says so instead of failing on a RECORD that was never going to match."""
    assert cli("export", "dockerfile", "-o", "docker").code == 0
    _only_torch(locked)
    other = Dist(
        name="torch",
        version="2.6.0+other",
        tags=("cp311-cp311-manylinux_2_28_x86_64",),
        files=(("torch/version.py", 'cuda = "12.6"\n'),),
    )
    ran = _base_check(locked, _image_with(tmp_path, other))
    assert ran.returncode == 0, ran.stderr
    assert "the image installed another wheel (2.6.0+other, the lock 2.6.0+cu126)" in ran.stdout


def test_the_same_wheel_name_with_other_files_fails(locked: Path, cli: Cli, tmp_path: Path) -> None:
    assert cli("export", "dockerfile", "-o", "docker").code == 0
    _only_torch(locked)
    swapped = Dist(
        name="torch",
        version="2.6.0+cu126",
        tags=("cp311-cp311-manylinux_2_28_x86_64",),
        files=(("torch/_extra.py", "x = 1\n"),),
    )
    ran = _base_check(locked, _image_with(tmp_path, swapped))
    assert ran.returncode == 1
    assert "is not the locked build: its files differ from the RECORD of" in ran.stderr


# ---------------------------------------------------------------------------------------
# the wheel reader against hostile servers


@pytest.fixture
def files_server(tmp_path: Path) -> Iterator[tuple[IndexServer, Path]]:
    root = tmp_path / "files"
    root.mkdir()
    server = IndexServer({"/f": (root, "pypi")})
    try:
        yield server, root
    finally:
        server.close()


def _record_of(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/RECORD"))
        return archive.read(name).decode()


def test_a_record_read_from_one_server_is_not_the_proof_for_another(
    files_server: tuple[IndexServer, Path], tmp_path: Path
) -> None:
    """Bytes read by Range are not checked against the lock's sha256: a lock naming the real
    torch hash at an attacker's URL must not fix, in the shared cache, what every other
    project's export proves (the cache was keyed by sha256 alone)."""
    server, root = files_server
    real = build_wheel(Dist(name="torch", version="2.6.0"), "py3-none-any", root / "real")
    fake = build_wheel(
        Dist(name="torch", version="2.6.0", files=(("torch/evil.py", "x = 1\n"),)),
        "py3-none-any",
        root / "fake",
    )
    sha = hashlib.sha256(real.read_bytes()).hexdigest()
    cache = tmp_path / "records"
    base = f"{server.base_url}/f"
    poisoned, how = wheel_record(f"{base}/fake/{fake.name}", sha256=sha, cache=cache)
    assert (poisoned, how) == (_record_of(fake), "range")
    proof, how = wheel_record(f"{base}/real/{real.name}", sha256=sha, cache=cache)
    assert (proof, how) == (_record_of(real), "range")


def test_a_zip_bomb_record_is_refused_not_unpacked(
    files_server: tuple[IndexServer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, root = files_server
    monkeypatch.setattr(wheelzip, "_MAX_READ", 1 << 20)
    bomb = root / "torch-2.6.0-py3-none-any.whl"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("torch-2.6.0.dist-info/RECORD", b"a," * (4 << 20))
    with pytest.raises(IndexUnavailableError, match=r"could not be read as a wheel: .*unpacks"):
        wheel_record(
            f"{server.base_url}/f/{bomb.name}", sha256="0" * 64, cache=tmp_path / "records"
        )
    assert not list(tmp_path.glob("records/*"))  # nothing cached


def test_an_archive_zipfile_cannot_read_is_an_index_error(
    files_server: tuple[IndexServer, Path], tmp_path: Path
) -> None:
    server, root = files_server
    broken = root / "torch-2.6.0-py3-none-any.whl"
    with zipfile.ZipFile(broken, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("torch-2.6.0.dist-info/RECORD", b"torch/__init__.py,,\n" * 100)
    data = bytearray(broken.read_bytes())
    data[40:60] = b"\xff" * 20  # the member's bytes, not its central directory entry
    broken.write_bytes(bytes(data))
    with pytest.raises(IndexUnavailableError, match="could not be read as a wheel"):
        wheel_record(
            f"{server.base_url}/f/{broken.name}", sha256="0" * 64, cache=tmp_path / "records"
        )
