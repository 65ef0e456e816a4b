from __future__ import annotations

import tomllib
from typing import Any

import pytest
from packaging.pylock import Package, Pylock

from envlock.channels import parse_channels, select_variant
from envlock.errors import IndexUnavailableError, ResolutionError
from envlock.resolve import (
    build_uv_project,
    classify_uv_failure,
    filter_package,
    platform_environment,
    platform_tags,
    preferences_lock,
)
from envlock.spec import Indexes, Platform, parse_spec_text
from envlock.urls import redact_text, redact_url, split_credentials
from tests.test_channels import _data

SHA = "c" * 64


def _project(cuda: str = "12.6", extra: str = "", indexes: Indexes | None = None) -> Any:
    spec = parse_spec_text(
        f'[env]\npython = "3.11"\n{extra}\n[torch]\nversion = "2.6"\ncuda = "{cuda}"\n'
        'vision = true\n[packages]\ntransformers = ">=4.40,<5"\n'
    )
    indexes = indexes or Indexes()
    selection = select_variant(
        spec, parse_channels(_data()), pypi_index=indexes.pypi, pytorch_index=indexes.pytorch
    )
    return build_uv_project(spec, selection, indexes)


def test_project_routes_only_torch_family_to_an_explicit_index() -> None:
    data = tomllib.loads(_project().pyproject)
    indexes = {i["name"]: i for i in data["tool"]["uv"]["index"]}
    assert indexes["pytorch"]["url"] == "https://download.pytorch.org/whl/cu126"
    assert indexes["pytorch"]["explicit"] is True
    assert _project().lock_args == ("--default-index", "pypi=https://pypi.org/simple")
    assert data["tool"]["uv"]["sources"] == {
        "torch": {"index": "pytorch"},
        "torchvision": {"index": "pytorch"},
    }
    assert "torch==2.6.*" in data["project"]["dependencies"]
    assert "torchvision==0.21.*" in data["project"]["dependencies"]


def test_project_pins_python_and_platforms() -> None:
    data = tomllib.loads(_project(extra='platforms = ["linux-x86_64", "windows-x86_64"]').pyproject)
    assert data["project"]["requires-python"] == ">=3.11"
    assert data["tool"]["uv"]["environments"] == [
        f"python_version == '3.11' and {Platform.LINUX_X86_64.marker}",
        f"python_version == '3.11' and {Platform.WINDOWS_X86_64.marker}",
    ]


def test_mixed_platforms_route_per_marker() -> None:
    data = tomllib.loads(_project(extra='platforms = ["linux-x86_64", "macos-arm64"]').pyproject)
    assert data["tool"]["uv"]["sources"]["torch"] == [
        {"index": "pytorch", "marker": Platform.LINUX_X86_64.marker}
    ]


def test_pypi_build_needs_no_pytorch_index() -> None:
    data = tomllib.loads(_project(cuda="12.4").pyproject)
    assert "index" not in data["tool"]["uv"]
    assert "sources" not in data["tool"]["uv"]


def test_credentials_leave_the_project_file() -> None:
    project = _project(
        indexes=Indexes(
            pypi="https://alice:s3cret@mirror.example/simple",
            pytorch="https://bob:t0ken@mirror.example/whl",
        )
    )
    assert "s3cret" not in project.pyproject + " ".join(project.lock_args)
    assert "t0ken" not in project.pyproject
    assert project.credentials == {
        "UV_INDEX_PYPI_USERNAME": "alice",
        "UV_INDEX_PYPI_PASSWORD": "s3cret",
        "UV_INDEX_PYTORCH_USERNAME": "bob",
        "UV_INDEX_PYTORCH_PASSWORD": "t0ken",
    }


def test_resolution_failure_is_trimmed_and_redacted() -> None:
    project = _project(indexes=Indexes(pypi="https://alice:s3cret@mirror.example/simple"))
    stderr = (
        "Using CPython 3.11.7\n  x No solution found when resolving dependencies:\n"
        "  ╰─▶ Because transformers>=99 was not found in https://alice:s3cret@mirror.example/simple"
    )
    error = classify_uv_failure(stderr, project)
    assert isinstance(error, ResolutionError)
    assert "s3cret" not in error.detail
    assert "Using CPython" not in error.detail


def test_network_failure_names_the_index() -> None:
    project = _project()
    stderr = (
        "error: Failed to fetch: `https://download.pytorch.org/whl/cu126/torch/`\n"
        "  Caused by: HTTP status server error (503 Service Unavailable)"
    )
    error = classify_uv_failure(stderr, project)
    assert isinstance(error, IndexUnavailableError)
    assert "PyTorch cu126 index" in error.message
    assert "503" in error.message


def _package(wheels: list[str], *, sdist: bool = False, marker: str | None = None) -> Package:
    data: dict[str, Any] = {
        "name": "numpy",
        "version": "2.2.0",
        "wheels": [{"url": f"https://f/{w}", "hashes": {"sha256": SHA}} for w in wheels],
    }
    if sdist:
        data["sdist"] = {"url": "https://f/numpy-2.2.0.tar.gz", "hashes": {"sha256": SHA}}
    if marker:
        data["marker"] = marker
    lock = Pylock.from_dict({"lock-version": "1.0", "created-by": "t", "packages": [data]})
    return lock.packages[0]


