"""Benchmark `envlock sync` against `uv venv` + `uv pip sync pylock.toml` of the same lock.

    python bench/bench_sync.py             # 7 rounds, alternating, warm uv cache
    python bench/bench_sync.py --real      # the quickstart lock from real PyPI (~3 GB once)

Hermetic: the lock comes from the test suite's fixture indexes (tiny real wheels served on
127.0.0.1), so the figures measure what envlock adds on top of uv (start-up, host preflight,
PEP 751 selection, the post-install check), not download speed. uv installs envlock's lock
itself (its own PEP 751 support), from the same warm cache. envlock is timed twice: with uv's
own defaults (`--link-mode hardlink --no-check-imports`) and with its own (a copy, the import
check). Goals (issue 16): a new-venv sync <= 1.15x uv; a sync with nothing to do <= 4x uv's on
the same exact venv. Not a test: medians on a noisy machine.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from uv import find_uv_bin

from _hermetic import ROOT, SPEC, hermetic
from _installed import as_installed


def main() -> None:  # noqa: PLR0912 - a script
    as_installed()
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
        uv = find_uv_bin()
        cache = str(work / "cache" / "uv")

        def envlock_sync(i: int, *extra: str) -> float:
            start = time.perf_counter()
            subprocess.run(
                [*envlock, "sync", "--venv", f"e{i}", *extra],
                cwd=work,
                env=env,
                check=True,
                capture_output=True,
            )
            return time.perf_counter() - start

        def envlock_like_uv(i: int) -> float:
            return envlock_sync(i + 1000, "--link-mode", "hardlink", "--no-check-imports")

        def uv_sync(i: int) -> float:
            start = time.perf_counter()
            subprocess.run(
                [uv, "venv", "--no-config", "-q", "--python", sys.executable, f"u{i}"],
                cwd=work,
                env=env,
                check=True,
                capture_output=True,
            )
            subprocess.run(uv_pip_sync(f"u{i}"), cwd=work, env=env, check=True, capture_output=True)
            return time.perf_counter() - start

        # uv finds a cached artifact of an index only under an index it is given (else it
        # fetches each wheel again: what envlock's own sync fixed), so uv gets the lock's too.
        lock = tomllib.loads((work / "pylock.toml").read_text(encoding="utf-8"))
        given = [
            arg
            for index in dict.fromkeys(p["index"] for p in lock["packages"] if "index" in p)
            for arg in ("--index", index)
        ]

        def uv_pip_sync(venv: str) -> list[str]:
            return [
                uv,
                "pip",
                "sync",
                "--no-config",
                "-q",
                "--preview-features",
                "pylock",
                "--python",
                f"{venv}/bin/python",
                "--cache-dir",
                cache,
                *given,
                "pylock.toml",
            ]

        envlock_sync(999)  # warm the cache
        shutil.rmtree(work / "e999")
        names = {
            "envlock sync (new venv, envlock's defaults)": envlock_sync,
            "envlock sync --link-mode hardlink --no-check-imports (new venv)": envlock_like_uv,
            "uv venv + uv pip sync pylock.toml": uv_sync,
        }
        times: dict[str, list[float]] = {name: [] for name in names}
        for i in range(args.rounds):
            order = list(names) if i % 2 == 0 else list(reversed(names))
            for name in order:
                times[name].append(names[name](i))
            if i:  # e0 stays for the no-op runs; a torch venv is ~6 GB copied, so the rest go
                for leftover in (f"e{i}", f"e{i + 1000}", f"u{i}"):
                    shutil.rmtree(work / leftover)
        noop: dict[str, list[float]] = {
            "envlock sync (nothing to do)": [],
            "uv pip sync (nothing to do)": [],
        }
        for _ in range(max(args.rounds, 9)):
            for name, argv in (
                ("envlock sync (nothing to do)", [*envlock, "sync", "--venv", "e0"]),
                ("uv pip sync (nothing to do)", uv_pip_sync("e0")),
            ):
                start = time.perf_counter()
                subprocess.run(argv, cwd=work, env=env, check=True, capture_output=True)
                noop[name].append(time.perf_counter() - start)
        times.update(noop)
        print("| case | median (s) | runs |")
        print("|---|---|---|")
        for name, values in times.items():
            print(f"| {name} | {statistics.median(values):.3f} | {len(values)} |")
        med = {name: statistics.median(values) for name, values in times.items()}
        uv_new = med["uv venv + uv pip sync pylock.toml"]
        print()
        for name in list(names)[:2]:
            print(f"{name} / uv = {med[name] / uv_new:.2f}x")
        noop_ratio = med["envlock sync (nothing to do)"] / med["uv pip sync (nothing to do)"]
        print(f"no-op: envlock / uv = {noop_ratio:.2f}x")
    finally:
        served.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
