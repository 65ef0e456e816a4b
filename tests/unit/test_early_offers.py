"""io.pages.EarlyOffers: the named packages' PyPI pages are read while uv resolves."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from envlock.heldback import Offers
from envlock.io.early_offers import EarlyOffers
from envlock.io.ports import AuthFor

PYPI = "https://pypi.org/simple"
MIRROR = "https://mirror.example/simple"


class _Reader:
    def __init__(self, fail: bool = False) -> None:
        self.asked: list[tuple[tuple[str, str], ...]] = []
        self.threads: list[str] = []
        self.fail = fail

    def offers(
        self, wanted: Sequence[tuple[str, str]], auth: AuthFor
    ) -> dict[tuple[str, str], Offers]:
        self.asked.append(tuple(wanted))
        self.threads.append(threading.current_thread().name)
        if self.fail:
            self.fail = False
            raise OSError("network down")
        return dict.fromkeys(wanted, ())


def _no_auth(url: str) -> None:
    return None


def test_pypi_pages_are_read_early_once_and_the_rest_when_asked() -> None:
    inner = _Reader()
    reader = EarlyOffers(
        [(PYPI, "datasets"), (MIRROR, "private"), ("http://pypi.org/simple", "plain")],
        _no_auth,
        reader=lambda: inner,
    )
    assert reader.early == ((PYPI, "datasets"),)  # a mirror, or plain HTTP, is read after uv
    got = reader.offers([(PYPI, "datasets"), (MIRROR, "private")], _no_auth)
    assert got == {(PYPI, "datasets"): (), (MIRROR, "private"): ()}
    assert inner.asked == [((PYPI, "datasets"),), ((MIRROR, "private"),)]
    assert inner.threads[0] != threading.current_thread().name  # the early read: another thread


def test_a_failed_early_read_is_read_again_when_asked() -> None:
    inner = _Reader(fail=True)
    reader = EarlyOffers([(PYPI, "datasets")], _no_auth, reader=lambda: inner)
    assert reader.offers([(PYPI, "datasets")], _no_auth) == {(PYPI, "datasets"): ()}
    assert inner.asked == [((PYPI, "datasets"),), ((PYPI, "datasets"),)]


def test_nothing_early_reads_nothing() -> None:
    inner = _Reader()
    reader = EarlyOffers([(MIRROR, "private")], _no_auth, reader=lambda: inner)
    assert reader.offers([], _no_auth) == {}
    assert inner.asked == []
