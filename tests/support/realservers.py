"""Real index software on 127.0.0.1 for tests/test_real_indexes.py: pypiserver (PEP 503 HTML,
HTTP Basic auth from an htpasswd file, files under /packages/, outside /simple/; one instance
per hash fragment: sha256, md5, none) and devpi-server (PEP 691 JSON; a derived index whose
pages list its base index's files under the base's +f/, and a mirror of the fixture PyPI).

All serve wheels the tests build (tests.support.catalog), start once per session (per xdist
worker) on free ports, are waited for with a bounded timeout and stopped by their pid. A fixture
skips, naming the package, only where that server is not installed; a server that does not
start is an error, with its log."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support import catalog
from tests.support.indexes import StandardIndexes
from tests.support.wheels import Dist, build_sdist, build_wheel

READY_TIMEOUT_S = 60.0
# ':' '@' '&' and '/' must be percent-encoded in a URL's userinfo: a redaction that only knows
# the raw value would miss the form that travels in ENVLOCK_PYPI_INDEX_URL.
PYPI_USER = "alice"
PYPI_PASSWORD = "hunter2:@Tr0ub&4dor/s3cret"
DEVPI_USER = "tester"
DEVPI_PASSWORD = "devpi-Upl0ad-pw"

# What a CPU torch 2.6 from the PyTorch fixture needs from the PyPI side, and two small packages
# (one with a dotted name, which every index spells differently).
TORCH_DEPS = ("filelock", "typing-extensions", "sympy", "mpmath")
EXTRAS = ("six", "ruamel-yaml")


def secret_forms(user: str, password: str) -> tuple[str, ...]:
    """Every spelling of a credential that must not be written or shown: as typed, as it sits
    percent-encoded in a URL, and as the Basic Authorization header carries it."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return (password, quote(password, safe=""), token)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def dists(names: Iterable[str]) -> list[Dist]:
    """The catalog's PyPI distributions of these projects."""
    wanted = set(names)
    return [d for d in catalog.pypi() if d.project in wanted]


