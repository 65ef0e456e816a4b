"""envlock.materialise.installed: a scanned venv + the last sync's record -> drift."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from packaging.utils import NormalizedName

from envlock.materialise.installed import (
    STATE_FORMAT,
    Dist,
    DriftKind,
    Recorded,
    VenvState,
    compare,
    record_of,
)

SIX = Dist(
    name=NormalizedName("six"),
    version="1.17.0",
    directory="six-1.17.0.dist-info",
    record="sha256:" + "1" * 64,
    files="sha256:" + "2" * 64,
)
STATE = VenvState(
    executable="/usr/bin/python3.11",
    home="/usr/bin",
    version="3.11.7",
    system_site_packages=False,
    dists=(SIX,),
    startup={"_virtualenv.pth": "sha256:" + "3" * 64},
)
WANTED = {NormalizedName("six"): "1.17.0"}


def _recorded(state: VenvState = STATE) -> Recorded:
    recorded = Recorded.from_marker(record_of(state))
    assert recorded is not None
    return recorded


def _state(**changes: Any) -> VenvState:
    return replace(STATE, **changes)


def _six(**changes: Any) -> tuple[Dist, ...]:
    return (replace(SIX, **changes),)


# the venv as scanned now -> the one drift it shows against the record of the synced STATE
DRIFTS: dict[str, tuple[VenvState, dict[str, str], tuple[str, str, str, str]]] = {
    "missing": (_state(dists=()), WANTED, ("six", DriftKind.MISSING, "1.17.0", "")),
    "extra": (
        _state(dists=(SIX, replace(SIX, name=NormalizedName("idna"), version="3.10"))),
        WANTED,
        ("idna", DriftKind.EXTRA, "", "3.10"),
    ),
    "version": (
        _state(dists=_six(version="1.16.0")),
        WANTED,
        ("six", DriftKind.VERSION, "1.17.0", "1.16.0"),
    ),
    "duplicate": (
        _state(dists=(SIX, replace(SIX, directory="six-1.17.0.dist-info.bak"))),
        WANTED,
        ("six", DriftKind.DUPLICATE, "1.17.0", "six-1.17.0.dist-info, six-1.17.0.dist-info.bak"),
    ),
    "replaced": (
        _state(dists=_six(record="sha256:" + "9" * 64, installer="pip")),
        WANTED,
        ("six", DriftKind.REPLACED, "1.17.0", "1.17.0, another build (pip)"),
    ),
    "file-missing": (
        _state(dists=_six(missing=("six.py",))),
        WANTED,
        ("six", DriftKind.MODIFIED, "", "six.py missing"),
    ),
    "file-resized": (
        _state(dists=_six(resized=("six.py",))),
        WANTED,
        ("six", DriftKind.MODIFIED, "", "six.py"),
    ),
    "files-touched": (
        _state(dists=_six(files="sha256:" + "8" * 64)),
        WANTED,
        ("six", DriftKind.MODIFIED, "", "files changed"),
    ),
    "record-gone": (
        _state(dists=_six(record="")),
        WANTED,
        ("six", DriftKind.MODIFIED, "", "RECORD missing"),
    ),
    "interpreter": (
        _state(executable="/opt/python3.11"),
        WANTED,
        ("python", DriftKind.INTERPRETER, "/usr/bin/python3.11", "/opt/python3.11"),
    ),
    "interpreter-gone": (
        _state(executable=""),
        WANTED,
        ("python", DriftKind.INTERPRETER, "/usr/bin/python3.11", "(missing)"),
    ),
    "system-site": (
        _state(system_site_packages=True),
        WANTED,
        ("pyvenv.cfg", DriftKind.SYSTEM_SITE, "include-system-site-packages = false", "true"),
    ),
    "startup-added": (
        _state(startup={**STATE.startup, "evil.pth": "sha256:" + "4" * 64}),
        WANTED,
        ("evil.pth", DriftKind.STARTUP, "", "not installed by the lock"),
    ),
    "startup-edited": (
        _state(startup={"_virtualenv.pth": "sha256:" + "5" * 64}),
        WANTED,
        ("_virtualenv.pth", DriftKind.STARTUP, "", "not installed by the lock"),
    ),
    "lock-moved-on": (
        STATE,
        {NormalizedName("six"): "1.18.0"},
        ("six", DriftKind.VERSION, "1.18.0", "1.17.0"),
    ),
}


@pytest.mark.parametrize(("state", "wanted", "drift"), DRIFTS.values(), ids=DRIFTS.keys())
def test_each_damage_is_one_drift(
    state: VenvState, wanted: dict[NormalizedName, str], drift: tuple[str, str, str, str]
) -> None:
    found = compare(state, wanted, _recorded())
    assert [(d.name, d.kind, d.expected, d.found) for d in found] == [drift]


def test_the_venv_sync_built_has_no_drift() -> None:
    assert compare(STATE, WANTED, _recorded()) == ()


@pytest.mark.parametrize(
    ("state", "owned", "kinds"),
    [
        (STATE, frozenset({"_virtualenv.pth"}), []),
        (STATE, frozenset(), [DriftKind.STARTUP]),  # no record: only a locked RECORD vouches
        (_state(dists=_six(record="sha256:" + "9" * 64)), frozenset({"_virtualenv.pth"}), []),
        (_state(executable=""), frozenset({"_virtualenv.pth"}), [DriftKind.INTERPRETER]),
    ],
    ids=["owned-startup", "unowned-startup", "another-build-cannot-be-told", "dangling-python"],
)
def test_without_a_record_less_can_be_judged(
    state: VenvState, owned: frozenset[str], kinds: list[DriftKind]
) -> None:
    assert [d.kind for d in compare(state, WANTED, None, owned_startup=owned)] == kinds


def test_the_record_round_trips() -> None:
    marker = record_of(STATE)
    assert marker["format"] == STATE_FORMAT
    recorded = _recorded()
    assert (recorded.executable, recorded.home, recorded.version) == (
        "/usr/bin/python3.11",
        "/usr/bin",
        "3.11.7",
    )
    assert recorded.dists == {
        "six": {
            "version": "1.17.0",
            "directory": SIX.directory,
            "record": SIX.record,
            "files": SIX.files,
        }
    }
    assert recorded.startup == STATE.startup


@pytest.mark.parametrize(
    "marker",
    [
        {},
        {**record_of(STATE), "format": STATE_FORMAT - 1},
        {**record_of(STATE), "dists": []},
        {**record_of(STATE), "dists": {"six": "1.17.0"}},
        {**record_of(STATE), "interpreter": "python"},
        {**record_of(STATE), "startup": None},
    ],
    ids=[
        "empty",
        "older-format",
        "dists-not-a-table",
        "dist-not-a-table",
        "interpreter-not-a-table",
        "no-startup",
    ],
)
def test_a_damaged_or_older_record_is_no_record(marker: dict[str, object]) -> None:
    assert Recorded.from_marker(marker) is None
