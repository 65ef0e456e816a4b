"""The command line: parse, call api, render, map errors to exit codes.

The only module that prints or exits. Data goes to stdout, messages and progress to stderr.
"""

from __future__ import annotations

import json
import shlex
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.exceptions import TyperException

from envlock import __version__, api
from envlock.errors import EnvlockError, ExitCode, Terminated, UsageError, filesystem_error
from envlock.spec import SPEC_FILENAME, Platform

if TYPE_CHECKING:
    from envlock.channels import Channels, Selection

app = typer.Typer(
    name="envlock",
    help=(
        "Reproducible, hash-pinned PyTorch environments.\n\n"
        "torchenv.toml names Python, torch, the CUDA build and your packages; `envlock lock` "
        "picks the matching PyTorch wheel index and writes a PEP 751 pylock.toml in which every "
        "artifact is pinned by sha256.\n\n"
        "Start with `envlock init`, then `envlock lock`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class _Stream:
    """Plain text to stdout or stderr, looked up at call time (so tests can capture it).

    rich is imported only to draw a spinner on an interactive terminal: start-up time matters
    for `envlock lock --check` in pre-commit hooks.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def _file(self) -> Any:
        return getattr(sys, self._name)

    @property
    def is_terminal(self) -> bool:
        isatty = getattr(self._file, "isatty", None)
        return bool(isatty and isatty())

    def print(self, text: str = "", *, markup: bool = False) -> None:
        del markup  # plain text always
        self._file.write(f"{text}\n")
        self._file.flush()

    def print_json(self, text: str) -> None:
        self.print(json.dumps(json.loads(text), indent=2))


err = _Stream("stderr")
out = _Stream("stdout")


class _State:
    debug = False


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"envlock {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show uv's command lines and tracebacks.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Show version."),
    ] = False,
) -> None:
    _State.debug = debug
    if debug:
        import logging  # noqa: PLC0415 - only with --debug

        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="debug: %(message)s")


@contextmanager
def _progress(message: str) -> Iterator[None]:
    if err.is_terminal:
        from rich.console import Console  # noqa: PLC0415 - only for a live terminal

        with Console(stderr=True).status(message, spinner="dots"):
            yield
    else:  # logs and CI: the api reports each real step, so stay quiet here
        yield


SpecOption = Annotated[
    Path,
    typer.Option("--spec", "-s", help="The spec to read.", show_default=True),
]
_OLD_O = "envlock.lock-path-from-o"


def _on_command_line(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def _lock_and_old_o() -> UsageError:
    return UsageError(
        "--lock/-l and -o both name the lock path",
        hint="Pass the lock once, with --lock/-l (-o for the lock path is deprecated).",
    )


def _old_o(ctx: typer.Context, value: Path | None) -> None:
    """-o named the lock path of lock, diff and doctor before it meant the output everywhere:
    kept for one release, with a warning; _lock_path hands the value on."""
    if value is None:
        return
    err.print("warning: -o for the lock path is deprecated; use --lock/-l")
    if _on_command_line(ctx, "lock_path"):  # --lock came first on the command line
        raise _lock_and_old_o()
    ctx.meta[_OLD_O] = value


def _lock_path(ctx: typer.Context, param: typer.CallbackParam, value: Path | None) -> Path | None:
    # click processes what the command line names first, in its order: -o before a default.
    old = ctx.meta.get(_OLD_O)
    if old is None:
        return value
    if param.name and _on_command_line(ctx, param.name):
        raise _lock_and_old_o()
    return Path(old)


OldLockOption = Annotated[
    Path | None, typer.Option("-o", hidden=True, expose_value=False, callback=_old_o)
]
LockOption = Annotated[
    Path | None,
    typer.Option(
        "--lock",
        "-l",
        callback=_lock_path,
        help="The lock to write or check (pylock.toml or pylock.<name>.toml). "
        "Default: pylock.toml beside the spec.",
    ),
]


LockPathOption = Annotated[Path, typer.Option("--lock", "-l", help="The lock to materialise.")]
ForceOption = Annotated[
    bool,
    typer.Option(
        "--force", help="Overwrite output files envlock did not write (never the lock or spec)."
    ),
]
VariantOption = Annotated[
    str | None,
    typer.Option(help="Use pylock.<variant>.toml (a [variants.<name>] of torchenv.toml)."),
]


def _with_variant(lock_path: Path, variant: str | None) -> Path:
    return api.variant_lock(lock_path, variant) if variant else lock_path


# --------------------------------------------------------------------------------------
# init


@app.command()
def init(
    torch: Annotated[
        str | None,
        typer.Option(help='torch release, e.g. "2.6" (newest 2.6.x). Default: newest verified.'),
    ] = None,
    cuda: Annotated[
        str | None,
        typer.Option(
            help='Build: "12.4", "12", "cpu", "rocm6.2", "xpu". Default: detect this host\'s '
            "NVIDIA driver (no GPU: the build PyPI ships)."
        ),
    ] = None,
    python: Annotated[
        str | None, typer.Option(help='CPython minor, e.g. "3.11". Default: this interpreter.')
    ] = None,
    with_: Annotated[
        list[str] | None,
        typer.Option(
            "--with", help='A package to add, e.g. transformers or "datasets>=3". Repeatable.'
        ),
    ] = None,
    platform: Annotated[
        list[Platform] | None,
        typer.Option(
            help="A platform the lock must install on. Repeatable. Default: linux-x86_64."
        ),
    ] = None,
    vision: Annotated[bool, typer.Option(help="Add the paired torchvision.")] = True,
    audio: Annotated[bool, typer.Option(help="Add the paired torchaudio.")] = False,
    path: Annotated[Path, typer.Option("--path", help="Where to write the spec.")] = Path(
        SPEC_FILENAME
    ),
    force: Annotated[bool, typer.Option(help="Overwrite an existing spec.")] = False,
) -> None:
    """Write a commented torchenv.toml.

    Without --cuda, init reads this host's NVIDIA driver (/proc/driver/nvidia/version,
    /sys/module/nvidia/version or nvidia-smi) and writes a concrete build with a comment
    saying what it found. The spec never says "auto": a lock must not depend on who runs it.

    Example: envlock init --torch 2.6 --cuda 12.4 --with transformers --with datasets
    """
    options = api.InitOptions(
        torch=torch,
        cuda=cuda,
        python=python,
        packages=tuple(with_ or ()),
        platforms=tuple(p.value for p in platform or ()),
        vision=vision,
        audio=audio,
        force=force,
    )
    result = api.init(path, options)
    if result.recommendation is not None:
        err.print(f'Build: cuda = "{result.recommendation.cuda}" ({result.recommendation.reason})')
    err.print(f"Wrote {result.path}. Next: `envlock lock`.")


# --------------------------------------------------------------------------------------
# lock


@app.command()
def lock(
    spec: SpecOption = Path(SPEC_FILENAME),
    lock_path: LockOption = None,
    _old_lock_path: OldLockOption = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Do not resolve: exit 0 if the lock is fresh for the spec, 1 if it is stale or "
            "missing. Offline; for CI and pre-commit.",
        ),
    ] = False,
    upgrade: Annotated[
        bool, typer.Option("--upgrade", "-U", help="Re-resolve everything to the newest allowed.")
    ] = False,
    variant: Annotated[
        str | None,
        typer.Option(help="Only this [variants.<name>] (written to pylock.<name>.toml)."),
    ] = None,
    upgrade_package: Annotated[
        list[str] | None,
        typer.Option(
            "--upgrade-package",
            "-P",
            help="Re-resolve allowing only this package to change. Repeatable.",
        ),
    ] = None,
    hash_missing: Annotated[
        api.HashMissing,
        typer.Option(
            "--hash-missing",
            help="A file its index lists without a hash: refuse (name the URLs, write "
            "nothing) or download (stream and hash it: trust on first use).",
        ),
    ] = api.HashMissing.REFUSE,
) -> None:
    """Resolve torchenv.toml into a hash-pinned PEP 751 pylock.toml.

    Torch-family packages come only from the chosen PyTorch variant index
    (<pytorch index>/<variant>), everything else only from PyPI: no extra-index-url
    fallbacks, so a higher-versioned torch on another index can never win.

    With nothing changed since the last lock, nothing is re-resolved. After a spec change,
    every package keeps its locked version where it can; --upgrade and --upgrade-package
    allow newer ones. The lock is written atomically: on any error the old one stays.
    """
    if check:
        for result in api.check(spec, lock_path, variant=variant):
            err.print(result.reason)
        return
    with _progress("Locking…"):
        run = api.lock(
            spec,
            lock_path=lock_path,
            variant=variant,
            upgrade=upgrade,
            upgrade_packages=tuple(upgrade_package or ()),
            report=err.print,
            hash_missing=hash_missing,
        )
    for outcome in run.results:
        for warning in outcome.warnings:
            err.print(f"warning: {warning}")
        count = len(outcome.lock.packages)
        if not outcome.changed:
            err.print(f"{outcome.lock_path} is up to date ({count} packages); nothing re-resolved.")
            continue
        if outcome.selection is not None:
            err.print(outcome.selection.explanation)
        err.print(f"Wrote {outcome.lock_path} ({count} packages, every artifact sha256-pinned).")
    for warning in run.warnings:
        err.print(f"warning: {warning}")


# --------------------------------------------------------------------------------------
# channels


def _matrix_rows(channels: Channels) -> list[dict[str, Any]]:
    rows = []
    for release in reversed(channels.releases):
        images = sorted(
            {
                f"{i.torch}-cuda{i.cuda}-cudnn{i.cudnn}"
                for i in channels.images
                if f"{i.torch.major}.{i.torch.minor}" == release.name
            }
        )
        rows.append(
            {
                "torch": release.name,
                "released": release.released.isoformat() if release.released else None,
                "python": list(release.python),
                "variants": [v.name for v in release.variants],
                "pypi": {p.value: v.name for p, v in release.pypi.items()},
                "torchvision": release.torchvision,
                "torchaudio": release.torchaudio,
                "triton": release.triton,
                "images": images,
                "unverified": sorted(release.unverified),
                "source": release.source,
            }
        )
    return rows


def _selection_json(selection: Selection) -> dict[str, Any]:
    return {
        "torch": selection.release.name,
        "torch-specifier": str(selection.torch_specifier),
        "variant": selection.variant.name,
        "platforms": [
            {
                "platform": c.platform.value,
                "source": c.origin.value,
                "variant": c.variant.name,
                "index": c.index_url,
            }
            for c in selection.platforms
        ],
        "companions": {k: str(v) for k, v in selection.companions.items()},
        "explanation": selection.explanation,
        "warnings": list(selection.warnings),
    }


@app.command()
def channels(
    torch: Annotated[
        str | None, typer.Option(help="Explain the choice for this torch release.")
    ] = None,
    cuda: Annotated[
        str | None, typer.Option(help='With --torch: the build to explain ("12.4", "cpu"…).')
    ] = None,
    python: Annotated[str, typer.Option(help="With --torch: the Python.")] = "3.11",
    platform: Annotated[
        list[Platform] | None, typer.Option(help="With --torch: platforms. Repeatable.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show what PyTorch publishes: releases x builds, PyPI's own build, pairings, images.

    With --torch (and --cuda), explain what `envlock lock` would choose, or why nothing can be.
    Facts marked "unverified" could not be confirmed from a primary source.
    """
    if torch is not None:
        selection = api.explain_selection(
            torch=torch,
            cuda=cuda or "cpu",
            python=python,
            platforms=[p.value for p in platform or [Platform.LINUX_X86_64]],
        )
        if as_json:
            out.print_json(json.dumps(_selection_json(selection)))
            return
        out.print(selection.explanation)
        for warning in selection.warnings:
            out.print(f"warning: {warning}")
        return
    channel_data = api.load_channels()
    rows = _matrix_rows(channel_data)
    if as_json:
        out.print_json(json.dumps({"releases": rows}))
        return
    out.print(_matrix_text(channel_data, rows), markup=False)
    floors = ", ".join(f"cu{f.cuda_major}x >= {f.linux}" for f in channel_data.drivers)
    if floors:
        out.print(f"Minimum NVIDIA driver (Linux): {floors}.")
    out.print(
        "? = unverified in envlock's channel data. `envlock channels --torch 2.6 --cuda 12.4`"
        " explains a choice."
    )


def _matrix_text(channel_data: Channels, rows: list[dict[str, Any]]) -> str:
    header = (
        "torch",
        "python",
        "PyPI linux-x86_64",
        "vision",
        "audio",
        "triton",
        "images (cuda)",
        "builds on the PyTorch index",
    )
    lines: list[tuple[str, ...]] = [header]
    for release, row in zip(reversed(channel_data.releases), rows, strict=True):
        builds = " ".join(
            v.name + ("?" if release.is_unverified(f"variants:{v.name}") else "")
            for v in release.variants
        )
        if release.is_unverified("variants"):
            builds += " (unverified)"
        cuda_images = sorted(
            {i.split("-cuda")[1].split("-")[0] for i in row["images"]},
            key=lambda c: tuple(int(p) for p in c.split(".")),
        )
        lines.append(
            (
                release.name,
                f"{release.python[0]}-{release.python[-1]}" if release.python else "",
                row["pypi"].get(Platform.LINUX_X86_64.value, ""),
                release.torchvision + ("?" if release.is_unverified("torchvision") else ""),
                (release.torchaudio or "-") + ("?" if release.is_unverified("torchaudio") else ""),
                release.triton + ("?" if release.is_unverified("triton") else ""),
                " ".join(cuda_images) or "-",
                builds,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines
    )


@app.command()
def bundle(
    output: Annotated[Path, typer.Option("--output", "-o", help="The bundle directory.")],
    lock_path: LockPathOption = Path("pylock.toml"),
    variant: VariantOption = None,
    platform: Annotated[
        list[Platform] | None,
        typer.Option(help="A platform to bundle (repeatable). Default: every locked platform."),
    ] = None,
    force: ForceOption = False,
) -> None:
    """Download everything the lock installs, for an offline (air-gapped) sync.

    Writes OUTPUT/wheels/ (every selected artifact, verified by sha256 and size; a rerun
    resumes), OUTPUT/pylock.toml (the same lock with relative `path` artifacts, valid PEP 751)
    and OUTPUT/manifest.json. Then, with no network: envlock sync --venv .venv --lock
    OUTPUT/pylock.toml
    """
    with _progress("Bundling…"):
        result = api.bundle(
            _with_variant(lock_path, variant),
            output,
            platforms=[p.value for p in platform or ()],
            report=err.print,
            force=force,
        )
    err.print(
        f"Bundled {result.files} files ({result.bytes / 1e6:.1f} MB, {result.fetched} downloaded) "
        f"for {', '.join(result.platforms)} into {result.directory}. Offline: envlock sync "
        f"--venv .venv --lock {result.directory / 'pylock.toml'}"
    )


# --------------------------------------------------------------------------------------
# diff and git integration


class DiffFormat(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    JSON = "json"


@app.command()
def diff(
    old: Annotated[
        str | None,
        typer.Argument(
            help="Old side: a lock file, a git revision (HEAD, main) or REV:path. "
            "Default: the lock at HEAD."
        ),
    ] = None,
    new: Annotated[
        str | None,
        typer.Argument(help="New side, same forms. Default: the lock in the working tree."),
    ] = None,
    lock_path: Annotated[
        Path,
        typer.Option(
            "--lock", "-l", callback=_lock_path, help="The lock file a bare revision refers to."
        ),
    ] = Path("pylock.toml"),
    _old_lock_path: OldLockOption = None,
    fmt: Annotated[
        DiffFormat, typer.Option("--format", "-f", help="text, markdown (PR comment) or json.")
    ] = DiffFormat.TEXT,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit 1 when there are changes (like git diff).")
    ] = False,
    expand: Annotated[
        bool, typer.Option("--expand", help="List the CUDA runtime packages one by one.")
    ] = False,
    variant: VariantOption = None,
) -> None:
    """Show what changed between two locks, for code review.

    Security-relevant changes come first (--exit-code fails on them like on any change): who
    built a package or where its files come from changed (a local version label the lock's
    variant change does not explain, a new artifact host, even with the same bytes), a package
    that moved to another index, or an artifact whose hash changed without a version change.
    The CUDA runtime packages (nvidia-*, cuda-*, triton) collapse into one line unless --expand.

    Examples: envlock diff; envlock diff main; envlock diff old/pylock.toml pylock.toml;
    envlock diff --format markdown origin/main
    """
    from envlock.diff import diff_json, render_markdown, render_text  # noqa: PLC0415

    before, after, result = api.diff(old, new, lock_path=_with_variant(lock_path, variant))
    for warning in (*before.warnings, *after.warnings):
        err.print(f"warning: {warning}", markup=False)
    if fmt is DiffFormat.JSON:
        out.print(json.dumps(diff_json(result), indent=2))
    elif fmt is DiffFormat.MARKDOWN:
        out.print(render_markdown(result, expand=expand).rstrip("\n"))
    else:
        out.print(render_text(result, expand=expand).rstrip("\n"))
    if exit_code and not result.empty:
        raise typer.Exit(int(ExitCode.CHECK_FAILED))


@app.command(hidden=True)
def textconv(path: Annotated[Path, typer.Argument()]) -> None:
    """git textconv driver: print a lock as one line per package."""
    out.print(api.textconv(path).rstrip("\n"))


@app.command("git-setup")
def git_setup(
    uninstall: Annotated[bool, typer.Option(help="Remove the diff driver again.")] = False,
) -> None:
    """Make `git diff` and `git log -p` show pylock*.toml as one line per package.

    Registers a textconv diff driver in .git/config and a `pylock*.toml diff=envlock` line in
    .gitattributes. Idempotent; --uninstall reverses it.
    """
    command = f"{shlex.quote(sys.executable)} -m envlock textconv"
    result = api.git_setup(Path.cwd(), uninstall=uninstall, command=command)
    if result.installed:
        err.print(
            f"git diff driver 'envlock' registered in {result.root}/.git/config"
            + ("; added to .gitattributes." if result.changed else ".")
        )
    else:
        err.print(f"git diff driver 'envlock' removed from {result.root}.")


@app.command()
def doctor(
    lock_path: Annotated[
        Path, typer.Option("--lock", "-l", callback=_lock_path, help="The lock to judge.")
    ] = Path("pylock.toml"),
    _old_lock_path: OldLockOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    variant: VariantOption = None,
) -> None:
    """Will this lock run on this host? Checks before anything fails at run time.

    Reads the NVIDIA driver (/proc, /sys or nvidia-smi; ENVLOCK_NVIDIA_SMI names the binary),
    the GPUs' compute capabilities, glibc, platform and Python, and judges them against the
    lock with envlock's channel data: driver floors per CUDA major, the GPU architectures each
    build ships kernels for, the torch wheel's manylinux tag. Exit 0 when nothing is an error,
    1 otherwise. A CUDA lock on a host without a driver is a warning (CPU-only), not an error.
    """
    from envlock.doctor import host_json  # noqa: PLC0415

    lock_path = _with_variant(lock_path, variant)
    if variant is None and not lock_path.exists():
        variants = api.variant_locks(lock_path.parent)
        if variants:
            _doctor_variants(variants, as_json=as_json)
            return
    report = api.doctor(lock_path)
    if as_json:
        payload = {
            "lock": str(report.lock_path),
            "ok": report.ok,
            "host": host_json(report.host),
            "findings": [f.to_json() for f in report.findings],
        }
        out.print(json.dumps(payload, indent=2))
    else:
        host = report.host
        gpus = (
            ", ".join(f"{g.name} (sm_{g.compute_capability.replace('.', '')})" for g in host.gpus)
            or "none found"
        )
        out.print(
            f"host: {host.platform.value if host.platform else host.os + ' ' + host.machine}"
            f", Python {host.python or '?'}, glibc {host.glibc or '-'}, NVIDIA driver "
            f"{host.nvidia_driver or 'none'}; GPUs: {gpus}"
        )
        for finding in report.findings:
            out.print(f"{finding.level.value:>7}: {finding.what}")
            if finding.why:
                out.print(f"         why: {finding.why}")
            if finding.fix:
                out.print(f"         fix: {finding.fix}")
    if not report.ok:
        raise typer.Exit(int(ExitCode.CHECK_FAILED))


# --------------------------------------------------------------------------------------
# materialise


class Installer(StrEnum):
    UV = "uv"
    PIP = "pip"


@app.command()
def sync(
    venv_path: Annotated[Path, typer.Option("--venv", help="The virtual environment to sync.")],
    lock_path: LockPathOption = Path("pylock.toml"),
    variant: VariantOption = None,
    installer: Annotated[
        Installer, typer.Option(help="uv (default) or pip (isolated, --require-hashes --no-deps).")
    ] = Installer.UV,
    host_check: Annotated[
        bool,
        typer.Option(
            "--host-check/--no-host-check",
            help="Stop when the NVIDIA driver is too old for the locked build.",
        ),
    ] = True,
    link_mode: Annotated[
        api.LinkMode,
        typer.Option(
            help="How files get from the cache into the venv. auto: copy-on-write clone where "
            "the filesystem supports it, else copy. hardlink is fastest but shares files with "
            "the cache: an edit in one venv then reaches every venv synced from it.",
        ),
    ] = api.LinkMode.AUTO,
    reinstall: Annotated[
        bool,
        typer.Option("--reinstall", help="Rebuild the venv even when it already matches the lock."),
    ] = False,
    allow_build: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-build",
            metavar="NAME",
            help="Allow building this package from its source distribution (repeatable). "
            "A build runs the package's code and fetches its build requirements unpinned.",
        ),
    ] = None,
) -> None:
    """Make a venv exactly the lock: install by URL and sha256, remove everything else.

    The venv (with the lock's Python, found on this machine) is built beside PATH and swapped
    in only when everything worked: on a hash mismatch, a network failure, Ctrl-C, SIGTERM or
    even SIGKILL, the old venv stays at PATH. Only a directory that is nothing but a venv is
    ever replaced. A second sync with nothing to do returns at once, after checking that every
    package is still the artifact it installed (no extra package, no edited file, no foreign
    start-up code, the same interpreter). Credentials in ENVLOCK_*_INDEX_URL authenticate
    downloads from private indexes.
    """
    with _progress("Syncing…"):
        result = api.sync(
            venv_path,
            lock_path=_with_variant(lock_path, variant),
            installer=installer.value,
            host_check=host_check,
            report=err.print,
            link_mode=link_mode.value,
            reinstall=reinstall,
            allow_build=tuple(allow_build or ()),
        )
    for warning in result.warnings:
        err.print(f"warning: {warning}", markup=False)
    if result.reasons:
        shown = ", ".join(result.reasons[:5])
        more = f" and {len(result.reasons) - 5} more" if len(result.reasons) > 5 else ""
        err.print(f"{venv_path} differed from the lock ({shown}{more}).", markup=False)
    if not result.changed:
        err.print(f"{venv_path} already matches {lock_path} ({result.packages} packages).")
    else:
        verb = "Created" if result.created else "Synced"
        err.print(f"{verb} {venv_path}: {result.packages} packages, exactly as locked.")


