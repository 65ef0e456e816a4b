"""Artifact file names and wheel platform tags: packaging's parsers, behind one helper. Pure.

Every reading of a wheel's name, version, tags or manylinux glibc floor goes through here
(``packaging.utils.parse_wheel_filename`` / ``parse_sdist_filename`` and ``packaging.tags``), so
doctor, selection and the hash check never split a file name or a tag by hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.tags import Tag
from packaging.utils import (
    BuildTag,
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from envlock.spec import Platform

WheelName = tuple[NormalizedName, Version, BuildTag, frozenset[Tag]]

# PEP 600 manylinux_X_Y_<arch>, and the older aliases (PEP 513/571/599) with the glibc each
# means and the architectures it was defined for, newest first.
_MANYLINUX = re.compile(r"^manylinux_(\d+)_(\d+)_(.+)$")
_LEGACY = (
    ("manylinux2014", (2, 17), ("x86_64", "i686", "aarch64", "armv7l", "ppc64le", "s390x")),
    ("manylinux2010", (2, 12), ("x86_64", "i686")),
    ("manylinux1", (2, 5), ("x86_64", "i686")),
)
_NEWEST_GLIBC_MINOR = 40  # manylinux_2_40: newer than any wheel on the indexes today

# Which platform tags install on each declared platform (any of the forms a wheel may carry).
_PLATFORM_TAGS = {
    Platform.LINUX_X86_64: re.compile(r"(many|musl)?linux.*_x86_64"),
    Platform.LINUX_AARCH64: re.compile(r"(many|musl)?linux.*_aarch64"),
    Platform.MACOS_ARM64: re.compile(r"macosx_.*_(arm64|universal2)"),
    Platform.WINDOWS_X86_64: re.compile(r"win_amd64"),
}


def parse_wheel(filename: str) -> WheelName | None:
    """(name, version, build tag, tags) of a wheel file name; None when it is not one."""
    try:
        return parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return None


def artifact_key(filename: str) -> str:
    """One spelling of an artifact's file name, so that an index listing
    `ruamel.yaml-0.18.6-py3-none-any.whl` and a lock naming `ruamel_yaml-0.18.6-...` meet:
    the normalised project name, the version and the tags."""
    if filename.endswith(".whl"):
        wheel = parse_wheel(filename)
        if wheel is None:
            return filename
        name, version, build, tags = wheel
        tag_text = ".".join(sorted(str(t) for t in tags))
        return f"{name}-{version}-{''.join(map(str, build))}-{tag_text}.whl"
    try:
        name, version = parse_sdist_filename(filename)
    except InvalidSdistFilename:
        return filename
    return f"{name}-{version}.sdist"


@dataclass(frozen=True, slots=True, kw_only=True)
class Manylinux:
    """A manylinux platform tag: the glibc it needs and its architecture."""

    glibc: tuple[int, int]
    arch: str
    legacy: bool  # manylinux1/2010/2014 rather than PEP 600's manylinux_X_Y


def parse_manylinux(platform_tag: str) -> Manylinux | None:
    """``manylinux_2_28_x86_64`` -> glibc (2, 28), x86_64; ``manylinux2014_aarch64`` -> (2, 17);
    None for any other platform tag."""
    if match := _MANYLINUX.match(platform_tag):
        glibc = (int(match.group(1)), int(match.group(2)))
        return Manylinux(glibc=glibc, arch=match.group(3), legacy=False)
    alias, _, arch = platform_tag.partition("_")
    for name, glibc, _arches in _LEGACY:
        if alias == name and arch:
            return Manylinux(glibc=glibc, arch=arch, legacy=True)
    return None


def linux_platform_tags(arch: str) -> list[str]:
    """The glibc Linux platform tags for ``arch``, most specific first: manylinux_2_40 down to
    manylinux_2_5, the legacy aliases defined for the architecture, then plain linux."""
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(_NEWEST_GLIBC_MINOR, 4, -1)]
    tags += [f"{name}_{arch}" for name, _, arches in _LEGACY if arch in arches]
    tags.append(f"linux_{arch}")
    return tags


def fits_platform(tags: Iterable[Tag], platform: Platform) -> bool:
    """Whether a wheel with these tags installs on ``platform`` (any Python, any glibc)."""
    pattern = _PLATFORM_TAGS[platform]
    return any(t.platform == "any" or pattern.fullmatch(t.platform) for t in tags)
