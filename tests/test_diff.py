"""envlock diff: every change type, every renderer (golden files), and git revisions."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from packaging.pylock import Pylock

from envlock.diff import ChangeKind, diff_json, diff_locks, render_markdown, render_text
from envlock.lockfile import LockMeta, render_lock
from tests.conftest import Cli
from tests.golden import assert_golden

LINUX = "sys_platform == 'linux' and platform_machine == 'x86_64'"
MAC = "sys_platform == 'darwin' and platform_machine == 'arm64'"
FAMILY = ("torch", "torchvision", "torchaudio")
TORCH_INDEX = "https://download.pytorch.org/whl"


def _sha(seed: str) -> str:
    return (seed * 64)[:64]


def _pkg(
    name: str,
    version: str,
    *,
    index: str = "https://pypi.org/simple",
    host: str = "files.example",
    seed: str = "a",
    marker: str | None = None,
    tag: str = "py3-none-any",
    extra_wheel: bool = False,
    requires_python: str | None = None,
) -> dict[str, Any]:
    module = name.replace("-", "_")
    wheels = [
        {
            "url": f"https://{host}/{module}-{version}-{tag}.whl",
            "hashes": {"sha256": _sha(seed)},
        }
    ]
    if extra_wheel:
        wheels.append(
            {
                "url": f"https://files.example/{module}-{version}-cp311-cp311-win_amd64.whl",
                "hashes": {"sha256": _sha("f")},
            }
        )
    data: dict[str, Any] = {"name": name, "version": version, "index": index, "wheels": wheels}
    if marker:
        data["marker"] = marker
    if requires_python:
        data["requires-python"] = requires_python
    return data


def _lock(
    packages: list[dict[str, Any]],
    *,
    variant: str,
    python: str = "3.11",
    platforms: tuple[str, ...] = ("linux-x86_64",),
) -> Pylock:
    meta = LockMeta(
        spec_digest="sha256:" + "0" * 64,
        envlock_version="0.1.0",
        python=python,
        platforms=platforms,
        torch="2.6",
        variant=variant,
        variant_index=f"{TORCH_INDEX}/{variant}",
        pypi_index="https://pypi.org/simple",
        torch_source={},
    )
    envs = [LINUX] + ([MAC] if "macos-arm64" in platforms else [])
    return Pylock.from_dict(
        {
            "lock-version": "1.0",
            "created-by": "envlock",
            "environments": envs,
            "requires-python": f"=={python}.*",
            "packages": packages,
            "tool": {"envlock": meta.to_tool()},
        }
    )


def _old() -> Pylock:
    return _lock(
        [
            _pkg(
                "torch", "2.6.0+cu124", index=f"{TORCH_INDEX}/cu124", tag="cp311-cp311-linux_x86_64"
            ),
            _pkg("six", "1.16.0"),
            _pkg("idna", "3.10"),
            _pkg("numpy", "2.3.0"),
            _pkg("filelock", "3.16.1", seed="b"),
            _pkg("sympy", "1.13.1", index="https://mirror.example/simple"),
            _pkg("tqdm", "4.66.0"),
            _pkg("requests", "2.32.0"),
            _pkg("jinja2", "3.1.4", marker="sys_platform == 'linux'"),
            _pkg("mpmath", "1.3.0", requires_python=">=3.8"),
            _pkg("nvidia-cuda-runtime-cu12", "12.4.127"),
            _pkg("nvidia-cudnn-cu12", "9.1.0.70"),
        ],
        variant="cu124",
    )


def _new() -> Pylock:
    return _lock(
        [
            _pkg(
                "torch", "2.6.0+cu126", index=f"{TORCH_INDEX}/cu126", tag="cp311-cp311-linux_x86_64"
            ),
            _pkg("six", "1.17.0"),
            _pkg("idna", "3.10+evil", host="evil.example"),
            _pkg("numpy", "2.2.0"),
            _pkg("filelock", "3.16.1", seed="c"),
            _pkg("sympy", "1.13.1"),
            _pkg("requests", "2.32.0", extra_wheel=True),
            _pkg("jinja2", "3.1.4"),
            _pkg("mpmath", "1.3.0", requires_python=">=3.9"),
            _pkg("pyyaml", "6.0.2"),
            _pkg("nvidia-cuda-runtime-cu12", "12.6.77"),
            _pkg("nvidia-cudnn-cu12", "9.5.1.17"),
        ],
        variant="cu126",
        python="3.12",
        platforms=("linux-x86_64", "macos-arm64"),
    )


def _kinds() -> dict[str, set[ChangeKind]]:
    result: dict[str, set[ChangeKind]] = {}
    for change in diff_locks(_old(), _new(), family=FAMILY).all_changes():
        result.setdefault(change.name, set()).add(change.kind)
    return result


def test_every_change_type_is_detected() -> None:
    kinds = _kinds()
    assert kinds["torch"] == {ChangeKind.VARIANT_CHANGED}  # its index move is expected
    assert kinds["six"] == {ChangeKind.UPGRADED}
    assert kinds["idna"] == {ChangeKind.SOURCE_CHANGED}
    assert kinds["numpy"] == {ChangeKind.DOWNGRADED}
    assert kinds["filelock"] == {ChangeKind.HASH_CHANGED}
    assert kinds["sympy"] == {ChangeKind.INDEX_CHANGED}
    assert kinds["tqdm"] == {ChangeKind.REMOVED}
    assert kinds["pyyaml"] == {ChangeKind.ADDED}
    assert kinds["requests"] == {ChangeKind.ARTIFACTS_CHANGED}
    assert kinds["jinja2"] == {ChangeKind.MARKER_CHANGED}
    assert kinds["mpmath"] == {ChangeKind.REQUIRES_PYTHON_CHANGED}
    assert {c.kind for c in diff_locks(_old(), _new(), family=FAMILY).all_changes()} == set(
        ChangeKind
    )
    assert kinds[""] == {
        ChangeKind.PYTHON_CHANGED,
        ChangeKind.REQUIRES_PYTHON_CHANGED,
        ChangeKind.VARIANT_CHANGED,
        ChangeKind.PLATFORMS_CHANGED,
        ChangeKind.ENVIRONMENTS_CHANGED,
    }


def test_security_changes_come_first_and_runtime_collapses() -> None:
    result = diff_locks(_old(), _new(), family=FAMILY)
    security = [c for c in result.changes if c.security]
    assert [(c.kind, c.name) for c in security] == [
        (ChangeKind.SOURCE_CHANGED, "idna"),
        (ChangeKind.INDEX_CHANGED, "sympy"),
        (ChangeKind.HASH_CHANGED, "filelock"),
    ]
    assert result.changes[: len(security)] == tuple(security)
    assert result.runtime is not None
    assert (result.runtime.old_cuda, result.runtime.new_cuda) == ("12.4", "12.6")
    assert {c.name for c in result.runtime.changes} == {
        "nvidia-cuda-runtime-cu12",
        "nvidia-cudnn-cu12",
    }
    assert all(c.name and not c.name.startswith("nvidia") for c in result.changes if c.name)


def test_identical_locks_have_no_changes() -> None:
    assert diff_locks(_old(), _old(), family=FAMILY).empty


def test_added_and_deleted_lock() -> None:
    added = diff_locks(None, _new(), family=FAMILY)
    assert {c.kind for c in added.all_changes()} == {ChangeKind.ADDED}
    removed = diff_locks(_old(), None, family=FAMILY)
    assert {c.kind for c in removed.all_changes()} == {ChangeKind.REMOVED}


def test_renderers_are_golden() -> None:
    result = diff_locks(_old(), _new(), family=FAMILY)
    assert_golden("diff.txt", render_text(result))
    assert_golden("diff_expanded.txt", render_text(result, expand=True))
    assert_golden("diff.md", render_markdown(result))
    assert_golden("diff.json", json.dumps(diff_json(result), indent=2) + "\n")


def test_json_schema_is_stable() -> None:
    data = diff_json(diff_locks(_old(), _new(), family=FAMILY))
    assert set(data) == {
        "schema",
        "old-exists",
        "new-exists",
        "headline",
        "counts",
        "changes",
        "cuda-runtime",
    }
    assert data["schema"] == 1
    assert set(data["changes"][0]) == {"kind", "name", "old", "new", "detail", "security"}


# ---------------------------------------------------------------------------------------
# files and git revisions through the CLI


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


def _init(repo: Path) -> None:
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    (repo / "README").write_text("x\n")
    _git(repo, "add", "README")
    _git(repo, "commit", "-qm", "start")


@pytest.fixture
def repo(isolated_env: Path) -> Path:
    _init(isolated_env)
    (isolated_env / "pylock.toml").write_text(render_lock(_old()))
    _git(isolated_env, "add", "pylock.toml")
    _git(isolated_env, "commit", "-qm", "old lock")
    (isolated_env / "pylock.toml").write_text(render_lock(_new()))
    _git(isolated_env, "commit", "-qam", "new lock")
    return isolated_env


def test_diff_two_revisions(repo: Path, cli: Cli) -> None:
    result = cli("diff", "HEAD~1", "HEAD", "--format", "json")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert any(c["name"] == "six" and c["kind"] == "upgraded" for c in data["changes"])


def test_the_cli_takes_the_torch_family_from_the_channel_data(repo: Path, cli: Cli) -> None:
    result = cli("diff", "HEAD~1", "HEAD", "--format", "json")
    torch = [c for c in json.loads(result.stdout)["changes"] if c["name"] == "torch"]
    assert [c["kind"] for c in torch] == ["variant-changed"]


def test_default_is_head_against_working_tree(repo: Path, cli: Cli) -> None:
    assert cli("diff", "--exit-code").code == 0
    (repo / "pylock.toml").write_text(render_lock(_old()))
    result = cli("diff", "--exit-code")
    assert result.code == 1
    assert "six" in result.stdout


def test_rev_colon_path_and_files(repo: Path, cli: Cli) -> None:
    (repo / "old.pylock.toml").write_text(render_lock(_old()))
    result = cli("diff", "HEAD~1:pylock.toml", "old.pylock.toml", "--exit-code")
    assert result.code == 0, result.stderr + result.stdout


def test_lock_added_between_revisions_is_all_added(repo: Path, cli: Cli) -> None:
    result = cli("diff", "HEAD~2", "HEAD", "--format", "json")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["old-exists"] is False
    assert {c["kind"] for c in data["changes"]} == {"added"}


def test_unknown_revision_is_a_usage_error(repo: Path, cli: Cli) -> None:
    result = cli("diff", "no-such-branch")
    assert result.code == 2
    assert "neither a lock file nor a git revision" in result.stderr


def test_corrupt_side_is_named(repo: Path, cli: Cli) -> None:
    (repo / "pylock.toml").write_text("[[packages]\n")
    result = cli("diff")
    assert result.code == 7
    assert "(new side)" in result.stderr


def test_git_setup_makes_git_diff_semantic_and_is_idempotent(repo: Path, cli: Cli) -> None:
    assert cli("git-setup").code == 0
    assert cli("git-setup").code == 0
    assert (repo / ".gitattributes").read_text().count("pylock*.toml diff=envlock") == 1
    shown = _git(repo, "diff", "HEAD~1", "HEAD", "--", "pylock.toml")
    assert "-six 1.16.0 [https://pypi.org/simple]" in shown
    assert "+six 1.17.0 [https://pypi.org/simple]" in shown
    assert "hashes = {" not in shown
    assert cli("git-setup", "--uninstall").code == 0
    assert "diff=envlock" not in (repo / ".gitattributes").read_text()
    raw = _git(repo, "diff", "HEAD~1", "HEAD", "--", "pylock.toml")
    assert 'version = "1.17.0"' in raw


@pytest.mark.parametrize(
    "side",
    ["--output=pwned", "--output=pwned:pylock.toml", "-p", "--git-dir=/tmp", "--exec=touch pwned"],
)
def test_a_side_never_becomes_a_git_option(side: str, repo: Path, cli: Cli) -> None:
    result = cli("diff", "--", side, "HEAD")
    assert result.code == 2, result.stderr
    assert "hint:" in result.stderr
    assert not list(repo.glob("pwned*"))


# ---------------------------------------------------------------------------------------
# a lock in history that is not UTF-8: read with U+FFFD, named, never fatal to git


def _not_utf8(lock: Pylock, where: str = 'created-by = "envlock') -> bytes:
    """The lock's TOML with two bytes that are not UTF-8 (0xff 0xfe) right after ``where``."""
    text = render_lock(lock).encode()
    assert where.encode() in text
    return text.replace(where.encode(), where.encode() + b"\xff\xfe", 1)


