"""`envlock lock` end to end: the real uv against the fixture indexes on 127.0.0.1."""

from __future__ import annotations

import re
import socket
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.pylock import Pylock

from tests.conftest import Cli
from tests.support.indexes import StandardIndexes

BASE = """\
[env]
python = "3.11"
platforms = {platforms}

[torch]
version = "2.6"
cuda = "{cuda}"
vision = {vision}
{torch_extra}

[packages]
{packages}
{tail}
"""


def write_spec(
    directory: Path,
    *,
    cuda: str = "12.6",
    vision: bool = True,
    packages: str = 'six = "*"',
    platforms: str = '["linux-x86_64"]',
    torch_extra: str = "",
    tail: str = "",
) -> Path:
    path = directory / "torchenv.toml"
    path.write_text(
        BASE.format(
            cuda=cuda,
            vision="true" if vision else "false",
            packages=packages,
            platforms=platforms,
            torch_extra=torch_extra,
            tail=tail,
        )
    )
    return path


def read_lock(directory: Path) -> Pylock:
    return Pylock.from_dict(tomllib.loads((directory / "pylock.toml").read_text()))


def versions(lock: Pylock) -> dict[str, str]:
    return {p.name: str(p.version) for p in lock.packages}


def index_of(lock: Pylock, name: str) -> str:
    return next(p.index or "" for p in lock.packages if p.name == name)


def test_cuda_variant_comes_from_the_variant_index(
    fixture_env: Path, cli: Cli, indexes: StandardIndexes
) -> None:
    write_spec(fixture_env, cuda="12.6")
    result = cli("lock")
    assert result.code == 0, result.stderr
    lock = read_lock(fixture_env)
    assert versions(lock)["torch"] == "2.6.0+cu126"
    assert versions(lock)["torchvision"] == "0.21.0+cu126"
    assert index_of(lock, "torch") == f"{indexes.pytorch_url}/cu126"
    assert index_of(lock, "six") == indexes.pypi_url
    assert "Wrote" in result.stderr


