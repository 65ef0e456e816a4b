"""What torch says inside a venv, interpreted. Pure: the probe's JSON -> facts and reasons.

envlock.io.runtime_probe runs the probe (envlock/io/_torch_probe.py) in the venv's own
interpreter; this module reads what it printed into a :class:`TorchRuntime`, says *why* CUDA is
unavailable in words (:func:`why_unavailable`: a CPU build, no driver, a driver older than the
build needs, no device visible) and whether the build has kernels for a GPU
(:func:`has_kernels`, by envlock.host's one rule). envlock.venv_doctor turns that into
doctor's findings. The build-time counterpart for a Docker image, where there is no GPU, is
envlock.materialise.image_check (envlock-check.py's `smoke` step).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from packaging.specifiers import SpecifierSet

from envlock.channels import ArchRow, Channels, variant_named
from envlock.host import HostFacts, runs_on


class ProbeFailure(StrEnum):
    TIMED_OUT = "timed-out"
    CRASHED = "crashed"
    NO_RESULT = "no-result"


class Unavailable(StrEnum):
    """Why torch.cuda.is_available() is False."""

    CPU_BUILD = "cpu-build"
    NO_DRIVER = "no-driver"
    DRIVER_TOO_OLD = "driver-too-old"
    NO_DEVICE_VISIBLE = "no-device-visible"
    INIT_FAILED = "init-failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class Device:
    index: int
    name: str
    capability: tuple[int, int] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TorchRuntime:
    """What the probe saw in a venv (or why it saw nothing: ``failure``)."""

    python: str = ""  # "3.11.7"
    torch: str | None = None  # torch.__version__; None: it did not import
    import_error: str = ""  # the last traceback line of `import torch`
    cuda_build: str | None = None  # torch.version.cuda: "12.6"; None for a CPU/ROCm build
    hip_build: str | None = None
    available: bool | None = None  # torch.cuda.is_available()
    init_error: str = ""  # what torch.cuda.init() raised, on one line
    arch_list: tuple[str, ...] = ()  # torch.cuda.get_arch_list(): "sm_80", "compute_90"
    devices: tuple[Device, ...] = ()
    cudnn: int | None = None  # torch.backends.cudnn.version(): 90100
    env: Mapping[str, str] = field(default_factory=dict)  # CUDA_VISIBLE_DEVICES, … as set
    device_nodes: tuple[str, ...] = ()  # /dev/nvidia0, /dev/nvidiactl, …
    container: bool = False
    errors: Mapping[str, str] = field(default_factory=dict)  # what failed asking torch, by step
    failure: ProbeFailure | None = None
    detail: str = ""  # for a failure: the seconds waited, the signal, stderr's last line


def runtime_from_json(data: Mapping[str, Any]) -> TorchRuntime:
    """The probe's JSON object as a TorchRuntime; a malformed field reads as absent."""

    def text(key: str) -> str:
        value = data.get(key)
        return value if isinstance(value, str) else ""

    def optional(key: str) -> str | None:
        return text(key) or None

    def strings(key: str) -> tuple[str, ...]:
        value = data.get(key)
        return tuple(str(v) for v in value) if isinstance(value, list) else ()

    rows = data.get("devices")
    devices: list[Device] = []
    for row in rows if isinstance(rows, list) else ():
        if not isinstance(row, Mapping):
            continue
        cap = row.get("capability")
        pair = (
            (cap[0], cap[1])
            if isinstance(cap, list) and len(cap) == 2 and all(isinstance(c, int) for c in cap)
            else None
        )
        index = row.get("index")
        index = index if isinstance(index, int) else len(devices)
        devices.append(
            Device(index=index, name=str(row.get("name") or f"GPU {index}"), capability=pair)
        )
    env = data.get("env")
    errors = data.get("errors")
    cudnn = data.get("cudnn")
    available = data.get("available")
    return TorchRuntime(
        python=text("python"),
        torch=optional("torch"),
        import_error=text("import_error"),
        cuda_build=optional("cuda_build"),
        hip_build=optional("hip_build"),
        available=available if isinstance(available, bool) else None,
        init_error=text("init_error"),
        arch_list=strings("arch_list"),
        devices=tuple(devices),
        cudnn=cudnn if isinstance(cudnn, int) else None,
        env={str(k): str(v) for k, v in env.items()} if isinstance(env, Mapping) else {},
        device_nodes=strings("device_nodes"),
        container=data.get("container") is True,
        errors={str(k): str(v) for k, v in errors.items()} if isinstance(errors, Mapping) else {},
    )


