"""The review gate through `envlock diff`, against a fixture index: fixture wheels that add a
.pth or a sitecustomize.py, an sdist-only release, a fresh upload, a yanked file, a
same-version-new-hash artifact, and a server that refuses Range."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from packaging.pylock import Pylock

from envlock.lockfile import render_lock
from tests.conftest import Cli
from tests.support.indexes import IndexServer, StandardIndexes, write_index
from tests.support.wheels import Dist

OLD_TIME = datetime(2024, 1, 1, tzinfo=UTC)
FRESH = datetime.now(UTC) - timedelta(days=1)
SPEC = (
    '[env]\npython = "3.11"\nplatforms = ["linux-x86_64"]\n[torch]\nversion = "2.6"\ncuda = "cpu"\n'
)

DISTS = [
    Dist(name="hookpkg", version="1.0", upload_time=OLD_TIME),
    Dist(
        name="hookpkg",
        version="1.1",
        upload_time=OLD_TIME,
        files=(("hookpkg-boot.pth", "import hookpkg; hookpkg.steal()\n"),),
    ),
    Dist(name="sitepkg", version="1.0", upload_time=OLD_TIME),
    Dist(
        name="sitepkg",
        version="1.1",
        upload_time=OLD_TIME,
        files=(("sitecustomize.py", "import os\n"),),
    ),
    Dist(name="buildme", version="1.0", upload_time=OLD_TIME),
    Dist(name="buildme", version="2.0", tags=(), sdist=True, upload_time=OLD_TIME),
    Dist(name="freshpkg", version="1.0", upload_time=OLD_TIME),
    Dist(name="freshpkg", version="1.1", upload_time=FRESH),
    Dist(name="yankpkg", version="1.0", upload_time=OLD_TIME),
    Dist(name="yankpkg", version="1.1", upload_time=OLD_TIME, yanked="broken build"),
    Dist(name="driftpkg", version="1.0", upload_time=OLD_TIME),
    Dist(name="plainpkg", version="1.0", upload_time=OLD_TIME),
    Dist(name="plainpkg", version="1.1", upload_time=OLD_TIME),
    Dist(
        name="oldhook",
        version="1.0",
        upload_time=OLD_TIME,
        files=(("distutils-precedence.pth", "import _virtualenv\n"),),
    ),
    Dist(
        name="oldhook",
        version="2.0",
        upload_time=OLD_TIME,
        files=(("distutils-precedence.pth", "import _virtualenv\n"),),
    ),
]
OLD = {
    "hookpkg": "1.0",
    "sitepkg": "1.0",
    "buildme": "1.0",
    "freshpkg": "1.0",
    "yankpkg": "1.0",
    "driftpkg": "1.0",
    "plainpkg": "1.0",
    "oldhook": "1.0",
}
NEW = {**OLD, "hookpkg": "1.1", "sitepkg": "1.1", "buildme": "2.0", "freshpkg": "1.1"}
NEW |= {"yankpkg": "1.1", "plainpkg": "1.1", "oldhook": "2.0"}


@dataclass
class Index:
    server: IndexServer
    root: Path

    @property
    def url(self) -> str:
        return f"{self.server.base_url}/simple"

    def file(self, project: str, filename: str) -> Path:
        return self.root / project / "files" / filename

    def artifact(self, project: str, filename: str, sha: str | None = None) -> dict[str, Any]:
        digest = sha or hashlib.sha256(self.file(project, filename).read_bytes()).hexdigest()
        return {"url": f"{self.url}/{project}/files/{filename}", "hashes": {"sha256": digest}}

    def package(self, project: str, version: str, **drift: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": project, "version": version, "index": self.url}
        wheel = f"{project}-{version}-py3-none-any.whl"
        if self.file(project, wheel).exists():
            entry["wheels"] = [self.artifact(project, wheel, drift.get("sha"))]
        else:
            entry["sdist"] = self.artifact(project, f"{project}-{version}.tar.gz")
        return entry

    def lock(self, versions: dict[str, str], **drift: str) -> str:
        packages = [
            self.package(n, v, **(drift if n == "driftpkg" else {}))
            for n, v in sorted(versions.items())
        ]
        data = {"lock-version": "1.0", "created-by": "test", "packages": packages}
        return render_lock(Pylock.from_dict(data))


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    root = tmp_path / "served"
    write_index(root, "/simple", DISTS, style="pypi")
    with IndexServer({"/simple": (root, "pypi")}) as server:
        yield Index(server, root)


@pytest.fixture
def locks(isolated_env: Path, index: Index, monkeypatch: pytest.MonkeyPatch) -> Path:
    """old.toml and new.toml (with the spec beside it): every kind of change at once; a cache
    of file lists of its own (the fixture wheels' bytes, so their sha256, are the same in
    every test)."""
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(isolated_env / "cache"))
    monkeypatch.delenv("ENVLOCK_REVIEW_GATE", raising=False)  # the suite may turn it off
    (isolated_env / "old.toml").write_text(index.lock(OLD, sha="0" * 64))
    (isolated_env / "new.toml").write_text(index.lock(NEW))
    (isolated_env / "torchenv.toml").write_text(SPEC)
    return isolated_env


def _gate(cli: Cli, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli("diff", "old.toml", "new.toml", "--format", "json", *args)
    assert result.code in (0, 1), result.stderr
    return result.code, json.loads(result.stdout)["gate"]


def _by_package(items: list[dict[str, Any]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for item in items:
        found.setdefault(item["package"], set()).add(item["kind"])
    return found


def test_every_finding_kind_through_the_cli(locks: Path, index: Index, cli: Cli) -> None:
    code, gate = _gate(cli, "--fail-on", "attention")
    assert code == 1
    assert _by_package(gate["needs-attention"]) == {
        "hookpkg": {"startup-hook"},
        "sitepkg": {"startup-hook"},
        "buildme": {"install-code"},
        "freshpkg": {"fresh-upload"},
        "yankpkg": {"yanked"},
        "driftpkg": {"hash-drift"},
    }
    first = gate["needs-attention"][0]
    assert first["kind"] == "hash-drift" and first["level"] == "alarm"  # alarms first
    hook = next(f for f in gate["needs-attention"] if f["package"] == "hookpkg")
    assert "import hookpkg; hookpkg.steal()" in hook["detail"]
    build = next(f for f in gate["needs-attention"] if f["package"] == "buildme")
    assert "changed from wheels to an sdist" in build["detail"]
    # the .pth oldhook had in both versions, and plainpkg's upgrade, need nothing
    assert "oldhook" not in _by_package(gate["needs-attention"])
    # the file lists were read by Range: no wheel was downloaded whole
    assert not [p for p in index.server.full_downloads if p.endswith(".whl")]


def test_text_and_markdown_put_attention_first(locks: Path, cli: Cli) -> None:
    text = cli("diff", "old.toml", "new.toml").stdout
    assert text.startswith("needs attention: 6 (1 alarm)")
    assert "[review.accept]" in text and "hookpkg = { sha256 = " in text
    markdown = cli("diff", "old.toml", "new.toml", "--format", "markdown").stdout
    head, _, table = markdown.partition("| | change |")
    assert "> [!CAUTION]" in head and "start-up hook added" in head and table


def test_an_accept_pasted_from_the_output_is_honoured_for_that_hash_only(
    locks: Path, index: Index, cli: Cli
) -> None:
    _, gate = _gate(cli)
    lines = [line for line in gate["accept-lines"] if not line.startswith(("driftpkg", "yankpkg"))]
    accepts = "\n".join(line.replace("WHY: what you checked", "checked by hand") for line in lines)
    (locks / "torchenv.toml").write_text(SPEC + "\n[review.accept]\n" + accepts + "\n")
    code, gate = _gate(cli, "--fail-on", "attention")
    assert code == 1  # drift and yank are left
    assert _by_package(gate["needs-attention"]) == {
        "driftpkg": {"hash-drift"},
        "yankpkg": {"yanked"},
    }
    assert {f["package"] for f in gate["accepted"]} == {"hookpkg", "sitepkg", "buildme", "freshpkg"}
    # the accept binds hookpkg's sha256: other bytes under the same name need a new look
    hook = index.file("hookpkg", "hookpkg-1.1-py3-none-any.whl")
    hook.write_bytes(hook.read_bytes() + b"\0")
    (locks / "new.toml").write_text(index.lock(NEW))
    _, gate = _gate(cli)
    assert "hookpkg" in _by_package(gate["needs-attention"])


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_accepts_a_change_adds_are_said(locks: Path, cli: Cli) -> None:
    _, gate = _gate(cli)
    line = next(x for x in gate["accept-lines"] if x.startswith("buildme"))
    _git(locks, "init", "-q", "-b", "main")
    _git(locks, "config", "user.email", "t@example.com")
    _git(locks, "config", "user.name", "t")
    (locks / "pylock.toml").write_text((locks / "old.toml").read_text())
    _git(locks, "add", "pylock.toml", "torchenv.toml")
    _git(locks, "commit", "-qm", "old")
    (locks / "pylock.toml").write_text((locks / "new.toml").read_text())
    accepted = SPEC + "\n[review.accept]\n" + line.replace("WHY", "ok") + "\n"
    (locks / "torchenv.toml").write_text(accepted)
    result = cli("diff", "--format", "json")
    gate = json.loads(result.stdout)["gate"]
    assert [x.split(":")[0] for x in gate["accepted-by-this-change"]] == ["buildme 2.0"]
    _git(locks, "commit", "-qam", "new")  # at HEAD~1..HEAD the accept still came with it
    gate = json.loads(cli("diff", "HEAD~1", "HEAD", "--format", "json").stdout)["gate"]
    assert len(gate["accepted-by-this-change"]) == 1
    text = cli("diff", "HEAD~1", "HEAD").stdout
    assert "accepted by this change" in text


def test_a_server_that_refuses_range_costs_one_download_and_says_so(
    locks: Path, index: Index, cli: Cli
) -> None:
    index.server.refuse_ranges()
    _, gate = _gate(cli)
    assert "hookpkg" in _by_package(gate["needs-attention"])  # still found
    notes = _by_package(gate["notes"])
    assert notes["hookpkg"] == {"range-refused"}
    # one request, answered with the whole wheel (the server ignored its Range header)
    asked = [p for p in index.server.requests if p.endswith("hookpkg-1.1-py3-none-any.whl")]
    assert len(asked) == 1


def test_file_lists_are_cached_by_sha256(locks: Path, index: Index, cli: Cli) -> None:
    _gate(cli)
    before = len([p for p in index.server.requests if p.endswith(".whl")])
    _, gate = _gate(cli)
    assert len([p for p in index.server.requests if p.endswith(".whl")]) == before
    assert "hookpkg" in _by_package(gate["needs-attention"])


def test_an_unreadable_wheel_is_not_checked_and_fails_the_gate(
    locks: Path, index: Index, cli: Cli
) -> None:
    index.server.fail("/simple/plainpkg/files/plainpkg-1.1", 503)
    code, gate = _gate(cli, "--fail-on", "attention")
    assert code == 1
    unchecked = [f for f in gate["needs-attention"] if f["package"] == "plainpkg"]
    assert [f["kind"] for f in unchecked] == ["unchecked"] and "503" in unchecked[0]["detail"]


def test_same_bytes_from_a_new_host_is_a_note(locks: Path, index: Index, cli: Cli) -> None:
    lock = index.lock({"plainpkg": "1.0"})
    (locks / "old.toml").write_text(lock.replace(index.server.base_url, "https://old.example"))
    (locks / "new.toml").write_text(lock)
    code, gate = _gate(cli, "--fail-on", "attention")
    assert code == 0 and gate["needs-attention"] == []
    assert [f["kind"] for f in gate["notes"]] == ["new-host"]


def test_no_gate_and_fail_on(locks: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    result = cli("diff", "old.toml", "new.toml", "--no-gate", "--format", "json")
    assert result.code == 0 and "gate" not in json.loads(result.stdout)
    result = cli("diff", "old.toml", "new.toml", "--no-gate", "--fail-on", "attention")
    assert result.code == 2 and "hint:" in result.stderr
    monkeypatch.setenv("ENVLOCK_REVIEW_GATE", "off")
    assert "needs attention" not in cli("diff", "old.toml", "new.toml").stdout
    monkeypatch.delenv("ENVLOCK_REVIEW_GATE")
    assert cli("diff", "old.toml", "old.toml", "--fail-on", "attention").code == 0
    assert cli("diff", "old.toml", "new.toml", "--fail-on", "changes").code == 1


def test_a_spec_key_that_does_not_bind_a_hash_is_refused(locks: Path, cli: Cli) -> None:
    (locks / "torchenv.toml").write_text(SPEC + '[review.accept]\nhookpkg = "intentional .pth"\n')
    result = cli("diff", "old.toml", "new.toml", "--format", "json")
    gate = json.loads(result.stdout)["gate"]
    assert any("no accepts applied" in note for note in gate["run-notes"])
    assert "hookpkg" in _by_package(gate["needs-attention"])


def test_a_big_wheel_is_listed_with_a_few_small_reads(
    locks: Path, tmp_path: Path, cli: Cli
) -> None:
    """The central directory is at the end of the zip: a 3 MB wheel costs three 64 KB reads
    (the first block, the end, nothing else), not a download."""
    blob = base64.b64encode(os.urandom(3 << 20)).decode()  # barely compresses
    big = [
        Dist(name="bigpkg", version="1.0", upload_time=OLD_TIME),
        Dist(
            name="bigpkg",
            version="2.0",
            upload_time=OLD_TIME,
            files=(("bigpkg/blob.txt", blob), ("bigpkg.pth", "import bigpkg\n")),
        ),
    ]
    root = tmp_path / "big"
    write_index(root, "/simple", big, style="pypi")
    with IndexServer({"/simple": (root, "pypi")}) as server:
        served = Index(server, root)
        wheel = served.file("bigpkg", "bigpkg-2.0-py3-none-any.whl")
        assert wheel.stat().st_size > 3 << 20
        (locks / "old.toml").write_text(served.lock({"bigpkg": "1.0"}))
        (locks / "new.toml").write_text(served.lock({"bigpkg": "2.0"}))
        _, gate = _gate(cli)
        assert _by_package(gate["needs-attention"]) == {"bigpkg": {"startup-hook"}}
        reads = [p for p in server.requests if p.endswith("bigpkg-2.0-py3-none-any.whl")]
        assert 1 <= len(reads) <= 3
        assert not [p for p in server.full_downloads if p.endswith(".whl")]


# ---------------------------------------------------------------------------- the cooldown (lock)

COOLDOWN_SPEC = """\
[env]
python = "3.11"
platforms = ["linux-x86_64"]

