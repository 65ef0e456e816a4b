"""Which artifacts of a lock a target installs (PEP 751 selection), and requirements text."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from packaging.pylock import PackageWheel, Pylock, PylockSelectError
from packaging.tags import Tag

from envlock import _toml
from envlock.errors import MaterialiseError
from envlock.resolve import platform_environment, platform_tags
from envlock.spec import Platform
from envlock.wheels import parse_manylinux


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    label: str  # "linux-x86_64 / CPython 3.11.7"
    environment: Mapping[str, str]
    tags: tuple[Tag, ...]


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Selected:
    name: str
    version: str
    url: str
    sha256: str
    filename: str
    size: int | None = None
    is_wheel: bool = True
    # The index the lock says the package came from: uv keys its cache of index artifacts by
    # it, so a warm cache serves the next venv; without it uv revalidates each URL (PyPI's CDN
    # answers with the whole file again).
    index: str | None = None


def platform_target(
    platform: Platform, python: str, *, full_version: str | None = None, glibc: str | None = None
) -> Target:
    """A target for a declared platform; ``glibc`` caps the manylinux tags a host accepts."""
    environment = platform_environment(platform, python)
    if full_version:
        environment["python_full_version"] = full_version
        environment["implementation_version"] = full_version
    tags = platform_tags(platform, python)
    if glibc is not None:
        major, minor = (int(p) for p in glibc.split(".")[:2])
        tags = [t for t in tags if _glibc_ok(t.platform, (major, minor))]
    label = f"{platform.value} / CPython {full_version or python}"
    return Target(label=label, environment=environment, tags=tuple(tags))


def _glibc_ok(platform_tag: str, glibc: tuple[int, int]) -> bool:
    tag = parse_manylinux(platform_tag)
    # The legacy aliases (manylinux2014: glibc 2.17) are kept whatever the cap, as before.
    return tag is None or tag.legacy or tag.glibc <= glibc


def _local_url(path: str, lock_dir: Path | None, name: str) -> str:
    """A `path` artifact as a file:// URL; never outside the lock's directory."""
    if lock_dir is None:
        raise MaterialiseError(
            f"{name}: a `path` artifact needs the lock's directory",
            hint="Read the lock from its file (envlock sync --lock DIR/pylock.toml).",
        )
    base = lock_dir.resolve()
    target = (base / path).resolve()
    if PurePosixPath(path).is_absolute() or not target.is_relative_to(base):
        raise MaterialiseError(
            f"{name}: artifact path {path!r} points outside the lock's directory",
            hint="A bundle keeps its files under its own directory; refusing to read elsewhere.",
        )
    return target.as_uri()


def select(lock: Pylock, target: Target, *, lock_dir: Path | None = None) -> tuple[Selected, ...]:
    """Exactly what PEP 751 says to install for ``target``, sorted by name.

    ``lock_dir`` resolves relative `path` artifacts (an offline bundle)."""
    try:
        chosen = list(lock.select(environment=dict(target.environment), tags=list(target.tags)))  # type: ignore[arg-type]
    except PylockSelectError as exc:
        raise MaterialiseError(
            f"the lock cannot be installed on {target.label}: {exc}",
            hint="Add this platform/Python to torchenv.toml ([env]) and run `envlock lock`.",
        ) from None
    result = []
    for package, artifact in chosen:
        url = getattr(artifact, "url", None)
        local = getattr(artifact, "path", None)
        if url is None and local is not None:
            url = _local_url(local, lock_dir, package.name)
        hashes = getattr(artifact, "hashes", {})
        if url is None or "sha256" not in hashes:
            raise MaterialiseError(
                f"{package.name}: the selected artifact has no URL or no sha256",
                hint="envlock installs only URL artifacts pinned by sha256; re-lock.",
            )
        filename = artifact.filename if hasattr(artifact, "filename") else url.rsplit("/", 1)[-1]
        result.append(
            Selected(
                name=package.name,
                version=str(package.version),
                url=url,
                sha256=hashes["sha256"],
                filename=filename,
                size=getattr(artifact, "size", None),
                is_wheel=isinstance(artifact, PackageWheel),
                index=package.index if local is None else None,
            )
        )
    return tuple(sorted(result))


def render_requirements(selected: Sequence[Selected], *, header: str = "") -> str:
    """Hashed `name @ url --hash=sha256:…` lines; pip and uv install them with
    --require-hashes --no-deps."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += [f"{s.name} @ {s.url} \\\n    --hash=sha256:{s.sha256}" for s in selected]
    return "\n".join(lines) + "\n"


def render_install_lock(selected: Sequence[Selected], *, indexes: Collection[str] = ()) -> str:
    """A PEP 751 lock of exactly the selected artifacts (one per package, no markers), for
    `uv pip sync pylock.toml`: uv then takes names, versions and hashes from it and downloads
    each artifact once (from a requirements file it also fetches each wheel for its metadata).

    A package keeps its ``index`` (uv's cache key for it) only when that is one of ``indexes``,
    the ones the lock's record names: a hand-edited ``index`` (another host, credentials,
    whitespace) is not handed on to uv, which then fetches that artifact by its URL, pinned."""
    lines = [f"lock-version = {_toml.value('1.0')}", f"created-by = {_toml.value('envlock')}"]
    for s in selected:
        if s.url.startswith("file:"):
            from urllib.parse import unquote, urlsplit  # noqa: PLC0415

            where = {"path": unquote(urlsplit(s.url).path)}
        else:
            where = {"url": s.url}
        artifact: dict[str, object] = {
            "name": s.filename,
            **where,
            "hashes": {"sha256": s.sha256},
        }
        if s.size is not None:
            artifact["size"] = s.size
        lines += [
            "",
            "[[packages]]",
            f"name = {_toml.value(s.name)}",
            f"version = {_toml.value(s.version)}",
            *([f"index = {_toml.value(s.index)}"] if s.index and s.index in indexes else []),
            f"wheels = {_toml.multiline_array([artifact])}"
            if s.is_wheel
            else f"sdist = {_toml.inline_table(artifact)}",
        ]
    return "\n".join(lines) + "\n"


def bundle_lock(lock: Pylock, filenames: frozenset[str], directory: str = "wheels") -> Pylock:
    """The same lock with only the bundled artifacts, each as a relative `path`."""
    packages = []
    for package in lock.packages:
        wheels = [
            replace(w, url=None, path=f"{directory}/{w.filename}")
            for w in package.wheels or ()
            if w.filename in filenames
        ]
        sdist = package.sdist
        if sdist is not None:
            sdist = (
                replace(sdist, url=None, path=f"{directory}/{sdist.filename}")
                if sdist.filename in filenames
                else None
            )
        if wheels or sdist is not None:
            packages.append(replace(package, wheels=wheels or None, sdist=sdist))
    return replace(lock, packages=packages)
