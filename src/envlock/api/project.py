"""What every verb loads: the spec, the lock (and variant locks), paths, channel data."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.pylock import Pylock, is_valid_pylock_path

from envlock.errors import EnvlockError, LockfileError, MaterialiseError, SpecError, UsageError
from envlock.io import files
from envlock.lockfile import LOCK_FILENAME, LockMeta, lock_meta, parse_lock_text
from envlock.spec import SPEC_FILENAME, Indexes, Spec, parse_spec_text
from envlock.urls import redact_url

if TYPE_CHECKING:
    from packaging.utils import NormalizedName

    from envlock.channels import Channels


Reporter = Callable[[str], None]


def _quiet(_message: str) -> None:
    return None


SELECTION_FILES = ("releases.toml", "drivers.toml", "family.toml")


def load_channels(names: tuple[str, ...] = files.CHANNEL_FILES) -> Channels:
    """The shipped channel data; ``names`` limits it to the files a command needs."""
    from envlock.channels import parse_channels  # noqa: PLC0415 - see the module note

    return parse_channels(files.read_channel_files(names))


def read_spec(path: Path) -> Spec:
    try:
        text = files.read_text(path)
    except MaterialiseError as exc:  # a directory, binary junk, unreadable: a spec problem
        raise SpecError(exc.message, hint="torchenv.toml must be a UTF-8 TOML text file.") from None
    if text is None:
        raise SpecError(
            f"{path} does not exist",
            hint="Run `envlock init` to write one, or pass --spec PATH.",
        )
    return parse_spec_text(text, source=str(path))


def default_lock_path(spec_path: Path) -> Path:
    return spec_path.parent / LOCK_FILENAME


def _validate_lock_path(path: Path) -> None:
    if not is_valid_pylock_path(path):
        raise UsageError(
            f"{path.name!r} is not a PEP 751 lock file name",
            hint="Name it pylock.toml or pylock.<name>.toml (lowercase, no dots in <name>).",
        )


def redacted(indexes: Indexes) -> Indexes:
    return Indexes(pypi=redact_url(indexes.pypi), pytorch=redact_url(indexes.pytorch))


def _read_lock(path: Path) -> Pylock | None:
    text = files.read_text(path)
    if text is None:
        return None
    return parse_lock_text(text, source=str(path))


def variant_lock_path(spec_path: Path, name: str) -> Path:
    return spec_path.parent / f"pylock.{name}.toml"


def variant_lock(lock_path: Path, variant: str) -> Path:
    """pylock.<variant>.toml beside ``lock_path``; an unknown variant is an error that lists
    the variant locks there."""
    path = lock_path.parent / f"pylock.{variant}.toml"
    if path.is_file():
        return path
    known = ", ".join(variant_locks(lock_path.parent)) or "none"
    raise UsageError(
        f"there is no lock for variant {variant!r} in {lock_path.parent} (variant locks "
        f"there: {known})",
        hint="Variants are the [variants.<name>] tables of torchenv.toml; `envlock lock` "
        "writes pylock.<name>.toml for each.",
    )


def variant_locks(directory: Path) -> dict[str, Path]:
    """pylock.<name>.toml files in a directory, by variant name."""
    return {
        path.name.removeprefix("pylock.").removesuffix(".toml"): path
        for path in sorted(directory.glob("pylock.*.toml"))
    }


def read_lock(lock_path: Path) -> tuple[Pylock, LockMeta]:
    """A PEP 751 lock and its record: [tool.envlock], or for a lock another tool wrote the
    same facts derived from the lock (envlock.foreign); errors name the file and key path."""
    _, lock, meta = _read_envlock_lock(lock_path)
    return lock, meta


def _read_envlock_lock(lock_path: Path) -> tuple[str, Pylock, LockMeta]:
    text = files.read_text(lock_path)
    if text is None:
        raise LockfileError(
            f"{lock_path} does not exist", hint="Run `envlock lock` first, or pass --lock PATH."
        )
    lock = parse_lock_text(text, source=str(lock_path))
    meta = lock_meta(lock)
    if meta is None:  # another tool's lock: [tool.envlock]'s facts come from the lock itself
        meta = _derived_meta(lock)
    return text, lock, meta


def _derived_meta(lock: Pylock) -> LockMeta:
    """What [tool.envlock] would say of a lock another tool wrote (``meta.derived`` says how
    each fact was found); this interpreter's Python is preferred where the lock allows several."""
    import sys  # noqa: PLC0415 - only for foreign locks

    from envlock.foreign import derive_meta  # noqa: PLC0415 - only for foreign locks

    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return derive_meta(lock, load_channels(SELECTION_FILES), prefer_python=python)


def _digest(text: str) -> str:
    import hashlib  # noqa: PLC0415 - only here

    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _index_auth(environ: Mapping[str, str]) -> Callable[[str], tuple[str, str] | None]:
    """Credentials from ENVLOCK_*_INDEX_URL for artifacts on the same host (private mirrors)."""
    from urllib.parse import urlsplit  # noqa: PLC0415

    from envlock.urls import private_indexes  # noqa: PLC0415

    hosts = {urlsplit(i.clean).netloc: (i.user, i.password) for i in private_indexes(environ)}
    return lambda url: hosts.get(urlsplit(url).netloc)


def spec_names(lock_path: Path) -> tuple[NormalizedName, ...] | None:
    """The packages torchenv.toml beside the lock names in [packages], sorted; None when there
    is no readable spec there (a lock copied alone, another tool's lock)."""
    spec_path = lock_path.parent / SPEC_FILENAME
    if not spec_path.is_file():
        return None
    try:
        spec = read_spec(spec_path)
    except EnvlockError:
        return None
    return tuple(sorted(spec.package_names))


# Here, not in api.review_gate: `diff --no-gate` asks only this, and the gate's modules cost
# its start-up ~30 ms.
GATE_OFF = "ENVLOCK_REVIEW_GATE"  # "off": diff runs without the gate (as --no-gate)


def gate_disabled(environ: Mapping[str, str]) -> bool:
    return environ.get(GATE_OFF, "").strip().lower() in ("off", "0", "no", "false")
