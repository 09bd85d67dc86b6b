"""Answers of the analyses, kept for as long as the derived tables they read.

While served, analyses read the last committed refresh (refresher.py), so the same
question asked twice while the tables stay the same has the same answer. The server keeps
the answers of the analyses that read only derived tables, by (analysis, parameters) and
the *version* of the tables they read (what the refresh took in: the stored data's marks,
the definitions and the end of the data; a refresh that finds nothing new keeps the
version), and after each refresh that changed them computes the most recently asked again
before anyone asks (``warm``): a dashboard's repeated questions are answered from memory,
and only ``refreshed_at`` and ``stale_s`` move, to the latest refresh that found the tables
current. While a refresh and the warming after it run, a question already answered gets the
last answer kept (:meth:`Results.latest`), as of the refresh that made its tables: the answer
says how stale it is, and nobody waits for a computation the warming is about to do. An
answer is kept only if it is small (at most ``MAX_ROWS`` rows in all); an erasure empties
the store of answers (they may name the person).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

#: Answers kept (the most recently asked): a dashboard page asks up to ten analyses, and a
#: person trying filters adds ten answers a page; 64 lost the home page's within minutes.
SIZE = 256
#: Rows an answer may hold, in all its tables, to be kept.
MAX_ROWS = 20_000
#: Answers computed again after each refresh (the most recently asked first).
WARM = 8
#: A kept answer: the version of the tables it read, the answer, how to compute it, and when
#: a refresh last found those tables current (epoch seconds; None: not known).
_Kept = tuple[Hashable, dict[str, Any], Callable[[Any], dict], float | None]
#: The tables a reader reads now: their version and when a refresh last found them current.
Tables = tuple[Hashable | None, float | None]


class Results:
    """The kept answers: ``key`` → (the version of the tables they read, the answer, how to
    compute it)."""

    def __init__(self, size: int = SIZE) -> None:
        self._items: OrderedDict[Hashable, _Kept] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()
        #: The last two versions of the tables answers were read from: while a refresh
        #: renews them, an answer from either is given (:meth:`latest`), never an older one.
        self._versions: deque[Hashable] = deque(maxlen=2)

    def _saw(self, version: Hashable) -> None:
        if not self._versions or self._versions[-1] != version:
            self._versions.append(version)

    def get(self, key: Hashable, tables: Tables) -> dict[str, Any] | None:
        """The answer to ``key`` from the ``tables`` (version, refreshed at) read now, with
        its ``refreshed_at`` and ``stale_s`` as of that refresh."""
        version, at = tables
        with self._lock:
            item = self._items.get(key)
            if item is None or version is None or item[0] != version:
                return None
            self._items[key] = (*item[:3], at if at is not None else item[3])
            self._items.move_to_end(key)
            self._saw(version)
        return item[1] if at is None else _aged(item[1], at)

    def latest(self, key: Hashable) -> dict[str, Any] | None:
        """The last answer kept for ``key`` if it read the tables of the last two versions
        answers were read from, as of the last refresh that found them current (for the
        time a refresh renews them); else None."""
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] not in self._versions:
                return None
        return item[1] if item[3] is None else _aged(item[1], item[3])

    def put(self, key: Hashable, tables: Tables, answer: dict[str, Any],
            compute: Callable[[Any], dict]) -> None:
        version = tables[0]
        if version is None or sum(len(rows) for rows in answer.get("tables", {}).values()) > MAX_ROWS:
            return
        with self._lock:
            self._items[key] = (version, answer, compute, tables[1])
            self._saw(version)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def warm(self, reader: Any, tables: Callable[[], Tables], lock: AbstractContextManager[Any],
             count: int = WARM) -> int:
        """Compute the ``count`` most recently asked answers again on ``reader`` (under
        ``lock``) if the ``tables()`` it reads now changed; returns how many were computed."""
        with self._lock:
            recent = list(self._items.items())[-count:]
        done = 0
        for key, (_, _, compute, _) in reversed(recent):
            with lock:
                now = tables()
                if self.get(key, now) is None:
                    self.put(key, now, compute(reader), compute)
                    done += 1
        return done


class Reading:
    """The reader's lock, and one read transaction on its connection for as long as it is
    held: an answer computed under it, and the version of the tables it is kept under, read
    one committed refresh, even when the next refresh commits meanwhile (each statement
    would otherwise read the latest commit, and an answer of several statements, or its
    version read before it, could straddle two refreshes)."""

    def __init__(self, con: Any) -> None:
        self._con, self._lock = con, threading.Lock()

    def __enter__(self) -> Reading:
        self._lock.acquire()
        try:
            self._con.execute("BEGIN TRANSACTION")
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._con.execute("ROLLBACK")  # it only read
        finally:
            self._lock.release()


def _aged(answer: dict[str, Any], at: float) -> dict[str, Any]:
    """``answer`` as of the refresh at ``at`` (which found its tables current)."""
    meta = answer.get("meta")
    if not isinstance(meta, dict) or "stale_s" not in meta:
        return answer
    when = datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")
    return {**answer, "meta": {**meta, "refreshed_at": when,
                               "stale_s": round(max(0.0, time.time() - at), 3)}}


__all__ = ["MAX_ROWS", "SIZE", "WARM", "Reading", "Results", "Tables"]
