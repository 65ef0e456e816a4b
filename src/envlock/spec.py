"""torchenv.toml -> Spec (pure: parses text, never touches the filesystem).

All problems in a spec are collected before raising, so a user fixes them in one pass.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

from envlock import _toml
from envlock.errors import SpecError
from envlock.family import TORCH_TABLE
from envlock.urls import has_credentials, redact_text

SPEC_FILENAME = "torchenv.toml"
DEFAULT_PYPI_INDEX = "https://pypi.org/simple"
DEFAULT_PYTORCH_INDEX = "https://download.pytorch.org/whl"


class Platform(StrEnum):
    LINUX_X86_64 = "linux-x86_64"
    LINUX_AARCH64 = "linux-aarch64"
    MACOS_ARM64 = "macos-arm64"
    WINDOWS_X86_64 = "windows-x86_64"

    @property
    def marker(self) -> str:
        """The PEP 508 marker that selects this platform (as uv and PEP 751 use it)."""
        return _PLATFORM_MARKERS[self]

    @property
    def environment(self) -> dict[str, str]:
        """Marker variables for this platform (Python ones are added by the caller)."""
        return dict(_PLATFORM_ENVIRONMENTS[self])


_PLATFORM_MARKERS = {
    Platform.LINUX_X86_64: "sys_platform == 'linux' and platform_machine == 'x86_64'",
    Platform.LINUX_AARCH64: "sys_platform == 'linux' and platform_machine == 'aarch64'",
    Platform.MACOS_ARM64: "sys_platform == 'darwin' and platform_machine == 'arm64'",
    Platform.WINDOWS_X86_64: "sys_platform == 'win32' and platform_machine == 'AMD64'",
}

_PLATFORM_ENVIRONMENTS: dict[Platform, dict[str, str]] = {
    Platform.LINUX_X86_64: {
        "sys_platform": "linux",
        "platform_machine": "x86_64",
        "platform_system": "Linux",
        "os_name": "posix",
    },
    Platform.LINUX_AARCH64: {
        "sys_platform": "linux",
        "platform_machine": "aarch64",
        "platform_system": "Linux",
        "os_name": "posix",
    },
    Platform.MACOS_ARM64: {
        "sys_platform": "darwin",
        "platform_machine": "arm64",
        "platform_system": "Darwin",
        "os_name": "posix",
    },
    Platform.WINDOWS_X86_64: {
        "sys_platform": "win32",
        "platform_machine": "AMD64",
        "platform_system": "Windows",
        "os_name": "nt",
    },
}


class TorchSource(StrEnum):
    """Where torch-family wheels come from when PyPI ships the requested build itself."""

    AUTO = "auto"  # PyPI when PyPI's own wheel is the requested variant, else the PyTorch index
    PYTORCH_INDEX = "pytorch-index"  # always the variant index (macOS still uses PyPI)
    PYPI = "pypi"  # PyPI only; an error if PyPI does not ship the requested variant


@dataclass(frozen=True, slots=True, kw_only=True)
class Indexes:
    pypi: str = DEFAULT_PYPI_INDEX
    pytorch: str = DEFAULT_PYTORCH_INDEX


@dataclass(frozen=True, slots=True, kw_only=True)
class TorchSpec:
    version: str  # as written ("2.6", ">=2.5,<2.7")
    specifier: SpecifierSet  # "2.6" becomes "==2.6.*"
    cuda: str  # normalised request: "12.4", "12", "cpu", "rocm6.2", "xpu"
    vision: bool = False
    audio: bool = False
    source: TorchSource = TorchSource.AUTO


@dataclass(frozen=True, slots=True, kw_only=True)
class VariantSpec:
    """[variants.<name>]: a [torch] override (and optionally fewer platforms)."""

    name: str
    torch: TorchSpec
    platforms: tuple[Platform, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Spec:
    python: str  # "3.11"
    platforms: tuple[Platform, ...]
    torch: TorchSpec
    packages: tuple[Requirement, ...] = ()
    exclude_newer: datetime | None = None
    indexes: Indexes = field(default_factory=Indexes)
    variants: tuple[VariantSpec, ...] = ()
    # [docker] digests: base image name:tag -> sha256:… the user pins (recorded in the lock)
    image_digests: Mapping[str, str] = field(default_factory=dict)

    def variant(self, name: str) -> Spec:
        """The spec one variant locks: its [torch] and platforms, everything else shared."""
        for item in self.variants:
            if item.name == name:
                return replace(self, torch=item.torch, platforms=item.platforms, variants=())
        known = ", ".join(v.name for v in self.variants) or "none"
        raise SpecError(
            f"torchenv.toml has no variant {name!r} (it has: {known})",
            hint="Variants are the [variants.<name>] tables of torchenv.toml.",
        )

    @property
    def requires_python(self) -> SpecifierSet:
        return SpecifierSet(f"=={self.python}.*")

    @property
    def package_names(self) -> frozenset[NormalizedName]:
        return frozenset(canonicalize_name(r.name) for r in self.packages)


# --------------------------------------------------------------------------------------
# parsing

_TOP_KEYS = ("env", "torch", "packages", "resolution", "indexes", "variants", "docker")
_DOCKER_KEYS = ("digests",)
_VARIANT_KEYS = (*("version", "cuda", "vision", "audio", "source"), "platforms")
_VARIANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_ENV_KEYS = ("python", "platforms")
_TORCH_KEYS = ("version", "cuda", "vision", "audio", "source")
_RESOLUTION_KEYS = ("exclude-newer",)
_INDEX_KEYS = ("pypi", "pytorch")
_PACKAGE_TABLE_KEYS = ("version", "extras", "markers")

_PYTHON_RE = re.compile(r"^3\.(\d+)$")
_MINOR_RE = re.compile(r"^\d+\.\d+$")
_CUDA_RE = re.compile(r"^(?:cu(?P<cu>\d{3,4})|(?P<ver>\d+(?:\.\d+)?))$")
_ROCM_RE = re.compile(r"^rocm\d+(?:\.\d+){0,2}$")


class _Problems:
    """Collects every problem in a spec so the user sees them all at once."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[str] = []
        self.hints: list[str] = []

    def add(self, where: str, message: str, hint: str = "") -> None:
        self.items.append(f"{where}: {message}")
        if hint and hint not in self.hints:
            self.hints.append(hint)

    def raise_if_any(self) -> None:
        if not self.items:
            return
        if len(self.items) == 1:
            message = f"{self.source}: {self.items[0]}"
        else:
            lines = "\n".join(f"  - {item}" for item in self.items)
            message = f"{self.source} has {len(self.items)} problems:\n{lines}"
        hint = " ".join(self.hints) or f"Fix {self.source}; `envlock init --help` shows the keys."
        raise SpecError(message, hint=hint)


