"""envlock.gate (pure): which artifacts are new, what a wheel runs at start-up, the findings
each fact makes, and the accept rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from envlock import cooldown, gate, spec_review
from envlock.errors import SpecError
from envlock.gate import Facts, Finding, Kind, Level, WheelFiles, evaluate, pair
from envlock.gate_artifacts import Hook, find_hooks, hook_members
from envlock.gate_render import Review, markdown_lines, review_json, text_lines
from envlock.heldback import Offer
from envlock.io.artifact_facts import _summarise
from envlock.spec import parse_spec_text, spec_digest
from envlock.spec_model import Accept, Indexes
from tests.unit.data import lock, package, wheel

PYPI = "https://pypi.org/simple"
FILES = "https://files.pythonhosted.org/packages"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
A, B, C = "a" * 64, "b" * 64, "c" * 64


def _pkg(name: str, version: str, sha: str = A, *, host: str = FILES, **extra: Any) -> Any:
    url = f"{host}/{name}-{version}-py3-none-any.whl"
    return package(name, version, wheel(url, sha), index=PYPI, **extra)


def _sdist(name: str, version: str, sha: str = C) -> Any:
    url = f"{FILES}/{name}-{version}.tar.gz"
    return package(name, version, index=PYPI, sdist={"url": url, "hashes": {"sha256": sha}})


def _run(old: Any, new: Any, facts: Facts | None = None, **kw: Any) -> tuple[Finding, ...]:
    before = lock(old) if old is not None else None
    return evaluate(pair(before, lock(new)), facts or Facts(), now=NOW, **kw)


def _kinds(findings: tuple[Finding, ...]) -> list[Kind]:
    return [f.kind for f in findings]


# ---------------------------------------------------------------------------- pairing


def test_only_artifacts_the_old_lock_lacked_are_candidates() -> None:
    pairing = pair(lock(_pkg("six", "1.16.0", A)), lock(_pkg("six", "1.16.0", A)))
    assert pairing.candidates == ()
    pairing = pair(lock(_pkg("six", "1.16.0", A)), lock(_pkg("six", "1.17.0", B)))
    (candidate,) = pairing.candidates
    assert candidate.new.version == "1.17.0"
    assert candidate.baseline is not None and candidate.baseline.version == "1.16.0"
    assert candidate.drift is None and candidate.was_wheel


def test_a_new_package_has_no_baseline() -> None:
    (candidate,) = pair(
        lock(_pkg("six", "1.16.0")), lock(_pkg("six", "1.16.0"), _pkg("idna", "3.10", B))
    ).candidates
    assert candidate.new.package == "idna" and candidate.baseline is None


def test_whole_lock_without_an_old_side() -> None:
    assert len(pair(None, lock(_pkg("six", "1.16.0"), _pkg("idna", "3.10", B))).candidates) == 2


# ---------------------------------------------------------------------------- hooks


@pytest.mark.parametrize(
    ("names", "pth", "expected"),
    [
        (["evil.pth"], {"evil.pth": "import os; os.system('x')\n"}, ["evil.pth"]),
        (["paths.pth"], {"paths.pth": "/opt/lib\n# import nothing\n"}, []),  # no import line
        (["tab.pth"], {"tab.pth": "import\tsys\n"}, ["tab.pth"]),
        (["pkg/inner.pth"], {}, []),  # not at the top: site.py never reads it
        (
            ["x-1.data/purelib/evil.pth"],
            {"x-1.data/purelib/evil.pth": "import x\n"},
            ["x-1.data/purelib/evil.pth"],
        ),
        (["x-1.data/scripts/evil.pth"], {}, []),  # installed as a script, not read by site
        (
            ["x-1.data/data/lib/python3.11/site-packages/evil.pth"],
            {"x-1.data/data/lib/python3.11/site-packages/evil.pth": "import x\n"},
            ["x-1.data/data/lib/python3.11/site-packages/evil.pth"],
        ),  # the data scheme is the prefix: a venv's site-packages
        (["x-1.data/data/share/evil.pth"], {}, []),
        (["sitecustomize.py"], {}, ["sitecustomize.py"]),
        (
            ["usercustomize.cpython-311-x86_64-linux-gnu.so"],
            {},
            ["usercustomize.cpython-311-x86_64-linux-gnu.so"],
        ),
        (["sitecustomize/__init__.py"], {}, ["sitecustomize/__init__.py"]),
        (["sitecustomize/data.txt"], {}, []),  # a namespace folder runs nothing
        (["mysitecustomize.py", "pkg/sitecustomize.py"], {}, []),
    ],
)
def test_start_up_hooks(names: list[str], pth: dict[str, str], expected: list[str]) -> None:
    assert [h.path for h in find_hooks(names, pth)] == expected


def test_a_byte_order_mark_does_not_hide_an_import_line() -> None:
    listing = _summarise(["bom.pth"], {"bom.pth": b"\xef\xbb\xbfimport os\n"}, "range")
    assert [h.path for h in listing.hooks] == ["bom.pth"]


def test_hook_members_are_the_top_level_pth_files() -> None:
    names = ["a.pth", "pkg/b.pth", "x-1.data/platlib/c.pth", "d.py"]
    assert hook_members(names) == ["a.pth", "x-1.data/platlib/c.pth"]


# ---------------------------------------------------------------------------- findings

HOOK = Hook(path="hookpkg.pth", kind="pth", lines=("import hookpkg._boot",))


def test_a_hook_the_old_wheel_lacked_needs_attention() -> None:
    facts = Facts(files={A: WheelFiles(files=3, hooks=()), B: WheelFiles(files=4, hooks=(HOOK,))})
    (finding,) = _run(_pkg("hookpkg", "1.0", A), _pkg("hookpkg", "1.1", B), facts)
    assert finding.kind is Kind.STARTUP_HOOK and finding.level is Level.ATTENTION
    assert "import hookpkg._boot" in finding.detail and finding.digest == B


def test_a_hook_the_old_wheel_had_already_is_not_new() -> None:
    facts = Facts(
        files={A: WheelFiles(files=3, hooks=(HOOK,)), B: WheelFiles(files=3, hooks=(HOOK,))}
    )
    assert _run(_pkg("hookpkg", "1.0", A), _pkg("hookpkg", "1.1", B), facts) == ()


def test_after_a_hash_drift_every_hook_counts() -> None:
    # the old file of this name is served with the new bytes now: its list proves nothing
    facts = Facts(
        files={A: WheelFiles(files=3, hooks=(HOOK,)), B: WheelFiles(files=4, hooks=(HOOK,))}
    )
    found = _run(_pkg("triton", "3.2.0", A), _pkg("triton", "3.2.0", B), facts)
    assert _kinds(found) == [Kind.HASH_DRIFT, Kind.STARTUP_HOOK]


def test_an_unlisted_wheel_is_not_checked_and_says_why() -> None:
    facts = Facts(files={B: "HTTP 503"})
    (finding,) = _run(None, _pkg("hookpkg", "1.1", B), facts)
    assert finding.kind is Kind.UNCHECKED and "HTTP 503" in finding.detail


def test_range_refused_is_a_note() -> None:
    facts = Facts(files={B: WheelFiles(files=3, hooks=(), how="download")})
    (finding,) = _run(None, _pkg("six", "1.17.0", B), facts)
    assert finding.kind is Kind.RANGE_REFUSED and finding.level is Level.NOTE


def test_sdist_only_and_wheel_to_sdist() -> None:
    (finding,) = _run(None, _sdist("buildme", "1.0"))
    assert finding.kind is Kind.INSTALL_CODE and "changed from" not in finding.detail
    (finding,) = _run(_pkg("buildme", "0.9"), _sdist("buildme", "1.0"))
    assert finding.kind is Kind.INSTALL_CODE and "changed from wheels to an sdist" in finding.detail


def test_a_local_source_tree_is_a_note() -> None:
    tree = {"name": "mine", "version": "0.1", "directory": {"path": "."}}
    (finding,) = _run(None, tree)
    assert finding.kind is Kind.LOCAL_SOURCE and finding.level is Level.NOTE


def test_the_index_upload_time_wins_over_the_lock_s() -> None:
    forged = package(
        "six",
        "1.17.0",
        wheel(
            f"{FILES}/six-1.17.0-py3-none-any.whl",
            B,
            **{"upload-time": datetime(2020, 1, 1, tzinfo=UTC)},
        ),
        index=PYPI,
    )
    fresh = NOW - timedelta(hours=3)
    page = Facts(
        pages={(PYPI, "six"): (Offer(filename="six-1.17.0-py3-none-any.whl", upload_time=fresh),)}
    )
    assert _kinds(_run(None, forged, page)) == [Kind.FRESH_UPLOAD]


def test_fresh_upload_from_the_lock_or_the_page() -> None:
    fresh = (NOW - timedelta(hours=20)).replace(tzinfo=UTC)
    new = package(
        "six",
        "1.17.0",
        wheel(f"{FILES}/six-1.17.0-py3-none-any.whl", B, **{"upload-time": fresh}),
        index=PYPI,
    )
    (finding,) = _run(None, new)
    assert finding.kind is Kind.FRESH_UPLOAD and "20 h ago" in finding.detail
    assert _run(None, new, cooldown=timedelta(hours=12)) == ()  # older than a 12 h cooldown
    page = Facts(
        pages={(PYPI, "six"): (Offer(filename="six-1.17.0-py3-none-any.whl", upload_time=fresh),)}
    )
    assert _kinds(_run(None, _pkg("six", "1.17.0", B), page)) == [Kind.FRESH_UPLOAD]


def test_yanked_and_an_unreadable_page() -> None:
    page = Facts(
        pages={(PYPI, "six"): (Offer(filename="six-1.17.0-py3-none-any.whl", yanked=True),)}
    )
    assert _kinds(_run(None, _pkg("six", "1.17.0", B), page)) == [Kind.YANKED]
    page = Facts(pages={(PYPI, "six"): "HTTP 500"})
    assert _kinds(_run(None, _pkg("six", "1.17.0", B), page)) == [Kind.UNCHECKED]


def test_same_version_other_bytes_is_an_alarm_same_bytes_new_host_a_note() -> None:
    (finding,) = _run(
        _pkg("triton", "3.2.0", A),
        _pkg("triton", "3.2.0", B, host="https://download-r2.pytorch.org/whl"),
    )
    assert finding.kind is Kind.HASH_DRIFT and finding.level is Level.ALARM
    assert A in finding.detail and B in finding.detail
    (finding,) = _run(
        _pkg("triton", "3.2.0", A),
        _pkg("triton", "3.2.0", A, host="https://download-r2.pytorch.org/whl"),
    )
    assert finding.kind is Kind.NEW_HOST and finding.level is Level.NOTE


def test_vulnerabilities_by_public_version() -> None:
    vuln = gate.Vulnerability(id="PYSEC-1", aliases=("CVE-1",), summary="bad", fixed_in=("2.0",))
    facts = Facts(vulnerabilities={("six", "1.17.0"): (vuln,)})
    (finding,) = _run(None, _pkg("six", "1.17.0", B), facts)
    assert finding.kind is Kind.VULNERABLE and finding.token == "vulnerable:PYSEC-1"
    assert "CVE-1" in finding.detail and "fixed in 2.0" in finding.detail


# ---------------------------------------------------------------------------- accepts


def _hooked() -> tuple[Any, Any, Facts]:
    facts = Facts(files={A: WheelFiles(files=3, hooks=()), B: WheelFiles(files=4, hooks=(HOOK,))})
    return _pkg("hookpkg", "1.0", A), _pkg("hookpkg", "1.1", B), facts


def test_an_accept_covers_only_that_hash_and_kind() -> None:
    old, new, facts = _hooked()
    accept = Accept(sha256=frozenset({B}), findings=frozenset({"startup-hook"}), reason="checked")
    (finding,) = _run(old, new, facts, accepts={"hookpkg": accept})
    assert finding.accepted == "checked" and gate.attention((finding,)) == ()
    other = Accept(sha256=frozenset({C}), findings=frozenset({"startup-hook"}), reason="old")
    (finding,) = _run(old, new, facts, accepts={"hookpkg": other})
    assert finding.accepted is None  # other bytes: not accepted
    kind = Accept(sha256=frozenset({B}), findings=frozenset({"yanked"}), reason="other")
    assert _run(old, new, facts, accepts={"hookpkg": kind})[0].accepted is None


def test_the_accept_line_round_trips_through_the_spec() -> None:
    old, new, facts = _hooked()
    (line,) = gate.accept_lines(_run(old, new, facts))
    assert line.startswith("hookpkg = { sha256 = ") and '"startup-hook"' in line
    spec = parse_spec_text(
        _SPEC + "\n[review.accept]\n" + line.replace("WHY: what you checked", "ok") + "\n"
    )
    (finding,) = _run(old, new, facts, accepts=spec.accepts)
    assert finding.accepted == "ok"


def test_acceptable_kinds_match_the_spec_vocabulary() -> None:
    assert frozenset(spec_review.ACCEPT_KINDS) == gate.ACCEPTABLE


# ---------------------------------------------------------------------------- spec keys

_SPEC = (
    '[env]\npython = "3.11"\nplatforms = ["linux-x86_64"]\n[torch]\nversion = "2.6"\ncuda = "cpu"\n'
)


def test_spec_digest_unchanged_without_the_new_keys_and_accepts_never_change_it() -> None:
    plain = parse_spec_text(_SPEC)
    accepted = parse_spec_text(
        _SPEC
        + f'[review.accept]\nsix = {{ sha256 = "{A}", findings = ["yanked"], reason = "x" }}\n'
    )
    assert spec_digest(plain, Indexes()) == spec_digest(accepted, Indexes())
    cooled = parse_spec_text(_SPEC + '[resolution]\ncooldown = "7d"\n')
    assert cooled.cooldown == timedelta(days=7)
    assert spec_digest(cooled, Indexes()) != spec_digest(plain, Indexes())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[review.accept]\nhookpkg = "ships an intentional .pth"\n', "must name the artifact"),
        (
            '[review.accept]\nhookpkg = { sha256 = "abc", findings = ["yanked"], reason = "x" }\n',
            "sha256",
        ),
        (
            f'[review.accept]\nhookpkg = {{ sha256 = "{A}", findings = ["nope"], reason = "x" }}\n',
            "unknown finding",
        ),
        (f'[review.accept]\nhookpkg = {{ sha256 = "{A}", findings = ["yanked"] }}\n', "say why"),
        ('[resolution]\ncooldown = "a week"\n', "duration"),
    ],
)
def test_bad_review_keys_are_spec_errors(text: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec_text(_SPEC + text)
    assert message in caught.value.message and caught.value.hint


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("7d", 604800), ("36h", 129600), ("2w", 1209600), ("90 minutes", 5400), ("0d", 0)],
)
def test_durations(text: str, seconds: int) -> None:
    parsed = spec_review.parse_duration(text)
    assert parsed is not None and parsed.total_seconds() == seconds


# ---------------------------------------------------------------------------- rendering


def test_the_section_puts_attention_first_with_the_line_to_paste() -> None:
    old, new, facts = _hooked()
    review = Review(findings=_run(old, new, facts), checked=1)
    text = "\n".join(text_lines(review))
    assert text.startswith("needs attention: 1") and "[review.accept]" in text
    markdown = "\n".join(markdown_lines(review))
    assert markdown.startswith("> [!WARNING]") and "```toml" in markdown
    data = review_json(review)
    assert data["needs-attention"][0]["kind"] == "startup-hook" and data["accept-lines"]
    quiet = "\n".join(text_lines(Review(checked=3)))
    assert "nothing needs attention" in quiet


# ---------------------------------------------------------------------------- the cooldown


def _cool_spec(extra: str = "") -> Any:
    return parse_spec_text(
        _SPEC + '[packages]\nnumpy = "*"\n[resolution]\ncooldown = "7d"\n' + extra
    )


def test_the_cut_off_is_now_minus_the_cooldown_or_an_earlier_exclude_newer() -> None:
    assert cooldown.cutoff(_cool_spec(), NOW) == NOW - timedelta(days=7)
    early = _cool_spec("exclude-newer = 2026-01-01T00:00:00Z\n")
    assert cooldown.cutoff(early, NOW) == datetime(2026, 1, 1, tzinfo=UTC)
    assert cooldown.cooled(parse_spec_text(_SPEC), NOW).exclude_newer is None


def _numpy_page(*versions: tuple[str, datetime | None]) -> tuple[Offer, ...]:
    tag = "cp311-cp311-manylinux_2_17_x86_64"
    return tuple(Offer(filename=f"numpy-{v}-{tag}.whl", upload_time=t) for v, t in versions)


def test_what_the_cooldown_held_back_is_said_with_its_upload_time() -> None:
    spec = _cool_spec()
    locked = lock(_pkg("numpy", "2.2.0"))
    page = _numpy_page(("2.2.0", NOW - timedelta(days=90)), ("2.3.0", NOW - timedelta(days=2)))
    (line,) = cooldown.held_back(
        spec, locked, {"numpy": page}, cut=NOW - timedelta(days=7), now=NOW
    )
    assert "numpy 2.2.0 locked, not 2.3.0: 2.3.0 was uploaded 2026-11-29 (2 days ago)" in line
    old = _numpy_page(("2.2.0", NOW - timedelta(days=90)), ("2.3.0", NOW - timedelta(days=30)))
    assert (
        cooldown.held_back(spec, locked, {"numpy": old}, cut=NOW - timedelta(days=7), now=NOW) == []
    )


def test_a_release_held_back_only_for_lack_of_an_upload_time_is_said_to_be() -> None:
    spec = _cool_spec()
    locked = lock(_pkg("numpy", "1.13.1"))
    page = _numpy_page(("1.13.1", NOW - timedelta(days=900)), ("2.0.0", None), ("2.1.0", None))
    (line,) = cooldown.held_back(
        spec, locked, {"numpy": page}, cut=NOW - timedelta(days=7), now=NOW
    )
    assert "not 2.1.0 (2 newer releases held back)" in line and "no upload time" in line


def test_a_fresh_file_on_the_exempt_pytorch_index_is_said() -> None:
    spec = _cool_spec()
    fresh = NOW - timedelta(days=1)
    torch = package(
        "torch",
        "2.6.1+cu126",
        wheel(
            "https://download.pytorch.org/whl/cu126/torch-2.6.1%2Bcu126-cp311-cp311-linux_x86_64.whl",
            **{"upload-time": fresh},
        ),
    )
    (line,) = cooldown.fresh_routed(
        spec, lock(torch), ["torch"], cut=NOW - timedelta(days=7), now=NOW
    )
    assert "torch 2.6.1+cu126 was uploaded 2026-11-30 (1 day ago)" in line


def test_a_wheel_s_own_text_cannot_forge_the_output() -> None:
    hook = Hook(
        path="x\x1b[2J.pth", kind="pth", lines=("import os  # `@org/team` <b>|</b>\x1b[0m",)
    )
    text = hook.describe()
    assert "\x1b" not in text and text.count("`") == 2  # the one code span, nothing else
    facts = Facts(files={B: WheelFiles(files=1, hooks=(hook,))})
    markdown = "\n".join(
        markdown_lines(Review(findings=_run(None, _pkg("x", "1.0", B), facts), checked=1))
    )
    row = next(line for line in markdown.splitlines() if line.startswith("| ⚠️"))
    assert "@org" not in row and "<b>" not in row and row.count(" | ") == 4