def parse_probe_output(text: str) -> TorchRuntime | None:
    """The JSON object on the last line of ``text`` (None: there is none)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    try:
        data = json.loads(lines[-1])
    except ValueError:
        return None
    return runtime_from_json(data) if isinstance(data, dict) else None


# --------------------------------------------------------------------------------------
# why CUDA is unavailable

_TOO_OLD = re.compile(r"driver on your system is too old \(found version (\d+)\)", re.I)
_NO_DRIVER = re.compile(r"found no nvidia driver", re.I)
# c10's "No CUDA GPUs are available"; CUDA's own "no CUDA-capable device is detected"
_NO_GPU = re.compile(r"no cuda gpus are available|no cuda-capable device", re.I)
_INIT = re.compile(
    r"cuda driver initialization failed|cuda unknown error|unsupported display driver|"
    r"forward compatibility was attempted",
    re.I,
)
_GPU_ID = re.compile(r"^(\d+|GPU-[0-9a-fA-F-]+|MIG-\S+)$")


def driver_cuda_text(version: int) -> str:
    """cudaDriverGetVersion's number as CUDA's: 11040 -> "11.4"."""
    return f"{version // 1000}.{version % 1000 // 10}"


def _hidden_by(env: Mapping[str, str]) -> str | None:
    """The variable (and its value) that hides every GPU from CUDA, if one does.

    CUDA reads CUDA_VISIBLE_DEVICES up to its first entry that is not a GPU index or UUID: "",
    "-1" or "none" hide every device. NVIDIA_VISIBLE_DEVICES=void/none mounted none into the
    container."""
    if "CUDA_VISIBLE_DEVICES" in env:
        value = env["CUDA_VISIBLE_DEVICES"]
        if not _GPU_ID.match(value.split(",")[0].strip()):
            return f'CUDA_VISIBLE_DEVICES="{value}"'
    nvidia = env.get("NVIDIA_VISIBLE_DEVICES")
    if nvidia is not None and nvidia.strip().lower() in ("", "void", "none"):
        return f'NVIDIA_VISIBLE_DEVICES="{nvidia}"'
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Reason:
    kind: Unavailable
    words: str  # "no device visible: CUDA_VISIBLE_DEVICES="" hides every GPU"
    fix: str


def _floor_text(channels: Channels, build: str, host: HostFacts) -> str:
    major = build.split(".", maxsplit=1)[0]
    floor = channels.driver_floor(int(major)) if major.isdigit() else None
    if floor is None:
        return "a newer NVIDIA driver"
    needed = floor.windows if host.os == "windows" else floor.linux
    return f"NVIDIA driver >= {needed} (CUDA {major}.x builds)"


def why_unavailable(rt: TorchRuntime, host: HostFacts, channels: Channels) -> Reason:
    """Why CUDA is unavailable in ``rt``, in words, from what torch.cuda.init() raised, the
    visibility variables, the /dev/nvidia* nodes and the host's driver."""
    build = rt.cuda_build
    if build is None:
        return Reason(
            kind=Unavailable.CPU_BUILD,
            words=f"torch {rt.torch} is a CPU build: it has no CUDA (torch.version.cuda is None)",
            fix='Lock a CUDA build (e.g. cuda = "12.6" in torchenv.toml), then `envlock lock` '
            "and `envlock sync`.",
        )
    message = rt.init_error
    no_driver, no_gpu = bool(_NO_DRIVER.search(message)), bool(_NO_GPU.search(message))
    if match := _TOO_OLD.search(message):
        found = driver_cuda_text(int(match.group(1)))
        driver = f" {host.nvidia_driver}" if host.nvidia_driver else ""
        return Reason(
            kind=Unavailable.DRIVER_TOO_OLD,
            words=f"the NVIDIA driver{driver} is older than the build needs: it supports CUDA "
            f"{found}, torch was built with CUDA {build}",
            fix=f"Upgrade to {_floor_text(channels, build, host)}, or lock a build for CUDA "
            f"{found} or older.",
        )
    if (no_driver or no_gpu) and (hidden := _hidden_by(rt.env)) is not None:
        name = hidden.partition("=")[0]
        docker = "; for a container, start it with `docker run --gpus all`"
        return Reason(
            kind=Unavailable.NO_DEVICE_VISIBLE,
            words=f"no device visible: {hidden} hides every GPU",
            fix=f"Unset {name}, or set it to the GPUs to use (e.g. {name}=0)"
            + (docker if name.startswith("NVIDIA") else "")
            + ".",
        )
    if no_gpu and (asked := rt.env.get("CUDA_VISIBLE_DEVICES")) is not None:
        return Reason(
            kind=Unavailable.NO_DEVICE_VISIBLE,
            words=f'no device visible: CUDA_VISIBLE_DEVICES="{asked}" names no GPU this host has',
            fix="Set CUDA_VISIBLE_DEVICES to indices `nvidia-smi -L` lists, or unset it.",
        )
    nodes = any(n in ("/dev/nvidiactl", "/dev/nvidia0") for n in rt.device_nodes)
    if (no_driver or no_gpu) and not nodes and rt.container:
        return Reason(
            kind=Unavailable.NO_DEVICE_VISIBLE,
            words="no device visible: this container has no /dev/nvidia* device nodes (run "
            "without --gpus?)",
            fix="Start the container with the GPUs: `docker run --gpus all` (NVIDIA Container "
            "Toolkit), or request nvidia.com/gpu in Kubernetes.",
        )
    no_nodes = "" if nodes else "; there are no /dev/nvidia* device nodes either"
    if no_driver:
        loaded = (
            f"the NVIDIA kernel driver {host.nvidia_driver} is loaded, but "
            if host.nvidia_driver
            else ""
        )
        return Reason(
            kind=Unavailable.NO_DRIVER,
            words=f"no NVIDIA driver: {loaded}torch finds no libcuda.so.1 (the driver's "
            "user-space library)" + (no_nodes if host.nvidia_driver else ""),
            fix=f"Install {_floor_text(channels, build, host)} (its user-space libraries too); "
            "on a CPU-only host nothing is wrong: torch runs on the CPU.",
        )
    if no_gpu:
        return Reason(
            kind=Unavailable.NO_DEVICE_VISIBLE,
            words="no device visible: the driver is loaded but CUDA finds no GPU" + no_nodes,
            fix="Check `nvidia-smi -L` and the permissions of /dev/nvidia*; load the modules "
            "(`sudo modprobe nvidia nvidia_uvm`) or reboot after a driver install.",
        )
    if _INIT.search(message):
        return Reason(
            kind=Unavailable.INIT_FAILED,
            words="CUDA failed to initialise",
            fix="Check `nvidia-smi`; after a driver upgrade, reboot (the kernel module and "
            "libcuda must be the same version), and load nvidia_uvm (`sudo modprobe nvidia_uvm`).",
        )
    said = "" if message else " and torch.cuda.init() said nothing"
    if not message and rt.errors:
        said = f": asking torch failed ({', '.join(rt.errors)})"
    return Reason(
        kind=Unavailable.UNKNOWN,
        words="CUDA is unavailable" + said,
        fix="Run `python -c 'import torch; torch.cuda.init()'` in the venv to see torch's error.",
    )


