"""A synthetic PyPI and download.pytorch.org/whl/<variant>/ of real size, served on 127.0.0.1
with per-request latency and a bandwidth limit, for the scaling benchmarks.

    python bench/bigindex.py --serve --projects 300 --latency-ms 30
    python bench/bigindex.py --serve --projects 1000 --variants cu126,cpu --bandwidth 20M

In code::

    with BigIndex(projects=300, latency_ms=30).start() as index:
        env["ENVLOCK_PYPI_INDEX_URL"] = index.pypi_url        # .../simple
        env["ENVLOCK_PYTORCH_INDEX_URL"] = index.pytorch_url  # .../whl (envlock adds /cu126)
        index.root(300)  # "root-300": locking it pulls in pkg-0 .. pkg-299

What is served (everything deterministic for a seed):

- PyPI (``pypi_url``): PEP 503 HTML (``data-requires-python``, ``data-dist-info-metadata`` and
  ``data-core-metadata``, ``#sha256=`` fragments, ``data-yanked``) or PEP 691 JSON (api 1.1, with
  sizes and upload times) when Accept asks for it, like pypi.org. Files live on a third server
  (``files_url``, like files.pythonhosted.org) under /packages/aa/bb/<hash>/<file>, each with its
  PEP 658 ``.metadata``. Caching headers as PyPI sends them: pages ``max-age=600``, files
  ``immutable``; ETags and 304s.
- ``projects`` synthetic projects pkg-0 .. pkg-(N-1): 3 to 80 versions each (a sdist and a
  py3-none-any wheel for every version; a fifth of the projects are "compiled", with 30
  cp3X wheels per recent version), so a page lists tens to hundreds of files. pkg-i depends on
  a few pkg-j with j < i (low numbers are the popular base libraries), with lower and upper
  bounds, exclusions, markers and test extras that always admit one known solution. root-K
  (for K in ``roots``) depends on every pkg-i, i < K, that no other pkg-j, j < K, needs: locking
  it pulls in the K packages pkg-0 .. pkg-(K-1), give or take one uv resolves otherwise.
- torch's own dependencies under their real names (filelock, sympy, numpy, pillow, triton, the
  nvidia-*-cu1X runtime wheels, ...), and PyPI's torch, torchvision and torchaudio.
- The PyTorch index (``pytorch_url``/<variant>/): torch, torchvision and torchaudio for every
  release in envlock's channel data (channels/releases.toml) that lists the variant, with the
  variant's local label (2.6.0+cu126), CPython tags from the release's Python list plus the
  free-threaded ones, manylinux_2_28 x86_64/aarch64 and win_amd64 (and unlabelled macOS wheels
  on cpu), padded with nightly-style pre-releases (2.16.0.devYYYYMMDD+cu126, which no ``==2.6.*``
  selects) to ``torch_files`` files on the torch page (6,000 by default: ~2.8 MB of HTML), plus
  mirrors of torch's dependencies, files beside the project folders as on download.pytorch.org.
  HTML only; ETag and Last-Modified, no Cache-Control (S3 behind CloudFront); 403 for a missing
  key. torch's wheels have torch/version.py with ``cuda`` like the fixture's.

Every listed file is a real, installable, tiny wheel (or sdist) whose sha256 is the one listed:
bytes are generated from the (project, version, tag) and regenerated on demand, so only the
hashes stay in memory. ``start()`` precomputes every hash (~3 s for 300 projects and 46,000
files, ~7 s for 1,000 projects and 100,000 files on this machine); ``precompute=False`` hashes a
project when its page is first asked for.

Latency is a sleep before every response (HEAD, 304 and Range requests too); bandwidth is a
per-response limit on body bytes. Both can be changed while serving (``index.latency_ms = 50``).
HTTP/1.1 keep-alive with TCP_NODELAY (without it every kept-alive response stalls ~40 ms on
the client's delayed ACK); pages are sent uncompressed (pypi.org gzips them), which matters
only under a bandwidth limit.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import functools
import gzip
import hashlib
import html
import io
import json
import random
import re
import socket
import struct
import sys
import tarfile
import threading
import time
import tomllib
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import quote, unquote, urlsplit

from packaging.tags import parse_tag
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.indexes import byte_range  # noqa: E402 - the fixture server's Range reading

RELEASES = ROOT / "channels" / "releases.toml"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
LINUX_X86 = 'platform_system == "Linux" and platform_machine == "x86_64"'
DEFAULT_ROOTS = (10, 30, 100, 300, 1000, 3000)
Role = Literal["pypi", "files", "pytorch"]

# --------------------------------------------------------------------------------------
# artifacts: tiny real wheels and sdists, deterministic bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    """One version of one project, as an index lists it."""

    name: str  # canonical
    version: str
    requires_dist: tuple[str, ...] = ()
    requires_python: str | None = None
    extras: tuple[str, ...] = ()
    wheel_tags: tuple[str, ...] = ("py3-none-any",)
    sdist: bool = True
    upload_time: datetime | None = None
    yanked: bool = False
    cuda: str | None = None  # torch only: torch.version.cuda

    @property
    def module(self) -> str:
        return self.name.replace("-", "_").replace(".", "_")

    def wheel_filename(self, tag: str) -> str:
        return f"{self.module}-{self.version}-{tag}.whl"

    def sdist_filename(self) -> str:
        return f"{self.module}-{self.version}.tar.gz"


@functools.cache
def _metadata(release: Release) -> bytes:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {release.name}",
        f"Version: {release.version}",
        f"Summary: {release.name}, a synthetic project of envlock's benchmark index",
    ]
    if release.requires_python:
        lines.append(f"Requires-Python: {release.requires_python}")
    lines += [f"Provides-Extra: {extra}" for extra in release.extras]
    lines += [f"Requires-Dist: {req}" for req in release.requires_dist]
    return ("\n".join(lines) + "\n").encode()


@functools.cache
def _expanded(tag: str) -> tuple[str, ...]:
    return tuple(sorted(str(t) for t in parse_tag(tag)))


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


_DOS_DATE = (1 << 5) | 1  # 1980-01-01, time 00:00:00


def _zip(members: Sequence[tuple[str, bytes]]) -> bytes:
    """A deflated zip archive with fixed dates and 0644 files: deterministic, and ~10x faster
    than zipfile for archives this small."""
    out = bytearray()
    central = bytearray()
    for name, data in members:
        encoded = name.encode()
        crc = zlib.crc32(data)
        deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
        packed = deflater.compress(data) + deflater.flush()
        offset = len(out)
        out += struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            20,
            0,
            8,
            0,
            _DOS_DATE,
            crc,
            len(packed),
            len(data),
            len(encoded),
            0,
        )
        out += encoded + packed
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            0x0314,
            20,
            0,
            8,
            0,
            _DOS_DATE,
            crc,
            len(packed),
            len(data),
            len(encoded),
            0,
            0,
            0,
            0,
            0o100644 << 16,
            offset,
        )
        central += encoded
    start = len(out)
    count = len(members)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), start, 0)
    return bytes(out)


def _wheel(release: Release, tag: str) -> bytes:
    info = f"{release.module}-{release.version}.dist-info"
    init = f'__version__ = "{release.version}"\n'
    files: dict[str, bytes] = {}
    if release.name == "torch":  # like the fixture's torch: torch.version.cuda
        init += "from torch import version\n"
        files["torch/version.py"] = f"cuda = {release.cuda!r}\n".encode()
    files[f"{release.module}/__init__.py"] = init.encode()
    files[f"{info}/METADATA"] = _metadata(release)
    purelib = "true" if tag.endswith("-none-any") else "false"
    files[f"{info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: envlock-bigindex\nRoot-Is-Purelib: {purelib}\n"
        + "".join(f"Tag: {t}\n" for t in _expanded(tag))
    ).encode()
    record = [_record_line(path, data) for path, data in files.items()]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    return _zip(list(files.items()))


def _sdist(release: Release) -> bytes:
    root = f"{release.module}-{release.version}"
    members = {
        f"{root}/PKG-INFO": _metadata(release),
        f"{root}/pyproject.toml": (
            '[build-system]\nrequires = ["flit_core>=3.4"]\nbuild-backend = "flit_core.buildapi"\n'
            f'\n[project]\nname = "{release.name}"\nversion = "{release.version}"\n'
            'description = "synthetic"\n'
        ).encode(),
        f"{root}/{release.module}/__init__.py": f'__version__ = "{release.version}"\n'.encode(),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in members.items():
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            entry.mode = 0o644
            archive.addfile(entry, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), compresslevel=6, mtime=0)


@functools.lru_cache(maxsize=4096)
def artifact_bytes(release: Release, tag: str | None) -> bytes:
    """The file's bytes: the wheel for ``tag``, or the sdist for None."""
    return _sdist(release) if tag is None else _wheel(release, tag)