def test_every_artifact_is_hashed_and_for_the_declared_target(
    fixture_env: Path, cli: Cli, indexes: StandardIndexes
) -> None:
    write_spec(fixture_env, packages='numpy = "*"\nsix = "*"')
    assert cli("lock").code == 0
    lock = read_lock(fixture_env)
    assert {"numpy", "six", "torch"} <= {p.name for p in lock.packages}
    for package in lock.packages:
        assert package.wheels, package.name  # every package here has a wheel for the target
        assert package.sdist is None, package.name  # so no sdist is locked beside it
        for wheel in package.wheels:
            assert re.fullmatch(r"[0-9a-f]{64}", wheel.hashes["sha256"]), wheel.filename
            assert "cp312" not in wheel.filename
            assert "pypy" not in wheel.filename
            assert "musllinux" not in wheel.filename
            assert "macosx" not in wheel.filename
            assert "win_amd64" not in wheel.filename
    numpy = next(p for p in lock.packages if p.name == "numpy")
    # The index offers 8 numpy 2.3.0 wheels and an sdist; only the target's wheel is locked.
    with urllib.request.urlopen(f"{indexes.pypi_url}/numpy/") as page:
        assert "numpy-2.3.0.tar.gz#sha256=" in page.read().decode()
    assert [w.filename for w in numpy.wheels or ()] == [
        "numpy-2.3.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    ]
    assert numpy.sdist is None


def test_pypi_default_build_comes_from_pypi(
    fixture_env: Path, cli: Cli, indexes: StandardIndexes
) -> None:
    write_spec(fixture_env, cuda="12.4")
    assert cli("lock").code == 0
    lock = read_lock(fixture_env)
    # PyPI is the official source of this build; the fixture's PyPI has a 2.6.9 (see catalog).
    assert versions(lock)["torch"].startswith("2.6.")
    assert "+" not in versions(lock)["torch"]
    assert index_of(lock, "torch") == indexes.pypi_url
    meta = (lock.tool or {})["envlock"]
    assert meta["torch-source"] == {"linux-x86_64": "pypi"}


def test_source_pytorch_index_overrides_pypi(fixture_env: Path, cli: Cli) -> None:
    write_spec(fixture_env, cuda="12.4", torch_extra='source = "pytorch-index"')
    assert cli("lock").code == 0
    assert versions(read_lock(fixture_env))["torch"] == "2.6.0+cu124"


def test_dependency_confusion_replay(fixture_env: Path, cli: Cli) -> None:
    """PyPI serves higher-versioned torch/torchvision (the Dec 2022 torchtriton attack shape)."""
    write_spec(fixture_env, cuda="12.6", torch_extra="")
    assert cli("lock").code == 0
    lock = read_lock(fixture_env)
    assert versions(lock)["torch"] == "2.6.0+cu126"
    assert versions(lock)["torchvision"] == "0.21.0+cu126"


def test_rocm_triton_comes_only_from_the_rocm_index(
    fixture_env: Path, cli: Cli, indexes: StandardIndexes
) -> None:
    write_spec(fixture_env, cuda="rocm6.2", vision=False)
    result = cli("lock")
    assert result.code == 0, result.stderr
    lock = read_lock(fixture_env)
    assert versions(lock)["pytorch-triton-rocm"] == "3.2.0"
    assert index_of(lock, "pytorch-triton-rocm") == f"{indexes.pytorch_url}/rocm6.2.4"


def test_same_inputs_same_bytes(fixture_env: Path, cli: Cli) -> None:
    write_spec(fixture_env)
    assert cli("lock").code == 0
    first = (fixture_env / "pylock.toml").read_bytes()
    assert cli("lock", "--upgrade").code == 0
    assert (fixture_env / "pylock.toml").read_bytes() == first
    assert b"\r\n" not in first


def test_nothing_changed_does_not_re_resolve(
    fixture_env: Path, cli: Cli, indexes: StandardIndexes
) -> None:
    write_spec(fixture_env)
    assert cli("lock").code == 0
    before = len(indexes.pypi_server.requests) + len(indexes.pytorch_server.requests)
    result = cli("lock")
    assert result.code == 0
    assert "up to date" in result.stderr
    assert len(indexes.pypi_server.requests) + len(indexes.pytorch_server.requests) == before


def test_check_is_offline_and_reports_staleness(
    fixture_env: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = write_spec(fixture_env)
    missing = cli("lock", "--check")
    assert missing.code == 1
    assert "does not exist" in missing.stderr
    assert cli("lock").code == 0
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", "/nonexistent/cache")
    assert cli("lock", "--check").code == 0
    spec.write_text(spec.read_text().replace('six = "*"', 'six = ">=1.16"'))
    stale = cli("lock", "--check")
    assert stale.code == 1
    assert "stale" in stale.stderr
    assert len(stale.stderr.strip().splitlines()) <= 2


def test_exclude_newer_still_locks_torch_from_the_index(fixture_env: Path, cli: Cli) -> None:
    write_spec(
        fixture_env,
        packages='numpy = "*"',
        tail="[resolution]\nexclude-newer = 2025-06-01T00:00:00Z\n",
    )
    result = cli("lock")
    assert result.code == 0, result.stderr
    lock = read_lock(fixture_env)
    assert versions(lock)["numpy"] == "2.2.0"
    assert versions(lock)["torch"] == "2.6.0+cu126"


def test_spec_change_keeps_locked_versions_until_upgrade_package(
    fixture_env: Path, cli: Cli
) -> None:
    spec = write_spec(
        fixture_env,
        packages='numpy = "*"',
        tail="[resolution]\nexclude-newer = 2025-06-01T00:00:00Z\n",
    )
    assert cli("lock").code == 0
    assert versions(read_lock(fixture_env))["numpy"] == "2.2.0"
    spec.write_text(spec.read_text().replace("exclude-newer", "# exclude-newer"))
    assert cli("lock").code == 0
    assert versions(read_lock(fixture_env))["numpy"] == "2.2.0"
    assert cli("lock", "--upgrade-package", "numpy").code == 0
    assert versions(read_lock(fixture_env))["numpy"] == "2.3.0"


def test_multi_platform_lock_filters_per_platform(
    fixture_env: Path, cli: Cli, indexes: StandardIndexes
) -> None:
    write_spec(
        fixture_env,
        cuda="12.4",
        packages='numpy = "*"',
        platforms='["linux-x86_64", "macos-arm64", "windows-x86_64"]',
        torch_extra='source = "pytorch-index"',
    )
    result = cli("lock")
    assert result.code == 0, result.stderr
    lock = read_lock(fixture_env)
    numpy = next(p for p in lock.packages if p.name == "numpy")
    tags = sorted(w.filename.split("-")[-1] for w in numpy.wheels or ())
    assert len(tags) == 3
    torches = {str(p.index): str(p.version) for p in lock.packages if p.name == "torch"}
    assert torches[f"{indexes.pytorch_url}/cu124"] == "2.6.0+cu124"
    assert torches[indexes.pypi_url].startswith("2.6.")  # macOS: PyPI only


# ---------------------------------------------------------------------------------------
# failures leave the previous lock byte-for-byte


@pytest.fixture
def locked(fixture_env: Path, cli: Cli) -> Iterator[tuple[Path, bytes]]:
    spec = write_spec(fixture_env)
    assert cli("lock").code == 0
    yield spec, (fixture_env / "pylock.toml").read_bytes()


def test_unsatisfiable_keeps_the_old_lock(
    locked: tuple[Path, bytes], cli: Cli, fixture_env: Path
) -> None:
    spec, before = locked
    spec.write_text(spec.read_text().replace('six = "*"', 'six = ">=99"'))
    result = cli("lock")
    assert result.code == 4
    assert "error:" in result.stderr
    assert "hint:" in result.stderr
    assert "six" in result.stderr
    assert (fixture_env / "pylock.toml").read_bytes() == before


def test_unknown_package_is_a_resolution_error(locked: tuple[Path, bytes], cli: Cli) -> None:
    spec, _ = locked
    spec.write_text(spec.read_text().replace('six = "*"', 'no-such-package-xyz = "*"'))
    result = cli("lock")
    assert result.code == 4
    assert "PyPI index has no package named no-such-package-xyz" in result.stderr
    assert "hint: Check the spelling" in result.stderr


def test_index_5xx_names_the_index(
    locked: tuple[Path, bytes], cli: Cli, fixture_env: Path, indexes: StandardIndexes
) -> None:
    spec, before = locked
    spec.write_text(spec.read_text().replace('six = "*"', 'filelock = "*"'))
    indexes.pypi_server.fail("/simple/", 503)
    try:
        result = cli("lock", "--upgrade")
    finally:
        indexes.pypi_server.clear_faults()
    assert result.code == 5, result.stderr
    assert "PyPI index" in result.stderr
    assert (fixture_env / "pylock.toml").read_bytes() == before


def test_pytorch_index_403_names_the_variant_index(
    locked: tuple[Path, bytes], cli: Cli, indexes: StandardIndexes
) -> None:
    indexes.pytorch_server.fail("/whl/cu126/", 403)
    try:
        result = cli("lock", "--upgrade")
    finally:
        indexes.pytorch_server.clear_faults()
    assert result.code == 5, result.stderr
    assert "PyTorch cu126 index" in result.stderr
    assert "403" in result.stderr


def test_unreachable_index(
    locked: tuple[Path, bytes], cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("ENVLOCK_PYPI_INDEX_URL", f"http://127.0.0.1:{port}/simple")
    result = cli("lock")
    assert result.code == 5, result.stderr
    assert f"127.0.0.1:{port}" in result.stderr


def test_index_timeout(
    locked: tuple[Path, bytes], cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A listening socket that never answers: the connection opens, the response never comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        monkeypatch.setenv("ENVLOCK_PYPI_INDEX_URL", f"http://127.0.0.1:{port}/simple")
        monkeypatch.setenv("ENVLOCK_HTTP_TIMEOUT", "2")
        result = cli("lock")
    assert result.code == 5, result.stderr
    assert f"the PyPI index (http://127.0.0.1:{port}/simple) did not answer in time" in (
        result.stderr
    )
    assert "ENVLOCK_HTTP_TIMEOUT" in result.stderr


# ---------------------------------------------------------------------------------------
# credentials and ambient configuration


def test_credentials_are_used_but_never_written(
    fixture_env: Path, cli: Cli, indexes: StandardIndexes, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_spec(fixture_env)
    base = indexes.pytorch_url.replace("http://", "http://alice:t0ps3cret@")
    monkeypatch.setenv("ENVLOCK_PYTORCH_INDEX_URL", base)
    indexes.pytorch_server.require_auth("alice", "t0ps3cret")
    try:
        result = cli("lock")
        denied_env = indexes.pytorch_url
        monkeypatch.setenv("ENVLOCK_PYTORCH_INDEX_URL", denied_env)
        denied = cli("lock", "--upgrade")
    finally:
        indexes.pytorch_server.require_auth(None, None)
    assert result.code == 0, result.stderr
    text = (fixture_env / "pylock.toml").read_text()
    assert "t0ps3cret" not in text
    assert "alice" not in text
    assert "t0ps3cret" not in result.stderr + result.stdout
    assert denied.code == 5
    assert "401" in denied.stderr


def test_ambient_pip_and_uv_configuration_is_ignored(
    fixture_env: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_spec(fixture_env)
    assert cli("lock").code == 0
    clean = (fixture_env / "pylock.toml").read_bytes()
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("six==1.16.0\ntorch==9.9.9\n")
    config_home = tmp_path / "xdg"
    (config_home / "uv").mkdir(parents=True)
    (config_home / "uv" / "uv.toml").write_text('index-url = "http://127.0.0.1:9/simple"\n')
    (config_home / "pip").mkdir(parents=True)
    (config_home / "pip" / "pip.conf").write_text("[global]\nindex-url = http://127.0.0.1:9/\n")
    (fixture_env / "uv.toml").write_text('index-url = "http://127.0.0.1:9/simple"\n')
    for key, value in {
        "XDG_CONFIG_HOME": str(config_home),
        "UV_INDEX_URL": "http://127.0.0.1:9/simple",
        "UV_EXTRA_INDEX_URL": "http://127.0.0.1:9/extra",
        "UV_CONSTRAINT": str(constraints),
        "UV_EXCLUDE_NEWER": "2000-01-01T00:00:00Z",
        "UV_PRERELEASE": "allow",
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PIP_CONSTRAINT": str(constraints),
        "PIP_CONFIG_FILE": str(config_home / "pip" / "pip.conf"),
    }.items():
        monkeypatch.setenv(key, value)
    result = cli("lock", "--upgrade")
    assert result.code == 0, result.stderr
    assert (fixture_env / "pylock.toml").read_bytes() == clean
