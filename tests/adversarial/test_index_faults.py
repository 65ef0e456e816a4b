"""Index faults from the fixture servers, for `lock` and for the commands that download
(`sync`, `bundle`): each fails with the index family's exit code, names what failed, and
leaves the previous lock / venv / bundle as it was."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from envlock.errors import ExitCode
from tests.conftest import Cli, assert_refused
from tests.support import catalog
from tests.support.indexes import IndexServer, Mangle, StandardIndexes, write_index
from tests.support.wheels import Dist, metadata_text
from tests.test_lock_e2e import read_lock, write_spec

SPEC_PACKAGES = 'six = "*"\nnumpy = "*"'
TORCH_WHEEL = "torch-2.6.0+cu126-cp311-cp311-manylinux_2_28_x86_64.whl"

Fault = int | Mangle | str  # an HTTP status, a Mangle, or "stall"
FAULTS: list[Fault] = [403, 404, 500, "stall", "truncate", "content-type", "garbage"]
# Where the fault is injected: a PyPI project page, the variant index's torch page, and the
# PEP 658 metadata uv reads from the variant index instead of downloading torch.
TARGETS = {
    "pypi-page": ("pypi", "/simple/six/"),
    "pytorch-page": ("pytorch", "/whl/cu126/torch/"),
    "pytorch-metadata": ("pytorch", f"/whl/cu126/{TORCH_WHEEL}.metadata"),
}


@pytest.fixture
def cold(
    fixture_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A fresh uv cache, so every page is really requested from the (faulty) server."""
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path_factory.mktemp("cold-cache")))
    monkeypatch.setenv("ENVLOCK_HTTP_TIMEOUT", "2")
    return fixture_env


def _inject(server: IndexServer, path: str, fault: Fault) -> None:
    if isinstance(fault, int):
        server.fail(path, fault)
    elif fault == "tamper":  # a valid wheel with other bytes than the lock pinned
        server.tamper("datasets-3.2.0-py3-none-any.whl")
    elif fault == "stall":
        server.delay(path, 4)
    else:
        server.mangle(path, fault)  # type: ignore[arg-type]


@pytest.fixture
def faults(indexes: StandardIndexes) -> Iterator[StandardIndexes]:
    yield indexes
    for server in (indexes.pypi_server, indexes.pytorch_server):
        server.clear_faults()


# What each fault must give where it is not the index family's exit code 5. A 404 for a PyPI
# project, and a page listing no files, mean "no such package" to every client (exit 4, the
# package named); a metadata file's content type does not matter (the lock is identical); a
# metadata file that does not match the hash its page lists is a hash failure (exit 6).
EXPECTED: dict[tuple[str, str], tuple[ExitCode, str]] = {
    ("pypi-page", "404"): (ExitCode.RESOLUTION, "has no package named six"),
    ("pypi-page", "garbage"): (ExitCode.RESOLUTION, "no versions of six"),
    ("pytorch-metadata", "content-type"): (ExitCode.OK, ""),
    ("pytorch-metadata", "garbage"): (ExitCode.HASH, "torch-2.6.0"),
    ("pytorch-metadata", "truncate"): (ExitCode.INDEX, "PyTorch cu126 index"),
}


@pytest.mark.parametrize("fault", FAULTS, ids=str)
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_lock_index_fault_keeps_the_previous_lock(
    target: str, fault: Fault, cold: Path, faults: StandardIndexes, cli: Cli
) -> None:
    write_spec(cold, packages=SPEC_PACKAGES)
    assert cli("lock").code == 0
    lock_path = cold / "pylock.toml"
    before = lock_path.read_bytes()
    which, path = TARGETS[target]
    server = faults.pypi_server if which == "pypi" else faults.pytorch_server
    _inject(server, path, fault)

    result = cli("lock", "--upgrade")

    label = "PyPI index" if which == "pypi" else "PyTorch cu126 index"
    code, named = EXPECTED.get((target, str(fault)), (ExitCode.INDEX, label))
    if code is ExitCode.OK:
        assert result.code == 0, result.stderr
    else:
        assert_refused(result, code)
        assert named in result.stderr
    assert lock_path.read_bytes() == before
    assert sorted(p.name for p in cold.iterdir()) == ["pylock.toml", "torchenv.toml"]


