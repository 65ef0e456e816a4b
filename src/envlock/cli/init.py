"""envlock init."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from envlock import api
from envlock.cli._app import app, err
from envlock.spec import SPEC_FILENAME, Platform

if TYPE_CHECKING:
    pass


@app.command()
def init(
    torch: Annotated[
        str | None,
        typer.Option(help='torch release, e.g. "2.6" (newest 2.6.x). Default: newest verified.'),
    ] = None,
    cuda: Annotated[
        str | None,
        typer.Option(
            help='Build: "12.4", "12", "cpu", "rocm6.2", "xpu". Default: detect this host\'s '
            "NVIDIA driver (no GPU: the build PyPI ships)."
        ),
    ] = None,
    python: Annotated[
        str | None, typer.Option(help='CPython minor, e.g. "3.11". Default: this interpreter.')
    ] = None,
    with_: Annotated[
        list[str] | None,
        typer.Option(
            "--with", help='A package to add, e.g. transformers or "datasets>=3". Repeatable.'
        ),
    ] = None,
    platform: Annotated[
        list[Platform] | None,
        typer.Option(
            help="A platform the lock must install on. Repeatable. Default: linux-x86_64."
        ),
    ] = None,
    vision: Annotated[
        bool | None,
        typer.Option(help="Add the paired torchvision. Default: yes (with --from: as the file)."),
    ] = None,
    audio: Annotated[
        bool | None,
        typer.Option(help="Add the paired torchaudio. Default: no (with --from: as the file)."),
    ] = None,
    from_: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Adopt an existing project: a requirements.txt (or Dockerfile / script with "
            "`pip install`), pyproject.toml, environment.yml or pylock.toml.",
        ),
    ] = None,
    path: Annotated[Path, typer.Option("--path", help="Where to write the spec.")] = Path(
        SPEC_FILENAME
    ),
    force: Annotated[bool, typer.Option(help="Overwrite an existing spec.")] = False,
) -> None:
    """Write a commented torchenv.toml.

    Without --cuda, init reads this host's NVIDIA driver (/proc/driver/nvidia/version,
    /sys/module/nvidia/version or nvidia-smi) and writes a concrete build with a comment
    saying what it found. The spec never says "auto": a lock must not depend on who runs it.

    With --from FILE, init writes the torchenv.toml equivalent to what FILE asks for (the torch
    pin and its +cuXYZ label, the PyTorch index URL, conda's pytorch-cuda, the other packages),
    with a comment for each choice; flags given as well win over the file. Then
    `envlock lock --keep-versions FILE` keeps the file's versions where it can.

    Example: envlock init --torch 2.6 --cuda 12.4 --with transformers --with datasets;
    envlock init --from requirements.txt
    """
    adopting = from_ is not None
    options = api.InitOptions(
        torch=torch,
        cuda=cuda,
        python=python,
        packages=tuple(with_ or ()),
        platforms=tuple(p.value for p in platform or ()),
        vision=vision if vision is not None else not adopting,
        audio=bool(audio),
        force=force,
    )
    if from_ is not None:
        from envlock.api.init import init_from  # noqa: PLC0415 - only for --from

        result = init_from(path, from_, options)
        err.print(f"Adopted {from_}: {len(result.text.splitlines())} lines, a comment per choice.")
    else:
        result = api.init(path, options)
    if result.recommendation is not None:
        err.print(f'Build: cuda = "{result.recommendation.cuda}" ({result.recommendation.reason})')
    err.print(f"Wrote {result.path}. Next: `envlock lock`.")