# --------------------------------------------------------------------------------------
# the build's architectures against each GPU

_ARCH = re.compile(r"^(sm|compute)_(\d+)([a-z]?)$")


def _arch_row(rt: TorchRuntime) -> tuple[ArchRow, frozenset[tuple[int, int]]] | None:
    """The probe's arch list as the channel data's ArchRow (so envlock.host.runs_on, the one
    rule for "has kernels", judges it), and the arch-specific (sm_90a) capabilities apart."""
    build = rt.cuda_build or ""
    variant = variant_named("cu" + build.replace(".", "")) if build.count(".") == 1 else None
    if variant is None or not rt.arch_list:
        return None
    generic: set[str] = set()
    exact: set[tuple[int, int]] = set()
    ptx = False
    for entry in rt.arch_list:
        match = _ARCH.match(entry)
        if match is None:
            continue
        digits = match.group(2)
        cc = (int(digits[:-1] or "0"), int(digits[-1]))
        if match.group(3):
            exact.add(cc)  # sm_90a: only the very architecture it names
            continue
        generic.add(f"{cc[0]}.{cc[1]}")
        ptx = ptx or match.group(1) == "compute"
    row = ArchRow(
        torch=SpecifierSet(),
        variant=variant,
        sm=tuple(sorted(generic, key=lambda s: tuple(int(p) for p in s.split(".")))),
        ptx=ptx,
        source="torch.cuda.get_arch_list()",
    )
    return row, frozenset(exact)


