"""envlock init: a commented torchenv.toml for this host."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from envlock.api.project import load_channels
from envlock.errors import UsageError
from envlock.io import files
from envlock.spec import Indexes, parse_spec_text
from envlock.templates import InitOptions

if TYPE_CHECKING:
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
