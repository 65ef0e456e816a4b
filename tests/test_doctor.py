"""envlock doctor: a table of real-world hosts, probed through a fake nvidia-smi and /proc."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from packaging.pylock import Pylock

from envlock import api
from envlock.doctor import Level
from envlock.errors import MaterialiseError
from envlock.host import HostFacts
from envlock.io.probe import probe_host
from envlock.lockfile import LockMeta, lock_meta, parse_lock_text, render_lock
from tests.conftest import Cli
from tests.test_lock_e2e import write_spec

SYSTEM = HostFacts(os="linux", machine="x86_64", glibc="2.35", python="3.11")


def _lock(
    torch: str,
    variant: str,
    *,
    tag: str = "manylinux_2_28_x86_64",
    recorded: str | None = None,
    url: str | None = None,
    packages: list[dict[str, Any]] | None = None,
) -> str:
    """A one-package lock of torch ``torch``+``variant`` from download.pytorch.org.

    ``recorded``: the variant [tool.envlock] says (default: the same); ``url``: the wheel's URL
    instead, ``torch`` then being the locked version as is; ``packages``: instead of torch."""
    series = ".".join(torch.split(".")[:2])
    meta = LockMeta(
        spec_digest="sha256:" + "0" * 64,
        envlock_version="0.1.0",
        python="3.11",
        platforms=("linux-x86_64",),
        torch=series,
        variant=recorded or variant,
        variant_index=None,
        pypi_index="https://pypi.org/simple",
        torch_source={"linux-x86_64": "pytorch-index"},
    )
    # With a URL of the caller's, ``torch`` is the version exactly as locked (label or none).
    version = torch if url is not None else f"{torch}+{variant}"
    url = url or (
        f"https://download.pytorch.org/whl/{variant}/torch-{torch}%2B{variant}-cp311-cp311-{tag}.whl"
    )
    torch_entry = {
        "name": "torch",
        "version": version,
        "wheels": [{"url": url, "hashes": {"sha256": "a" * 64}}],
    }
    lock = Pylock.from_dict(
        {
            "lock-version": "1.0",
            "created-by": "envlock",
            "requires-python": "==3.11.*",
            "packages": [torch_entry] if packages is None else packages,
            "tool": {"envlock": meta.to_tool()},
        }
    )
    return render_lock(lock)


def _smi(tmp_path: Path, gpu: str, cc: str, driver: str) -> Path:
    script = tmp_path / "nvidia-smi"
    script.write_text(f'#!/bin/sh\necho "{gpu}, {cc}, {driver}"\n')
    script.chmod(0o755)
    return script


def _host(
    tmp_path: Path, *, driver: str | None, gpu: str = "", cc: str = "", via_proc: bool = False
) -> HostFacts:
    env: dict[str, Any] = {"PATH": ""}
    if driver is not None and gpu:
        env["ENVLOCK_NVIDIA_SMI"] = str(_smi(tmp_path, gpu, cc, driver))
    if via_proc and driver is not None:
        proc = tmp_path / "root/proc/driver/nvidia"
        proc.mkdir(parents=True)
        (proc / "version").write_text(
            f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {driver}  Tue\n"
        )
    return probe_host(env, root=tmp_path / "root", system=SYSTEM)


def _verdict(tmp_path: Path, lock_text: str, host: HostFacts) -> api.DoctorReport:
    path = tmp_path / "pylock.toml"
    path.write_text(lock_text)
    return api.doctor(path, host=host)


def _parsed(lock_text: str) -> tuple[Pylock, LockMeta]:
    lock = parse_lock_text(lock_text)
    meta = lock_meta(lock)
    assert meta is not None
    return lock, meta


def _errors(report: api.DoctorReport) -> list[str]:
    return [f"{f.what} | {f.fix}" for f in report.findings if f.level is Level.ERROR]


# (driver, GPU, compute capability, locked torch, variant, expected error fragments)
HOSTS = [
    (
        "470.256.02",
        "Tesla V100-SXM2-16GB",
        "7.0",
        "2.6.0",
        "cu124",
        ["driver 470.256.02 is too old for cu124", 'cuda = "11.8" (cu118)'],
    ),
    ("535.104.05", "NVIDIA A100-SXM4-80GB", "8.0", "2.6.0", "cu124", []),
    ("550.54.14", "NVIDIA GeForce RTX 4090", "8.9", "2.6.0", "cu124", []),
    (
        "570.124.06",
        "NVIDIA GeForce RTX 5090",
        "12.0",
        "2.6.0",
        "cu126",
        ["RTX 5090 (sm_120) has no kernels in torch 2.6.0 cu126", "No torch 2.6.0 CUDA build"],
    ),
    ("570.124.06", "NVIDIA GeForce RTX 5090", "12.0", "2.8.0", "cu128", []),
    (
        "570.124.06",
        "NVIDIA GeForce RTX 5090",
        "12.0",
        "2.14.0",
        "cu130",
        ["driver 570.124.06 is too old for cu130", 'cuda = "12.6" (cu126)'],
    ),
    ("580.65.06", "NVIDIA H100 80GB HBM3", "9.0", "2.14.0", "cu130", []),
    (
        "580.65.06",
        "NVIDIA GeForce GTX 1080",
        "6.1",
        "2.14.0",
        "cu130",
        ["GTX 1080 (sm_61) has no kernels in torch 2.14.0 cu130", 'cuda = "12.6" (cu126)'],
    ),
    (
        "580.65.06",
        "NVIDIA GeForce GTX 1080",
        "6.1",
        "2.8.0",
        "cu128",
        ["GTX 1080 (sm_61) has no kernels in torch 2.8.0 cu128", "(cu126)"],
    ),
]


@pytest.mark.parametrize(
    ("driver", "gpu", "cc", "torch", "variant", "expected"),
    HOSTS,
    ids=[f"{h[0]}-{h[1].split()[-1]}-{h[4]}" for h in HOSTS],
)
def test_real_world_hosts(
    tmp_path: Path, driver: str, gpu: str, cc: str, torch: str, variant: str, expected: list[str]
) -> None:
    report = _verdict(
        tmp_path, _lock(torch, variant), _host(tmp_path, driver=driver, gpu=gpu, cc=cc)
    )
    errors = _errors(report)
    assert report.ok is (not expected), errors
    joined = "\n".join(errors)
    for fragment in expected:
        assert fragment in joined


def test_driver_from_proc_without_nvidia_smi(tmp_path: Path) -> None:
    host = _host(tmp_path, driver="470.256.02", via_proc=True)
    assert host.driver_source == "/proc/driver/nvidia/version"
    report = _verdict(tmp_path, _lock("2.6.0", "cu124"), host)
    assert not report.ok


def test_no_driver_is_a_warning_not_an_error(tmp_path: Path) -> None:
    report = _verdict(tmp_path, _lock("2.14.0", "cu130"), _host(tmp_path, driver=None))
    assert report.ok
    warning = next(f for f in report.findings if f.level is Level.WARNING)
    assert "CPU only" in warning.what


def test_failing_nvidia_smi_is_a_warning(tmp_path: Path) -> None:
    smi = tmp_path / "nvidia-smi"
    smi.write_text(
        "#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not communicate "
        "with the NVIDIA driver.' >&2\nexit 9\n"
    )
    smi.chmod(0o755)
    host = probe_host({"PATH": "", "ENVLOCK_NVIDIA_SMI": str(smi)}, root=tmp_path, system=SYSTEM)
    report = _verdict(tmp_path, _lock("2.14.0", "cu130"), host)
    assert report.ok
    warning = next(f for f in report.findings if f.level is Level.WARNING)
    assert "nvidia-smi is installed but failed" in warning.what
    assert "could not communicate" in warning.why


def test_old_glibc_is_an_error(tmp_path: Path) -> None:
    host = HostFacts(os="linux", machine="x86_64", glibc="2.17", python="3.11")
    errors = _errors(_verdict(tmp_path, _lock("2.14.0", "cpu"), host))
    assert any("glibc 2.17 is older than the locked torch wheel needs (2.28)" in e for e in errors)


def test_uncovered_platform_and_python(tmp_path: Path) -> None:
    host = HostFacts(os="linux", machine="aarch64", glibc="2.35", python="3.12")
    errors = _errors(_verdict(tmp_path, _lock("2.14.0", "cu130"), host))
    assert any("does not cover this host's platform linux-aarch64" in e for e in errors)
    assert any("no Python 3.11 on this host" in e and "runs on 3.12" in e for e in errors)


def test_cpu_lock_needs_no_driver(tmp_path: Path) -> None:
    report = _verdict(tmp_path, _lock("2.6.0", "cpu"), _host(tmp_path, driver=None))
    assert report.ok
    assert [f.level for f in report.findings] == [Level.OK] * len(report.findings)
    assert any("needs no NVIDIA driver" in f.what for f in report.findings)


def test_doctor_cli_exit_codes_and_json(
    isolated_env: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (isolated_env / "pylock.toml").write_text(_lock("2.14.0", "cu130"))
    monkeypatch.setenv(
        "ENVLOCK_NVIDIA_SMI", str(_smi(tmp_path, "NVIDIA GeForce GTX 1080", "6.1", "580.65.06"))
    )
    result = cli("doctor", "--json")
    assert result.code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert data["host"]["gpus"] == [
        {"name": "NVIDIA GeForce GTX 1080", "compute-capability": "6.1"}
    ]
    assert data["findings"][0]["level"] == "error"
    text = cli("doctor")
    assert text.code == 1
    assert "error: NVIDIA GeForce GTX 1080 (sm_61)" in text.stdout
    assert "fix:" in text.stdout


def test_doctor_without_lock(isolated_env: Path, cli: Cli) -> None:
    result = cli("doctor")
    assert result.code == 7
    assert "envlock lock" in result.stderr


# --------------------------------------------------------------------------------------
# the build is read from the locked torch artifact, not from [tool.envlock]

X86 = "manylinux_2_28_x86_64"
PYPI_TORCH = (
    "https://files.pythonhosted.org/packages/aa/bb/torch-2.6.0-cp311-cp311-manylinux1_x86_64.whl"
)


def test_record_saying_cpu_over_a_cuda_torch_is_an_error(tmp_path: Path) -> None:
    report = _verdict(
        tmp_path, _lock("2.6.0", "cu126", recorded="cpu"), _host(tmp_path, driver=None)
    )
    assert not report.ok
    assert any(
        "the lock's [tool.envlock] says cpu but torch is 2.6.0+cu126: edited by hand?" in e
        for e in _errors(report)
    )


def test_driver_is_judged_for_the_locked_torch_not_the_record(tmp_path: Path) -> None:
    host = _host(tmp_path, driver="470.256.02", gpu="Tesla V100-SXM2-16GB", cc="7.0")
    errors = _errors(_verdict(tmp_path, _lock("2.6.0", "cu126", recorded="cpu"), host))
    assert any("driver 470.256.02 is too old for cu126" in e for e in errors)


def test_record_saying_cuda_over_a_cpu_torch_is_an_error_not_a_driver_check(
    tmp_path: Path,
) -> None:
    host = _host(tmp_path, driver="470.256.02", gpu="Tesla V100-SXM2-16GB", cc="7.0")
    errors = _errors(_verdict(tmp_path, _lock("2.6.0", "cpu", recorded="cu126"), host))
    assert errors == [
        "the lock's [tool.envlock] says cu126 but torch is 2.6.0+cpu: edited by hand? | "
        "Re-create the lock with `envlock lock --upgrade`, or restore it from git."
    ]


def test_pypi_torch_without_label_is_pypis_own_build(tmp_path: Path) -> None:
    lock = _lock("2.6.0", "cu124", url=PYPI_TORCH)
    host = _host(tmp_path, driver="470.256.02", gpu="Tesla V100-SXM2-16GB", cc="7.0")
    errors = _errors(_verdict(tmp_path, lock, host))
    assert len(errors) == 1
    assert "driver 470.256.02 is too old for cu124" in errors[0]


def test_pypi_torch_under_a_cpu_record_is_an_error(tmp_path: Path) -> None:
    lock = _lock("2.6.0", "cu124", recorded="cpu", url=PYPI_TORCH)
    errors = _errors(_verdict(tmp_path, lock, _host(tmp_path, driver=None)))
    assert any("says cpu but torch is 2.6.0 from PyPI (cu124 on linux-x86_64)" in e for e in errors)


def test_lock_without_torch_is_a_note_not_a_failure(tmp_path: Path) -> None:
    six = {
        "name": "six",
        "version": "1.17.0",
        "wheels": [
            {
                "url": "https://files.pythonhosted.org/packages/aa/six-1.17.0-py2.py3-none-any.whl",
                "hashes": {"sha256": "b" * 64},
            }
        ],
    }
    report = _verdict(
        tmp_path, _lock("2.6.0", "cu126", packages=[six]), _host(tmp_path, driver=None)
    )
    assert report.ok
    assert any(
        f.level is Level.NOTE and "no torch" in f.what and "linux-x86_64" in f.what
        for f in report.findings
    )


def test_doctor_cli_exits_1_on_a_hand_edited_record(
    isolated_env: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (isolated_env / "pylock.toml").write_text(_lock("2.6.0", "cu126", recorded="cpu"))
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(tmp_path / "no-nvidia-smi"))
    result = cli("doctor")
    assert result.code == 1
    assert "error: the lock's [tool.envlock] says cpu but torch is 2.6.0+cu126" in result.stdout


def test_preflight_stops_on_a_hand_edited_record() -> None:
    lock_text = _lock("2.6.0", "cu126", recorded="cpu")
    lock, meta = _parsed(lock_text)
    with pytest.raises(MaterialiseError) as info:
        api._preflight(lock, meta, SYSTEM)
    assert "[tool.envlock] says cpu but torch is 2.6.0+cu126" in info.value.message
    assert "--no-host-check" in info.value.hint


def test_sync_refuses_a_hand_edited_record_unless_no_host_check(
    fixture_env: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(tmp_path / "no-nvidia-smi"))
    write_spec(fixture_env, cuda="12.6")
    assert cli("lock").code == 0
    lock = fixture_env / "pylock.toml"
    lock.write_text(lock.read_text().replace('variant = "cu126"', 'variant = "cpu"'))
    result = cli("sync", "--venv", ".venv")
    assert result.code == 7, result.stderr
    assert "[tool.envlock] says cpu but torch is 2.6.0+cu126" in result.stderr
    assert not (fixture_env / ".venv").exists()
    assert cli("sync", "--venv", ".venv", "--no-host-check").code == 0


def test_torch_entry_contradicting_itself_is_an_error(tmp_path: Path) -> None:
    url = f"https://download.pytorch.org/whl/cu124/torch-2.6.0%2Bcu126-cp311-cp311-{X86}.whl"
    lock = _lock("2.6.0+cu126", "cu126", url=url)
    errors = _errors(_verdict(tmp_path, lock, _host(tmp_path, driver=None)))
    assert any(
        "torch entry contradicts itself: version 2.6.0+cu126 says cu126, "
        "wheel URL folder /cu124/ says cu124" in e
        for e in errors
    )


def test_record_naming_another_torch_release_is_an_error(tmp_path: Path) -> None:
    lock = _lock("2.6.0", "cu126").replace('torch = "2.6"', 'torch = "2.8"')
    errors = _errors(_verdict(tmp_path, lock, _host(tmp_path, driver=None)))
    assert any("[tool.envlock] says torch 2.8 but torch is 2.6.0+cu126" in e for e in errors)


def test_record_naming_no_variant_is_an_error_not_a_crash(tmp_path: Path) -> None:
    lock = _lock("2.6.0", "cu126", recorded="cuda12")
    errors = _errors(_verdict(tmp_path, lock, _host(tmp_path, driver=None)))
    assert any("[tool.envlock] says cuda12 but torch is 2.6.0+cu126" in e for e in errors)
