"""Benchmark locking three [variants] against locking one build.

    python bench/bench_variants.py      # 7 rounds, alternating, warm cache

Hermetic (the test suite's fixture indexes on 127.0.0.1): download.pytorch.org is not
reachable from this project's machines. Goal (README): three variants <= 2x one.
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

from _hermetic import SPEC, hermetic
from _installed import as_installed

BASE = SPEC
VARIANTS = (
    BASE
    + """
[variants.cpu]
cuda = "cpu"
[variants.cu124]
cuda = "12.4"
source = "pytorch-index"
[variants.cu126]
cuda = "12.6"
"""
)


def main() -> None:
    as_installed()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="envlock-bench-variants-"))
    served, env = hermetic(work)
    one, three = work / "one", work / "three"
    for directory, spec in ((one, BASE), (three, VARIANTS)):
        directory.mkdir()
        (directory / "torchenv.toml").write_text(spec)

    def run(directory: Path) -> float:
        for lock in directory.glob("pylock*.toml"):
            lock.unlink()
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "envlock", "lock"],
            cwd=directory,
            env=env,
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - start

    try:
        run(one)
        run(three)  # warm the cache
        times: dict[str, list[float]] = {"one build": [], "three variants": []}
        for i in range(args.rounds):
            pair = [("one build", one), ("three variants", three)]
            for name, directory in pair if i % 2 == 0 else reversed(pair):
                times[name].append(run(directory))
        print("| case | median (s) | runs |")
        print("|---|---|---|")
        for name, values in times.items():
            print(f"| {name} | {statistics.median(values):.3f} | {len(values)} |")
        ratio = statistics.median(times["three variants"]) / statistics.median(times["one build"])
        print(f"\nthree variants / one build = {ratio:.2f}x (goal <= 2x)")
    finally:
        served.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
