"""envlock-check.py: the program a generated Dockerfile runs inside the image (pure: text out).

Two steps of the build run it with the image's own interpreter (stdlib only, any Python 3):

- ``base``, before anything is installed: the base image must hold the lock's Python and, for an
  official pytorch/pytorch base, the lock's torch family: same version, torch built for the
  lock's CUDA, and, when the lock's wheel could be read at export time, the same files (the
  installed RECORD against the locked wheel's; see :func:`record_digest`). What cannot be
  proven (a torch that conda installed leaves no RECORD) is said, not assumed.
- ``smoke``, last: the built image imports torch (the locked version and CUDA build) and the
  top-level modules of the packages the spec names, without a GPU. A broken image fails its
  build instead of its first job.

The program is :mod:`envlock.materialise.image_program`, copied with its expectations filled
in; its ``record_lines`` serves both sides of the RECORD comparison (the locked wheel's RECORD
here at export time, the installed one in the image).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from envlock.materialise import image_program


def record_digest(text: str, *, wheel: bool) -> str:
    """sha256 over the RECORD rows installing does not change: equal for a wheel and its
    installed copy (image_program.record_lines)."""
    return image_program.record_digest(text, wheel)


@dataclass(frozen=True, slots=True, kw_only=True)
class Provided:
    """A package the base image must already hold."""

    name: str
    version: str  # public version (no local label)
    exact: str  # the locked version as written (2.6.0+cu124): another label is another wheel
    module: str | None  # imported to read __version__ (the [torch] table's packages)
    wheel: str  # the locked wheel's file name, for messages
    record: str | None  # record_digest of the locked wheel, None when it could not be read
    unread: str = ""  # why record is None


def check_program(
    *,
    python: str,
    cuda: str | None,
    provided: Sequence[Provided],
    imports: Sequence[str],
    locked_torch: str | None,
    may_have: Mapping[str, str] | None = None,
) -> str:
    """The source of envlock-check.py for one Dockerfile."""
    expect: Mapping[str, object] = {
        "python": python,
        "cuda": cuda,
        "torch": locked_torch,
        "provided": [
            {
                "name": p.name,
                "version": p.version,
                "exact": p.exact,
                "module": p.module,
                "wheel": p.wheel,
                "record": p.record,
                "unread": p.unread,
            }
            for p in provided
        ],
        "imports": list(imports),
        "may_have": dict(sorted((may_have or {}).items())),
    }
    source = inspect.getsource(image_program)
    placeholder = 'EXPECT_JSON = "{}"\n'
    assert source.count(placeholder) == 1
    filled = "EXPECT_JSON = " + repr(json.dumps(expect, sort_keys=True)) + "\n"
    return source.replace(placeholder, filled)
