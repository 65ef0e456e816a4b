"""envlock.resolve's pure helpers: platform tags and markers, filtering uv's export, turning
uv's stderr into envlock's errors, and the dependency-confusion check."""

from __future__ import annotations

from typing import Any

import pytest
from packaging.markers import Marker
from packaging.pylock import Package
from packaging.tags import Tag
from packaging.utils import parse_wheel_filename

from envlock.channels import select_variant
from envlock.errors import (
    EnvlockError,
    HashMismatchError,
    IndexUnavailableError,
    ResolutionError,
    UvResolutionError,
)
from envlock.resolve import (
    UvProject,
    check_routing,
    classify_uv_failure,
    direct_requirements,
    filter_package,
    platform_environment,
    platform_tags,
    sourced_names,
)
from envlock.spec import Platform, parse_spec_text
from tests.unit.data import channels, lock, package, wheel

TORCH_INDEX = "https://download.pytorch.org/whl/cu126"
PYPI = "https://pypi.org/simple"


def _accepts(platform: Platform, filename: str) -> bool:
    tags = frozenset(platform_tags(platform, "3.11"))
    return bool(parse_wheel_filename(filename)[3] & tags)


WHEELS = {
    "pure": ("six-1.17.0-py2.py3-none-any.whl", dict.fromkeys(Platform, True)),
    "abi3": (
        "tokenizers-0.21.0-cp39-abi3-manylinux_2_17_x86_64.whl",
        {Platform.LINUX_X86_64: True, Platform.LINUX_AARCH64: False},
    ),
    "manylinux2014": (
        "numpy-2.3.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        {Platform.LINUX_X86_64: True, Platform.WINDOWS_X86_64: False},
    ),
    "manylinux-2-28-aarch64": (
        "torch-2.14.0-cp311-cp311-manylinux_2_28_aarch64.whl",
        {Platform.LINUX_AARCH64: True, Platform.LINUX_X86_64: False},
    ),
    "musllinux": (
        "numpy-2.3.0-cp311-cp311-musllinux_1_2_x86_64.whl",
        {Platform.LINUX_X86_64: False},
    ),
    "other-python": (
        "numpy-2.3.0-cp312-cp312-manylinux_2_17_x86_64.whl",
        {Platform.LINUX_X86_64: False},
    ),
    "pypy": (
        "numpy-2.3.0-pp310-pypy310_pp73-manylinux_2_17_x86_64.whl",
        {Platform.LINUX_X86_64: False},
    ),
    "macos-14": ("numpy-2.3.0-cp311-cp311-macosx_14_0_arm64.whl", {Platform.MACOS_ARM64: True}),
    "macos-intel": (
        "numpy-2.3.0-cp311-cp311-macosx_10_9_x86_64.whl",
        {Platform.MACOS_ARM64: False},
    ),
    "windows": (
        "numpy-2.3.0-cp311-cp311-win_amd64.whl",
        {Platform.WINDOWS_X86_64: True, Platform.LINUX_X86_64: False},
    ),
}


@pytest.mark.parametrize(("filename", "verdicts"), WHEELS.values(), ids=WHEELS.keys())
def test_platform_tags(filename: str, verdicts: dict[Platform, bool]) -> None:
    assert {p: _accepts(p, filename) for p in verdicts} == verdicts


@pytest.mark.parametrize(
    ("platform", "marker", "holds"),
    [
        (Platform.LINUX_X86_64, "sys_platform == 'linux' and platform_machine == 'x86_64'", True),
        (Platform.LINUX_AARCH64, "platform_machine == 'x86_64'", False),
        (Platform.WINDOWS_X86_64, "os_name == 'nt' and platform_system == 'Windows'", True),
        (Platform.MACOS_ARM64, "sys_platform == 'darwin' and python_version == '3.11'", True),
        (Platform.LINUX_X86_64, "python_full_version >= '3.11.0'", True),
        (Platform.LINUX_X86_64, "implementation_name == 'pypy'", False),
    ],
)
def test_platform_environment(platform: Platform, marker: str, holds: bool) -> None:
    assert Marker(marker).evaluate(platform_environment(platform, "3.11")) is holds


def _targets(*platforms: Platform) -> list[tuple[Platform, frozenset[Tag], dict[str, str]]]:
    return [
        (p, frozenset(platform_tags(p, "3.11")), platform_environment(p, "3.11")) for p in platforms
    ]


NUMPY = [
    "numpy-2.3.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "numpy-2.3.0-cp311-cp311-win_amd64.whl",
    "numpy-2.3.0-cp311-cp311-musllinux_1_2_x86_64.whl",
]


