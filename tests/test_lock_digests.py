"""`envlock lock` asks the registry for base image digests while uv resolves (issue 16).

The registry's round trips (and its timeout where it is out of reach) came after uv's resolve,
on every lock. The order is checked, not the time: the fixture registry notes how many index
requests had arrived when it was asked.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from tests.conftest import Cli
from tests.support.indexes import StandardIndexes
from tests.test_lock_e2e import write_spec

OFFICIAL = "pytorch/pytorch:2.6.0-cuda12.6-cudnn9-runtime"
DIGEST = "sha256:" + "ab" * 32


class _Registry(BaseHTTPRequestHandler):
    indexes: ClassVar[StandardIndexes | None] = None
    asked: ClassVar[list[tuple[str, int]]] = []  # (path, index requests seen by then)

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_HEAD(self) -> None:
        served = type(self).indexes
        assert served is not None
        seen = len(served.pypi_server.requests) + len(served.pytorch_server.requests)
        type(self).asked.append((self.path, seen))
        known = self.path == "/v2/pytorch/pytorch/manifests/2.6.0-cuda12.6-cudnn9-runtime"
        self.send_response(200 if known else 404)
        if known:
            self.send_header("Docker-Content-Digest", DIGEST)
            self.send_header("Content-Type", "application/vnd.oci.image.index.v1+json")
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def registry(indexes: StandardIndexes, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Registry.indexes, _Registry.asked = indexes, []
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("ENVLOCK_DOCKER_REGISTRY", url)
    yield url
    server.shutdown()
    server.server_close()


def test_the_registry_is_asked_while_uv_resolves_not_after(
    fixture_env: Path, indexes: StandardIndexes, registry: str, cli: Cli
) -> None:
    write_spec(fixture_env, packages='six = "*"\nnumpy = "*"')
    before = len(indexes.pypi_server.requests) + len(indexes.pytorch_server.requests)
    result = cli("lock")
    assert result.code == 0, result.stderr
    after = len(indexes.pypi_server.requests) + len(indexes.pytorch_server.requests)
    assert f'"{OFFICIAL}" = "{DIGEST}"' in (fixture_env / "pylock.toml").read_text()
    # the devel tag is not there: said, not invented, as before
    assert "the registry has no pytorch/pytorch:2.6.0-cuda12.6-cudnn9-devel" in result.stderr
    assert _Registry.asked, "the registry was never asked"
    first = _Registry.asked[0][1]
    # asked before uv's requests to the indexes were done (before: after all of them)
    assert first - before < (after - before) / 2, (_Registry.asked, before, after)
    # each tag once: what the thread asked is not asked again
    paths = [path for path, _ in _Registry.asked]
    assert len(paths) == len(set(paths)), paths


def test_an_unreachable_registry_is_a_note_and_the_previous_digest_is_kept(
    fixture_env: Path, registry: str, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_spec(fixture_env, packages='six = "*"')
    assert cli("lock").code == 0
    monkeypatch.setenv("ENVLOCK_DOCKER_REGISTRY", "http://127.0.0.1:9")
    write_spec(fixture_env, packages='six = "*"\nnumpy = "*"')  # re-resolved, the old lock read
    result = cli("lock")
    assert result.code == 0, result.stderr
    assert "base image digests not read" in result.stderr
    assert "kept the previous lock's for " + OFFICIAL in result.stderr
    assert f'"{OFFICIAL}" = "{DIGEST}"' in (fixture_env / "pylock.toml").read_text()
