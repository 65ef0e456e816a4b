"""Benchmark `envlock lock` against a plain `uv lock` (and optionally pip-compile).

Not a test: these machines are shared and noisy, so the figures are medians of runs that
alternate the tools inside one process, reported as ratios. Needs network access to PyPI.

    python bench/bench_lock.py                # 5 rounds, cold and warm cache
    python bench/bench_lock.py --rounds 3 --pip-compile   # also time pip-compile once (slow)

The stack: torch 2.14 (PyPI's own cu130 build) + torchvision + transformers + datasets for
linux-x86_64 / CPython 3.11, the same inputs for every tool.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from uv import find_uv_bin

from _installed import as_installed

SPEC = """\
[env]
python = "3.11"
platforms = ["linux-x86_64"]

[torch]
version = "2.14"
cuda = "13.0"
vision = true

[packages]
transformers = ">=4.40,<6"
datasets = "*"
"""

PYPROJECT = """\
[project]
name = "bench"
version = "0"
requires-python = "==3.11.*"
dependencies = ["torch==2.14.*", "torchvision==0.29.*", "transformers>=4.40,<6", "datasets"]

[tool.uv]
package = false
environments = ["sys_platform == 'linux' and platform_machine == 'x86_64'"]
required-environments = ["sys_platform == 'linux' and platform_machine == 'x86_64'"]
"""

REQUIREMENTS_IN = "torch==2.14.*\ntorchvision==0.29.*\ntransformers>=4.40,<6\ndatasets\n"


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_", "ENVLOCK_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env.update(extra)
    return env


def _timed(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{result.stderr}")
    return elapsed


def _envlock() -> list[str]:
    return [sys.executable, "-m", "envlock"]


def run_envlock_lock(work: Path, cache: Path) -> float:
    (work / "pylock.toml").unlink(missing_ok=True)
    return _timed([*_envlock(), "lock"], work, _clean_env(ENVLOCK_CACHE_DIR=str(cache)))


def run_uv_lock(work: Path, cache: Path) -> float:
    (work / "uv.lock").unlink(missing_ok=True)
    args = [find_uv_bin(), "lock", "--no-config", "--cache-dir", str(cache / "uv")]
    return _timed(args, work, _clean_env())


def _alternate(rounds: int, runners: dict[str, Callable[[int], float]]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in runners}
    for i in range(rounds):
        order = list(runners) if i % 2 == 0 else list(reversed(runners))
        for name in order:
            times[name].append(runners[name](i))
    return times


def main() -> None:
    as_installed()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pip-compile", action="store_true", help="also time pip-compile once")
    parser.add_argument("--json", type=Path, help="write raw figures here")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="envlock-bench-"))
    envlock_dir = root / "envlock"
    uv_dir = root / "uv"
    envlock_dir.mkdir()
    uv_dir.mkdir()
    (envlock_dir / "torchenv.toml").write_text(SPEC)
    (uv_dir / "pyproject.toml").write_text(PYPROJECT)

    def cold(runner: Callable[[Path, Path], float], work: Path) -> Callable[[int], float]:
        def run(i: int) -> float:
            cache = root / f"cold-{work.name}-{i}"
            try:
                return runner(work, cache)
            finally:
                shutil.rmtree(cache, ignore_errors=True)

        return run

    warm_cache = root / "warm"
    run_envlock_lock(envlock_dir, warm_cache)  # warm both caches (envlock and uv share layout)
    run_uv_lock(uv_dir, warm_cache)

    results: dict[str, dict[str, list[float]]] = {}
    results["cold"] = _alternate(
        args.rounds,
        {"envlock lock": cold(run_envlock_lock, envlock_dir), "uv lock": cold(run_uv_lock, uv_dir)},
    )
    results["warm"] = _alternate(
        args.rounds,
        {
            "envlock lock": lambda _i: run_envlock_lock(envlock_dir, warm_cache),
            "uv lock": lambda _i: run_uv_lock(uv_dir, warm_cache),
        },
    )
    env = _clean_env(ENVLOCK_CACHE_DIR=str(warm_cache))
    results["fast paths"] = _alternate(
        args.rounds,
        {
            "envlock lock --check": lambda _i: _timed(
                [*_envlock(), "lock", "--check"], envlock_dir, env
            ),
            "envlock lock (nothing changed)": lambda _i: _timed(
                [*_envlock(), "lock"], envlock_dir, env
            ),
        },
    )
    if args.pip_compile:
        pc_dir = root / "pip-compile"
        pc_dir.mkdir()
        (pc_dir / "requirements.in").write_text(REQUIREMENTS_IN)
        beside = Path(sys.executable).parent / "pip-compile"
        pip_compile = str(beside) if beside.exists() else shutil.which("pip-compile")
        if pip_compile is None:
            sys.exit("pip-compile is not installed (pip install pip-tools)")
        results["pip-compile (cold, once)"] = {
            "pip-compile --generate-hashes": [
                _timed(
                    [
                        pip_compile,
                        "--generate-hashes",
                        "--quiet",
                        "--cache-dir",
                        str(root / "pc"),
                        "requirements.in",
                    ],
                    pc_dir,
                    _clean_env(),
                )
            ]
        }

    print("| case | tool | median (s) | runs |")
    print("|---|---|---|---|")
    summary: dict[str, dict[str, float]] = {}
    for case, by_tool in results.items():
        summary[case] = {}
        for tool, values in by_tool.items():
            median = statistics.median(values)
            summary[case][tool] = median
            print(f"| {case} | {tool} | {median:.2f} | {len(values)} |")
    for case in ("cold", "warm"):
        ratio = summary[case]["envlock lock"] / summary[case]["uv lock"]
        print(f"\n{case}: envlock lock / uv lock = {ratio:.2f}x")
    if "pip-compile (cold, once)" in summary:
        ratio = (
            summary["pip-compile (cold, once)"]["pip-compile --generate-hashes"]
            / summary["cold"]["envlock lock"]
        )
        print(f"pip-compile --generate-hashes / envlock lock (cold) = {ratio:.1f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