@dataclass(frozen=True, slots=True)
class _File:
    filename: str
    path: str  # URL path on its server, not percent-encoded
    sha256: str
    size: int
    release: Release
    tag: str | None  # None: the sdist

    @property
    def metadata_sha256(self) -> str | None:
        return None if self.tag is None else hashlib.sha256(_metadata(self.release)).hexdigest()


# --------------------------------------------------------------------------------------
# the catalog: what each index lists


def _stamp(year: int, month: int = 1, day: int = 1) -> datetime:
    return datetime(year, month, day, 12, tzinfo=UTC)


def _spread(count: int, first: datetime, last: datetime, rng: random.Random) -> list[datetime]:
    """``count`` ascending upload times between two dates, jittered."""
    if count == 1:
        return [last]
    span = (last - first).total_seconds()
    times = []
    for k in range(count):
        jitter = rng.uniform(-0.3, 0.3) * span / count
        offset = min(span, max(0.0, span * k / (count - 1) + jitter))
        times.append(first + timedelta(seconds=offset))
    return sorted(times)


_PLATFORMS = (
    "manylinux_2_17_x86_64.manylinux2014_x86_64",
    "manylinux_2_17_aarch64.manylinux2014_aarch64",
    "musllinux_1_2_x86_64",
    "macosx_10_9_x86_64",
    "macosx_11_0_arm64",
    "win_amd64",
)


def _compiled_tags(uploaded: datetime, abi3: bool = False) -> tuple[str, ...]:
    """30 binary wheels (5 CPython minors of the upload's era x 6 platforms)."""
    newest = max(8, min(14, 7 + uploaded.year - 2018))
    if abi3:
        return tuple(f"cp{newest - 4}-abi3-{p}" for p in _PLATFORMS)
    return tuple(f"cp3{m}-cp3{m}-{p}" for m in range(newest - 4, newest + 1) for p in _PLATFORMS)


def _requires_python(fraction: float) -> str:
    if fraction < 0.3:
        return ">=3.6"
    if fraction < 0.7:
        return ">=3.8"
    return ">=3.9"


def _major(version: str) -> int:
    return int(version.split(".", 1)[0])


def _version_walk(rng: random.Random, count: int) -> list[str]:
    major, minor, patch = rng.choice(((0, 1, 0), (1, 0, 0), (0, 9, 0), (2, 0, 0), (3, 1, 0)))
    versions = []
    for _ in range(count):
        versions.append(f"{major}.{minor}.{patch}")
        roll = rng.random()
        if roll < 0.06:
            major, minor, patch = major + 1, 0, 0
        elif roll < 0.35:
            minor, patch = minor + 1, 0
        else:
            patch += 1
    return versions


@dataclass(slots=True)
class _Synthetic:
    """pkg-i while the catalog is generated: its versions, the one the known solution picks,
    the packages its chosen version needs on linux/3.11."""

    index: int
    versions: list[str]
    target: int
    capped: bool  # every dependent excludes the newest version
    needs: list[int] = field(default_factory=list)


def _synthetic_name(i: int) -> str:
    return f"pkg-{i}"


