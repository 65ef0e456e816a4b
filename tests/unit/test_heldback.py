"""envlock.heldback: what an index offers for a lock, the raising search over a fake uv, and
who holds a package back according to uv's explanation (pages.parse_offers feeds it)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import pytest
from packaging.pylock import Pylock
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from envlock.cached_probe import cache_first
from envlock.errors import IndexUnavailableError, ResolutionError, UvResolutionError
from envlock.heldback import (
    PREVIOUS_LOCK,
    SPEC_FILE,
    Offer,
    Target,
    describe_held_back,
    explain,
    offered_versions,
    settle,
)
from envlock.io.pages import JSON_TYPE, parse_offers
from envlock.spec import parse_spec_text
from envlock.uv_explain import explanation_words
from tests.unit.data import lock, package, wheel

SPEC = """\
[env]
python = "3.11"
platforms = {platforms}
[torch]
version = "2.6"
cuda = "cpu"
"""


def _spec(platforms: str = '["linux-x86_64"]') -> object:
    return parse_spec_text(SPEC.format(platforms=platforms))


def _pure(name: str, version: str) -> dict[str, object]:
    module = name.replace("-", "_")
    return package(name, version, wheel(f"https://f/{module}-{version}-py3-none-any.whl"))


def _offer(filename: str, **extra: object) -> Offer:
    return Offer(filename=filename, **extra)  # type: ignore[arg-type]


LINUX = "d-{v}-cp311-cp311-manylinux_2_17_x86_64.whl"
MAC = "d-{v}-py3-none-macosx_11_0_arm64.whl"
OFFERS = {
    "newest-first": ([_offer(LINUX.format(v=v)) for v in ("1.0", "3.0", "2.0")], {}, "3.0 2.0 1.0"),
    "yanked": (
        [_offer(LINUX.format(v="1.0")), _offer(LINUX.format(v="2.0"), yanked=True)],
        {},
        "1.0",
    ),
    "python-3.12-only": (
        [_offer(LINUX.format(v="1.0")), _offer("d-2.0-py3-none-any.whl", requires_python=">=3.12")],
        {},
        "1.0",
    ),
    "a-patch-floor-the-minor-does-not-cover": (
        [_offer("d-2.0-py3-none-any.whl", requires_python=">=3.11.4")],
        {},
        "",
    ),
    "other-python-tag": ([_offer("d-2.0-cp312-cp312-manylinux_2_17_x86_64.whl")], {}, ""),
    "sdist-builds-anywhere": ([_offer("d-2.0.tar.gz")], {}, "2.0"),
    "prereleases-listed": ([_offer("d-3.0rc1-py3-none-any.whl")], {}, "3.0rc1"),
    "one-platform-of-two": (
        [_offer(LINUX.format(v="2.0")), _offer(LINUX.format(v="1.0")), _offer(MAC.format(v="1.0"))],
        {"platforms": '["linux-x86_64", "macos-arm64"]'},
        "1.0",
    ),
    "marker-limits-the-platforms": (
        [_offer(LINUX.format(v="2.0"))],
        {"platforms": '["linux-x86_64", "macos-arm64"]', "marker": "sys_platform == 'linux'"},
        "2.0",
    ),
    "uploaded-after-the-cutoff": (
        [
            _offer("d-1.0-py3-none-any.whl", upload_time=datetime(2025, 1, 1, tzinfo=UTC)),
            _offer("d-2.0-py3-none-any.whl", upload_time=datetime(2025, 9, 1, tzinfo=UTC)),
            _offer("d-3.0-py3-none-any.whl"),  # no upload time: uv drops it under a cut-off
        ],
        {"cutoff": datetime(2025, 6, 1, tzinfo=UTC)},
        "1.0",
    ),
}


@pytest.mark.parametrize(("offers", "options", "expected"), OFFERS.values(), ids=OFFERS.keys())
def test_offered_versions(offers: list[Offer], options: dict[str, str], expected: str) -> None:
    spec = _spec(options.get("platforms", '["linux-x86_64"]'))
    marker = options.get("marker")
    requirement = Requirement(f"d; {marker}" if marker else "d")
    cutoff = options.get("cutoff")
    found = offered_versions(offers, spec=spec, requirement=requirement, cutoff=cutoff)  # type: ignore[arg-type]
    assert " ".join(map(str, found)) == expected


# ---------------------------------------------------------------------------------------
# the search, over a fake uv: d resolves up to ``best``; p is another named package

D_VERSIONS = ("1.0", "2.0", "3.0", "4.0", "5.0", "6.0", "7.0", "8.0", "9.0")
WHY = (
    "cause: Because d>=9.0 depends on hub>=2 and all versions of p depend on hub<2, we can "
    "conclude that d>=9.0 and all versions of p are incompatible.\n"
    "And because your project depends on d>=9.0 and p==1.0, we can conclude that your "
    "project's requirements are unsatisfiable."
)


def _lock(d: str, p: str = "1.0") -> Pylock:
    return lock(_pure("d", d), _pure("p", p))


class FakeUv:
    """Resolves d to the newest version <= ``best`` its requirement allows (or refuses, with
    WHY); records every request; ``p_after`` is what it locks p at (a trade when lower)."""

    def __init__(self, best: str, p_after: str = "1.0") -> None:
        self.best, self.p_after = Version(best), p_after
        self.asked: list[dict[NormalizedName, str]] = []

    def __call__(self, packages: tuple[Requirement, ...]) -> Pylock:
        asked = {canonicalize_name(r.name): r for r in packages}
        self.asked.append({n: str(r.specifier) for n, r in asked.items()})
        fits = [v for v in map(Version, D_VERSIONS) if asked["d"].specifier.contains(v)]
        fits = [v for v in fits if v <= self.best]
        if not fits:
            raise ResolutionError("no set of packages satisfies torchenv.toml", detail=WHY)
        return _lock(str(max(fits)), self.p_after)


DIRECT = frozenset({canonicalize_name("d"), canonicalize_name("p"), canonicalize_name("torch")})


def _targets(*, preferred: str | None = None, d: str = "d") -> list[Target]:
    offered = tuple(Version(v) for v in reversed(D_VERSIONS))
    return [
        Target(
            name=canonicalize_name("d"),
            requirement=Requirement(d),
            offered=offered,
            preferred=Version(preferred) if preferred else None,
        ),
        Target(
            name=canonicalize_name("p"),
            requirement=Requirement("p==1.0"),
            offered=(Version("1.0"),),
        ),
    ]


def _settle(uv: FakeUv, targets: Sequence[Target], **options: object):  # type: ignore[no-untyped-def]
    named = tuple(t.requirement for t in targets)
    return settle(_lock("1.0"), named, targets, uv, direct=DIRECT, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(("best", "resolves"), [("9.0", 1), ("1.0", 2), ("5.0", 4), ("2.0", 5)])
def test_the_newest_version_that_resolves_is_found_with_few_re_resolves(
    best: str, resolves: int
) -> None:
    uv = FakeUv(best)
    settled = _settle(uv, _targets())
    assert str(_lowest_d(settled.lock)) == best
    assert len(uv.asked) == resolves
    assert [str(r.now) for r in settled.raised] == ([] if best == "1.0" else [best])


def _lowest_d(found: Pylock) -> Version:
    return min(Version(str(p.version)) for p in found.packages if p.name == "d")


def test_every_re_resolve_keeps_the_other_named_packages_at_their_versions() -> None:
    uv = FakeUv("5.0")
    _settle(uv, _targets())
    assert uv.asked[0] == {"d": ">=9.0", "p": "==1.0,>=1.0"}


def test_a_raise_that_lowers_another_named_package_is_refused() -> None:
    uv = FakeUv("5.0", p_after="0.9")
    settled = _settle(uv, _targets())
    assert settled.raised == ()
    assert _lowest_d(settled.lock) == Version("1.0")


def test_the_bound_stops_the_search_and_says_so() -> None:
    settled = _settle(FakeUv("3.0"), _targets(), budget=2)
    assert [str(r.now) for r in settled.raised] == ["3.0"]  # the best it saw
    assert settled.notes == (
        "d: stopped after 2 re-resolves (envlock's bound); a version between 3.0 and 9.0 may "
        "resolve too: pin it in [packages] to try",
    )


def test_the_same_answers_give_the_same_result() -> None:
    assert _settle(FakeUv("5.0"), _targets()) == _settle(FakeUv("5.0"), _targets())


def test_what_blocks_the_newest_is_named_with_its_requirement() -> None:
    (held,) = _settle(FakeUv("5.0"), _targets()).held_back
    assert (held.locked, held.newest, held.by, held.by_version, held.requirement) == (
        Version("5.0"),
        Version("9.0"),
        "p",
        Version("1.0"),
        "hub<2",
    )
    assert describe_held_back(held) == "Held back: d 5.0 (newest 9.0) by p 1.0 through hub<2"


class LongWindedUv(FakeUv):
    """Refuses as FakeUv does, with uv's explanation past what envlock shows (30 lines): the
    holder comes after the cut."""

    def __call__(self, packages: tuple[Requirement, ...]) -> Pylock:
        try:
            return super().__call__(packages)
        except ResolutionError as exc:
            chain = "".join(
                f"Because x{k}>=1 depends on y{k}<1, x{k} cannot be used.\n" for k in range(40)
            )
            whole = f"error: No solution found\n{chain}{WHY}"
            shown = "\n".join([*whole.splitlines()[:30], "... (12 more lines)"])
            raise UvResolutionError(exc.message, hint="", detail=shown, explanation=whole) from None


def test_the_holder_is_read_from_all_of_uv_s_explanation_not_the_part_shown() -> None:
    (held,) = _settle(LongWindedUv("5.0"), _targets()).held_back
    assert (held.by, held.requirement) == ("p", "hub<2")


def test_a_version_the_previous_lock_keeps_is_not_raised_but_reported() -> None:
    (held,) = _settle(FakeUv("5.0"), _targets(preferred="1.0")).held_back
    assert (held.locked, held.by, held.requirement) == (Version("1.0"), PREVIOUS_LOCK, "d==1.0")
    assert (
        held.detail
        == "5.0 resolves: `envlock lock -P d` takes it; 9.0 is held back by p 1.0 through hub<2"
    )


def test_the_spec_s_own_pin_is_what_holds_it_back() -> None:
    uv = FakeUv("9.0")
    (held,) = _settle(uv, _targets(d="d<4")).held_back
    assert (held.locked, held.by, held.requirement) == (Version("3.0"), SPEC_FILE, "d<4")


# ---------------------------------------------------------------------------------------
# uv's explanation -> who holds a package back

LOCKED = lock(
    _pure("transformers", "4.40.0"),
    _pure("datasets", "5.0.1"),
    _pure("huggingface-hub", "0.36.2"),
    _pure("e", "3.0"),
    _pure("torch", "2.6.0"),
)
MESSAGES = {
    "issue-18": (
        "datasets",
        "cause: Because datasets>=5.2.0 depends on huggingface-hub>=1.31.0,<3.0 and "
        "transformers==4.40.0 depends on huggingface-hub>=0.19.3,<1.0, we can conclude that "
        "datasets>=5.2.0 and transformers==4.40.0 are incompatible.\n"
        "       And because your project depends on datasets>=5.2.0 and transformers==4.40.0, "
        "we can conclude that your project's requirements are unsatisfiable.",
        ("transformers", "4.40.0", "huggingface-hub>=0.19.3,<1.0"),
    ),
    "through-a-chain-with-markers": (
        "datasets",
        "Because datasets>=5.2.0 depends on pyarrow>=30 and pyarrow>=30 depends on "
        "numpy{python_full_version < '3.14'}>=3, and transformers==4.40.0 depends on "
        "numpy<3, we can conclude that datasets>=5.2.0 cannot be used.",
        ("transformers", "4.40.0", "numpy<3"),
    ),
    "a-named-package-it-would-lower": (
        "datasets",
        "Because datasets>=5.2.0 depends on e<3 and your project depends on e>=3.0, we can "
        "conclude that your project's requirements are unsatisfiable.",
        ("e", "3.0", "e<3"),
    ),
    "the-torch-series": (
        "datasets",
        "Because datasets>=5.2.0 depends on torch>=2.7 and your project depends on "
        "torch>=2.6.dev0,<2.7.dev0, we can conclude that your project's requirements are "
        "unsatisfiable.",
        ("torch", "2.6.0", "torch>=2.7"),
    ),
    "extras-kept": (
        "datasets",
        "Because datasets>=5.2.0 depends on fsspec[http]<=2026.6.0 and transformers==4.40.0 "
        "depends on fsspec[http]>2027, we can conclude that they are incompatible.",
        ("transformers", "4.40.0", "fsspec[http]>2027"),
    ),
}


@pytest.mark.parametrize(("name", "message", "expected"), MESSAGES.values(), ids=MESSAGES.keys())
def test_explain(name: str, message: str, expected: tuple[str, str, str]) -> None:
    holder = explain(message, canonicalize_name(name), LOCKED)
    assert (holder.by, str(holder.by_version), holder.requirement) == expected
    assert holder.detail.startswith("Because ")


def test_an_explanation_without_a_holder_keeps_uv_s_words() -> None:
    message = (
        "Because there is no version of datasets>=9 and you require datasets>=9, we can conclude"
    )
    holder = explain(message, canonicalize_name("datasets"), LOCKED)
    assert (holder.by, holder.requirement) == (None, None)
    assert holder.detail == "Because there is no version of datasets>=9 and you require datasets>=9"


# ---------------------------------------------------------------------------------------
# the project pages envlock reads (io.pages.parse_offers)


def test_html_pages_give_requires_python_yanked_and_upload_time() -> None:
    page = (
        b'<a href="d-1.0-py3-none-any.whl#sha256=aa" data-requires-python="&gt;=3.12">x</a>'
        b'<a href="../files/d-2.0.tar.gz" data-yanked="">y</a>'
        b'<a href="d-3.0-py3-none-any.whl" data-upload-time="2025-06-01T12:00:00.000000Z">z</a>'
    )
    offers = parse_offers(page, "text/html", "https://i/simple/d/")
    assert [(o.filename, o.requires_python, o.yanked) for o in offers] == [
        ("d-1.0-py3-none-any.whl", ">=3.12", False),
        ("d-2.0.tar.gz", None, True),
        ("d-3.0-py3-none-any.whl", None, False),
    ]
    assert offers[2].upload_time == datetime(2025, 6, 1, 12, tzinfo=UTC)


def test_json_pages_give_the_same() -> None:
    page = {
        "files": [
            {"filename": "d-1.0-py3-none-any.whl", "requires-python": ">=3.9", "yanked": False},
            {
                "filename": "d-2.0-py3-none-any.whl",
                "yanked": "broken",
                "upload-time": "2025-06-01T12:00:00Z",
            },
        ]
    }
    offers = parse_offers(json.dumps(page).encode(), JSON_TYPE, "https://i/simple/d/")
    assert [(o.requires_python, o.yanked) for o in offers] == [(">=3.9", False), (None, True)]
    assert offers[1].upload_time == datetime(2025, 6, 1, 12, tzinfo=UTC)


def test_a_prerelease_is_not_the_newest_unless_the_spec_asks_for_prereleases() -> None:
    rc = (Version("10.0rc1"),)
    for requirement, reported in (("d", "9.0"), ("d>=1.0rc1", "10.0rc1")):
        target = Target(
            name=canonicalize_name("d"),
            requirement=Requirement(requirement),
            offered=rc + tuple(Version(v) for v in reversed(D_VERSIONS)),
        )
        uv = FakeUv("5.0")
        held = _settle(uv, [target]).held_back
        assert [str(h.newest) for h in held] == [reported], requirement


# ---------------------------------------------------------------------------------------
# a re-resolve asks uv's cache first (cached_probe.cache_first)

REAL_OFFLINE_ANSWER = """\
Using CPython 3.11.7 interpreter at: /work/venv/bin/python
error: No solution found when resolving dependencies for split (markers: python_full_version \
== '3.11.*' and platform_machine == 'x86_64' and sys_platform == 'linux')
  cause: Because only kernels<=0.17.2 is available and transformers>=5.25.0 depends on \
