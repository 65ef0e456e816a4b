"""A re-resolve of the held-back check (heldback.py), asked of uv's cache first. Pure.

The api layer passes the probe (uv on the throw-away project, online or ``--offline``) and
what uv's cache says of its pages (io.uv.page_clock, io.uv.page_times); this module decides
when the cache's answer can stand for the index's. Decision 55 says why each rule is there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from packaging.pylock import Pylock
from packaging.requirements import Requirement

from envlock.errors import EnvlockError, UvResolutionError
from envlock.heldback import Probe
from envlock.uv_explain import explanation_words


class CachedProbe(Protocol):
    """A Probe that can also answer from uv's cache alone (``offline``: no request sent;
    UvResolutionError when no version resolves, another EnvlockError when the cache lacks a
    page it needs)."""

    def __call__(self, packages: tuple[Requirement, ...], *, offline: bool = False) -> Pylock: ...


def cache_first(
    probe: CachedProbe,
    lock: Pylock,
    *,
    since: float,
    written: Callable[[Iterable[str]], Mapping[str, float]],
) -> Probe:
    """``probe``, asked first from uv's cache; its answer is taken only when it is that no
    version resolves, and rests on pages this lock read. Anything else asks the indexes.

    A re-resolve follows the resolve it tests by seconds and reads mostly the same index pages;
    from an index that sends no caching headers (a mirror, a proxy), uv fetches each of them
    again (about 0.6 s of a 0.7 s re-resolve of the mission's stack through such a proxy).
    ``since`` is when the lock began, by the cache's clock (io.uv.page_clock); ``written`` says
    when uv's cache wrote the pages of the names it is given (io.uv.page_times).

    - A lock from the cache alone is never taken: uv, offline, passes over a version whose page
      or metadata it lacks without a word, so the answer can be an older one than the index's.
    - A cache that lacks a page for a failure says so (the probe raises another EnvlockError
      than UvResolutionError): the indexes answer.
    - uv's explanation of a failure (all of it: ``UvResolutionError.explanation``, which the
      shown detail may cut short) speaks of packages; every word of it that names a page of
      the cache (uv_explain.explanation_words) must be a package of ``lock`` (its pages were
      read for it, or were fresh by their index's own caching headers), one an earlier answer
      from the indexes had, or a page written since ``since``."""
    known = {p.name for p in lock.packages}

    def cache_then_index(packages: tuple[Requirement, ...]) -> Pylock:
        try:
            probe(packages, offline=True)
        except UvResolutionError as exc:  # uv's whole message, not the part shown
            words = explanation_words(exc.explanation) - known
            if all(when >= since for when in written(sorted(words)).values()):
                raise
        except EnvlockError:  # the cache lacks a page (or an answer of another kind)
            pass
        found = probe(packages)
        known.update(p.name for p in found.packages)
        return found

    return cache_then_index