@app.command()
def verify(
    venv_path: Annotated[Path, typer.Option("--venv", help="The virtual environment to check.")],
    lock_path: LockPathOption = Path("pylock.toml"),
    variant: VariantOption = None,
    deep: Annotated[
        bool, typer.Option("--deep", help="Also check every installed file against RECORD.")
    ] = False,
) -> None:
    """Does the venv still equal the lock? Exit 1 with a table of drift.

    Checks every installed package against the lock (missing, extra, other version, duplicate
    .dist-info), against the artifact the last sync installed (replaced by another build of the
    same version), its files against RECORD (sizes; sha256 with --deep), the interpreter and
    pyvenv.cfg, and start-up code (.pth, sitecustomize) that no locked package installed."""
    report = api.verify_venv(venv_path, lock_path=_with_variant(lock_path, variant), deep=deep)
    drift = report.drift
    for note in report.notes:
        err.print(f"note: {note}", markup=False)
    if not drift:
        err.print(f"{venv_path} matches {lock_path}.")
        return
    rows = [("package", "drift", "locked", "installed")] + [
        (d.name, d.kind, d.expected, d.found) for d in drift
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        out.print("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip())
    raise typer.Exit(int(ExitCode.CHECK_FAILED))


export_app = typer.Typer(
    name="export",
    help="Write the lock in another format (the lock is the only input; nothing re-resolves).",
    no_args_is_help=True,
)
app.add_typer(export_app)


def _emit(text: str, output: Path | None, *, lock_path: Path, force: bool) -> None:
    """Data to stdout, or written atomically to a file with a note on stderr."""
    if output is None:
        out.print(text.rstrip("\n"))
        return
    api.write_output(output, text, lock_path=lock_path, force=force)
    err.print(f"Wrote {output}.")


@export_app.command("requirements")
def export_requirements(
    lock_path: LockPathOption = Path("pylock.toml"),
    variant: VariantOption = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (atomically); default stdout.")
    ] = None,
    platform: Annotated[
        Platform | None,
        typer.Option(help="The platform to export (default: the lock's only one, or this host)."),
    ] = None,
    force: ForceOption = False,
) -> None:
    """Hashed `name @ url --hash=sha256:…` lines for one platform.

    pip and uv install them with: pip install --require-hashes --no-deps -r requirements.txt
    """
    lock_path = _with_variant(lock_path, variant)
    text = api.export_requirements(lock_path, platform=platform.value if platform else None)
    _emit(text, output, lock_path=lock_path, force=force)


@export_app.command("conda")
def export_conda(
    lock_path: LockPathOption = Path("pylock.toml"),
    variant: VariantOption = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (atomically); default stdout.")
    ] = None,
    platform: Annotated[Platform | None, typer.Option(help="The platform to export.")] = None,
    channel: Annotated[
        list[str] | None, typer.Option(help="conda channel (repeatable). Default: conda-forge.")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Environment name. Default: the lock's directory name.")
    ] = None,
    force: ForceOption = False,
) -> None:
    """environment.yml: conda's python and pip, the lock as hashed pip lines.

    conda runs pip with dependency resolution on, so the pip section is the lock's full
    closure, one --hash per line and no option lines (conda-lock and pip both read it).
    """
    lock_path = _with_variant(lock_path, variant)
    text = api.export_conda(
        lock_path,
        platform=platform.value if platform else None,
        channels=tuple(channel or ("conda-forge",)),
        name=name,
    )
    _emit(text, output, lock_path=lock_path, force=force)


