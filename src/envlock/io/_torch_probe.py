"""envlock's torch probe, run by a venv's own interpreter: ``python -I _torch_probe.py [ROOT]``.

A standalone program: the standard library and torch only, any CPython 3.8+ (so no envlock
import, no 3.10+ syntax at run time). It asks torch what a user's program would see: its
version and CUDA build, whether CUDA is available and, when it is not, the error
``torch.cuda.init()`` raises (the words that say why), the architectures the build ships, each
visible GPU's compute capability and the cuDNN version; and, under ROOT (default /), the
/dev/nvidia* device nodes and whether this is a container. It never raises: every failure
becomes a field. torch may print anything on stdout while it loads, so the result is the JSON
object after the last delimiter line (envlock.io.runtime_probe reads it; envlock.runtime
judges it).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

DELIMITER = "--envlock-torch-probe--"
SCHEMA = 1
# What decides which GPUs a process sees: CUDA's own, and the NVIDIA container runtime's
# (set when the container was created; "void"/"none" means no device was mounted).
VISIBILITY = ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "PYTORCH_NVML_BASED_CUDA_CHECK")
# Docker's and Podman's marker files; a Kubernetes pod has its service variables instead.
CONTAINER_MARKERS = (".dockerenv", "run/.containerenv")


def _one_line(exc: BaseException) -> str:
    """The last line of the traceback ("ImportError: libcudnn.so.9: cannot open …")."""
    lines = traceback.format_exception_only(type(exc), exc)
    return " ".join(lines[-1].split()) if lines else type(exc).__name__


def _message(exc: BaseException) -> str:
    """The exception's words on one line (torch's older messages span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _host_side(report: dict[str, Any], root: Path) -> None:
    try:
        dev = root / "dev"
        names = [p.name for p in dev.iterdir()] if dev.is_dir() else []
        report["device_nodes"] = sorted("/dev/" + n for n in names if n.startswith("nvidia"))
        report["container"] = "KUBERNETES_SERVICE_HOST" in os.environ or any(
            (root / m).exists() for m in CONTAINER_MARKERS
        )
    except OSError as exc:
        report["errors"]["host"] = _one_line(exc)


def _cuda(report: dict[str, Any], torch: Any) -> None:
    cuda = torch.cuda
    try:
        report["available"] = bool(cuda.is_available())
    except Exception as exc:  # every failure becomes a field
        report["errors"]["available"] = _one_line(exc)
    try:
        cuda.init()  # raises torch's own reason when CUDA cannot start
    except Exception as exc:
        report["init_error"] = _message(exc)
    try:
        report["device_count"] = int(cuda.device_count())
    except Exception as exc:
        report["errors"]["device_count"] = _one_line(exc)
    try:
        arches = list(cuda.get_arch_list()) if report["available"] else []
        flags = getattr(torch._C, "_cuda_getArchFlags", None)  # compiled in: no GPU needed
        if not arches and flags is not None:
            arches = str(flags() or "").split()
        report["arch_list"] = [str(a) for a in arches]
    except Exception as exc:
        report["errors"]["arch_list"] = _one_line(exc)
    count = (report["device_count"] or 0) if report["available"] else 0
    for index in range(count):
        device: dict[str, Any] = {"index": index, "name": None, "capability": None}
        try:
            device["name"] = str(cuda.get_device_name(index))
            major, minor = cuda.get_device_capability(index)
            device["capability"] = [int(major), int(minor)]
        except Exception as exc:
            device["error"] = _one_line(exc)
        report["devices"].append(device)


def _torch(report: dict[str, Any]) -> None:
    try:
        torch = importlib.import_module("torch")
    except BaseException as exc:  # SystemExit too: a torch that exits on import
        if isinstance(exc, KeyboardInterrupt):
            raise
        report["import_error"] = _one_line(exc)
        return
    report["torch"] = str(getattr(torch, "__version__", "") or "") or None
    report["torch_file"] = str(getattr(torch, "__file__", "") or "") or None
    version = getattr(torch, "version", None)
    report["cuda_build"] = getattr(version, "cuda", None)
    report["hip_build"] = getattr(version, "hip", None)
    report["compiled_with_cuda"] = hasattr(getattr(torch, "_C", None), "_cuda_getDeviceCount")
    try:
        _cuda(report, torch)
    except Exception as exc:  # torch.cuda itself missing or broken
        report["errors"]["cuda"] = _one_line(exc)
    try:
        cudnn = torch.backends.cudnn.version()
        report["cudnn"] = int(cudnn) if cudnn is not None else None
    except Exception as exc:
        report["errors"]["cudnn"] = _one_line(exc)


def probe(root: str = "/") -> dict[str, Any]:
    """Everything the probe learns, as a JSON-ready dict; never raises."""
    report: dict[str, Any] = {
        "probe": SCHEMA,
        "python": "%d.%d.%d" % sys.version_info[:3],  # noqa: UP031 - any Python 3
        "executable": sys.executable,
        "torch": None,
        "torch_file": None,
        "import_error": None,
        "cuda_build": None,
        "hip_build": None,
        "compiled_with_cuda": None,
        "available": None,
        "init_error": None,
        "device_count": None,
        "arch_list": [],
        "devices": [],
        "cudnn": None,
        "env": {k: os.environ[k] for k in VISIBILITY if k in os.environ},
        "device_nodes": [],
        "container": False,
        "errors": {},
    }
    _host_side(report, Path(root))
    _torch(report)
    return report


def main() -> None:
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # whatever torch prints while loading stays out of the result
    try:
        report = probe(sys.argv[1] if len(sys.argv) > 1 else "/")
    except Exception as exc:  # a bug here is a result too
        report = {"probe": SCHEMA, "errors": {"probe": _one_line(exc)}}
    finally:
        sys.stdout = real_stdout
    real_stdout.write("\n" + DELIMITER + "\n" + json.dumps(report, default=str) + "\n")
    real_stdout.flush()


if __name__ == "__main__":
    main()