[torch]
version = "2.6"
cuda = "{cuda}"
{torch_extra}

[packages]
{packages}

[resolution]
cooldown = "{cooldown}"
"""


def _days_since(moment: datetime) -> int:
    return (datetime.now(UTC) - moment).days


def test_a_cooldown_locks_as_of_now_minus_it_and_names_what_it_held_back(
    fixture_env: Path, cli: Cli
) -> None:
    # the fixture's numpy 2.2.0 is from 2025-01, 2.3.0 from 2026-06: a cut-off in 2025-06
    cooldown = f"{_days_since(datetime(2025, 6, 1, tzinfo=UTC))}d"
    spec = fixture_env / "torchenv.toml"
    spec.write_text(
        COOLDOWN_SPEC.format(
            packages='numpy = "*"',
            cooldown=cooldown,
            cuda="12.4",
            torch_extra='source = "pytorch-index"',
        )
    )
    result = cli("lock")
    assert result.code == 0, result.stderr
    lock = Pylock.from_dict(tomllib.loads((fixture_env / "pylock.toml").read_text()))
    locked = {p.name: str(p.version) for p in lock.packages}
    assert locked["numpy"] == "2.2.0"
    assert locked["torch"] == "2.6.0+cu124"  # the PyTorch index is chosen by [torch], exempt
    assert "numpy 2.2.0 locked, not 2.3.0: 2.3.0 was uploaded 2026-06-01" in result.stderr
    assert "inside the cooldown" in result.stderr
    recorded = (lock.tool or {})["envlock"]["exclude-newer"]
    assert abs((recorded - datetime(2025, 6, 1, tzinfo=UTC)).days) <= 1
    assert cli("lock", "--check").code == 0  # the digest holds "cooldown", not the moving cut-off
    spec.write_text(spec.read_text().replace(f'cooldown = "{cooldown}"', 'cooldown = "0d"'))
    assert cli("lock", "--upgrade").code == 0
    lock = Pylock.from_dict(tomllib.loads((fixture_env / "pylock.toml").read_text()))
    assert {p.name: str(p.version) for p in lock.packages}["numpy"] == "2.3.0"


def test_a_cooldown_never_silently_falls_back_to_an_old_release(
    fixture_env: Path, indexes: StandardIndexes, tmp_path: Path, cli: Cli
) -> None:
    """Newer releases whose index gives no upload time are dropped under a cut-off (uv's rule):
    the lock says that this, not their age, held them back."""
    served = tmp_path / "notime"
    dists = [
        Dist(name="gate-notime", version="1.0", upload_time=OLD_TIME),
        Dist(name="gate-notime", version="2.0"),
        Dist(name="gate-notime", version="3.0"),
    ]
    write_index(served, "/simple", dists, style="pypi")
    shutil.copytree(served / "gate-notime", indexes.pypi_root / "gate-notime", dirs_exist_ok=True)
    (fixture_env / "torchenv.toml").write_text(
        COOLDOWN_SPEC.format(
            packages='gate-notime = "*"', cooldown="7d", cuda="12.6", torch_extra=""
        )
    )
    result = cli("lock")
    assert result.code == 0, result.stderr
    assert "gate-notime 1.0 locked, not 3.0 (2 newer releases held back)" in result.stderr
    assert "no upload time" in result.stderr and 'gate-notime = "==3.0"' in result.stderr
