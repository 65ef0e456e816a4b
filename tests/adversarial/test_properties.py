"""Property tests: bad input only ever raises EnvlockError; lock rendering round-trips."""

from __future__ import annotations

import contextlib
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.pylock import Pylock

from envlock.errors import EnvlockError
from envlock.lockfile import parse_lock_text, render_lock
from envlock.spec import parse_spec_text

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TOML_FRAGMENTS = st.sampled_from(
    [
        "[env]\n",
        "[torch]\n",
        "[packages]\n",
        "[variants.cpu]\n",
        "[resolution]\n",
        'python = "3.11"\n',
        'version = "2.6"\n',
        'cuda = "12.4"\n',
        "cuda = 12\n",
        'platforms = ["linux-x86_64"]\n',
        "vision = true\n",
        'numpy = ">=2"\n',
        "x = [1, 2\n",
        'six = { version = "*", extras = [1] }\n',
        "exclude-newer = 2026-01-01\n",
        '"\\u00e9" = 1\n',
        "= broken\n",
        "[[env]]\n",
        'source = "pypi"\n',
        'platforms = "linux"\n',
    ]
)


@SETTINGS
@given(st.lists(TOML_FRAGMENTS, max_size=12))
def test_spec_parsing_raises_only_envlock_errors(fragments: list[str]) -> None:
    with contextlib.suppress(EnvlockError):
        parse_spec_text("".join(fragments))


@SETTINGS
@given(st.text(max_size=400))
def test_arbitrary_text_is_a_spec_error_or_a_spec(text: str) -> None:
    with contextlib.suppress(EnvlockError):
        parse_spec_text(text)


NAMES = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=12).map(
    lambda s: "p" + s
)
VERSIONS = st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30)).map(
    lambda t: ".".join(map(str, t))
)
TAGS = st.sampled_from(
    [
        "py3-none-any",
        "cp311-cp311-manylinux_2_28_x86_64",
        "cp311-cp311-macosx_14_0_arm64",
        "cp311-abi3-win_amd64",
    ]
)
HEX = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


@st.composite
def locks(draw: st.DrawFn) -> Pylock:
    names = draw(st.lists(NAMES, min_size=1, max_size=6, unique=True))
    packages = []
    for name in names:
        version = draw(VERSIONS)
        tags = draw(st.lists(TAGS, min_size=1, max_size=3, unique=True))
        package = {
            "name": name,
            "version": version,
            "index": "https://pypi.org/simple",
            "wheels": [
                {
                    "url": f"https://files.example/{name}-{version}-{tag}.whl",
                    "size": draw(st.integers(1, 10**9)),
                    "hashes": {"sha256": draw(HEX)},
                }
                for tag in tags
            ],
        }
        if draw(st.booleans()):
            package["marker"] = draw(
                st.sampled_from(
                    ["sys_platform == 'linux'", "python_version >= '3.9' and os_name == 'nt'"]
                )
            )
        packages.append(package)
    return Pylock.from_dict(
        {
            "lock-version": "1.0",
            "created-by": "envlock",
            "requires-python": "==3.11.*",
            "packages": packages,
        }
    )


def _canonical(lock: Pylock) -> dict[str, object]:
    """The lock as data, in the order the renderer writes it (packages and their wheels
    sorted), with PEP 751's empty defaults spelled out as the renderer does."""
    data = {"extras": [], "dependency-groups": [], "default-groups": [], **lock.to_dict()}
    packages = sorted(
        data.pop("packages"), key=lambda p: (p["name"], p["version"], p.get("marker", ""))
    )
    for package in packages:
        package["wheels"] = sorted(package["wheels"], key=lambda w: w["url"])
    return {**data, "packages": packages}


@SETTINGS
@given(locks())
def test_lock_round_trip_is_the_identity(lock: Pylock) -> None:
    text = render_lock(lock)
    again = parse_lock_text(text)
    assert _canonical(again) == _canonical(lock)  # nothing lost or changed on the way
    assert render_lock(again) == text  # rendering is idempotent


@SETTINGS
@given(st.binary(max_size=300))
def test_arbitrary_bytes_as_a_lock_raise_only_envlock_errors(data: bytes) -> None:
    with contextlib.suppress(EnvlockError):
        parse_lock_text(data.decode("utf-8", errors="replace"))
