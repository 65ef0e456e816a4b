"""Import the packages a spec names inside a venv's own interpreter (sync, verify --imports).

A venv can be exactly the lock, every hash verified, and still not work: two locked versions
that do not fit together (datasets 2.14.4 with pyarrow 26: ``import datasets`` raises
AttributeError: module 'pyarrow' has no attribute 'PyExtensionType'). Only importing finds
that. The program is the Docker image's own check (envlock.materialise.image_program, its
``imports`` step: one home for "which modules a distribution installs at the top, and import
them"), run as ``python -I`` through io/proc.

One interpreter imports the distributions in turn, so a module many of them import (torch)
loads once. An import that hangs or crashes must not hide the others: the program arms
faulthandler's watchdog before each import (``timeout`` seconds; it dumps the stacks and
exits), says which module it is about to import, and this module starts a fresh interpreter
for the distributions after the one that hung or crashed.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name

from envlock.errors import ImportCheckError, InternalError
from envlock.io import proc
from envlock.io.runtime_probe import probe_environment
from envlock.materialise import image_program

PROGRAM = Path(image_program.__file__)
# Each import gets this long: a CUDA torch reads ~2 GB of libraries, slow on a cold network
# file system (the same allowance as the torch probe's).
IMPORT_TIMEOUT = 120.0
# faulthandler's dump: "  File "/path/x.py", line 3 in <module>", innermost frame first.
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<func>.*)$')


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportFailure:
    """One distribution's module that did not import."""

    name: str  # the distribution (normalised name)
    module: str | None  # None: nothing of it could be imported (not installed, no run)
    error: str  # the traceback's last line, or how the import stopped ("timed out after 2 s")
    where: str = ""  # for a hang or a crash: the file and line it was at

    @property
    def message(self) -> str:
        """``import datasets failed: AttributeError: …``, or ``not installed`` (one line)."""
        where = f" (at {self.where})" if self.where else ""
        if self.module is None:
            return self.error + where
        return f"import {self.module} failed: {self.error}{where}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportReport:
    imported: tuple[str, ...] = ()  # modules that imported, in order
    failures: tuple[ImportFailure, ...] = ()
    empty: tuple[str, ...] = ()  # distributions that install no module to import
    seconds: float = 0.0
    runs: int = 0  # interpreters started: 1, plus one after each hang or crash
    timings: Mapping[str, float] = field(default_factory=dict)  # module -> seconds

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(slots=True)
class _Run:
    """What one interpreter's JSON lines said."""

    imported: list[str] = field(default_factory=list)
    failures: list[ImportFailure] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    open: tuple[str, str] | None = None  # (distribution, module) begun and not ended
    done: bool = False


def _read(stdout: str) -> _Run:
    import json  # noqa: PLC0415 - only here

    run = _Run()
    for line in stdout.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        name = str(record.get("name", ""))
        run.seen.add(name)
        if record.get("done"):
            run.done = True
        elif "begin" in record:
            run.open = (name, str(record["begin"]))
        elif "end" in record:
            module = str(record["end"])
            run.open = None
            run.timings[module] = float(record.get("seconds") or 0.0)
            if record.get("error"):
                run.failures.append(
                    ImportFailure(name=name, module=module, error=str(record["error"]))
                )
            else:
                run.imported.append(module)
        elif record.get("error"):
            run.failures.append(ImportFailure(name=name, module=None, error=str(record["error"])))
        else:
            run.empty.append(name)
    return run


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _where(stderr: str) -> str:
    """Where faulthandler's dump says the importing thread was: its innermost frame outside
    importlib ("/venv/…/hang/__init__.py, line 3")."""
    blocks = re.split(r"^(?:Current thread|Thread) 0x[0-9a-fA-F]+.*$", stderr, flags=re.M)[1:]
    importing = [b for b in blocks if "importlib._bootstrap" in b] or blocks
    for block in importing[:1]:
        for line in block.splitlines():
            frame = _FRAME.match(line)
            if frame and not frame["file"].startswith("<frozen "):
                return f"{frame['file']}, line {frame['line']}"
    return ""


def _how_it_stopped(result: proc.Completed, timeout: float) -> str:
    if result.returncode < 0:
        try:
            name = signal.Signals(-result.returncode).name
        except ValueError:
            name = f"signal {-result.returncode}"
        if name == "SIGKILL":
            return "killed (SIGKILL: out of memory?)"
        return f"crashed ({name})"
    if result.returncode == 1 and re.search(r"^Timeout \(", result.stderr, re.M):
        return f"timed out after {timeout:g} s"
    said = _last_line(result.stderr)
    return f"the interpreter exited with status {result.returncode}" + (f": {said}" if said else "")


