"""envlock.lockfile: PEP 751 text <-> Pylock, and what envlock refuses to act on."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from packaging.pylock import Pylock

from envlock.errors import LockfileError
from envlock.lockfile import HEADER, PackageTables, lock_meta, parse_lock_text, render_lock
from tests.unit.data import SHA, lock, meta, package, wheel

GOOD = 'lock-version = "1.0"\ncreated-by = "envlock"\n'
SIX = "https://files.example/six-1.17.0-py2.py3-none-any.whl"


def _sdist(version: str) -> str:
    url = f"https://files.example/six-{version}.tar.gz"
    return f'sdist = {{ url = "{url}", hashes = {{ sha256 = "{SHA}" }} }}'


def _with(entry: str) -> str:
    return f"{GOOD}\n[[packages]]\n{entry}\n"


def _wheel(**fields: str) -> str:
    body = ", ".join(f"{k} = {v}" for k, v in {"url": f'"{SIX}"', **fields}.items())
    return _with(f'name = "six"\nversion = "1.17.0"\nwheels = [{{ {body} }}]')


REFUSED = {
    "not-toml": ("lock-version = \n", "is not valid TOML"),
    "nested-too-deeply": ("x = " + "[" * 5000, "is not valid TOML"),
    "no-lock-version": ('created-by = "envlock"\n', "is not a valid PEP 751 lock"),
    "lock-version-2": ('lock-version = "2.0"\ncreated-by = "envlock"\npackages = []\n', "2.0"),
    "packages-not-tables": (GOOD + 'packages = ["six"]\n', "packages"),
    "wheel-without-hashes": (_wheel(), "hashes"),
    "hash-too-short": (_wheel(hashes='{ sha256 = "abc" }'), "is not a 64-digit hex digest"),
    "hash-not-hex": (_wheel(hashes=f'{{ sha256 = "{"z" * 64}" }}'), "is not a 64-digit hex"),
    "unknown-algorithm": (_wheel(hashes=f'{{ crc32 = "{SHA}" }}'), "unknown hash algorithm"),
    "file-url": (
        _wheel(url='"file:///etc/six-1.17.0-py3-none-any.whl"', hashes=f'{{ sha256 = "{SHA}" }}'),
        "is not http(s)",
    ),
    "path-escapes": (
        _with(
            'name = "six"\nversion = "1.17.0"\n'
            f'wheels = [{{ path = "../six-1.17.0-py3-none-any.whl", hashes = {{ sha256 = "{SHA}" }} }}]'
        ),
        "points outside the lock's directory",
    ),
    "absolute-windows-path": (
        _with(
            'name = "six"\nversion = "1.17.0"\n'
            f'wheels = [{{ path = "C:\\\\w\\\\six-1.17.0-py3-none-any.whl", hashes = {{ sha256 = "{SHA}" }} }}]'
        ),
        "points outside the lock's directory",
    ),
    "listed-twice": (
        _with(f'name = "six"\nversion = "1.17.0"\n{_sdist("1.17.0")}')
        + f'\n[[packages]]\nname = "six"\nversion = "1.16.0"\n{_sdist("1.16.0")}\n',
        "packages[1] (six) is listed twice with the same markers",
    ),
}


@pytest.mark.parametrize(("text", "named"), REFUSED.values(), ids=REFUSED.keys())
def test_a_lock_envlock_cannot_act_on_is_refused(text: str, named: str) -> None:
    with pytest.raises(LockfileError) as raised:
        parse_lock_text(text, source="locks/pylock.toml")
    assert raised.value.message.startswith("locks/pylock.toml")
    assert named in raised.value.message
    assert raised.value.hint


@pytest.mark.parametrize(
    "text",
    [
        GOOD + "packages = []\n",
        _wheel(hashes=f'{{ sha256 = "{SHA}" }}'),
        _wheel(hashes=f'{{ sha256 = "{SHA.upper()}" }}'),
        _wheel(hashes=f'{{ md5 = "{"b" * 32}" }}'),
        _with(
            f'name = "six"\nversion = "1.17.0"\nmarker = "sys_platform == \'linux\'"\n{_sdist("1.17.0")}'
        )
        + f'\n[[packages]]\nname = "six"\nversion = "1.16.0"\n{_sdist("1.16.0")}\n'
        + "marker = \"sys_platform == 'win32'\"\n",
    ],
    ids=["no-packages", "sha256", "upper-case-hex", "md5", "forked-by-marker"],
)
def test_a_valid_lock_is_read(text: str) -> None:
    parse_lock_text(text)


def test_meta_round_trips_through_the_tool_table() -> None:
    recorded = meta(exclude_newer=datetime(2026, 11, 1, tzinfo=UTC), variant_index=None)
    written = lock(package("six", "1.17.0", wheel(SIX)), envlock=recorded)
    again = lock_meta(parse_lock_text(render_lock(written)))
    assert again == recorded


@pytest.mark.parametrize(
    "tool",
    [None, {"other-tool": {}}, {"envlock": "not a table"}, {"envlock": {"python": "3.11"}}],
    ids=["no-tool", "another-tool", "not-a-table", "no-spec-digest"],
)
def test_a_lock_not_written_by_envlock_has_no_meta(tool: dict[str, object] | None) -> None:
    assert lock_meta(lock(**({"tool": tool} if tool else {}))) is None


def test_render_is_sorted_canonical_and_starts_with_the_header() -> None:
    packages = [
        package("six", "1.17.0", wheel(SIX)),
        package("numpy", "2.3.0", wheel("https://f/numpy-2.3.0-cp311-cp311-win_amd64.whl")),
    ]
    first, swapped = lock(*packages), lock(*reversed(packages))
    text = render_lock(first)
    assert text.startswith(HEADER)
    assert text == render_lock(swapped)
    assert text.index('name = "numpy"') < text.index('name = "six"')
    assert render_lock(parse_lock_text(text)) == text


@pytest.mark.parametrize(
    ("marker", "written"),
    [
        ("sys_platform == 'linux'", "marker = 'sys_platform == \"linux\"'"),
        ('python_version >= "3.9"', "marker = 'python_version >= \"3.9\"'"),
    ],
)
def test_markers_are_written_as_literal_strings(marker: str, written: str) -> None:
    text = render_lock(lock(package("six", "1.17.0", wheel(SIX), marker=marker)))
    assert written in text


# --------------------------------------------------------------------------------------
# reading beside another lock (diff's two sides): the same lock, the same errors

ROOT = Path(__file__).resolve().parents[2]
SHARED_LOCKS = [ROOT / "lockfiles/quickstart/pylock.toml", ROOT / "tests/golden/lock_basic.toml"]
_SIX_TABLE = f'name = "six"\nversion = "1.17.0"\n{_sdist("1.17.0")}'
_IDNA = "https://files.example/idna-3.10.tar.gz"
_IDNA_TABLE = f'name = "idna"\nversion = "3.10"\nsdist = {{ url = "{_IDNA}", hashes = {{ sha256 = "{SHA}" }} }}'
_TOOL = '[tool.envlock]\npython = "3.11"\n'
# Layouts a cut at each `[[packages]]` line must not misread (each read as a whole instead).
AWKWARD = {
    "cut-inside-a-string": _with(
        f'{_SIX_TABLE}\n[packages.tool]\nnote = """\n[[packages]]\nname = "evil"\n"""'
    ),
    "cut-inside-an-array": _with(f"{_SIX_TABLE}\nx = [\n[[packages]]\n]"),
    "tool-tables-between-packages": _with(
        f"{_SIX_TABLE}\n[tool.a]\nx = 1\n\n[[packages]]\n{_IDNA_TABLE}\n[tool.b]\ny = 2"
    ),
    "tool-table-before-packages": GOOD + _TOOL + f"\n[[packages]]\n{_SIX_TABLE}\n",
    "tool-table-after-packages": GOOD + f"\n[[packages]]\n{_SIX_TABLE}\n\n{_TOOL}",
    "same-table-twice": GOOD + f"[tool.a]\n\n[[packages]]\n{_SIX_TABLE}\n[tool.a]\n",
    "packages-in-the-head": GOOD + f"packages = []\n\n[[packages]]\n{_SIX_TABLE}\n",
    "crlf": _with(_SIX_TABLE).replace("\n", "\r\n"),
    "spaced-header": GOOD + f"\n[[ packages ]]\n{_SIX_TABLE}\n\n[[packages]]\n{_SIX_TABLE}\n",
    "spaced-header-inside-a-piece": _with(f"{_SIX_TABLE}\n\n[[ packages ]]\n{_IDNA_TABLE}"),
}
SHARED_TEXTS = {
    **{path.parent.name + "/" + path.name: path.read_text() for path in SHARED_LOCKS},
    **AWKWARD,
    **{f"refused-{k}": text for k, (text, _) in REFUSED.items()},
}


def _read(text: str, seen: PackageTables | None) -> Pylock | str:
    try:
        return parse_lock_text(text, source="pylock.toml", seen=seen)
    except LockfileError as exc:
        return f"{exc.message} | {exc.hint}"


@pytest.mark.parametrize("text", SHARED_TEXTS.values(), ids=SHARED_TEXTS.keys())
def test_a_lock_read_beside_another_is_the_lock_read_alone(text: str) -> None:
    alone = _read(text, None)
    seen: PackageTables = {}
    for other in SHARED_LOCKS:  # tables from other locks, as the other side of a diff holds
        _read(other.read_text(), seen)
    first, again = _read(text, seen), _read(text, seen)
    assert first == alone
    assert again == alone
    if isinstance(alone, Pylock):
        assert isinstance(again, Pylock)
        assert render_lock(again) == render_lock(alone)


def test_a_lock_read_again_shares_its_package_tables() -> None:
    text = SHARED_LOCKS[0].read_text()
    seen: PackageTables = {}
    first = parse_lock_text(text, seen=seen)
    changed = text.replace('\nversion = "', '\nversion = "9', 1)  # its first package only
    with pytest.raises(LockfileError):
        parse_lock_text(changed, seen=seen)  # its wheels no longer match the version
    again = parse_lock_text(text, seen=seen)
    assert len(first.packages) > 10
    assert all(a is b for a, b in zip(first.packages, again.packages, strict=True))