kernels>=0.19.1,<0.20, we can conclude that transformers>=5.25.0 cannot be used.
         And because your project depends on transformers>=5.25.0, we can conclude that \
your project's requirements are unsatisfiable.
"""


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (REAL_OFFLINE_ANSWER, {"kernels", "transformers"}),
        (MESSAGES["through-a-chain-with-markers"][1], {"datasets", "pyarrow", "numpy"}),
        (MESSAGES["extras-kept"][1], {"fsspec", "http", "transformers"}),
        # names that are also English, uv's own words or versions (pypa's build and wheel)
        ("Because only build==1.0 is available and tool>=2.0 depends on build>=2", {"build"}),
        (
            "Because wheel<1 is available and python>=3 depends on hint, v8 and 2",
            {"wheel", "python", "hint", "v8", "2"},
        ),
        ("Because there is no version of Foo_Bar==2 and you require Foo_Bar==2", {"foo-bar"}),
        ("And because you require zz-z., we can conclude that zz-z. cannot be used.", {"zz-z"}),
    ],
)
def test_explanation_words_keep_every_name_the_text_holds(text: str, names: set[str]) -> None:
    assert names <= explanation_words(text)


class Answers:
    """A CachedProbe: what the cache answers and what the index answers, each a lock or the
    exception to raise; records which was asked."""

    def __init__(self, cache: Pylock | Exception, index: Pylock | Exception) -> None:
        self.answers = {True: cache, False: index}
        self.asked: list[str] = []

    def __call__(self, packages: tuple[Requirement, ...], *, offline: bool = False) -> Pylock:
        self.asked.append("cache" if offline else "index")
        answer = self.answers[offline]
        if isinstance(answer, Exception):
            raise answer
        return answer


FIRST = lock(_pure("d", "1.0"), _pure("p", "1.0"))
RAISED = lock(_pure("d", "2.0"), _pure("p", "1.0"))
WITH_NEW = lock(_pure("d", "2.0"), _pure("p", "1.0"), _pure("q", "1.0"))


def _cached(explanation: str, shown: str | None = None) -> UvResolutionError:
    shown = explanation if shown is None else shown
    return UvResolutionError("no set", hint="", detail=shown, explanation=explanation)


CONFLICT = _cached(
    "error: No solution\n  cause: Because d>=2 depends on p>=2 and you require p==1.0"
)
THROUGH_Q = _cached(
    "error: No solution\n  cause: Because d>=2 depends on q>=2 and only q<=1 is available"
)
# uv's message cut short for showing (resolve._trim keeps 30 lines): q is named after the cut
CUT_BEFORE_Q = _cached(THROUGH_Q.explanation, shown="error: No solution\n  ... (1 more lines)")
SINCE = 100.0


@pytest.mark.parametrize(
    ("cache", "index", "written", "expected", "asked"),
    [
        pytest.param(
            CONFLICT, RAISED, {}, CONFLICT, ["cache"], id="a-conflict-of-the-lock-s-pages"
        ),
        pytest.param(
            THROUGH_Q, RAISED, {"q": 100.5}, THROUGH_Q, ["cache"], id="through-a-page-written-since"
        ),
        pytest.param(
            THROUGH_Q, RAISED, {"q": 99.0}, RAISED, ["cache", "index"], id="through-an-older-page"
        ),
        pytest.param(
            THROUGH_Q,
            THROUGH_Q,
            {"q": 99.0},
            THROUGH_Q,
            ["cache", "index"],
            id="the-index-says-so-too",
        ),
        pytest.param(
            CUT_BEFORE_Q,
            RAISED,
            {"q": 99.0},
            RAISED,
            ["cache", "index"],
            id="named-after-the-shown-part",
        ),
        # a failure without uv's whole message (not the cache's kind): the index answers
        pytest.param(
            ResolutionError("no set", detail="error: x"),
            RAISED,
            {},
            RAISED,
            ["cache", "index"],
            id="another-failure",
        ),
        # uv offline passes over a version it has no page or metadata for without a word
        pytest.param(
            RAISED, WITH_NEW, {}, WITH_NEW, ["cache", "index"], id="a-lock-from-the-cache"
        ),
        pytest.param(
            IndexUnavailableError("uv's cache does not hold every page"),
            RAISED,
            {},
            RAISED,
            ["cache", "index"],
            id="not-in-the-cache",
        ),
    ],
)
def test_a_re_resolve_takes_from_the_cache_only_a_failure_resting_on_pages_just_read(
    cache: Pylock | Exception,
    index: Pylock | Exception,
    written: dict[str, float],
    expected: Pylock | Exception,
    asked: list[str],
) -> None:
    answers = Answers(cache, index)
    looked_up: list[list[str]] = []

    def times(names: Iterable[str]) -> dict[str, float]:
        looked_up.append(list(names))
        return {n: t for n, t in written.items() if n in looked_up[-1]}

    probe = cache_first(answers, FIRST, since=SINCE, written=times)

    if isinstance(expected, Exception):
        with pytest.raises(ResolutionError) as raised:
            probe(())
        assert raised.value is expected
    else:
        assert probe(()) is expected
    assert answers.asked == asked
    for names in looked_up:  # the first lock's packages are never looked up
        assert not {"d", "p"} & set(names)


def test_what_the_index_answered_counts_as_read_afterwards() -> None:
    answers = Answers(THROUGH_Q, WITH_NEW)
    probe = cache_first(
        answers, FIRST, since=SINCE, written=lambda names: {n: 0.0 for n in names if n == "q"}
    )

    probe(())  # q's page is old: the index answers, and locks q
    with pytest.raises(ResolutionError):
        probe(())  # q is now one of the packages read

    assert answers.asked == ["cache", "index", "cache"]
