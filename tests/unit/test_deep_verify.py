"""envlock.io.installed under `verify --deep`: each RECORD row's file hashed against its row."""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.utils import NormalizedName

from envlock.io import installed
from envlock.materialise.installed import Dist

INFO = "pkg-1.0.dist-info"
DIST = Dist(name=NormalizedName("pkg"), version="1.0", directory=INFO, record="", files="")
DEADLINE = 20.0  # seconds a hashing run may take before it counts as hung
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and /dev are POSIX")


def _site(tmp_path: Path, files: dict[str, bytes]) -> Path:
    """A site-packages holding ``files`` and a RECORD that lists each with its sha256 and size."""
    site = tmp_path / "site-packages"
    (site / INFO).mkdir(parents=True)
    rows = []
    for name, data in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{name},sha256={digest},{len(data)}")
    (site / INFO / "RECORD").write_text("\n".join([*rows, f"{INFO}/RECORD,,"]) + "\n")
    return site


def _within_deadline(run: Callable[[], tuple[str, ...]], unblock: Callable[[], None]) -> object:
    """run() in a thread; its answer, or "hung" when it has none by the deadline (then
    unblock() lets a thread stuck in open() go)."""
    answer: list[object] = []
    worker = threading.Thread(target=lambda: answer.append(run()), daemon=True)
    worker.start()
    worker.join(DEADLINE)
    if worker.is_alive():
        unblock()
        return "hung"
    return answer[0]


def test_an_untouched_dist_has_no_changed_files(tmp_path: Path) -> None:
    site = _site(tmp_path, {"pkg/__init__.py": b"", "pkg/a.py": b"a = 1\n"})
    assert installed.changed_files(site, DIST) == ()


def test_a_file_with_other_bytes_of_the_same_size_is_changed(tmp_path: Path) -> None:
    site = _site(tmp_path, {"pkg/a.py": b"a = 1\n", "pkg/b.py": b"b = 2\n"})
    (site / "pkg/b.py").write_bytes(b"b = 3\n")
    assert installed.changed_files(site, DIST) == ("pkg/b.py",)


def test_a_missing_file_is_left_to_the_scan(tmp_path: Path) -> None:
    site = _site(tmp_path, {"pkg/a.py": b"a = 1\n"})
    (site / "pkg/a.py").unlink()
    assert installed.changed_files(site, DIST) == ()


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_big_and_small_changes_come_back_in_record_order(tmp_path: Path, workers: int) -> None:
    big = os.urandom(1 << 20)
    files = {
        f"pkg/f{i:02d}.{'so' if i % 3 == 0 else 'py'}": big if i % 3 == 0 else b"x"
        for i in range(12)
    }
    site = _site(tmp_path, files)
    edited = [name for i, name in enumerate(files) if i % 2 == 0]
    for name in edited:
        data = (site / name).read_bytes()
        (site / name).write_bytes(bytes([data[0] ^ 1]) + data[1:])
    assert installed.changed_files(site, DIST, workers=workers) == tuple(edited)


