"""Which artifacts of a lock a target installs (PEP 751 selection), and requirements text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from packaging.pylock import PackageWheel, Pylock, PylockSelectError
from packaging.tags import Tag

from envlock.errors import MaterialiseError
from envlock.resolve import platform_environment, platform_tags
from envlock.spec import Platform


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
    if not platform_tag.startswith("manylinux_"):
        return True
    parts = platform_tag.split("_")
    return (int(parts[1]), int(parts[2])) <= glibc


def select(lock: Pylock, target: Target) -> tuple[Selected, ...]:
    """Exactly what PEP 751 says to install for ``target``, sorted by name."""
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
            )
        )
    return tuple(sorted(result))


def render_requirements(selected: Sequence[Selected], *, header: str = "") -> str:
    """Hashed `name @ url --hash=sha256:…` lines; pip and uv install them with
    --require-hashes --no-deps."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += [f"{s.name} @ {s.url} \\\n    --hash=sha256:{s.sha256}" for s in selected]
    return "\n".join(lines) + "\n"
