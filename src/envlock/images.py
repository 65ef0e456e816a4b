"""Base image references and digests: what a lock may record, and which tags it pins. Pure.

A lock records, in ``[tool.envlock] images``, the digest of each official pytorch/pytorch tag
that matches it (``name:tag -> sha256:…``): given by the user in torchenv.toml's ``[docker]
digests``, or read from the registry when `envlock lock` can reach it; never invented. `export
dockerfile` then writes ``FROM name:tag@sha256:…``, so a tag that moves cannot change the image.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from envlock.family import TORCH

if TYPE_CHECKING:  # lockfile imports this module on `lock --check`'s fast path: stay light
    from packaging.pylock import Pylock
    from packaging.version import Version

    from envlock.channels import Channels, Variant

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
REFERENCE = re.compile(r"[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def valid_pins(table: object) -> dict[str, str]:
    """The well-formed ``name:tag -> sha256:…`` pairs of ``table`` (anything else dropped, so a
    hand-edited entry never reaches a FROM line)."""
    if not isinstance(table, Mapping):
        return {}
    return {
        str(k): str(v)
        for k, v in sorted(table.items())
        if REFERENCE.fullmatch(str(k)) and DIGEST.fullmatch(str(v))
    }


def official_tags(lock: Pylock, channels: Channels, *, variant: Variant, python: str) -> list[str]:
    """The official image tags (each flavor) a Dockerfile of this lock would extend."""
    versions = {str(p.version) for p in lock.packages if p.name == TORCH and p.version}
    return _tags_of(versions, channels, variant=variant, python=python)


def likely_tags(
    channels: Channels, *, series: Version, variant: Variant, python: str, known: Mapping[str, str]
) -> list[str]:
    """The official image tags a lock of this torch series (``2.6``), build and Python is
    likely to extend (every patch release of the series envlock knows an image of), less those
    ``known`` already pins: what `envlock lock` asks the registry for while uv resolves."""
    versions = {
        str(image.torch)
        for image in channels.images
        if image.torch.release[:2] == series.release[:2]
    }
    tags = _tags_of(versions, channels, variant=variant, python=python)
    return [tag for tag in tags if tag not in known]


def _tags_of(versions: set[str], channels: Channels, *, variant: Variant, python: str) -> list[str]:
    from envlock.materialise.exports import official_image  # noqa: PLC0415 - a sibling core module

    tags: list[str] = []
    for version in sorted(versions):
        image, _ = official_image(channels, torch_version=version, variant=variant, python=python)
        if image is not None:
            tags += [image.tag(flavor) for flavor in image.flavors]
    return sorted(set(tags))
