"""Tiny, real, installable wheels built at test time with zipfile (no binaries checked in)."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from packaging.tags import parse_tag
from packaging.utils import canonicalize_name

_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Dist:
    name: str
    version: str
    tags: tuple[str, ...] = ("py3-none-any",)
    requires_dist: tuple[str, ...] = ()
    requires_python: str | None = None
    upload_time: datetime | None = None
    sdist: bool = False
    files: tuple[tuple[str, str], ...] = ()  # more files: (path in the wheel, text)
    entry_points: str = ""  # entry_points.txt, e.g. "[console_scripts]\njupyter = m:main\n"
    yanked: bool | str = False  # PEP 592: True, or the reason (every file of this release)

    @property
    def module(self) -> str:
        return canonicalize_name(self.name).replace("-", "_")

    @property
    def project(self) -> str:
        return canonicalize_name(self.name)

    def wheel_filename(self, tag: str) -> str:
        return f"{self.module}-{self.version}-{tag}.whl"

    def sdist_filename(self) -> str:
        return f"{self.module}-{self.version}.tar.gz"


def metadata_text(dist: Dist) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {dist.name}", f"Version: {dist.version}"]
    if dist.requires_python:
        lines.append(f"Requires-Python: {dist.requires_python}")
    lines += [f"Requires-Dist: {req}" for req in dist.requires_dist]
    return "\n".join(lines) + "\n"


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def build_wheel(dist: Dist, tag: str, outdir: Path) -> Path:
    """Write one deterministic wheel for ``tag`` (a compressed tag such as cp311-cp311-x)."""
    info = f"{dist.module}-{dist.version}.dist-info"
    wheel_tags = sorted(str(t) for t in parse_tag(tag))
    purelib = tag.endswith("-none-any")
    init = f'__version__ = "{dist.version}"\n'
    extra: dict[str, bytes] = {}
    if dist.module == "torch":  # like the real torch: torch.version.cuda ("12.6" or None)
        label = dist.version.partition("+")[2]
        cuda = f'"{label[2:-1]}.{label[-1]}"' if label.startswith("cu") else "None"
        extra["torch/version.py"] = f"cuda = {cuda}\n".encode()
        init += "from torch import version\n"
    extra.update({path: text.encode() for path, text in dist.files})
    if dist.entry_points:
        extra[f"{info}/entry_points.txt"] = dist.entry_points.encode()
    files = {
        f"{dist.module}/__init__.py": init.encode(),
        **extra,
        f"{info}/METADATA": metadata_text(dist).encode(),
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: envlock-tests\n"
            f"Root-Is-Purelib: {'true' if purelib else 'false'}\n"
            + "".join(f"Tag: {t}\n" for t in wheel_tags)
        ).encode(),
    }
    record = [_record_line(path, data) for path, data in files.items()]
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / dist.wheel_filename(tag)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            entry = zipfile.ZipInfo(name, date_time=_EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    return path


def build_sdist(dist: Dist, outdir: Path) -> Path:
    """A minimal, deterministic sdist (PKG-INFO + a module); it exists to be hashed."""
    root = f"{dist.module}-{dist.version}"
    members = {
        f"{root}/PKG-INFO": metadata_text(dist).encode(),
        f"{root}/{dist.module}/__init__.py": f'__version__ = "{dist.version}"\n'.encode(),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in members.items():
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            entry.mtime = 0
            entry.mode = 0o644
            archive.addfile(entry, io.BytesIO(data))
    raw = buffer.getvalue()
    gz = io.BytesIO()
    import gzip  # noqa: PLC0415 - only needed here

    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as handle:
        handle.write(raw)
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / dist.sdist_filename()
    path.write_bytes(gz.getvalue())
    return path


# --------------------------------------------------------------------------------------
# a fake torch that answers like the real one on a described host


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeTorch:
    """torch as a process on some host sees it. The CUDA logic follows c10/cuda's
    device_count_impl and torch.cuda._lazy_init: no driver, a driver older than the build,
    CUDA_VISIBLE_DEVICES (read at run time, as CUDA does) and the GPUs decide what
    is_available(), init() (with torch's own messages), device_count() and get_arch_list() say."""

    version: str = "2.6.0+cu126"
    cuda: str | None = "12.6"  # torch.version.cuda; None: a CPU build (no torch._C CUDA calls)
    arch_list: tuple[str, ...] = ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90")
    gpus: tuple[tuple[str, tuple[int, int]], ...] = ()  # (name, compute capability)
    driver_cuda: int | None = None  # cudaDriverGetVersion: 12080 is CUDA 12.8; None: no driver
    cudnn: int | None = 90100
    import_error: str | None = None  # `import torch` raises ImportError(import_error)
    hang: bool = False  # `import torch` never returns
    prints: str = ""  # printed on stdout while torch loads


_FAKE_TORCH_INIT = """\
import json
import sys

_CONF = json.loads({conf!r})
if _CONF["prints"]:
    print(_CONF["prints"])
if _CONF["hang"]:
    import time

    time.sleep(3600)
if _CONF["import_error"]:
    raise ImportError(_CONF["import_error"])
__version__ = _CONF["version"]
from torch import _C, backends, cuda, version  # noqa: E402
import torch.backends.cudnn  # noqa: E402
"""

_FAKE_TORCH_C = """\
import json

_CONF = json.loads({conf!r})
if _CONF["cuda"] is not None:

    def _cuda_getDeviceCount():
        import torch.cuda

        return torch.cuda.device_count()

    def _cuda_getArchFlags():
        return " ".join(_CONF["arch_list"])
"""

_FAKE_TORCH_CUDA = """\
import json
import os

_CONF = json.loads({conf!r})
_DOWNLOAD = "http://www.nvidia.com/Download/index.aspx"


def _compiled():
    return _CONF["cuda"] is not None


def _visible():
    driver = _CONF["driver_cuda"]
    if driver is None:
        raise RuntimeError(
            "Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU "
            "and installed a driver from " + _DOWNLOAD
        )
    if driver // 1000 < int(_CONF["cuda"].split(".")[0]):
        raise RuntimeError(
            "The NVIDIA driver on your system is too old (found version %d). Please update "
            "your GPU driver by downloading and installing a new version from the URL: %s "
            "Alternatively, go to: https://pytorch.org to install a PyTorch version that has "
            "been compiled with your version of the CUDA driver." % (driver, _DOWNLOAD)
        )
    gpus = list(range(len(_CONF["gpus"])))
    asked = os.environ.get("CUDA_VISIBLE_DEVICES")
    if asked is not None:
        chosen = []
        for part in asked.split(","):
            part = part.strip()
            if not part.isdigit() or int(part) >= len(gpus):
                break
            chosen.append(int(part))
        gpus = chosen
    return gpus


def is_available():
    if not _compiled():
        return False
    try:
        return len(_visible()) > 0
    except RuntimeError:
        return False


def init():
    if not _compiled():
        raise AssertionError("Torch not compiled with CUDA enabled")
    if not _visible():
        raise RuntimeError("No CUDA GPUs are available")


def device_count():
    return len(_visible()) if is_available() else 0


def get_arch_list():
    return list(_CONF["arch_list"]) if is_available() else []


def _gpu(index):
    init()
    return _CONF["gpus"][_visible()[index]]


def get_device_name(index=None):
    return _gpu(index or 0)[0]


def get_device_capability(index=None):
    return tuple(_gpu(index or 0)[1])
"""

_FAKE_TORCH_CUDNN = """\
import json

_CONF = json.loads({conf!r})


def version():
    return _CONF["cudnn"] if _CONF["cuda"] is not None else None
"""


def fake_torch_files(fake: FakeTorch) -> dict[str, str]:
    """The fake torch's modules, path -> source."""
    import json  # noqa: PLC0415 - only the fake torch needs it

    conf = json.dumps(
        {
            "version": fake.version,
            "cuda": fake.cuda,
            "arch_list": list(fake.arch_list),
            "gpus": [[name, list(cc)] for name, cc in fake.gpus],
            "driver_cuda": fake.driver_cuda,
            "cudnn": fake.cudnn,
            "import_error": fake.import_error,
            "hang": fake.hang,
            "prints": fake.prints,
        }
    )
    version = f"__version__ = {fake.version!r}\ncuda = {fake.cuda!r}\nhip = None\n"
    return {
        "torch/__init__.py": _FAKE_TORCH_INIT.format(conf=conf),
        "torch/version.py": version,
        "torch/_C.py": _FAKE_TORCH_C.format(conf=conf),
        "torch/cuda/__init__.py": _FAKE_TORCH_CUDA.format(conf=conf),
        "torch/backends/__init__.py": "",
        "torch/backends/cudnn/__init__.py": _FAKE_TORCH_CUDNN.format(conf=conf),
    }


def write_fake_torch(site_packages: Path, fake: FakeTorch) -> None:
    """Put the fake torch into a venv's site-packages (replacing one written before, and its
    bytecode: a rewrite within the same second would otherwise run the stale .pyc)."""
    import shutil  # noqa: PLC0415 - only the fake torch needs it

    shutil.rmtree(site_packages / "torch", ignore_errors=True)
    for path, text in fake_torch_files(fake).items():
        target = site_packages / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