class Flavor(StrEnum):
    RUNTIME = "runtime"
    DEVEL = "devel"


class Base(StrEnum):
    AUTO = "auto"
    OFFICIAL = "official"
    PYTHON = "python"


@export_app.command("dockerfile")
def export_dockerfile(
    lock_path: LockPathOption = Path("pylock.toml"),
    variant: VariantOption = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory for Dockerfile + requirements.txt.")
    ] = Path(),
    platform: Annotated[
        Platform | None, typer.Option(help="linux-x86_64 or linux-aarch64.")
    ] = None,
    flavor: Annotated[Flavor, typer.Option(help="Official image flavor.")] = Flavor.RUNTIME,
    base: Annotated[
        Base,
        typer.Option(
            help="auto: the official pytorch/pytorch image when one matches the lock, "
            "else python:X.Y-slim."
        ),
    ] = Base.AUTO,
    user: Annotated[
        str,
        typer.Option(help="The non-root user the image runs as (a POSIX portable user name)."),
    ] = "envlock",
    allow_root: Annotated[
        bool,
        typer.Option("--allow-root", help="Allow --user root: the image then runs as root."),
    ] = False,
    base_digest: Annotated[
        str | None, typer.Option(help="Pin FROM by digest (sha256:...).")
    ] = None,
    force: ForceOption = False,
) -> None:
    """Dockerfile (+ the hashed requirements it installs), never tagged `latest`.

    With an official base (pytorch/pytorch:<torch>-cuda<X.Y>-cudnn<N>-<flavor>), the build
    first checks that the image's Python, torch and CUDA equal the lock's, then installs only
    what the image lacks with --require-hashes --no-deps, runs pip check and switches to a
    non-root user.
    """
    lock_path = _with_variant(lock_path, variant)
    result = api.export_dockerfile(
        lock_path,
        platform=platform.value if platform else None,
        flavor=flavor.value,
        base=base.value,
        user=user,
        allow_root=allow_root,
        base_digest=base_digest,
    )
    api.write_output_dir(
        output,
        {"Dockerfile": result.dockerfile, "requirements.txt": result.requirements},
        lock_path=lock_path,
        force=force,
    )
    err.print(f"Wrote {output / 'Dockerfile'} and {output / 'requirements.txt'}: {result.note}.")


