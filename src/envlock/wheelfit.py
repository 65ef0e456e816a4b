"""Will each package a lock installs here find a wheel this host loads? Pure.

For every package whose marker applies to (platform, Python), its wheels for the platform are
judged on the two things a platform name does not settle: the C library (a manylinux_X_Y tag
needs glibc >= X.Y, a musllinux tag needs musl) and the interpreter (cp312 wheels do not load
in CPython 3.11). A package passes when one of its wheels passes both, as PEP 751 selection
would pick it; otherwise :func:`unfit_wheels` says which wheel came closest and what stops it.
envlock.doctor words the findings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.pylock import Package, Pylock
from packaging.tags import Tag

from envlock.resolve import platform_environment, platform_tags
from envlock.spec import Platform
from envlock.wheels import fits_platform, parse_manylinux, parse_wheel

_MUSLLINUX = re.compile(r"^musllinux_(\d+)_(\d+)_(.+)$")
_LINUX = (Platform.LINUX_X86_64, Platform.LINUX_AARCH64)


@dataclass(frozen=True, slots=True, kw_only=True)
class Unfit:
    """A package none of whose wheels for this platform this host can load."""

    package: str
    filename: str  # the wheel that came closest
    glibc: tuple[int, int] | None = None  # it loads, but needs this glibc (manylinux_X_Y)
    musl: bool = False  # it loads, but is built for musl libc (musllinux) only
    built_for: tuple[str, ...] = ()  # else: the interpreter/ABI pairs its tags ask for
    has_sdist: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class WheelFit:
    unfit: tuple[Unfit, ...]
    newest_glibc: tuple[int, int] | None  # the highest glibc floor among the wheels that fit
    judged: int  # how many packages had wheels for this platform


def _applies(package: Package, environment: dict[str, str]) -> bool:
    return package.marker is None or package.marker.evaluate(environment, context="lock_file")


def _libc_ok(tag: Tag, platform: Platform, glibc: tuple[int, int] | None) -> bool:
    if platform not in _LINUX or tag.platform == "any":
        return True
    if _MUSLLINUX.match(tag.platform):
        return False  # envlock's hosts are glibc Linux (a musl host reads as glibc unknown)
    manylinux = parse_manylinux(tag.platform)
    return manylinux is None or glibc is None or manylinux.glibc <= glibc


def _glibc_floor(tags: frozenset[Tag]) -> tuple[int, int] | None:
    floors = [m.glibc for m in (parse_manylinux(t.platform) for t in tags) if m is not None]
    return min(floors) if floors else None


def unfit_wheels(
    lock: Pylock, platform: Platform, python: str, glibc: tuple[int, int] | None
) -> WheelFit:
    """Each package of ``lock`` for ``platform``/CPython ``python`` that has wheels for the
    platform but none that loads on a host with ``glibc`` (None: not judged)."""
    interpreters = {(t.interpreter, t.abi) for t in platform_tags(platform, python)}
    environment = platform_environment(platform, python)
    unfit: list[Unfit] = []
    newest: tuple[int, int] | None = None
    judged = 0
    for package in lock.packages:
        if not _applies(package, environment):
            continue
        wheels = []
        for wheel in package.wheels or ():
            parsed = parse_wheel(wheel.filename)
            if parsed is not None and fits_platform(parsed[3], platform):
                wheels.append((wheel.filename, parsed[3]))
        if not wheels:
            continue
        judged += 1
        fitting = [
            (name, tags)
            for name, tags in wheels
            if any(
                (t.interpreter, t.abi) in interpreters and _libc_ok(t, platform, glibc)
                for t in tags
            )
        ]
        if fitting:
            floors = [f for f in (_glibc_floor(tags) for _, tags in fitting) if f is not None]
            if floors and (newest is None or min(floors) > newest):
                newest = min(floors)
            continue
        unfit.append(_closest(package, wheels, interpreters))
    return WheelFit(unfit=tuple(unfit), newest_glibc=newest, judged=judged)


def _closest(
    package: Package,
    wheels: list[tuple[str, frozenset[Tag]]],
    interpreters: set[tuple[str, str]],
) -> Unfit:
    """What stops the package: the C library when some wheel suits the interpreter (the
    lowest glibc floor among those), else the interpreter."""
    sdist = package.sdist is not None
    for_python = [
        (name, tags)
        for name, tags in wheels
        if any((t.interpreter, t.abi) in interpreters for t in tags)
    ]
    if for_python:
        floors = [(f, name) for name, tags in for_python if (f := _glibc_floor(tags)) is not None]
        if floors:
            floor, name = min(floors)
            return Unfit(package=package.name, filename=name, glibc=floor, has_sdist=sdist)
        return Unfit(package=package.name, filename=for_python[0][0], musl=True, has_sdist=sdist)
    name, tags = wheels[0]
    pairs = tuple(sorted({f"{t.interpreter}-{t.abi}" for t in tags}))
    return Unfit(package=package.name, filename=name, built_for=pairs, has_sdist=sdist)