def parse_spec_text(text: str, *, source: str = SPEC_FILENAME) -> Spec:
    """Parse torchenv.toml text into a Spec, or raise SpecError listing every problem."""
    if not text.strip():
        raise SpecError(
            f"{source} is empty",
            hint="Run `envlock init` to write a commented torchenv.toml.",
        )
    try:
        data = _toml.loads(text)
    except _toml.DECODE_ERRORS as exc:
        raise SpecError(
            f"{source} is not valid TOML: {exc}",
            hint="Fix the syntax at that line and column (strings need quotes, tables [brackets]).",
        ) from None
    return parse_spec(data, source=source)


def parse_spec(data: Mapping[str, Any], *, source: str = SPEC_FILENAME) -> Spec:
    """Validate a loaded torchenv.toml mapping and build a Spec."""
    problems = _Problems(source)
    _check_keys(problems, data, _TOP_KEYS, where="top level")
    env = _table(problems, data, "env", required=True)
    torch = _table(problems, data, "torch", required=True)
    packages_table = _table(problems, data, "packages", required=False)
    resolution = _table(problems, data, "resolution", required=False)
    indexes_table = _table(problems, data, "indexes", required=False)
    docker_table = _table(problems, data, "docker", required=False)

    _check_keys(problems, env, _ENV_KEYS, where="[env]")
    _check_keys(problems, torch, _TORCH_KEYS, where="[torch]")
    _check_keys(problems, resolution, _RESOLUTION_KEYS, where="[resolution]")
    _check_keys(problems, indexes_table, _INDEX_KEYS, where="[indexes]")
    _check_keys(problems, docker_table, _DOCKER_KEYS, where="[docker]")

    python = _parse_python(problems, env)
    platforms = _parse_platforms(problems, env)
    torch_spec = _parse_torch(problems, torch)
    packages = _parse_packages(problems, packages_table)
    exclude_newer = _parse_exclude_newer(problems, resolution)
    indexes = _parse_indexes(problems, indexes_table)
    variants = _parse_variants(problems, data.get("variants"), torch, platforms)
    image_digests = _parse_digests(problems, docker_table.get("digests", {}))
    problems.raise_if_any()
    assert python is not None
    assert torch_spec is not None
    return Spec(
        python=python,
        platforms=platforms,
        torch=torch_spec,
        packages=packages,
        exclude_newer=exclude_newer,
        indexes=indexes,
        variants=variants,
        image_digests=image_digests,
    )