def _doctor_variants(variants: dict[str, Path], *, as_json: bool) -> None:
    """Which of the spec's variants suits this host? Exit 1 only when none does."""
    reports = {name: api.doctor(path) for name, path in variants.items()}
    suits = [name for name, report in reports.items() if report.ok]
    if as_json:
        out.print(
            json.dumps(
                {
                    "suits": suits,
                    "variants": {n: [f.to_json() for f in r.findings] for n, r in reports.items()},
                },
                indent=2,
            )
        )
    else:
        for name, report in reports.items():
            errors = [f for f in report.findings if f.level.value == "error"]
            if errors:
                for finding in errors:
                    out.print(f"{name}: error: {finding.what}")
            else:
                out.print(f"{name}: ok")
        out.print(f"suits this host: {', '.join(suits) or 'none'}")
    if not suits:
        raise typer.Exit(int(ExitCode.CHECK_FAILED))


# `envlock --help` lists commands in the order of the user's loop.
_HELP_ORDER = (
    "init",
    "lock",
    "sync",
    "verify",
    "bundle",
    "diff",
    "git-setup",
    "doctor",
    "channels",
    "textconv",
)
app.registered_commands.sort(
    key=lambda c: _HELP_ORDER.index(c.name or (c.callback.__name__ if c.callback else ""))
)


