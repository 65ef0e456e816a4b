"""Scaling: `envlock lock` and `envlock sync` against uv as the lock grows, on bench/bigindex.py.

    python bench/bench_scale.py                 # 10, 100, 300, 1,000 packages, 30 ms latency
    python bench/bench_scale.py --quick         # 10 and 100 packages, one round, no plot
    python bench/bench_scale.py --counts 300 --projects 300 --rounds 5 --no-sync   # lock only
    python bench/bench_scale.py --json scale.json --budget-min 15

The request for K packages: torch 2.6 (cu126) + torchvision for linux-x86_64 / CPython 3.11
and root-K, whose closure is the K synthetic packages pkg-0 .. pkg-(K-1); with torch's own
dependencies the lock holds K + 27 packages. uv gets the same request as a pyproject.toml: PyPI
as the default index, the variant index as a named explicit index that [tool.uv.sources] routes
torch and torchvision to (uv's PyTorch guide), the same environments.

Per count, alternating the tools inside each round (medians over rounds):

- lock, cold: `envlock lock` with an empty ENVLOCK_CACHE_DIR against `uv lock` with an empty
  --cache-dir; lock, warm: both on one shared warm cache (envlock's uv cache is
  ENVLOCK_CACHE_DIR/uv, the same layout). pylock.toml / uv.lock are removed before each run.
- sync into a new venv, warm cache, of envlock's lock: `envlock sync --venv NEW` with its
  defaults (copy or clone, import check) and with `--link-mode hardlink --no-check-imports`,
  against `uv venv NEW` + `uv pip sync pylock.toml` (uv's own PEP 751 install, hard links).

Rounds run while they fit in --budget-min (at least one, at most --rounds). Prints a markdown
table with ratios to uv, writes the raw figures (--json) and a log-log plot (--plot, default
docs/scaling.png; needs matplotlib: pip install 'envlock[bench]'). Not a test: medians on a
shared, noisy machine; the index server runs in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from uv import find_uv_bin

from _installed import as_installed
from bigindex import BigIndex

ROOT = Path(__file__).resolve().parents[1]
TORCH = ("2.6", "12.6", "cu126", "2.6.*", "0.21.*")  # spec version, cuda, variant, uv pins

ENVLOCK_LOCK_COLD = "envlock lock (cold)"
UV_LOCK_COLD = "uv lock (cold)"
ENVLOCK_LOCK_WARM = "envlock lock (warm)"
UV_LOCK_WARM = "uv lock (warm)"
ENVLOCK_SYNC = "envlock sync (defaults)"
ENVLOCK_SYNC_FAST = "envlock sync --link-mode hardlink --no-check-imports"
UV_SYNC = "uv venv + uv pip sync pylock.toml"
PAIRS = (
    ("lock, cold cache", ENVLOCK_LOCK_COLD, UV_LOCK_COLD),
    ("lock, warm cache", ENVLOCK_LOCK_WARM, UV_LOCK_WARM),
    ("sync new venv, defaults", ENVLOCK_SYNC, UV_SYNC),
    ("sync new venv, hardlink, no import check", ENVLOCK_SYNC_FAST, UV_SYNC),
)


class RunFailedError(Exception):
    def __init__(self, args: Sequence[str], result: subprocess.CompletedProcess[str]) -> None:
        tail = (result.stderr or result.stdout)[-4000:]
        super().__init__(f"{' '.join(args)} exited {result.returncode}:\n{tail}")


def _spec(root: str) -> str:
    version, cuda, *_ = TORCH
    return (
        '[env]\npython = "3.11"\nplatforms = ["linux-x86_64"]\n\n'
        f'[torch]\nversion = "{version}"\ncuda = "{cuda}"\nvision = true\n\n'
        f'[packages]\n"{root}" = "*"\n'
    )


def _pyproject(root: str, index: BigIndex) -> str:
    _, _, variant, torch, vision = TORCH
    marker = "python_version == '3.11' and sys_platform == 'linux' and platform_machine == 'x86_64'"
    return f"""\
[project]
name = "bench"
version = "0"
requires-python = "==3.11.*"
dependencies = ["torch=={torch}", "torchvision=={vision}", "{root}"]

