"""Answers of the analyses, kept for as long as the derived tables they read.

While served, analyses read the last committed refresh (refresher.py), so the same
question asked twice while the tables stay the same has the same answer. The server keeps
the answers of the analyses that read only derived tables, by (analysis, parameters) and
the *version* of the tables they read (what the refresh took in: the stored data's marks,
the definitions and the end of the data; a refresh that finds nothing new keeps the
version), and after each refresh that changed them computes the most recently asked again
before anyone asks (``warm``): a dashboard's repeated questions are answered from memory,
and only ``refreshed_at`` and ``stale_s`` move, to the latest refresh that found the tables
current. An answer is kept only if it is small (at most ``MAX_ROWS`` rows in all); an
erasure empties the store of answers (they may name the person).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Any

#: Answers kept (the most recently asked): a dashboard page asks up to ten analyses, and a
#: person trying filters adds ten answers a page; 64 lost the home page's within minutes.
SIZE = 256
#: Rows an answer may hold, in all its tables, to be kept.
MAX_ROWS = 20_000
#: Answers computed again after each refresh (the most recently asked first).
WARM = 8
#: A kept answer: the version of the tables it read, the answer, how to compute it.
_Kept = tuple[Hashable, dict[str, Any], Callable[[Any], dict]]
#: The tables a reader reads now: their version and when a refresh last found them current.
Tables = tuple[Hashable | None, float | None]


class Results:
    """The kept answers: ``key`` → (the version of the tables they read, the answer, how to
    compute it)."""

    def __init__(self, size: int = SIZE) -> None:
        self._items: OrderedDict[Hashable, _Kept] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: Hashable, tables: Tables) -> dict[str, Any] | None:
        """The answer to ``key`` from the ``tables`` (version, refreshed at) read now, with
        its ``refreshed_at`` and ``stale_s`` as of that refresh."""
        version, at = tables
        with self._lock:
            item = self._items.get(key)
            if item is None or version is None or item[0] != version:
                return None
            self._items.move_to_end(key)
        return item[1] if at is None else _aged(item[1], at)

    def put(self, key: Hashable, tables: Tables, answer: dict[str, Any],
            compute: Callable[[Any], dict]) -> None:
        version = tables[0]
        if version is None or sum(len(rows) for rows in answer.get("tables", {}).values()) > MAX_ROWS:
            return
        with self._lock:
            self._items[key] = (version, answer, compute)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def warm(self, reader: Any, tables: Callable[[], Tables], lock: threading.Lock,
             count: int = WARM) -> int:
        """Compute the ``count`` most recently asked answers again on ``reader`` (under
        ``lock``) if the ``tables()`` it reads now changed; returns how many were computed."""
        with self._lock:
            recent = list(self._items.items())[-count:]
        done = 0
        for key, (_, _, compute) in reversed(recent):
            with lock:
                now = tables()
                if self.get(key, now) is None:
                    self.put(key, now, compute(reader), compute)
                    done += 1
        return done


def _aged(answer: dict[str, Any], at: float) -> dict[str, Any]:
    """``answer`` as of the refresh at ``at`` (which found its tables current)."""
    meta = answer.get("meta")
    if not isinstance(meta, dict) or "stale_s" not in meta:
        return answer
    when = datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")
    return {**answer, "meta": {**meta, "refreshed_at": when,
                               "stale_s": round(max(0.0, time.time() - at), 3)}}


__all__ = ["MAX_ROWS", "SIZE", "WARM", "Results", "Tables"]
