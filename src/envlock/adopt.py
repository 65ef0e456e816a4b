"""What an existing project asks for, read from the file it already has. Pure: text in, Intent out.

`envlock init --from FILE` adopts a requirements.txt (or a Dockerfile / shell line with
`pip install`), a pyproject.toml (PEP 621 dependencies with uv, PDM or Poetry index routing),
an environment.yml (conda pins and its pip section: envlock.adopt_conda) or a PEP 751 lock.
Each parser collects an :class:`Intent`: the torch release and build, the other packages, the
indexes, and one note per choice it made, which the spec template writes as comments.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from envlock import _toml
from envlock.channels import Channels, Variant, VariantKind, variant_named
from envlock.errors import UsageError
from envlock.family import TORCH, TORCHAUDIO, TORCHVISION, is_cuda_runtime
from envlock.spec import DEFAULT_PYPI_INDEX

PYTORCH_HOST = "download.pytorch.org"


@dataclass(frozen=True, slots=True, kw_only=True)
class Intent:
    """What the source file asked for, in torchenv.toml's terms, with the reasons."""

    source: str
    torch: str | None = None  # "2.6.0" (a pin), ">=2.3", or None: the source does not say
    cuda: str | None = None  # "12.4", "cpu", "rocm6.2", "xpu"; None: the source does not say
    python: str | None = None  # "3.11"
    python_range: str | None = None  # requires-python, when no one minor is named
    vision: bool = False
    audio: bool = False
    packages: tuple[str, ...] = ()
    pypi_index: str | None = None  # a mirror; None: PyPI
    pytorch_index: str | None = None  # the base of /whl/<variant>; None: download.pytorch.org
    platforms: tuple[str, ...] = ()  # where the source installs, when it says
    pins: Mapping[str, str] = field(default_factory=dict)  # name -> exact version in the source
    notes: tuple[str, ...] = ()


