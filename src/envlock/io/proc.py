"""The one subprocess choke point: logs the command, cleans the environment, maps failures."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envlock.errors import EnvlockError, InternalError
from envlock.settings import OURS_TO_UV
from envlock.urls import redact_text

log = logging.getLogger("envlock.proc")


def _debug(message: str, *args: object) -> None:
    """A --debug line with every URL in it redacted: an index URL's query string may carry a
    token (it is on uv's command line), and only urls.redact_text may decide what is shown."""
    if log.isEnabledFor(logging.DEBUG):
        shown = [redact_text(a, queries=True) if isinstance(a, str) else a for a in args]
        log.debug(message, *shown)


# Variables that carry ambient package-manager configuration. None may reach uv or pip:
# a lock must not depend on who runs it.
_AMBIENT_PREFIXES = ("UV_", "PIP_", "CONDA_", "PYTHON", "VIRTUAL_ENV", "PYTORCH_", "ENVLOCK_")
_KEEP = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LC_ALL",
        "TMPDIR",
        "TEMP",
        "TMP",
        "SYSTEMROOT",  # Windows needs it for sockets
        # TLS trust (a company CA, a TLS-inspecting proxy): whom to trust, never what to
        # resolve. OpenSSL's and uv's (SSL_*), requests' (pip's vendored copy), pip's own.
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "SSL_CLIENT_CERT",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "PIP_CERT",
        "PIP_CLIENT_CERT",
        "NETRC",  # where credentials for private indexes live (uv, pip and envlock read it)
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "all_proxy",
        # uv transport settings: how to reach an index, never what to resolve.
        "UV_SYSTEM_CERTS",
        "UV_NATIVE_TLS",
    }
)
_TRANSPORT = frozenset({"UV_SYSTEM_CERTS", "UV_NATIVE_TLS", "PIP_CERT", "PIP_CLIENT_CERT"})


