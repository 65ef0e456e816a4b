"""conda environment.yml and Dockerfile renderers (pure: selections in, text out)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from envlock.channels import Channels, DockerImage, Variant, VariantKind
from envlock.materialise.select import Selected, render_requirements

UID = 1000  # numeric, so the host can resolve it (hadolint DL3066)

# What an official pytorch/pytorch image already has: never reinstalled on top of it.
_IMAGE_PROVIDED = re.compile(r"^(torch|torchvision|torchaudio|triton|nvidia-.+|cuda-.+)$")


def _yaml_str(value: str) -> str:
    # JSON strings are valid YAML scalars and need no escaping rules of their own.
    return json.dumps(value)


def render_conda(
    selected: Sequence[Selected], *, name: str, python: str, channels: Sequence[str], header: str
) -> str:
    """conda's python + pip, and the whole lock as hashed pip lines (conda runs pip with
    dependency resolution on, so the list is the full closure; one --hash per line and no
    option lines, which conda-lock and pip both accept)."""
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"name: {_yaml_str(name)}", "channels:"]
    lines += [f"  - {_yaml_str(c)}" for c in channels]
    lines += ["dependencies:", f"  - python={python}", "  - pip", "  - pip:"]
    lines += [
        f"      - {_yaml_str(f'{s.name} @ {s.url} --hash=sha256:{s.sha256}')}" for s in selected
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class DockerPlan:
    dockerfile: str
    requirements: str
    base: str
    official: bool


def official_image(
    channels: Channels, *, torch_version: str, variant: Variant, python: str
) -> tuple[DockerImage | None, str]:
    """The official image for this torch + CUDA build with this Python, or why there is none."""
    if variant.kind is not VariantKind.CUDA:
        return None, f"no official image for a {variant.name} build (Docker Hub has CUDA ones)"
    public = torch_version.split("+", 1)[0]
    for image in channels.images:
        if str(image.torch) == public and image.cuda == variant.version_text:
            if image.python != python:
                return None, (
                    f"the official {image.tag('runtime')} image has Python {image.python}, the "
                    f"lock {python}"
                )
            return image, ""
    return (
        None,
        f"envlock knows no official image for torch {public} with CUDA {variant.version_text}",
    )


def _provided(selected: Sequence[Selected]) -> list[Selected]:
    return [s for s in selected if _IMAGE_PROVIDED.match(s.name)]


def render_dockerfile(
    selected: Sequence[Selected],
    *,
    python: str,
    image: DockerImage | None,
    flavor: str,
    user: str,
    base_digest: str | None,
    header: str,
) -> DockerPlan:
    """A Dockerfile and the hashed requirements it installs (hadolint-clean)."""
    torch = next((s for s in selected if s.name == "torch"), None)
    if image is not None and torch is not None:
        base = image.tag(flavor)
        to_install = [s for s in selected if not _IMAGE_PROVIDED.match(s.name)]
        checks = _image_checks(python, _provided(selected), cuda=image.cuda)
    else:
        base = f"python:{python}-slim"
        to_install = list(selected)
        checks = []
    reference = f"{base}@{base_digest}" if base_digest else base
    gpus = "--gpus all " if image is not None else ""
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [
        "# Build: docker build -t my-env .",
        f"# Run:   docker run {gpus}--shm-size=8g -it my-env   (PyTorch data loaders need "
        "shared memory)",
        f"FROM {reference}",
        "WORKDIR /opt/envlock",
        "COPY requirements.txt ./",
    ]
    if checks:
        lines += [
            "# The base image must hold exactly the lock's Python and torch (image layouts changed",
            "# over the years: /opt/conda or system Python), so check before installing anything.",
            "RUN python -c " + _shell_quote(";".join(checks)),
        ]
    lines += [
        "RUN python -m pip install --no-cache-dir --disable-pip-version-check --require-hashes "
        "--no-deps -r requirements.txt \\",
        "    && python -m pip check",
        f"RUN useradd --no-log-init --create-home --uid {UID} --shell /bin/bash {user}",
        f"USER {UID}",
        "WORKDIR /workspace",
    ]
    requirements = render_requirements(
        sorted(to_install), header="Installed by the Dockerfile beside this file (envlock)."
    )
    return DockerPlan(
        dockerfile="\n".join(lines) + "\n",
        requirements=requirements,
        base=reference,
        official=image is not None and torch is not None,
    )


def _image_checks(python: str, provided: Sequence[Selected], *, cuda: str) -> list[str]:
    checks = [
        "import sys",
        "v = '%d.%d' % sys.version_info[:2]",
        f"assert v == {python!r}, 'base image has Python ' + v + ', the lock needs {python}'",
    ]
    for item in provided:
        if item.name not in ("torch", "torchvision", "torchaudio"):
            continue
        public = item.version.split("+", 1)[0]
        module = item.name
        checks += [
            f"import {module}",
            f"w = {module}.__version__.split('+')[0]",
            f"assert w == {public!r}, 'base image has {module} ' + w + ', the lock has {public}'",
        ]
        if module == "torch":
            checks.append(
                f"assert (torch.version.cuda or '').startswith({cuda!r}), "
                f"'base image torch is built for CUDA ' + str(torch.version.cuda) + ', "
                f"the lock needs {cuda}'"
            )
    return checks


def _shell_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'