def has_kernels(rt: TorchRuntime, channels: Channels, cc: tuple[int, int]) -> bool | None:
    """Whether the build in ``rt`` has kernels for compute capability ``cc`` (None: it lists
    no architectures)."""
    parsed = _arch_row(rt)
    if parsed is None:
        return None
    row, exact = parsed
    return cc in exact or (bool(row.sm) and runs_on(row, channels, cc))


def judges_arches(rt: TorchRuntime) -> bool:
    """Whether torch itself saw the GPUs and its arch list (then that verdict is the truth)."""
    return bool(
        rt.failure is None
        and rt.available
        and rt.arch_list
        and any(d.capability for d in rt.devices)
    )


def unavailable_reason(rt: TorchRuntime, host: HostFacts, channels: Channels) -> Reason | None:
    """Why CUDA is unavailable, or None when it is available (or torch did not import)."""
    if rt.failure is not None or rt.torch is None or rt.available:
        return None
    if rt.cuda_build is None and rt.hip_build is not None:
        return None
    return why_unavailable(rt, host, channels)


def cudnn_text(version: int) -> str:
    """torch.backends.cudnn.version() as cuDNN's: 90100 -> "9.1.0", 8902 -> "8.9.2"."""
    if version >= 90000:  # cuDNN 9: major * 10000 + minor * 100 + patch
        return f"{version // 10000}.{version // 100 % 100}.{version % 100}"
    return f"{version // 1000}.{version // 100 % 10}.{version % 100}"


def runtime_json(rt: TorchRuntime, reason: Reason | None) -> dict[str, Any]:
    """What the probe saw, as `envlock doctor --venv --json` shows it."""
    return {
        "python": rt.python or None,
        "torch": rt.torch,
        "import-error": rt.import_error or None,
        "cuda-build": rt.cuda_build,
        "cuda-available": rt.available,
        "why-unavailable": reason.kind.value if reason else None,
        "cuda-init-error": rt.init_error or None,
        "arch-list": list(rt.arch_list),
        "devices": [
            {
                "index": d.index,
                "name": d.name,
                "compute-capability": f"{d.capability[0]}.{d.capability[1]}"
                if d.capability
                else None,
            }
            for d in rt.devices
        ],
        "cudnn": cudnn_text(rt.cudnn) if rt.cudnn else None,
        "environment": dict(rt.env),
        "device-nodes": list(rt.device_nodes),
        "container": rt.container,
        "probe-errors": dict(rt.errors),
        "probe-failure": rt.failure.value if rt.failure else None,
    }
