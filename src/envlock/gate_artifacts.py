"""What is new between two locks, and what a wheel runs at start-up (pure; the gate's facts).

``pair`` finds the artifacts of the new lock that the old lock did not have for their package
(by digest), each with the old artifact to compare it with; ``find_hooks`` reads a wheel's file
list (and its top-level .pth files) for start-up hooks. ``envlock.gate`` turns them into
findings; ``envlock.io.artifact_facts`` reads the file lists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from packaging.pylock import Package, Pylock
from packaging.utils import canonicalize_name

from envlock.urls import redact_to_host
from envlock.wheels import artifact_key, parse_wheel

HOOK_MODULES = ("sitecustomize", "usercustomize")
_MODULE_SUFFIXES = (".py", ".pyc", ".so", ".pyd")
# A wheel member that installs into site-packages: at the top, under NAME.data/purelib|platlib,
# or under NAME.data/data/ at the prefix's own site-packages (a venv's lib/pythonX.Y/...).
_DATA = re.compile(
    r"^[^/]+\.data/(?:purelib|platlib|data/(?:lib(?:64)?/python[^/]*|Lib)/site-packages)/"
    r"(?P<rest>.+)$"
)

LOCAL = "(local path)"  # the host of an artifact read from a path (as envlock.diff says)
Form = Literal["wheel", "sdist", "archive", "vcs", "directory"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Artifact:
    """One file (or source) of a locked package."""

    package: str  # normalised name
    version: str
    form: Form
    filename: str  # "(vcs)", "(directory)" for sources that are not a file
    digest: str | None  # sha256, a VCS commit id, or None (a directory)
    url: str | None = None
    path: str | None = None
    upload_time: datetime | None = None
    index: str | None = None

    @property
    def host(self) -> str:
        return (redact_to_host(self.url) if self.url else None) or LOCAL

    @property
    def key(self) -> str:
        return artifact_key(self.filename) if self.form in ("wheel", "sdist") else self.filename


def _digest(hashes: Mapping[str, str]) -> str | None:
    return hashes.get("sha256") or next(iter(hashes.values()), None)


def artifacts(package: Package) -> tuple[Artifact, ...]:
    """Every artifact of a locked package, wheels first."""
    name, version = canonicalize_name(package.name), str(package.version or "")
    common: dict[str, Any] = {"package": name, "version": version, "index": package.index}
    found = [
        Artifact(
            form="wheel",
            filename=w.filename,
            digest=_digest(w.hashes),
            url=w.url,
            path=w.path,
            upload_time=w.upload_time,
            **common,
        )
        for w in package.wheels or ()
    ]
    if package.sdist is not None:
        s = package.sdist
        found.append(
            Artifact(
                form="sdist",
                filename=s.filename,
                digest=_digest(s.hashes),
                url=s.url,
                path=s.path,
                upload_time=s.upload_time,
                **common,
            )
        )
    if package.archive is not None:
        a = package.archive
        filename = (a.url or a.path or "(archive)").rsplit("/", 1)[-1].split("?")[0]
        form: Form = "wheel" if parse_wheel(filename) else "archive"
        found.append(
            Artifact(
                form=form,
                filename=filename,
                digest=_digest(a.hashes),
                url=a.url,
                path=a.path,
                upload_time=a.upload_time,
                **common,
            )
        )
    if package.vcs is not None:
        v = package.vcs
        found.append(
            Artifact(form="vcs", filename="(vcs)", digest=v.commit_id, url=v.url, **common)
        )
    if package.directory is not None:
        found.append(
            Artifact(
                form="directory",
                filename="(directory)",
                digest=None,
                path=package.directory.path,
                **common,
            )
        )
    return tuple(found)


# --------------------------------------------------------------------------------------
# which artifacts are new between two locks


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """An artifact the old lock did not have for its package, with what to compare it to."""

    new: Artifact
    baseline: Artifact | None = None  # the old wheel to compare start-up hooks with
    drift: Artifact | None = None  # an old artifact of the same file name, other bytes
    was_wheel: bool = False  # the old lock installed this package from wheels


@dataclass(frozen=True, slots=True, kw_only=True)
class Pairing:
    candidates: tuple[Candidate, ...]
    moved: tuple[tuple[Artifact, Artifact], ...] = ()  # (old, new): same bytes, new host
    packages: int = 0  # packages in the new lock


def _tags(artifact: Artifact) -> frozenset[str]:
    parsed = parse_wheel(artifact.filename) if artifact.form == "wheel" else None
    return frozenset(str(t) for t in parsed[3]) if parsed else frozenset()


def _baseline(new: Artifact, old: Sequence[Artifact]) -> Artifact | None:
    wheels = [a for a in old if a.form == "wheel"]
    if new.form != "wheel" or not wheels:
        return None
    tags = _tags(new)
    return next((a for a in wheels if _tags(a) == tags), wheels[0])


def pair(old: Pylock | None, new: Pylock) -> Pairing:
    """The new lock's artifacts that the old lock did not have (by package and digest); a
    whole lock when ``old`` is None."""
    before: dict[str, list[Artifact]] = {}
    for package in old.packages if old is not None else ():
        before.setdefault(canonicalize_name(package.name), []).extend(artifacts(package))
    candidates: list[Candidate] = []
    moved: list[tuple[Artifact, Artifact]] = []
    for package in sorted(new.packages, key=lambda p: (p.name, str(p.version or ""))):
        previous = before.get(canonicalize_name(package.name), [])
        by_digest = {a.digest: a for a in previous if a.digest}
        by_key = {a.key: a for a in previous}
        was_wheel = any(a.form == "wheel" for a in previous)
        for artifact in artifacts(package):
            same = by_digest.get(artifact.digest) if artifact.digest else None
            if same is not None:
                hosts = {a.host for a in previous if a.digest == artifact.digest}
                # A file now at a local path with bytes it had before is a bundled copy
                # (envlock.diff says the same): nothing serves it.
                if artifact.host not in hosts and artifact.host != LOCAL:
                    moved.append((same, artifact))
                continue
            drift = by_key.get(artifact.key)
            candidates.append(
                Candidate(
                    new=artifact,
                    baseline=drift if drift is not None else _baseline(artifact, previous),
                    drift=drift if drift is not None and drift.digest else None,
                    was_wheel=was_wheel,
                )
            )
    return Pairing(candidates=tuple(candidates), moved=tuple(moved), packages=len(new.packages))


# --------------------------------------------------------------------------------------
# start-up hooks in a wheel's file list


@dataclass(frozen=True, slots=True, kw_only=True)
class Hook:
    path: str  # the member's path in the wheel
    kind: Literal["pth", "sitecustomize", "usercustomize"]
    lines: tuple[str, ...] = ()  # a .pth's import lines: what site.py executes

    def describe(self) -> str:
        """One line about the hook. The wheel's own text (a member name, a .pth line) is the
        attacker's: control characters and backticks are replaced before it is shown."""
        path = _shown(self.path)
        if self.kind == "pth":
            first = _shown(self.lines[0]) if self.lines else ""
            shown = first if len(first) <= 80 else first[:77] + "..."
            more = f" (+{len(self.lines) - 1} more)" if len(self.lines) > 1 else ""
            return f"{path} runs `{shown}`{more} at every interpreter start"
        return f"{path}: a {self.kind} module, imported at every interpreter start"


