"""io.transfer: a sync's download progress from uv's lines, the lock's sizes and /proc."""

from __future__ import annotations

from envlock.io.transfer import Downloads, Transfer, human_bytes

MIB = 1024 * 1024


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_give_bytes_rate_and_time_left() -> None:
    clock = _Clock()
    seen: list[Transfer] = []
    downloads = Downloads(
        {"torch": 800 * MIB, "nvidia_cublas_cu12": 200 * MIB, "six": 11_000},
        seen.append,
        clock=clock,
    )
    assert downloads.line("Downloading torch (800.0MiB)") == "Downloading torch (800.0MiB)"
    downloads.line("Downloading nvidia-cublas-cu12 (200.0MiB)")
    clock.now += 10
    # logs and CI: each finished download is one line, with its size
    assert downloads.line(" Downloaded nvidia-cublas-cu12") == (
        "Downloaded nvidia-cublas-cu12 (200.0 MiB)"
    )
    moment = seen[-1]
    assert (moment.done, moment.total, moment.finished, moment.started) == (
        200 * MIB,
        1000 * MIB,
        1,
        2,
    )
    assert moment.rate == 20 * MIB
    assert moment.eta == 40.0
    clock.now += 40
    downloads.line(" Downloaded torch")
    assert downloads.summary() == "Downloaded 1000.0 MiB (2 files) in 50.0 s, 20.0 MiB/s"
    assert downloads.line("Prepared 3 packages in 50.1s") == "Prepared 3 packages in 50.1s"


def test_a_warm_cache_says_nothing() -> None:
    downloads = Downloads({"six": 11_000})
    assert downloads.line("Prepared 1 package in 3ms") == "Prepared 1 package in 3ms"
    assert downloads.summary() is None
    assert downloads.snapshot().total == 0


def test_sizes_read_as_uv_writes_them() -> None:
    assert human_bytes(917) == "917 B"
    assert human_bytes(52 * MIB + MIB // 2) == "52.5 MiB"
    assert human_bytes(3 * 1024 * MIB) == "3.0 GiB"
