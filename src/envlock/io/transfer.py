"""How far a sync's downloads are: bytes, rate and time left, from uv's lines and the lock.

uv says ``Downloading torch (766.7MiB)`` when a large download starts and ``Downloaded torch``
when it ends (small files it fetches without a word). The lock holds every artifact's exact
size, so the total of what is being downloaded is known from the first lines, and the bytes
done grow by each finished artifact's size. (Bytes within one download are not visible: uv
reports none without a terminal, and its socket reads do not show in /proc/PID/io, measured.)
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from packaging.utils import canonicalize_name as _canonical

_STARTED = re.compile(r"^Downloading (\S+) \(")
_FINISHED = re.compile(r"^Downloaded (\S+)$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Transfer:
    """A moment of the downloads: ``done`` of ``total`` bytes, ``finished`` of ``started``."""

    done: int
    total: int
    finished: int
    started: int
    seconds: float

    @property
    def rate(self) -> float | None:
        """Bytes per second so far (None before anything arrived)."""
        return self.done / self.seconds if self.done and self.seconds > 0 else None

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far."""
        rate = self.rate
        return (self.total - self.done) / rate if rate else None


def human_bytes(size: int) -> str:
    """1.2 GiB, 52.5 MiB, 917 B: as uv writes sizes."""
    if size < 1024:
        return f"{size} B"
    value, unit = size / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


class Downloads:
    """Follows one uv run: ``line`` for each of its stderr lines (it returns the line to show);
    ``sink`` gets a Transfer at each change (from the thread reading uv's lines)."""

    def __init__(
        self,
        sizes: Mapping[str, int],
        sink: Callable[[Transfer], None] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sizes = {_canonical(name): size for name, size in sizes.items()}
        self._sink = sink
        self._clock = clock
        self._start = clock()
        self._started: dict[str, int] = {}
        self._finished: set[str] = set()
        self._lock = threading.Lock()
        self._last: float | None = None  # when the last download finished

    def line(self, text: str) -> str:
        """Note what ``text`` says; the line as logs show it (a finished download with its
        size, whatever uv printed otherwise)."""
        stripped = text.strip()
        if match := _STARTED.match(stripped):
            with self._lock:
                name = _canonical(match.group(1))
                self._started[name] = self._sizes.get(name, 0)
            self._emit()
        elif match := _FINISHED.match(stripped):
            name = _canonical(match.group(1))
            with self._lock:
                self._finished.add(name)
                size = self._started.setdefault(name, self._sizes.get(name, 0))
                self._last = self._clock()
            self._emit()
            return f"Downloaded {match.group(1)} ({human_bytes(size)})" if size else stripped
        return stripped

    def snapshot(self) -> Transfer:
        with self._lock:
            total = sum(self._started.values())
            finished = sum(self._started[n] for n in self._finished if n in self._started)
            return Transfer(
                done=finished,
                total=total,
                finished=len(self._finished),
                started=len(self._started),
                seconds=self._clock() - self._start,
            )

    def summary(self) -> str | None:
        """``Downloaded 3.1 GiB (27 files) in 62.0 s, 51.2 MiB/s``; None when uv announced
        no download (a warm cache, or only small files)."""
        moment = self.snapshot()
        if not moment.finished or self._last is None:
            return None
        seconds = max(self._last - self._start, 1e-3)
        return (
            f"Downloaded {human_bytes(moment.done)} ({moment.finished} files) in {seconds:.1f} s, "
            f"{human_bytes(int(moment.done / seconds))}/s"
        )

    def _emit(self) -> None:
        if self._sink is not None:
            self._sink(self.snapshot())
