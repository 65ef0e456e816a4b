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