def clean_environment(environ: Mapping[str, str], extra: Mapping[str, str] = {}) -> dict[str, str]:
    """Keep only what a subprocess needs to reach the network; drop ambient pip/uv config."""
    env = {
        k: v
        for k, v in environ.items()
        if k in _KEEP and (k in _TRANSPORT or not k.startswith(_AMBIENT_PREFIXES))
    }
    # pip reads PIP_CONFIG_FILE=/dev/null as "no config file"; harmless for uv.
    env["PIP_CONFIG_FILE"] = os.devnull
    # pip before 24.2 (what ensurepip seeds on Python 3.11/3.12) ignores SSL_CERT_FILE and
    # SSL_CERT_DIR: hand it the same trust uv gets, unless a CA was named for pip/requests.
    trust = env.get("SSL_CERT_FILE") or env.get("SSL_CERT_DIR")
    if trust and not any(k in env for k in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")):
        env["PIP_CERT"] = trust
    # envlock's own network settings, for every uv it runs (lock, sync, venv).
    for ours, theirs in OURS_TO_UV:
        if environ.get(ours):
            env[theirs] = environ[ours]
    env.update(extra)
    return env


@dataclass(frozen=True, slots=True)
class Completed:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


# Children's output is decoded as UTF-8 (what uv always writes); bytes that are not UTF-8 (a
# localised nvidia-smi, a .pth file printing junk) become U+FFFD, not an internal error.
_TEXT: dict[str, Any] = {"text": True, "encoding": "utf-8", "errors": "replace"}


def _kill_group(process: subprocess.Popen[str]) -> None:
    """SIGKILL the child and everything it started (its own session, see start_new_session)."""
    killpg = getattr(os, "killpg", None)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if killpg is None:  # pragma: no cover - Windows: no process groups, the child alone
            process.kill()
        else:
            killpg(process.pid, signal.SIGKILL)


_STOPPING = (signal.SIGINT, signal.SIGTERM)


def _hold_stop_signals() -> Callable[[], None]:
    """Hold back Ctrl-C and SIGTERM while a command starts; returns what lets them through.

    Their handlers raise (KeyboardInterrupt, cli's Terminated) wherever the main thread is:
    inside Popen, after its fork, nothing would stop the command. Until the caller calls the
    function returned, first thing in the try block that stops the command, the handlers only
    record a signal; then they are put back and a held signal is raised there. Handlers, not
    the signal mask: a blocked mask is inherited across exec (3.11's Popen cannot unblock it in
    the child but through preexec_fn), and it does not keep the signal from another thread,
    whose Python handler still runs in the main one. Handlers run only in the main thread, so
    elsewhere nothing can raise."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    held: list[int] = []
    saved: dict[int, Callable[[int, Any], Any]] = {}
    for signum in _STOPPING:
        handler = signal.getsignal(signum)
        if callable(handler):  # SIG_IGN and SIG_DFL raise nothing: leave them to the child
            saved[signum] = handler
            signal.signal(signum, lambda number, _frame: held.append(number))

    def release() -> None:
        while saved:
            signum, handler = saved.popitem()
            signal.signal(signum, handler)
        for signum in held:  # the first raises here, in the caller's try block
            signal.raise_signal(signum)
        held.clear()

    return release


def run(
    args: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str],
    timeout: float | None = None,
    timeout_error: EnvlockError | None = None,
) -> Completed:
    """Run a command to completion with exactly ``env``; never raises on a non-zero exit.

    A command still running after ``timeout`` seconds is killed and ``timeout_error`` raised.
    Interrupted (Ctrl-C, SIGTERM), the command and every process it started are killed."""
    argv = tuple(str(a) for a in args)
    _debug("run: %s (cwd=%s)", " ".join(argv), cwd)
    release = _hold_stop_signals()
    try:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # so the whole process group can be killed
            **_TEXT,
        )
    except OSError as exc:
        release()
        raise _cannot_run(argv, exc) from exc
    except BaseException:
        release()
        raise
    with process:
        try:
            release()  # a signal held while the command started stops it here
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            _kill_group(process)
            # A process that left the group (setsid) may still hold the pipes: do not wait on it.
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.communicate(timeout=5)
            raise timeout_error or _timed_out(argv, timeout) from exc
        except BaseException:  # Ctrl-C, SIGTERM: its own session got no signal, so stop it
            _kill_group(process)
            process.wait()
            raise
    _debug("exit %s; stderr:\n%s", process.returncode, stderr)
    return Completed(argv, process.returncode, stdout, stderr)


def run_echoing(
    args: Sequence[str | Path],
    *,
    env: Mapping[str, str],
    echo: Callable[[str], None],
    timeout: float | None = None,
    timeout_error: EnvlockError | None = None,
) -> Completed:
    """Like run(), but hands each stderr line to ``echo`` as it arrives (progress), while
    still capturing everything for error messages."""
    argv = tuple(str(a) for a in args)
    _debug("run: %s", " ".join(argv))
    release = _hold_stop_signals()
    try:
        process = subprocess.Popen(
            argv,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # so a timeout can kill the whole process group
            **_TEXT,
        )
    except OSError as exc:
        release()
        raise _cannot_run(argv, exc) from exc
    except BaseException:
        release()
        raise
    stdout: list[str] = []
    stderr: list[str] = []
    fired = threading.Event()

    def kill() -> None:
        fired.set()
        _kill_group(process)

    reader = threading.Thread(
        target=lambda: stdout.append(process.stdout.read() if process.stdout else ""),
        daemon=True,
    )
    timer = threading.Timer(timeout, kill) if timeout else None
    with process:  # closes both pipes
        try:
            release()  # a signal held while the command started stops it here
            reader.start()
            if timer is not None:
                timer.start()
            assert process.stderr is not None
            for line in process.stderr:
                stderr.append(line)
                if line.strip():
                    echo(line.rstrip())
            returncode = process.wait()
        except BaseException:  # Ctrl-C, SIGTERM: its own session got no signal, so stop it
            _kill_group(process)
            process.wait()
            if reader.is_alive():
                reader.join(timeout=5)  # the group is dead: stdout ends, before `with` closes it
            raise
        finally:
            if timer is not None:
                timer.cancel()
        reader.join()
    if fired.is_set():
        raise timeout_error or _timed_out(argv, timeout)
    text = "".join(stderr)
    _debug("exit %s; stderr:\n%s", returncode, text)
    return Completed(argv, returncode, "".join(stdout), text)


def _timed_out(argv: Sequence[str | Path], timeout: float | None) -> InternalError:
    return InternalError(
        f"{argv[0]} did not finish within {timeout} s",
        hint="Nothing was changed; re-run with --debug to see the command line.",
    )


def _cannot_run(argv: Sequence[str], exc: OSError) -> InternalError:
    return InternalError(
        f"cannot run {argv[0]}: {exc.strerror}",
        hint="Reinstall envlock: the uv binary ships as its dependency.",
    )
