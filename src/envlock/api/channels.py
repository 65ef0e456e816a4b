"""envlock channels --torch/--cuda: explain a variant choice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from envlock import _toml
from envlock.api.project import load_channels
from envlock.spec import Indexes, parse_spec_text

if TYPE_CHECKING:
    from envlock.channels import Selection


def explain_selection(
    *, torch: str, cuda: str, python: str, platforms: Sequence[str], source: str = "auto"
) -> Selection:
    """What `envlock lock` would choose for these inputs (no network)."""
    text = "\n".join(
        [
            *_toml.table("env", {"python": python, "platforms": list(platforms)}),
            *_toml.table("torch", {"version": torch, "cuda": cuda, "source": source}),
            "",
        ]
    )
    from envlock.channels import select_variant  # noqa: PLC0415 - see the module note

    spec = parse_spec_text(text, source="--torch/--cuda")
    indexes = Indexes()
    return select_variant(
        spec, load_channels(), pypi_index=indexes.pypi, pytorch_index=indexes.pytorch
    )
