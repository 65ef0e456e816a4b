"""Project pages a lock will ask for, read while uv resolves (the held-back check's input).

This module imports almost nothing: a lock makes its EarlyOffers before uv starts, and the page
reader (io.pages, its HTTP client, ~45 ms of imports) is made in the reading thread, so that
import overlaps uv's resolve too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from envlock.heldback import OfferReader, Offers
    from envlock.io.ports import AuthFor

# Indexes whose pages are static files behind a CDN: read while uv resolves, they cannot serve
# uv anything else. A mirror is another matter (a cold devpi mirror answered a concurrent first
# request with an empty project, and uv then saw none), so every other index is read after uv.
_STATIC_INDEX_HOSTS = frozenset({"pypi.org"})


class EarlyOffers:
    """An OfferReader that starts reading the pages a lock will ask for before it asks (while
    uv resolves), and answers from them: the held-back check then costs no network time.

    Only pages of static public indexes (_STATIC_INDEX_HOSTS, over HTTPS) are read early; a
    page asked for that was not read early, or whose early read failed, is read when asked.
    ``reader`` makes the reader that reads them (in the thread: see the module note)."""

    def __init__(
        self,
        early: Sequence[tuple[str, str]],
        auth: AuthFor,
        reader: Callable[[], OfferReader],
    ) -> None:
        self._make = reader
        self._reader: OfferReader | None = None
        self._early = [
            pair
            for pair in early
            if urlsplit(pair[0]).scheme == "https"
            and urlsplit(pair[0]).hostname in _STATIC_INDEX_HOSTS
        ]
        self._read: Mapping[tuple[str, str], Offers] = {}
        # A daemon: a lock that fails in uv does not wait for pages it no longer needs.
        self._thread = threading.Thread(target=self._read_early, args=(auth,), daemon=True)
        self._thread.start()

    def _read_early(self, auth: AuthFor) -> None:
        try:
            self._reader = self._make()
            self._read = self._reader.offers(self._early, auth) if self._early else {}
        except Exception:  # read again when asked, where its error is reported
            self._read = {}

    @property
    def early(self) -> tuple[tuple[str, str], ...]:
        """The pages read early (the static indexes' of those named)."""
        return tuple(self._early)

    def offers(
        self, wanted: Sequence[tuple[str, str]], auth: AuthFor
    ) -> dict[tuple[str, str], Offers]:
        self._thread.join()
        # A page whose early read failed is read again now, like one never read early.
        done: dict[tuple[str, str], Offers] = {
            k: v for k, v in self._read.items() if k in wanted and not isinstance(v, str)
        }
        rest = [key for key in wanted if key not in done]
        if not rest:
            return done
        reader = self._reader if self._reader is not None else self._make()
        return {**done, **reader.offers(rest, auth)}