class Collector:
    """Accumulates an Intent from requirement lines, index URLs and explicit facts."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.torch: str | None = None
        self.cuda: str | None = None
        self.cuda_from = ""
        self.python: str | None = None
        self.python_range: str | None = None
        self.platforms: tuple[str, ...] = ()
        self.vision = False
        self.audio = False
        self.packages: dict[str, str] = {}
        self.pins: dict[str, str] = {}
        self.pypi_index: str | None = None
        self.pytorch_index: str | None = None
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def set_cuda(self, cuda: str, where: str) -> None:
        if self.cuda is not None and self.cuda != cuda:
            self.note(
                f"{where} says {cuda}, but {self.cuda_from} said {self.cuda}; kept {self.cuda}"
            )
            return
        if self.cuda is None:
            self.cuda, self.cuda_from = cuda, where
            self.note(f'{where} -> [torch] cuda = "{cuda}"')

    def index(self, url: str, where: str) -> None:
        """An --index-url / --extra-index-url / -f / [[tool.uv.index]] URL."""
        parts = urlsplit(url)
        folders = [f for f in PurePosixPath(parts.path).parts if f != "/"]
        variant = variant_named(folders[-1]) if folders else None
        if "nightly" in folders:
            self.note(f"{where} {url}: nightly builds are not locked; the release index is used")
            return
        if variant is not None:
            base = url.rstrip("/").rsplit("/", 1)[0]
            if parts.hostname != PYTORCH_HOST and base != self.pytorch_index:
                self.pytorch_index = base
                self.note(f"{where} {url}: a PyTorch index mirror -> [indexes] pytorch = {base!r}")
            self.set_cuda(cuda_of(variant), f"{where} {url}")
            return
        if parts.hostname == PYTORCH_HOST:
            self.note(f"{where} {url}: the build comes from the torch pin's label, if any")
            return
        if url.rstrip("/") == DEFAULT_PYPI_INDEX or parts.hostname == "pypi.org":
            return
        if where.startswith(("--index-url", "-i")) or self.pypi_index is None:
            self.pypi_index = url.rstrip("/")
            self.note(f"{where} {url}: not a PyTorch index -> [indexes] pypi = {url!r}")

    def requirement(self, text: str, where: str) -> None:
        try:
            req = Requirement(text)
        except InvalidRequirement as exc:
            self.note(f"{where}: skipped {text!r}, not a requirement ({exc})")
            return
        name = canonicalize_name(req.name)
        if req.url:
            self.note(
                f"{where}: skipped {req.name} @ URL: envlock takes every package from an index"
            )
            return
        pin = _exact(req.specifier)
        if name == TORCH:
            self._torch(req, pin, where)
        elif name in (TORCHVISION, TORCHAUDIO):
            if name == TORCHVISION:
                self.vision = True
            else:
                self.audio = True
            key = name.removeprefix("torch")
            self.note(f"{where}: {req} -> [torch] {key} = true (the paired release)")
            if pin is not None and "+" in pin:
                self._label(pin.split("+", 1)[1], f"{where} {name}=={pin}")
        elif is_cuda_runtime(name):
            self.note(f"{where}: {req} skipped: the CUDA runtime follows the torch build")
        else:
            spec = str(req.specifier) or "*"
            extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
            marker = f"; {req.marker}" if req.marker else ""
            self.packages[name] = f"{name}{extras}{'' if spec == '*' else spec}{marker}"
            if pin is not None:
                self.pins[name] = pin

    def constrain(self, text: str, where: str) -> None:
        """A -c constraint: it narrows a package the source asks for, never adds one."""
        try:
            req = Requirement(text)
        except InvalidRequirement:
            return
        name = canonicalize_name(req.name)
        pin = _exact(req.specifier)
        if name == TORCH and self.torch is None:
            self._torch(req, pin, where)
        elif name in self.packages and req.specifier:
            current = Requirement(self.packages[name])
            merged = current.specifier & req.specifier
            self.packages[name] = (
                f"{name}{merged}{'; ' + str(current.marker) if current.marker else ''}"
            )
            if pin is not None:
                self.pins[name] = pin
            self.note(f"{where}: {req} narrows {name}")

    def _torch(self, req: Requirement, pin: str | None, where: str) -> None:
        if pin is not None:
            public, _, label = pin.partition("+")
            self.torch = public
            self.note(f'{where}: {req} -> [torch] version = "{public}"')
            if label:
                self._label(label, f"{where} torch=={pin}")
        elif req.specifier:
            series = re.fullmatch(r"==(\d+\.\d+)\.\*", str(req.specifier))
            self.torch = series.group(1) if series else str(req.specifier)
            self.note(f'{where}: {req} -> [torch] version = "{self.torch}"')
        else:
            self.note(f"{where}: torch unpinned -> the newest release that has the build")

    def _label(self, label: str, where: str) -> None:
        variant = variant_named(label)
        if variant is None:
            self.note(f"{where}: the label +{label} names no PyTorch build; ignored")
        else:
            self.set_cuda(cuda_of(variant), where)

    def intent(self) -> Intent:
        return Intent(
            source=self.source,
            torch=self.torch,
            cuda=self.cuda,
            python=self.python,
            python_range=self.python_range,
            platforms=self.platforms,
            vision=self.vision,
            audio=self.audio,
            packages=tuple(sorted(self.packages.values())),
            pypi_index=self.pypi_index,
            pytorch_index=self.pytorch_index,
            pins=dict(sorted(self.pins.items())),
            notes=tuple(self.notes),
        )


def cuda_of(variant: Variant) -> str:
    """A variant as [torch] cuda writes it: cu124 -> "12.4", rocm6.2 -> "rocm6.2"."""
    if variant.kind is VariantKind.CUDA:
        return variant.version_text
    if variant.kind is VariantKind.ROCM:
        return f"rocm{variant.version_text}"
    return variant.name


def _exact(specifier: SpecifierSet) -> str | None:
    items = list(specifier)
    if len(items) == 1 and items[0].operator in ("==", "===") and "*" not in items[0].version:
        return items[0].version
    return None


# --------------------------------------------------------------------------------------
# requirements.txt, pip command lines, Dockerfiles

_PIP = re.compile(r"(?:^|[\s;&|(])(?:uv\s+)?(?:python3?\s+-m\s+)?pip3?\s+install\s+(?P<args>.*)$")
_OPTION_WITH_VALUE = {
    "-i": "--index-url",
    "--index-url": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "-f": "-f",
    "--find-links": "-f",
    "-c": "-c",
    "--constraint": "-c",
    "-r": "-r",
    "--requirement": "-r",
}
_IGNORED_WITH_VALUE = ("--hash", "--python-version", "--platform", "--target", "-t", "--prefix")


def referenced_files(text: str) -> tuple[str, ...]:
    """The -r / -c files a requirements text names (the api reads them; parsing stays pure)."""
    found: list[str] = []
    for words in _lines(text):
        for option, value in _options(words):
            if option in ("-r", "-c"):
                found.append(value)
    return tuple(found)


def _lines(text: str) -> Iterable[list[str]]:
    """Logical lines (continuations joined, comments dropped) as words. A text with
    `pip install` lines (a script, a Dockerfile) is read only there, split like a shell would;
    a requirements file's line is one requirement, then its options."""
    joined = re.sub(r"\\\r?\n", " ", text)
    lines = [re.sub(r"(^|\s)#.*$", "", raw).strip() for raw in joined.splitlines()]
    commands = [m.group("args") for m in map(_PIP.search, lines) if m is not None]
    if commands:
        for command in commands:
            args = re.split(r"\s*(?:&&|;|\|\|)\s*", command, maxsplit=1)[0]
            try:
                yield shlex.split(args)
            except ValueError:
                yield args.split()
        return
    for line in filter(None, lines):
        if line.startswith("-"):
            yield line.split()
            continue
        requirement, *options = re.split(r"\s+(?=--?[A-Za-z])", line)
        yield [requirement, *(w for o in options for w in o.split())]


