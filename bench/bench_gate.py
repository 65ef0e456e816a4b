"""Benchmark the review gate's cost on `envlock diff` of two real-size locks.

    python bench/bench_gate.py            # 300 packages, 30 changed, 3 wheels each, 7 rounds

A fixture index on 127.0.0.1 serves every wheel (Range requests answered) and its PEP 691
JSON page. Figures: the first diff (cold: every changed wheel's file list read by Range), then
the median of warm runs (file lists cached by sha256; index pages read again, as always), and
the same diff with --no-gate; the gate's cost is the difference. Goal (issue 14): under a
second on a warm cache. Not a test: figures are medians on a shared, noisy machine.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from packaging.pylock import Pylock

from envlock.lockfile import render_lock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.indexes import IndexServer, write_index
from tests.support.wheels import Dist

from _installed import as_installed

TAGS = (
    "cp311-cp311-manylinux_2_17_x86_64",
    "cp311-cp311-macosx_14_0_arm64",
    "cp311-cp311-win_amd64",
)
OLD = datetime(2025, 1, 1, tzinfo=UTC)


def _dists(size: int, changed: int) -> list[Dist]:
    step = size // changed
    dists = []
    for i in range(size):
        name = f"pkg{i:04d}"
        files = tuple((f"{name}/m{j}.py", f"X = {j}\n" * 20) for j in range(40))  # 40 modules
        dists.append(Dist(name=name, version="1.0", tags=TAGS, files=files, upload_time=OLD))
        if i % step == 0:
            dists.append(Dist(name=name, version="1.1", tags=TAGS, files=files, upload_time=OLD))
    return dists


def _lock(root: Path, url: str, size: int, changed: int, *, new: bool) -> str:
    step = size // changed
    packages = []
    for i in range(size):
        name = f"pkg{i:04d}"
        version = "1.1" if new and i % step == 0 else "1.0"
        wheels = []
        for tag in TAGS:
            filename = f"{name}-{version}-{tag}.whl"
            data = (root / name / "files" / filename).read_bytes()
            wheels.append(
                {
                    "url": f"{url}/{name}/files/{filename}",
                    "size": len(data),
                    "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
                }
            )
        packages.append({"name": name, "version": version, "index": url, "wheels": wheels})
    data = {"lock-version": "1.0", "created-by": "envlock", "packages": packages}
    return render_lock(Pylock.from_dict(data))


def _run(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "envlock", *args], env=env, capture_output=True, check=False
    )
    return time.perf_counter() - start


def main() -> None:
    as_installed()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--packages", type=int, default=300)
    parser.add_argument("--changed", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root = work / "served"
        write_index(root, "/simple", _dists(args.packages, args.changed), style="pypi")
        with IndexServer({"/simple": (root, "pypi")}) as server:
            url = f"{server.base_url}/simple"
            old, new = work / "old.toml", work / "new.toml"
            old.write_text(_lock(root, url, args.packages, args.changed, new=False))
            new.write_text(_lock(root, url, args.packages, args.changed, new=True))
            env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "ENVLOCK_"))}
            env["ENVLOCK_CACHE_DIR"] = str(work / "cache")
            diff = ["diff", str(old), str(new), "--format", "json"]
            cold = _run(diff, env)
            wheel_reads = len([p for p in server.requests if p.endswith(".whl")])
            warm = statistics.median(_run(diff, env) for _ in range(args.rounds))
            plain = statistics.median(_run([*diff, "--no-gate"], env) for _ in range(args.rounds))
    print(f"locks: 2 x {args.packages} packages, {args.changed} changed, {len(TAGS)} wheels each")
    print("| run | median (s) |")
    print("|---|---|")
    print(f"| diff, gate, cold cache (first run; {wheel_reads} Range reads) | {cold:.3f} |")
    print(f"| diff, gate, warm cache | {warm:.3f} |")
    print(f"| diff --no-gate | {plain:.3f} |")
    print(f"| the gate's cost, warm | {warm - plain:.3f} (goal: under 1 s) |")


if __name__ == "__main__":
    main()
