"""The commented torchenv.toml that `envlock init` writes. Pure apart from the probe it is given.

Text by design (comments between the keys); every value in it comes from envlock._toml.value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from envlock import _toml
from envlock.channels import Channels, Release, VariantKind
from envlock.errors import SpecError, UsageError
from envlock.host import HostFacts, Recommendation, recommend_build
from envlock.spec import Platform, normalise_cuda, torch_specifier


@dataclass(frozen=True, slots=True, kw_only=True)
class InitOptions:
    """What `envlock init` was asked for (None: detect or default)."""

    torch: str | None = None
    cuda: str | None = None
    python: str | None = None
    packages: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    vision: bool = True
    audio: bool = False
    force: bool = False
    # envlock init --from FILE: the file adopted, the reason for each choice, and what the
    # file says beyond the flags (a requires-python range, index mirrors)
    source: str = ""
    notes: tuple[str, ...] = ()
    python_range: str | None = None
    pypi_index: str | None = None
    pytorch_index: str | None = None


def default_release(channels: Channels) -> Release:
    """The newest release whose variants and pairings the channel data marks verified."""
    for release in reversed(channels.releases):
        if not release.unverified & {"variants", "torchvision", "python"}:
            return release
    return channels.releases[-1]


def has_build(release: Release, cuda: str) -> bool:
    """Whether the release has a variant a [torch] cuda request names ("12.4", "12", "cpu")."""
    for variant in release.variants:
        if variant.kind is VariantKind.CUDA and not cuda[:1].isalpha():
            parts = tuple(int(p) for p in cuda.split("."))
            if variant.version[: len(parts)] == parts:
                return True
        elif cuda.startswith("rocm") and variant.kind is VariantKind.ROCM:
            if variant.version_text.startswith(cuda.removeprefix("rocm")):
                return True
        elif variant.name == cuda:
            return True
    return False


def _release_for(options: InitOptions, channels: Channels) -> Release:
    if options.torch is None and options.source and options.cuda not in (None, "auto"):
        # An adopted file that names a build but no torch meant the newest torch with it.
        cuda = normalise_cuda(options.cuda or "")
        having = [r for r in channels.releases if has_build(r, cuda)]
        verified = [r for r in having if not r.unverified & {"variants", "python"}]
        if having:
            return (verified or having)[-1]
    if options.torch is None:
        return default_release(channels)
    try:
        specifier = torch_specifier(options.torch)
    except InvalidSpecifier:
        raise UsageError(
            f"--torch {options.torch!r} is not a release or a version specifier",
            hint='Use --torch 2.6 (the newest 2.6.x), --torch 2.6.0 or --torch ">=2.5,<2.7".',
        ) from None
    matching = [r for r in channels.releases if r.covers(specifier)]
    if not matching:
        known = f"{channels.releases[0].name}-{channels.releases[-1].name}"
        raise SpecError(
            f"--torch {options.torch}: not in envlock's channel data (it knows {known})",
            hint="Pick a listed release (`envlock channels`), or upgrade envlock.",
        )
    return matching[-1]


def chosen_release(options: InitOptions, channels: Channels) -> Release:
    """The torch release the template will write for these options."""
    return _release_for(options, channels)


def _python_for(options: InitOptions, release: Release, current: str) -> str:
    if options.python is not None:
        return options.python
    allowed = list(release.python)
    if options.python_range:
        try:
            within = SpecifierSet(options.python_range)
        except InvalidSpecifier:
            within = SpecifierSet()
        allowed = [p for p in allowed if within.contains(f"{p}.0") or within.contains(f"{p}.99")]
        if current in allowed:
            return current
        return allowed[0] if allowed else release.python[-1]
    if current in release.python:
        return current
    return release.python[-1]


def _adopted(options: InitOptions) -> list[str]:
    """The comment block that says where each adopted choice came from."""
    if not options.source:
        return []
    lines = [f"# Adopted from {options.source} by `envlock init --from`; what it said:"]
    lines += [f"#   - {note}" for note in options.notes]
    return [*lines, ""]


def _indexes(options: InitOptions) -> list[str]:
    if options.pypi_index is None and options.pytorch_index is None:
        return [
            "# [indexes]  # mirrors; ENVLOCK_PYPI_INDEX_URL / ENVLOCK_PYTORCH_INDEX_URL override "
            "these",
            '# pypi = "https://pypi.org/simple"',
            '# pytorch = "https://download.pytorch.org/whl"',
        ]
    lines = [f"[indexes]  # from {options.source}; ENVLOCK_*_INDEX_URL override these"]
    if options.pypi_index is not None:
        lines.append(f"pypi = {_toml.value(options.pypi_index)}")
    if options.pytorch_index is not None:
        lines.append(f"pytorch = {_toml.value(options.pytorch_index)}")
    return lines


def _package_lines(packages: tuple[str, ...]) -> list[str]:
    lines = []
    for item in packages:
        try:
            req = Requirement(item)
        except InvalidRequirement as exc:
            raise UsageError(
                f"--with {item!r} is not a requirement: {exc}",
                hint='Use --with NAME or --with "NAME>=1.2".',
            ) from None
        if req.url:
            raise UsageError(
                f"--with {item!r} names a direct URL",
                hint="envlock takes every package from an index, pinned by hash: "
                'use --with NAME or --with "NAME>=1.2".',
            )
        name = canonicalize_name(req.name)
        value = str(req.specifier) or "*"
        if req.extras or req.marker:
            table = {
                "version": value,
                "extras": sorted(req.extras) if req.extras else None,
                "markers": str(req.marker) if req.marker else None,
            }
            lines.append(f"{_toml.key(name)} = {_toml.inline_table(table)}")
        else:
            lines.append(f"{_toml.key(name)} = {_toml.value(value)}")
    return sorted(lines)


def render_spec_template(
    options: InitOptions,
    channels: Channels,
    *,
    current_python: str,
    probe: Callable[[], HostFacts],
) -> tuple[str, Recommendation | None, HostFacts]:
    """Build the torchenv.toml text; returns it with the build recommendation, if one was made."""
    release = _release_for(options, channels)
    python = _python_for(options, release, current_python)
    platforms = tuple(Platform(p) for p in options.platforms) or (Platform.LINUX_X86_64,)
    facts = HostFacts()
    recommendation: Recommendation | None = None
    if options.cuda is None or normalise_cuda(options.cuda) == "auto":
        facts = probe()
        recommendation = recommend_build(release, channels, facts, platforms[0])
        cuda = recommendation.cuda
        cuda_comment = f"# envlock init chose this: {recommendation.reason}."
    else:
        cuda = normalise_cuda(options.cuda)
        cuda_comment = (
            f"# Taken from {options.source} (see the notes at the top)."
            if options.source
            else "# Chosen on the command line (envlock init --cuda)."
        )
    version = options.torch or release.name
    builds = ", ".join(
        v.version_text if v.kind is VariantKind.CUDA else v.name for v in release.variants
    )
    lines = [
        "# torchenv.toml: the environment envlock locks into pylock.toml.",
        '# Edit it, then run `envlock lock`. Reference: README.md, section "torchenv.toml".',
        "",
        *_adopted(options),
        "[env]",
        "# The CPython minor version to lock for.",
        f"python = {_toml.value(python)}",
        "# Where the lock must install: linux-x86_64, linux-aarch64, macos-arm64, windows-x86_64.",
        f"platforms = {_toml.value([p.value for p in platforms])}",
        "",
        "[torch]",
        '# "2.6" means the newest 2.6.x; any PEP 440 specifier (">=2.5,<2.7") works too.',
        f"version = {_toml.value(version)}",
        f'# The build: a CUDA version, "cpu", "rocmX.Y" or "xpu". torch {release.name} has: '
        f"{builds}.",
        cuda_comment,
        f"cuda = {_toml.value(cuda)}",
        "# torchvision / torchaudio at the versions paired with this torch release.",
        f"vision = {_toml.value(options.vision)}",
        f"audio = {_toml.value(options.audio)}",
        '# source = "auto"  # auto: PyPI when PyPI ships this very build, else the PyTorch index',
        "",
        "[packages]",
        '# Everything else, as PEP 508 specifiers keyed by name: transformers = ">=4.40,<5".',
        *_package_lines(options.packages),
        "",
        "# [resolution]",
        "# exclude-newer = 2026-11-01T00:00:00Z  # lock as of a date: same inputs, same answer",
        '# cooldown = "7d"  # lock as of now minus this: fresh uploads wait (diff flags them)',
        "",
        *_indexes(options),
        "",
    ]
    return "\n".join(lines), recommendation, facts
