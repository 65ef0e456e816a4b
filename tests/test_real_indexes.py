"""lock and sync against real index software, beside the hand-made fixture: pypiserver (PEP 503
HTML, HTTP Basic auth, files under /packages/ outside the index path) and devpi-server (PEP 691
JSON, a derived index whose pages point at its base's +f/ files). torch (CPU) comes from the
PyTorch-shaped fixture index; everything else from the real server."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path
from typing import NamedTuple

import pytest
from packaging.pylock import PackageSdist, PackageWheel, Pylock

from envlock.errors import ExitCode
from envlock.io import http, pages
from tests.conftest import Result, assert_refused
from tests.support.indexes import StandardIndexes
from tests.support.realservers import (
    DevpiServer,
    PypiServer,
    devpi,  # noqa: F401 - a session fixture
    pypiserver,  # noqa: F401 - a session fixture
    pypiserver_md5,  # noqa: F401 - a session fixture
    pypiserver_unhashed,  # noqa: F401 - a session fixture
    secret_forms,
)
from tests.test_lock_e2e import write_spec

PACKAGES = 'six = "*"\n"ruamel.yaml" = "*"'
WRONG_PASSWORD = "wr0ng:@Passw0rd/x"


def envlock(project: Path, *args: str, debug: bool = True) -> Result:
    """envlock in a process of its own (--debug logging is set up once per process): with
    ``debug``, uv's command lines, envlock's log lines and any traceback are in stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "envlock", *(["--debug"] if debug else []), *args],
        cwd=project,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def read_lock(project: Path) -> Pylock:
    return Pylock.from_dict(tomllib.loads((project / "pylock.toml").read_text()))


class Locked(NamedTuple):
    package: str
    index_url: str
    url: str
    sha256: str


def locked_files(lock: Pylock) -> dict[str, Locked]:
    """file name -> where the lock takes it from, for every wheel and sdist in the lock."""
    found: dict[str, Locked] = {}
    for package in lock.packages:
        artifacts: list[PackageWheel | PackageSdist] = [*(package.wheels or ())]
        artifacts += [package.sdist] if package.sdist else []
        for artifact in artifacts:
            assert artifact.url, artifact
            name = artifact.filename or artifact.url.rsplit("/", 1)[-1]
            found[name] = Locked(
                package.name, package.index or "", artifact.url, artifact.hashes["sha256"]
            )
    return found


def leaks(root: Path, secrets: tuple[str, ...]) -> list[str]:
    """The files under ``root`` holding any of ``secrets`` (there must be files to search)."""
    files = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
    assert files, f"nothing to search under {root}"
    return [str(p) for p in files if any(s.encode() in p.read_bytes() for s in secrets)]


@pytest.fixture
def project(
    isolated_env: Path,
    indexes: StandardIndexes,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """A CPU torch spec (torch from the fixture's PyTorch index), a cold cache of its own (it
    is searched for secrets too), no NVIDIA driver."""
    monkeypatch.setenv("ENVLOCK_PYTORCH_INDEX_URL", indexes.pytorch_url)
    monkeypatch.setenv("ENVLOCK_HTTP_RETRIES", "0")
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path_factory.mktemp("real-cache")))
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(isolated_env / "no-nvidia-smi"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    write_spec(isolated_env, cuda="cpu", vision=False, packages=PACKAGES)
    return isolated_env


def _assert_cpu_lock(project: Path, index_url: str, indexes: StandardIndexes) -> Pylock:
    lock = read_lock(project)
    by_name = {str(p.name): p for p in lock.packages}
    assert str(by_name["torch"].version) == "2.6.0+cpu"
    assert by_name["torch"].index == f"{indexes.pytorch_url}/cpu"
    for name in ("six", "ruamel-yaml", "filelock", "typing-extensions", "sympy", "mpmath"):
        assert by_name[name].index == index_url, name
    return lock


# ---------------------------------------------------------------------------------------
# pypiserver: Basic auth, given the two ways the README documents


# What each way of giving the credentials runs: the URL way every command that talks to the
# index (both installers, envlock's own downloads in bundle), netrc the lock/sync pair.
COMMANDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "url": (
        ("lock",),
        ("sync", "--venv", ".venv"),
        ("sync", "--venv", ".venv-pip", "--installer", "pip"),
        ("verify", "--venv", ".venv"),
        ("export", "requirements", "-o", "requirements.txt"),
        ("bundle", "-o", "offline"),
    ),
    "netrc": (("lock",), ("sync", "--venv", ".venv"), ("verify", "--venv", ".venv")),
}