def _targets(*platforms: Platform) -> list[Any]:
    return [
        (p, frozenset(platform_tags(p, "3.11")), platform_environment(p, "3.11")) for p in platforms
    ]


NUMPY_WHEELS = [
    "numpy-2.2.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "numpy-2.2.0-cp311-cp311-musllinux_1_2_x86_64.whl",
    "numpy-2.2.0-cp311-cp311-macosx_14_0_arm64.whl",
    "numpy-2.2.0-cp311-cp311-win_amd64.whl",
    "numpy-2.2.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "numpy-2.2.0-pp310-pypy310_pp73-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "numpy-2.2.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
]


def test_filter_keeps_only_wheels_for_declared_targets() -> None:
    kept = filter_package(_package(NUMPY_WHEELS, sdist=True), _targets(Platform.LINUX_X86_64))
    assert kept is not None
    assert [w.filename for w in kept.wheels or []] == [NUMPY_WHEELS[0]]
    assert kept.sdist is None


def test_filter_multi_platform() -> None:
    kept = filter_package(
        _package(NUMPY_WHEELS), _targets(Platform.LINUX_X86_64, Platform.MACOS_ARM64)
    )
    assert kept is not None
    assert {w.filename for w in kept.wheels or []} == {NUMPY_WHEELS[0], NUMPY_WHEELS[2]}


def test_filter_keeps_sdist_only_when_a_target_needs_it() -> None:
    kept = filter_package(
        _package(NUMPY_WHEELS[:1], sdist=True),
        _targets(Platform.LINUX_X86_64, Platform.WINDOWS_X86_64),
    )
    assert kept is not None
    assert kept.sdist is not None


def test_filter_without_any_artifact_for_a_target_is_an_error() -> None:
    with pytest.raises(ResolutionError, match="no wheel for windows-x86_64"):
        filter_package(_package(NUMPY_WHEELS[:1]), _targets(Platform.WINDOWS_X86_64))


def test_filter_drops_packages_whose_marker_excludes_every_target() -> None:
    package = _package(NUMPY_WHEELS, marker="sys_platform == 'win32'")
    assert filter_package(package, _targets(Platform.LINUX_X86_64)) is None


def test_preferences_lock_is_a_minimal_uv_lock() -> None:
    lock = Pylock.from_dict(
        {
            "lock-version": "1.0",
            "created-by": "envlock",
            "packages": [
                {
                    "name": "six",
                    "version": "1.17.0",
                    "index": "https://pypi.org/simple",
                    "wheels": [
                        {
                            "url": "https://f/six-1.17.0-py2.py3-none-any.whl",
                            "hashes": {"sha256": SHA},
                        }
                    ],
                }
            ],
        }
    )
    data = tomllib.loads(preferences_lock([lock], "==3.11.*"))
    assert data["package"][0]["name"] == "six"
    assert data["package"][0]["source"] == {"registry": "https://pypi.org/simple"}
    assert data["package"][0]["wheels"][0]["hash"] == f"sha256:{SHA}"


def test_redaction_removes_userinfo_and_secrets() -> None:
    assert redact_url("https://u:p%40ss@host:8080/simple") == "https://host:8080/simple"
    assert split_credentials("https://u:p%40ss@host/x") == ("https://host/x", "u", "p@ss")
    text = "GET https://u:t0ps3cret@host/simple failed; token t0ps3cret leaked"
    assert redact_text(text, ("t0ps3cret",)) == "GET https://host/simple failed; token **** leaked"


def test_platform_marker_over_all_targets_is_dropped() -> None:
    marker = (
        "python_full_version == '3.11.*' and ((platform_machine == 'arm64' and "
        "sys_platform == 'darwin') or (platform_machine == 'x86_64' and sys_platform == 'linux'))"
    )
    package = _package(NUMPY_WHEELS, marker=marker)
    kept = filter_package(package, _targets(Platform.LINUX_X86_64, Platform.MACOS_ARM64))
    assert kept is not None
    assert kept.marker is None
    only_linux = filter_package(package, _targets(Platform.LINUX_X86_64, Platform.WINDOWS_X86_64))
    assert only_linux is not None
    assert only_linux.marker is not None  # it still tells windows apart


def test_index_credentials_apply_to_the_index_and_files_on_its_host_only() -> None:
    project = _project(
        indexes=Indexes(
            pypi="https://mirror.example/api/pypi/simple",
            pytorch="https://bob:tok@torch.example:8443/whl",
        )
    )
    assert project.auth_for("https://torch.example:8443/whl/cu126") == ("bob", "tok")
    assert project.auth_for("https://torch.example:8443/files/torch.whl") == ("bob", "tok")
    assert project.auth_for("https://torch.example/whl/cu126") is None  # another port
    assert project.auth_for("http://torch.example:8443/whl/cu126") is None  # another scheme
    assert project.auth_for("https://mirror.example/api/pypi/simple") is None  # no credentials
