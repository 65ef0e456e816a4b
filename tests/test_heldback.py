"""Issue 18: the packages torchenv.toml names come first, and what holds one back is said.

The fixture packages (tests/support/catalog.held_back) have the shape of the mission's own
example: uv's order of decisions locks heldback-data 2.0 (datasets 2.14.4) although 5.0
(datasets 5.0.1) resolves; 6.0 (datasets 5.2.0) needs heldback-hub>=2, which the pinned
heldback-models 1.0 (transformers 4.40.0) forbids.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from envlock import api
from envlock.errors import EnvlockError, ResolutionError
from envlock.heldback import describe_held_back
from envlock.io import uv
from envlock.io.ports import AuthFor
from envlock.lockfile import render_lock
from tests.conftest import Cli
from tests.support import catalog
from tests.support.indexes import IndexServer, StandardIndexes, write_index
from tests.support.wheels import Dist
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


def _attempts(monkeypatch: pytest.MonkeyPatch, server: IndexServer) -> list[tuple[bool, str, int]]:
    """(offline, what uv answered, requests the index got) for every uv lock of a run."""
    real = uv.lock_with_uv
    calls: list[tuple[bool, str, int]] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        before, answer = len(server.requests), "a lock"
        try:
            return real(*args, **kwargs)
        except EnvlockError as exc:
            answer = "no version" if isinstance(exc, ResolutionError) else type(exc).__name__
            raise
        finally:
            sent = len(server.requests) - before
            calls.append((kwargs.get("offline", False), answer, sent))

    monkeypatch.setattr(uv, "lock_with_uv", counted)
    return calls


def test_a_re_resolve_that_finds_no_version_is_answered_by_uv_s_cache(
    fixture_env: Path, indexes: StandardIndexes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fixture index sends no caching headers (as many mirrors and proxies), so uv asks it
    again for every page on each run; the re-resolve that explains what holds heldback-data
    back, seconds after the resolve, reads only pages that resolve read."""
    spec = write_spec(fixture_env, packages=NAMED)
    calls = _attempts(monkeypatch, indexes.pypi_server)

    run = api.lock(spec)

    (one,) = run.results
    assert one.settled is not None and one.settled.held_back  # heldback-data 5.0 (newest 6.0)
    (main, *re_resolves) = calls
    assert main[0] is False and main[2] > 0
    answered = [i for i, c in enumerate(re_resolves) if c[:2] == (True, "no version")]
    assert answered, calls
    assert all(sent == 0 for offline, _, sent in re_resolves if offline), calls
    for i in answered:  # taken: the index was not asked again
        assert i + 1 == len(re_resolves) or re_resolves[i + 1][0] is True, calls
    # a lock from the cache alone is never taken: each is asked of the index
    for i, (offline, answer, _) in enumerate(re_resolves):
        if offline and answer == "a lock":
            assert re_resolves[i + 1][0] is False, calls


def _online_only(monkeypatch: pytest.MonkeyPatch) -> None:
    real = uv.lock_with_uv
    monkeypatch.setattr(uv, "lock_with_uv", lambda *a, **k: real(*a, **{**k, "offline": False}))


def _relock(
    work: Path,
    fixture_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    before: Sequence[Dist],
    after: Sequence[Dist],
    first: dict[str, str],
    then: dict[str, str],
    online: bool,
) -> tuple[str, list[str], list[str]]:
    """Lock ``first`` against a PyPI of the catalog and ``before``, make every page in uv's
    cache 14 days old, publish ``after``, lock ``then``: the lock's bytes, what was held back
    and the notes. ``online``: every re-resolve asks the index (the reference answer)."""
    root = work / ("online" if online else "cache-first")
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(root / "cache"))
    replaced = {(d.name, d.version) for d in before}
    base = [d for d in catalog.pypi() if (d.name, d.version) not in replaced]
    write_index(root / "pypi", "/simple", [*base, *before], style="pypi")
    server = IndexServer({"/simple": (root / "pypi", "pypi")})
    try:
        with monkeypatch.context() as patched:
            patched.setenv("ENVLOCK_PYPI_INDEX_URL", f"{server.base_url}/simple")
            (fixture_env / "pylock.toml").unlink(missing_ok=True)
            api.lock(write_spec(fixture_env, **first))
            old = time.time() - 14 * 86400
            for page in (root / "cache" / "uv").glob("simple-v*/**/*.rkyv"):
                os.utime(page, (old, old))
            write_index(root / "pypi", "/simple", [*base, *before, *after], style="pypi")
            if online:
                _online_only(patched)
            (one,) = api.lock(write_spec(fixture_env, **then)).results
    finally:
        server.close()
    assert one.settled is not None
    held = [describe_held_back(h) for h in one.settled.held_back]
    # two servers: their URLs differ, and with them the spec's digest
    text = render_lock(one.lock).replace(server.base_url, "http://index")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("spec-digest"))
    return text, held, list(one.settled.notes)


