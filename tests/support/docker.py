"""A private Docker engine for the tests, and look-alikes of the official pytorch/pytorch images.

No registry is reachable from the test machines and no engine is installed by default, so the
engine is a `dockerd` of our own (apt-get install docker.io mmdebstrap; CI does this) on a socket
in a state directory, and the base images are Debian root file systems built with mmdebstrap
(see shared/reference/docker-test-recipe.md). The state directory is kept between runs: it is
the image cache.

One engine serves every pytest-xdist worker of a run: the first worker to need it starts it, each
worker registers itself in the state file, the last to leave stops it, all under a flock. An
engine left running by an earlier, killed run is ours (its pid is in our state file and its
command line names our data root): it is stopped by that pid and a fresh one started.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

STATE_DIR = Path(
    os.environ.get("ENVLOCK_TEST_DOCKER_DIR") or Path.home() / ".cache" / "envlock-tests" / "docker"
)
# CI sets this: a missing engine is then a failure, not a skip.
REQUIRED = os.environ.get("ENVLOCK_TEST_REQUIRE_DOCKER") == "1"
SUITE = "bookworm"  # Python 3.11, as the fixture wheels (cp311) need
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_RUN_ID = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex
# The dockerd this process started, by pid: kept so that it is waited for, never garbage.
_STARTED: dict[int, subprocess.Popen[bytes]] = {}


class EngineUnavailableError(Exception):
    """The engine cannot start here (the reason is the message)."""


def why_unavailable() -> str | None:
    """Why no private engine can run on this machine, or None when it can."""
    missing = [tool for tool in ("dockerd", "docker", "mmdebstrap") if shutil.which(tool) is None]
    if missing:
        return (
            f"{', '.join(missing)} not installed "
            "(apt-get install -y --no-install-recommends docker.io mmdebstrap)"
        )
    if os.geteuid() != 0:
        return "a private dockerd needs root"
    return None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_ours(pid: int, program: bytes, marker: Path) -> bool:
    """Is ``pid`` ``program`` started with ``marker`` (our state directory's file) as an
    argument: a process of ours, not one that took the pid over?"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and cmdline[0].endswith(program) and str(marker).encode() in cmdline


def _is_our_dockerd(pid: int, data_root: Path) -> bool:
    return _is_ours(pid, b"dockerd", data_root)


@dataclass(frozen=True, slots=True)
class Built:
    code: int
    output: str  # build log, ANSI colour codes removed

    def failure(self) -> str:
        """The failed step's useful line (recipe section 5), or ''."""
        for line in self.output.splitlines():
            if re.search(r"error|Error|not found|not unique|AssertionError", line):
                return line.strip()
        return ""


class Engine:
    """The docker client, pointed at our private engine; ``registry`` is the URL of the
    private registry (docker-registry, the CNCF distribution server) the engine uses as its
    Docker Hub mirror, so an image pushed there is what `FROM pytorch/pytorch:…@sha256:…`
    pulls. None when docker-registry is not installed."""

    def __init__(self, root: Path, registry: str | None = None) -> None:
        self.root = root
        self.registry = registry
        self._held = False
        self.env = {
            "PATH": os.environ.get("PATH", PATH),
            "HOME": str(root),
            "DOCKER_HOST": f"unix://{root / 'sock'}",
            "DOCKER_BUILDKIT": "0",  # the legacy builder: no buildx plugin here
            "DOCKER_CONFIG": str(root / "client"),
        }

    def docker(
        self, *args: str, timeout: float = 300, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["docker", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {done.stderr or done.stdout}")
        return done

    def has_image(self, name: str) -> bool:
        return self.docker("image", "inspect", name, check=False).returncode == 0

    def tag(self, source: str, name: str) -> None:
        self.docker("tag", source, name)

    def build(self, context: Path, tag: str, *, timeout: float = 300) -> Built:
        done = self.docker(
            "build",
            "--network",
            "host",  # no bridge here: a build step reaches the fixture index on 127.0.0.1
            "--force-rm",
            "--rm",
            "--no-cache",  # every step runs and prints: the tests read what each one said
            "-t",
            tag,
            str(context),
            timeout=timeout,
            check=False,
        )
        return Built(done.returncode, _ANSI.sub("", done.stdout + done.stderr))

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """No other test's build runs meanwhile (they share the FROM names' tags and the
        build cache). Re-entrant within a process."""
        if self._held:
            yield
            return
        with _locked(self.root / "from.lock"):
            self._held = True
            try:
                yield
            finally:
                self._held = False

    @contextlib.contextmanager
    def as_base(self, image: str, name: str) -> Iterator[None]:
        """``image`` tagged as ``name`` (the name a Dockerfile's FROM uses) for the duration:
        other builds that tag the same name (xdist workers, another test run) wait."""
        with self.exclusive():
            self.tag(image, name)
            yield

    def run(
        self, image: str, *command: str, user: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        extra = ["--user", user] if user else []
        return self.docker(
            "run", "--rm", "--network", "host", *extra, image, *command,
            timeout=timeout, check=False,
        )  # fmt: skip

    def rmi(self, *names: str) -> None:
        """Remove images; under the build lock, since removing an image also removes cache
        layers that a build running meanwhile may be standing on."""
        if names:
            with self.exclusive():
                self.docker("rmi", "-f", *names, check=False)


class _Daemon:
    """Start/stop of the shared dockerd, counted per xdist worker under a flock."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / "owner.json"
        self.lock = root / "engine.lock"
        self.me = f"{_RUN_ID}:{os.getpid()}"

    def _read(self) -> dict[str, object]:
        try:
            data = json.loads(self.state.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _stop_registry(self, pid: int) -> None:
        if _alive(pid) and _is_ours(pid, b"docker-registry", self.root / "registry.yml"):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                _reap(pid)
                time.sleep(0.05)

    def _stop_pid(self, pid: int) -> None:
        if not _alive(pid) or not _is_our_dockerd(pid, self.root / "data"):
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while _alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            _reap(pid)
        netns = self.root / "exec" / "netns" / "default"
        if netns.exists():
            subprocess.run(["umount", str(netns)], capture_output=True, check=False)

    def _start_registry(self) -> tuple[int, int] | None:
        """docker-registry on a free 127.0.0.1 port: (pid, port), or None if not installed."""
        if shutil.which("docker-registry") is None:
            return None
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        config = self.root / "registry.yml"
        config.write_text(
            "version: 0.1\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.root / 'registry'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
            "log:\n  level: warn\n"
        )
        log = (self.root / "registry.log").open("wb")
        process = subprocess.Popen(
            ["docker-registry", "serve", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        _STARTED[process.pid] = process
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = (self.root / "registry.log").read_text(errors="replace")[-2000:]
                raise EngineUnavailableError(f"docker-registry exited: {tail}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return process.pid, port
            time.sleep(0.1)
        raise EngineUnavailableError("docker-registry did not listen within 20 s")

    def _start(self, mirror: str | None) -> int:
        (self.root / "pid").unlink(missing_ok=True)
        (self.root / "sock").unlink(missing_ok=True)
        log = (self.root / "dockerd.log").open("wb")
        process = subprocess.Popen(
            [
                "dockerd",
                "--data-root",
                str(self.root / "data"),
                "--exec-root",
                str(self.root / "exec"),
                "--pidfile",
                str(self.root / "pid"),
                "-H",
                f"unix://{self.root / 'sock'}",
                "--iptables=false",
                "--bridge=none",
                "--default-ulimit",
                "nofile=20000:20000",
                "--default-ulimit",
                "nproc=32768:32768",
                *([f"--registry-mirror={mirror}"] if mirror else []),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        _STARTED[process.pid] = process
        engine = Engine(self.root)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = (self.root / "dockerd.log").read_text(errors="replace")[-2000:]
                raise EngineUnavailableError(f"dockerd exited with {process.returncode}: {tail}")
            if engine.docker("version", timeout=10, check=False).returncode == 0:
                return process.pid
            time.sleep(0.25)
        self._stop_pid(process.pid)
        raise EngineUnavailableError("dockerd did not answer within 30 s (see dockerd.log)")

    def acquire(self) -> Engine:
        with _locked(self.lock):
            data = self._read()
            pid, registry_pid, port = data.get("pid"), data.get("registry-pid"), data.get("port")
            users = data.get("users")
            users = list(users) if isinstance(users, list) else []
            running = isinstance(pid, int) and _is_our_dockerd(pid, self.root / "data")
            # Users are "run:pid" of the pytest processes using it; a live one (this run's
            # workers, or another run at the same time) keeps the engine, a dead one does not.
            users = [u for u in users if _alive(_pid_of(u))]
            if not (running and (users or data.get("run") == _RUN_ID)):
                if isinstance(pid, int):
                    self._stop_pid(pid)  # an engine of an earlier (killed) run
                if isinstance(registry_pid, int):
                    self._stop_registry(registry_pid)
                started = self._start_registry()
                registry_pid, port = started if started else (None, None)
                pid = self._start(f"http://127.0.0.1:{port}" if port else None)
                users = []
            users.append(self.me)
            self.state.write_text(
                json.dumps(
                    {
                        "run": _RUN_ID,
                        "pid": pid,
                        "registry-pid": registry_pid,
                        "port": port,
                        "users": users,
                    }
                )
            )
        return Engine(self.root, f"http://127.0.0.1:{port}" if port else None)

    def release(self) -> None:
        with _locked(self.lock):
            data = self._read()
            listed = data.get("users")
            users = [u for u in listed if u != self.me] if isinstance(listed, list) else []
            pid, registry_pid = data.get("pid"), data.get("registry-pid")
            if users:
                self.state.write_text(json.dumps({**data, "users": users}))
                return
            if isinstance(pid, int):
                Engine(self.root).docker("image", "prune", "-f", check=False)
                self._stop_pid(pid)
            if isinstance(registry_pid, int):
                self._stop_registry(registry_pid)
            self.state.unlink(missing_ok=True)


def _pid_of(user: object) -> int:
    text = str(user).rpartition(":")[2]
    return int(text) if text.isdigit() and int(text) > 0 else -1


def _reap(pid: int) -> None:
    process = _STARTED.get(pid)
    if process is not None:
        if process.poll() is not None:
            del _STARTED[pid]
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


@contextlib.contextmanager
def private_engine(root: Path = STATE_DIR) -> Iterator[Engine]:
    """The shared private engine for this test run (EngineUnavailableError if it cannot start)."""
    reason = why_unavailable()
    if reason is not None:
        raise EngineUnavailableError(reason)
    root.mkdir(parents=True, exist_ok=True)
    daemon = _Daemon(root)
    engine = daemon.acquire()
    try:
        yield engine
    finally:
        daemon.release()


# ---------------------------------------------------------------------------------------
# base images


def _rootfs(root: Path) -> Path:
    """A Debian root file system with python3, venv, pip and useradd (cached: ~30 s once)."""
    tarball = root / f"rootfs-{SUITE}.tar"
    with _locked(root / "rootfs.lock"):
        if not tarball.exists():
            partial = tarball.with_suffix(".partial.tar")
            subprocess.run(
                [
                    "mmdebstrap",
                    "--quiet",
                    "--variant=essential",
                    "--include=python3,python3-venv,python3-pip,passwd",
                    "--dpkgopt=path-exclude=/usr/share/doc/*",
                    "--dpkgopt=path-exclude=/usr/share/man/*",
                    SUITE,
                    str(partial),
                ],
                check=True,
                capture_output=True,
                timeout=600,
            )
            partial.rename(tarball)
    return tarball


def rootfs_image(engine: Engine) -> str:
    name = f"envlock-test/rootfs:{SUITE}"
    with _locked(engine.root / "rootfs-image.lock"):
        if not engine.has_image(name):
            engine.docker(
                "import",
                "-c",
                f"ENV PATH={PATH}",  # an imported image has no environment at all
                "-c",
                'CMD ["bash"]',
                str(_rootfs(engine.root)),
                name,
                timeout=600,
            )
    return name


# Each layout's recipe, FROM the rootfs; {wheels} is where the image's own packages are copied.
LAYOUTS: dict[str, str] = {
    # pytorch/pytorch up to ~2.9: conda (later Miniforge) at /opt/conda, python and pip on PATH.
    "conda": """\
COPY wheels/ /tmp/w/
RUN python3 -m venv /opt/conda && /opt/conda/bin/pip install -q --no-index --no-deps /tmp/w/*.whl \\
 && rm -rf /tmp/w
ENV PATH=/opt/conda/bin:{path}
WORKDIR /workspace
""",
    # The same, its torch installed by conda: no RECORD, INSTALLER says conda.
    "conda-norecord": """\
COPY wheels/ /tmp/w/
RUN python3 -m venv /opt/conda && /opt/conda/bin/pip install -q --no-index --no-deps /tmp/w/*.whl \\
 && rm -rf /tmp/w /opt/conda/lib/python3.11/site-packages/torch-*.dist-info/RECORD \\
 && for d in /opt/conda/lib/python3.11/site-packages/torch-*.dist-info; do echo conda > "$d/INSTALLER"; done
ENV PATH=/opt/conda/bin:{path}
WORKDIR /workspace
""",
    # pytorch/pytorch since 2.10: Ubuntu 24.04's system Python, packages in dist-packages, the
    # PEP 668 marker, user ubuntu holding uid 1000, and no `python` (only python3).
    "system": """\
COPY wheels/ /tmp/w/
RUN pip3 install -q --no-index --no-deps --break-system-packages /tmp/w/*.whl && rm -rf /tmp/w \\
 && test -f /usr/lib/python3.11/EXTERNALLY-MANAGED \\
 && useradd --create-home --uid 1000 --shell /bin/bash ubuntu
WORKDIR /workspace
""",
    # The same with python-is-python3 (pytorch's 2026 `official` stage installs it).
    "system-python": """\
COPY wheels/ /tmp/w/
RUN pip3 install -q --no-index --no-deps --break-system-packages /tmp/w/*.whl && rm -rf /tmp/w \\
 && test -f /usr/lib/python3.11/EXTERNALLY-MANAGED \\
 && useradd --create-home --uid 1000 --shell /bin/bash ubuntu \\
 && ln -s python3 /usr/bin/python
WORKDIR /workspace
""",
    # python:3.X-slim: a CPython of its own in /usr/local (python and python3 in /usr/local/bin,
    # site-packages under /usr/local/lib, no PEP 668 marker: here a venv rooted at /usr/local),
    # no torch, and a group (not a user) holding gid 1000.
    "slim": """\
RUN python3 -m venv /usr/local && groupadd --gid 1000 staff1000 \\
 && /usr/local/bin/python -c "import sys; assert sys.prefix == '/usr/local', sys.prefix"
ENV LANG=C.UTF-8
""",
}


def layout_image(engine: Engine, layout: str, wheels: Sequence[Path]) -> str:
    """A look-alike base of one layout holding ``wheels`` (cached by recipe and wheel bytes)."""
    recipe = LAYOUTS[layout].format(path=PATH)
    digest = hashlib.sha256(recipe.encode())
    for wheel in sorted(wheels):
        digest.update(wheel.name.encode() + hashlib.sha256(wheel.read_bytes()).digest())
    name = f"envlock-test/base:{layout}-{digest.hexdigest()[:12]}"
    with _locked(engine.root / "images.lock"):
        if engine.has_image(name):
            return name
        base = rootfs_image(engine)
        context = engine.root / "contexts" / f"{layout}-{uuid.uuid4().hex}"
        (context / "wheels").mkdir(parents=True)
        for wheel in wheels:
            shutil.copy2(wheel, context / "wheels" / wheel.name)
        (context / "Dockerfile").write_text(f"FROM {base}\n{recipe}")
        try:
            built = engine.build(context, name)
        finally:
            shutil.rmtree(context, ignore_errors=True)
        if built.code != 0:
            raise AssertionError(f"building the {layout} base failed:\n{built.output[-3000:]}")
    return name
