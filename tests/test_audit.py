"""envlock audit (and diff --audit): yanked files and known vulnerabilities, from a fixture
index and a fixture of PyPI's JSON API; one network test against the real PyPI."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.pylock import Pylock

from envlock.io.artifact_facts import NOT_SERVED, PypiAdvisories
from envlock.lockfile import LockMeta, render_lock
from tests.conftest import Cli
from tests.support.indexes import IndexServer, write_index
from tests.support.wheels import Dist

SPEC = (
    '[env]\npython = "3.11"\nplatforms = ["linux-x86_64"]\n[torch]\nversion = "2.6"\ncuda = "cpu"\n'
)
ADVISORY = {
    "id": "GHSA-gate-0001",
    "aliases": ["CVE-2026-0001"],
    "summary": "Remote code execution in vulnpkg's loader",
    "details": "...",
    "fixed_in": ["1.1"],
    "link": "https://osv.dev/vulnerability/GHSA-gate-0001",
    "withdrawn": None,
}
WITHDRAWN = {**ADVISORY, "id": "GHSA-gate-0002", "withdrawn": "2026-01-01T00:00:00Z"}
DISTS = [
    Dist(name="vulnpkg", version="1.0"),
    Dist(name="vulnpkg", version="1.1"),
    Dist(name="safepkg", version="2.0"),
    Dist(name="yankpkg", version="1.1", yanked=True),
]


@dataclass
class Served:
    index: IndexServer
    advisories: IndexServer
    root: Path

    @property
    def url(self) -> str:
        return f"{self.index.base_url}/simple"

    def package(self, name: str, version: str, index: str | None = None) -> dict[str, Any]:
        wheel = f"{name}-{version}-py3-none-any.whl"
        data = (self.root / name / "files" / wheel).read_bytes()
        url = f"{self.url}/{name}/files/{wheel}"
        return {
            "name": name,
            "version": version,
            "index": index or self.url,
            "wheels": [{"url": url, "hashes": {"sha256": hashlib.sha256(data).hexdigest()}}],
        }

    def lock(self, *packages: dict[str, Any]) -> str:
        meta = LockMeta(
            spec_digest="sha256:" + "0" * 64,
            envlock_version="0.1.0",
            python="3.11",
            platforms=("linux-x86_64",),
            torch="2.6",
            variant="cpu",
            variant_index=None,
            pypi_index=self.url,  # the PyPI (mirror) the lock was made from: public names
            torch_source={},
        )
        data = {
            "lock-version": "1.0",
            "created-by": "envlock",
            "packages": list(packages),
            "tool": {"envlock": meta.to_tool()},
        }
        return render_lock(Pylock.from_dict(data))


def _answer(root: Path, name: str, version: str, vulnerabilities: list[dict[str, Any]]) -> None:
    path = root / name / version / "json"
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {"name": name, "version": version}
    path.write_text(json.dumps({"info": info, "urls": [], "vulnerabilities": vulnerabilities}))


@pytest.fixture
def served(isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    root = tmp_path / "served"
    write_index(root, "/simple", DISTS, style="pypi")
    advisories = tmp_path / "advisories"
    _answer(advisories, "vulnpkg", "1.0", [ADVISORY, WITHDRAWN])
    _answer(advisories, "vulnpkg", "1.1", [])
    _answer(advisories, "safepkg", "2.0", [])
    _answer(advisories, "yankpkg", "1.1", [])
    with (
        IndexServer({"/simple": (root, "pypi"), "/private": (root, "pypi")}) as index,
        IndexServer({"/pypi": (advisories, "pypi")}) as json_api,
    ):
        monkeypatch.setenv("ENVLOCK_PYPI_JSON_URL", f"{json_api.base_url}/pypi")
        monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(isolated_env / "cache"))
        monkeypatch.delenv("ENVLOCK_REVIEW_GATE", raising=False)  # diff --audit below
        (isolated_env / "torchenv.toml").write_text(SPEC)
        yield Served(index, json_api, root)


def _audit(cli: Cli) -> tuple[int, dict[str, Any]]:
    result = cli("audit", "--json")
    assert result.code in (0, 1), result.stderr
    return result.code, json.loads(result.stdout)


def test_a_whole_lock_is_audited(served: Served, isolated_env: Path, cli: Cli) -> None:
    # the same server as another index, one the lock does not name as its PyPI
    private = served.package("safepkg", "2.0", index=f"{served.index.base_url}/private")
    (isolated_env / "pylock.toml").write_text(
        served.lock(served.package("vulnpkg", "1.0"), served.package("yankpkg", "1.1"), private)
    )
    code, report = _audit(cli)
    assert code == 1
    found = {(f["package"], f["kind"], f["id"]) for f in report["needs-attention"]}
    assert found == {("vulnpkg", "vulnerable", "GHSA-gate-0001"), ("yankpkg", "yanked", None)}
    vuln = next(f for f in report["needs-attention"] if f["kind"] == "vulnerable")
    assert "CVE-2026-0001" in vuln["detail"] and "fixed in 1.1" in vuln["detail"]
    assert 'findings = ["vulnerable:GHSA-gate-0001"]' in " ".join(report["accept-lines"])
    # a private index's package name never goes to the advisory source
    assert not [p for p in served.advisories.requests if "safepkg" in p]
    text = cli("audit").stdout
    assert text.startswith("needs attention: 2") and "known vulnerability: vulnpkg 1.0" in text


def test_an_accept_names_one_advisory(served: Served, isolated_env: Path, cli: Cli) -> None:
    (isolated_env / "pylock.toml").write_text(served.lock(served.package("vulnpkg", "1.0")))
    _, report = _audit(cli)
    (line,) = report["accept-lines"]
    (isolated_env / "torchenv.toml").write_text(
        SPEC + "[review.accept]\n" + line.replace("WHY: what you checked", "loader unused") + "\n"
    )
    code, report = _audit(cli)
    assert code == 0 and [f["accepted"] for f in report["accepted"]] == ["loader unused"]
    # a new advisory for the same bytes is not covered by the old accept
    _answer(
        served.root.parent / "advisories",
        "vulnpkg",
        "1.0",
        [ADVISORY, {**ADVISORY, "id": "GHSA-gate-0003"}],
    )
    code, report = _audit(cli)
    assert code == 1 and [f["id"] for f in report["needs-attention"]] == ["GHSA-gate-0003"]


def test_an_unreadable_advisory_source_is_not_a_clean_bill(
    served: Served, isolated_env: Path, cli: Cli
) -> None:
    (isolated_env / "pylock.toml").write_text(served.lock(served.package("safepkg", "2.0")))
    assert _audit(cli)[0] == 0
    served.advisories.fail("/pypi/safepkg", 503)
    code, report = _audit(cli)
    assert code == 1
    assert [f["kind"] for f in report["needs-attention"]] == ["unchecked"]


def test_diff_audit_asks_for_the_new_versions_only(
    served: Served, isolated_env: Path, cli: Cli
) -> None:
    (isolated_env / "old.toml").write_text(
        served.lock(served.package("vulnpkg", "1.1"), served.package("safepkg", "2.0"))
    )
    (isolated_env / "new.toml").write_text(
        served.lock(served.package("vulnpkg", "1.0"), served.package("safepkg", "2.0"))
    )
    result = cli("diff", "old.toml", "new.toml", "--audit", "--format", "json")
    kinds = {f["kind"] for f in json.loads(result.stdout)["gate"]["needs-attention"]}
    assert kinds == {"vulnerable"}
    assert not [p for p in served.advisories.requests if "safepkg" in p]  # unchanged
    plain = cli("diff", "old.toml", "new.toml", "--format", "json")
    assert json.loads(plain.stdout)["gate"]["needs-attention"] == []


def test_a_version_the_source_does_not_serve_is_unchecked_not_clean(
    served: Served, isolated_env: Path, cli: Cli
) -> None:
    advisories = served.root.parent / "advisories"
    (advisories / "safepkg" / "2.0" / "json").unlink()  # a mirror without per-version JSON
    (advisories / "safepkg" / "json").write_text(json.dumps({"releases": {"2.0": []}}))
    (isolated_env / "pylock.toml").write_text(served.lock(served.package("safepkg", "2.0")))
    code, report = _audit(cli)
    assert code == 1 and NOT_SERVED in report["needs-attention"][0]["detail"]
    (advisories / "safepkg" / "json").unlink()  # no such project on PyPI: nothing to report
    assert _audit(cli)[0] == 0


def test_audit_without_a_lock_is_an_error(isolated_env: Path, cli: Cli) -> None:
    result = cli("audit")
    assert result.code == 7 and "hint:" in result.stderr


@pytest.mark.network
def test_real_pypi_knows_an_old_requests_is_vulnerable() -> None:
    # requests 2.19.1: CVE-2018-18074 (credentials sent on an https -> http redirect), among others
    (answer,) = PypiAdvisories().vulnerabilities([("requests", "2.19.1")]).values()
    if isinstance(answer, str) and NOT_SERVED in answer:  # a mirror in front of PyPI
        pytest.skip(answer)
    assert isinstance(answer, tuple) and answer
    assert any("CVE-2018-18074" in (v.id, *v.aliases) for v in answer)