def _options(words: list[str]) -> Iterable[tuple[str, str]]:
    index = 0
    while index < len(words):
        word = words[index]
        name, _, value = word.partition("=") if word.startswith("--") else (word, "", "")
        canonical = _OPTION_WITH_VALUE.get(name)
        if canonical is not None:
            if not value and index + 1 < len(words):
                index += 1
                value = words[index]
            yield canonical, value
        elif word.startswith("-"):
            if name in _IGNORED_WITH_VALUE and not value:
                index += 1
            yield name, ""
        else:
            yield "", word
        index += 1


_FROM_IMAGE = re.compile(
    r"^FROM\s+(?:--platform=\S+\s+)?pytorch/pytorch:(?P<torch>\d+\.\d+\.\d+)-cuda(?P<cuda>\d+\.\d+)",
    re.I | re.M,
)


def from_requirements(
    text: str, *, source: str, includes: Mapping[str, str] | None = None
) -> Intent:
    """A requirements.txt, a Dockerfile or a shell script with `pip install` lines.
    ``includes``: the text of each -r / -c file it names (see referenced_files)."""
    found = Collector(source)
    image = _FROM_IMAGE.search(text)
    if image is not None:
        where = f"FROM pytorch/pytorch:{image['torch']}-cuda{image['cuda']}"
        found.torch = image["torch"]
        found.note(f'{where} -> [torch] version = "{image["torch"]}" (the image\'s torch)')
        found.set_cuda(image["cuda"], where)
    _read_requirements(found, text, includes or {}, depth=0)
    return found.intent()


