"""envlock init: a commented torchenv.toml for this host."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from envlock.api.project import load_channels
from envlock.channels import Variant
from envlock.errors import UsageError
from envlock.io import files
from envlock.spec import Indexes, Platform, parse_spec_text
from envlock.templates import InitOptions

if TYPE_CHECKING:
    from envlock.adopt import Intent
    from envlock.channels import Channels
    from envlock.host import HostFacts, Recommendation
    from envlock.io.ports import HostProbe


@dataclass(frozen=True, slots=True, kw_only=True)
class InitResult:
    path: Path
    text: str
    recommendation: Recommendation | None = None
    host: HostFacts | None = None


def init(
    path: Path,
    options: InitOptions,
    *,
    host: HostFacts | None = None,
    environ: Mapping[str, str] | None = None,
    host_probe: HostProbe | None = None,
) -> InitResult:
    """Write a commented torchenv.toml; without --cuda, detect this host's driver (``host``
    gives the facts outright, else ``host_probe`` reads them; default: this machine)."""
    env = os.environ if environ is None else environ
    if path.exists() and not options.force:
        raise UsageError(
            f"{path} already exists",
            hint="Pass --force to overwrite it, or edit it by hand.",
        )
    from envlock.templates import render_spec_template  # noqa: PLC0415 - see the module note

    if host_probe is None:
        from envlock.io.probe import LocalHost  # noqa: PLC0415

        host_probe = LocalHost()
    read_host = host_probe.host
    channels = load_channels()
    text, recommendation, facts = render_spec_template(
        options,
        channels,
        current_python=f"{sys.version_info.major}.{sys.version_info.minor}",
        probe=lambda: host if host is not None else read_host(env),
    )
    # The template must be a spec envlock accepts and can lock (the build exists for that
    # release and Python): fail before writing anything.
    from envlock.channels import select_variant  # noqa: PLC0415 - see the module note

    spec = parse_spec_text(text, source=str(path))
    indexes = Indexes()
    select_variant(spec, channels, pypi_index=indexes.pypi, pytorch_index=indexes.pytorch)
    if not path.parent.is_dir():
        raise UsageError(
            f"{path.parent} is not a directory",
            hint="Create the project directory first, or pass --path to an existing one.",
        )
    files.write_atomic(path, text)
    return InitResult(path=path, text=text, recommendation=recommendation, host=facts)


def read_source(source: Path, channels: Channels) -> Intent:
    """Read ``source`` (and the -r/-c files a requirements file names) into an Intent."""
    from envlock.adopt import adopt_text, referenced_files  # noqa: PLC0415 - only for --from

    text = files.read_text(source)
    if text is None:
        raise UsageError(
            f"{source} does not exist",
            hint="Pass the requirements.txt, pyproject.toml, environment.yml or pylock.toml "
            "of the project to adopt.",
        )
    includes = {}
    for ref in referenced_files(text) if not source.name.endswith((".toml", ".yml")) else ():
        included = files.read_text(source.parent / ref)
        if included is not None:
            includes[ref] = included
    return adopt_text(source.name, text, channels=channels, includes=includes)


def adopted_options(source: Path, given: InitOptions) -> InitOptions:
    """InitOptions for `envlock init --from SOURCE`: what the file asks for, the flags given
    on the command line winning; where the file names no build, PyPI's own for that torch."""
    from envlock.channels import VariantKind  # noqa: PLC0415 - see the module note
    from envlock.templates import chosen_release  # noqa: PLC0415

    channels = load_channels()
    intent = read_source(source, channels)
    notes = list(intent.notes)
    options = replace(
        given,
        torch=given.torch or intent.torch,
        cuda=given.cuda or intent.cuda,
        python=given.python or intent.python,
        packages=(*intent.packages, *given.packages),
        platforms=given.platforms or intent.platforms,
        vision=given.vision or intent.vision,
        audio=given.audio or intent.audio,
        source=source.name,
        python_range=intent.python_range,
        pypi_index=intent.pypi_index,
        pytorch_index=intent.pytorch_index,
    )
    if options.torch is None and options.cuda is not None:
        _refuse_unbuilt(options.cuda, source.name, channels)
    if options.cuda is None:
        release = chosen_release(options, channels)
        platform = Platform(options.platforms[0]) if options.platforms else Platform.LINUX_X86_64
        shipped = release.pypi.get(platform)
        if shipped is not None:
            kind = shipped.kind
            cuda = shipped.version_text if kind is VariantKind.CUDA else shipped.name
            notes.append(
                f"no build named: pip installs PyPI's torch {release.name}, which is "
                f'{shipped.name} on {platform.value} -> [torch] cuda = "{cuda}"'
            )
            options = replace(options, cuda=cuda)
    return replace(options, notes=tuple(notes))


def _refuse_unbuilt(cuda: str, source: str, channels: Channels) -> None:
    """A build no torch release has (cu123): refused with the builds nearest to it."""
    from envlock.channels import VariantKind  # noqa: PLC0415 - see the module note
    from envlock.errors import SpecError  # noqa: PLC0415
    from envlock.spec import normalise_cuda  # noqa: PLC0415
    from envlock.templates import has_build  # noqa: PLC0415

    wanted = normalise_cuda(cuda)
    if any(has_build(r, wanted) for r in channels.releases):
        return
    builds: dict[str, list[str]] = {}
    for release in channels.releases:
        for variant in release.variants:
            builds.setdefault(variant.name, []).append(release.name)
    asked = tuple(int(p) for p in wanted.split(".") if p.isdigit()) if wanted[:1].isdigit() else ()
    known = [n for n in builds if Variant(name=n).kind is VariantKind.CUDA]
    same = [n for n in known if asked and Variant(name=n).version[0] == asked[0]]
    # nearest first: 12.3 -> cu124, cu121, cu126, ...
    near = (
        sorted(same, key=lambda n: (abs(Variant(name=n).version[1] - asked[-1]), n))
        if same
        else sorted(builds)
    )
    offered = "; ".join(f"{n} (torch {builds[n][0]}-{builds[n][-1]})" for n in near)
    raise SpecError(
        f"{source} asks for a {wanted} build of torch, which PyTorch never published "
        f"(no release in envlock's channel data has it)",
        hint=f"Pick a build that exists: {offered}; pass it as --cuda (e.g. --cuda "
        f"{_cuda_text(near[0])}) or fix {source}.",
    )


def _cuda_text(name: str) -> str:
    from envlock.adopt import cuda_of  # noqa: PLC0415 - only for --from

    return cuda_of(Variant(name=name))


def init_from(
    path: Path,
    source: Path,
    options: InitOptions,
    *,
    host: HostFacts | None = None,
    environ: Mapping[str, str] | None = None,
    host_probe: HostProbe | None = None,
) -> InitResult:
    """`envlock init --from SOURCE`: the torchenv.toml equivalent to an existing project's
    requirements.txt / pyproject.toml / environment.yml / pylock.toml, one comment per
    choice; a build or release that does not exist is refused with the ones that do."""
    from envlock.errors import ChannelDataError, SpecError  # noqa: PLC0415

    adopted = adopted_options(source, options)
    try:
        return init(path, adopted, host=host, environ=environ, host_probe=host_probe)
    except (SpecError, ChannelDataError) as exc:
        raise SpecError(
            f"{source.name} asks for what envlock cannot lock: {exc.message}",
            hint=exc.hint,
        ) from None
