"""What the fixture indexes serve: a small, hand-picked slice of PyPI and download.pytorch.org."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path

from tests.support.wheels import Dist

LINUX_X86 = 'platform_system == "Linux" and platform_machine == "x86_64"'
LINUX = 'platform_system == "Linux"'


def _t(year: int, month: int, day: int = 1) -> datetime:
    return datetime(year, month, day, 12, 0, 0, tzinfo=UTC)


def _cp(*pairs: str) -> tuple[str, ...]:
    """'311:manylinux_2_28_x86_64' -> 'cp311-cp311-manylinux_2_28_x86_64'."""
    tags = []
    for pair in pairs:
        version, platform = pair.split(":")
        tags.append(f"cp{version}-cp{version}-{platform}")
    return tuple(tags)


TORCH_BASE = ("filelock", "typing-extensions>=4.10.0", 'sympy==1.13.1; python_version >= "3.9"')
X86_WHEELS = _cp("311:manylinux_2_28_x86_64", "312:manylinux_2_28_x86_64", "311:win_amd64")


def _cuda12_deps(cudnn: str) -> tuple[str, ...]:
    return (
        f"nvidia-cudnn-cu12=={cudnn}; {LINUX_X86}",
        f"nvidia-cublas-cu12==12.4.5.8; {LINUX_X86}",
        f"triton==3.2.0; {LINUX_X86}",
    )


def _torch26(label: str, deps: tuple[str, ...], tags: tuple[str, ...] = X86_WHEELS) -> list[Dist]:
    local = f"+{label}" if label else ""
    return [
        Dist(
            name="torch",
            version=f"2.6.0{local}",
            tags=tags,
            requires_dist=TORCH_BASE + deps,
            requires_python=">=3.9",
        ),
        Dist(
            name="torchvision",
            version=f"0.21.0{local}",
            tags=tags,
            requires_dist=("torch==2.6.0", "numpy"),
        ),
        Dist(
            name="torchaudio", version=f"2.6.0{local}", tags=tags, requires_dist=("torch==2.6.0",)
        ),
    ]


def _cu118() -> list[Dist]:
    """cu118 pins another sympy than every other build: variants cannot align on it."""
    tags = _cp("311:manylinux_2_28_x86_64")
    base = ("filelock", "typing-extensions>=4.10.0", "sympy==1.13.3")
    return [
        Dist(
            name="torch",
            version="2.6.0+cu118",
            tags=tags,
            requires_python=">=3.9",
            requires_dist=(*base, f"nvidia-cudnn-cu11==9.1.0.70; {LINUX_X86}"),
        ),
        Dist(
            name="torchvision",
            version="0.21.0+cu118",
            tags=tags,
            requires_dist=("torch==2.6.0", "numpy"),
        ),
    ]


def _family() -> dict[str, list[str]]:
    """channels/family.toml's routing: the names the dependency-confusion tests cover."""
    path = Path(__file__).resolve().parents[2] / "channels" / "family.toml"
    routing = tomllib.loads(path.read_text())["routing"]
    return {
        "if-requested": list(routing["if-requested"]),
        "by-kind": [n for names in routing["by-kind"].values() for n in names],
    }


IF_REQUESTED = tuple(_family()["if-requested"])
BY_KIND = tuple(_family()["by-kind"])


def _requested_family(label: str) -> list[Dist]:
    """Every if-requested torch-family name, built for the variant (needs torch 2.6)."""
    return [
        Dist(name=name, version=f"1.0.0+{label}", requires_dist=("torch==2.6.0",))
        for name in IF_REQUESTED
    ]