def check_imports(
    python: Path,
    names: Sequence[str],
    *,
    environ: Mapping[str, str] | None = None,
    timeout: float = IMPORT_TIMEOUT,
) -> ImportReport:
    """Import the top-level modules of each distribution in ``names`` with the interpreter
    ``python`` (a venv's), ``timeout`` seconds per module (0: no limit). Every failure is
    a finding (what it raised, or that it hung or crashed, and where); nothing raises but a
    Python that cannot be started at all (InternalError)."""
    env = probe_environment(os.environ if environ is None else environ)
    started = time.monotonic()
    imported: list[str] = []
    failures: list[ImportFailure] = []
    empty: list[str] = []
    timings: dict[str, float] = {}
    remaining = list(names)
    runs = 0
    while remaining:
        runs += 1
        # The watchdog in the program stops a hung import; this only guards against a child
        # the watchdog cannot stop (a process stopped by a signal, a watchdog thread killed).
        limit = timeout * (3 * len(remaining) + 1) + 30 if timeout > 0 else None
        stuck = InternalError("the import check did not finish", hint="Nothing was changed.")
        try:
            result = proc.run(
                [python, "-I", PROGRAM, "imports", f"{timeout:g}", *remaining],
                env=env,
                timeout=limit,
                timeout_error=stuck,
            )
        except InternalError as exc:
            if exc is not stuck:
                raise
            error = f"the import check did not finish within {limit:g} s"
            failures += [ImportFailure(name=n, module=None, error=error) for n in remaining]
            break
        run = _read(result.stdout)
        imported += run.imported
        failures += run.failures
        empty += run.empty
        timings.update(run.timings)
        if run.done:
            break
        if run.open is None:  # stopped outside any import: the interpreter itself failed
            error = _how_it_stopped(result, timeout)
            failures += [
                ImportFailure(name=n, module=None, error=f"the import check did not run: {error}")
                for n in remaining
                if n not in run.seen
            ]
            break
        name, module = run.open
        failures.append(
            ImportFailure(
                name=name,
                module=module,
                error=_how_it_stopped(result, timeout),
                where=_where(result.stderr),
            )
        )
        remaining = remaining[remaining.index(name) + 1 :]
    return ImportReport(
        imported=tuple(imported),
        failures=tuple(failures),
        empty=tuple(empty),
        seconds=time.monotonic() - started,
        runs=runs,
        timings=timings,
    )


def import_error(
    env_path: Path,
    lock_path: Path,
    failures: Sequence[ImportFailure],
    installed: Mapping[NormalizedName, str],
) -> ImportCheckError:
    """The error for an environment synced exactly as ``lock_path`` whose ``failures`` say
    packages it names do not import: each with its last traceback line, and a hint that
    names the package at fault when the error does."""

    def label(name: str) -> str:
        version = installed.get(NormalizedName(name))
        return f"{name} {version}" if version else name

    where = f"{env_path} (synced exactly as {lock_path.name})"
    first = failures[0]
    if len(failures) == 1:
        message = f"{label(first.name)} does not import in {where}: {first.message}"
        detail = ""
    else:
        broken = len({f.name for f in failures})
        message = f"{broken} packages torchenv.toml names do not import in {where}"
        detail = "\n".join(f"{label(f.name)}: {f.message}" for f in failures)
    return ImportCheckError(
        message, hint=_import_hint(first, installed, label(first.name)), detail=detail
    )


# What the last traceback line says of the package at fault: an attribute, a name or a
# submodule another package no longer has (an API or ABI break), or a module nothing installs.
_LACKS = re.compile(
    r"module '([\w.]+)' has no attribute|cannot import name '[^']*' from '([\w.]+)'"
    r"|No module named '([\w.]+)'"
)


def _below(version: str) -> str:
    """The bound that keeps a package below the release series of ``version``: "<26", "<0.17"."""
    parts = version.split("+", 1)[0].split(".")
    return f"<{parts[0]}" if parts[0] != "0" or len(parts) < 2 else f"<0.{parts[1]}"


def _import_hint(
    failure: ImportFailure, installed: Mapping[NormalizedName, str], failing: str
) -> str:
    then = (
        "then run `envlock lock` (it reports packages it held back below the newest) and "
        "`envlock sync`. The venv is left as synced; `envlock verify --imports` repeats this "
        "check and `--no-check-imports` skips it."
    )
    found = _LACKS.search(failure.error)
    module = next((g for g in found.groups() if g), "") if found is not None else ""
    other = canonicalize_name(module.split(".")[0])
    own = canonicalize_name(failure.name)
    if module and other in installed and other != own:
        version = installed[other]
        locked = installed.get(own)
        newer = f' ({failure.name} = ">{locked}")' if locked else ""
        return (
            f"{failing} uses what {other} {version} no longer has. In [packages] of "
            f"torchenv.toml, require a newer {failure.name} that supports it{newer}, or keep "
            f'{other} below that: add {other} = "{_below(version)}"; {then}'
        )
    if found is not None and found[3] and other not in installed:
        return (
            f"{failing} imports {module}, which the lock does not install (a dependency it "
            f"does not declare, or one of its extras): add the package that provides {module} "
            f"to [packages] in torchenv.toml; {then}"
        )
    return (
        "The locked versions do not work together, or this host lacks something the package "
        "needs (the error says which). Constrain the package it names in [packages] of "
        f"torchenv.toml, or require a newer {failure.name}; {then}"
    )