# --------------------------------------------------------------------------------------
# entry point


def _interrupted(what: str = "interrupted", code: int = 128 + signal.SIGINT) -> NoReturn:
    err.print(f"error: {what}")
    err.print(
        "hint: nothing was half-written (locks, exports and venvs are replaced only when "
        "complete; a bundle resumes where it stopped). Run the command again.",
        markup=False,
    )
    sys.exit(code)


def _terminate(signum: int, frame: object) -> NoReturn:
    """SIGTERM: unwind like Ctrl-C, so uv is killed and temporaries removed on the way up."""
    del frame
    signal.signal(signum, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
    raise Terminated


@contextmanager
def _signal_handlers() -> Iterator[None]:
    """While main runs, SIGTERM raises Terminated and SIGINT KeyboardInterrupt, even where
    SIGINT was inherited as ignored (a background job of a CI runner's shell): either way the
    clean-up paths run. The previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (main() called from a worker thread)
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            # None: a handler installed outside Python, which cannot be put back; the default
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


def _clip(text: str, limit: int = 600) -> str:
    """Long lines (a 10 MB value quoted back) shortened in the middle, each line alone."""
    lines = []
    for line in text.splitlines() or [""]:
        lines.append(
            f"{line[: limit // 2]} … ({len(line):,} characters) … {line[-limit // 4 :]}"
            if len(line) > limit
            else line
        )
    return "\n".join(lines)


def _print_error(exc: EnvlockError) -> None:
    err.print(f"error: {_clip(exc.message)}", markup=False)
    if exc.detail:
        for line in exc.detail.splitlines():
            err.print(f"  {_clip(line)}", markup=False)
    if exc.hint:
        err.print(f"hint: {_clip(exc.hint)}", markup=False)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: the one place that turns exceptions into messages and exit codes."""
    with _signal_handlers():
        try:
            _main(argv)
        except Terminated:  # here, not in _main: it may arrive while _main handles another
            _interrupted("terminated", 128 + signal.SIGTERM)


def _main(argv: list[str] | None) -> None:
    try:
        # Without standalone mode, click returns (not raises) the code of a typer.Exit.
        returned = app(args=argv, standalone_mode=False)
        if returned == 130:  # typer turns Ctrl-C into a returned 130
            _interrupted()
        if isinstance(returned, int) and returned:
            sys.exit(returned)
    except (EnvlockError, OSError) as exc:  # OSError: the OS refused what no layer mapped
        if _State.debug:
            traceback.print_exc()
        error = exc if isinstance(exc, EnvlockError) else filesystem_error(exc)
        _print_error(error)
        sys.exit(int(error.exit_code))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        _interrupted("aborted")
    except TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            err.print(exc.format_message(), markup=False)
            sys.exit(int(ExitCode.USAGE))
        err.print(f"error: {exc.format_message()}", markup=False)
        err.print("hint: run `envlock --help` or `envlock COMMAND --help`.", markup=False)
        sys.exit(int(ExitCode.USAGE))
    except KeyboardInterrupt:
        _interrupted()
    except Exception as exc:
        if _State.debug:
            traceback.print_exc()
        err.print(f"error: internal error: {type(exc).__name__}: {exc}", markup=False)
        err.print(
            "hint: this is a bug in envlock; re-run with --debug and report it.", markup=False
        )
        sys.exit(int(ExitCode.INTERNAL))