def pytorch_variants() -> dict[str, list[Dist]]:
    """download.pytorch.org/whl/<variant>/: local-version wheels, most without upload times."""
    mirrored = [
        Dist(
            name="nvidia-cudnn-cu12",
            version="9.1.0.70",
            tags=("py3-none-manylinux2014_x86_64",),
            upload_time=_t(2026, 5),
        ),
        Dist(
            name="triton",
            version="3.2.0",
            tags=_cp("311:manylinux_2_17_x86_64"),
            upload_time=_t(2026, 5),
        ),
    ]
    aarch = _cp(
        "311:manylinux_2_28_x86_64",
        "311:manylinux_2_28_aarch64",
        "312:manylinux_2_28_x86_64",
        "311:win_amd64",
    )
    cu13_deps = (f"nvidia-cudnn-cu13==9.24.0.43; {LINUX}", f"triton==3.8.0; {LINUX}")
    torch214 = _cp("311:manylinux_2_28_x86_64", "311:manylinux_2_28_aarch64")
    return {
        "cu124": _torch26("cu124", _cuda12_deps("9.1.0.70")) + mirrored,
        "cu126": _torch26("cu126", _cuda12_deps("9.5.1.17")) + _requested_family("cu126"),
        "cu118": _cu118(),
        "cpu": _torch26("cpu", (), tags=aarch)
        + [
            Dist(name="torch", version="2.14.0+cpu", tags=torch214, requires_dist=TORCH_BASE),
            Dist(
                name="torchvision",
                version="0.29.0+cpu",
                tags=torch214,
                requires_dist=("torch==2.14.0", "numpy"),
            ),
        ],
        "cu130": [
            Dist(
                name="torch",
                version="2.14.0+cu130",
                tags=torch214,
                requires_dist=TORCH_BASE + cu13_deps,
            ),
            Dist(
                name="torchvision",
                version="0.29.0+cu130",
                tags=torch214,
                requires_dist=("torch==2.14.0", "numpy"),
            ),
        ],
        "xpu": _torch26(
            "xpu",
            (f"pytorch-triton-xpu==3.2.0; {LINUX_X86}",),
            tags=_cp("311:manylinux_2_28_x86_64"),
        )[:1]
        + [
            Dist(name="pytorch-triton-xpu", version="3.2.0", tags=_cp("311:manylinux_2_28_x86_64")),
        ],
        "rocm6.2.4": _torch26(
            "rocm6.2.4",
            (f"pytorch-triton-rocm==3.2.0; {LINUX_X86}",),
            tags=_cp("311:manylinux_2_28_x86_64"),
        )[:2]
        + [
            Dist(
                name="pytorch-triton-rocm", version="3.2.0", tags=_cp("311:manylinux_2_28_x86_64")
            ),
        ],
    }


def _numpy(version: str, uploaded: datetime) -> Dist:
    return Dist(
        name="numpy",
        version=version,
        tags=_cp(
            "311:manylinux_2_17_x86_64.manylinux2014_x86_64",
            "311:manylinux_2_17_aarch64.manylinux2014_aarch64",
            "311:musllinux_1_2_x86_64",
            "311:macosx_14_0_arm64",
            "311:win_amd64",
            "312:manylinux_2_17_x86_64.manylinux2014_x86_64",
            "310:manylinux_2_17_x86_64.manylinux2014_x86_64",
        )
        + ("pp310-pypy310_pp73-manylinux_2_17_x86_64.manylinux2014_x86_64",),
        requires_python=">=3.10",
        upload_time=uploaded,
        sdist=True,
    )


# A stand-in for JupyterLab with its `jupyter` console script: `jupyter lab --ip I --port P`
# serves one JSON page saying how it was started (argv, uid, JUPYTER_TOKEN set or not), which
# is what an image's CMD decides. The real JupyterLab needs ~80 packages from PyPI.
_FAKE_LAB = """\
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer


def main():
    args = sys.argv[1:]
    if not args or args[0] != "lab":
        sys.exit("usage: jupyter lab [--ip=IP] [--port=PORT]")
    options = dict(a[2:].split("=", 1) for a in args[1:] if a.startswith("--") and "=" in a)
    flags = [a for a in args[1:] if "=" not in a]
    body = json.dumps({"argv": args, "uid": os.getuid(), "token": bool(os.environ.get(
        "JUPYTER_TOKEN")), "flags": flags}).encode()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

    HTTPServer((options.get("ip", "localhost"), int(options.get("port", "8888"))), Page).serve_forever()
"""
JUPYTERLAB = Dist(
    name="jupyterlab",
    version="4.3.0",
    files=(("jupyterlab/labapp.py", _FAKE_LAB),),
    entry_points="[console_scripts]\njupyter = jupyterlab.labapp:main\n",
    upload_time=_t(2024, 11),
)