def _parse_variants(
    problems: _Problems,
    raw: object,
    torch: Mapping[str, Any],
    platforms: tuple[Platform, ...],
) -> tuple[VariantSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        problems.add("variants", "expected tables [variants.<name>]")
        return ()
    result: list[VariantSpec] = []
    for name, table in raw.items():
        where = f"variants.{name}"
        if not _VARIANT_NAME.match(name):
            problems.add(
                where,
                f"variant name {name!r} must be lowercase letters, digits, - or _ (no dots)",
                "The lock of variant NAME is pylock.NAME.toml; PEP 751 forbids dots in NAME.",
            )
            continue
        if not isinstance(table, Mapping):
            problems.add(where, "expected a table")
            continue
        _check_keys(problems, table, _VARIANT_KEYS, where=f"[{where}]")
        merged = {**torch, **{k: v for k, v in table.items() if k != "platforms"}}
        sub = _Problems(problems.source)
        parsed = _parse_torch(sub, merged)
        for item in sub.items:
            problems.add(where, item.replace("torch.", f"{where}.", 1))
        own = platforms
        if "platforms" in table:
            own = _parse_platforms(problems, {"platforms": table["platforms"]})
            extra = [p.value for p in own if p not in platforms]
            if extra:
                problems.add(
                    f"{where}.platforms",
                    f"{', '.join(extra)} not in [env] platforms",
                    "A variant may narrow [env] platforms, not add to them.",
                )
        if parsed is not None:
            result.append(VariantSpec(name=name, torch=parsed, platforms=own))
    return tuple(result)


def _did_you_mean(key: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_keys(
    problems: _Problems, table: Mapping[str, Any], allowed: Sequence[str], *, where: str
) -> None:
    for key in table:
        if key not in allowed:
            problems.add(
                where,
                f"unknown key {key!r}{_did_you_mean(key, allowed)}",
                f"Allowed keys in {where}: {', '.join(allowed)}.",
            )


def _table(
    problems: _Problems, data: Mapping[str, Any], key: str, *, required: bool
) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None:
        if required:
            problems.add(
                f"[{key}]", "missing table", "Run `envlock init` to see a complete example."
            )
        return {}
    if not isinstance(value, Mapping):
        problems.add(key, f"expected a table, got {_type_name(value)}")
        return {}
    return value


def _type_name(value: object) -> str:
    names = {
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        list: "an array",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__)


def _parse_python(problems: _Problems, env: Mapping[str, Any]) -> str | None:
    value = env.get("python")
    if value is None:
        problems.add("env.python", "missing", 'Add python = "3.11" (a CPython minor version).')
        return None
    if not isinstance(value, str) or not _PYTHON_RE.match(value):
        problems.add(
            "env.python",
            f'expected a CPython minor version like "3.11", got {value!r}',
            'Write python = "3.11": envlock locks for one CPython minor version.',
        )
        return None
    return value


def _parse_platforms(problems: _Problems, env: Mapping[str, Any]) -> tuple[Platform, ...]:
    value = env.get("platforms", [Platform.LINUX_X86_64.value])
    allowed = [p.value for p in Platform]
    if not isinstance(value, list) or not value:
        problems.add("env.platforms", f"expected a non-empty array of strings, got {value!r}")
        return (Platform.LINUX_X86_64,)
    result: list[Platform] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or item not in allowed:
            suggestion = _did_you_mean(item, allowed) if isinstance(item, str) else ""
            problems.add(
                f"env.platforms[{i}]",
                f"unknown platform {item!r}{suggestion}",
                f"Platforms: {', '.join(allowed)}.",
            )
        elif Platform(item) not in result:
            result.append(Platform(item))
    return tuple(sorted(result, key=allowed.index))


def torch_specifier(version: str) -> SpecifierSet:
    """'2.6' -> '==2.6.*' (newest 2.6.x); anything else is taken as a PEP 440 specifier."""
    text = version.strip()
    if _MINOR_RE.match(text) or re.match(r"^\d+\.\d+\.\d+$", text):
        op = "==" + text + (".*" if _MINOR_RE.match(text) else "")
        return SpecifierSet(op)
    return SpecifierSet(text)


def normalise_cuda(value: str) -> str:
    """Normalise a [torch] cuda request: 'cu124' -> '12.4', 'CPU' -> 'cpu', '12' stays."""
    text = value.strip().lower()
    match = _CUDA_RE.match(text)
    if match and match.group("cu"):
        digits = match.group("cu")
        return f"{digits[:-1]}.{digits[-1]}"
    if match:
        return text
    return text


def _parse_torch(problems: _Problems, torch: Mapping[str, Any]) -> TorchSpec | None:
    version = torch.get("version")
    specifier: SpecifierSet | None = None
    if version is None:
        problems.add("torch.version", "missing", 'Add version = "2.6" (the newest 2.6.x).')
    elif not isinstance(version, str):
        problems.add("torch.version", f"expected a string, got {_type_name(version)}")
    else:
        try:
            specifier = torch_specifier(version)
        except InvalidSpecifier:
            problems.add(
                "torch.version",
                f"{version!r} is not a version or PEP 440 specifier",
                'Write "2.6" for the newest 2.6.x, or a specifier such as ">=2.5,<2.7".',
            )
    cuda = _parse_cuda(problems, torch.get("cuda"))
    vision = _bool(problems, torch, "vision", where="torch.vision", default=False)
    audio = _bool(problems, torch, "audio", where="torch.audio", default=False)
    source = TorchSource.AUTO
    raw_source = torch.get("source", "auto")
    allowed_sources = [s.value for s in TorchSource]
    if raw_source not in allowed_sources:
        problems.add(
            "torch.source",
            f"unknown source {raw_source!r}{_did_you_mean(str(raw_source), allowed_sources)}",
            "torch.source is one of: auto, pytorch-index, pypi.",
        )
    else:
        source = TorchSource(raw_source)
    if version is None or specifier is None or cuda is None:
        return None
    assert isinstance(version, str)
    return TorchSpec(
        version=version,
        specifier=specifier,
        cuda=cuda,
        vision=vision,
        audio=audio,
        source=source,
    )


def _parse_cuda(problems: _Problems, value: object) -> str | None:
    if value is None:
        problems.add(
            "torch.cuda",
            "missing",
            'Add cuda = "12.4" (a CUDA build), "cpu", "rocm6.2" or "xpu"; '
            "`envlock init` detects the host's driver and writes one.",
        )
        return None
    if not isinstance(value, str):
        problems.add("torch.cuda", f"expected a string, got {_type_name(value)}")
        return None
    text = normalise_cuda(value)
    if text == "auto":
        problems.add(
            "torch.cuda",
            '"auto" cannot be locked: the lock would depend on who runs `envlock lock`',
            "Run `envlock init --force` to detect this host's driver and write a concrete "
            'choice, or write one yourself (e.g. cuda = "12.4", "cpu").',
        )
        return None
    if text in ("cpu", "xpu") or _ROCM_RE.match(text) or _CUDA_RE.match(text):
        return text
    problems.add(
        "torch.cuda",
        f"unknown build {value!r}",
        'torch.cuda is a CUDA version ("12.4", "12", "cu124"), "cpu", "rocm6.2" or "xpu".',
    )
    return None


def _bool(
    problems: _Problems, table: Mapping[str, Any], key: str, *, where: str, default: bool
) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        problems.add(where, f"expected true or false, got {value!r}")
        return default
    return value


_PROJECT_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)


def _parse_packages(problems: _Problems, table: Mapping[str, Any]) -> tuple[Requirement, ...]:
    result: list[Requirement] = []
    for name, value in table.items():
        where = f"packages.{name}"
        if not _PROJECT_NAME.match(name):
            problems.add(
                where,
                f"{name!r} is not a package name",
                "Keys in [packages] are project names (letters, digits, '.', '-', '_'); "
                "direct URLs and paths are not allowed: every artifact comes from an index.",
            )
            continue
        canonical = canonicalize_name(name)
        # The [torch] table owns these; listing them in [packages] would fight the variant choice.
        if canonical in TORCH_TABLE:
            problems.add(
                where,
                f"{name} is chosen by the [torch] table, not [packages]",
                f"Remove {name} from [packages]; set [torch] version/vision/audio instead.",
            )
            continue
        text = _requirement_text(problems, where, name, value)
        if text is None:
            continue
        try:
            result.append(Requirement(text))
        except InvalidRequirement as exc:
            problems.add(where, f"invalid requirement {text!r}: {exc}")
    return tuple(sorted(result, key=lambda r: canonicalize_name(r.name)))


def _requirement_text(problems: _Problems, where: str, name: str, value: object) -> str | None:
    extras = ""
    markers = ""
    if isinstance(value, Mapping):
        _check_keys(problems, value, _PACKAGE_TABLE_KEYS, where=where)
        version = value.get("version", "*")
        raw_extras = value.get("extras", [])
        if not isinstance(raw_extras, list) or not all(
            isinstance(e, str) and _PROJECT_NAME.match(e) for e in raw_extras
        ):
            problems.add(f"{where}.extras", "expected an array of extra names", 'e.g. ["torch"]')
            return None
        extras = f"[{','.join(raw_extras)}]" if raw_extras else ""
        raw_markers = value.get("markers", "")
        if not isinstance(raw_markers, str):
            problems.add(f"{where}.markers", "expected a string")
            return None
        markers = f"; {raw_markers}" if raw_markers else ""
    else:
        version = value
    if not isinstance(version, str):
        problems.add(
            where,
            f"expected a version specifier string or a table, got {_type_name(version)}",
            'Write name = ">=1.0" or name = "*" (any version).',
        )
        return None
    version = version.strip()
    if version in ("", "*"):
        specifier = ""
    else:
        try:
            specifier = str(SpecifierSet(version))
        except InvalidSpecifier:
            problems.add(
                where,
                f"{version!r} is not a PEP 440 specifier",
                'Write specifiers like ">=4.40,<5", "==1.2.3" or "*".',
            )
            return None
    return f"{name}{extras}{specifier}{markers}"


def _parse_exclude_newer(problems: _Problems, table: Mapping[str, Any]) -> datetime | None:
    value = table.get("exclude-newer")
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    problems.add(
        "resolution.exclude-newer",
        f"expected a date or UTC datetime, got {value!r}",
        "Write exclude-newer = 2026-11-01T00:00:00Z (a TOML datetime, no quotes).",
    )
    return None


def _parse_digests(problems: _Problems, table: object) -> dict[str, str]:
    from envlock.images import DIGEST, REFERENCE  # noqa: PLC0415 - only with a [docker] table

    if not isinstance(table, Mapping):
        problems.add("docker.digests", f"expected a table, got {_type_name(table)}")
        return {}
    found: dict[str, str] = {}
    for name, value in table.items():
        if not REFERENCE.fullmatch(str(name)):
            problems.add(
                f"docker.digests.{str(name)[:100]!r}",
                "expected an image name:tag",
                "Name the image as FROM does, e.g. "
                '"pytorch/pytorch:2.6.0-cuda12.4-cudnn9-runtime".',
            )
        elif not isinstance(value, str) or not DIGEST.fullmatch(value):
            problems.add(
                f"docker.digests.{name!r}",
                "expected sha256:<64 hex digits>",
                "`docker buildx imagetools inspect IMAGE` (or the registry page) shows the digest.",
            )
        else:
            found[str(name)] = value
    return found


def _parse_indexes(problems: _Problems, table: Mapping[str, Any]) -> Indexes:
    values: dict[str, str] = {}
    for key in _INDEX_KEYS:
        value = table.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not re.match(r"^(https?|file)://", value):
            problems.add(
                f"indexes.{key}",
                "expected an http(s):// URL, got "
                f"{redact_text(value) if isinstance(value, str) else value!r}",
            )
            continue
        if has_credentials(value):  # the value is not echoed: it holds a secret
            problems.add(
                f"indexes.{key}",
                "the URL carries credentials, and torchenv.toml is meant to be committed",
                f"Keep [indexes] {key} credential-free and put the URL with credentials in "
                f"ENVLOCK_{key.upper()}_INDEX_URL (the environment); revoke the token if the "
                "file was shared.",
            )
            continue
        values[key] = value.rstrip("/")
    return Indexes(**values)


# --------------------------------------------------------------------------------------
# digest


def effective_indexes(spec_indexes: Indexes, environ: Mapping[str, str]) -> Indexes:
    """Apply ENVLOCK_PYPI_INDEX_URL / ENVLOCK_PYTORCH_INDEX_URL over the spec's [indexes]."""
    pypi = environ.get("ENVLOCK_PYPI_INDEX_URL") or spec_indexes.pypi
    pytorch = environ.get("ENVLOCK_PYTORCH_INDEX_URL") or spec_indexes.pytorch
    return Indexes(pypi=pypi.rstrip("/"), pytorch=pytorch.rstrip("/"))


def spec_digest(spec: Spec, indexes: Indexes) -> str:
    """A sha256 over the normalised spec and the effective (credential-free) index URLs.

    Two specs that differ only in formatting, comments or key order have the same digest.
    """
    payload = {
        "python": spec.python,
        "platforms": [p.value for p in spec.platforms],
        "torch": {
            "specifier": str(spec.torch.specifier),
            "cuda": spec.torch.cuda,
            "vision": spec.torch.vision,
            "audio": spec.torch.audio,
            "source": spec.torch.source.value,
        },
        "packages": sorted(str(r) for r in spec.packages),
        "exclude-newer": spec.exclude_newer.isoformat() if spec.exclude_newer else None,
        "indexes": {"pypi": indexes.pypi, "pytorch": indexes.pytorch},
    }
    if spec.image_digests:  # only when present: every earlier lock's digest stays as it was
        payload["docker-digests"] = dict(sorted(spec.image_digests.items()))
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()
