"""One parser per torchenv.toml key: each validates its value and adds what is wrong to Problems.

Pure. ``envlock.spec`` walks the tables and calls these; a parser never raises for bad input (it
records the problem and returns a placeholder), so the user sees every problem at once.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from envlock.errors import SpecError
from envlock.family import TORCH_TABLE
from envlock.spec_model import Indexes, Platform, TorchSource, TorchSpec
from envlock.urls import has_credentials, redact_text

INDEX_KEYS = ("pypi", "pytorch")
_PACKAGE_TABLE_KEYS = ("version", "extras", "markers")

_PYTHON_RE = re.compile(r"^3\.(\d+)$")
_MINOR_RE = re.compile(r"^\d+\.\d+$")
_CUDA_RE = re.compile(r"^(?:cu(?P<cu>\d{3,4})|(?P<ver>\d+(?:\.\d+)?))$")
_ROCM_RE = re.compile(r"^rocm\d+(?:\.\d+){0,2}$")


class Problems:
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


def _did_you_mean(key: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keys(
    problems: Problems, table: Mapping[str, Any], allowed: Sequence[str], *, where: str
) -> None:
    """Add a problem (with a did-you-mean) for each key of ``table`` not in ``allowed``."""
    for key in table:
        if key not in allowed:
            problems.add(
                where,
                f"unknown key {key!r}{_did_you_mean(key, allowed)}",
                f"Allowed keys in {where}: {', '.join(allowed)}.",
            )


def subtable(
    problems: Problems, data: Mapping[str, Any], key: str, *, required: bool
) -> Mapping[str, Any]:
    """``data[key]`` when it is a table, else {} (a problem when it is missing and required)."""
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


def parse_python(problems: Problems, env: Mapping[str, Any]) -> str | None:
    """[env] python: a CPython minor version ("3.11"), or None after adding a problem."""
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


def parse_platforms(problems: Problems, env: Mapping[str, Any]) -> tuple[Platform, ...]:
    """[env] platforms, deduplicated in Platform order (default: linux-x86_64)."""
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


def parse_torch(problems: Problems, torch: Mapping[str, Any]) -> TorchSpec | None:
    """[torch] (or a variant merged over it) -> TorchSpec, or None after adding problems."""
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


def _parse_cuda(problems: Problems, value: object) -> str | None:
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
    problems: Problems, table: Mapping[str, Any], key: str, *, where: str, default: bool
) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        problems.add(where, f"expected true or false, got {value!r}")
        return default
    return value


_PROJECT_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)


def parse_packages(problems: Problems, table: Mapping[str, Any]) -> tuple[Requirement, ...]:
    """[packages] -> requirements sorted by name; the [torch] table's names are refused."""
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


def _requirement_text(problems: Problems, where: str, name: str, value: object) -> str | None:
    extras = ""
    markers = ""
    if isinstance(value, Mapping):
        check_keys(problems, value, _PACKAGE_TABLE_KEYS, where=where)
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


def parse_exclude_newer(problems: Problems, table: Mapping[str, Any]) -> datetime | None:
    """[resolution] exclude-newer (a TOML date/datetime or ISO text) -> a UTC datetime."""
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


def parse_digests(problems: Problems, table: object) -> dict[str, str]:
    """[docker] digests: image name:tag -> sha256:<64 hex> (an empty dict when absent)."""
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


def parse_indexes(problems: Problems, table: Mapping[str, Any]) -> Indexes:
    """[indexes] pypi / pytorch: credential-free http(s):// or file:// URLs."""
    values: dict[str, str] = {}
    for key in INDEX_KEYS:
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