def pypi() -> list[Dist]:
    """The PyPI side: every file has an upload time, so exclude-newer can be tested."""
    mac_win = _cp("311:macosx_11_0_arm64", "311:win_amd64")
    linux_torch = _cp("311:manylinux_2_28_x86_64", "312:manylinux_2_28_x86_64")
    cu12 = (
        f"nvidia-cudnn-cu12==9.1.0.70; {LINUX_X86}",
        f"nvidia-cublas-cu12==12.4.5.8; {LINUX_X86}",
        f"triton==3.2.0; {LINUX_X86}",
    )
    cu13 = (f"nvidia-cudnn-cu13==9.24.0.43; {LINUX}", f"triton==3.8.0; {LINUX}")
    torch214_tags = _cp(
        "311:manylinux_2_28_x86_64",
        "311:manylinux_2_28_aarch64",
        "311:macosx_14_0_arm64",
        "311:win_amd64",
    )
    manylinux = ("py3-none-manylinux2014_x86_64", "py3-none-manylinux2014_aarch64")
    triton_tags = _cp(
        "311:manylinux_2_17_x86_64", "311:manylinux_2_17_aarch64", "312:manylinux_2_17_x86_64"
    )
    return [
        Dist(
            name="torch",
            version="2.6.0",
            tags=linux_torch + mac_win,
            requires_dist=TORCH_BASE + cu12,
            requires_python=">=3.9",
            upload_time=_t(2025, 1, 29),
        ),
        Dist(
            name="torch",
            version="2.14.0",
            tags=torch214_tags,
            requires_dist=TORCH_BASE + cu13,
            requires_python=">=3.10",
            upload_time=_t(2026, 9, 2),
        ),
        Dist(
            name="torchvision",
            version="0.21.0",
            tags=linux_torch + mac_win,
            requires_dist=("torch==2.6.0", "numpy"),
            upload_time=_t(2025, 1, 29),
        ),
        Dist(
            name="torchvision",
            version="0.29.0",
            tags=torch214_tags,
            requires_dist=("torch==2.14.0", "numpy"),
            upload_time=_t(2026, 9, 2),
        ),
        Dist(
            name="torchaudio",
            version="2.6.0",
            tags=linux_torch + mac_win,
            requires_dist=("torch==2.6.0",),
            upload_time=_t(2025, 1, 29),
        ),
        # Dependency-confusion attackers: same names, higher versions, installable everywhere.
        Dist(name="torch", version="2.6.9", upload_time=_t(2025, 3)),
        Dist(name="torchvision", version="0.21.9", upload_time=_t(2025, 3)),
        Dist(name="pytorch-triton-rocm", version="9.9.9", upload_time=_t(2025, 3)),
        Dist(name="torchaudio", version="2.6.9", upload_time=_t(2025, 3)),
        *(
            Dist(name=name, version="99.0.0", upload_time=_t(2025, 3))
            for name in (*IF_REQUESTED, *BY_KIND)
            if name != "pytorch-triton-rocm"
        ),
        # A harmless-looking package that pulls in a torch-family name from PyPI.
        Dist(
            name="helper-pulls-torchao",
            version="1.0.0",
            requires_dist=("torchao",),
            upload_time=_t(2025, 3),
        ),
        # CUDA runtime wheels and triton.
        Dist(name="nvidia-cudnn-cu12", version="9.1.0.70", tags=manylinux, upload_time=_t(2024, 6)),
        Dist(
            name="nvidia-cudnn-cu12", version="9.5.1.17", tags=manylinux, upload_time=_t(2024, 11)
        ),
        Dist(
            name="nvidia-cublas-cu12", version="12.4.5.8", tags=manylinux, upload_time=_t(2024, 4)
        ),
        Dist(name="nvidia-cudnn-cu11", version="9.1.0.70", tags=manylinux, upload_time=_t(2024, 6)),
        Dist(
            name="nvidia-cudnn-cu13", version="9.24.0.43", tags=manylinux, upload_time=_t(2026, 8)
        ),
        Dist(name="triton", version="3.2.0", tags=triton_tags, upload_time=_t(2025, 1, 20)),
        Dist(name="triton", version="3.8.0", tags=triton_tags, upload_time=_t(2026, 8)),
        # Pure-Python helpers.
        Dist(name="filelock", version="3.16.1", upload_time=_t(2024, 9)),
        Dist(name="typing-extensions", version="4.12.2", upload_time=_t(2024, 6)),
        Dist(
            name="sympy",
            version="1.13.1",
            requires_dist=("mpmath>=1.1.0,<1.4",),
            upload_time=_t(2024, 7),
        ),
        Dist(
            name="sympy",
            version="1.13.3",
            requires_dist=("mpmath>=1.1.0,<1.4",),
            upload_time=_t(2024, 9),
        ),
        Dist(name="mpmath", version="1.3.0", upload_time=_t(2023, 3)),
        Dist(
            name="six",
            version="1.17.0",
            tags=("py2.py3-none-any",),
            sdist=True,
            upload_time=_t(2024, 12),
        ),
        Dist(name="six", version="1.16.0", tags=("py2.py3-none-any",), upload_time=_t(2021, 5)),
        # A dotted project name: pip lists it as "ruamel.yaml", the lock names it ruamel-yaml.
        Dist(name="ruamel.yaml", version="0.18.6", upload_time=_t(2024, 2)),
        _numpy("2.2.0", _t(2025, 1)),
        _numpy("2.3.0", _t(2026, 6)),
        Dist(
            name="transformers",
            version="4.50.0",
            requires_dist=("numpy>=1.17", "filelock", "tokenizers>=0.21,<0.22"),
            upload_time=_t(2025, 3),
        ),
        Dist(
            name="transformers",
            version="5.1.0",
            requires_dist=("numpy>=1.17", "filelock", "tokenizers>=0.21,<0.22"),
            upload_time=_t(2026, 3),
        ),
        Dist(
            name="tokenizers",
            version="0.21.0",
            tags=(
                "cp39-abi3-manylinux_2_17_x86_64",
                "cp39-abi3-manylinux_2_17_aarch64",
                "cp39-abi3-macosx_11_0_arm64",
                "cp39-abi3-win_amd64",
            ),
            upload_time=_t(2024, 11),
        ),
        Dist(
            name="datasets",
            version="3.2.0",
            requires_dist=("numpy", "filelock"),
            upload_time=_t(2024, 12),
        ),
        JUPYTERLAB,
        # NVIDIA's management library: named like the CUDA runtime, never in a pytorch image.
        Dist(name="nvidia-ml-py", version="12.560.30", upload_time=_t(2024, 9)),
        *held_back(),
        *broken_imports(),
    ]


