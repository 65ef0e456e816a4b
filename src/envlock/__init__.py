"""envlock: reproducible, hash-pinned PyTorch environments from one torchenv.toml."""

# A literal (not importlib.metadata) keeps `envlock lock --check` fast; hatch reads it too.
__version__ = "0.1.0"
