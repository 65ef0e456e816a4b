"""envlock diff: a change of who built a package or where it comes from is a source change.

A local version label (+cu124 -> +evil), an artifact host (files.example -> evil.example) or
an index that is not what the lock's own variant change explains must reach the reviewer
first, flagged, and fail --exit-code; a deliberate torch build change stays a variant change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from packaging.pylock import Pylock

from envlock.diff import (
    ChangeKind,
    diff_json,
    diff_locks,
    render_markdown,
    render_summary,
    render_text,
)
from envlock.lockfile import LockMeta, render_lock
from tests.conftest import Cli

PYPI = "https://pypi.org/simple"
TORCH = "https://download.pytorch.org/whl"
FAMILY = ("torch", "torchvision", "torchaudio")


def _pkg(
    name: str,
    version: str,
    *,
    host: str = "files.example",
    index: str = PYPI,
    seed: str = "a",
) -> dict[str, Any]:
    wheel = f"{name}-{version}-py3-none-any.whl"
    return {
        "name": name,
        "version": version,
        "index": index,
        "wheels": [{"url": f"https://{host}/{wheel}", "hashes": {"sha256": seed * 64}}],
    }


def _torch(
    label: str, *, index: str | None = None, host: str = "download.pytorch.org"
) -> dict[str, Any]:
    return _pkg("torch", f"2.6.0+{label}", host=host, index=index or f"{TORCH}/{label}")


def _lock(*packages: dict[str, Any], variant: str = "cu124") -> Pylock:
    meta = LockMeta(
        spec_digest="sha256:" + "0" * 64,
        envlock_version="0.1.0",
        python="3.11",
        platforms=("linux-x86_64",),
        torch="2.6",
        variant=variant,
        variant_index=f"{TORCH}/{variant}",
        pypi_index=PYPI,
        torch_source={"linux-x86_64": "pytorch-index"},
    )
    return Pylock.from_dict(
        {
            "lock-version": "1.0",
            "created-by": "envlock",
            "packages": list(packages),
            "tool": {"envlock": meta.to_tool()},
        }
    )


def _kinds(old: Pylock, new: Pylock, name: str) -> set[ChangeKind]:
    return {c.kind for c in diff_locks(old, new, family=FAMILY).all_changes() if c.name == name}


def test_a_local_label_from_another_host_is_a_source_change() -> None:
    old = _lock(_pkg("six", "1.17.0"))
    new = _lock(_pkg("six", "1.17.0+evil", host="evil.example"))
    (change,) = diff_locks(old, new, family=FAMILY).changes
    assert (change.kind, change.security) == (ChangeKind.SOURCE_CHANGED, True)
    assert "evil.example" in change.detail
    assert "+evil" in change.detail


def test_a_same_hash_move_to_another_host_is_a_source_change() -> None:
    old = _lock(_pkg("six", "1.17.0"))
    new = _lock(_pkg("six", "1.17.0", host="evil.example"))
    (change,) = diff_locks(old, new, family=FAMILY).changes
    assert change.kind is ChangeKind.SOURCE_CHANGED
    assert "same bytes" in change.detail


def test_a_torch_build_that_follows_the_lock_variant_is_a_variant_change() -> None:
    old = _lock(_torch("cu124"), variant="cu124")
    new = _lock(_torch("cu126"), variant="cu126")
    assert _kinds(old, new, "torch") == {ChangeKind.VARIANT_CHANGED}


def test_a_torch_build_from_pypi_has_no_label_to_follow_the_variant() -> None:
    old = _lock(_pkg("torch", "2.6.0", host="download.pytorch.org"), variant="cu124")
    new = _lock(_torch("cu126"), variant="cu126")
    assert _kinds(old, new, "torch") == {ChangeKind.VARIANT_CHANGED}


def test_a_torch_label_change_without_a_lock_variant_change_is_a_source_change() -> None:
    old = _lock(_torch("cu124"), variant="cu124")
    new = _lock(_torch("cu126", index=f"{TORCH}/cu124"), variant="cu124")
    assert _kinds(old, new, "torch") == {ChangeKind.SOURCE_CHANGED}


def test_a_torch_label_that_is_not_the_new_variant_is_a_source_change() -> None:
    old = _lock(_torch("cu124"), variant="cu124")
    new = _lock(_torch("evil", index=f"{TORCH}/cu124"), variant="cu126")
    assert _kinds(old, new, "torch") == {ChangeKind.SOURCE_CHANGED}


def test_a_label_on_a_package_outside_the_torch_family_is_a_source_change() -> None:
    old = _lock(_torch("cu124"), _pkg("six", "1.17.0"), variant="cu124")
    new = _lock(_torch("cu126"), _pkg("six", "1.17.0+cu126"), variant="cu126")
    assert _kinds(old, new, "six") == {ChangeKind.SOURCE_CHANGED}


def test_a_variant_change_onto_an_index_the_lock_does_not_name_is_an_index_change() -> None:
    old = _lock(_torch("cu124"), variant="cu124")
    new = _lock(_torch("cu126", index="https://evil.example/whl/cu126"), variant="cu126")
    assert _kinds(old, new, "torch") == {ChangeKind.INDEX_CHANGED, ChangeKind.VARIANT_CHANGED}


def test_a_torch_build_whose_files_move_host_is_also_a_source_change() -> None:
    old = _lock(_torch("cu124"), variant="cu124")
    new = _lock(_torch("cu126", host="evil.example"), variant="cu126")
    assert _kinds(old, new, "torch") == {ChangeKind.SOURCE_CHANGED, ChangeKind.VARIANT_CHANGED}


def test_source_changes_come_before_every_other_change() -> None:
    old = _lock(_pkg("aaa", "1.0", seed="b"), _pkg("zzz", "1.0"))
    new = _lock(_pkg("aaa", "1.0", seed="c"), _pkg("zzz", "1.0", host="evil.example"))
    kinds = [c.kind for c in diff_locks(old, new, family=FAMILY).changes]
    assert kinds == [ChangeKind.SOURCE_CHANGED, ChangeKind.HASH_CHANGED]


def _moved() -> tuple[Pylock, Pylock]:
    return _lock(_pkg("six", "1.17.0")), _lock(_pkg("six", "1.17.0", host="evil.example"))


def test_text_flags_a_source_change() -> None:
    text = render_text(diff_locks(*_moved(), family=FAMILY))
    assert text.splitlines()[1].startswith("!  source changed  six")


def test_markdown_flags_a_source_change() -> None:
    markdown = render_markdown(diff_locks(*_moved(), family=FAMILY))
    assert "| ⚠️ | source changed | six |" in markdown
    assert "1 security-relevant change(s)" in markdown


def test_json_marks_a_source_change_as_security() -> None:
    (change,) = diff_json(diff_locks(*_moved(), family=FAMILY))["changes"]
    assert (change["kind"], change["security"]) == ("source-changed", True)


def test_exit_code_fails_on_a_same_hash_host_move(isolated_env: Path, cli: Cli) -> None:
    old, new = _moved()
    (isolated_env / "old.toml").write_text(render_lock(old))
    (isolated_env / "new.toml").write_text(render_lock(new))
    result = cli("diff", "old.toml", "new.toml", "--exit-code")
    assert result.code == 1, result.stderr
    assert "same bytes" in result.stdout


def test_git_textconv_lines_show_an_artifact_host() -> None:
    old, new = _moved()
    assert render_summary(old) != render_summary(new)
    assert "evil.example" in render_summary(new)


def test_a_bundled_copy_of_the_same_bytes_is_not_a_source_change() -> None:
    # `envlock bundle` keeps some files, each as a relative path: pinned bytes, no server.
    sdist = {"url": "https://files.example/six-1.17.0.tar.gz", "hashes": {"sha256": "b" * 64}}
    old = _lock({**_pkg("six", "1.17.0"), "sdist": sdist})
    bundled = {"path": "wheels/six-1.17.0-py3-none-any.whl", "hashes": {"sha256": "a" * 64}}
    new = _lock({**_pkg("six", "1.17.0"), "wheels": [bundled]})
    assert _kinds(old, new, "six") == {ChangeKind.ARTIFACTS_CHANGED}