@pytest.mark.parametrize("given", ["url", "netrc"])
def test_pypiserver_with_basic_auth_locks_and_syncs_leaking_nothing(
    project: Path,
    pypiserver: PypiServer,  # noqa: F811
    indexes: StandardIndexes,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
    given: str,
) -> None:
    """Credentials in ENVLOCK_PYPI_INDEX_URL (percent-encoded) or in a netrc file; pypiserver
    demands them for every page and file. Every command succeeds with --debug on, and the
    secret is in no output, the lock, the venvs (direct_url.json, .envlock-sync.json), the
    exports or the uv cache."""
    if given == "url":
        monkeypatch.setenv("ENVLOCK_PYPI_INDEX_URL", pypiserver.url_with(pypiserver.password))
    else:
        netrc = tmp_path_factory.mktemp("netrc") / "netrc"
        netrc.write_text(
            f"machine 127.0.0.1 login {pypiserver.user} password {pypiserver.password}\n"
        )
        netrc.chmod(0o600)
        monkeypatch.setenv("NETRC", str(netrc))
        monkeypatch.setenv("ENVLOCK_PYPI_INDEX_URL", pypiserver.url)
    runs = {}
    for args in COMMANDS[given]:
        runs[args] = result = envlock(project, *args)
        assert result.code == 0, (args, result.stderr)
    assert all("debug: run:" in runs[a].stderr for a in COMMANDS[given] if a[0] in {"lock", "sync"})
    lock = _assert_cpu_lock(project, pypiserver.url, indexes)
    served = {n: f for n, f in locked_files(lock).items() if f.index_url == pypiserver.url}
    assert len(served) == 6  # pypiserver keeps its files outside the index path, in /packages/
    for name, file in served.items():
        assert file.url == f"{pypiserver.process.base_url}/packages/{name}"
        assert file.sha256 == pypiserver.files[name], name
    for venv in {a[2] for a in COMMANDS[given] if a[0] == "sync"}:
        assert (project / venv / ".envlock-sync.json").is_file()
        shown = subprocess.run(
            [
                project / venv / "bin" / "python",
                "-c",
                "import torch, six; print(torch.__version__)",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert shown.stdout.strip() == "2.6.0+cpu"
    if given == "url":  # pip records where each wheel came from
        assert list((project / ".venv-pip").rglob("direct_url.json"))
        assert (project / "offline" / "wheels" / "six-1.17.0-py2.py3-none-any.whl").is_file()
    secrets = secret_forms(pypiserver.user, pypiserver.password)
    for args, result in runs.items():
        for secret in secrets:
            assert secret not in result.stdout + result.stderr, (args, secret)
    assert leaks(project, secrets) == []
    assert leaks(Path(os.environ["ENVLOCK_CACHE_DIR"]), secrets) == []


def test_pypiserver_wrong_password_is_an_index_error_that_shows_no_password(
    project: Path,
    pypiserver: PypiServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVLOCK_PYPI_INDEX_URL", pypiserver.url_with(WRONG_PASSWORD))
    refused = envlock(project, "lock", debug=False)
    assert_refused(refused, ExitCode.INDEX)
    # pypiserver answers wrong credentials with 403 (none at all: 401)
    assert re.search(r"HTTP 40[13]", refused.stderr), refused.stderr
    debugged = envlock(project, "lock")  # the traceback --debug adds shows no password either
    assert debugged.code == ExitCode.INDEX, debugged.stderr
    assert not (project / "pylock.toml").exists()
    # a good lock, then a sync with the wrong password: refused too, nothing installed
    monkeypatch.setenv("ENVLOCK_PYPI_INDEX_URL", pypiserver.url_with(pypiserver.password))
    assert envlock(project, "lock").code == 0
    monkeypatch.setenv("ENVLOCK_PYPI_INDEX_URL", pypiserver.url_with(WRONG_PASSWORD))
    synced = envlock(project, "sync", "--venv", ".venv", debug=False)
    assert_refused(synced, ExitCode.INDEX)
    assert not (project / ".venv").exists()
    for result in (refused, debugged, synced):
        for secret in (*secret_forms(pypiserver.user, WRONG_PASSWORD), pypiserver.password):
            assert secret not in result.stdout + result.stderr, secret


def test_pypiserver_listing_only_md5_locks_with_hash_missing_download(
    project: Path,
    pypiserver_md5: PypiServer,  # noqa: F811
    indexes: StandardIndexes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pypiserver's links carried #md5= by default until 2.x, so many private indexes still
    list no sha256. envlock refuses those files, naming them, and points at
    --hash-missing=download, which must then hash them (trust on first use, the md5 checked,
    the credentials used) and lock: uv recorded only the md5, so there is no sha256 of uv's
    to compare the download with."""
    server = pypiserver_md5
    monkeypatch.setenv("ENVLOCK_PYPI_INDEX_URL", server.url_with(server.password))
    refused = envlock(project, "lock", debug=False)
    assert_refused(refused, ExitCode.HASH)
    assert f"{server.process.base_url}/packages/six-1.17.0-py2.py3-none-any.whl" in (refused.stderr)
    assert "--hash-missing=download" in refused.stderr
    locked = envlock(project, "lock", "--hash-missing", "download")
    assert locked.code == 0, locked.stderr
    assert "warning:" in locked.stderr
    lock = _assert_cpu_lock(project, server.url, indexes)
    served = {n: f for n, f in locked_files(lock).items() if f.index_url == server.url}
    assert len(served) == 6
    for name, file in served.items():
        assert file.sha256 == server.files[name], name
    synced = envlock(project, "sync", "--venv", ".venv")
    assert synced.code == 0, synced.stderr
    for result in (refused, locked, synced):
        for secret in secret_forms(server.user, server.password):
            assert secret not in result.stdout + result.stderr
    assert leaks(project, secret_forms(server.user, server.password)) == []


def test_pypiserver_listing_no_hash_behind_auth_names_the_index_that_refused(
    project: Path,
    pypiserver_unhashed: PypiServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """uv 0.13 does not authenticate the download it makes to hash a file listed without one
    (README), so the lock fails in uv with a 401 for a URL under pypiserver's /packages/,
    outside the index path. The error must name the index on that host, not "the PyPI index
    or the PyTorch cpu index"."""
    server = pypiserver_unhashed
    monkeypatch.setenv("ENVLOCK_PYPI_INDEX_URL", server.url_with(server.password))
    refused = envlock(project, "lock", debug=False)
    assert_refused(refused, ExitCode.INDEX)
    error = next(line for line in refused.stderr.splitlines() if line.startswith("error:"))
    assert f"the PyPI index ({server.url})" in error
    assert "PyTorch" not in error
    assert f"{server.process.base_url}/packages/" in refused.stderr  # uv's detail: the file
    for secret in secret_forms(server.user, server.password):
        assert secret not in refused.stdout + refused.stderr


# ---------------------------------------------------------------------------------------
# devpi-server: PEP 691 JSON and an index that inherits from another


def test_devpi_serves_pep_691_json_envlock_reads(devpi: DevpiServer) -> None:  # noqa: F811
    """envlock's own page reader gets devpi's JSON (not its HTML) and every listed hash."""
    page = f"{devpi.index_url(devpi.derived)}/six/"
    with http.Client(timeout=10) as client:
        status, _, content_type = pages._get(page, None, client)
        listing = pages.fetch_listing(devpi.index_url(devpi.derived), "six", None, client=client)
    assert status == 200
    assert content_type.startswith(pages.JSON_TYPE), content_type
    six = {k: v for k, v in devpi.base_files.items() if k.startswith("six-")}
    assert sorted(h["sha256"] for h in listing.values()) == sorted(six.values())


def _fixture_pypi_files(indexes: StandardIndexes) -> dict[str, str]:
    """file name -> sha256 of every file the fixture PyPI serves (what devpi mirrors)."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in indexes.pypi_root.glob("*/files/*")
    }


@pytest.mark.parametrize(("index", "files_under"), [("derived", "base"), ("on-mirror", "mirror")])
def test_devpi_inheriting_index_locks_its_bases_files_with_their_hashes(
    project: Path,
    devpi: DevpiServer,  # noqa: F811
    indexes: StandardIndexes,
    monkeypatch: pytest.MonkeyPatch,
    index: str,
    files_under: str,
) -> None:
    """The lock names the index it was resolved from; a file only its base holds is locked
    at the base's +f/ URL (for the mirror: fetched from upstream on first request), and every
    hash is that of the bytes devpi serves there, which are the bytes uploaded or mirrored."""
    url = devpi.index_url(index)
    monkeypatch.setenv("ENVLOCK_PYPI_INDEX_URL", url)
    locked = envlock(project, "lock")
    assert locked.code == 0, locked.stderr
    lock = _assert_cpu_lock(project, url, indexes)
    published = {**devpi.base_files, **devpi.derived_files}
    if files_under == "mirror":
        published = _fixture_pypi_files(indexes)
    on_devpi = {n: f for n, f in locked_files(lock).items() if f.index_url == url}
    assert len(on_devpi) == 6
    assert "six-1.17.0-py2.py3-none-any.whl" in on_devpi  # not in the index itself
    for name, file in on_devpi.items():
        holder = index if name in devpi.derived_files and index == "derived" else files_under
        assert file.url.startswith(f"{devpi.process.base_url}/{devpi.user}/{holder}/+f/"), name
        with urllib.request.urlopen(file.url, timeout=10) as response:
            served = hashlib.sha256(response.read()).hexdigest()
        assert file.sha256 == served == published[name], name
    synced = envlock(project, "sync", "--venv", ".venv")
    assert synced.code == 0, synced.stderr
    assert envlock(project, "verify", "--venv", ".venv", "--deep").code == 0
