"""envlock: reproducible, hash-pinned PyTorch environments from one torchenv.toml."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("envlock")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"