def _read_requirements(
    found: Collector, text: str, includes: Mapping[str, str], depth: int
) -> None:
    constraints: list[str] = []
    for words in _lines(text):
        for option, value in _options(words):
            if option in ("--index-url", "--extra-index-url", "-f"):
                found.index(value, option)
            elif option == "-r":
                _include(found, value, includes, depth)
            elif option == "-c":
                constraints.append(value)
            elif option == "" and value:
                found.requirement(value, found.source)
            elif option in ("-e", "--editable"):
                found.note(f"{option}: editable installs are skipped (not from an index)")
    for name in constraints:
        if name not in includes:
            found.note(f"-c {name}: not found; its constraints are not applied")
            continue
        for words in _lines(includes[name]):
            for option, value in _options(words):
                if option == "" and value:
                    found.constrain(value, f"-c {name}")


def _include(found: Collector, name: str, includes: Mapping[str, str], depth: int) -> None:
    if name in includes and depth < 5:
        _read_requirements(found, includes[name], includes, depth + 1)
    else:
        found.note(f"-r {name}: not found; its requirements are not adopted")


# --------------------------------------------------------------------------------------
# pyproject.toml: PEP 621 + uv, PDM or Poetry sources


def from_pyproject(text: str, *, source: str) -> Intent:
    data = _toml.loads(text)
    found = Collector(source)
    project = data.get("project", {})
    tool = data.get("tool", {})
    if isinstance(project, Mapping) and isinstance(project.get("requires-python"), str):
        found.python_range = project["requires-python"]
        found.note(f"requires-python {found.python_range!r} -> [env] python within it")
    _uv_routing(found, tool.get("uv", {}))
    for table in (tool.get("pdm", {}).get("source", []), tool.get("poetry", {}).get("source", [])):
        for entry in table if isinstance(table, list) else []:
            if isinstance(entry, Mapping) and isinstance(entry.get("url"), str):
                found.index(entry["url"], f"source {entry.get('name', '')!r}")
    for item in project.get("dependencies", []) if isinstance(project, Mapping) else []:
        if isinstance(item, str):
            found.requirement(item, "[project] dependencies")
    poetry = tool.get("poetry", {}).get("dependencies", {})
    if isinstance(poetry, Mapping):
        _poetry(found, poetry)
    if isinstance(project, Mapping) and project.get("optional-dependencies"):
        found.note(
            "[project] optional-dependencies are not adopted; add what you use to [packages]"
        )
    return found.intent()


def _uv_routing(found: Collector, uv: Any) -> None:
    if not isinstance(uv, Mapping):
        return
    indexes = {
        str(i.get("name")): str(i["url"])
        for i in uv.get("index", [])
        if isinstance(i, Mapping) and isinstance(i.get("url"), str)
    }
    sources = uv.get("sources", {})
    routed = sources.get(TORCH) if isinstance(sources, Mapping) else None
    for entry in routed if isinstance(routed, list) else [routed] if routed else []:
        if isinstance(entry, Mapping) and entry.get("index") in indexes:
            name = entry["index"]
            marker = f" (marker {entry['marker']})" if entry.get("marker") else ""
            found.index(indexes[name], f"[tool.uv.sources] torch -> index {name!r}{marker}")
            break
    for name, url in indexes.items():
        if variant_named(url.rstrip("/").rsplit("/", 1)[-1]) is None:
            found.index(url, f"[[tool.uv.index]] {name!r}")


def _poetry(found: Collector, table: Mapping[str, Any]) -> None:
    for name, value in table.items():
        version = value.get("version", "*") if isinstance(value, Mapping) else value
        if not isinstance(version, str):
            continue
        if name == "python":
            found.python_range = poetry_specifier(version)
            found.note(f"[tool.poetry.dependencies] python {version!r} -> [env] python within it")
            continue
        specifier = poetry_specifier(version)
        found.requirement(f"{name}{specifier}", "[tool.poetry.dependencies]")


