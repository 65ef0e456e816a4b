"""Benchmark `envlock verify --deep` on a torch-shaped venv: MB/s of files hashed, peak RSS.

    python bench/bench_verify.py         # 20,000 small files + 3 x 512 MB .so, then 1/4 of it
    python bench/bench_verify.py --big-mb 256 --files 2000 --rounds 3   # a quick look

Hermetic: the lock is the fixture indexes' wheels (bench_linkmode.py's spec) plus one synthetic
wheel, `torchbulk`, shaped like torch: --files small files (2 KB, torch's include/ATen,
_inductor, ... tree; a real torch venv holds ~23,600) and --big-files shared objects of
--big-mb MB in all (torch's lib/ holds a few of hundreds of MB). It is served from the fixture
PyPI, locked and installed by envlock itself (`envlock sync --link-mode hardlink`, so the venv
shares the uv cache's blocks and the disk holds the bytes twice, not three times), then
`envlock verify --venv V --deep` is timed against the disk-speed references on exactly the files
it hashes (every RECORD row with a sha256): `cat` (read only), `sha256sum` (read + hash, one
core; coreutils' own sha256) and `openssl dgst -sha256` (the same with OpenSSL's, which uses the
CPU's SHA extensions like Python's hashlib: the fair hashing reference), and against
`envlock verify` without --deep (its fixed cost). Warm page cache: each command runs once before
the timed rounds and nothing is dropped, so "disk speed" here is the page cache's; on a cold
cache all of them wait on the same disk.

Peak RSS is each process's own ru_maxrss (os.wait4 in a small launcher: the process and the
children it waited for; `true` through the same launcher shows its floor, ~5 MB), at two venv
sizes (the full one and --small-factor smaller, in files and bytes): constant memory means
the two agree. Disk: ~2 x --big-mb while a size runs (the served wheel and uv's unpacked cache),
removed before the next size and at the end.
Not a test: medians on a noisy machine.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from _hermetic import SPEC, hermetic
from _installed import as_installed
from bench_linkmode import AREAS, BULK, VERSION, immutable_wheels

_MIB = 1 << 20


def _row(path: str, digest: bytes, size: int) -> str:
    return f"{path},sha256={base64.urlsafe_b64encode(digest).rstrip(b'=').decode()},{size}"


def serve_torch_wheel(pypi_root: Path, *, files: int, big_files: int, big_mb: int) -> int:
    """Write torchbulk-1.0-py3-none-any.whl (``files`` small files, ``big_files`` .so files of
    ``big_mb`` MB in all, stored, written in 1 MiB pieces) and its page into the fixture PyPI.
    Returns the wheel's size."""
    info = f"{BULK}-{VERSION}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {BULK}\nVersion: {VERSION}\n".encode()
    outdir = pypi_root / BULK / "files"
    outdir.mkdir(parents=True)
    wheel = outdir / f"{BULK}-{VERSION}-py3-none-any.whl"
    record: list[str] = []
    block = os.urandom(_MIB)
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:

        def add(name: str, data: bytes) -> None:
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
            record.append(_row(name, hashlib.sha256(data).digest(), len(data)))

        add(f"{BULK}/__init__.py", b"")
        for i in range(files):
            area = AREAS[i % len(AREAS)]
            suffix = ".h" if area.startswith("include") else ".py"
            name = f"{BULK}/{area}/d{i // 500:03d}/f{i:06d}{suffix}"
            add(name, (f"# {name}\n".encode() * 80)[:2048])
        for k in range(big_files):
            name = f"{BULK}/lib/libtorch_part{k}.so"
            size = big_mb * _MIB // big_files
            digest = hashlib.sha256()
            entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_STORED
            with archive.open(entry, "w", force_zip64=True) as out:
                left = size
                while left:
                    piece = block[: min(left, _MIB)]
                    piece = k.to_bytes(4, "little") + piece[4:]  # each file its own bytes
                    out.write(piece)
                    digest.update(piece)
                    left -= len(piece)
            record.append(_row(name, digest.digest(), size))
        add(f"{info}/METADATA", metadata)
        add(f"{info}/WHEEL", b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "\n".join([*record, f"{info}/RECORD,,"]) + "\n")
    (outdir / f"{wheel.name}.metadata").write_bytes(metadata)
    sha = hashlib.sha256()
    with wheel.open("rb") as handle:
        while piece := handle.read(_MIB):
            sha.update(piece)
    meta = hashlib.sha256(metadata).hexdigest()
    (pypi_root / BULK / "index.html").write_text(
        f'<html><body><a href="/simple/{BULK}/files/{wheel.name}#sha256={sha.hexdigest()}" '
        f'data-dist-info-metadata="sha256={meta}" data-core-metadata="sha256={meta}">'
        f"{wheel.name}</a></body></html>\n"
    )
    return wheel.stat().st_size