[tool.uv]
package = false
environments = ["{marker}"]
required-environments = ["{marker}"]

[[tool.uv.index]]
name = "pypi"
url = "{index.pypi_url}"
default = true

[[tool.uv.index]]
name = "pytorch-{variant}"
url = "{index.variant_url(variant)}"
explicit = true

[tool.uv.sources]
torch = {{ index = "pytorch-{variant}" }}
torchvision = {{ index = "pytorch-{variant}" }}
"""


def _clean_env(index: BigIndex, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_", "ENVLOCK_"))}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        ENVLOCK_CACHE_DIR=str(cache),
        ENVLOCK_REVIEW_GATE="off",
        ENVLOCK_DOCKER_REGISTRY="off",
        ENVLOCK_NVIDIA_SMI="/nonexistent",
        ENVLOCK_PYPI_INDEX_URL=index.pypi_url,
        ENVLOCK_PYTORCH_INDEX_URL=index.pytorch_url,
    )
    return env


def _timed(args: Sequence[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RunFailedError(args, result)
    return elapsed


ENVLOCK = [sys.executable, "-m", "envlock"]


class Case:
    """One package count: the work folders and the runs of each tool."""

    def __init__(self, count: int, index: BigIndex, work: Path, warm: Path) -> None:
        self.count = count
        self.index = index
        self.work = work
        self.warm = warm
        self.uv = find_uv_bin()
        root = index.root(count)
        self.envlock_dir = work / "envlock"
        self.uv_dir = work / "uv"
        self.sync_dir = work / "sync"
        for folder in (self.envlock_dir, self.uv_dir, self.sync_dir):
            folder.mkdir(parents=True)
        (self.envlock_dir / "torchenv.toml").write_text(_spec(root))
        (self.sync_dir / "torchenv.toml").write_text(_spec(root))
        (self.uv_dir / "pyproject.toml").write_text(_pyproject(root, index))
        self.locked: dict[str, int] = {}
        self.serial = 0

    def _fresh(self, name: str) -> Path:
        self.serial += 1
        return self.work / f"{name}-{self.serial}"

    def envlock_lock(self, cache: Path) -> float:
        (self.envlock_dir / "pylock.toml").unlink(missing_ok=True)
        env = _clean_env(self.index, cache)
        elapsed = _timed([*ENVLOCK, "lock"], self.envlock_dir, env)
        lock = tomllib.loads((self.envlock_dir / "pylock.toml").read_text())
        self.locked["envlock"] = len(lock["packages"])
        if not (self.sync_dir / "pylock.toml").exists():
            shutil.copy(self.envlock_dir / "pylock.toml", self.sync_dir / "pylock.toml")
        return elapsed

    def uv_lock(self, cache: Path) -> float:
        (self.uv_dir / "uv.lock").unlink(missing_ok=True)
        args = [self.uv, "lock", "--no-config", "--python", sys.executable]
        args += ["--no-python-downloads", "--cache-dir", str(cache / "uv")]
        # --no-config (no ambient uv.toml) also drops [[tool.uv.index]] default = true from
        # the pyproject (the explicit index still works through [tool.uv.sources]), so the
        # default index is given as envlock gives it to its own uv run.
        args += ["--default-index", self.index.pypi_url]
        elapsed = _timed(args, self.uv_dir, _clean_env(self.index, cache))
        lock = tomllib.loads((self.uv_dir / "uv.lock").read_text())
        self.locked["uv"] = len(lock["package"]) - 1  # the project itself
        return elapsed

    def cold(self, runner: Callable[[Path], float]) -> float:
        cache = self._fresh("cold-cache")
        try:
            return runner(cache)
        finally:
            shutil.rmtree(cache, ignore_errors=True)

    def envlock_sync(self, *options: str) -> float:
        venv = self._fresh("venv")
        args = [*ENVLOCK, "sync", "--venv", str(venv), *options]
        try:
            return _timed(args, self.sync_dir, _clean_env(self.index, self.warm))
        finally:
            shutil.rmtree(venv, ignore_errors=True)

    def uv_sync(self) -> float:
        venv = self._fresh("venv")
        env = _clean_env(self.index, self.warm)
        start = time.perf_counter()
        try:
            _timed(
                [self.uv, "venv", "--no-config", "-q", "--python", sys.executable, str(venv)],
                self.sync_dir,
                env,
            )
            _timed(
                [
                    self.uv,
                    "pip",
                    "sync",
                    "--no-config",
                    "-q",
                    "--python",
                    str(venv / "bin" / "python"),
                    "--cache-dir",
                    str(self.warm / "uv"),
                    "pylock.toml",
                ],
                self.sync_dir,
                env,
            )
            return time.perf_counter() - start
        finally:
            shutil.rmtree(venv, ignore_errors=True)

    def runners(self, *, sync: bool) -> list[list[tuple[str, Callable[[], float]]]]:
        """Groups of runs that alternate with each other."""
        groups: list[list[tuple[str, Callable[[], float]]]] = [
            [
                (ENVLOCK_LOCK_COLD, lambda: self.cold(self.envlock_lock)),
                (UV_LOCK_COLD, lambda: self.cold(self.uv_lock)),
            ],
            [
                (ENVLOCK_LOCK_WARM, lambda: self.envlock_lock(self.warm)),
                (UV_LOCK_WARM, lambda: self.uv_lock(self.warm)),
            ],
        ]
        if sync:
            groups.append(
                [
                    (ENVLOCK_SYNC, self.envlock_sync),
                    (
                        ENVLOCK_SYNC_FAST,
                        lambda: self.envlock_sync("--link-mode", "hardlink", "--no-check-imports"),
                    ),
                    (UV_SYNC, self.uv_sync),
                ]
            )
        return groups

    def warm_up(self, *, sync: bool) -> None:
        self.envlock_lock(self.warm)
        self.uv_lock(self.warm)
        if sync:
            self.envlock_sync()


def _machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs, {platform.system()}"


def _table(results: dict[str, dict[str, list[float]]], locked: dict[str, dict[str, int]]) -> str:
    lines = [
        "| packages (K / in lock) | case | envlock | uv | envlock / uv | rounds |",
        "|---|---|---|---|---|---|",
    ]
    for count, by_tool in results.items():
        size = locked.get(count, {}).get("envlock", "?")
        for case, mine, theirs in PAIRS:
            if mine not in by_tool or theirs not in by_tool:
                continue
            a, b = statistics.median(by_tool[mine]), statistics.median(by_tool[theirs])
            rounds = min(len(by_tool[mine]), len(by_tool[theirs]))
            lines.append(
                f"| {count} / {size} | {case} | {a:.2f} s | {b:.2f} s | {a / b:.2f}x | {rounds} |"
            )
    return "\n".join(lines)


def _plot(
    path: Path,
    results: dict[str, dict[str, list[float]]],
    locked: dict[str, dict[str, int]],
    title: str,
) -> None:
    import matplotlib  # noqa: PLC0415 - only for the plot

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    styles = {
        ENVLOCK_LOCK_COLD: ("tab:blue", "-", "o"),
        UV_LOCK_COLD: ("tab:orange", "-", "o"),
        ENVLOCK_LOCK_WARM: ("tab:blue", "--", "s"),
        UV_LOCK_WARM: ("tab:orange", "--", "s"),
        ENVLOCK_SYNC: ("tab:green", "-", "^"),
        ENVLOCK_SYNC_FAST: ("tab:green", ":", "v"),
        UV_SYNC: ("tab:red", "-", "^"),
    }
    figure, axes = plt.subplots(figsize=(9, 6), dpi=120)
    for label, (color, line, mark) in styles.items():
        points = [
            (locked[c].get("envlock", int(c)), statistics.median(t[label]))
            for c, t in results.items()
            if t.get(label)
        ]
        if points:
            xs, ys = zip(*sorted(points), strict=True)
            axes.plot(xs, ys, color=color, linestyle=line, marker=mark, label=label)
    axes.set_xscale("log")
    axes.set_yscale("log")
    sizes = sorted({n.get("envlock", 0) for n in locked.values()} - {0})
    axes.set_xticks(sizes, [str(n) for n in sizes])
    axes.minorticks_off()
    axes.set_xlabel("packages in the lock")
    axes.set_ylabel("seconds (median)")
    axes.set_title(title, fontsize=10)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def _report(report: dict[str, Any], plot: Path | None) -> None:
    """Print the table (and draw the plot) of one run's figures."""
    results, locked = report["seconds"], report["locked_packages"]
    print(
        f"\n{report['projects']}-project index, {report['latency_ms']:g} ms latency per request, "
        f"{report['rounds']} round(s), {report['machine']}, {report['when']}\n"
    )
    print(_table(results, locked))
    if plot is not None and results:
        title = (
            f"envlock vs uv on bench/bigindex.py ({report['projects']} projects), "
            f"{report['latency_ms']:g} ms latency per request\n"
            f"{report['machine']}; medians of {report['rounds']} round(s), {report['when'][:10]}"
        )
        _plot(plot, results, locked, title)
        print(f"\nwrote {plot}", file=sys.stderr)


