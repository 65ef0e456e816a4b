"""One exception tree for everything envlock raises, each family with its exit code.

Exit codes (documented in the README):

====  =======================================================
0     success
1     a check found differences (``lock --check`` stale/missing)
2     usage: bad command-line arguments
3     spec: torchenv.toml is missing, malformed or impossible
4     resolution: no set of packages satisfies the spec
5     index/network: an index is unreachable or refused us
6     hash: an artifact does not match its recorded hash
7     materialise: writing a venv/export/lock failed
70    internal error (a bug in envlock)
====  =======================================================
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    CHECK_FAILED = 1
    USAGE = 2
    SPEC = 3
    RESOLUTION = 4
    INDEX = 5
    HASH = 6
    MATERIALISE = 7
    INTERNAL = 70


class EnvlockError(Exception):
    """Base of every error envlock raises on purpose.

    ``message`` says what failed and where; ``hint`` says what to do next.
    """

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, hint: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        # Extra context shown under the message (e.g. a trimmed resolver explanation).
        self.detail = detail


class UsageError(EnvlockError):
    exit_code = ExitCode.USAGE


class SpecError(EnvlockError):
    """torchenv.toml is missing, malformed, or asks for something PyTorch never built."""

    exit_code = ExitCode.SPEC


class ChannelDataError(SpecError):
    """The channel data does not know the requested release (or is itself broken)."""


class ResolutionError(EnvlockError):
    exit_code = ExitCode.RESOLUTION


class IndexUnavailableError(EnvlockError):
    """An index could not be reached or refused the request."""

    exit_code = ExitCode.INDEX


class HashMismatchError(EnvlockError):
    exit_code = ExitCode.HASH


class MaterialiseError(EnvlockError):
    exit_code = ExitCode.MATERIALISE


class LockfileError(MaterialiseError):
    """A pylock.toml is missing, unreadable or not a valid PEP 751 lock."""


class CheckFailed(EnvlockError):  # noqa: N818 - it is an outcome, not a crash
    """A check found a difference (a stale lock, a drifted venv)."""

    exit_code = ExitCode.CHECK_FAILED


class InternalError(EnvlockError):
    exit_code = ExitCode.INTERNAL