def hashed_files(site: Path) -> tuple[list[Path], int]:
    """What verify --deep hashes: every RECORD row with a sha256, of every dist; total bytes."""
    paths: list[Path] = []
    for record in sorted(site.glob("*.dist-info/RECORD")):
        with record.open(newline="", encoding="utf-8") as handle:
            for row in csv.reader(handle):
                if len(row) >= 2 and row[1].startswith("sha256="):
                    paths.append(site / row[0])
    return paths, sum(p.stat().st_size for p in paths)


@dataclass
class Sample:
    wall: float
    rss_kib: int


# Forks the command from a small, fresh interpreter and reports its wall time and ru_maxrss
# (os.wait4: it and the children it waited for). Forked from the benchmark itself, a child's
# ru_maxrss would start at the benchmark's own RSS (Linux keeps the high-water mark across
# exec), and the fixture server in this process has held a whole wheel in memory.
_LAUNCHER = """
import os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as out:
    out.write(f"{wall} {usage.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def measure(cmd: list[str], *, env: dict[str, str], cwd: Path, stdin: bytes = b"") -> Sample:
    """Run ``cmd``; its wall time and peak RSS (KiB), through the launcher."""
    with tempfile.TemporaryDirectory() as tmp:
        feed, report = Path(tmp) / "stdin", Path(tmp) / "report"
        feed.write_bytes(stdin)
        launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(report)]
        with feed.open("rb") as handle:
            done = subprocess.run(
                [*launcher, *cmd],
                cwd=cwd,
                env=env,
                stdin=handle,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                check=False,
            )
        if done.returncode:
            sys.exit(f"{' '.join(cmd)}: exit {done.returncode}\n{done.stderr.decode()[-4000:]}")
        wall, rss = report.read_text().split()
    return Sample(wall=float(wall), rss_kib=int(rss))


@dataclass
class Result:
    files: int
    mb: float
    medians: dict[str, float]
    rss: dict[str, int]
    floor_kib: int


def bench_size(*, files: int, big_files: int, big_mb: int, rounds: int) -> Result:
    work = Path(tempfile.mkdtemp(prefix="envlock-bench-verify-"))
    served, env = hermetic(work)
    env["ENVLOCK_NVIDIA_SMI"] = str(work / "no-nvidia-smi")
    envlock = [sys.executable, "-m", "envlock"]

    def run(*cmd: str | Path) -> None:
        done = subprocess.run(cmd, check=False, cwd=work, env=env, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"{' '.join(map(str, cmd))}: exit {done.returncode}\n{done.stderr}")

    try:
        serve_torch_wheel(
            work / "indexes" / "pypi", files=files, big_files=big_files, big_mb=big_mb
        )
        (work / "torchenv.toml").write_text(SPEC + f'{BULK} = "*"\n')
        run(*envlock, "lock")
        venv = work / "venv"
        run(*envlock, "sync", "--venv", venv, "--link-mode", "hardlink", "--no-check-imports")
        # the served wheel has done its work: free its disk (uv's cache holds the files)
        shutil.rmtree(work / "indexes" / "pypi" / BULK / "files")
        site = next((venv / "lib").glob("python3*/site-packages"))
        paths, total = hashed_files(site)
        listing = b"\0".join(os.fsencode(p) for p in paths) + b"\0"
        xargs = shutil.which("xargs") or "/usr/bin/xargs"
        openssl = shutil.which("openssl") or "/usr/bin/openssl"
        cases: dict[str, tuple[list[str], bytes]] = {
            "cat (read only)": ([xargs, "-0", "cat"], listing),
            "sha256sum (read + hash)": ([xargs, "-0", "sha256sum"], listing),
            "openssl dgst -sha256 (read + hash)": (
                [xargs, "-0", openssl, "dgst", "-sha256"],
                listing,
            ),
            "envlock verify --deep": ([*envlock, "verify", "--venv", str(venv), "--deep"], b""),
            "envlock verify (no --deep)": ([*envlock, "verify", "--venv", str(venv)], b""),
        }
        floor = measure([shutil.which("true") or "/bin/true"], env=env, cwd=work).rss_kib
        for cmd, feed in cases.values():  # warm the page cache and byte-code, once each
            measure(cmd, env=env, cwd=work, stdin=feed)
        samples: dict[str, list[Sample]] = {name: [] for name in cases}
        names = list(cases)
        for i in range(rounds):
            order = names[i % len(names) :] + names[: i % len(names)]
            for name in order if i % 2 == 0 else reversed(order):
                cmd, feed = cases[name]
                samples[name].append(measure(cmd, env=env, cwd=work, stdin=feed))
        return Result(
            files=len(paths),
            mb=total / 1e6,
            medians={n: statistics.median(s.wall for s in v) for n, v in samples.items()},
            rss={n: max(s.rss_kib for s in v) for n, v in samples.items()},
            floor_kib=floor,
        )
    finally:
        served.close()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    as_installed()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--files", type=int, default=20000, help="small files in torchbulk")
    parser.add_argument("--big-files", type=int, default=3, help="big .so files in torchbulk")
    parser.add_argument("--big-mb", type=int, default=1536, help="MB of .so files in all")
    parser.add_argument(
        "--small-factor", type=int, default=4, help="the second venv: files and MB / this"
    )
    args = parser.parse_args()
    began = time.perf_counter()
    immutable_wheels()
    sizes = [(args.files, args.big_mb)]
    if args.small_factor > 1:
        sizes.insert(0, (args.files // args.small_factor, args.big_mb // args.small_factor))
    results = [
        bench_size(files=n, big_files=args.big_files, big_mb=mb, rounds=args.rounds)
        for n, mb in sizes
    ]
    print(f"{args.rounds} rounds, medians; warm page cache (each command run once first)")
    print("\n| venv | case | median s | MB/s | vs sha256sum | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for result in results:
        venv = f"{result.files} files, {result.mb:.0f} MB"
        ref = result.medians["sha256sum (read + hash)"]
        fixed = result.medians["envlock verify (no --deep)"]
        for name, median in result.medians.items():
            rate = f"{result.mb / median:.0f}" if "no --deep" not in name else ""
            rss = result.rss[name] / 1024
            print(f"| {venv} | {name} | {median:.3f} | {rate} | {median / ref:.2f}x | {rss:.0f} |")
        deep = result.medians["envlock verify --deep"]
        print(
            f"| {venv} | --deep minus the fixed cost | {deep - fixed:.3f} | "
            f"{result.mb / max(deep - fixed, 1e-9):.0f} | {(deep - fixed) / ref:.2f}x | |"
        )
    floors = ", ".join(f"{r.floor_kib / 1024:.1f}" for r in results)
    print(f"\npeak RSS of `true` through the launcher (its floor): {floors} MB")
    print(f"whole script: {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
