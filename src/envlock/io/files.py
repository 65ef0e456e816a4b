"""Filesystem effects: atomic writes, reading specs, locks and the shipped channel data."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from envlock.errors import ChannelDataError, MaterialiseError, filesystem_error

CHANNEL_FILES = ("releases.toml", "drivers.toml", "gpu-arch.toml", "docker.toml", "family.toml")


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an advisory lock on an existing file: a second envlock on the same file waits."""
    try:
        import fcntl  # noqa: PLC0415 - POSIX only
    except ImportError:  # pragma: no cover - Windows: no advisory locks, run unguarded
        yield
        return
    with path.open("rb") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


_CHUNK = 1 << 20


def file_sha256(path: Path) -> bytes:
    """sha256 of a file's bytes, streamed in 1 MiB pieces (never the whole file in memory)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.digest()


def refuse_symlink(path: Path) -> None:
    """An output that is a symlink could redirect a write anywhere: refuse it."""
    if path.is_symlink():
        raise MaterialiseError(
            f"{path} is a symbolic link; refusing to write through it",
            hint="Remove the link (or write to its target's path directly).",
        )


def same_file(a: Path, b: Path) -> bool:
    """Do two paths name one file: equal once symlinked folders and `..` are resolved, or one
    file under two names (a hard link)?"""
    try:
        if a.resolve() == b.resolve():
            return True
        return a.samefile(b)
    except (OSError, RuntimeError):  # one does not exist; RuntimeError: a symlink loop
        return False


def create_new(directory: Path, name: str) -> tuple[int, Path]:
    """Create a fresh, uniquely named file ``name.<random>.tmp`` in ``directory``; returns its
    descriptor (open for writing) and path.

    Unlike tempfile.mkstemp (always 0600), the file gets 0666 minus the umask and the folder's
    default ACL, as any other tool's output would. Long names are shortened so the temporary
    name fits where the final one does."""
    stem = name.encode()[:200].decode(errors="ignore")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    import secrets  # noqa: PLC0415 - imported where used: sync's no-op path loads this module

    while True:
        path = directory / f"{stem}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue


def write_atomic(path: Path, text: str) -> None:
    """Write text (LF endings) so readers see the old file or the new one, never a mix.

    A new file gets the umask's mode, an existing one keeps its mode. A symlink at ``path`` is
    refused rather than replaced or followed. The OS refusing (read-only, no space, a name too
    long) is a FilesystemError naming ``path``; the old file is then untouched."""
    write_all_atomic([(path, text)])


def write_all_atomic(items: Sequence[tuple[Path, str]]) -> None:
    """Write several files as one change: every new text is written and synced to a
    temporary file beside its target first, and only then are they renamed into place, so a
    failure on any of them (no space, a name too long) leaves every target as it was."""
    staged: list[tuple[Path, Path]] = []
    path = items[0][0] if items else Path()
    try:
        for path, text in items:
            refuse_symlink(path)  # lstat: a name too long already fails here
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = create_new(path.parent, f".{path.name}")
            staged.append((path, tmp))
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            if path.exists():
                with contextlib.suppress(OSError):
                    tmp.chmod(path.stat().st_mode & 0o777)
        for path, tmp in staged:
            tmp.replace(path)
    except OSError as exc:
        for _, tmp in staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
        exc.filename, exc.filename2 = str(path), None  # the user's path, not our temporary one
        raise filesystem_error(exc, "write") from exc


def read_text(path: Path) -> str | None:
    """The file's text (a UTF-8 byte-order mark dropped), or None when it does not exist."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    except OSError:
        mode = stat.S_IFREG  # let the read below name the error
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        # A FIFO or a device would block the read (or never end): refuse it instead.
        raise MaterialiseError(
            f"{path} is not a regular file (a pipe, socket or device)",
            hint="Pass the path of the file itself; to read a generated spec, write it to a "
            "file first.",
        )
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise MaterialiseError(
            f"{path} is a directory, not a file", hint="Pass the path of the file itself."
        ) from None
    except UnicodeDecodeError as exc:
        raise MaterialiseError(
            f"{path} is not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x})",
            hint="Is this the right file? envlock's files are UTF-8 TOML text; restore it "
            "from git if it was damaged.",
        ) from None
    except OSError as exc:
        raise MaterialiseError(
            f"cannot read {path}: {exc.strerror or exc}",
            hint="Check that the file exists and is readable.",
        ) from exc


def _channels_dir() -> Path:
    from importlib import resources  # noqa: PLC0415 - see create_new's note

    shipped = resources.files("envlock").joinpath("channel_data")
    if shipped.is_dir():
        return Path(str(shipped))
    # Running from a source checkout (editable install): channels/ sits at the repo root.
    checkout = Path(__file__).resolve().parents[3] / "channels"
    if checkout.is_dir():
        return checkout
    raise ChannelDataError(
        "envlock's channel data (channels/*.toml) is missing from this installation",
        hint="Reinstall envlock: `pip install --force-reinstall envlock`.",
    )


def read_channel_files(names: tuple[str, ...] = CHANNEL_FILES) -> dict[str, dict[str, Any]]:
    """Load the named channels/*.toml files shipped with envlock, keyed by file name."""
    import tomllib  # noqa: PLC0415 - see create_new's note

    directory = _channels_dir()
    result: dict[str, dict[str, Any]] = {}
    for name in names:
        path = directory / name
        if not path.exists():
            continue
        try:
            result[name] = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ChannelDataError(
                f"channel data {path} is not valid TOML: {exc}",
                hint="Reinstall envlock, or fix the file if you edited it.",
            ) from exc
    return result
