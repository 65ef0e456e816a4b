"""uv's answer -> envlock's values: the lock filtered to the spec's targets, or an error. Pure.

envlock contains no resolver: uv solves the project ``envlock.resolve_project`` builds
(whose names are re-exported here). This module turns uv's export into the lock, keeping only
artifacts for the declared platforms and Python, checks that every torch-family package came
from the index the selection chose, and turns uv's failures into the right error family.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from packaging.markers import Marker, default_environment
from packaging.pylock import Package, PackageWheel, Pylock, PylockValidationError
from packaging.tags import Tag, compatible_tags, cpython_tags, mac_platforms
from packaging.utils import canonicalize_name

from envlock.channels import Selection, TorchOrigin
from envlock.errors import (
    EnvlockError,
    HashMismatchError,
    IndexUnavailableError,
    InternalError,
    ResolutionError,
    UvResolutionError,
)
from envlock.resolve_project import (
    ENVLOCK_MIN_PYTHON,
    PROJECT_NAME,
    PYPI_INDEX_NAME,
    PYTORCH_INDEX_NAME,
    UvProject,
    build_uv_project,
    direct_requirements,
    preferences_lock,
    sourced_names,
)
from envlock.settings import in_envlock_terms
from envlock.spec import Platform, Spec
from envlock.urls import redact_text
from envlock.wheels import linux_platform_tags, parse_wheel

__all__ = [
    "ENVLOCK_MIN_PYTHON",
    "PROJECT_NAME",
    "PYPI_INDEX_NAME",
    "PYTORCH_INDEX_NAME",
    "StatusProbe",
    "UvProject",
    "build_uv_project",
    "check_routing",
    "classify_uv_failure",
    "direct_requirements",
    "filter_package",
    "platform_environment",
    "platform_tags",
    "preferences_lock",
    "pylock_from_export",
    "sourced_names",
]

# --------------------------------------------------------------------------------------
# uv failures -> envlock errors

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_URL = re.compile(r"https?://[^\s`'\")]+")
_NETWORK_MARKERS = (
    "failed to fetch",
    "error sending request",
    "connection refused",
    "dns error",
    "timed out",
    "operation timed out",
    "could not connect",
    "tcp connect error",
    "request failed after",
    "status code",
    "http status",
    "failed to download",
    "certificate",
    # the index answered, but not with an index page
    "unsupported content type",
    "expected json or html",
)


def _cleaned(stderr: str, secrets: tuple[str, ...]) -> str:
    """uv's stderr as envlock shows it: secrets redacted, envlock's names, its progress lines
    dropped."""
    text = in_envlock_terms(redact_text(_ANSI.sub("", stderr), secrets))
    return "\n".join(
        line.rstrip()
        for line in text.splitlines()
        if line.strip() and not line.startswith(("Using CPython", "Resolved ", "DEBUG"))
    )


def _cut(text: str, limit: int = 30) -> str:
    lines = text.splitlines()
    if len(lines) > limit:
        lines = [*lines[:limit], f"... ({len(lines) - limit} more lines)"]
    return "\n".join(lines)


_NOT_FOUND = re.compile(r"\b([A-Za-z0-9][A-Za-z0-9._-]*) was not found in the package registry")
_NO_VERSIONS = re.compile(r"there are no versions of ([A-Za-z0-9][A-Za-z0-9._-]*) and")

StatusProbe = Callable[[str], int | None]


def classify_uv_failure(
    stderr: str, project: UvProject, status_of: StatusProbe | None = None
) -> EnvlockError:
    """Turn uv's stderr into the right error family, naming the index and redacting secrets.

    uv reports a torch-family package that its (explicit) index refused or lacks (401, 403,
    404) as "not found"; that is a broken or unauthorised index, not a resolution problem.
    ``status_of`` (a URL -> HTTP status probe from the io layer) names the status.
    """
    whole = _cleaned(stderr, project.secrets)  # a UvResolutionError's explanation
    detail = _cut(whole)
    lowered = detail.lower()
    for match in _NOT_FOUND.finditer(detail):
        name = canonicalize_name(match.group(1))
        index = project.routed.get(name)
        if index is None:
            continue
        status = status_of(f"{index}/{name}/") if status_of is not None else None
        label = project.index_labels.get(index, index)
        answer = f" (HTTP {status})" if status and status >= 400 else ""
        return IndexUnavailableError(
            f"{label} did not serve {name}{answer}",
            hint="Check ENVLOCK_PYTORCH_INDEX_URL / [indexes] pytorch and its credentials; the "
            "variant folder must be a PEP 503 index (`envlock channels` lists real variants).",
            detail=detail,
        )
    for match in _NO_VERSIONS.finditer(detail):
        name = canonicalize_name(match.group(1))
        index = project.routed.get(name)
        if index is not None:  # the channel data says it is there: the page is broken
            label = project.index_labels.get(index, index)
            return IndexUnavailableError(
                f"{label} lists no usable {name} files ({index}/{name}/)",
                hint="The page is empty or not an index page; check ENVLOCK_PYTORCH_INDEX_URL / "
                "[indexes] pytorch. The previous lock was left as it was.",
                detail=detail,
            )
    if "hash mismatch" in lowered:
        urls = ", ".join(sorted(set(_URL.findall(detail)))) or "a file"
        return HashMismatchError(
            f"the index served {urls} with other bytes than the hash it lists",
            hint="Tampered or half-published files on the index (or a broken mirror); nothing "
            "was written. Try again later or ask the index's owner.",
            detail=detail,
        )
    missing = [m.group(1) for m in _NOT_FOUND.finditer(detail)]
    pypi = project.pypi_url
    # uv reads 401/403 (and a dead page) as "not found" too; only 404 means no such package.
    for missing_name in sorted(set(missing)):
        if status_of is None:
            break
        status = status_of(f"{pypi}/{canonicalize_name(missing_name)}/")
        if status != 404:
            answer = f"HTTP {status}" if status else "no answer"
            return IndexUnavailableError(
                f"the PyPI index ({pypi}) did not serve {missing_name} ({answer})",
                hint="Check [indexes] pypi / ENVLOCK_PYPI_INDEX_URL and its credentials; the "
                "previous lock was left as it was.",
                detail=detail,
            )
    if missing:
        return UvResolutionError(
            f"the PyPI index has no package named {', '.join(sorted(set(missing)))}",
            hint="Check the spelling in [packages]. If every package is reported missing, check "
            "the PyPI index URL ([indexes] pypi or ENVLOCK_PYPI_INDEX_URL).",
            detail=detail,
            explanation=whole,
        )
    if "no solution found" in lowered or "unsatisfiable" in lowered:
        return UvResolutionError(
            "no set of packages satisfies torchenv.toml",
            hint="Read uv's explanation above; loosen the named requirement or pick another "
            "torch release/build (`envlock channels` lists what exists).",
            detail=detail,
            explanation=whole,
        )
    if any(marker in lowered for marker in _NETWORK_MARKERS):
        index = _name_index(detail, project.index_labels)
        code = re.search(r"\b(4\d\d|5\d\d)\b", detail)
        what = f" (HTTP {code.group(1)})" if code else ""
        if "timed out" in lowered or "timeout" in lowered:
            return IndexUnavailableError(
                f"{index} did not answer in time{what}",
                hint="Check the network/proxy, or allow more time with ENVLOCK_HTTP_TIMEOUT "
                "(seconds per request; uv's default is 30), then run `envlock lock` again; the "
                "previous lock was left as it was.",
                detail=detail,
            )
        return IndexUnavailableError(
            f"could not read {index}{what}",
            hint="Check the URL in [indexes] or ENVLOCK_*_INDEX_URL, your network/proxy and "
            "credentials, then run `envlock lock` again; the previous lock was left as it was.",
            detail=detail,
        )
    return UvResolutionError(
        "uv could not lock the environment",
        hint="Read uv's message above; run with --debug for the full uv command line.",
        detail=detail,
        explanation=whole,
    )


def _name_index(detail: str, labels: Mapping[str, str]) -> str:
    found = _URL.findall(detail)
    for url in found:
        for base, label in labels.items():
            if url.startswith(base):
                return label
    # A file outside its index's path (pypiserver's /packages/, a devpi base index's +f/):
    # the one index on the same scheme://host:port.
    for url in found:
        origin = urlsplit(url)[:2]
        same = {label for base, label in labels.items() if urlsplit(base)[:2] == origin}
        if len(same) == 1:
            return same.pop()
    if labels:
        return " or ".join(sorted(labels.values()))
    return "a package index"


# --------------------------------------------------------------------------------------
# uv's export -> envlock's Pylock


def platform_tags(platform: Platform, python: str) -> list[Tag]:
    """The wheel tags a CPython ``python`` on ``platform`` accepts (glibc Linux, macOS 11+)."""
    major, minor = (int(p) for p in python.split("."))
    version = (major, minor)
    if platform in (Platform.LINUX_X86_64, Platform.LINUX_AARCH64):
        plats = linux_platform_tags("x86_64" if platform is Platform.LINUX_X86_64 else "aarch64")
    elif platform is Platform.MACOS_ARM64:
        plats = list(mac_platforms((26, 0), "arm64"))
    else:
        plats = ["win_amd64"]
    interpreter = f"cp{major}{minor}"
    tags = list(cpython_tags(version, abis=[interpreter, "abi3", "none"], platforms=plats))
    tags += list(compatible_tags(version, interpreter=interpreter, platforms=plats))
    return tags


def platform_environment(platform: Platform, python: str) -> dict[str, str]:
    env: dict[str, str] = {k: str(v) for k, v in default_environment().items()}
    env.update(
        {
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "python_version": python,
            "python_full_version": f"{python}.0",
            "implementation_version": f"{python}.0",
            "platform_release": "",
            "platform_version": "",
        }
    )
    env.update(platform.environment)
    return env


def _applies(marker: Marker | None, env: Mapping[str, str]) -> bool:
    if marker is None:
        return True
    return marker.evaluate(dict(env), context="lock_file")


_UV_BUG = "A bug in envlock or uv: re-run with --debug and report it with the output."


def _wheel_tags(wheel: PackageWheel) -> frozenset[Tag]:
    parsed = parse_wheel(wheel.filename)
    if parsed is None:
        raise InternalError(
            f"uv exported an invalid wheel filename {wheel.filename!r}",
            hint=_UV_BUG,
        )
    return parsed[3]


def filter_package(
    package: Package, targets: Sequence[tuple[Platform, frozenset[Tag], Mapping[str, str]]]
) -> Package | None:
    """Keep the wheels some target can install; keep the sdist only if a target needs it.

    Returns None when the package applies to no target at all.
    """
    applicable = [(p, tags) for p, tags, env in targets if _applies(package.marker, env)]
    if not applicable:
        return None
    wheels = [w for w in package.wheels or () if any(_wheel_tags(w) & t for _, t in applicable)]
    needs_sdist = any(not any(_wheel_tags(w) & t for w in wheels) for _, t in applicable)
    sdist = package.sdist if needs_sdist else None
    if needs_sdist and sdist is None and package.archive is None and package.vcs is None:
        missing = [p.value for p, t in applicable if not any(_wheel_tags(w) & t for w in wheels)]
        raise ResolutionError(
            f"{package.name} {package.version} has no wheel for {', '.join(missing)} and no "
            "source distribution",
            hint=f"Pin another version of {package.name} in [packages], or drop that platform.",
        )
    all_targets = len(applicable) == len(targets) and all(
        _applies(package.marker, {**env, "python_full_version": env["python_version"] + ".99"})
        for _, _, env in targets
    )
    marker = None if all_targets and _is_platform_marker(package.marker) else package.marker
    return replace(
        package,
        marker=marker,
        wheels=sorted(wheels, key=lambda w: w.filename) or None,
        sdist=sdist,
        dependencies=None,
    )


_PLATFORM_ONLY_VARIABLES = frozenset(
    {
        "sys_platform",
        "platform_machine",
        "platform_system",
        "os_name",
        "python_version",
        "python_full_version",
        "implementation_name",
        "platform_python_implementation",
    }
)
_MARKER_VARIABLE = re.compile(
    # A marker variable: not inside a quoted value ("darwin" must not read as `darw in`).
    r"(?<![\"'\w])([a-z_]+)(?:\s*(?:===|==|!=|<=|>=|<|>|~=)|\s+(?:not\s+)?in\s)"
)


def _is_platform_marker(marker: Marker | None) -> bool:
    """True when the marker only tests variables fixed by a declared platform + Python minor.

    Such a marker that holds on every declared platform says nothing the lock's
    ``environments`` do not already say, so it is dropped to keep locks and diffs readable.
    """
    if marker is None:
        return True
    variables = set(_MARKER_VARIABLE.findall(str(marker)))
    return bool(variables) and variables <= _PLATFORM_ONLY_VARIABLES


def _sort_key(package: Package) -> tuple[str, str, str]:
    return (package.name, str(package.version or ""), str(package.marker or ""))


def pylock_from_export(export: Mapping[str, Any], *, spec: Spec, tool: Mapping[str, Any]) -> Pylock:
    """Validate uv's exported pylock, filter it to the spec's targets, attach [tool.envlock]."""
    try:
        exported = Pylock.from_dict(export)
    except PylockValidationError as exc:
        raise InternalError(f"uv exported an invalid pylock.toml: {exc}", hint=_UV_BUG) from exc
    targets = [
        (
            p,
            frozenset(platform_tags(p, spec.python)),
            platform_environment(p, spec.python),
        )
        for p in spec.platforms
    ]
    packages: list[Package] = []
    for package in exported.packages:
        if package.name == PROJECT_NAME:
            continue
        kept = filter_package(package, targets)
        if kept is not None:
            packages.append(kept)
    # The caller validates the rendered bytes with Pylock.from_dict before writing them.
    return Pylock(
        lock_version=exported.lock_version,
        environments=[Marker(p.marker) for p in spec.platforms],
        requires_python=spec.requires_python,
        extras=[],
        dependency_groups=[],
        default_groups=[],
        created_by="envlock",
        packages=sorted(packages, key=_sort_key),
        tool={"envlock": dict(tool)},
    )


def check_routing(
    lock: Pylock,
    selection: Selection,
    *,
    spec: Spec,
    pypi_index: str,
    pytorch_index: str | None,
) -> None:
    """Defence in depth against dependency confusion.

    Every torch-family package must come, on each platform it applies to, from the index the
    selection chose for that platform: never a higher-versioned copy from another index.
    A torch-family package that is not routed (another package pulled it in) came from PyPI;
    where the lock's torch comes from a PyTorch index that is a build mismatch at best,
    dependency confusion at worst.
    """
    routed = set(selection.routed)
    family = routed | set(selection.family)
    for package in lock.packages:
        if package.name not in family:
            continue
        for choice in selection.platforms:
            if not _applies(package.marker, platform_environment(choice.platform, spec.python)):
                continue
            from_index = choice.origin is TorchOrigin.PYTORCH_INDEX
            if package.name not in routed:
                if from_index:
                    raise ResolutionError(
                        f"{package.name} {package.version} for {choice.platform.value} came "
                        f"from {package.index or pypi_index} as a dependency of another package, "
                        f"but this lock's torch comes from the PyTorch "
                        f"{selection.variant.name} index",
                        hint=f"Name {package.name} in [packages] so envlock takes it from the "
                        f"{selection.variant.name} index too (as uv's --torch-backend would).",
                    )
                continue
            if from_index and pytorch_index is not None:
                expected, label = pytorch_index, f"the PyTorch {selection.variant.name} index"
            else:
                expected, label = pypi_index, "PyPI"
            if (package.index or "").rstrip("/") != expected.rstrip("/"):
                raise ResolutionError(
                    f"{package.name} {package.version} for {choice.platform.value} resolved from "
                    f"{package.index}, but torch-family packages must come from {label} "
                    f"({expected})",
                    hint=f"If another package pulls in {package.name}, name it in [torch] "
                    "(vision/audio) or [packages] so envlock pins it to the right index.",
                )