def _history(repo: Path, first: bytes) -> Path:
    """HEAD~1: ``first`` (bytes as committed); HEAD: the good new lock."""
    _init(repo)
    (repo / "pylock.toml").write_bytes(first)
    _git(repo, "add", "pylock.toml")
    _git(repo, "commit", "-qm", "undecodable lock")
    (repo / "pylock.toml").write_text(render_lock(_new()))
    _git(repo, "commit", "-qam", "good lock")
    return repo


def test_a_revision_that_is_not_utf8_is_diffed_with_a_warning(isolated_env: Path, cli: Cli) -> None:
    _history(isolated_env, _not_utf8(_old()))
    result = cli("diff", "HEAD~1", "HEAD")
    assert result.code == 0, result.stderr
    assert "warning: HEAD~1:pylock.toml (old side) is not valid UTF-8" in result.stderr
    assert "upgraded" in result.stdout


def test_a_revision_with_a_byte_order_mark_is_read_like_a_file(
    isolated_env: Path, cli: Cli
) -> None:
    _history(isolated_env, b"\xef\xbb\xbf" + render_lock(_old()).encode())
    result = cli("diff", "HEAD~1", "HEAD")
    assert result.code == 0, result.stderr
    assert "upgraded" in result.stdout


def test_a_revision_that_is_not_utf8_nor_toml_says_both(isolated_env: Path, cli: Cli) -> None:
    _history(isolated_env, _not_utf8(_old(), where="lock-version"))
    result = cli("diff", "HEAD~1", "HEAD")
    assert result.code == 7, result.stderr
    assert "HEAD~1:pylock.toml (old side, not valid UTF-8) is not valid TOML" in result.stderr


def test_textconv_notes_bytes_that_are_not_utf8_and_exits_0(isolated_env: Path, cli: Cli) -> None:
    (isolated_env / "pylock.toml").write_bytes(_not_utf8(_old()))
    result = cli("textconv", "pylock.toml")
    assert result.code == 0, result.stderr
    first, *rest = result.stdout.splitlines()
    assert first == "# envlock: pylock.toml is not valid UTF-8; undecodable bytes shown as U+FFFD"
    assert any(line.startswith("six 1.16.0 ") for line in rest)


def test_git_log_p_survives_a_lock_that_is_not_utf8(isolated_env: Path, cli: Cli) -> None:
    repo = _history(isolated_env, _not_utf8(_old()))
    assert cli("git-setup").code == 0
    shown = _git(repo, "log", "-p", "--format=commit %s", "--", "pylock.toml")
    assert "+# envlock: pylock.toml is not valid UTF-8" in shown  # the lock's first commit
    assert "-six 1.16.0 " in shown
    assert "+six 1.17.0 " in shown