# ---------------------------------------------------------------------------------------
# files listed without a hash


@pytest.mark.parametrize(
    ("which", "page", "filename"),
    [
        ("pytorch", "/whl/cu126/torch/", TORCH_WHEEL),
        ("pypi", "/simple/six/", "six-1.17.0-py2.py3-none-any.whl"),  # PEP 691 JSON page
    ],
)
def test_file_listed_without_hash_is_refused_then_hashed_on_request(
    which: str, page: str, filename: str, cold: Path, faults: StandardIndexes, cli: Cli
) -> None:
    """uv would silently download such a file and pin whatever it got; envlock refuses by
    default, naming the URL, and with --hash-missing=download hashes it by streaming it."""
    write_spec(cold, packages=SPEC_PACKAGES)
    assert cli("lock").code == 0
    lock_path = cold / "pylock.toml"
    before = lock_path.read_text()
    server = faults.pypi_server if which == "pypi" else faults.pytorch_server
    server.mangle(page, "strip-hashes")

    refused = cli("lock", "--upgrade")

    assert_refused(refused, ExitCode.HASH)
    assert "listed by their index without a hash" in refused.stderr
    assert f"/{filename.replace('+', '%2B')}" in refused.stderr or filename in refused.stderr
    assert "--hash-missing=download" in refused.stderr
    assert lock_path.read_text() == before

    requests_before = len(server.requests)
    hashed = cli("lock", "--upgrade", "--hash-missing", "download")

    assert hashed.code == 0, hashed.stderr
    assert "Hashing 1 file(s)" in hashed.stderr
    assert f"{filename} (downloaded, sha256 ok)" in hashed.stderr
    assert "computed by downloading" in hashed.stderr  # a warning says so
    assert any(r.endswith(filename) for r in server.requests[requests_before:])
    assert lock_path.read_text() == before  # the same bytes, hence the same sha256


