"""The import check (issue 18 item 3): sync and verify --imports import the packages the spec
names inside the venv, so a venv exactly the lock whose locked versions do not work together
(datasets 2.14.4 with pyarrow 26) fails loudly instead of at the user's first `import`.

The e2e tests lock brokenimport-data (tests/support/catalog.py: it uses what brokenimport-arrow
26.0 removed) from the fixture index; the io tests install wheels built here into a venv."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from packaging.utils import NormalizedName as N
from uv import find_uv_bin

from envlock.api.imports import import_names
from envlock.errors import ExitCode
from envlock.io.import_check import ImportFailure, _below, check_imports, import_error
from envlock.io.venv import MARKER_FILE
from tests.conftest import Cli, assert_refused
from tests.support.conda import Channel
from tests.support.venvs import make_venv
from tests.support.wheels import Dist, build_wheel
from tests.test_conda import channel  # noqa: F401 - the local conda channel fixture
from tests.test_lock_e2e import write_spec

ABI_BREAK = "AttributeError: module 'brokenimport_arrow' has no attribute 'PyExtensionType'"


def _dist(name: str, init: str) -> Dist:
    """A distribution whose one module runs ``init`` when it is imported."""
    module = name.replace("-", "_")
    return Dist(name=name, version="1.0", files=((f"{module}/__init__.py", init),))


def _venv_with(tmp_path: Path, *dists: Dist) -> Path:
    """A venv holding ``dists`` (wheels built here, installed without an index); its python."""
    python = make_venv(tmp_path / "venv")
    wheels = [str(build_wheel(d, "py3-none-any", tmp_path / "wheels")) for d in dists]
    subprocess.run(
        [find_uv_bin(), "pip", "install", "--quiet", "--no-config", "--no-cache", "--no-index"]
        + ["--no-deps", "--python", str(python), *wheels],
        check=True,
        capture_output=True,
    )
    return python


OK = _dist("fine-one", "VALUE = 1\n")
OK_TOO = _dist("fine-two", "VALUE = 2\n")

# ---------------------------------------------------------------------------------------
# io: one interpreter, every failure a finding, nothing hidden


def test_an_import_that_raises_is_reported_with_its_last_traceback_line(tmp_path: Path) -> None:
    broken = _dist("broken-attr", "import fine_one\nfine_one.PyExtensionType\n")
    python = _venv_with(tmp_path, OK, broken)
    report = check_imports(python, ["broken-attr", "fine-one"])
    assert report.imported == ("fine_one",)
    (failure,) = report.failures
    assert (failure.name, failure.module) == ("broken-attr", "broken_attr")
    assert failure.error == "AttributeError: module 'fine_one' has no attribute 'PyExtensionType'"
    assert report.runs == 1


def test_a_hanging_import_times_out_and_the_packages_after_it_are_still_imported(
    tmp_path: Path,
) -> None:
    hangs = _dist("hangs-here", "import time\n\ntime.sleep(3600)\n")
    python = _venv_with(tmp_path, OK, hangs, OK_TOO)
    report = check_imports(python, ["fine-one", "hangs-here", "fine-two"], timeout=1)
    assert report.imported == ("fine_one", "fine_two")
    (failure,) = report.failures
    assert failure.module == "hangs_here"
    assert failure.error == "timed out after 1 s"
    assert re.search(r"hangs_here/__init__\.py, line 3$", failure.where), failure.where
    assert report.runs == 2  # a fresh interpreter for what came after the hang


def test_a_crashing_import_does_not_hide_the_others(tmp_path: Path) -> None:
    crashes = _dist("crashes-here", "import os, signal\n\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    python = _venv_with(tmp_path, OK, crashes, OK_TOO)
    report = check_imports(python, ["crashes-here", "fine-one", "fine-two"])
    assert report.imported == ("fine_one", "fine_two")
    (failure,) = report.failures
    assert failure.error == "crashed (SIGSEGV)"
    assert "crashes_here/__init__.py, line 3" in failure.where


def test_an_import_that_exits_is_a_failure_not_the_end_of_the_check(tmp_path: Path) -> None:
    exits = _dist("exits-here", "raise SystemExit(3)\n")
    leaves = _dist("leaves-here", "import os\n\nos._exit(0)\n")
    python = _venv_with(tmp_path, exits, leaves, OK)
    report = check_imports(python, ["exits-here", "leaves-here", "fine-one"])
    assert [(f.module, f.error) for f in report.failures] == [
        ("exits_here", "SystemExit: 3"),
        ("leaves_here", "the interpreter exited with status 0"),
    ]
    assert report.imported == ("fine_one",)


def test_what_an_import_prints_cannot_forge_the_outcome(tmp_path: Path) -> None:
    forger = _dist(
        "prints-json",
        'import os\nprint(\'{"done": true}\')\nos.write(1, b\'{"end": "x", "name": "y"}\\n\')\n'
        "raise ImportError('libfoo.so.1: cannot open shared object file')\n",
    )
    python = _venv_with(tmp_path, forger)
    report = check_imports(python, ["prints-json"])
    assert [f.error for f in report.failures] == [
        "ImportError: libfoo.so.1: cannot open shared object file"
    ]


def test_the_modules_come_from_top_level_txt_or_the_record(tmp_path: Path) -> None:
    """Import names are not project names (scikit-learn installs sklearn); stray test and
    setup modules a wheel ships at the top are not its API and are not imported."""
    renamed = Dist(
        name="other-name",
        version="1.0",
        files=(
            ("realmod/__init__.py", "VALUE = 1\n"),
            ("other_name-1.0.dist-info/top_level.txt", "realmod\n"),
        ),
    )
    stray = Dist(
        name="ships-tests",
        version="1.0",
        files=(
            ("tests/__init__.py", "import pytest_only_dep\n"),
            ("setup.py", "raise SystemExit\n"),
        ),
    )
    python = _venv_with(tmp_path, renamed, stray)
    report = check_imports(python, ["other-name", "ships-tests", "not-installed"])
    assert report.imported == ("realmod", "ships_tests")
    assert [(f.name, f.message) for f in report.failures] == [("not-installed", "not installed")]


def test_the_bound_a_hint_proposes_keeps_the_release_series_out() -> None:
    assert _below("26.0.0") == "<26"
    assert _below("0.17.2") == "<0.17"
    assert _below("2.1+cu124") == "<2"


def test_the_check_imports_what_the_spec_names_and_the_torch_table() -> None:
    installed = ["torch", "torchvision", "numpy", "filelock", "Brokenimport_Data"]
    named = ["brokenimport-data", "six"]  # six: named, not installed here
    assert import_names(installed, named) == ("brokenimport-data", "torch", "torchvision")
    assert import_names(installed, None) == ("torch", "torchvision")  # no spec: the family


# ---------------------------------------------------------------------------------------
# sync and verify, end to end against the fixture index


@pytest.fixture
def broken_lock(fixture_env: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A lock whose newest brokenimport-arrow breaks brokenimport-data's import."""
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(fixture_env / "no-nvidia-smi"))
    write_spec(fixture_env, packages='brokenimport-data = "*"')
    assert cli("lock").code == 0
    return fixture_env


