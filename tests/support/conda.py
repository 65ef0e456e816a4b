"""A local conda channel built at test time from this machine's interpreter, and `conda env
create -f environment.yml` replayed with rattler (the conda implementation behind pixi).

conda-forge is not reachable from the test machines, so the channel holds what an
environment.yml from `envlock export conda` asks conda for: a ``python`` package (a copy of
the CPython running the tests: its executable, libpython, the standard library without its
tests, IDLE or tkinter) and a ``noarch: python`` ``pip`` package (the pip wheel ensurepip
bundles). Both are real conda packages (``info/index.json``, ``info/paths.json``,
``info/files``, prefix placeholders for the text files that name the interpreter's prefix),
indexed by ``rattler.index``; rattler solves against the channel's repodata and links them
into a prefix like conda-forge's own."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

MINOR = f"{sys.version_info.major}.{sys.version_info.minor}"
VERSION = ".".join(str(p) for p in sys.version_info[:3])
SUBDIR = "linux-64"
# What the python package leaves out of the standard library: size, not function.
_SKIPPED_DIRS = frozenset(
    {
        "test",
        "tests",
        "idlelib",
        "tkinter",
        "turtledemo",
        "lib2to3",
        "__pycache__",
        "site-packages",
        f"config-{MINOR}-x86_64-linux-gnu",
    }
)
_SKIPPED_MODULES = ("_test", "_xxtest", "xxlimited", "_ctypes_test", "_tkinter")
_BUNDLED = Path(sysconfig.get_path("stdlib")) / "ensurepip" / "_bundled"
# The recipe's inputs: a change to any of them builds a new channel.
RECIPE = hashlib.sha256(
    Path(__file__).read_bytes() + f"{sys.base_prefix}\0{VERSION}".encode()
).hexdigest()[:16]


@dataclass(frozen=True, slots=True, kw_only=True)
class Channel:
    path: Path

    @property
    def url(self) -> str:
        return self.path.as_uri()


def _placeholder_files(root: Path, prefix: bytes) -> set[str]:
    """Text files under ``root`` that name the interpreter's prefix (sysconfigdata, scripts)."""
    found: set[str] = set()
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if prefix in data and b"\0" not in data:
                found.add(path.relative_to(root).as_posix())
    return found


def _relocate_runpath(binary: Path, lib: bytes) -> None:
    """Point an ELF's absolute RUNPATH (``<prefix>/lib``) at ``$ORIGIN/../lib``, in place and
    null-padded (the new string is shorter), as conda-build makes binaries relocatable."""
    data = binary.read_bytes()
    old = lib + b"\0"
    new = b"$ORIGIN/../lib"
    if old in data and len(new) < len(old):
        binary.write_bytes(data.replace(old, new.ljust(len(old), b"\0")))


def _strip(path: Path) -> None:
    strip = shutil.which("strip")
    if strip:  # debug info is most of the size; the code is untouched
        subprocess.run([strip, "--strip-debug", str(path)], check=False, capture_output=True)


def _python_tree(root: Path) -> set[str]:
    """Copy the running CPython (base prefix) into ``root``; returns the text files to mark."""
    base = Path(sys.base_prefix)
    (root / "bin").mkdir(parents=True)
    exe = root / "bin" / f"python{MINOR}"
    source = base / "bin" / f"python{MINOR}"
    shutil.copy2(source if source.is_file() else Path(sys.executable).resolve(), exe)
    for name in ("python", "python3"):
        shutil.copy2(exe, root / "bin" / name)
    (root / "lib").mkdir()
    for lib in base.glob(f"lib/libpython{MINOR}*.so*"):
        if not lib.is_symlink():
            shutil.copy2(lib, root / "lib" / lib.name)
            _strip(root / "lib" / lib.name)
    for binary in (root / "bin").iterdir():
        _strip(binary)
        _relocate_runpath(binary, f"{base}/lib".encode())
    stdlib = base / "lib" / f"python{MINOR}"

    def ignore(directory: str, names: list[str]) -> list[str]:
        return [
            n
            for n in names
            if n in _SKIPPED_DIRS or n.startswith(_SKIPPED_MODULES) or n.endswith(".pyc")
        ]

    shutil.copytree(stdlib, root / "lib" / f"python{MINOR}", ignore=ignore)
    site = root / "lib" / f"python{MINOR}" / "site-packages"
    site.mkdir()
    (site / "README.txt").write_text(
        "This directory exists so that 3rd party packages can be installed here.\n"
    )
    for so in (root / "lib" / f"python{MINOR}" / "lib-dynload").glob("*.so"):
        _strip(so)
    return _placeholder_files(root, str(base).encode())