def build_files(selection: Iterable[Dist], directory: Path) -> dict[str, str]:
    """Write every wheel (and sdist) of ``selection`` into ``directory``: file name -> sha256."""
    built: dict[str, str] = {}
    for dist in selection:
        paths = [build_wheel(dist, tag, directory) for tag in dist.tags]
        if dist.sdist:
            paths.append(build_sdist(dist, directory))
        for path in paths:
            built[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return built


@dataclass
class Process:
    """A server process the tests started: its pid is the only handle used to stop it."""

    popen: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM its process group (started as its own session), then SIGKILL after 10 s."""
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            if self.popen.poll() is not None:
                return
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=grace)


def _spawn(argv: list[str], base_url: str, log: Path) -> Process:
    with log.open("wb") as sink:  # the child keeps its own copy of the descriptor
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: stop() reaches whatever it forks
            env={**os.environ, "NO_PROXY": "*", "no_proxy": "*"},
        )
    return Process(popen, base_url, log)


class _PortTakenError(RuntimeError):
    pass


def _wait_ready(process: Process, path: str, timeout: float) -> None:
    """Poll ``path`` until it answers 200; fail (and stop the server) on exit or timeout."""
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while True:
        if process.popen.poll() is not None:
            tail = process.tail()
            error = _PortTakenError if "Address already in use" in tail else RuntimeError
            raise error(
                f"{process.base_url}: the server exited with {process.popen.returncode}:\n{tail}"
            )
        try:
            with opener.open(process.base_url + path, timeout=2) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            process.stop()
            raise RuntimeError(
                f"{process.base_url}: not ready after {timeout:.0f} s:\n{process.tail()}"
            )
        time.sleep(0.1)


def serve(
    argv_for: Callable[[int], list[str]], log: Path, ready_path: str, *, attempts: int = 3
) -> Process:
    """Start a server on a free port and wait (READY_TIMEOUT_S at most) until ``ready_path``
    answers 200. A port another process took between free_port() and the server's bind
    (xdist workers start servers at the same time) is retried on another port."""
    for attempt in range(attempts):
        port = free_port()
        process = _spawn(argv_for(port), f"http://127.0.0.1:{port}", log)
        try:
            _wait_ready(process, ready_path, READY_TIMEOUT_S)
        except _PortTakenError:
            if attempt == attempts - 1:
                raise
            continue
        return process
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------
# pypiserver


@dataclass(frozen=True, slots=True)
class PypiServer:
    process: Process
    packages: Path
    files: dict[str, str]  # file name -> sha256 of what was put in the packages folder
    user: str = PYPI_USER
    password: str = PYPI_PASSWORD

    @property
    def url(self) -> str:
        """The index URL without credentials (what a lock may hold)."""
        return f"{self.process.base_url}/simple"

    def url_with(self, password: str) -> str:
        """The index URL with user:password@, percent-encoded as a URL must carry them."""
        host = self.process.base_url.removeprefix("http://")
        return f"http://{quote(self.user, safe='')}:{quote(password, safe='')}@{host}/simple"


def _htpasswd(path: Path, user: str, password: str) -> None:
    """Write the htpasswd line with passlib in a child process: passlib imports `crypt`, which
    warns (errors here) on 3.11+, and nothing of pypiserver's belongs in the test process."""
    program = (
        "import sys; from passlib.apache import HtpasswdFile; "
        "f = HtpasswdFile(sys.argv[1], new=True, default_scheme='apr_md5_crypt'); "
        "f.set_password(sys.argv[2], sys.stdin.read()); f.save()"
    )
    subprocess.run(
        [sys.executable, "-W", "ignore", "-c", program, str(path), user],
        input=password,
        text=True,
        check=True,
        capture_output=True,
    )


def start_pypiserver(
    root: Path, selection: Iterable[Dist], *, hash_algo: str = "sha256"
) -> PypiServer:
    """pypiserver demanding Basic auth for listing and downloading, its links carrying
    ``hash_algo`` fragments (md5 was its default until 2.x; "off": none), no fallback to
    pypi.org."""
    packages = root / "packages"
    files = build_files(selection, packages)
    htpasswd = root / "htpasswd"
    _htpasswd(htpasswd, PYPI_USER, PYPI_PASSWORD)
    access = ["--authenticate", "download,list,update", "--passwords", str(htpasswd)]

    def argv_for(port: int) -> list[str]:
        argv = [sys.executable, "-m", "pypiserver", "run", "--host", "127.0.0.1"]
        argv += ["--port", str(port), *access]
        argv += ["--disable-fallback", "--hash-algo", hash_algo, "--server", "auto"]
        return [*argv, "--health-endpoint", "/health", str(packages)]

    process = serve(argv_for, root / "pypiserver.log", "/health")
    return PypiServer(process, packages, files)


# ---------------------------------------------------------------------------------------
# devpi-server


@dataclass(frozen=True, slots=True)
class DevpiServer:
    process: Process
    base_files: dict[str, str]  # uploaded to the base index
    derived_files: dict[str, str]  # uploaded to the derived one
    user: str = DEVPI_USER
    base: str = "base"
    derived: str = "derived"  # bases = [user/base]
    mirror: str = "mirror"  # a mirror of the fixture PyPI (files fetched on first request)
    on_mirror: str = "on-mirror"  # bases = [user/mirror]: devpi in front of PyPI

    def index_url(self, index: str) -> str:
        return f"{self.process.base_url}/{self.user}/{index}/+simple"


def _devpi_call(
    url: str, *, method: str, body: bytes, content_type: str, token: str | None = None
) -> dict[str, object]:
    """One devpi API request; ``token`` is the X-Devpi-Auth value from _login (checking it
    is cheap, unlike a password: devpi hashes those with argon2 on every request)."""
    headers = {"Content-Type": content_type, "Accept": "application/json"}
    if token is not None:
        headers["X-Devpi-Auth"] = token
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            assert 200 <= response.status < 300, (url, response.status)
            data = response.read()
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"devpi {method} {url}: {exc.code} {exc.read()[:500]!r}") from None
    answer = json.loads(data) if data.startswith(b"{") else {}
    return answer if isinstance(answer, dict) else {}


def _json_call(
    process: Process, path: str, method: str, payload: object, token: str | None
) -> dict[str, object]:
    return _devpi_call(
        f"{process.base_url}{path}",
        method=method,
        body=json.dumps(payload).encode(),
        content_type="application/json",
        token=token,
    )


def _login(process: Process) -> str:
    """Create the user, log in once: the X-Devpi-Auth header value for later requests."""
    user = {"password": DEVPI_PASSWORD, "email": "tester@example.invalid"}
    _json_call(process, f"/{DEVPI_USER}", "PUT", user, None)
    login = {"user": DEVPI_USER, "password": DEVPI_PASSWORD}
    result = _json_call(process, "/+login", "POST", login, None)["result"]
    assert isinstance(result, dict), result
    return base64.b64encode(f"{DEVPI_USER}:{result['password']}".encode()).decode()


def _upload(
    process: Process, token: str, index: str, directory: Path, names: Iterable[str]
) -> None:
    """The upload protocol twine and `devpi upload` speak: a multipart POST to the index."""
    for name in names:
        path = directory / name
        project, version = name.split("-")[:2]
        if name.endswith(".tar.gz"):
            version = name.removesuffix(".tar.gz").rsplit("-", 1)[1]
        boundary = uuid.uuid4().hex
        parts = []
        for field, value in ((":action", "file_upload"), ("name", project), ("version", version)):
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n'
                f"{value}\r\n".encode()
            )
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
            f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            + path.read_bytes()
            + b"\r\n"
        )
        parts.append(f"--{boundary}--\r\n".encode())
        _devpi_call(
            f"{process.base_url}/{DEVPI_USER}/{index}/",
            method="POST",
            body=b"".join(parts),
            content_type=f"multipart/form-data; boundary={boundary}",
            token=token,
        )