def _dependency(rng: random.Random, dep: _Synthetic, fraction: float, marker: str) -> str:
    """A requirement on ``dep`` that always admits ``dep``'s target version."""
    target = dep.versions[dep.target]
    parts = []
    if rng.random() < 0.8:
        floor = int(dep.target * fraction * rng.random())
        parts.append(f">={dep.versions[floor]}")
    if dep.capped:
        parts.append(f"<{dep.versions[-1]}")
    elif rng.random() < 0.2:
        parts.append(f"<{_major(target) + 1}")
    if rng.random() < 0.05 and len(dep.versions) > 2:
        other = rng.randrange(len(dep.versions))
        if other != dep.target:
            parts.append(f"!={dep.versions[other]}")
    return f"{_synthetic_name(dep.index)}{','.join(parts)}{marker}"


def _synthetic_catalog(
    count: int, rng: random.Random
) -> tuple[list[list[Release]], list[_Synthetic]]:
    packages: list[_Synthetic] = []
    catalog: list[list[Release]] = []
    for i in range(count):
        n = max(3, min(80, int(rng.lognormvariate(2.6, 0.6))))
        versions = _version_walk(rng, n)
        needs_312 = rng.random() < 0.04  # the newest needs Python 3.12: 3.11 takes the one before
        capped = not needs_312 and rng.random() < 0.04
        target = n - 2 if needs_312 or capped else n - 1
        package = _Synthetic(i, versions, target, capped)
        roll = rng.random()
        wanted = 0 if roll < 0.25 else rng.randint(1, 2) if roll < 0.6 else rng.randint(3, 5)
        if roll >= 0.9:
            wanted = rng.randint(6, 12)
        chosen: list[int] = []
        for _ in range(wanted * 3):
            if len(chosen) >= min(wanted, i):
                break
            j = int(i * rng.random() ** 1.7)
            if j not in chosen:
                chosen.append(j)
        # (dependency, marker, first version index that has it); the newest two have them all
        deps = []
        for j in chosen:
            roll = rng.random()
            marker = (
                ""
                if roll < 0.85
                else '; python_version < "3.10"'
                if roll < 0.93
                else '; sys_platform == "win32"'
            )
            deps.append((packages[j], marker, rng.randint(0, max(0, n - 3))))
            if not marker:
                package.needs.append(j)
        extras: tuple[str, ...] = ()
        tests: list[str] = []
        if count > 1 and rng.random() < 0.15:
            extras = ("test",)
            tests = [
                f'{_synthetic_name(rng.randrange(count))}; extra == "test"'
                for _ in range(rng.randint(1, 2))
            ]
        compiled = rng.random() < 0.2
        uploads = _spread(n, _stamp(2015 + i % 5), _stamp(2026, 9, 30), rng)
        releases = []
        for k, version in enumerate(versions):
            fraction = k / max(1, n - 1)
            requires = [
                _dependency(rng, dep, fraction, marker) for dep, marker, since in deps if k >= since
            ]
            python = None if i % 10 == 7 else _requires_python(fraction)
            if needs_312 and k == n - 1:
                python = ">=3.12"
            tags: tuple[str, ...] = ("py3-none-any",)
            if compiled and k >= n - 10:
                tags = _compiled_tags(uploads[k]) + tags
            releases.append(
                Release(
                    name=_synthetic_name(i),
                    version=version,
                    requires_dist=tuple(requires + tests),
                    requires_python=python,
                    extras=extras,
                    wheel_tags=tags,
                    upload_time=uploads[k],
                    yanked=k != target and k < n - 2 and rng.random() < 0.01,
                )
            )
        packages.append(package)
        catalog.append(releases)
    return catalog, packages


def _roots(packages: Sequence[_Synthetic], sizes: Iterable[int]) -> list[Release]:
    """root-K needs every pkg-i (i < K) that no pkg-j (j < K) needs: their closure is pkg-0..K-1."""
    roots = []
    for size in sorted(set(sizes)):
        needed = {j for p in packages[:size] for j in p.needs}
        heads = [p for p in packages[:size] if p.index not in needed]
        requires = tuple(f"{_synthetic_name(p.index)}>={p.versions[p.target // 2]}" for p in heads)
        roots.append(
            Release(
                name=f"root-{size}",
                version="1.0.0",
                requires_dist=requires,
                requires_python=">=3.9",
                upload_time=_stamp(2026, 10),
            )
        )
    return roots


# torch's stack under real names --------------------------------------------------------

_NVIDIA = (
    "cuda-nvrtc",
    "cuda-runtime",
    "cuda-cupti",
    "cudnn",
    "cublas",
    "cufft",
    "curand",
    "cusolver",
    "cusparse",
    "cusparselt",
    "nccl",
    "nvtx",
    "nvjitlink",
)
_NVIDIA_NEEDS = {
    "cudnn": ("cublas",),
    "cusolver": ("cublas", "cusparse", "nvjitlink"),
    "cusparse": ("nvjitlink",),
}
_PATCHES = {"2.0": 2, "2.1": 3, "2.2": 3, "2.3": 2, "2.4": 2, "2.5": 2, "2.7": 2, "2.9": 2}
_PATCHES["2.14"] = 2


def _cuda(label: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"cu(\d\d)(\d+)", label)
    return (int(match[1]), int(match[2])) if match else None


def _nvidia_version(lib: str, major: int, minor: int) -> str:
    if lib == "cudnn":
        return f"8.{minor}.0.96" if major == 11 else f"9.{minor}.1.17"
    if lib == "cusparselt":
        return f"0.{minor}.3"
    if lib == "nccl":
        return f"2.{15 + minor}.5"
    return f"{major}.{minor}.{70 + _NVIDIA.index(lib)}"


