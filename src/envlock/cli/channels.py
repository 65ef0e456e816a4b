"""envlock channels."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from envlock import api
from envlock.cli._app import app, out
from envlock.spec import Platform

if TYPE_CHECKING:
    from envlock.channels import Channels, Selection


def _matrix_rows(channels: Channels) -> list[dict[str, Any]]:
    rows = []
    for release in reversed(channels.releases):
        images = sorted(
            {
                f"{i.torch}-cuda{i.cuda}-cudnn{i.cudnn}"
                for i in channels.images
                if f"{i.torch.major}.{i.torch.minor}" == release.name
            }
        )
        rows.append(
            {
                "torch": release.name,
                "released": release.released.isoformat() if release.released else None,
                "python": list(release.python),
                "variants": [v.name for v in release.variants],
                "pypi": {p.value: v.name for p, v in release.pypi.items()},
                "torchvision": release.torchvision,
                "torchaudio": release.torchaudio,
                "triton": release.triton,
                "images": images,
                "unverified": sorted(release.unverified),
                "source": release.source,
            }
        )
    return rows


def _selection_json(selection: Selection) -> dict[str, Any]:
    return {
        "torch": selection.release.name,
        "torch-specifier": str(selection.torch_specifier),
        "variant": selection.variant.name,
        "platforms": [
            {
                "platform": c.platform.value,
                "source": c.origin.value,
                "variant": c.variant.name,
                "index": c.index_url,
            }
            for c in selection.platforms
        ],
        "companions": {k: str(v) for k, v in selection.companions.items()},
        "explanation": selection.explanation,
        "warnings": list(selection.warnings),
    }


@app.command()
def channels(
    torch: Annotated[
        str | None, typer.Option(help="Explain the choice for this torch release.")
    ] = None,
    cuda: Annotated[
        str | None, typer.Option(help='With --torch: the build to explain ("12.4", "cpu"…).')
    ] = None,
    python: Annotated[str, typer.Option(help="With --torch: the Python.")] = "3.11",
    platform: Annotated[
        list[Platform] | None, typer.Option(help="With --torch: platforms. Repeatable.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show what PyTorch publishes: releases x builds, PyPI's own build, pairings, images.

    With --torch (and --cuda), explain what `envlock lock` would choose, or why nothing can be.
    Facts marked "unverified" could not be confirmed from a primary source.
    """
    if torch is not None:
        selection = api.explain_selection(
            torch=torch,
            cuda=cuda or "cpu",
            python=python,
            platforms=[p.value for p in platform or [Platform.LINUX_X86_64]],
        )
        if as_json:
            out.print_json(json.dumps(_selection_json(selection)))
            return
        out.print(selection.explanation)
        for warning in selection.warnings:
            out.print(f"warning: {warning}")
        return
    channel_data = api.load_channels()
    rows = _matrix_rows(channel_data)
    if as_json:
        out.print_json(json.dumps({"releases": rows}))
        return
    out.print(_matrix_text(channel_data, rows), markup=False)
    floors = ", ".join(f"cu{f.cuda_major}x >= {f.linux}" for f in channel_data.drivers)
    if floors:
        out.print(f"Minimum NVIDIA driver (Linux): {floors}.")
    out.print(
        "? = unverified in envlock's channel data. `envlock channels --torch 2.6 --cuda 12.4`"
        " explains a choice."
    )


def _matrix_text(channel_data: Channels, rows: list[dict[str, Any]]) -> str:
    header = (
        "torch",
        "python",
        "PyPI linux-x86_64",
        "vision",
        "audio",
        "triton",
        "images (cuda)",
        "builds on the PyTorch index",
    )
    lines: list[tuple[str, ...]] = [header]
    for release, row in zip(reversed(channel_data.releases), rows, strict=True):
        builds = " ".join(
            v.name + ("?" if release.is_unverified(f"variants:{v.name}") else "")
            for v in release.variants
        )
        if release.is_unverified("variants"):
            builds += " (unverified)"
        cuda_images = sorted(
            {i.split("-cuda")[1].split("-")[0] for i in row["images"]},
            key=lambda c: tuple(int(p) for p in c.split(".")),
        )
        lines.append(
            (
                release.name,
                f"{release.python[0]}-{release.python[-1]}" if release.python else "",
                row["pypi"].get(Platform.LINUX_X86_64.value, ""),
                release.torchvision + ("?" if release.is_unverified("torchvision") else ""),
                (release.torchaudio or "-") + ("?" if release.is_unverified("torchaudio") else ""),
                release.triton + ("?" if release.is_unverified("triton") else ""),
                " ".join(cuda_images) or "-",
                builds,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines
    )
