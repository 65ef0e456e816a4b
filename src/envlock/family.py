"""The torch family and the GPU runtime: which package names belong to a torch build. Pure.

The one module every layer asks "is this a torch-family package?" (``name in``
:attr:`Family.names`) and "is this part of the CUDA runtime?" (:func:`is_cuda_runtime`). Each
name has one home:

- ``channels/family.toml`` (channel data; ``envlock.channels`` parses it into a :class:`Family`):
  the names that must come from the PyTorch variant index when a lock takes torch from it:
  ``always`` (checked on load to hold the [torch] table's packages below), the ``if-requested``
  list (what uv's --torch-backend routes) and the per-kind extras (ROCm and XPU triton).
- here, as code: the three packages torchenv.toml's [torch] table names (version, vision, audio:
  the spec's schema, which `envlock lock --check` parses offline without reading channel data),
  and the naming rule of the GPU runtime (NVIDIA's ``nvidia-*``/``cuda-*`` wheels and the triton
  compilers), which pure code applies to any lock (a diff of an old revision, an export).

Importing this module costs nothing beyond ``packaging.utils`` (the --check fast path loads it).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from packaging.utils import NormalizedName

# The packages the [torch] table owns ([torch] version, vision, audio): always pinned to the
# variant index, never listed in [packages].
TORCH = NormalizedName("torch")
TORCHVISION = NormalizedName("torchvision")
TORCHAUDIO = NormalizedName("torchaudio")
TORCH_TABLE: tuple[NormalizedName, ...] = (TORCH, TORCHVISION, TORCHAUDIO)

# NVIDIA's CUDA wheels (nvidia-cudnn-cu12, cuda-toolkit, …) and the triton a CUDA torch pins.
_CUDA_PACKAGES = r"nvidia-.+|cuda-.+|triton"
# PyTorch's own triton builds (nightly CUDA, ROCm, XPU), published on the PyTorch index.
_PYTORCH_TRITON = r"pytorch-triton(?:-rocm|-xpu)?"
_CUDA_RUNTIME = re.compile(rf"^(?:{_CUDA_PACKAGES}|{_PYTORCH_TRITON})$")
# What an official pytorch/pytorch image (a CUDA build) already holds.
CUDA_IMAGE_PACKAGES = re.compile(
    rf"^(?:{'|'.join(re.escape(n) for n in TORCH_TABLE)}|{_CUDA_PACKAGES})$"
)
# The packages whose version is the CUDA runtime's (first match wins), for "CUDA 12.4 -> 12.6".
CUDA_VERSION_PACKAGES: tuple[NormalizedName, ...] = tuple(
    NormalizedName(n)
    for n in (
        "nvidia-cuda-runtime-cu11",
        "nvidia-cuda-runtime-cu12",
        "nvidia-cuda-runtime-cu13",
        "nvidia-cuda-runtime",
        "cuda-toolkit",
    )
)


def is_cuda_runtime(name: str) -> bool:
    """A package of the GPU runtime a torch build pulls in (nvidia-*, cuda-*, triton,
    pytorch-triton[-rocm|-xpu]): it changes with the build, not with the user's packages."""
    return bool(_CUDA_RUNTIME.match(name))


def in_cuda_image(name: str) -> bool:
    """Whether an official pytorch/pytorch image already holds this package (the [torch]
    table's packages and the CUDA runtime of a CUDA build)."""
    return bool(CUDA_IMAGE_PACKAGES.match(name))


def varies_with_build(name: str) -> bool:
    """A package that legitimately differs between the builds (variants) of one spec: the
    [torch] table's packages and the GPU runtime."""
    return name in TORCH_TABLE or is_cuda_runtime(name)


@dataclass(frozen=True, slots=True, kw_only=True)
class Family:
    """channels/family.toml: the torch-family names a lock takes from the PyTorch variant index."""

    always: tuple[NormalizedName, ...] = TORCH_TABLE  # pinned in every lock from that index
    if_requested: tuple[NormalizedName, ...] = ()  # pinned when named in [packages]
    by_kind: Mapping[str, tuple[NormalizedName, ...]] = field(default_factory=dict)  # kind -> names
    source: str = ""

    @property
    def names(self) -> tuple[NormalizedName, ...]:
        """Every name that, in a lock from a PyTorch index, must come from that index."""
        found = {*self.always, *self.if_requested}
        for kind_names in self.by_kind.values():
            found |= set(kind_names)
        return tuple(sorted(found))

    def routed(self, kind: str, requested: Collection[str]) -> tuple[NormalizedName, ...]:
        """The names pinned to the variant index for a build of ``kind`` (a VariantKind) when
        ``requested`` (normalised names) are the spec's [packages]."""
        found = set(self.always)
        found |= {n for n in self.if_requested if n in requested}
        found |= set(self.by_kind.get(kind, ()))
        return tuple(sorted(found))