def _nvidia_requirements(label: str) -> list[str]:
    cuda = _cuda(label)
    if cuda is None:
        return []
    major, minor = cuda
    return [
        f"nvidia-{lib}-cu{major}=={_nvidia_version(lib, major, minor)}; {LINUX_X86}"
        for lib in _NVIDIA
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class _TorchRelease:
    minor: str  # "2.6"
    python: tuple[str, ...]
    variants: tuple[str, ...]
    torchvision: str
    torchaudio: str
    triton: str
    pypi_label: str  # what PyPI's linux-x86_64 torch is built for
    released: datetime

    def patches(self) -> list[str]:
        return [f"{self.minor}.{p}" for p in range(_PATCHES.get(self.minor, 1))]


def _torch_releases() -> list[_TorchRelease]:
    data = tomllib.loads(RELEASES.read_text(encoding="utf-8"))
    releases = []
    for row in data["release"]:
        released = row["released"]
        releases.append(
            _TorchRelease(
                minor=row["torch"],
                python=tuple(row["python"]),
                variants=tuple(row["variants"]),
                torchvision=row["torchvision"],
                torchaudio=row["torchaudio"],
                triton=row["triton"],
                pypi_label=row.get("pypi", {}).get("linux-x86_64", "cpu"),
                released=datetime(released.year, released.month, released.day, tzinfo=UTC),
            )
        )
    return releases


def _newer(minor: str, than: str) -> bool:
    return tuple(map(int, minor.split("."))) >= tuple(map(int, than.split(".")))


def _torch_requirements(release: _TorchRelease, label: str) -> tuple[str, ...]:
    sympy = "sympy==1.13.1" if not _newer(release.minor, "2.7") else "sympy>=1.13.3"
    base = [
        "filelock",
        "typing-extensions>=4.10.0",
        'setuptools; python_version >= "3.12"',
        f'{sympy}; python_version >= "3.9"',
        "networkx",
        "jinja2",
        "fsspec",
    ]
    if label.startswith("cu"):
        base += [*_nvidia_requirements(label), f"triton=={release.triton}; {LINUX_X86}"]
    elif label.startswith("rocm"):
        base.append(f"pytorch-triton-rocm=={release.triton}; {LINUX_X86}")
    elif label == "xpu":
        base.append(f"pytorch-triton-xpu=={release.triton}; {LINUX_X86}")
    return tuple(base)


def _cp_tags(python: Iterable[str], platforms: Iterable[str], *, free_threaded: bool) -> list[str]:
    tags = []
    for platform in platforms:
        for minor in python:
            digits = minor.replace(".", "")
            tags.append(f"cp{digits}-cp{digits}-{platform}")
            if free_threaded and minor in ("3.13", "3.14"):
                tags.append(f"cp{digits}-cp{digits}t-{platform}")
    return tags


def _pure(
    name: str,
    versions: Sequence[str],
    first: datetime,
    rng: random.Random,
    *,
    requires: Sequence[str] = (),
    python: str | None = ">=3.8",
    compiled_recent: int = 0,
) -> list[Release]:
    uploads = _spread(len(versions), first, _stamp(2026, 9), rng)
    out = []
    for k, version in enumerate(versions):
        tags: tuple[str, ...] = ("py3-none-any",)
        if compiled_recent and k >= len(versions) - compiled_recent:
            tags = _compiled_tags(uploads[k]) + tags
        out.append(
            Release(
                name=name,
                version=version,
                requires_dist=tuple(requires),
                requires_python=python,
                wheel_tags=tags,
                upload_time=uploads[k],
            )
        )
    return out


def _grid(majors: Iterable[tuple[int, int, int]], patches: int) -> list[str]:
    """(major, first minor, last minor) -> X.Y.0 .. X.Y.(patches-1) for each minor."""
    return [
        f"{major}.{minor}.{patch}"
        for major, low, high in majors
        for minor in range(low, high + 1)
        for patch in range(patches)
    ]


def _stack(releases: Sequence[_TorchRelease], rng: random.Random) -> list[list[Release]]:
    """PyPI's side of a torch environment, under the real names."""
    projects = [
        _pure("filelock", _grid([(3, 0, 20)], 2), _stamp(2018), rng),
        _pure("typing-extensions", _grid([(4, 0, 15)], 2), _stamp(2021), rng),
        _pure(
            "sympy",
            ["1.11", "1.12", "1.13.0", "1.13.1", "1.13.2", "1.13.3", "1.14.0"],
            _stamp(2022),
            rng,
            requires=["mpmath>=1.1.0,<1.4"],
        ),
        _pure("mpmath", ["1.1.0", "1.2.0", "1.2.1", "1.3.0"], _stamp(2018), rng),
        _pure("networkx", _grid([(2, 6, 8), (3, 0, 5)], 2), _stamp(2021), rng),
        _pure("jinja2", _grid([(3, 0, 1)], 6), _stamp(2021), rng, requires=["markupsafe>=2.0"]),
        _pure("markupsafe", _grid([(2, 0, 1), (3, 0, 0)], 3), _stamp(2021), rng, compiled_recent=9),
        _pure(
            "fsspec",
            [f"{y}.{m}.0" for y in range(2022, 2026) for m in range(1, 13, 2)],
            _stamp(2022),
            rng,
        ),
        _pure(
            "setuptools", _grid([(major, 0, 2) for major in range(60, 81)], 1), _stamp(2022), rng
        ),
        _pure(
            "numpy",
            _grid([(1, 21, 26), (2, 0, 3)], 4),
            _stamp(2021),
            rng,
            python=">=3.9",
            compiled_recent=40,
        ),
        _pure(
            "pillow",
            _grid([(9, 0, 5), (10, 0, 4), (11, 0, 3)], 2),
            _stamp(2022),
            rng,
            compiled_recent=30,
        ),
    ]
    tritons = sorted({r.triton for r in releases}, key=lambda v: tuple(map(int, v.split("."))))
    projects.append(
        [
            Release(
                name="triton",
                version=version,
                wheel_tags=tuple(
                    _cp_tags(
                        ("3.9", "3.10", "3.11", "3.12", "3.13"),
                        (
                            "manylinux_2_27_x86_64.manylinux_2_28_x86_64",
                            "manylinux_2_27_aarch64.manylinux_2_28_aarch64",
                        ),
                        free_threaded=False,
                    )
                ),
                sdist=False,
                upload_time=_stamp(2023, 3) + timedelta(days=60 * k),
            )
            for k, version in enumerate(tritons)
        ]
    )
    labels = {label for r in releases for label in (*r.variants, r.pypi_label)}
    by_major: dict[int, set[int]] = {}
    for label in labels:
        cuda = _cuda(label)
        if cuda is not None:
            by_major.setdefault(cuda[0], set()).add(cuda[1])
    for major, minors in sorted(by_major.items()):
        for lib in _NVIDIA:
            needs = tuple(f"nvidia-{n}-cu{major}" for n in _NVIDIA_NEEDS.get(lib, ()))
            projects.append(
                [
                    Release(
                        name=f"nvidia-{lib}-cu{major}",
                        version=_nvidia_version(lib, major, minor),
                        requires_dist=needs,
                        requires_python=">=3",
                        wheel_tags=(
                            "py3-none-manylinux2014_x86_64",
                            "py3-none-manylinux_2_27_aarch64",
                            "py3-none-win_amd64",
                        ),
                        sdist=False,
                        upload_time=_stamp(2022 + minor // 3, 1 + minor % 12),
                    )
                    for minor in sorted(minors)
                ]
            )
    # PyPI's own torch family: plain versions, built for the release's PyPI default.
    plain = ("manylinux_2_28_x86_64", "manylinux_2_28_aarch64", "macosx_11_0_arm64", "win_amd64")
    torch, vision, audio = [], [], []
    for release in releases:
        for k, version in enumerate(release.patches()):
            uploaded = release.released + timedelta(days=30 * k)
            tags = tuple(_cp_tags(release.python, plain, free_threaded=False))
            torch.append(
                Release(
                    name="torch",
                    version=version,
                    wheel_tags=tags,
                    sdist=False,
                    requires_dist=_torch_requirements(release, release.pypi_label),
                    requires_python=f">={release.python[0]}",
                    upload_time=uploaded,
                    cuda=_cuda_text(release.pypi_label),
                )
            )
            vision.append(
                Release(
                    name="torchvision",
                    version=f"{release.torchvision}.{k}",
                    wheel_tags=tags,
                    sdist=False,
                    upload_time=uploaded,
                    requires_dist=("numpy", f"torch=={version}", "pillow!=8.3.*,>=5.3.0"),
                )
            )
            if release.torchaudio == release.minor:
                audio.append(
                    Release(
                        name="torchaudio",
                        version=version,
                        wheel_tags=tags,
                        sdist=False,
                        upload_time=uploaded,
                        requires_dist=(f"torch=={version}",),
                    )
                )
    return [*projects, torch, vision, audio]


def _cuda_text(label: str) -> str | None:
    cuda = _cuda(label)
    return f"{cuda[0]}.{cuda[1]}" if cuda else None


def _variant_catalog(
    variant: str,
    releases: Sequence[_TorchRelease],
    stack: Mapping[str, Sequence[Release]],
    torch_files: int,
) -> list[list[Release]]:
    """download.pytorch.org/whl/<variant>/: the torch family with the variant's local label,
    padded with nightly-style pre-releases, and mirrors of torch's dependencies."""
    torch, vision, audio = [], [], []
    cpu = variant == "cpu"
    for release in releases:
        if variant not in release.variants:
            continue
        new = _newer(release.minor, "2.6")
        linux = ["manylinux_2_28_x86_64" if new else "linux_x86_64"]
        if cpu or _newer(release.minor, "2.7"):
            linux.append("manylinux_2_28_aarch64")
        platforms = linux + ([] if variant.startswith("rocm") else ["win_amd64"])
        tags = tuple(_cp_tags(release.python, platforms, free_threaded=new))
        mac = tuple(_cp_tags(release.python, ["macosx_11_0_arm64"], free_threaded=False))
        for k, version in enumerate(release.patches()):
            pairs = [(f"{version}+{variant}", tags)] + ([(version, mac)] if cpu else [])
            for full, wheel_tags in pairs:
                torch.append(
                    Release(
                        name="torch",
                        version=full,
                        wheel_tags=wheel_tags,
                        requires_dist=_torch_requirements(release, variant),
                        requires_python=f">={release.python[0]}",
                        cuda=_cuda_text(variant),
                        sdist=False,
                    )
                )
                local = full[len(version) :]
                vision.append(
                    Release(
                        name="torchvision",
                        version=f"{release.torchvision}.{k}{local}",
                        wheel_tags=wheel_tags,
                        sdist=False,
                        requires_dist=("numpy", f"torch=={version}", "pillow!=8.3.*,>=5.3.0"),
                    )
                )
                if release.torchaudio == release.minor:
                    audio.append(
                        Release(
                            name="torchaudio",
                            version=full,
                            wheel_tags=wheel_tags,
                            requires_dist=(f"torch=={version}",),
                            sdist=False,
                        )
                    )
    # Nightly-style builds of the next release pad the torch page to torch_files files.
    nightly = tuple(
        _cp_tags(
            ("3.10", "3.11", "3.12", "3.13", "3.14"),
            ["manylinux_2_28_x86_64", "manylinux_2_28_aarch64", "win_amd64"],
            free_threaded=True,
        )
    )
    day = datetime(2026, 11, 1, tzinfo=UTC)
    count = sum(len(r.wheel_tags) for r in torch)
    while count < torch_files:
        stamp = day.strftime("%Y%m%d")
        tags = nightly[: torch_files - count]
        torch.append(
            Release(
                name="torch",
                version=f"2.16.0.dev{stamp}+{variant}",
                wheel_tags=tags,
                sdist=False,
                requires_dist=_torch_requirements(releases[-1], variant),
                requires_python=">=3.10",
                cuda=_cuda_text(variant),
            )
        )
        if count < torch_files // 3:
            vision.append(
                Release(
                    name="torchvision",
                    version=f"0.31.0.dev{stamp}+{variant}",
                    wheel_tags=tags,
                    sdist=False,
                    requires_dist=(f"torch==2.16.0.dev{stamp}", "numpy", "pillow"),
                )
            )
        count += len(tags)
        day -= timedelta(days=1)
    projects = [p for p in (torch, vision, audio) if p]
    extra = ["pytorch-triton-rocm"] if variant.startswith("rocm") else []
    extra += ["pytorch-triton-xpu"] if variant == "xpu" else []
    for name in extra:
        projects.append(
            [
                Release(
                    name=name,
                    version=r.triton,
                    sdist=False,
                    wheel_tags=tuple(
                        _cp_tags(r.python, ["manylinux_2_28_x86_64"], free_threaded=False)
                    ),
                )
                for r in releases
                if variant in r.variants
            ]
        )
    cuda = _cuda(variant)
    for name, mirrored in stack.items():
        if name in ("torch", "torchvision", "torchaudio"):
            continue
        if name.startswith("nvidia-") and (cuda is None or not name.endswith(f"-cu{cuda[0]}")):
            continue
        keep = list(mirrored[-3:])
        projects.append([dataclasses.replace(r, sdist=False, upload_time=None) for r in keep])
    return projects


# --------------------------------------------------------------------------------------
# the indexes: pages rendered from the files


@dataclass(slots=True)
class _Project:
    name: str
    releases: list[Release]
    files: list[_File] | None = None
    pages: dict[tuple[str, bool], tuple[bytes, str]] = field(default_factory=dict)


def _files_of(project: _Project, url_dir: str | None) -> list[_File]:
    """Hash every file of a project. ``url_dir``: the folder beside the project folders
    (PyTorch); None: PyPI's /packages/aa/bb/<digest>/ per file."""
    files = []
    for release in project.releases:
        tags: list[str | None] = list(release.wheel_tags)
        if release.sdist:
            tags.append(None)
        for tag in tags:
            data = artifact_bytes.__wrapped__(release, tag)
            digest = hashlib.sha256(data).hexdigest()
            filename = release.sdist_filename() if tag is None else release.wheel_filename(tag)
            if url_dir is None:
                path = f"/packages/{digest[:2]}/{digest[2:4]}/{digest[4:]}/{filename}"
            else:
                path = f"{url_dir}/{filename}"
            files.append(_File(filename, path, digest, len(data), release, tag))
    files.sort(key=lambda f: f.filename)
    return files


def _upload(stamp: datetime | None) -> str | None:
    return None if stamp is None else stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _html_page(project: str, files: Sequence[_File], base: str, *, pypi: bool) -> bytes:
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "  <head>",
        '    <meta name="pypi:repository-version" content="1.1">' if pypi else "",
        f"    <title>Links for {html.escape(project)}</title>",
        "  </head>",
        "  <body>",
        f"    <h1>Links for {html.escape(project)}</h1>",
    ]
    for file in files:
        attrs = [f'href="{base}{quote(file.path)}#sha256={file.sha256}"']
        python = file.release.requires_python
        if python:
            attrs.append(f'data-requires-python="{html.escape(python)}"')
        metadata = file.metadata_sha256
        if metadata:
            attrs.append(f'data-dist-info-metadata="sha256={metadata}"')
            attrs.append(f'data-core-metadata="sha256={metadata}"')
        if file.release.yanked:
            attrs.append('data-yanked=""')
        lines.append(f"    <a {' '.join(attrs)}>{html.escape(file.filename)}</a><br />")
    lines += ["  </body>", "</html>", ""]
    return "\n".join(line for line in lines if line).encode()


def _json_page(project: str, files: Sequence[_File], base: str) -> bytes:
    versions = sorted({f.release.version for f in files})
    entries = []
    for file in files:
        metadata = file.metadata_sha256
        entries.append(
            {
                "filename": file.filename,
                "url": f"{base}{quote(file.path)}",
                "hashes": {"sha256": file.sha256},
                "requires-python": file.release.requires_python,
                "size": file.size,
                "upload-time": _upload(file.release.upload_time),
                "yanked": file.release.yanked,
                "core-metadata": {"sha256": metadata} if metadata else False,
                "data-dist-info-metadata": {"sha256": metadata} if metadata else False,
            }
        )
    payload = {
        "meta": {"api-version": "1.1"},
        "name": project,
        "versions": versions,
        "files": entries,
    }
    return json.dumps(payload).encode()


def _listing(names: Iterable[str], *, as_json: bool) -> bytes:
    names = sorted(names)
    if as_json:
        payload = {"meta": {"api-version": "1.1"}, "projects": [{"name": n} for n in names]}
        return json.dumps(payload).encode()
    anchors = "\n".join(f'    <a href="{n}/">{n}</a><br />' for n in names)
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n    <title>Simple index</title>\n  </head>\n"
        f"  <body>\n{anchors}\n  </body>\n</html>\n"
    ).encode()


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes
    headers: dict[str, str]