def _heldback_with(extra: str) -> list[Dist]:
    """The held-back catalog with heldback-data needing zz-lib (2.0: below 2), and zz-lib 2.0
    needing zz-extra."""
    dists = [
        replace(d, requires_dist=(*d.requires_dist, "zz-lib<2" if d.version == "2.0" else "zz-lib"))
        if d.name == "heldback-data"
        else d
        for d in catalog.held_back()
    ]
    return [
        *dists,
        Dist(name="zz-lib", version="1.0"),
        Dist(name="zz-lib", version="2.0", requires_dist=(extra,)),
        Dist(name="zz-extra", version="1.0"),
    ]


def _dist(name: str, version: str, *requires: str) -> Dist:
    return Dist(name=name, version=version, requires_dist=requires)


def _needs_a_newer(top: str, dep: str) -> dict[str, list[Dist]]:
    """``top`` 2.0 needs ``dep``>=2, which is published after the first lock."""
    return {
        "before": [_dist(top, "1.0"), _dist(top, "2.0", f"{dep}>=2"), _dist(dep, "1.0")],
        "after": [_dist(dep, "2.0")],
    }


CASES = {
    # uv offline passed over zz-lib 2.0 (its needs were not cached) without a word, and the raised
    # lock held zz-lib 1.0 where the index gives 2.0 and zz-extra
    "a-raise-from-the-cache-alone": {
        "before": _heldback_with("zz-extra"),
        "after": [],
        "first": {"packages": 'six = "*"'},
        "then": {"packages": NAMED},
    },
    # torch's page from another variant's index was older than every page of this lock
    "another-variant-s-pages": {
        **_needs_a_newer("zz-t", "zz-q"),
        "first": {"cuda": "12.4", "packages": 'zz-t = "*"'},
        "then": {"cuda": "12.6", "packages": 'zz-t = "*"'},
    },
    # "build" is a word of uv's and the name of pypa's build
    "a-package-named-like-a-word": {
        **_needs_a_newer("zz-tool", "build"),
        "first": {"packages": 'zz-tool = "*"'},
        "then": {"packages": 'zz-tool = "*"\nsix = "*"'},
    },
}


# uv's explanation runs past the 30 lines envlock shows, and the one package whose page is old
# (zz-z: 1.0 needs zz-b>=5, held below 5; the new 2.0 needs nothing) is named after the cut
LONG = 40
CASES["a-name-past-the-shown-lines"] = {
    "before": [
        _dist("zz-b", "1.0"),
        _dist("zz-b", "5.0"),
        _dist("zz-c", "1.0", "zz-d<1", *[f"zz-y{k}" for k in range(LONG)]),
        _dist("zz-c", "2.0", "zz-d>=1"),
        _dist("zz-d", "0.1"),
        *[_dist("zz-d", f"1.{k}", f"zz-y{k}>=2") for k in range(LONG)],
        _dist("zz-d", f"1.{LONG}", "zz-z"),
        _dist("zz-z", "1.0", "zz-b>=5"),
        *[_dist(f"zz-y{k}", "1.0") for k in range(LONG)],
    ],
    "after": [_dist("zz-z", "2.0")],
    "first": {"packages": 'zz-c = "*"\nzz-b = "<5"'},
    "then": {"packages": 'zz-c = "*"\nzz-b = "<5"\nsix = "*"'},
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_re_resolve_from_the_cache_gives_what_the_index_gives(
    case: dict[str, Any], tmp_path: Path, fixture_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_cache = _relock(tmp_path, fixture_env, monkeypatch, online=False, **case)
    from_index = _relock(tmp_path, fixture_env, monkeypatch, online=True, **case)

    assert from_cache == from_index