def _paths_json(root: Path, placeholder: str, marked: set[str]) -> dict[str, object]:
    paths = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        data = path.read_bytes()
        entry: dict[str, object] = {
            "_path": rel,
            "path_type": "hardlink",
            "sha256": hashlib.sha256(data).hexdigest(),
            "size_in_bytes": len(data),
        }
        if rel in marked:
            entry |= {"prefix_placeholder": placeholder, "file_mode": "text"}
        paths.append(entry)
    return {"paths_version": 1, "paths": paths}


def _write_package(
    out: Path, root: Path, index: Mapping[str, object], info: Mapping[str, object]
) -> Path:
    """A .tar.bz2 conda package of ``root``'s files and ``info/*`` (JSON documents)."""
    name = f"{index['name']}-{index['version']}-{index['build']}.tar.bz2"
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    documents = {
        "info/index.json": dict(index),
        **{f"info/{k}": v for k, v in info.items()},
    }
    listing = "\n".join(p.relative_to(root).as_posix() for p in files) + "\n"
    with tarfile.open(out / name, "w:bz2", compresslevel=1) as tar:
        for member, document in documents.items():
            data = json.dumps(document, indent=2, sort_keys=True).encode()
            _add_bytes(tar, member, data)
        _add_bytes(tar, "info/files", listing.encode())
        for path in files:
            tar.add(path, arcname=path.relative_to(root).as_posix(), recursive=False)
    return out / name


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    member = tarfile.TarInfo(name)
    member.size = len(data)
    member.mode = 0o644
    tar.addfile(member, io.BytesIO(data))


def _python_package(subdir: Path, work: Path) -> None:
    root = work / "python"
    marked = _python_tree(root)
    index = {
        "name": "python",
        "version": VERSION,
        "build": "h0_envlock_test",
        "build_number": 0,
        "depends": ["__glibc >=2.17"],
        "subdir": SUBDIR,
        "platform": "linux",
        "arch": "x86_64",
        "license": "PSF-2.0",
        "timestamp": 1_700_000_000_000,
    }
    paths = _paths_json(root, sys.base_prefix, marked)
    _write_package(subdir, root, index, {"paths.json": paths})


def _pip_package(noarch: Path, work: Path) -> None:
    wheel = next(_BUNDLED.glob("pip-*.whl"))
    version = wheel.name.split("-")[1]
    root = work / "pip"
    site = root / "site-packages"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)  # noqa: S202 - ensurepip's own wheel
    dist_info = next(site.glob("pip-*.dist-info"))
    (dist_info / "INSTALLER").write_text("conda\n")
    index = {
        "name": "pip",
        "version": version,
        "build": "pyh0_envlock_test",
        "build_number": 0,
        "depends": ["python >=3.7"],
        "noarch": "python",
        "subdir": "noarch",
        "license": "MIT",
        "timestamp": 1_700_000_000_000,
    }
    link = {
        "noarch": {"type": "python", "entry_points": ["pip = pip._internal.cli.main:main"]},
        "package_metadata_version": 1,
    }
    _write_package(
        noarch, root, index, {"paths.json": _paths_json(root, "", set()), "link.json": link}
    )


def build_channel(directory: Path) -> Channel:
    """A conda channel at ``directory`` holding python (this interpreter) and pip, indexed."""
    from rattler.index import index_fs  # noqa: PLC0415 - heavy; only where a channel is built

    with tempfile.TemporaryDirectory(prefix="envlock-conda-recipe-") as tmp:
        _python_package(directory / SUBDIR, Path(tmp))
        _pip_package(directory / "noarch", Path(tmp))
    asyncio.run(index_fs(directory, write_zst=False, write_shards=False))
    return Channel(path=directory)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield


def unrelocatable() -> str | None:
    """Why the interpreter running the tests cannot be packaged as a conda python, if it
    cannot: a distribution's Python (Debian's posix_local scheme puts site-packages outside
    its prefix) or one without ensurepip's bundled pip wheel."""
    patched = sorted({"posix_local", "deb_system"} & set(sysconfig.get_scheme_names()))
    if patched:
        return (
            f"the test interpreter ({sys.base_prefix}) is a distribution's Python (install "
            f"schemes {', '.join(patched)}: site-packages outside its prefix), which a conda "
            "package cannot relocate; run the tests with a CPython built from source (pyenv, "
            "uv python, python.org)"
        )
    if not any(_BUNDLED.glob("pip-*.whl")):
        return f"the test interpreter has no ensurepip pip wheel in {_BUNDLED} to package as pip"
    return None


def cached_channel(root: Path) -> Channel:
    """The channel for this recipe under ``root``, built once (pytest-xdist workers share it:
    the first builds under a file lock, the others wait and reuse it)."""
    directory = root / f"conda-channel-{RECIPE}"
    with _locked(root / f"conda-channel-{RECIPE}.lock"):
        if not (directory / "noarch" / "repodata.json").is_file():
            shutil.rmtree(directory, ignore_errors=True)
            build_channel(directory)
    return Channel(path=directory)


# ---------------------------------------------------------------------------------------
# `conda env create -f environment.yml`, replayed


def _activated(prefix: Path) -> dict[str, str]:
    """The environment conda runs its pip step in (conda.gateways.subprocess.any_subprocess
    wraps it in the prefix's activation: its bin first on PATH, CONDA_PREFIX), minus this
    machine's global pip configuration and any PYTHON* variable of the test run."""
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))
    }
    path = os.pathsep.join((str(prefix / "bin"), os.environ.get("PATH", "/usr/bin:/bin")))
    return inherited | {"PATH": path, "CONDA_PREFIX": str(prefix), "PIP_CONFIG_FILE": os.devnull}


def conda_env_create(
    environment: Path, prefix: Path, *, channels: Sequence[str], cache: Path
) -> subprocess.CompletedProcess[str]:
    """Do what `conda env create -f ENVIRONMENT -p PREFIX` does, with rattler for the conda
    part: solve the conda dependencies (from ``channels``, standing in for the file's own),
    link them into PREFIX, then conda's pip step exactly as conda.env.installers.pip runs it.
    Returns pip's completed process."""
    from rattler import VirtualPackage, install, solve  # noqa: PLC0415

    data = yaml.safe_load(environment.read_text(encoding="utf-8"))
    conda_specs = [d for d in data["dependencies"] if isinstance(d, str)]
    pip_specs = next(d["pip"] for d in data["dependencies"] if isinstance(d, dict))

    async def create() -> None:
        records = await solve(
            sources=list(channels),
            specs=conda_specs,
            platforms=[SUBDIR, "noarch"],
            virtual_packages=VirtualPackage.detect(),
        )
        await install(records, target_prefix=prefix, cache_dir=cache, show_progress=False)

    asyncio.run(create())
    return conda_pip_step(prefix, pip_specs, workdir=environment.parent)


def conda_pip_step(
    prefix: Path, specs: Sequence[str], *, workdir: Path
) -> subprocess.CompletedProcess[str]:
    """conda.env.installers.pip._pip_install_via_requirements: the pip: lines joined by
    newlines into condaenv.*.requirements.txt beside environment.yml, then
    ``<prefix>/bin/python -m pip install -U -r <file> --exists-action=b`` run there (conda's
    pip_workdir, the environment file's directory), in the activated prefix."""
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - conda removes it in a finally
        mode="w",
        prefix="condaenv.",
        suffix=".requirements.txt",
        dir=workdir,
        delete=False,
        encoding="utf-8",
    )
    try:
        handle.write("\n".join(specs))
        handle.close()
        command = ["install", "-U", "-r", handle.name, "--exists-action=b"]
        return subprocess.run(
            [str(prefix / "bin" / "python"), "-m", "pip", *command],
            cwd=workdir,
            capture_output=True,
            text=True,
            env=_activated(prefix),
            check=False,
        )
    finally:
        Path(handle.name).unlink(missing_ok=True)
