"""Run envlock's torch probe (envlock/io/_torch_probe.py) in a venv's own interpreter.

Through io/proc with a timeout, so a wedged driver makes a finding, not a hang. The probe sees
the environment a user's program would for GPUs (CUDA_VISIBLE_DEVICES, NVIDIA_*, LD_LIBRARY_PATH,
…), which proc.clean_environment would otherwise drop; envlock.runtime reads its answer.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from pathlib import Path

from envlock.errors import InternalError
from envlock.io import proc
from envlock.io._torch_probe import DELIMITER
from envlock.runtime import ProbeFailure, TorchRuntime, parse_probe_output

PROBE = Path(__file__).with_name("_torch_probe.py")
# Importing a CUDA torch reads ~2 GB of libraries; on a cold network file system that is slow.
PROBE_TIMEOUT = 120.0
# What decides which GPUs and which CUDA libraries a process gets, passed through as set.
_RUNTIME_PREFIXES = ("CUDA_", "NVIDIA_", "PYTORCH_", "TORCH_", "HIP_", "ROCR_")
_RUNTIME_NAMES = frozenset({"LD_LIBRARY_PATH", "LD_PRELOAD", "KUBERNETES_SERVICE_HOST"})


def probe_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """proc's clean environment plus the variables that decide what CUDA sees."""
    runtime = {
        k: v for k, v in environ.items() if k.startswith(_RUNTIME_PREFIXES) or k in _RUNTIME_NAMES
    }
    return proc.clean_environment(environ, extra=runtime)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def probe_python(
    python: Path,
    *,
    environ: Mapping[str, str] | None = None,
    root: Path = Path("/"),
    timeout: float = PROBE_TIMEOUT,
) -> TorchRuntime:
    """What torch reports inside the interpreter ``python`` (a venv's), or why nothing came
    back (``failure``: timed out, crashed, printed no result). ``root`` is where the probe looks
    for /dev/nvidia* and container markers (tests point it at a directory)."""
    env = probe_environment(os.environ if environ is None else environ)
    # told apart from proc's other errors by identity below; becomes a finding, never shown
    timed_out = InternalError("the torch probe timed out", hint="Nothing was changed.")
    try:
        result = proc.run(
            [python, "-I", PROBE, root],
            env=env,
            timeout=timeout,
            timeout_error=timed_out,
        )
    except InternalError as exc:
        if exc is not timed_out:
            raise
        return TorchRuntime(failure=ProbeFailure.TIMED_OUT, detail=f"{timeout:g}")
    _, found, answer = result.stdout.rpartition(DELIMITER)
    runtime = parse_probe_output(answer) if found else None
    if runtime is not None:
        return runtime
    said = _last_line(result.stderr)
    if result.returncode < 0:
        try:
            name = signal.Signals(-result.returncode).name
        except ValueError:
            name = "a signal"
        detail = f"killed by {name}" + (f": {said}" if said else "")
        return TorchRuntime(failure=ProbeFailure.CRASHED, detail=detail)
    return TorchRuntime(
        failure=ProbeFailure.NO_RESULT, detail=f"exit {result.returncode}: {said or 'no output'}"
    )
