"""environment.yml (conda, mamba, pixi exports) -> an adopt.Intent. Pure.

envlock reads the subset of YAML such files use (keys, `- item` lists, the nested `- pip:` list,
quotes and comments) without a YAML library: envlock has none at run time. The conda side
gives Python, torch (`pytorch=2.3.1`, `pytorch::pytorch`), the build (`pytorch-cuda=12.1`,
`cudatoolkit=11.8`, `cuda-version=12.4`, `cpuonly`, a `cuda12.1` build string) and the other
packages, which envlock then takes from PyPI; the pip section is read like a requirements.txt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from envlock.adopt import Collector, Intent, _read_requirements
from envlock.errors import UsageError

_CONDA_ONLY = frozenset(
    {
        "pip",
        "python",
        "cudatoolkit",
        "pytorch-cuda",
        "cuda-version",
        "cpuonly",
        "pytorch-mutex",
        "mkl",
        "blas",
        "libblas",
        "cudnn",
        "nccl",
        "cuda-toolkit",
        "cuda-nvcc",
        "ffmpeg",
    }
)
# conda-only names whose meaning is adopted (Python, the build)
_READ = frozenset({"python", "pip", "pytorch-cuda", "cudatoolkit", "cuda-version", "cuda-toolkit"})
_READ |= {"cpuonly"}
# conda names whose PyPI project has another name
_PYPI_NAMES = {"pytorch": "torch", "pytorch-gpu": "torch", "pytorch-cpu": "torch"}
_CUDA_BUILD = re.compile(r"cuda[_]?(\d+)[._]?(\d+)")


@dataclass(slots=True)
class Environment:
    name: str = ""
    channels: list[str] = field(default_factory=list)
    conda: list[str] = field(default_factory=list)
    pip: list[str] = field(default_factory=list)


def _scalar(text: str) -> str:
    text = re.sub(r"\s+#.*$", "", text).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def parse_environment(text: str, *, source: str) -> Environment:
    """The keys envlock uses from an environment.yml: name, channels, dependencies (+ pip)."""
    env = Environment()
    section = ""
    in_pip = False
    pip_indent = -1
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        line = raw.strip()
        if indent == 0 and not line.startswith("-"):
            key, _, value = line.partition(":")
            section, in_pip = key.strip(), False
            if section == "name":
                env.name = _scalar(value)
            elif value.strip() and section in ("channels", "dependencies"):
                raise UsageError(
                    f"{source}:{number}: {section} written inline is not read by envlock",
                    hint=f"Write {section} as a list, one `- item` per line.",
                )
            continue
        if not line.startswith("-"):
            continue
        item = _scalar(line[1:])
        if in_pip and indent > pip_indent:
            env.pip.append(item)
            continue
        in_pip = False
        if section == "channels":
            env.channels.append(item)
        elif section == "dependencies":
            if item.rstrip(":").strip() == "pip" and item.endswith(":"):
                in_pip, pip_indent = True, indent
            else:
                env.conda.append(item)
    return env


def _split(item: str) -> tuple[str, str, str, str]:
    """`channel::name=version=build` / `name>=1.2` -> (channel, name, version spec, build)."""
    channel, _, rest = item.rpartition("::")
    match = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", rest.strip())
    if match is None:
        return channel, rest, "", ""
    name, tail = match.groups()
    tail = tail.replace(" ", "")
    build = ""
    if tail.startswith("=") and not tail.startswith("=="):
        version, _, build = tail[1:].partition("=")
        spec = f"=={version}" if version and version != "*" else ""
        if spec and not re.search(r"\d+\.\d+\.\d+", version) and "*" not in version:
            spec = f"=={version}.*"  # conda's pytorch=2.3 is any 2.3.x
        spec = spec.replace(".*.*", ".*")
    else:
        spec = tail
    return channel, name.lower(), spec, build


def from_environment(text: str, *, source: str) -> Intent:
    env = parse_environment(text, source=source)
    found = Collector(source)
    if env.channels:
        found.note(f"conda channels {', '.join(env.channels)}: envlock takes packages from PyPI")
    for item in env.conda:
        channel, name, spec, build = _split(item)
        where = f"conda {item!r}"
        if name == "python":
            minor = re.match(r"^==?(\d+\.\d+)", spec)
            if minor:
                found.python = minor.group(1)
                found.note(f'{where} -> [env] python = "{found.python}"')
        elif name in ("pytorch-cuda", "cudatoolkit", "cuda-version", "cuda-toolkit"):
            version = re.match(r"^==?(\d+\.\d+)", spec)
            if version:
                found.set_cuda(version.group(1), where)
        elif name in {"cpuonly", "pytorch-cpu"}:
            found.set_cuda("cpu", where)
        if name in _PYPI_NAMES or name in ("torchvision", "torchaudio"):
            cuda = _CUDA_BUILD.search(build)
            if cuda:
                found.set_cuda(f"{cuda.group(1)}.{cuda.group(2)}", f"{where} (its build string)")
            elif "cpu" in build:
                found.set_cuda("cpu", f"{where} (its build string)")
            found.requirement(_PYPI_NAMES.get(name, name) + spec.replace(".*.*", ".*"), where)
        elif name not in _CONDA_ONLY and not name.startswith(("cuda-", "libcu", "lib")):
            found.requirement(f"{name}{spec}", where)
            found.note(f"{where}: taken from PyPI as {name} (a conda name may differ from PyPI's)")
        elif name not in _READ:
            found.note(f"{where}: conda-only, not adopted")
        del channel
    _read_requirements(found, "\n".join(env.pip), {}, depth=0)
    return found.intent()