def main() -> None:
    as_installed()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="10,100,300,1000", help="comma-separated")
    parser.add_argument("--projects", type=int, help="synthetic projects (default: max count)")
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--bandwidth", type=float, help="bytes/s per response (default: none)")
    parser.add_argument("--rounds", type=int, default=5, help="at most this many")
    parser.add_argument("--budget-min", type=float, default=15.0, help="start no round after")
    parser.add_argument("--no-sync", action="store_true", help="time the locks only")
    parser.add_argument("--quick", action="store_true", help="10 and 100, one round, no plot")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "scaling.png")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--from-json", type=Path, help="no run: table and plot of a --json file")
    args = parser.parse_args()
    if args.from_json:
        _report(json.loads(args.from_json.read_text()), None if args.no_plot else args.plot)
        return
    counts = [int(c) for c in args.counts.split(",") if c]
    if args.quick:
        counts, args.rounds, args.no_plot = [10, 100], 1, True
    projects = args.projects or max(counts)
    sync = not args.no_sync

    began = time.perf_counter()
    index = BigIndex(
        projects=projects,
        seed=args.seed,
        latency_ms=0.0,
        bandwidth=args.bandwidth,
        variants=(TORCH[2],),
        roots=counts,
    ).start()
    print(
        f"index: {projects} projects, {sum(index.file_count().values())} files listed, "
        f"generated in {index.generation_s:.1f} s",
        file=sys.stderr,
    )
    root = Path(tempfile.mkdtemp(prefix="envlock-bench-scale-"))
    results: dict[str, dict[str, list[float]]] = {}
    requests: dict[str, dict[str, list[dict[str, int]]]] = {}
    locked: dict[str, dict[str, int]] = {}
    failure: str | None = None
    rounds_done = 0
    try:
        warm = root / "warm"
        cases = [Case(c, index, root / f"k{c}", warm) for c in counts]
        index.latency_ms = args.latency_ms
        for case in cases:
            print(f"warming up {case.count} ...", file=sys.stderr)
            case.warm_up(sync=sync)
        budget = args.budget_min * 60
        last_round = 0.0
        for i in range(args.rounds):
            elapsed = time.perf_counter() - began
            if i and elapsed + last_round > budget:
                break
            start = time.perf_counter()
            for case in cases:
                times = results.setdefault(str(case.count), {})
                counted = requests.setdefault(str(case.count), {})
                for group in case.runners(sync=sync):
                    shift = i % len(group)
                    for name, run in group[shift:] + group[:shift]:
                        index.take_counters()
                        times.setdefault(name, []).append(run())
                        counted.setdefault(name, []).append(index.take_counters())
                locked[str(case.count)] = dict(case.locked)
            last_round = time.perf_counter() - start
            rounds_done = i + 1
            print(f"round {rounds_done} took {last_round:.0f} s", file=sys.stderr)
    except RunFailedError as exc:
        failure = str(exc)
    finally:
        index.close()
        shutil.rmtree(root, ignore_errors=True)

    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "projects": projects,
        "latency_ms": args.latency_ms,
        "bandwidth": args.bandwidth,
        "rounds": rounds_done,
        "locked_packages": locked,
        "seconds": results,
        "requests": requests,
        "failure": failure,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    _report(report, None if args.no_plot or failure is not None else args.plot)
    if failure is not None:
        sys.exit(f"error: {failure}")


if __name__ == "__main__":
    main()
