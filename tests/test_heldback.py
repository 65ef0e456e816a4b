"""Issue 18: the packages torchenv.toml names come first, and what holds one back is said.

The fixture packages (tests/support/catalog.held_back) have the shape of the mission's own
example: uv's order of decisions locks heldback-data 2.0 (datasets 2.14.4) although 5.0
(datasets 5.0.1) resolves; 6.0 (datasets 5.2.0) needs heldback-hub>=2, which the pinned
heldback-models 1.0 (transformers 4.40.0) forbids.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from envlock import api
from envlock.io import uv
from envlock.io.ports import AuthFor
from envlock.lockfile import render_lock
from tests.conftest import Cli
from tests.support.indexes import StandardIndexes
from tests.test_lock_e2e import read_lock, versions, write_spec

NAMED = 'heldback-data = "*"\nheldback-engine = "==1.0"\nheldback-models = "==1.0"'
HELD_BY_MODELS = (
    "Held back: heldback-data 5.0 (newest 6.0) by heldback-models 1.0 through heldback-hub<2"
)


def test_a_named_package_uv_holds_back_is_raised_to_the_newest_that_resolves(
    fixture_env: Path, cli: Cli
) -> None:
    write_spec(fixture_env, packages=NAMED)

    result = cli("lock")

    assert result.code == 0, result.stderr
    locked = versions(read_lock(fixture_env))
    assert (locked["heldback-data"], locked["heldback-fs"]) == ("5.0", "2.0")
    assert "Raised heldback-data 2.0 -> 5.0" in result.stderr
    assert HELD_BY_MODELS in result.stderr.splitlines()


def test_lock_json_carries_what_was_raised_and_what_is_held_back(
    fixture_env: Path, cli: Cli
) -> None:
    write_spec(fixture_env, packages=NAMED)

    result = cli("lock", "--json")

    assert result.code == 0, result.stderr
    (one,) = json.loads(result.stdout)["locks"]
    assert [(r["name"], r["from"], r["to"]) for r in one["raised"]] == [
        ("heldback-data", "2.0", "5.0")
    ]
    (held,) = one["held_back"]
    assert {k: held[k] for k in ("name", "locked", "newest", "by", "by_version")} == {
        "name": "heldback-data",
        "locked": "5.0",
        "newest": "6.0",
        "by": "heldback-models",
        "by_version": "1.0",
    }
    assert held["requirement"] == "heldback-hub<2"


def test_raising_gives_the_same_bytes_for_the_same_inputs(fixture_env: Path, cli: Cli) -> None:
    write_spec(fixture_env, packages=NAMED)
    assert cli("lock").code == 0
    first = (fixture_env / "pylock.toml").read_bytes()

    again = cli("lock", "--upgrade")

    assert again.code == 0, again.stderr
    assert (fixture_env / "pylock.toml").read_bytes() == first
    assert cli("lock", "--check").code == 0


def test_a_version_the_previous_lock_keeps_is_reported_and_moves_only_with_upgrade_package(
    fixture_env: Path, cli: Cli
) -> None:
    spec = write_spec(fixture_env, packages=NAMED.replace('"*"', '"==2.0"'))
    assert cli("lock").code == 0
    spec.write_text(spec.read_text().replace('"==2.0"', '"*"'))

    kept = cli("lock")

    assert kept.code == 0, kept.stderr
    assert versions(read_lock(fixture_env))["heldback-data"] == "2.0"  # the preference holds
    assert (
        "Held back: heldback-data 2.0 (newest 6.0) by the previous lock through "
        "heldback-data==2.0 (5.0 resolves: `envlock lock -P heldback-data` takes it; 6.0 is "
        "held back by heldback-models 1.0 through heldback-hub<2)"
    ) in kept.stderr.splitlines()
    moved = cli("lock", "-P", "heldback-data")
    assert moved.code == 0, moved.stderr
    assert versions(read_lock(fixture_env))["heldback-data"] == "5.0"
    assert HELD_BY_MODELS in moved.stderr.splitlines()


def test_lock_check_with_json_is_a_usage_error(fixture_env: Path, cli: Cli) -> None:
    write_spec(fixture_env, packages=NAMED)

    result = cli("lock", "--check", "--json")

    assert result.code == 2
    assert "error: --json reports what a lock run did" in result.stderr


@dataclass
class UnreadablePages:
    """An OfferReader whose every page fails (a proxy refusing envlock's own reads)."""

    asked: list[tuple[str, str]] = field(default_factory=list)

    def offers(
        self, wanted: Sequence[tuple[str, str]], auth: AuthFor
    ) -> dict[tuple[str, str], str]:
        self.asked += wanted
        return {key: f"{key[0]}/{key[1]}/ answered HTTP 407" for key in wanted}


def test_an_unreadable_page_skips_the_check_with_a_note_and_the_lock_is_written(
    fixture_env: Path, indexes: StandardIndexes
) -> None:
    spec = write_spec(fixture_env, packages=NAMED)
    pages = UnreadablePages()

    run = api.lock(spec, offer_reader=pages)

    (one,) = run.results
    assert one.settled is not None
    assert (one.settled.raised, one.settled.held_back) == ((), ())
    assert one.settled.notes[0] == (
        f"heldback-data: not checked against its index ({indexes.pypi_url}/heldback-data/ "
        "answered HTTP 407)"
    )
    assert sorted(name for _, name in pages.asked) == [
        "heldback-data",
        "heldback-engine",
        "heldback-models",
    ]
    assert versions(read_lock(fixture_env))["heldback-data"] == "2.0"  # uv's own answer


def test_the_re_resolves_ask_uv_s_cache_and_send_no_request_for_pages_just_read(
    fixture_env: Path, indexes: StandardIndexes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fixture index sends no caching headers (like many mirrors and proxies), so uv asks
    it again for every page on each run; a re-resolve seconds after the resolve need not."""
    spec = write_spec(fixture_env, packages=NAMED)
    real = uv.lock_with_uv
    calls: list[tuple[bool, int]] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        before = len(indexes.pypi_server.requests)
        try:
            return real(*args, **kwargs)
        finally:
            calls.append((kwargs.get("offline", False), len(indexes.pypi_server.requests) - before))

    monkeypatch.setattr(uv, "lock_with_uv", counted)

    run = api.lock(spec)

    (one,) = run.results
    assert one.settled is not None and one.settled.raised  # heldback-data 2.0 -> 5.0
    (main_offline, main_requests), *re_resolves = calls
    assert not main_offline and main_requests > 0
    assert len(re_resolves) == one.settled.resolves >= 2
    assert sum(sent for _, sent in re_resolves) == 0, calls


def test_a_re_resolve_from_the_cache_gives_the_lock_the_index_gives(
    fixture_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = write_spec(fixture_env, packages=NAMED)
    from_cache = api.lock(spec).results[0]
    # no page counts as fresh but the lock's own: what the lock speaks of beyond them is asked
    monkeypatch.setattr(uv, "page_times", lambda _cache: {})
    real = uv.lock_with_uv
    monkeypatch.setattr(uv, "lock_with_uv", lambda *a, **k: real(*a, **{**k, "offline": False}))
    (fixture_env / "pylock.toml").unlink()  # the same inputs again: nothing to prefer
    from_index = api.lock(spec).results[0]

    assert render_lock(from_cache.lock) == render_lock(from_index.lock)
    assert from_cache.settled == from_index.settled