def test_sync_of_an_abi_break_fails_naming_the_package_and_its_last_traceback_line(
    broken_lock: Path, cli: Cli
) -> None:
    result = cli("sync", "--venv", ".venv")
    assert_refused(result, ExitCode.IMPORT)
    error = next(line for line in result.stderr.splitlines() if line.startswith("error:"))
    assert "brokenimport-data 2.14.4 does not import in" in error
    assert error.endswith(f"import brokenimport_data failed: {ABI_BREAK}"), error
    hint = result.stderr.partition("hint: ")[2]
    words = " ".join(hint.split())
    assert "brokenimport-data 2.14.4 uses what brokenimport-arrow 26.0 no longer has" in words
    assert 'add brokenimport-arrow = "<26"' in words
    # the venv is left synced, exactly the lock: only importing tells it is broken
    assert cli("verify", "--venv", ".venv").code == 0


def test_following_the_hint_makes_the_sync_pass(broken_lock: Path, cli: Cli) -> None:
    assert cli("sync", "--venv", ".venv").code == ExitCode.IMPORT
    write_spec(broken_lock, packages='brokenimport-data = "*"\nbrokenimport-arrow = "<26"')
    assert cli("lock").code == 0
    result = cli("sync", "--venv", ".venv")
    assert result.code == 0, result.stderr
    assert "imports ok: brokenimport_arrow, brokenimport_data, torch, torchvision" in result.stderr


def test_a_no_op_sync_imports_nothing_once_the_check_passed(fixture_env: Path, cli: Cli) -> None:
    write_spec(fixture_env, packages='six = "*"')
    assert cli("lock").code == 0
    first = cli("sync", "--venv", ".venv")
    assert "imports ok: six, torch, torchvision" in first.stderr
    again = cli("sync", "--venv", ".venv")
    assert again.code == 0 and "already matches" in again.stderr
    assert "imports ok" not in again.stderr  # nothing was imported
    forced = cli("sync", "--venv", ".venv", "--check-imports")
    assert "already matches" in forced.stderr and "imports ok: six" in forced.stderr