def held_back() -> list[Dist]:
    """Issue 18's shape, under names of their own: uv's decision order holds heldback-data back.

    heldback-data 5.0 needs heldback-fs[http]<=2.0 and 2.0 has no bound (datasets 5.0.1 and
    2.14.4 with fsspec); heldback-engine (torch-like, pinned) needs heldback-fs unbounded.
    uv decides heldback-fs[http] once 5.0 is chosen, which makes the fs name a "singleton"
    in its priorities; heldback-zgraph 9.0 (networkx-like) needs Python 3.12, so uv backjumps
    to heldback-engine's decision, decides fs first (newest, 3.0) and then takes data 2.0.
    heldback-data 6.0 needs heldback-hub>=2, which the pinned heldback-models 1.0 forbids
    (datasets 5.2.0 vs transformers 4.40.0): 5.0 is the best lock, 6.0 is reported."""
    fs = "heldback-fs[http]"
    return [
        Dist(name="heldback-data", version="2.0", requires_dist=(fs,), upload_time=_t(2023, 8)),
        Dist(
            name="heldback-data",
            version="5.0",
            requires_dist=(f"{fs}<=2.0",),
            upload_time=_t(2025, 6),
        ),
        Dist(
            name="heldback-data",
            version="6.0",
            requires_dist=(f"{fs}<=2.0", "heldback-hub>=2"),
            upload_time=_t(2025, 9),
        ),
        *(
            Dist(
                name="heldback-fs",
                version=version,
                requires_dist=('heldback-aio; extra == "http"',),
                upload_time=_t(2025, month),
            )
            for version, month in (("1.0", 1), ("2.0", 5), ("3.0", 8))
        ),
        Dist(name="heldback-aio", version="1.0", upload_time=_t(2024, 1)),
        Dist(
            name="heldback-engine",
            version="1.0",
            requires_dist=("heldback-fs", "heldback-zgraph"),
            upload_time=_t(2025, 1),
        ),
        Dist(name="heldback-zgraph", version="1.0", upload_time=_t(2024, 1)),
        Dist(
            name="heldback-zgraph",
            version="9.0",
            requires_python=">=3.12",
            upload_time=_t(2025, 7),
        ),
        Dist(name="heldback-hub", version="1.0", upload_time=_t(2024, 1)),
        Dist(name="heldback-hub", version="2.0", upload_time=_t(2025, 8)),
        Dist(
            name="heldback-models",
            version="1.0",
            requires_dist=("heldback-hub<2",),
            upload_time=_t(2024, 6),
        ),
    ]


def broken_imports() -> list[Dist]:
    """The pyarrow break under names of their own: brokenimport-data 2.14.4 (datasets) uses
    brokenimport_arrow.PyExtensionType, which brokenimport-arrow 26.0 (pyarrow 21+) removed.
    Every hash verifies and the lock resolves (data asks for arrow >= 8), yet
    `import brokenimport_data` raises AttributeError; arrow below 26 imports."""
    arrow = "brokenimport_arrow"
    data = (
        f"import {arrow}\n\n\n"
        f"class ArrowExtension({arrow}.PyExtensionType):\n    pass\n\n\n"
        '__version__ = "2.14.4"\n'
    )
    return [
        Dist(
            name="brokenimport-arrow",
            version="25.0",
            files=((f"{arrow}/__init__.py", '__version__ = "25.0"\nPyExtensionType = object\n'),),
            upload_time=_t(2025, 7),
        ),
        Dist(name="brokenimport-arrow", version="26.0", upload_time=_t(2026, 4)),
        Dist(
            name="brokenimport-data",
            version="2.14.4",
            requires_dist=("brokenimport-arrow>=8",),
            files=(("brokenimport_data/__init__.py", data),),
            upload_time=_t(2023, 8),
        ),
    ]