def _etag(body: bytes) -> str:
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def _wants_json(accept: str) -> bool:
    for part in accept.split(","):
        kind, _, params = part.strip().partition(";")
        if kind.strip() == JSON_TYPE:
            quality = re.search(r"q=([0-9.]+)", params)
            return quality is None or float(quality[1]) > 0
    return False


class _Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def add(self, key: str, amount: int = 1) -> None:
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + amount

    def take(self) -> dict[str, int]:
        with self.lock:
            counts, self.counts = self.counts, {}
        return counts


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real index (and uv's pool) expects
    timeout = 120  # an idle kept-alive connection is closed after this
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        return

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; with Nagle's algorithm on, the body's
        # last segment waits for the client's delayed ACK of the headers: ~40 ms per
        # kept-alive request, more than the latency being simulated. Real servers set this.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._respond(head=False)

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def _respond(self, *, head: bool) -> None:
        index = self.server.index
        delay = index.latency_ms / 1000
        if delay > 0:
            time.sleep(delay)
        answer = index.answer(self.server.role, self.path, self.headers.get("Accept", ""))
        counters = index._counts
        status, body, headers = answer.status, answer.body, dict(answer.headers)
        etag = headers.get("ETag")
        if status == 200 and etag and etag in self.headers.get("If-None-Match", ""):
            status, body = 304, b""
        elif status == 200 and "Accept-Ranges" in headers and self.headers.get("Range"):
            wanted = byte_range(self.headers["Range"].strip(), len(body))
            if wanted is not None:
                start, end = wanted
                headers["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
                status, body = 206, body[start : end + 1]
        counters.add(f"{self.server.role} {status}")
        counters.add(f"{self.server.role} bytes", len(body))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self._write(body, index.bandwidth)

    def _write(self, body: bytes, rate: float | None) -> None:
        """Send the body, no faster than ``rate`` bytes/s (each chunk waits for its time)."""
        if not rate:
            self.wfile.write(body)
            return
        start = time.perf_counter()
        chunk = 16384
        for offset in range(0, len(body), chunk):
            piece = body[offset : offset + chunk]
            due = (offset + len(piece)) / rate - (time.perf_counter() - start)
            if due > 0:
                time.sleep(due)
            self.wfile.write(piece)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # uv opens dozens of connections at once; 5 would drop SYNs
    index: BigIndex
    role: Role

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hung up mid-response is expected: no traceback."""


class BigIndex:
    """A synthetic PyPI (+ its files host) and PyTorch index on 127.0.0.1; see the module note.

    ``latency_ms``, ``bandwidth`` (body bytes per second per response; None: unlimited) can
    be changed while serving. ``take_counters()`` returns and resets the request counts."""

    def __init__(
        self,
        *,
        projects: int = 300,
        seed: int = 0,
        latency_ms: float = 0.0,
        bandwidth: float | None = None,
        variants: Sequence[str] = ("cu126", "cu124", "cpu"),
        torch_files: int = 6000,
        roots: Iterable[int] | None = None,
        precompute: bool = True,
    ) -> None:
        self.latency_ms = latency_ms
        self.bandwidth = bandwidth
        self.projects = projects
        self._counts = _Counters()
        self.generation_s = 0.0
        self._precompute = precompute
        self._lock = threading.Lock()
        self._servers: dict[Role, _Server] = {}
        self._threads: list[threading.Thread] = []
        self._started = format_datetime(datetime.now(UTC), usegmt=True)
        rng = random.Random(seed)  # noqa: S311 - a reproducible catalog, not a secret
        synthetic, self._packages = _synthetic_catalog(projects, rng)
        sizes = [k for k in (roots or DEFAULT_ROOTS) if 0 < k <= projects]
        if roots is None:
            sizes.append(projects)
        releases = _torch_releases()
        stack = {r[0].name: r for r in _stack(releases, rng)}
        self._roots = {r.name: r for r in _roots(self._packages, sizes)}
        pypi = [*synthetic, *stack.values(), *([r] for r in self._roots.values())]
        self._pypi = {r[0].name: _Project(r[0].name, r) for r in pypi}
        self._variants = {
            v: {
                r[0].name: _Project(r[0].name, r)
                for r in _variant_catalog(v, releases, stack, torch_files)
            }
            for v in variants
        }
        self._paths: dict[tuple[Role, str], _File] = {}

    # -- lifecycle

    def start(self) -> BigIndex:
        """Hash every file (unless precompute=False) and start serving."""
        began = time.perf_counter()
        if self._precompute:
            for project in self._pypi.values():
                self._ensure(project, None)
            for variant, projects in self._variants.items():
                for project in projects.values():
                    self._ensure(project, f"/whl/{variant}")
        self.generation_s = time.perf_counter() - began
        roles: tuple[Role, ...] = ("pypi", "files", "pytorch")
        for role in roles:
            server = _Server(("127.0.0.1", 0), _Handler)
            server.index = self
            server.role = role
            self._servers[role] = server
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def close(self) -> None:
        for server in self._servers.values():
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> BigIndex:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- what clients are pointed at

    def _base(self, role: Role) -> str:
        host, port = self._servers[role].server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def pypi_url(self) -> str:
        """The simple index (ENVLOCK_PYPI_INDEX_URL, uv's default index)."""
        return f"{self._base('pypi')}/simple"

    @property
    def files_url(self) -> str:
        return self._base("files")

    @property
    def pytorch_url(self) -> str:
        """The /whl root (ENVLOCK_PYTORCH_INDEX_URL); a variant's index is <this>/<variant>."""
        return f"{self._base('pytorch')}/whl"

    def variant_url(self, variant: str) -> str:
        return f"{self.pytorch_url}/{variant}"

    @property
    def variants(self) -> tuple[str, ...]:
        return tuple(self._variants)

    def roots(self) -> tuple[int, ...]:
        return tuple(sorted(int(n.split("-")[1]) for n in self._roots))

    def root(self, size: int) -> str:
        """The project whose lock pulls in pkg-0 .. pkg-(size-1)."""
        name = f"root-{size}"
        if name not in self._roots:
            raise KeyError(f"{name} is not served (roots: {self.roots()})")
        return name

    def file_count(self) -> dict[str, int]:
        """Files listed per index (hashing them first if that has not happened)."""
        counts = {"pypi": sum(len(self._ensure(p, None)) for p in self._pypi.values())}
        for variant, projects in self._variants.items():
            counts[variant] = sum(
                len(self._ensure(p, f"/whl/{variant}")) for p in projects.values()
            )
        for variant, projects in self._variants.items():
            counts[f"{variant} torch page"] = len(
                self._ensure(projects["torch"], f"/whl/{variant}")
            )
        return counts

    def take_counters(self) -> dict[str, int]:
        """Request counts since the last call: by server and status, bytes, pages, files."""
        return self._counts.take()

    # -- serving

    def _ensure(self, project: _Project, url_dir: str | None) -> list[_File]:
        files = project.files
        if files is None:
            with self._lock:
                if project.files is None:
                    project.files = _files_of(project, url_dir)
                    role: Role = "files" if url_dir is None else "pytorch"
                    for file in project.files:
                        self._paths[(role, file.path)] = file
                files = project.files
        return files

    def _page(self, project: _Project, url_dir: str | None, as_json: bool) -> tuple[bytes, str]:
        key = (url_dir or "", as_json)
        cached = project.pages.get(key)
        if cached is None:
            files = self._ensure(project, url_dir)
            if url_dir is None:
                base = self.files_url
                body = (
                    _json_page(project.name, files, base)
                    if as_json
                    else _html_page(project.name, files, base, pypi=True)
                )
            else:  # download.pytorch.org: root-relative links
                body = _html_page(project.name, files, "", pypi=False)
            cached = (body, JSON_TYPE if as_json else "text/html")
            project.pages[key] = cached
        return cached

    def answer(self, role: Role, target: str, accept: str) -> _Answer:
        """The response to a GET of ``target`` on one of the servers."""
        path = unquote(urlsplit(target).path)
        if role == "pypi":
            return self._pypi_answer(path, accept)
        if role == "files":
            return self._file_answer(role, path, pypi=True)
        return self._pytorch_answer(path)

    def _pypi_answer(self, path: str, accept: str) -> _Answer:
        as_json = _wants_json(accept)
        page_headers = {"Cache-Control": "max-age=600, public", "Vary": "Accept, Accept-Encoding"}
        if path == "/simple":
            return _Answer(301, b"", {"Location": "/simple/"})
        if path == "/simple/":
            body = _listing(self._pypi, as_json=as_json)
            kind = JSON_TYPE if as_json else "text/html"
            return _Answer(200, body, {**page_headers, "Content-Type": kind, "ETag": _etag(body)})
        parts = path.split("/")
        if len(parts) in (3, 4) and parts[1] == "simple" and parts[2]:
            name = canonicalize_name(parts[2])
            if len(parts) == 3 or parts[2] != name or parts[3]:
                return _Answer(301, b"", {"Location": f"/simple/{name}/"})
            project = self._pypi.get(name)
            if project is None:
                return _Answer(404, b"Not Found", {"Content-Type": "text/plain"})
            body, kind = self._page(project, None, as_json)
            self._counts.add("pypi pages")
            return _Answer(200, body, {**page_headers, "Content-Type": kind, "ETag": _etag(body)})
        return _Answer(404, b"Not Found", {"Content-Type": "text/plain"})

    def _pytorch_answer(self, path: str) -> _Answer:
        denied = _Answer(
            403, b"<Error><Code>AccessDenied</Code></Error>", {"Content-Type": "application/xml"}
        )
        parts = path.split("/")  # "", "whl", variant, name-or-file, [""]
        if len(parts) < 4 or parts[1] != "whl" or parts[2] not in self._variants:
            return denied
        variant = parts[2]
        projects = self._variants[variant]
        common = {"Content-Type": "text/html", "Last-Modified": self._started}
        if len(parts) == 4 and parts[3] == "":
            body = _listing(projects, as_json=False)
            return _Answer(200, body, {**common, "ETag": _etag(body)})
        if len(parts) == 5 and parts[4] == "":
            project = projects.get(parts[3])
            if project is None:
                return denied
            body, _ = self._page(project, f"/whl/{variant}", False)
            self._counts.add("pytorch pages")
            return _Answer(200, body, {**common, "ETag": _etag(body)})
        if len(parts) == 4:
            return self._file_answer("pytorch", path, pypi=False)
        return denied

    def _file_answer(self, role: Role, path: str, *, pypi: bool) -> _Answer:
        missing = _Answer(404 if pypi else 403, b"Not Found", {"Content-Type": "text/plain"})
        metadata = path.endswith(".metadata")
        file_path = path.removesuffix(".metadata")
        file = self._paths.get((role, file_path))
        if file is None:  # a URL from before this process hashed the project: hash it now
            filename = file_path.rsplit("/", 1)[-1]
            name = canonicalize_name(filename.split("-", 1)[0])
            if pypi:
                project = self._pypi.get(name)
                if project is not None:
                    self._ensure(project, None)
            else:
                variant = file_path.split("/")[2]
                project = self._variants.get(variant, {}).get(name)
                if project is not None:
                    self._ensure(project, f"/whl/{variant}")
            file = self._paths.get((role, file_path))
        if file is None or (metadata and file.tag is None):
            return missing
        if metadata:
            body = _metadata(file.release)
            self._counts.add(f"{role} metadata")
        else:
            body = artifact_bytes(file.release, file.tag)
            self._counts.add(f"{role} files")
        headers = {"Content-Type": "application/octet-stream", "ETag": f'"{file.sha256[:32]}"'}
        if pypi:
            headers["Cache-Control"] = "max-age=365000000, immutable, public"
        else:
            headers["Last-Modified"] = self._started
        if not metadata:
            headers["Accept-Ranges"] = "bytes"
        return _Answer(200, body, headers)


def _bandwidth(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)\s*([kKmMgG]?)", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a rate: {text!r} (e.g. 500k, 20M)")
    scale = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[match[2].lower()]
    return float(match[1]) * scale


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="serve until Ctrl-C")
    parser.add_argument("--projects", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--bandwidth", type=_bandwidth, help="bytes/s per response: 500k, 20M")
    parser.add_argument("--variants", default="cu126,cu124,cpu")
    parser.add_argument("--torch-files", type=int, default=6000)
    parser.add_argument("--lazy", action="store_true", help="hash a project on first request")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    index = BigIndex(
        projects=args.projects,
        seed=args.seed,
        latency_ms=args.latency_ms,
        bandwidth=args.bandwidth,
        variants=[v for v in args.variants.split(",") if v],
        torch_files=args.torch_files,
        precompute=not args.lazy,
    ).start()
    print(f"generated in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    if not args.lazy:
        print(f"files listed: {index.file_count()}", file=sys.stderr)
    print(f"PyPI:    {index.pypi_url}")
    print(f"files:   {index.files_url}")
    print(f"PyTorch: {index.pytorch_url}  (variants: {', '.join(index.variants)})")
    print(f"roots:   {', '.join(index.root(k) for k in index.roots())}")
    print(f"export ENVLOCK_PYPI_INDEX_URL={index.pypi_url}")
    print(f"export ENVLOCK_PYTORCH_INDEX_URL={index.pytorch_url}")
    if not args.serve:
        index.close()
        return
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        index.close()


if __name__ == "__main__":
    main()
