"""What [tool.envlock] would say, derived from a PEP 751 lock another tool wrote. Pure.

A lock from `pip lock`, `uv export --format pylock.toml` or any other tool has no
[tool.envlock] table; every command still reads it. The facts that table carries come from
the lock itself instead:

- python: the CPython minors every package has an artifact for (wheel interpreter/ABI tags,
  requires-python, environments); this interpreter's minor when it is one of them, else the
  lowest;
- platforms: the platforms envlock knows on which every package that applies has an artifact;
- torch, variant: the torch entry (its local version label ``+cu124``, its wheels' labels,
  the ``/<variant>/`` folder of their URLs or of its index; no label: PyPI's own build, from
  the channel data), as ``envlock doctor`` reads it;
- variant-index, torch-source: where the torch entry's files come from;
- pypi-index: the ``index`` most other packages name, or the host their files come from.

Each derived fact gets one note saying where it came from, or, when it could not be derived,
what envlock does instead; commands show the notes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from urllib.parse import unquote, urlsplit

from packaging.markers import Marker
from packaging.pylock import Package, Pylock
from packaging.tags import Tag

from envlock.channels import Channels, Variant, variant_named
from envlock.doctor import locked_build
from envlock.family import TORCH, varies_with_build
from envlock.lockfile import LockMeta
from envlock.resolve import platform_environment, platform_tags
from envlock.spec import DEFAULT_PYPI_INDEX, Platform
from envlock.wheels import fits_platform, parse_wheel

_PYPI_FILES = "files.pythonhosted.org"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Where:
    platform: Platform
    python: str


@cache
def _tags(platform: Platform, python: str) -> frozenset[Tag]:
    return frozenset(platform_tags(platform, python))


def _applies(marker: Marker | None, where: _Where) -> bool:
    if marker is None:
        return True
    env = platform_environment(where.platform, where.python)
    return marker.evaluate(dict(env), context="lock_file")


def _python_ok(package: Package, python: str) -> bool:
    spec = package.requires_python
    return spec is None or any(spec.contains(f"{python}.{p}") for p in (0, 99))


def _installs(package: Package, where: _Where) -> bool:
    """Whether the package has an artifact ``where`` can install (a source one counts)."""
    if not _python_ok(package, where.python):
        return False
    if package.sdist or package.archive or package.vcs or package.directory:
        return True
    tags = _tags(where.platform, where.python)
    for wheel in package.wheels or ():
        parsed = parse_wheel(wheel.filename)
        if parsed is not None and parsed[3] & tags:
            return True
    return False


def _lock_admits(lock: Pylock, where: _Where) -> bool:
    if lock.requires_python is not None and not any(
        lock.requires_python.contains(f"{where.python}.{p}") for p in (0, 99)
    ):
        return False
    if lock.environments:
        return any(_applies(m, where) for m in lock.environments)
    return True


def _viable(lock: Pylock, pythons: Sequence[str]) -> list[_Where]:
    """Every (platform, python) the lock installs on: each package that applies has an
    artifact there."""
    found = []
    for python in pythons:
        for platform in Platform:
            where = _Where(platform=platform, python=python)
            if not _lock_admits(lock, where):
                continue
            packages = [p for p in lock.packages if _applies(p.marker, where)]
            if packages and all(_installs(p, where) for p in packages):
                found.append(where)
    return found


def _minor(python: str) -> int:
    return int(python.split(".")[1])


def _span(pythons: Sequence[str]) -> str:
    if len(pythons) > 2:
        return f"{pythons[0]}-{pythons[-1]}"
    return ", ".join(pythons)


def _python(viable: Sequence[_Where], prefer: str | None, notes: list[str]) -> str:
    pythons = sorted({w.python for w in viable}, key=_minor)
    if not pythons:
        fallback = prefer or "3.11"
        notes.append(
            "python: no CPython minor has an artifact for every package; envlock uses "
            f"{fallback}, this interpreter's"
        )
        return fallback
    if len(pythons) == 1:
        notes.append(f"python: {pythons[0]}, the only CPython every package has an artifact for")
        return pythons[0]
    if prefer in pythons:
        chosen, why = prefer, "this interpreter's"
    else:
        chosen, why = pythons[0], "the lowest"
    notes.append(
        f"python: every package installs on CPython {_span(pythons)}; envlock uses {chosen}, {why}"
    )
    return chosen


def _platforms(viable: Sequence[_Where], python: str, notes: list[str]) -> tuple[str, ...]:
    platforms = tuple(p.value for p in Platform if _Where(platform=p, python=python) in viable)
    if platforms:
        notes.append(
            f"platforms: {', '.join(platforms)} (every package has an artifact there for "
            f"CPython {python})"
        )
    else:
        notes.append(
            f"platforms: none: on no platform envlock knows does every package have an "
            f"artifact for CPython {python}; commands that need one refuse"
        )
    return platforms


def _variant_index(package: Package, variant: Variant) -> str | None:
    """The variant index the torch entry names, or the one its wheel URLs go through."""
    if package.index:
        return package.index.rstrip("/")
    for wheel in package.wheels or ():
        if not wheel.url:
            continue
        parts = urlsplit(wheel.url)
        folders = unquote(parts.path).split("/")[:-1]
        if variant.name in folders:
            cut = len(folders) - 1 - folders[::-1].index(variant.name)
            path = "/".join(folders[: cut + 1])
            return f"{parts.scheme}://{parts.netloc}{path}"
    return None


def _folder(url: str) -> Variant | None:
    """The variant folder a URL's path goes through (…/whl/cu126/torch-….whl), if any."""
    named = [variant_named(f) for f in unquote(urlsplit(url).path).split("/")[:-1]]
    found = [v for v in named if v is not None]
    return found[-1] if found else None