def test_hashing_memory_does_not_grow_with_the_files(tmp_path: Path) -> None:
    chunk = os.urandom(1 << 20)
    site = _site(tmp_path, {"pkg/a.so": chunk * 24, "pkg/b.so": chunk[::-1] * 24})
    (site / "pkg/b.so").write_bytes(chunk * 24)
    tracemalloc.start()
    try:
        changed = installed.changed_files(site, DIST, workers=2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert changed == ("pkg/b.so",)
    assert peak < 4 << 20, peak  # 48 MB hashed through at most two 1 MiB buffers


def test_a_directory_where_record_lists_a_file_is_changed(tmp_path: Path) -> None:
    """A file replaced by a directory could not be opened as a file, and --deep skipped it as
    if the scan had reported it (the scan sees something there: only its size, if RECORD has
    one, could differ)."""
    site = _site(tmp_path, {"pkg/a.py": b"a = 1\n"})
    (site / "pkg/a.py").unlink()
    (site / "pkg/a.py").mkdir()
    assert installed.changed_files(site, DIST) == ("pkg/a.py",)


@posix_only
def test_a_fifo_in_place_of_a_file_is_changed_without_waiting(tmp_path: Path) -> None:
    """An empty file (every package's __init__.py) replaced by a FIFO has the recorded size,
    0; --deep opened it for reading and waited for a writer forever."""
    site = _site(tmp_path, {"pkg/__init__.py": b"", "pkg/a.py": b"a = 1\n"})
    fifo = site / "pkg/__init__.py"
    fifo.unlink()
    os.mkfifo(fifo)

    def unblock() -> None:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # the stuck open() returns

    answer = _within_deadline(lambda: installed.changed_files(site, DIST), unblock)
    assert answer == ("pkg/__init__.py",)


@posix_only
@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_a_link_to_a_device_is_changed_without_reading_it(tmp_path: Path) -> None:
    """A file replaced by a link to /dev/zero (size 0, as an empty __init__.py) made --deep
    read zeros forever."""
    site = _site(tmp_path, {"pkg/__init__.py": b""})
    (site / "pkg/__init__.py").unlink()
    (site / "pkg/__init__.py").symlink_to("/dev/zero")
    answer = _within_deadline(lambda: installed.changed_files(site, DIST), lambda: None)
    assert answer == ("pkg/__init__.py",)


def test_a_link_to_an_identical_file_is_not_changed(tmp_path: Path) -> None:
    site = _site(tmp_path, {"pkg/a.py": b"a = 1\n"})
    (tmp_path / "elsewhere.py").write_bytes(b"a = 1\n")
    (site / "pkg/a.py").unlink()
    (site / "pkg/a.py").symlink_to(tmp_path / "elsewhere.py")
    assert installed.changed_files(site, DIST) == ()


@pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() == 0, reason="root reads any file; POSIX modes"
)
def test_an_unreadable_file_is_changed(tmp_path: Path) -> None:
    site = _site(tmp_path, {"pkg/a.py": b"a = 1\n"})
    (site / "pkg/a.py").chmod(0)
    try:
        assert installed.changed_files(site, DIST) == ("pkg/a.py",)
    finally:
        (site / "pkg/a.py").chmod(0o644)


def test_the_scan_reads_a_row_as_a_path_does(tmp_path: Path) -> None:
    """Rows are stat'ed by string, falling back to pathlib's reading (a trailing `/`), so a
    row is present or missing exactly as before."""
    site = _site(tmp_path, {"pkg/a.py": b"a = 1\n"})
    record = site / INFO / "RECORD"
    record.write_text(record.read_text() + "pkg/a.py/,,\npkg//./a.py,,\npkg/gone.py,,\n")
    state = installed.scan(tmp_path, site)
    assert [d.missing for d in state.dists] == [("pkg/gone.py",)]


def test_each_dist_gets_its_own_changes_from_one_pool(tmp_path: Path) -> None:
    big = os.urandom(1 << 20)
    site = _site(tmp_path, {"pkg/a.so": big, "pkg/b.py": b"b"})
    other = Dist(
        name=NormalizedName("lib"),
        version="2.0",
        directory="lib-2.0.dist-info",
        record="",
        files="",
    )
    (site / other.directory).mkdir()
    (site / "lib").mkdir()
    (site / "lib/c.so").write_bytes(big)
    digest = base64.urlsafe_b64encode(hashlib.sha256(big).digest()).rstrip(b"=").decode()
    (site / other.directory / "RECORD").write_text(f"lib/c.so,sha256={digest},{len(big)}\n")
    (site / "pkg/a.so").write_bytes(big[::-1])
    (site / "lib/c.so").write_bytes(big[::-1])
    assert installed.changed_files_each(site, (DIST, other, DIST), workers=2) == (
        ("pkg/a.so",),
        ("lib/c.so",),
        ("pkg/a.so",),
    )
