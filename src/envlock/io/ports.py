"""The small protocols the io layer's effects sit behind, as the api verbs use them.

Each verb takes its port as an optional keyword argument that defaults to the real
implementation in io/ (:class:`envlock.io.pages.PageReader`, :class:`envlock.io.probe.LocalHost`,
:func:`envlock.io.install.installer_named`); a test passes a fake instead (tests/test_ports.py).
Importing this module costs nothing but ``typing``: the verbs name the ports at their top
without slowing `envlock lock --check`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from envlock.host import HostFacts
    from envlock.io.transfer import Transfer

# What an index lists for a project: artifact key (envlock.wheels.artifact_key) -> hashes
# ({algorithm: hex digest}, empty when the index lists the file without one).
Listing = dict[str, dict[str, str]]
# Credentials for a URL (user, password), or None.
AuthFor = Callable[[str], tuple[str, str] | None]


class IndexReader(Protocol):
    """Reads which files an index lists for a project, and with which hashes."""

    def listings(
        self, wanted: Sequence[tuple[str, str]], auth: AuthFor
    ) -> Mapping[tuple[str, str], Listing]:
        """(index URL, project) -> its listing, for each pair in ``wanted``; an
        IndexUnavailableError when a page cannot be read."""
        ...


class HostProbe(Protocol):
    """Reads facts about the host envlock runs on."""

    def system(self) -> HostFacts:
        """OS, machine, glibc and the running Python (no GPU facts; no subprocess)."""
        ...

    def host(
        self, environ: Mapping[str, str] | None = None, *, system: HostFacts | None = None
    ) -> HostFacts:
        """All host facts (driver, GPUs too), on top of ``system`` when it was read already."""
        ...

    def find_python(self, minor: str, environ: Mapping[str, str]) -> Path | None:
        """A CPython ``minor`` interpreter on this host (never downloaded), or None."""
        ...


class Installer(Protocol):
    """Makes a venv's packages exactly a hashed selection, and checks the result."""

    @property
    def name(self) -> str:
        """How the user names it (--installer uv|pip)."""
        ...

    @property
    def builds_sdists(self) -> bool:
        """Whether it can build a source distribution (pip installs wheels only here)."""
        ...

    def install_exact(
        self,
        python: Path,
        requirements: str,
        environ: Mapping[str, str],
        *,
        link_mode: str,
        install_lock: str | None,
        echo: Callable[[str], None],
        progress: Callable[[Transfer], None] | None = None,
    ) -> None:
        """Install exactly ``requirements`` (hashed URL lines; ``install_lock`` is the same
        selection as a PEP 751 lock) into the venv of ``python``, removing everything else.
        ``progress`` (only passed when someone watches) gets the downloads' bytes."""
        ...

    def check(self, python: Path, environ: Mapping[str, str]) -> str | None:
        """None when the installed dependencies are consistent, else the report."""
        ...
