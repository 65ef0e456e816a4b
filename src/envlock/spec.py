"""torchenv.toml -> Spec (pure: parses text, never touches the filesystem).

All problems in a spec are collected before raising, so a user fixes them in one pass. This
module walks the tables (and merges each [variants.<name>] over [torch]); ``spec_fields`` parses
each key and ``spec_model`` holds the values, re-exported here: callers import from here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from envlock import _toml
from envlock.errors import SpecError
from envlock.spec_fields import (
    INDEX_KEYS,
    Problems,
    check_keys,
    normalise_cuda,
    parse_digests,
    parse_exclude_newer,
    parse_indexes,
    parse_packages,
    parse_platforms,
    parse_python,
    parse_torch,
    subtable,
    torch_specifier,
)
from envlock.spec_model import (
    DEFAULT_PYPI_INDEX,
    DEFAULT_PYTORCH_INDEX,
    SPEC_FILENAME,
    Indexes,
    Platform,
    Spec,
    TorchSource,
    TorchSpec,
    VariantSpec,
    effective_indexes,
    spec_digest,
)
from envlock.spec_review import parse_cooldown, parse_review

__all__ = [
    "DEFAULT_PYPI_INDEX",
    "DEFAULT_PYTORCH_INDEX",
    "SPEC_FILENAME",
    "Indexes",
    "Platform",
    "Spec",
    "TorchSource",
    "TorchSpec",
    "VariantSpec",
    "effective_indexes",
    "normalise_cuda",
    "parse_spec",
    "parse_spec_text",
    "spec_digest",
    "torch_specifier",
]

_TOP_KEYS = ("env", "torch", "packages", "resolution", "indexes", "variants", "docker", "review")
_DOCKER_KEYS = ("digests",)
_VARIANT_KEYS = (*("version", "cuda", "vision", "audio", "source"), "platforms")
_VARIANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_ENV_KEYS = ("python", "platforms")
_TORCH_KEYS = ("version", "cuda", "vision", "audio", "source")
_RESOLUTION_KEYS = ("exclude-newer", "cooldown")


def parse_spec_text(text: str, *, source: str = SPEC_FILENAME) -> Spec:
    """Parse torchenv.toml text into a Spec, or raise SpecError listing every problem."""
    if not text.strip():
        raise SpecError(
            f"{source} is empty",
            hint="Run `envlock init` to write a commented torchenv.toml.",
        )
    try:
        data = _toml.loads(text)
    except _toml.DECODE_ERRORS as exc:
        raise SpecError(
            f"{source} is not valid TOML: {exc}",
            hint="Fix the syntax at that line and column (strings need quotes, tables [brackets]).",
        ) from None
    return parse_spec(data, source=source)


def parse_spec(data: Mapping[str, Any], *, source: str = SPEC_FILENAME) -> Spec:
    """Validate a loaded torchenv.toml mapping and build a Spec."""
    problems = Problems(source)
    check_keys(problems, data, _TOP_KEYS, where="top level")
    env = subtable(problems, data, "env", required=True)
    torch = subtable(problems, data, "torch", required=True)
    packages_table = subtable(problems, data, "packages", required=False)
    resolution = subtable(problems, data, "resolution", required=False)
    indexes_table = subtable(problems, data, "indexes", required=False)
    docker_table = subtable(problems, data, "docker", required=False)
    review_table = subtable(problems, data, "review", required=False)

    check_keys(problems, env, _ENV_KEYS, where="[env]")
    check_keys(problems, torch, _TORCH_KEYS, where="[torch]")
    check_keys(problems, resolution, _RESOLUTION_KEYS, where="[resolution]")
    check_keys(problems, indexes_table, INDEX_KEYS, where="[indexes]")
    check_keys(problems, docker_table, _DOCKER_KEYS, where="[docker]")

    python = parse_python(problems, env)
    platforms = parse_platforms(problems, env)
    torch_spec = parse_torch(problems, torch)
    packages = parse_packages(problems, packages_table)
    exclude_newer = parse_exclude_newer(problems, resolution)
    indexes = parse_indexes(problems, indexes_table)
    variants = _parse_variants(problems, data.get("variants"), torch, platforms)
    image_digests = parse_digests(problems, docker_table.get("digests", {}))
    cooldown = parse_cooldown(problems, resolution)
    accepts = parse_review(problems, review_table)
    problems.raise_if_any()
    assert python is not None
    assert torch_spec is not None
    return Spec(
        python=python,
        platforms=platforms,
        torch=torch_spec,
        packages=packages,
        exclude_newer=exclude_newer,
        indexes=indexes,
        variants=variants,
        image_digests=image_digests,
        cooldown=cooldown,
        accepts=accepts,
    )


def _parse_variants(
    problems: Problems,
    raw: object,
    torch: Mapping[str, Any],
    platforms: tuple[Platform, ...],
) -> tuple[VariantSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        problems.add("variants", "expected tables [variants.<name>]")
        return ()
    result: list[VariantSpec] = []
    for name, table in raw.items():
        where = f"variants.{name}"
        if not _VARIANT_NAME.match(name):
            problems.add(
                where,
                f"variant name {name!r} must be lowercase letters, digits, - or _ (no dots)",
                "The lock of variant NAME is pylock.NAME.toml; PEP 751 forbids dots in NAME.",
            )
            continue
        if not isinstance(table, Mapping):
            problems.add(where, "expected a table")
            continue
        check_keys(problems, table, _VARIANT_KEYS, where=f"[{where}]")
        merged = {**torch, **{k: v for k, v in table.items() if k != "platforms"}}
        sub = Problems(problems.source)
        parsed = parse_torch(sub, merged)
        for item in sub.items:
            problems.add(where, item.replace("torch.", f"{where}.", 1))
        own = platforms
        if "platforms" in table:
            own = parse_platforms(problems, {"platforms": table["platforms"]})
            extra = [p.value for p in own if p not in platforms]
            if extra:
                problems.add(
                    f"{where}.platforms",
                    f"{', '.join(extra)} not in [env] platforms",
                    "A variant may narrow [env] platforms, not add to them.",
                )
        if parsed is not None:
            result.append(VariantSpec(name=name, torch=parsed, platforms=own))
    return tuple(result)