def _numpy(*, wheels: list[str] = NUMPY, sdist: bool = False, marker: str = "") -> Package:
    extra: dict[str, Any] = {}
    if sdist:
        extra["sdist"] = wheel("https://f/numpy-2.3.0.tar.gz")
    if marker:
        extra["marker"] = marker
    entry = package("numpy", "2.3.0", *(wheel(f"https://f/{w}") for w in wheels), **extra)
    return lock(entry).packages[0]


FILTERS = {
    "one-target": (_numpy(), [Platform.LINUX_X86_64], [NUMPY[0]], False, ""),
    "two-targets": (
        _numpy(sdist=True),
        [Platform.WINDOWS_X86_64, Platform.LINUX_X86_64],
        [NUMPY[0], NUMPY[1]],
        False,
        "",
    ),
    "sdist-for-a-target-without-a-wheel": (
        _numpy(sdist=True),
        [Platform.LINUX_AARCH64, Platform.LINUX_X86_64],
        [NUMPY[0]],
        True,
        "",
    ),
    "platform-marker-true-everywhere-dropped": (
        _numpy(marker="sys_platform == 'linux'"),
        [Platform.LINUX_X86_64],
        [NUMPY[0]],
        False,
        "",
    ),
    "marker-true-on-one-target-kept": (
        _numpy(marker="sys_platform == 'win32'"),
        [Platform.WINDOWS_X86_64, Platform.LINUX_X86_64],
        [NUMPY[1]],
        False,
        'sys_platform == "win32"',
    ),
    "non-platform-marker-kept": (
        _numpy(marker="implementation_version >= '3.11' and sys_platform == 'linux'"),
        [Platform.LINUX_X86_64],
        [NUMPY[0]],
        False,
        'implementation_version >= "3.11" and sys_platform == "linux"',
    ),
}


@pytest.mark.parametrize(
    ("entry", "platforms", "wheels", "sdist", "marker"), FILTERS.values(), ids=FILTERS.keys()
)
def test_filter_package(
    entry: Package, platforms: list[Platform], wheels: list[str], sdist: bool, marker: str
) -> None:
    kept = filter_package(entry, _targets(*platforms))
    assert kept is not None
    assert sorted(w.filename for w in kept.wheels or ()) == sorted(wheels)
    assert (kept.sdist is not None) is sdist
    assert str(kept.marker or "") == marker


def test_filter_drops_a_package_no_target_needs() -> None:
    entry = _numpy(marker="sys_platform == 'darwin'")
    assert filter_package(entry, _targets(Platform.LINUX_X86_64)) is None


def test_filter_refuses_a_target_without_wheel_or_sdist() -> None:
    with pytest.raises(ResolutionError, match="no wheel for linux-aarch64 and no source"):
        filter_package(_numpy(), _targets(Platform.LINUX_AARCH64))


def _project(**routed: str) -> UvProject:
    labels = {
        PYPI: f"the PyPI index ({PYPI})",
        TORCH_INDEX: f"the PyTorch cu126 index ({TORCH_INDEX})",
    }
    return UvProject(
        pyproject="",
        lock_args=(),
        credentials={},
        secrets=("s3cret",),
        index_labels=labels,
        pypi_url=PYPI,
        routed=routed,  # type: ignore[arg-type]
    )


FAILURES: dict[str, tuple[str, dict[str, str], int | None, type[EnvlockError], str]] = {
    "routed-not-found": (
        "  x No solution found\n  ╰─▶ Because torch was not found in the package registry",
        {"torch": TORCH_INDEX},
        403,
        IndexUnavailableError,
        "the PyTorch cu126 index (https://download.pytorch.org/whl/cu126) did not serve torch (HTTP 403)",
    ),
    "routed-no-versions": (
        "Because there are no versions of torch and you require torch, we can conclude",
        {"torch": TORCH_INDEX},
        None,
        IndexUnavailableError,
        "lists no usable torch files",
    ),
    "hash-mismatch": (
        "error: Hash mismatch for `six==1.17.0` from https://f/six-1.17.0-py3-none-any.whl",
        {},
        None,
        HashMismatchError,
        "served https://f/six-1.17.0-py3-none-any.whl with other bytes",
    ),
    "pypi-refused-a-page": (
        "Because tokenizers was not found in the package registry and you require it",
        {},
        401,
        IndexUnavailableError,
        "did not serve tokenizers (HTTP 401)",
    ),
    "pypi-has-no-such-package": (
        "Because no-such-pkg was not found in the package registry and you require it",
        {},
        404,
        UvResolutionError,
        "the PyPI index has no package named no-such-pkg",
    ),
    "unsatisfiable": (
        "  x No solution found when resolving dependencies:\n  ╰─▶ Because six>=99 ...",
        {},
        None,
        UvResolutionError,
        "no set of packages satisfies torchenv.toml",
    ),
    "timeout": (
        "error: Failed to fetch: `https://pypi.org/simple/six/`\n  Caused by: operation timed out",
        {},
        None,
        IndexUnavailableError,
        f"the PyPI index ({PYPI}) did not answer in time",
    ),
    "http-error-names-the-index": (
        f"error: Failed to fetch: `{TORCH_INDEX}/torch/`\n  Caused by: HTTP status server error (503)",
        {},
        None,
        IndexUnavailableError,
        "could not read the PyTorch cu126 index (https://download.pytorch.org/whl/cu126) (HTTP 503)",
    ),
    "anything-else": ("error: something odd", {}, None, UvResolutionError, "uv could not lock"),
}


