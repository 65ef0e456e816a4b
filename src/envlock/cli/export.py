"""envlock export requirements|conda|dockerfile."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from envlock import api
from envlock.api.export import lock_notes
from envlock.cli._app import (
    ForceOption,
    LockPathOption,
    VariantOption,
    _with_variant,
    app,
    err,
    out,
)
from envlock.spec import Platform

if TYPE_CHECKING:
    pass


export_app = typer.Typer(
    name="export",
    help="Write the lock in another format (the lock is the only input; nothing re-resolves): "
    "requirements, conda, dockerfile, uv.",
    no_args_is_help=True,
)
app.add_typer(export_app)


def _say_derived(lock_path: Path) -> None:
    """A lock another tool wrote: what was derived in place of [tool.envlock], on stderr."""
    notes = lock_notes(lock_path)
    if notes:
        err.print(f"note: {lock_path} has no [tool.envlock]; derived from the lock:", markup=False)
    for note in notes:
        err.print(f"  {note}", markup=False)


def _emit(text: str, output: Path | None, *, lock_path: Path, force: bool) -> None:
    """Data to stdout, or written atomically to a file with a note on stderr."""
    if output is None:
        out.print(text.rstrip("\n"))
        return
    api.write_output(output, text, lock_path=lock_path, force=force)
    err.print(f"Wrote {output}.")


@export_app.command("requirements")
def export_requirements(
    lock_path: LockPathOption = Path("pylock.toml"),
    variant: VariantOption = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (atomically); default stdout.")
    ] = None,
    platform: Annotated[
        Platform | None,
        typer.Option(help="The platform to export (default: the lock's only one, or this host)."),
    ] = None,
    force: ForceOption = False,
) -> None:
    """Hashed `name @ url --hash=sha256:…` lines for one platform.

    pip and uv install them with: pip install --require-hashes --no-deps -r requirements.txt
    """
    lock_path = _with_variant(lock_path, variant)
    text = api.export_requirements(lock_path, platform=platform.value if platform else None)
    _say_derived(lock_path)
    _emit(text, output, lock_path=lock_path, force=force)


@export_app.command("conda")
def export_conda(
    lock_path: LockPathOption = Path("pylock.toml"),
    variant: VariantOption = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (atomically); default stdout.")
    ] = None,
    platform: Annotated[Platform | None, typer.Option(help="The platform to export.")] = None,
    channel: Annotated[
        list[str] | None, typer.Option(help="conda channel (repeatable). Default: conda-forge.")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Environment name. Default: the lock's directory name.")
    ] = None,
    force: ForceOption = False,
) -> None:
    """environment.yml: conda's python and pip, the lock as hashed pip lines.

    conda runs pip with dependency resolution on, so the pip section is the lock's full
    closure, one --hash per line and no option lines (conda-lock and pip both read it).
    """
    lock_path = _with_variant(lock_path, variant)
    text = api.export_conda(
        lock_path,
        platform=platform.value if platform else None,
        channels=tuple(channel or ("conda-forge",)),
        name=name,
    )
    _say_derived(lock_path)
    _emit(text, output, lock_path=lock_path, force=force)


@export_app.command("uv")
def export_uv(
    lock_path: LockPathOption = Path("pylock.toml"),
    variant: VariantOption = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write here (atomically), e.g. pyproject.toml."),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="[project] name. Default: the lock's directory name.")
    ] = None,
    force: ForceOption = False,
) -> None:
    """pyproject.toml with which a plain `uv lock` picks the same torch build.

    The PyTorch variant index is declared explicit and only the torch family is routed to it
    ([tool.uv.sources], per platform where PyPI's own wheel is the build elsewhere); the lock's
    platforms and Python become [tool.uv] environments. Dependencies: the spec's [packages]
    (the lock's packages, pinned, when no torchenv.toml is beside it).
    """
    from envlock.api.export import export_uv as render  # noqa: PLC0415 - only here

    lock_path = _with_variant(lock_path, variant)
    text = render(lock_path, name=name)
    _say_derived(lock_path)
    _emit(text, output, lock_path=lock_path, force=force)


class Flavor(StrEnum):
    RUNTIME = "runtime"
    DEVEL = "devel"


class Base(StrEnum):
    AUTO = "auto"
    OFFICIAL = "official"
    PYTHON = "python"


@export_app.command("dockerfile")
def export_dockerfile(
    lock_path: LockPathOption = Path("pylock.toml"),
    variant: VariantOption = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory for Dockerfile + requirements.txt.")
    ] = Path(),
    platform: Annotated[
        Platform | None, typer.Option(help="linux-x86_64 or linux-aarch64.")
    ] = None,
    flavor: Annotated[Flavor, typer.Option(help="Official image flavor.")] = Flavor.RUNTIME,
    base: Annotated[
        Base,
        typer.Option(
            help="auto: the official pytorch/pytorch image when one matches the lock, "
            "else python:X.Y-slim."
        ),
    ] = Base.AUTO,
    user: Annotated[
        str,
        typer.Option(help="The non-root user the image runs as (a POSIX portable user name)."),
    ] = "envlock",
    allow_root: Annotated[
        bool,
        typer.Option("--allow-root", help="Allow --user root: the image then runs as root."),
    ] = False,
    base_digest: Annotated[
        str | None,
        typer.Option(
            help="Pin FROM by this digest (sha256:...). Default: the digest the lock recorded "
            "for the base image, if any."
        ),
    ] = None,
    jupyter: Annotated[
        bool,
        typer.Option(
            "--jupyter",
            help="Run the lock's JupyterLab (EXPOSE 8888, bound to 0.0.0.0, token required).",
        ),
    ] = False,
    force: ForceOption = False,
) -> None:
    """Dockerfile (+ the hashed requirements it installs), never tagged `latest`.

    With an official base (pytorch/pytorch:<torch>-cuda<X.Y>-cudnn<N>-<flavor>), the build
    first checks that the image's Python, torch and CUDA equal the lock's (and torch's files
    the locked wheel's RECORD), then installs only what the image lacks with --require-hashes
    --no-deps into the image's own Python (python3 or python; PEP 668 allowed for that step),
    runs pip check, switches to a non-root user (uid 1000, reusing one the image has) and
    last imports torch and the spec's packages. Writes Dockerfile, requirements.txt,
    envlock-check.py and .dockerignore into --output.
    """
    lock_path = _with_variant(lock_path, variant)
    result = api.export_dockerfile(
        lock_path,
        platform=platform.value if platform else None,
        flavor=flavor.value,
        base=base.value,
        user=user,
        allow_root=allow_root,
        base_digest=base_digest,
        jupyter=jupyter,
    )
    _say_derived(lock_path)
    written = result.files()
    api.write_output_dir(output, written, lock_path=lock_path, force=force)
    err.print(f"Wrote {', '.join(str(output / name) for name in written)}: {result.note}.")
    for proof in result.proofs:
        err.print(f"  {proof}")
    err.print(f"Build: docker build -t my-env {output}")
    err.print(f"Run:   {result.run}")
