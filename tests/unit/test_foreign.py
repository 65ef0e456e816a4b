"""envlock.foreign: [tool.envlock]'s facts derived from a lock another tool wrote."""

from __future__ import annotations

from typing import Any

import pytest

from envlock.foreign import derive_meta
from tests.unit.data import channels, lock, package, torch_wheel, wheel

PYPI = "https://pypi.org/simple"
FILES = "https://files.pythonhosted.org/packages"
LINUX = "manylinux_2_28_x86_64"


def _pure(name: str = "six", version: str = "1.17.0", **extra: Any) -> dict[str, Any]:
    return package(name, version, wheel(f"{FILES}/{name}-{version}-py3-none-any.whl"), **extra)


def _pypi_torch(*tags: str) -> dict[str, Any]:
    wheels = [wheel(f"{FILES}/torch-2.6.0-cp311-cp311-{tag}.whl") for tag in tags]
    return package("torch", "2.6.0", *wheels)


def _foreign(*packages: dict[str, Any], **top: Any) -> Any:
    """A lock as pip writes it: no [tool.envlock], no requires-python, no index keys."""
    return lock(*packages, **{"created-by": "pip", "requires-python": None, **top})


# lock -> (python, platforms, torch, variant, variant index, torch-source)
CASES: dict[str, tuple[Any, tuple[str, tuple[str, ...], str, str, str | None, dict[str, str]]]] = {
    "cu124 label": (
        _foreign(package("torch", "2.6.0+cu124", torch_wheel("2.6.0", "cu124")), _pure()),
        (
            "3.11",
            ("linux-x86_64",),
            "2.6",
            "cu124",
            "https://download.pytorch.org/whl/cu124",
            {"linux-x86_64": "pytorch-index"},
        ),
    ),
    "PyPI's own wheel": (
        _foreign(_pypi_torch(LINUX), _pure()),
        ("3.11", ("linux-x86_64",), "2.6", "cu124", None, {"linux-x86_64": "pypi"}),
    ),
    "macOS wheel only": (
        _foreign(_pypi_torch("macosx_11_0_arm64")),
        ("3.11", ("macos-arm64",), "2.6", "cpu", None, {"macos-arm64": "pypi"}),
    ),
    "index key names the build": (
        _foreign(
            package(
                "torch",
                "2.6.0+cu126",
                torch_wheel("2.6.0", "cu126"),
                index="https://mirror.example/whl/cu126",
            )
        ),
        (
            "3.11",
            ("linux-x86_64",),
            "2.6",
            "cu126",
            "https://mirror.example/whl/cu126",
            {"linux-x86_64": "pytorch-index"},
        ),
    ),
    "no torch": (
        _foreign(_pure(), _pure("filelock", "3.16.1")),
        (
            "3.11",
            ("linux-x86_64", "linux-aarch64", "macos-arm64", "windows-x86_64"),
            "",
            "",
            None,
            {},
        ),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_facts_are_derived_from_the_lock(case: str) -> None:
    given, (python, platforms, torch, variant, index, source) = CASES[case]
    meta = derive_meta(given, channels(), prefer_python="3.11")
    assert (meta.python, meta.platforms, meta.torch, meta.variant) == (
        python,
        platforms,
        torch,
        variant,
    )
    assert (meta.variant_index, dict(meta.torch_source)) == (index, source)
    assert meta.foreign and meta.spec_digest == ""


def test_each_derived_fact_has_a_note() -> None:
    meta = derive_meta(_foreign(_pure()), channels(), prefer_python="3.11")
    assert [n.split(":", 1)[0] for n in meta.derived] == [
        "python",
        "platforms",
        "pypi-index",
        "torch",
    ]
    assert "no torch" in meta.derived[-1]


@pytest.mark.parametrize(
    ("prefer", "python", "why"),
    [("3.12", "3.12", "this interpreter's"), ("3.8", "3.9", "the lowest")],
)
def test_several_pythons_prefer_this_interpreter(prefer: str, python: str, why: str) -> None:
    meta = derive_meta(_foreign(_pure()), channels(), prefer_python=prefer)
    assert meta.python == python
    assert meta.derived[0].endswith(f"envlock uses {python}, {why}")


def test_requires_python_and_cp_tags_narrow_the_python() -> None:
    cp312 = package("numpy", "2.3.0", wheel(f"{FILES}/numpy-2.3.0-cp312-cp312-{LINUX}.whl"))
    assert derive_meta(_foreign(cp312, _pure()), channels()).python == "3.12"
    ranged = _foreign(_pure(), **{"requires-python": ">=3.13"})
    assert derive_meta(ranged, channels(), prefer_python="3.11").python == "3.13"


def test_environments_narrow_the_platforms() -> None:
    given = _foreign(_pure(), environments=["sys_platform == 'darwin'"])
    assert derive_meta(given, channels(), prefer_python="3.11").platforms == ("macos-arm64",)


def test_no_installable_platform_is_said() -> None:
    given = _foreign(
        package("odd", "1.0", wheel(f"{FILES}/odd-1.0-cp311-cp311-musllinux_1_2_riscv64.whl"))
    )
    meta = derive_meta(given, channels(), prefer_python="3.11")
    assert meta.platforms == ()
    assert any("commands that need one refuse" in n for n in meta.derived)


@pytest.mark.parametrize(
    ("packages", "index"),
    [
        (
            (
                _pure(index="https://mirror.example/simple"),
                _pure("filelock", "3.16.1", index=PYPI),
                _pure("idna", "3.0", index="https://mirror.example/simple"),
            ),
            "https://mirror.example/simple",
        ),
        ((_pure(),), PYPI),
        (
            (
                package(
                    "six",
                    "1.0",
                    wheel("http://127.0.0.1:9/simple/six/files/six-1.0-py3-none-any.whl"),
                ),
            ),
            "http://127.0.0.1:9/simple",
        ),
        ((package("six", "1.0", wheel("https://cdn.example/six-1.0-py3-none-any.whl")),), ""),
    ],
)
def test_pypi_index(packages: tuple[dict[str, Any], ...], index: str) -> None:
    assert derive_meta(_foreign(*packages), channels()).pypi_index == index
