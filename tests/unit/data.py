"""Small, made-up inputs for the unit tables: channel data and locks, built as plain dicts."""

from __future__ import annotations

from typing import Any

from packaging.pylock import Pylock

from envlock.channels import Channels, parse_channels
from envlock.lockfile import LockMeta

SHA = "a" * 64


def channel_files() -> dict[str, Any]:
    """Two releases, three driver floors, a few architecture rows (not the shipped data)."""
    return {
        "releases.toml": {
            "release": [
                {
                    "torch": "2.6",
                    "python": ["3.9", "3.10", "3.11", "3.12", "3.13"],
                    "variants": ["cu118", "cu124", "cu126", "cpu", "rocm6.1", "rocm6.2.4", "xpu"],
                    "pypi": {
                        "linux-x86_64": "cu124",
                        "linux-aarch64": "cpu",
                        "macos-arm64": "cpu",
                        "windows-x86_64": "cpu",
                    },
                    "torchvision": "0.21",
                    "torchaudio": "2.6",
                    "triton": "3.2.0",
                    "source": "test",
                },
                {
                    "torch": "2.15",
                    "python": ["3.10", "3.11", "3.12", "3.13", "3.14"],
                    "variants": ["cu130", "cu132", "cpu"],
                    "pypi": {"linux-x86_64": "cu132"},
                    "torchvision": "0.30",
                    "torchaudio": "",
                    "triton": "3.9.0",
                    "source": "test",
                    "unverified": ["variants", "torchvision"],
                },
            ]
        },
        "drivers.toml": {
            "cuda": [
                {"major": 11, "min-driver-linux": "450.80.02", "min-driver-windows": "452.39"},
                {"major": 12, "min-driver-linux": "525.60.13", "min-driver-windows": "528.33"},
                {"major": 13, "min-driver-linux": "580.65.06", "min-driver-windows": "580.00"},
            ]
        },
        "gpu-arch.toml": {
            "arch": [
                {"torch": ">=2.6,<2.7", "variant": "cu118", "sm": ["7.0", "8.0", "8.6", "9.0"]},
                {"torch": ">=2.6,<2.7", "variant": "cu124", "sm": ["7.0", "8.0", "9.0"]},
                {
                    "torch": ">=2.6,<2.7",
                    "variant": "cu126",
                    "sm": ["7.0", "8.0", "9.0"],
                    "ptx": True,
                },
            ],
            "min-cuda": [{"sm": "12.0", "cuda": "12.8"}, {"sm": "8.9", "cuda": "11.8"}],
        },
        "family.toml": {
            "routing": {
                "always": ["torch", "torchvision", "torchaudio"],
                "if-requested": ["torchao", "xformers"],
                "by-kind": {"rocm": ["pytorch-triton-rocm"]},
            }
        },
    }


def channels() -> Channels:
    return parse_channels(channel_files())


def meta(**changes: Any) -> LockMeta:
    """[tool.envlock] of a torch 2.6 cu126 lock for linux-x86_64 / 3.11."""
    fields: dict[str, Any] = {
        "spec_digest": "sha256:" + "0" * 64,
        "envlock_version": "0.1.0",
        "python": "3.11",
        "platforms": ("linux-x86_64",),
        "torch": "2.6",
        "variant": "cu126",
        "variant_index": "https://download.pytorch.org/whl/cu126",
        "pypi_index": "https://pypi.org/simple",
        "torch_source": {"linux-x86_64": "pytorch-index"},
    }
    return LockMeta(**{**fields, **changes})


def wheel(url: str, sha256: str = SHA, **extra: Any) -> dict[str, Any]:
    return {"url": url, "hashes": {"sha256": sha256}, **extra}


def package(name: str, version: str, *wheels: dict[str, Any], **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "version": version, **extra}
    if wheels:
        entry["wheels"] = list(wheels)
    return entry


def lock(*packages: dict[str, Any], envlock: LockMeta | None = None, **top: Any) -> Pylock:
    """A Pylock of ``packages``; ``envlock`` becomes its [tool.envlock], ``top`` other keys."""
    data: dict[str, Any] = {
        "lock-version": "1.0",
        "created-by": "envlock",
        "requires-python": "==3.11.*",
        "packages": list(packages),
        **top,
    }
    if envlock is not None:
        data["tool"] = {"envlock": envlock.to_tool()}
    return Pylock.from_dict(data)


def torch_wheel(version: str, variant: str, tag: str = "manylinux_2_28_x86_64") -> dict[str, Any]:
    """download.pytorch.org's wheel of torch ``version``+``variant`` for CPython 3.11."""
    return wheel(
        f"https://download.pytorch.org/whl/{variant}/torch-{version}%2B{variant}-cp311-cp311-{tag}.whl"
    )