def _from_pytorch_index(package: Package, platform: Platform, pypi_index: str) -> bool:
    """Whether this platform's torch files come from a PyTorch index rather than PyPI."""
    if package.index:
        return package.index.rstrip("/") != pypi_index.rstrip("/")
    for wheel in package.wheels or ():
        parsed = parse_wheel(wheel.filename)
        if parsed is None or not fits_platform(parsed[3], platform):
            continue
        if wheel.url and _folder(wheel.url) is not None:
            return True
    local = package.version.local if package.version is not None else None
    return bool(local)


def _torch(
    lock: Pylock,
    *,
    channels: Channels,
    platforms: Sequence[str],
    python: str,
    pypi_index: str,
    notes: list[str],
) -> tuple[str, str, str | None, dict[str, str]]:
    """(torch series, variant, variant index, torch-source by platform)."""
    entries = [p for p in lock.packages if p.name == TORCH]
    if not entries:
        notes.append("torch: the lock has no torch; no build, driver or image checks apply")
        return "", "", None, {}
    variant: Variant | None = None
    series = ""
    index: str | None = None
    source: dict[str, str] = {}
    for name in platforms:
        platform = Platform(name)
        built = locked_build(lock, platform, python, channels)
        if built.version is None:
            continue
        series = series or f"{built.version.major}.{built.version.minor}"
        entry = next(
            (
                p
                for p in entries
                if p.version == built.version
                and _applies(p.marker, _Where(platform=platform, python=python))
            ),
            entries[0],
        )
        from_index = _from_pytorch_index(entry, platform, pypi_index)
        source[name] = "pytorch-index" if from_index else "pypi"
        if platform is Platform.MACOS_ARM64 or built.variant is None:
            continue
        if variant is None:
            variant = built.variant
            notes.append(f"torch: {built.shown}, build {variant.name}, read from its entry")
            if from_index:
                index = _variant_index(entry, variant)
    if variant is None and Platform.MACOS_ARM64.value in source:
        variant = Variant(name="cpu")  # macOS wheels are PyPI's CPU/MPS build
        notes.append("torch: macOS only, PyPI's cpu (MPS) build")
    if not series:
        version = max((p.version for p in entries if p.version is not None), default=None)
        series = f"{version.major}.{version.minor}" if version is not None else ""
    if variant is None:
        notes.append(
            f"variant: cannot tell which build torch {series or '(no version)'} is (no local "
            "label, no /<variant>/ folder, and no PyPI build in envlock's channel data); "
            "driver and GPU checks are skipped"
        )
    return series, variant.name if variant else "", index, source


def _pypi_index(lock: Pylock, notes: list[str]) -> str:
    others = [p for p in lock.packages if not varies_with_build(p.name)]
    named = Counter(p.index.rstrip("/") for p in others if p.index)
    if named:
        index = named.most_common(1)[0][0]
        notes.append(f"pypi-index: {index}, the index {named[index]} packages name")
        return index
    hosts = Counter(_wheel_hosts(others))
    if hosts and hosts.most_common(1)[0][0] == _PYPI_FILES:
        notes.append(f"pypi-index: {DEFAULT_PYPI_INDEX} (files come from {_PYPI_FILES})")
        return DEFAULT_PYPI_INDEX
    simple = Counter(_simple_roots(others))
    if simple:
        index = simple.most_common(1)[0][0]
        notes.append(f"pypi-index: {index}, where the files' URLs point")
        return index
    notes.append(
        "pypi-index: unknown (the lock names no index and its files are not under /simple/); "
        "the diff treats every package's index as unknown"
    )
    return ""


def _urls(packages: Iterable[Package]) -> list[str]:
    found = []
    for package in packages:
        found += [w.url for w in package.wheels or () if w.url]
        if package.sdist is not None and package.sdist.url:
            found.append(package.sdist.url)
    return found


def _wheel_hosts(packages: Iterable[Package]) -> list[str]:
    return [urlsplit(u).hostname or "" for u in _urls(packages)]


def _simple_roots(packages: Iterable[Package]) -> list[str]:
    roots = []
    for url in _urls(packages):
        parts = urlsplit(url)
        if "/simple/" in parts.path:
            path = parts.path.split("/simple/", 1)[0] + "/simple"
            roots.append(f"{parts.scheme}://{parts.netloc}{path}")
    return roots


def derive_meta(lock: Pylock, channels: Channels, *, prefer_python: str | None = None) -> LockMeta:
    """The LockMeta a lock without [tool.envlock] implies, with one note per derived fact
    (``derived``). ``prefer_python``: the minor to use when the lock installs on several."""
    notes: list[str] = []
    # The CPython minors a lock might be for: those of any release in the channel data.
    pythons = sorted({p for r in channels.releases for p in r.python}, key=_minor)
    viable = _viable(lock, pythons)
    python = _python(viable, prefer_python, notes)
    platforms = _platforms(viable, python, notes)
    pypi_index = _pypi_index(lock, notes)
    torch, variant, index, source = _torch(
        lock,
        channels=channels,
        platforms=platforms,
        python=python,
        pypi_index=pypi_index or DEFAULT_PYPI_INDEX,
        notes=notes,
    )
    return LockMeta(
        spec_digest="",
        envlock_version="",
        python=python,
        platforms=platforms,
        torch=torch,
        variant=variant,
        variant_index=index,
        pypi_index=pypi_index,
        torch_source=source,
        derived=tuple(notes),
    )


def describe_source(lock: Pylock) -> str:
    """Who wrote a lock without [tool.envlock], for messages: 'created by pip'."""
    return f"created by {lock.created_by}" if lock.created_by else "no created-by"
