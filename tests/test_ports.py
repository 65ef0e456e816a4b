"""The io ports (envlock.io.ports): an api verb takes a fake in place of the real host or index,
so its logic is tested without a GPU, a network or a subprocess."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.pylock import Pylock

from envlock import api
from envlock.api.lock import HashMissing, _check_index_hashes
from envlock.doctor import Level
from envlock.errors import HashMismatchError
from envlock.host import HostFacts
from envlock.io.ports import AuthFor, Listing
from envlock.lockfile import LockMeta, render_lock
from envlock.resolve import UvProject
from envlock.wheels import artifact_key

TORCH_INDEX = "https://download.pytorch.org/whl/cu124"
TORCH_WHEEL = "torch-2.6.0+cu124-cp311-cp311-manylinux_2_28_x86_64.whl"
SHA = "a" * 64


@dataclass
class FakeHost:
    """A HostProbe that describes a host instead of reading one."""

    facts: HostFacts
    pythons: Mapping[str, Path] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def system(self) -> HostFacts:
        return HostFacts(os=self.facts.os, machine=self.facts.machine, glibc=self.facts.glibc)

    def host(
        self, environ: Mapping[str, str] | None = None, *, system: HostFacts | None = None
    ) -> HostFacts:
        return self.facts

    def find_python(self, minor: str, environ: Mapping[str, str]) -> Path | None:
        self.asked.append(minor)
        return self.pythons.get(minor)


@dataclass
class FakeIndex:
    """An IndexReader serving listings from a dict, recording what it was asked for."""

    pages: Mapping[tuple[str, str], Listing]
    asked: list[tuple[str, str]] = field(default_factory=list)

    def listings(
        self, wanted: Sequence[tuple[str, str]], auth: AuthFor
    ) -> dict[tuple[str, str], Listing]:
        self.asked += wanted
        return {key: self.pages[key] for key in wanted}


def _torch_lock() -> Pylock:
    """torch from the cu124 index and six from PyPI, as `envlock lock` writes them."""
    meta = LockMeta(
        spec_digest="sha256:" + "0" * 64,
        envlock_version="0.1.0",
        python="3.11",
        platforms=("linux-x86_64",),
        torch="2.6",
        variant="cu124",
        variant_index=TORCH_INDEX,
        pypi_index="https://pypi.org/simple",
        torch_source={"linux-x86_64": "pytorch-index"},
    )
    wheel = TORCH_WHEEL.replace("+", "%2B")
    return Pylock.from_dict(
        {
            "lock-version": "1.0",
            "created-by": "envlock",
            "requires-python": "==3.11.*",
            "packages": [
                {
                    "name": "six",
                    "version": "1.17.0",
                    "index": "https://pypi.org/simple",
                    "wheels": [
                        {
                            "url": "https://files.example/six-1.17.0-py2.py3-none-any.whl",
                            "hashes": {"sha256": "b" * 64},
                        }
                    ],
                },
                {
                    "name": "torch",
                    "version": "2.6.0+cu124",
                    "index": TORCH_INDEX,
                    "wheels": [{"url": f"{TORCH_INDEX}/{wheel}", "hashes": {"sha256": SHA}}],
                },
            ],
            "tool": {"envlock": meta.to_tool()},
        }
    )


def _project() -> UvProject:
    return UvProject(
        pyproject="",
        lock_args=(),
        credentials={},
        secrets=(),
        index_labels={},
        pypi_url="https://pypi.org/simple",
    )


def test_doctor_judges_the_host_a_fake_probe_describes(tmp_path: Path) -> None:
    lock_path = tmp_path / "pylock.toml"
    lock_path.write_text(render_lock(_torch_lock()))
    probe = FakeHost(
        HostFacts(
            os="linux",
            machine="x86_64",
            glibc="2.35",
            python="3.12",  # envlock's own; the lock's 3.11 is found through the probe
            nvidia_driver="470.57.02",
            driver_source="fake",
        ),
        pythons={"3.11": Path("/opt/python3.11/bin/python3.11")},
    )

    report = api.doctor(lock_path, host_probe=probe)

    assert probe.asked == ["3.11"]
    assert report.host.python_path == "/opt/python3.11/bin/python3.11"
    errors = [f.what for f in report.findings if f.level is Level.ERROR]
    assert errors == ["NVIDIA driver 470.57.02 is too old for cu124"]


def test_hash_check_reads_only_non_pypi_listings_and_refuses_another_sha256() -> None:
    index = FakeIndex({(TORCH_INDEX, "torch"): {artifact_key(TORCH_WHEEL): {"sha256": "c" * 64}}})

    with pytest.raises(HashMismatchError, match="another sha256"):
        _check_index_hashes(_torch_lock(), _project(), HashMissing.REFUSE, print, index)

    assert index.asked == [(TORCH_INDEX, "torch")]  # pypi.org lists a hash for every file


def test_hash_check_refuses_a_file_its_index_lists_without_a_hash() -> None:
    index = FakeIndex({(TORCH_INDEX, "torch"): {artifact_key(TORCH_WHEEL): {}}})

    with pytest.raises(HashMismatchError, match="without a hash") as refused:
        _check_index_hashes(_torch_lock(), _project(), HashMissing.REFUSE, print, index)

    assert "torch-2.6.0%2Bcu124" in refused.value.detail
