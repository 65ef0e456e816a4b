"""Benchmark `envlock sync` against `uv venv` + `uv pip sync` of the same artifacts.

    python bench/bench_sync.py             # 7 rounds, alternating, warm uv cache
    python bench/bench_sync.py --real      # the quickstart lock from real PyPI (~3 GB once)

Hermetic: the lock comes from the test suite's fixture indexes (tiny real wheels served on
127.0.0.1), so the figures measure what envlock adds on top of uv (start-up, host preflight,
PEP 751 selection, the post-install check), not download speed. Goals (README): a new-venv sync
<= 1.2x uv; a sync with nothing to do <= 0.3 s. Not a test: medians on a noisy machine.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from uv import find_uv_bin

from _hermetic import ROOT, SPEC, hermetic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--real",
        action="store_true",
        help="sync lockfiles/quickstart (torch 2.14 cu130 from PyPI) instead",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="envlock-bench-sync-"))
    served, env = hermetic(work)
    env.update(
        ENVLOCK_NVIDIA_SMI=str(work / "no-nvidia-smi"),
    )
    envlock = [sys.executable, "-m", "envlock"]
    if args.real:
        for key in ("ENVLOCK_PYPI_INDEX_URL", "ENVLOCK_PYTORCH_INDEX_URL"):
            env.pop(key)
    try:
        if args.real:
            quickstart = ROOT / "lockfiles" / "quickstart"
            shutil.copy(quickstart / "torchenv.toml", work / "torchenv.toml")
            shutil.copy(quickstart / "pylock.toml", work / "pylock.toml")
        else:
            (work / "torchenv.toml").write_text(SPEC)
            subprocess.run([*envlock, "lock"], cwd=work, env=env, check=True, capture_output=True)
        reqs = work / "requirements.txt"
        subprocess.run(
            [*envlock, "export", "requirements", "-o", str(reqs)],
            cwd=work,
            env=env,
            check=True,
            capture_output=True,
        )
        uv = find_uv_bin()
        cache = str(work / "cache" / "uv")

        def envlock_sync(i: int) -> float:
            start = time.perf_counter()
            subprocess.run(
                [*envlock, "sync", "--venv", f"e{i}"],
                cwd=work,
                env=env,
                check=True,
                capture_output=True,
            )
            return time.perf_counter() - start

        def uv_sync(i: int) -> float:
            start = time.perf_counter()
            subprocess.run(
                [uv, "venv", "--no-config", "-q", "--python", sys.executable, f"u{i}"],
                cwd=work,
                env=env,
                check=True,
                capture_output=True,
            )
            subprocess.run(
                [
                    uv,
                    "pip",
                    "sync",
                    "--no-config",
                    "-q",
                    "--python",
                    f"u{i}/bin/python",
                    "--require-hashes",
                    "--cache-dir",
                    cache,
                    str(reqs),
                ],
                cwd=work,
                env=env,
                check=True,
                capture_output=True,
            )
            return time.perf_counter() - start

        envlock_sync(999)  # warm the cache
        shutil.rmtree(work / "e999")
        times: dict[str, list[float]] = {"envlock sync (new venv)": [], "uv venv + uv pip sync": []}
        for i in range(args.rounds):
            pair = [("envlock sync (new venv)", envlock_sync), ("uv venv + uv pip sync", uv_sync)]
            for name, run in pair if i % 2 == 0 else reversed(pair):
                times[name].append(run(i))
            if i:  # e0 stays for the no-op runs; a torch venv is ~6 GB copied, so the rest go
                shutil.rmtree(work / f"e{i}")
                shutil.rmtree(work / f"u{i}")
        noop = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            subprocess.run(
                [*envlock, "sync", "--venv", "e0"],
                cwd=work,
                env=env,
                check=True,
                capture_output=True,
            )
            noop.append(time.perf_counter() - start)
        times["envlock sync (nothing to do)"] = noop
        print("| case | median (s) | runs |")
        print("|---|---|---|")
        for name, values in times.items():
            print(f"| {name} | {statistics.median(values):.3f} | {len(values)} |")
        ratio = statistics.median(times["envlock sync (new venv)"]) / statistics.median(
            times["uv venv + uv pip sync"]
        )
        print(f"\nenvlock sync / (uv venv + uv pip sync) = {ratio:.2f}x")
    finally:
        served.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
