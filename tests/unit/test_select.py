"""envlock.materialise.select: what a target installs from a lock, and the texts made of it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.pylock import Pylock

from envlock.errors import MaterialiseError
from envlock.materialise.select import (
    Selected,
    bundle_lock,
    platform_target,
    render_install_lock,
    render_requirements,
    select,
)
from envlock.spec import Platform
from tests.unit.data import lock, package, wheel

F = "https://files.example"
SIX_WHEEL = "six-1.17.0-py2.py3-none-any.whl"
PYWIN32 = "pywin32-308-cp311-cp311-win_amd64.whl"
NUMPY = {
    "linux-old": "numpy-2.3.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "linux-new": "numpy-2.3.0-cp311-cp311-manylinux_2_28_x86_64.whl",
    "windows": "numpy-2.3.0-cp311-cp311-win_amd64.whl",
    "mac": "numpy-2.3.0-cp311-cp311-macosx_14_0_arm64.whl",
}


def _lock() -> Pylock:
    return lock(
        package("numpy", "2.3.0", *(wheel(f"{F}/{n}", size=10) for n in NUMPY.values())),
        package("six", "1.17.0", wheel(f"{F}/six-1.17.0-py2.py3-none-any.whl")),
        package(
            "pywin32",
            "308",
            wheel(f"{F}/{PYWIN32}"),
            marker="sys_platform == 'win32'",
        ),
    )


@pytest.mark.parametrize(
    ("platform", "glibc", "chosen"),
    [
        (Platform.LINUX_X86_64, None, {"numpy": NUMPY["linux-new"], "six": SIX_WHEEL}),
        (Platform.LINUX_X86_64, "2.28", {"numpy": NUMPY["linux-new"], "six": SIX_WHEEL}),
        (Platform.LINUX_X86_64, "2.17", {"numpy": NUMPY["linux-old"], "six": SIX_WHEEL}),  # capped
        (
            Platform.WINDOWS_X86_64,
            None,
            {"numpy": NUMPY["windows"], "pywin32": PYWIN32, "six": SIX_WHEEL},
        ),
        (Platform.MACOS_ARM64, None, {"numpy": NUMPY["mac"], "six": SIX_WHEEL}),
    ],
    ids=["linux", "glibc-2.28", "glibc-2.17", "windows", "macos"],
)
def test_select_per_target(platform: Platform, glibc: str | None, chosen: dict[str, str]) -> None:
    selected = select(_lock(), platform_target(platform, "3.11", glibc=glibc))
    assert [s.name for s in selected] == sorted(chosen)  # sorted by name
    assert {s.name: s.filename for s in selected} == chosen
    assert all(len(s.sha256) == 64 and s.url.startswith(F) for s in selected)


def test_platform_target_label_and_full_version() -> None:
    target = platform_target(Platform.LINUX_X86_64, "3.11", full_version="3.11.7")
    assert target.label == "linux-x86_64 / CPython 3.11.7"
    assert target.environment["python_full_version"] == "3.11.7"


def test_a_target_the_lock_does_not_cover_is_refused() -> None:
    covered = lock(
        package("six", "1.17.0", wheel(f"{F}/six-1.17.0-py2.py3-none-any.whl")),
        environments=["sys_platform == 'linux'"],
    )
    with pytest.raises(MaterialiseError, match="cannot be installed on windows-x86_64 / CPython"):
        select(covered, platform_target(Platform.WINDOWS_X86_64, "3.11"))


@pytest.mark.parametrize(
    ("path", "lock_dir", "refusal"),
    [
        ("wheels/six-1.17.0-py2.py3-none-any.whl", None, "needs the lock's directory"),
        ("../six-1.17.0-py2.py3-none-any.whl", "bundle", "points outside the lock's directory"),
        ("wheels/six-1.17.0-py2.py3-none-any.whl", "bundle", None),
    ],
    ids=["no-lock-dir", "escapes", "inside"],
)
def test_path_artifacts(
    path: str, lock_dir: str | None, refusal: str | None, tmp_path: Path
) -> None:
    bundled = Pylock.from_dict(
        {
            "lock-version": "1.0",
            "created-by": "envlock",
            "packages": [
                {
                    "name": "six",
                    "version": "1.17.0",
                    "wheels": [{"path": path, "hashes": {"sha256": "a" * 64}}],
                }
            ],
        }
    )
    target = platform_target(Platform.LINUX_X86_64, "3.11")
    where = tmp_path / lock_dir if lock_dir else None
    if refusal is not None:
        with pytest.raises(MaterialiseError, match=refusal):
            select(bundled, target, lock_dir=where)
        return
    (selected,) = select(bundled, target, lock_dir=where)
    assert selected.url == (tmp_path / "bundle" / path).as_uri()


SIX = Selected(
    name="six",
    version="1.17.0",
    url=f"{F}/six.whl",
    sha256="a" * 64,
    filename="six-1.17.0-py2.py3-none-any.whl",
    size=877,
)
SDIST = Selected(
    name="odd",
    version="1.0",
    url=f"{F}/odd-1.0.tar.gz",
    sha256="b" * 64,
    filename="odd-1.0.tar.gz",
    is_wheel=False,
)


@pytest.mark.parametrize(
    ("header", "text"),
    [
        ("", f"six @ {F}/six.whl \\\n    --hash=sha256:{'a' * 64}\n"),
        (
            "made by envlock\n\nfrom pylock.toml",
            f"# made by envlock\n#\n# from pylock.toml\nsix @ {F}/six.whl \\\n    --hash=sha256:{'a' * 64}\n",
        ),
    ],
    ids=["bare", "header"],
)
def test_render_requirements(header: str, text: str) -> None:
    assert render_requirements([SIX], header=header) == text


def test_render_install_lock_is_a_pep751_lock_of_exactly_the_selection() -> None:
    local = Selected(
        name="zz",
        version="2",
        url="file:///b/my%20wheels/zz-2-py3-none-any.whl",
        sha256="c" * 64,
        filename="zz-2-py3-none-any.whl",
    )
    data = tomllib.loads(render_install_lock([SIX, SDIST, local]))
    Pylock.from_dict(data)  # valid PEP 751
    assert [p["name"] for p in data["packages"]] == ["six", "odd", "zz"]
    assert data["packages"][0]["wheels"] == [
        {"name": SIX.filename, "url": SIX.url, "hashes": {"sha256": "a" * 64}, "size": 877}
    ]
    assert data["packages"][1]["sdist"]["url"] == SDIST.url
    assert data["packages"][2]["wheels"][0]["path"] == "/b/my wheels/zz-2-py3-none-any.whl"


def test_bundle_lock_keeps_only_bundled_files_as_relative_paths() -> None:
    kept = {NUMPY["linux-new"], "six-1.17.0-py2.py3-none-any.whl"}
    bundled = bundle_lock(_lock(), frozenset(kept))
    assert [p.name for p in bundled.packages] == ["numpy", "six"]  # pywin32: nothing bundled
    wheels = [w for p in bundled.packages for w in p.wheels or ()]
    assert sorted(w.path for w in wheels) == sorted(f"wheels/{n}" for n in kept)
    assert all(w.url is None for w in wheels)