def start_devpi(
    root: Path,
    base_selection: Iterable[Dist],
    derived_selection: Iterable[Dist],
    *,
    mirror_of: str,
) -> DevpiServer:
    """devpi-server with no root/pypi mirror (it never reaches pypi.org) and a user with four
    indexes: ``base`` and ``derived`` (which inherits from it), each holding uploaded files;
    ``mirror``, a mirror of the PEP 503 index at ``mirror_of``, and ``on-mirror`` on top."""
    serverdir = root / "serverdir"
    entry = "import sys; from devpi_server.{0} import {1}; sys.exit({1}())"
    init = [sys.executable, "-c", entry.format("init", "init"), "--serverdir", str(serverdir)]
    init += ["--no-root-pypi", "--root-passwd", uuid.uuid4().hex]
    done = subprocess.run(init, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"devpi-init failed:\n{done.stdout}{done.stderr}")
    secret = root / "secret"
    secret.write_text(uuid.uuid4().hex * 2)
    secret.chmod(0o600)

    def argv_for(port: int) -> list[str]:
        argv = [sys.executable, "-c", entry.format("main", "main"), "--serverdir", str(serverdir)]
        argv += ["--host", "127.0.0.1", "--port", str(port), "--secretfile", str(secret)]
        # devpi derives its token key from the secret with argon2 at 512 MiB x 16 passes (5 s
        # of start-up); these options, hidden from --help, are what devpi's own tests lower.
        argv += ["--threads", "8", "--argon2-memory-cost", "8", "--argon2-time-cost", "1"]
        return [*argv, "--argon2-parallelism", "1"]

    process = serve(argv_for, root / "devpi.log", "/+api")
    try:
        token = _login(process)
        files = root / "files"
        built = {}
        for index, selection, bases in (
            ("base", base_selection, []),
            ("derived", derived_selection, [f"{DEVPI_USER}/base"]),
        ):
            config = {"type": "stage", "bases": bases, "volatile": True}
            _json_call(process, f"/{DEVPI_USER}/{index}", "PUT", config, token)
            built[index] = build_files(selection, files / index)
            _upload(process, token, index, files / index, sorted(built[index]))
        mirror = {"type": "mirror", "mirror_url": mirror_of.rstrip("/") + "/"}
        _json_call(process, f"/{DEVPI_USER}/mirror", "PUT", mirror, token)
        on_mirror = {"type": "stage", "bases": [f"{DEVPI_USER}/mirror"]}
        _json_call(process, f"/{DEVPI_USER}/on-mirror", "PUT", on_mirror, token)
    except BaseException:
        process.stop()
        raise
    return DevpiServer(process, built["base"], built["derived"])


# ---------------------------------------------------------------------------------------
# session fixtures (each xdist worker starts its own servers on its own ports)


@pytest.fixture(scope="session")
def pypiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PypiServer]:
    """pypiserver with Basic auth, serving the torch dependencies and EXTRAS."""
    yield from _pypiserver_fixture(tmp_path_factory, "sha256")


def _require(module: str, *, reason: str) -> None:
    """Skip unless ``module`` is installed, without importing it here: pypiserver's bundled
    bottle installs an import hook at import time that breaks later imports in this process."""
    if importlib.util.find_spec(module) is None:
        pytest.skip(reason)


def _pypiserver_fixture(
    tmp_path_factory: pytest.TempPathFactory, hash_algo: str
) -> Iterator[PypiServer]:
    _require("pypiserver", reason="pypiserver is not installed (the test extra)")
    _require("passlib", reason="passlib (pypiserver's htpasswd) is not installed")
    server = start_pypiserver(
        tmp_path_factory.mktemp(f"pypiserver-{hash_algo}"),
        dists(TORCH_DEPS + EXTRAS),
        hash_algo=hash_algo,
    )
    try:
        yield server
    finally:
        server.process.stop()


@pytest.fixture(scope="session")
def pypiserver_md5(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PypiServer]:
    """pypiserver with Basic auth whose links carry only md5 fragments (its old default)."""
    yield from _pypiserver_fixture(tmp_path_factory, "md5")


@pytest.fixture(scope="session")
def pypiserver_unhashed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PypiServer]:
    """pypiserver with Basic auth whose links carry no hash at all (--hash-algo off)."""
    yield from _pypiserver_fixture(tmp_path_factory, "off")


@pytest.fixture(scope="session")
def devpi(
    tmp_path_factory: pytest.TempPathFactory, indexes: StandardIndexes
) -> Iterator[DevpiServer]:
    """devpi-server: ``base`` holds the torch dependencies and six, ``derived`` (bases =
    base) holds ruamel.yaml only, so a lock of ``derived`` needs both; ``on-mirror`` sees the
    fixture PyPI through devpi's mirror."""
    _require("devpi_server", reason="devpi-server is not installed (the test extra)")
    server = start_devpi(
        tmp_path_factory.mktemp("devpi"),
        dists((*TORCH_DEPS, "six")),
        dists(["ruamel-yaml"]),
        mirror_of=indexes.pypi_url,
    )
    try:
        yield server
    finally:
        server.process.stop()
