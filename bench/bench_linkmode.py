"""Benchmark the install link mode: uv's hardlink default vs copying (envlock's safe mode).

    python bench/bench_linkmode.py                  # 5 rounds, 20,000-file synthetic wheel
    python bench/bench_linkmode.py --rounds 9 --files 0   # only the tiny fixture wheels

Hermetic: the lock comes from the test suite's fixture indexes (tiny real wheels on 127.0.0.1)
plus one synthetic wheel, `torchbulk`, built here with --files files of 2 KB in a torch-like tree
(include/ATen/ops, _inductor, ...; a real torch venv holds ~23,600 files) and added to the fixture
PyPI's served directory before locking, so the per-file cost of a copy is visible. Wheels are
served with PyPI's immutable Cache-Control (the fixture server sends none, so uv would
re-fetch every wheel on each sync and measure the server, not linking). Each round
builds a fresh venv per case, cases alternating, warm uv cache; figures are medians:
  - `uv venv` + `uv pip sync --link-mode hardlink` (uv's default on Linux), then `copy`;
  - `envlock sync --venv NEW` (its default mode) and, once sync has the option,
    `envlock sync --venv NEW --link-mode hardlink`.
Disk: `du -sk VENV` alone, and what the venv adds beyond uv's cache (`du -sk CACHE VENV`, which
counts a hardlinked file once): hardlinks share the cache's blocks, copies do not.
Not a test: medians on a noisy machine.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import hashlib
import importlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from uv import find_uv_bin

from _hermetic import SPEC, hermetic
from _installed import as_installed

BULK, VERSION = "torchbulk", "1.0"
AREAS = ("include/ATen/ops", "include/c10/util", "_inductor/codegen", "distributed", "testing")
FICLONE = 0x40049409  # linux/fs.h


def _record(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def serve_bulk_wheel(pypi_root: Path, files: int) -> None:
    """Write torchbulk-1.0-py3-none-any.whl and its PEP 503 page into the served fixture PyPI."""
    info = f"{BULK}-{VERSION}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {BULK}\nVersion: {VERSION}\n".encode()
    outdir = pypi_root / BULK / "files"
    outdir.mkdir(parents=True)
    wheel = outdir / f"{BULK}-{VERSION}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:

        def add(name: str, data: bytes) -> None:
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
            record.append(_record(name, data))

        add(f"{BULK}/__init__.py", b"")
        for i in range(files):
            area = AREAS[i % len(AREAS)]
            suffix = ".h" if area.startswith("include") else ".py"
            name = f"{BULK}/{area}/d{i // 500:03d}/f{i:06d}{suffix}"
            add(name, (f"# {name}\n".encode() * 80)[:2048])
        add(f"{info}/METADATA", metadata)
        add(f"{info}/WHEEL", b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "\n".join([*record, f"{info}/RECORD,,"]) + "\n")
    (outdir / f"{wheel.name}.metadata").write_bytes(metadata)
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    meta = hashlib.sha256(metadata).hexdigest()
    (pypi_root / BULK / "index.html").write_text(
        f'<html><body><a href="/simple/{BULK}/files/{wheel.name}#sha256={sha}" '
        f'data-dist-info-metadata="sha256={meta}" data-core-metadata="sha256={meta}">'
        f"{wheel.name}</a></body></html>\n"
    )


def immutable_wheels() -> None:
    """Send PyPI's `Cache-Control: max-age=365000000, immutable, public` with wheels. The fixture
    server sends no caching headers, so every "warm" uv sync re-fetches each wheel (~1 s here)."""
    handler = importlib.import_module("tests.support.indexes")._Handler  # after _hermetic
    end_headers = handler.end_headers

    def patched(self: BaseHTTPRequestHandler) -> None:
        if self.path.endswith(".whl"):
            self.send_header("Cache-Control", "max-age=365000000, immutable, public")
        end_headers(self)

    handler.end_headers = patched


def reflink_works(src_dir: Path, dst_dir: Path) -> bool:
    """Whether FICLONE clones a file from src_dir into dst_dir (what --link-mode auto asks)."""
    src, dst = src_dir / ".reflink-probe", dst_dir / ".reflink-probe"
    src.write_bytes(b"probe")
    try:
        with src.open("rb") as a, dst.open("wb") as b:
            fcntl.ioctl(b.fileno(), FICLONE, a.fileno())
        return True
    except OSError:  # EOPNOTSUPP (ext4), EXDEV (another filesystem), ...
        return False
    finally:
        src.unlink()
        dst.unlink(missing_ok=True)


def main() -> None:
    as_installed()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--files", type=int, default=20000, help="files in torchbulk; 0: none")
    args = parser.parse_args()
    began = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="envlock-bench-linkmode-"))
    immutable_wheels()
    served, env = hermetic(work)
    env["ENVLOCK_NVIDIA_SMI"] = str(work / "no-nvidia-smi")
    envlock = [sys.executable, "-m", "envlock"]
    uv, du = find_uv_bin(), shutil.which("du") or "/usr/bin/du"
    cache = work / "cache" / "uv"

    def run(*cmd: str | Path) -> str:
        done = subprocess.run(cmd, check=False, cwd=work, env=env, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"{' '.join(map(str, cmd))}: exit {done.returncode}\n{done.stderr}")
        return done.stdout

    try:
        spec = SPEC
        if args.files:
            serve_bulk_wheel(work / "indexes" / "pypi", args.files)
            spec += f'{BULK} = "*"\n'
        (work / "torchenv.toml").write_text(spec)
        run(*envlock, "lock")
        reqs = work / "requirements.txt"
        run(*envlock, "export", "requirements", "-o", reqs)
        has_option = "--link-mode" in run(*envlock, "sync", "--help")

        def uv_sync(mode: str):
            def case(venv: Path) -> None:
                run(uv, "venv", "--no-config", "-q", "--python", sys.executable, venv)
                python = venv / "bin" / "python"
                flags = ["--require-hashes", "--cache-dir", cache, "--link-mode", mode]
                run(uv, "pip", "sync", "--no-config", "-q", "--python", python, *flags, reqs)

            return case

        def envlock_sync(*extra: str):
            return lambda venv: run(*envlock, "sync", "--venv", venv, *extra)

        cases = {
            "uv venv + uv pip sync --link-mode hardlink": uv_sync("hardlink"),
            "uv venv + uv pip sync --link-mode copy": uv_sync("copy"),
            "envlock sync --venv NEW (default)": envlock_sync(),
        }
        if has_option:
            cases["envlock sync --venv NEW --link-mode hardlink"] = envlock_sync(
                "--link-mode", "hardlink"
            )
        disk: dict[str, tuple[int, int, int]] = {}
        for j, (name, case) in enumerate(cases.items()):  # warm the cache; measure disk once
            venv = work / f"warm{j}"
            case(venv)
            alone = int(run(du, "-sk", venv).split()[0])
            beyond = int(run(du, "-sk", cache, venv).splitlines()[-1].split()[0])
            files = sum(len(f) for _, _, f in os.walk(venv))
            disk[name] = (alone, beyond, files)
            shutil.rmtree(venv)
        times: dict[str, list[float]] = {name: [] for name in cases}
        names = list(cases)
        for i in range(args.rounds):
            order = names[i % len(names) :] + names[: i % len(names)]
            for name in order if i % 2 == 0 else reversed(order):
                venv = work / f"r{i}-{names.index(name)}"
                start = time.perf_counter()
                cases[name](venv)
                times[name].append(time.perf_counter() - start)
                shutil.rmtree(venv)
        base = statistics.median(times[names[0]])
        reflink = reflink_works(cache, work)
        version = run(uv, "--version").strip()
        print(f"{args.files} extra files (torchbulk), {args.rounds} rounds, medians; {version}")
        print(f"FICLONE from the uv cache to the venv's parent works: {reflink}")
        if not has_option:
            print("envlock sync has no --link-mode yet: its row is whatever it does by default")
        print("\n| case | median s | min-max s | vs uv hardlink | files", end="")
        print(" | du KiB | beyond cache KiB |")
        print("|---|---|---|---|---|---|---|")
        for name, values in times.items():
            median = statistics.median(values)
            alone, beyond, files = disk[name]
            spread = f"{min(values):.2f}-{max(values):.2f}"
            row = f"{median:.3f} | {spread} | {median / base:.2f}x | {files} | {alone} | {beyond}"
            print(f"| {name} | {row} |")
        print(f"\nwhole script: {time.perf_counter() - began:.1f} s")
    finally:
        served.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