def test_a_broken_venv_is_not_reported_as_matching_on_the_next_sync(
    broken_lock: Path, cli: Cli
) -> None:
    assert cli("sync", "--venv", ".venv").code == ExitCode.IMPORT
    again = cli("sync", "--venv", ".venv")
    assert_refused(again, ExitCode.IMPORT)
    assert ABI_BREAK in again.stderr


def test_no_check_imports_skips_the_check_and_the_next_sync_makes_up_for_it(
    broken_lock: Path, cli: Cli
) -> None:
    skipped = cli("sync", "--venv", ".venv", "--no-check-imports")
    assert skipped.code == 0, skipped.stderr
    assert "imports ok" not in skipped.stderr
    state = json.loads((broken_lock / ".venv" / MARKER_FILE).read_text())
    assert "imports" not in state
    assert cli("sync", "--venv", ".venv").code == ExitCode.IMPORT  # never checked: checked now


def test_verify_imports_reports_each_failure_as_a_finding(broken_lock: Path, cli: Cli) -> None:
    assert cli("sync", "--venv", ".venv", "--no-check-imports").code == 0
    assert cli("verify", "--venv", ".venv").code == 0
    result = cli("verify", "--venv", ".venv", "--imports")
    assert result.code == ExitCode.CHECK_FAILED, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("brokenimport-data"))
    assert row.split()[1:3] == ["import", "2.14.4"]
    assert row.endswith(f"import brokenimport_data failed: {ABI_BREAK}")
    assert "Traceback" not in result.stderr


def test_verify_imports_passes_on_a_venv_that_imports(fixture_env: Path, cli: Cli) -> None:
    write_spec(fixture_env, packages='six = "*"\nnumpy = "*"')
    assert cli("lock").code == 0
    assert cli("sync", "--venv", ".venv", "--no-check-imports").code == 0
    result = cli("verify", "--venv", ".venv", "--imports")
    assert result.code == 0, result.stdout + result.stderr
    assert "imports ok: numpy, six, torch, torchvision" in result.stderr


def test_a_lock_synced_without_its_spec_checks_the_torch_family_and_says_so(
    fixture_env: Path, cli: Cli
) -> None:
    write_spec(fixture_env, packages='six = "*"')
    assert cli("lock").code == 0
    alone = fixture_env / "alone"
    alone.mkdir()
    shutil.copy(fixture_env / "pylock.toml", alone / "pylock.toml")
    result = cli("sync", "--venv", ".venv", "--lock", str(alone / "pylock.toml"))
    assert result.code == 0, result.stderr
    assert "imports ok: torch, torchvision" in result.stderr
    assert "warning: no torchenv.toml beside pylock.toml" in result.stderr


def test_the_hint_names_what_to_add_for_a_module_the_lock_does_not_install(
    tmp_path: Path,
) -> None:
    failure = ImportFailure(
        name="wandb", module="wandb", error="ModuleNotFoundError: No module named 'pkg_resources'"
    )
    error = import_error(
        tmp_path / ".venv", tmp_path / "pylock.toml", [failure], {N("wandb"): "0.17.0"}
    )
    assert error.exit_code == ExitCode.IMPORT
    assert error.message.startswith("wandb 0.17.0 does not import in ")
    assert "add the package that provides pkg_resources to [packages]" in error.hint


def test_several_failures_are_each_listed_with_their_last_line(tmp_path: Path) -> None:
    failures = [
        ImportFailure(name="a-pkg", module="a_pkg", error="ImportError: libx.so: no such file"),
        ImportFailure(
            name="b-pkg", module="b_pkg", error="timed out after 120 s", where="b.py, line 2"
        ),
    ]
    error = import_error(tmp_path / ".venv", tmp_path / "pylock.toml", failures, {})
    assert error.message.startswith("2 packages torchenv.toml names do not import in ")
    assert error.detail.splitlines() == [
        "a-pkg: import a_pkg failed: ImportError: libx.so: no such file",
        "b-pkg: import b_pkg failed: timed out after 120 s (at b.py, line 2)",
    ]
    assert error.hint


def test_a_conda_prefix_gets_the_same_import_check(
    broken_lock: Path,
    cli: Cli,
    channel: Channel,  # noqa: F811 - the session fixture
) -> None:
    result = cli("sync", "--conda", "env", "--channel", str(channel.path))
    assert_refused(result, ExitCode.IMPORT)
    assert ABI_BREAK in result.stderr
    assert cli("verify", "--conda", "env").code == 0  # synced exactly as locked
    found = cli("verify", "--conda", "env", "--imports")
    assert found.code == ExitCode.CHECK_FAILED
    assert ABI_BREAK in found.stdout