def _shown(text: str) -> str:
    return "".join("?" if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 else c for c in text).replace(
        "`", "'"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class WheelFiles:
    """What the gate needs from a wheel's file list (cached by the wheel's sha256)."""

    files: int
    hooks: tuple[Hook, ...]
    how: str = "range"  # "cached", "range", "download" (the server refused Range), "local"


def _installed(member: str) -> str:
    match = _DATA.match(member)
    return match.group("rest") if match else member


def hook_members(names: Iterable[str]) -> list[str]:
    """The members whose contents decide whether they are hooks: top-level .pth files."""
    return [n for n in names if "/" not in _installed(n) and _installed(n).endswith(".pth")]


def find_hooks(names: Iterable[str], pth: Mapping[str, str]) -> tuple[Hook, ...]:
    """The start-up hooks among a wheel's members; ``pth`` holds the text of each member
    hook_members named. site.py executes a .pth line that starts with "import " or
    "import\\t" and imports sitecustomize and usercustomize at start-up."""
    found: list[Hook] = []
    for name in sorted(names):
        where = _installed(name)
        if "/" not in where and where.endswith(".pth"):
            lines = tuple(
                line.rstrip()
                for line in pth.get(name, "").splitlines()
                if line.startswith(("import ", "import\t"))
            )
            if lines:
                found.append(Hook(path=name, kind="pth", lines=lines))
            continue
        top, _, rest = where.partition("/")
        stem = top.split(".", 1)[0]
        if stem not in HOOK_MODULES:
            continue
        module = not rest and top != stem and top.endswith(_MODULE_SUFFIXES)
        package = top == stem and rest.startswith("__init__.")
        if module or package:
            found.append(Hook(path=name, kind=stem))  # type: ignore[arg-type]
    return tuple(found)
