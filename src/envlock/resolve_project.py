"""Spec + Selection -> the throw-away uv project uv locks, and the preferences it starts from. Pure.

envlock contains no resolver: uv solves. This module writes the project uv solves (with the
PyTorch variant index declared ``explicit`` and only torch-family names routed to it) and the
minimal uv.lock of versions to keep; ``envlock.io.uv`` runs uv on them and ``envlock.resolve``
reads its answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from packaging.pylock import Pylock
from packaging.utils import NormalizedName, canonicalize_name

from envlock import _toml
from envlock.channels import Selection, TorchOrigin
from envlock.spec import Indexes, Spec
from envlock.urls import query_secrets, redact_url, split_credentials

PROJECT_NAME = "envlock-resolve"
PYPI_INDEX_NAME = "pypi"
PYTORCH_INDEX_NAME = "pytorch"
ENVLOCK_MIN_PYTHON = "3.11"  # pyproject.toml's requires-python


@dataclass(frozen=True, slots=True, kw_only=True)
class UvProject:
    """Everything the io layer needs to run uv: files to write and credentials to pass."""

    pyproject: str
    # Settings passed on uv's command line: uv runs with --no-config, which also drops the
    # project's own [tool.uv] *settings* (default index, exclude-newer); project metadata
    # (sources, explicit indexes, environments) is still read from pyproject.toml.
    lock_args: tuple[str, ...]
    credentials: Mapping[str, str]  # UV_INDEX_<NAME>_USERNAME / _PASSWORD
    secrets: tuple[str, ...]  # values to scrub from any output
    index_labels: Mapping[str, str]  # credential-free index URL -> human name
    pypi_url: str  # the credential-free PyPI (default) index URL
    routed: Mapping[NormalizedName, str] = field(default_factory=dict)  # name -> its index URL
    # credential-free index URL -> (user, password), for envlock's own reads of that index
    auth: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # index URL as written in the lock (no query) -> as used on the wire (with its query)
    wire: Mapping[str, str] = field(default_factory=dict)

    def wire_url(self, written: str) -> str:
        return self.wire.get(written.rstrip("/"), written)

    def auth_for(self, url: str) -> tuple[str, str] | None:
        """Credentials for an index URL or a file on the same host (mirrors often serve files
        from another path than /simple), as uv applies them per realm."""
        if url.rstrip("/") in self.auth:
            return self.auth[url.rstrip("/")]
        realm = urlsplit(url)[:2]
        return next((v for k, v in self.auth.items() if urlsplit(k)[:2] == realm), None)


def _credentials(name: str, url: str) -> tuple[str, dict[str, str], tuple[str, ...]]:
    clean, user, password = split_credentials(url)
    env: dict[str, str] = {}
    secrets: list[str] = []
    key = name.upper().replace("-", "_")
    if user is not None:
        env[f"UV_INDEX_{key}_USERNAME"] = user
        if password is None:  # a bare token in the user part is the secret
            secrets.append(user)
    if password is not None:
        env[f"UV_INDEX_{key}_PASSWORD"] = password
        secrets.append(password)
    secrets += query_secrets(clean)
    return clean, env, tuple(secrets)


def direct_requirements(spec: Spec, selection: Selection) -> list[str]:
    """The dependencies of the throw-away project, torch first."""
    reqs = [f"torch{selection.torch_specifier}"]
    reqs += [f"{name}{specifier}" for name, specifier in sorted(selection.companions.items())]
    reqs += list(selection.extra_requirements)
    reqs += [str(r) for r in spec.packages]
    return reqs


def _minor_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def build_uv_project(spec: Spec, selection: Selection, indexes: Indexes) -> UvProject:
    """The pyproject.toml uv locks: explicit variant index, per-package routing, platforms.

    uv runs with envlock's own interpreter and insists that the project's requires-python
    admits it, so requires-python is the lower of the spec's minor and the oldest Python envlock
    runs on (never the running one: the same spec must give the same bytes under any
    interpreter), and the spec's Python is pinned through ``environments`` instead: a 3.12
    lock needs no 3.12 interpreter on the machine.
    """
    pypi_url, pypi_env, pypi_secrets = _credentials(PYPI_INDEX_NAME, indexes.pypi)
    credentials = dict(pypi_env)
    secrets = list(pypi_secrets)
    labels = {pypi_url: f"the PyPI index ({pypi_url})"}
    torch_url = ""
    markers = [f"python_version == '{spec.python}' and {p.marker}" for p in spec.platforms]
    # Not the running interpreter's minor: uv simplifies markers against requires-python, so
    # the lock's bytes would depend on which Python runs envlock.
    floor = min(spec.python, ENVLOCK_MIN_PYTHON, key=_minor_key)
    lines = [
        "[project]",
        f"name = {_toml.value(PROJECT_NAME)}",
        f"version = {_toml.value('0')}",
        f"requires-python = {_toml.value(f'>={floor}')}",
        f"dependencies = {_toml.multiline_array(direct_requirements(spec, selection))}",
        "",
        # A workspace root of its own: uv looks for a workspace in the parents of the project
        # otherwise, and a planted pyproject.toml there (/tmp/pyproject.toml with members =
        # ["envlock-*"]) could add overrides, sources or constraints to this lock.
        "[tool.uv.workspace]",
        f"members = {_toml.value([])}",
        "",
        "[tool.uv]",
        f"package = {_toml.value(False)}",
        f"environments = {_toml.multiline_array(markers)}",
        f"required-environments = {_toml.multiline_array(markers)}",
        "",
    ]
    lock_args = ["--default-index", f"{PYPI_INDEX_NAME}={pypi_url}"]
    routed = sourced_names(spec, selection)
    if spec.exclude_newer is not None:
        lock_args += ["--exclude-newer", spec.exclude_newer.strftime("%Y-%m-%dT%H:%M:%SZ")]
        # The PyTorch index has no upload time for most files, and uv drops files without one
        # under a cut-off; the torch series is already fixed by the spec, so exempt these.
        for name in routed:
            lock_args += ["--exclude-newer-package", f"{name}=false"]
    if selection.index_url is not None:
        torch_url, torch_env, torch_secrets = _credentials(PYTORCH_INDEX_NAME, selection.index_url)
        credentials.update(torch_env)
        secrets += torch_secrets
        labels[torch_url] = f"the PyTorch {selection.variant.name} index ({torch_url})"
        lines += [
            "[[tool.uv.index]]",
            f"name = {_toml.value(PYTORCH_INDEX_NAME)}",
            f"url = {_toml.value(torch_url)}",
            f"explicit = {_toml.value(True)}",
            "",
        ]
    lines += _sources_table(spec, selection)
    auth = {}
    for index_name, url in ((PYPI_INDEX_NAME, pypi_url), (PYTORCH_INDEX_NAME, torch_url)):
        key = index_name.upper().replace("-", "_")
        user = credentials.get(f"UV_INDEX_{key}_USERNAME")
        if url and user is not None:
            auth[url.rstrip("/")] = (user, credentials.get(f"UV_INDEX_{key}_PASSWORD", ""))
    return UvProject(
        pyproject="\n".join(lines),
        lock_args=tuple(lock_args),
        routed=dict.fromkeys(routed, torch_url) if selection.index_url is not None else {},
        credentials=credentials,
        secrets=tuple(secrets),
        index_labels=labels,
        pypi_url=pypi_url,
        auth=auth,
        wire={redact_url(u).rstrip("/"): u for u in (pypi_url, torch_url) if u},
    )


def sourced_names(spec: Spec, selection: Selection) -> tuple[NormalizedName, ...]:
    """Torch-family names that are direct dependencies and so get pinned to the variant index."""
    if selection.index_url is None:
        return ()
    requested = {
        canonicalize_name(re.split(r"[\s;\[<>=!~]", r, maxsplit=1)[0])
        for r in direct_requirements(spec, selection)
    }
    return tuple(n for n in selection.routed if n in requested)


def _sources_table(spec: Spec, selection: Selection) -> list[str]:
    names = sourced_names(spec, selection)
    if not names:
        return []
    via_index = [c for c in selection.platforms if c.origin is TorchOrigin.PYTORCH_INDEX]
    source: object = {"index": PYTORCH_INDEX_NAME}
    if len(via_index) != len(selection.platforms):
        source = [{"index": PYTORCH_INDEX_NAME, "marker": c.platform.marker} for c in via_index]
    return ["[tool.uv.sources]", *(f"{_toml.key(n)} = {_toml.value(source)}" for n in names), ""]


# --------------------------------------------------------------------------------------
# preferences: a minimal uv.lock built from the previous pylock, so re-locking after a spec
# change keeps every version it can (like `uv lock` does with its own lock file).


def preferences_lock(
    locks: Sequence[Pylock], requires_python: str, *, skip: frozenset[str] = frozenset()
) -> str:
    """A minimal uv.lock holding the versions to prefer; the first lock naming a package wins.

    ``skip`` names packages taken only from the first lock (torch-family and CUDA runtime
    packages differ between builds, so another variant's versions must not steer them)."""
    lines = [
        f"version = {_toml.value(1)}",
        f"revision = {_toml.value(3)}",
        f"requires-python = {_toml.value(requires_python)}",
        "",
    ]
    seen: set[str] = set()
    for position, lock in enumerate(locks):
        for package in lock.packages:
            if package.version is None or not package.index or not package.wheels:
                continue
            if package.name in seen or (position > 0 and package.name in skip):
                continue
            seen.add(package.name)
            wheels = [
                {"url": wheel.url, "hash": f"sha256:{wheel.hashes['sha256']}"}
                for wheel in package.wheels
                if wheel.url is not None and "sha256" in wheel.hashes
            ]
            lines += [
                "[[package]]",
                f"name = {_toml.value(package.name)}",
                f"version = {_toml.value(str(package.version))}",
                f"source = {_toml.inline_table({'registry': package.index})}",
                f"wheels = {_toml.multiline_array(wheels)}",
                "",
            ]
    return "\n".join(lines)