@pytest.mark.parametrize(
    ("stderr", "routed", "status", "family", "message"), FAILURES.values(), ids=FAILURES.keys()
)
def test_classify_uv_failure(
    stderr: str,
    routed: dict[str, str],
    status: int | None,
    family: type[EnvlockError],
    message: str,
) -> None:
    probed: list[str] = []

    def status_of(url: str) -> int | None:
        probed.append(url)
        return status

    error = classify_uv_failure(f"{stderr}\nsecret s3cret here", _project(**routed), status_of)
    assert type(error) is family
    assert message in error.message
    assert error.hint
    assert "s3cret" not in error.detail and "****" in error.detail
    assert (status is not None) is bool(probed)
    if isinstance(error, UvResolutionError):  # all of uv's words, redacted as the detail is
        assert stderr.splitlines()[0] in error.explanation
        assert "s3cret" not in error.explanation and "****" in error.explanation


def _selection(cuda: str = "12.6", packages: str = "") -> tuple[Any, Any]:
    spec = parse_spec_text(
        f'[env]\npython = "3.11"\n[torch]\nversion = "2.6"\ncuda = "{cuda}"\nvision = true\n'
        f"[packages]\n{packages}\n"
    )
    return spec, select_variant(
        spec, channels(), pypi_index=PYPI, pytorch_index="https://download.pytorch.org/whl"
    )


@pytest.mark.parametrize(
    ("cuda", "packages", "requirements", "sourced"),
    [
        ("12.6", "", ["torch==2.6.*", "torchvision==0.21.*"], ["torch", "torchvision"]),
        ("12.4", "", ["torch==2.6.*", "torchvision==0.21.*"], []),  # PyPI's own build
        (
            "12.6",
            'torchao = "*"\nsix = "*"',
            ["torch==2.6.*", "torchvision==0.21.*", "six", "torchao"],
            ["torch", "torchvision", "torchao"],
        ),
    ],
    ids=["variant-index", "pypi-build", "if-requested-family"],
)
def test_direct_requirements_and_what_is_pinned_to_the_index(
    cuda: str, packages: str, requirements: list[str], sourced: list[str]
) -> None:
    spec, selection = _selection(cuda, packages)
    assert direct_requirements(spec, selection) == requirements
    assert sorted(sourced_names(spec, selection)) == sorted(sourced)


ROUTING = {
    "from-the-variant-index": ("torch", "2.6.0+cu126", TORCH_INDEX, None),
    "from-pypi": ("torch", "2.6.9", PYPI, "torch-family packages must come from the PyTorch"),
    "pulled-in-from-pypi": (
        "torchao",
        "99.0.0",
        PYPI,
        "as a dependency of another package",
    ),
    "not-family": ("six", "1.17.0", "https://elsewhere/simple", None),
}


@pytest.mark.parametrize(
    ("name", "version", "index", "refusal"), ROUTING.values(), ids=ROUTING.keys()
)
def test_check_routing(name: str, version: str, index: str, refusal: str | None) -> None:
    spec, selection = _selection()
    locked = lock(
        package(name, version, wheel(f"{index}/{name}-{version}-py3-none-any.whl"), index=index)
    )
    if refusal is None:
        check_routing(locked, selection, spec=spec, pypi_index=PYPI, pytorch_index=TORCH_INDEX)
        return
    with pytest.raises(ResolutionError, match=refusal):
        check_routing(locked, selection, spec=spec, pypi_index=PYPI, pytorch_index=TORCH_INDEX)
