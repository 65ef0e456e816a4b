"""Benchmark `envlock diff` end to end (process start to exit) on synthetic locks.

    python bench/bench_diff.py            # 300- and 2,000-package locks, 7 rounds each

Goals (README; issue 16): two 300-package locks <= 0.3 s; two 2,000-package locks <= 0.5 s.
Not a test: figures are medians on a shared, noisy machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from packaging.pylock import Pylock

from envlock.lockfile import render_lock


def synthetic_lock(size: int, *, shift: int) -> str:
    """``size`` packages, 3 wheels each; ``shift`` > 0 changes every 10th package's version."""
    packages = []
    for i in range(size):
        name = f"pkg{i:05d}"
        minor = 1 if shift and i % 10 == 0 else 0
        version = f"1.{minor}.{i % 7}"
        wheels = [
            {
                "url": f"https://files.example/{name}-{version}-cp311-cp311-{plat}.whl",
                "size": 1000 + i,
                "hashes": {"sha256": f"{(i * 7919 + j + minor) % 16:x}" * 64},
            }
            for j, plat in enumerate(("manylinux_2_17_x86_64", "macosx_14_0_arm64", "win_amd64"))
        ]
        packages.append(
            {"name": name, "version": version, "index": "https://pypi.org/simple", "wheels": wheels}
        )
    lock = Pylock.from_dict({"lock-version": "1.0", "created-by": "envlock", "packages": packages})
    return render_lock(lock)


def time_diff(old: Path, new: Path, rounds: int, fmt: str) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(
            # --no-gate: the review gate reads every new artifact (its own benchmark is
            # bench_gate.py); these synthetic locks name hosts that do not exist
            [
                sys.executable,
                "-m",
                "envlock",
                "diff",
                str(old),
                str(new),
                "--format",
                fmt,
                "--no-gate",
            ],
            capture_output=True,
            check=True,
        )
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print("| locks | format | median (s) | goal |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for size, goal in ((300, "<= 0.3 s"), (2000, "<= 0.5 s")):
            old = Path(tmp) / f"old-{size}.pylock.toml"
            new = Path(tmp) / f"new-{size}.pylock.toml"
            old.write_text(synthetic_lock(size, shift=0))
            new.write_text(synthetic_lock(size, shift=1))
            for fmt in ("text", "json"):
                median = time_diff(old, new, args.rounds, fmt)
                print(f"| 2 x {size} packages | {fmt} | {median:.3f} | {goal} |")


if __name__ == "__main__":
    main()