def poetry_specifier(text: str) -> str:
    """Poetry's ^ ~ * forms as PEP 440: ^2.3 -> >=2.3,<3.0; ~2.3 -> >=2.3,<2.4; * -> ''."""
    parts = []
    if "||" in text or not re.fullmatch(r"[\s\d.*^~<>=!,]*", text):
        raise UsageError(
            f"the Poetry version {text!r} is not one envlock can translate",
            hint="Write it as a PEP 440 specifier (>=1.2,<2) in pyproject.toml first.",
        )
    for item in (p.strip() for p in text.split(",")):
        if item in ("", "*"):
            continue
        if item[0] in "^~" and not item.startswith("~="):
            numbers = [int(n) for n in re.findall(r"\d+", item[1:])] or [0]
            if item[0] == "^":
                bump = next((i for i, n in enumerate(numbers) if n != 0), len(numbers) - 1)
            else:
                bump = min(1, len(numbers) - 1)
            upper = [*numbers[:bump], numbers[bump] + 1]
            parts += [f">={'.'.join(map(str, numbers))}", f"<{'.'.join(map(str, upper))}"]
        elif re.match(r"^\d", item):
            parts.append(f"=={item}")
        else:
            parts.append(item)
    try:
        return str(SpecifierSet(",".join(parts)))
    except InvalidSpecifier:
        raise UsageError(
            f"the Poetry version {text!r} is not one envlock can translate",
            hint="Write it as a PEP 440 specifier (>=1.2,<2) in pyproject.toml first.",
        ) from None


# --------------------------------------------------------------------------------------
# a PEP 751 lock (any tool's)


def from_pylock(text: str, *, source: str, channels: Channels) -> Intent:
    """Every package of the lock (it does not say which were asked for), its torch build and
    Python; the exact versions become ``pins`` for `envlock lock --keep-versions`."""
    from envlock.foreign import derive_meta  # noqa: PLC0415 - only for this source
    from envlock.lockfile import lock_meta, parse_lock_text  # noqa: PLC0415

    lock = parse_lock_text(text, source=source, installs=False)
    meta = lock_meta(lock) or derive_meta(lock, channels)
    found = Collector(source)
    found.python = meta.python
    found.platforms = meta.platforms
    found.note(
        f"the lock is for CPython {meta.python} on {', '.join(meta.platforms) or 'no platform'}"
    )
    for package in sorted(lock.packages, key=lambda p: p.name):
        version = str(package.version) if package.version is not None else None
        if version is None:
            found.note(f"{package.name}: no version in the lock; adopted unpinned")
            found.requirement(package.name, source)
        else:
            found.requirement(f"{package.name}=={version}", source)
    if meta.variant and found.cuda is None:
        found.set_cuda(cuda_of(Variant(name=meta.variant)), f"the torch entry ({meta.variant})")
    for name in list(found.packages):
        found.packages[name] = name  # the versions are kept as preferences, not spec pins
    found.note(
        "[packages] lists every package of the lock unpinned; `envlock lock --keep-versions "
        f"{source}` keeps its versions"
    )
    return found.intent()


def adopt_text(
    name: str, text: str, *, channels: Channels, includes: Mapping[str, str] | None = None
) -> Intent:
    """The Intent of a file by its name: pylock*.toml, another *.toml (pyproject.toml),
    *.yml / *.yaml (environment.yml), anything else a requirements text."""
    from envlock.adopt_conda import from_environment  # noqa: PLC0415 - only for that kind

    try:
        if name.startswith("pylock") and name.endswith(".toml"):
            return from_pylock(text, source=name, channels=channels)
        if name.endswith(".toml"):
            return from_pyproject(text, source=name)
    except _toml.DECODE_ERRORS as exc:
        raise UsageError(
            f"{name} is not valid TOML: {exc}", hint="Fix the file, then run envlock again."
        ) from None
    if name.endswith((".yml", ".yaml")):
        return from_environment(text, source=name)
    return from_requirements(text, source=name, includes=includes)
