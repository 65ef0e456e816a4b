"""One exception tree for everything envlock raises, each family with its exit code.

Exit codes (documented in the README):

====  ===============================================================================
0     success
1     a check found differences (``lock --check`` stale/missing)
2     usage: bad command-line arguments
3     spec: torchenv.toml is missing, malformed or impossible
4     resolution: no set of packages satisfies the spec
5     index/network: an index is unreachable or refused us
6     hash: an artifact does not match its recorded hash
7     materialise: a lock is invalid, or a venv/export/lock cannot be produced
8     filesystem: the OS refused a write or rename (read-only, no space, long name, busy)
9     import: a package the spec names, installed exactly as locked, does not import
70    internal error (a bug in envlock)
130   interrupted (Ctrl-C, SIGINT)
143   terminated (SIGTERM: ``docker stop``, a cancelled CI job, ``kill``)
====  ===============================================================================
"""

from __future__ import annotations

import errno
import os
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
    FILESYSTEM = 8
    IMPORT = 9
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


class UvResolutionError(ResolutionError):
    """uv could not resolve, in its own words (resolve.classify_uv_failure). ``explanation`` is
    uv's whole message (secrets redacted): ``detail``, the part shown, may be cut short, and
    the held-back check reads all of it (who holds a package back; which pages it rests on).
    """

    def __init__(self, message: str, *, hint: str, detail: str = "", explanation: str) -> None:
        super().__init__(message, hint=hint, detail=detail)
        self.explanation = explanation


class IndexUnavailableError(EnvlockError):
    """An index could not be reached or refused the request."""

    exit_code = ExitCode.INDEX


class HashMismatchError(EnvlockError):
    exit_code = ExitCode.HASH


class MaterialiseError(EnvlockError):
    exit_code = ExitCode.MATERIALISE


class FilesystemError(EnvlockError):
    """The operating system refused a file operation: read-only, permissions, no space, a name
    too long, a busy mount point. Built from the OSError by ``filesystem_error``."""

    exit_code = ExitCode.FILESYSTEM


class ImportCheckError(EnvlockError):
    """An environment synced exactly as locked in which a package the spec names does not
    import: locked versions that do not work together (an ABI or API break between them)."""

    exit_code = ExitCode.IMPORT


class LockfileError(MaterialiseError):
    """A pylock.toml is missing, unreadable or not a valid PEP 751 lock."""


class CheckFailed(EnvlockError):  # noqa: N818 - it is an outcome, not a crash
    """A check found a difference (a stale lock, a drifted venv)."""

    exit_code = ExitCode.CHECK_FAILED


class InternalError(EnvlockError):
    exit_code = ExitCode.INTERNAL


class Terminated(BaseException):
    """Raised by cli.main's SIGTERM handler so every clean-up path runs, as for Ctrl-C.

    A BaseException, so no ``except Exception`` on the way up swallows it."""


_SPACE = (
    "Free some space on that file system, or point TMPDIR (temporary files) and "
    "ENVLOCK_CACHE_DIR (uv's cache) at a file system with room."
)
_PERMISSION = (
    "Check that this user may write there: the path and the folder it is in (owner, mode, "
    "ACL), or use another path."
)
_HINTS: dict[int, str] = {
    errno.EROFS: "It is on a read-only file system: write to a path on a writable one.",
    errno.EACCES: _PERMISSION,
    errno.EPERM: _PERMISSION,
    errno.ENOSPC: _SPACE,
    errno.EDQUOT: _SPACE,
    errno.ENAMETOOLONG: "Shorten the path: a file name is at most 255 bytes on most file "
    "systems (and a whole path at most 4096).",
    errno.EBUSY: "It is in use or a mount point (a Docker volume or bind mount?), which "
    "cannot be replaced: write or sync to a path that is not a mount point (for a venv, a "
    "folder inside the volume).",
    errno.EXDEV: "It is a mount point or on another file system than its folder: use a path "
    "that is not a mount point.",
    errno.EISDIR: "That path is a directory: pass the path of a file.",
    errno.ENOTDIR: "A part of the path is a file, not a directory: check the path.",
    errno.ENOENT: "Check that the folder exists.",
    errno.EMFILE: "Too many open files: raise the limit (`ulimit -n`) and run it again.",
    errno.ENFILE: "Too many open files on this machine: close some programs and run it again.",
}


def filesystem_error(exc: OSError, action: str = "") -> FilesystemError:
    """The FilesystemError (message naming the path, hint for the errno) for an OSError.

    ``action`` says what was being done ("write", "replace"); the path is ``exc.filename``."""
    reason = exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc))
    names = [
        os.fsdecode(n)
        for n in (exc.filename, exc.filename2)
        if isinstance(n, str | bytes | os.PathLike)
    ]
    if len(names) == 2:  # a rename
        message = f"cannot {action or 'move'} {names[0]} to {names[1]}: {reason}"
    elif names and action:
        message = f"cannot {action} {names[0]}: {reason}"
    elif names:
        message = f"{names[0]}: {reason}"
    else:
        message = f"cannot {action or 'use a file'}: {reason}"
    hint = _HINTS.get(exc.errno or 0) or (
        "The operating system refused the operation; check the path, its permissions and "
        "free space, then run the command again."
    )
    return FilesystemError(message, hint=hint)
