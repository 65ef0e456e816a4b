"""envlock.__main__.run: the console script ends without the interpreter's teardown
(hard_exit), and is otherwise the exit Python would have made."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def _run(body: str) -> subprocess.CompletedProcess[str]:
    """Run ``body`` (which sets ``main``) in a fresh interpreter, then envlock's ``run``."""
    head = "import atexit, sys\nimport envlock.__main__ as entry\n"
    script = head + textwrap.dedent(body) + "entry.main = main\nentry.run()\n"
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("exit_with", "status", "stderr"),
    [
        ("None", 0, ""),
        ("0", 0, ""),
        ("3", 3, ""),
        ("-1", 255, ""),
        ("'error: a message'", 1, "error: a message\n"),
    ],
)
def test_the_exit_status_is_the_one_python_would_give(
    exit_with: str, status: int, stderr: str
) -> None:
    result = _run(f"def main():\n    sys.exit({exit_with})\n")
    assert result.returncode == status
    assert result.stderr == stderr


def test_returning_is_status_zero_and_buffered_output_arrives() -> None:
    # no newline, piped: the text sits in the buffer until the flush hard_exit makes
    result = _run("def main():\n    sys.stdout.write('partial')\n    sys.stderr.write('err')\n")
    assert (result.returncode, result.stdout, result.stderr) == (0, "partial", "err")


def test_atexit_handlers_still_run() -> None:
    result = _run("atexit.register(lambda: print('handler ran'))\ndef main():\n    sys.exit(2)\n")
    assert (result.returncode, result.stdout) == (2, "handler ran\n")


def test_the_teardown_is_skipped() -> None:
    # an object's finaliser that only the interpreter's teardown would call
    result = _run(
        "class Dropped:\n"
        "    def __del__(self):\n"
        "        print('torn down', flush=True)\n"
        "KEEP = Dropped()\n"
        "def main():\n    return None\n"
    )
    assert (result.returncode, result.stdout) == (0, "")


def test_a_thread_still_running_gets_the_normal_exit() -> None:
    # a non-daemon thread: Python's shutdown waits for it, and so does run()
    result = _run(
        "import threading, time\n"
        "def late():\n    time.sleep(0.3)\n    print('thread finished', flush=True)\n"
        "def main():\n    threading.Thread(target=late).start()\n    sys.exit(4)\n"
    )
    assert (result.returncode, result.stdout) == (4, "thread finished\n")


def test_an_output_that_cannot_be_flushed_is_python_s_own_exit() -> None:
    # stdout whose flush fails as a closed pipe's does: run() leaves it to the interpreter,
    # whose shutdown reports it and exits 120, as it would without envlock's exit
    broken = (
        "import io\n"
        "class Closed(io.StringIO):\n"
        "    def flush(self):\n"
        "        raise BrokenPipeError(32, 'Broken pipe')\n"
        "def main():\n    sys.stdout = Closed()\n    sys.exit(0)\n"
    )
    with_run = _run(broken)
    plain = subprocess.run(
        [sys.executable, "-c", "import sys\n" + broken + "main()\n"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert with_run.returncode == plain.returncode == 120
    assert "BrokenPipeError" in with_run.stderr


def test_python_dash_m_envlock_uses_run() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "envlock", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.strip()