def test_hash_check_reads_only_non_pypi_pages(
    cold: Path, faults: StandardIndexes, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pages envlock reads itself are the ones of indexes in the lock (one per package)."""
    write_spec(cold, packages=SPEC_PACKAGES)
    start = len(faults.pytorch_server.requests)
    assert cli("lock").code == 0
    pages = [r for r in faults.pytorch_server.requests[start:] if r.endswith("/")]
    # uv reads torch and torchvision pages; envlock reads each once more, nothing else.
    assert sorted(pages) == sorted(["/whl/cu126/torch/", "/whl/cu126/torchvision/"] * 2)


# ---------------------------------------------------------------------------------------
# sync and bundle download artifacts: a fault changes nothing


WHEEL_FAULTS: list[Fault] = [403, 404, 500, "stall", "truncate", "garbage", "tamper"]


@pytest.mark.parametrize("fault", WHEEL_FAULTS, ids=str)
def test_sync_download_fault_leaves_the_venv_alone(
    fault: Fault, cold: Path, faults: StandardIndexes, cli: Cli
) -> None:
    write_spec(cold, packages='six = "*"')
    assert cli("lock").code == 0
    assert cli("sync", "--venv", ".venv").code == 0
    before = sorted(p.name for p in (cold / ".venv").rglob("*.dist-info"))
    spec = cold / "torchenv.toml"
    spec.write_text(spec.read_text().replace('six = "*"', 'six = "*"\ndatasets = "*"'))
    assert cli("lock").code == 0
    _inject(faults.pypi_server, "/simple/datasets/files/", fault)

    result = cli("sync", "--venv", ".venv")
    fresh = cli("sync", "--venv", ".venv-new")

    expected = ExitCode.HASH if fault in ("garbage", "tamper") else ExitCode.INDEX
    for outcome in (result, fresh):
        assert outcome.code == expected, outcome.stderr
        assert "Traceback" not in outcome.stderr
        assert re.search(r"^hint: ", outcome.stderr, re.M), outcome.stderr
    assert sorted(p.name for p in (cold / ".venv").rglob("*.dist-info")) == before
    assert not (cold / ".venv-new").exists()
    assert sorted(p.name for p in cold.iterdir() if p.name.startswith(".")) == [".venv"]


@pytest.mark.parametrize("fault", WHEEL_FAULTS, ids=str)
def test_bundle_download_fault_keeps_only_verified_files(
    fault: Fault, cold: Path, faults: StandardIndexes, cli: Cli
) -> None:
    write_spec(cold, packages='six = "*"\ndatasets = "*"')
    assert cli("lock").code == 0
    _inject(faults.pypi_server, "/simple/datasets/files/", fault)

    result = cli("bundle", "-o", "offline")

    # Other bytes are a hash failure; an HTTP error, a stall or a connection that closes before
    # the whole file arrived (resumable) are the index family's.
    hashed = ("garbage", "tamper")
    assert result.code == (ExitCode.HASH if fault in hashed else ExitCode.INDEX), result.stderr
    assert "datasets-3.2.0" in result.stderr
    assert re.search(r"^hint: ", result.stderr, re.M)
    wheels = cold / "offline" / "wheels"
    assert not (cold / "offline" / "pylock.toml").exists()  # no bundle lock without all files
    # Whatever is there is whole and verified: each file has the bytes the lock pins.
    pinned = {
        w.filename: w.hashes["sha256"] for p in read_lock(cold).packages for w in p.wheels or ()
    }
    kept = {w.name: hashlib.sha256(w.read_bytes()).hexdigest() for w in wheels.glob("*.whl")}
    assert kept == {name: pinned[name] for name in kept}
    assert not [name for name in kept if "datasets" in name]
    faults.pypi_server.clear_faults()
    assert cli("bundle", "-o", "offline").code == 0  # and the next run finishes the job


# ---------------------------------------------------------------------------------------
# a .metadata file that disagrees with its wheel (and a page that vouches for the lie)


def test_metadata_that_disagrees_with_its_wheel_is_caught_before_the_venv_changes(
    fixture_env: Path,
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The index's PEP 658 metadata for liar 1.0.0 omits a dependency its wheel declares. The
    lock (made from metadata, as uv and pip do) lacks it; sync checks the installed set and
    refuses before anything replaces the venv, naming the missing requirement."""
    root = tmp_path_factory.mktemp("lying-index")
    liar = Dist(name="liar", version="1.0.0", requires_dist=("needed-dep",))
    write_index(
        root / "pypi",
        "/simple",
        [*catalog.pypi(), liar, Dist(name="needed-dep", version="1.0.0")],
        style="pypi",
    )
    files = root / "pypi" / "liar" / "files"
    (metadata,) = files.glob("*.whl.metadata")
    honest = hashlib.sha256(metadata.read_bytes()).hexdigest()
    lie = metadata_text(Dist(name="liar", version="1.0.0")).encode()
    metadata.write_bytes(lie)
    for page in (root / "pypi" / "liar").glob("index.*"):
        page.write_text(page.read_text().replace(honest, hashlib.sha256(lie).hexdigest()))

    with IndexServer({"/simple": (root / "pypi", "pypi")}) as server:
        monkeypatch.setenv("ENVLOCK_PYPI_INDEX_URL", f"{server.base_url}/simple")
        monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path_factory.mktemp("liar-cache")))
        write_spec(fixture_env, packages='six = "*"')
        assert cli("lock").code == 0
        assert cli("sync", "--venv", ".venv").code == 0
        before = sorted(p.name for p in (fixture_env / ".venv").rglob("*.dist-info"))
        spec = fixture_env / "torchenv.toml"
        spec.write_text(spec.read_text().replace('six = "*"', 'six = "*"\nliar = "*"'))
        assert cli("lock").code == 0
        assert "needed-dep" not in (fixture_env / "pylock.toml").read_text()

        for installer in ("uv", "pip"):
            result = cli("sync", "--venv", ".venv", "--installer", installer)
            assert_refused(result, ExitCode.MATERIALISE)
            assert "needed-dep" in result.stderr
            assert "tampered index" in result.stderr
            assert sorted(p.name for p in (fixture_env / ".venv").rglob("*.dist-info")) == before
            fresh = cli("sync", "--venv", ".venv-new", "--installer", installer)
            assert_refused(fresh, ExitCode.MATERIALISE)
            assert not (fixture_env / ".venv-new").exists()
