"""Answers of the analyses, kept for as long as the derived tables they read.

While served, analyses read the last committed refresh (refresher.py), so the same
question asked twice between two refreshes has the same answer. The server keeps the
answers of the analyses that read only derived tables, by (analysis, parameters) and the
refresh they read (its ``refreshed_at``), and after each refresh computes the most recently
asked again before anyone asks (``warm``): a dashboard's repeated questions are answered
from memory, and only ``stale_s`` changes, as time passes. An answer is kept only if it is
small (at most ``MAX_ROWS`` rows in all); an erasure empties the store of answers (they may
name the person).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

#: Answers kept (the most recently asked).
SIZE = 64
#: Rows an answer may hold, in all its tables, to be kept.
MAX_ROWS = 20_000
#: Answers computed again after each refresh (the most recently asked first).
WARM = 8
#: A kept answer: the ``refreshed_at`` it read, the answer, how to compute it.
_Kept = tuple[float, dict[str, Any], Callable[[Any], dict]]


class Results:
    """The kept answers: ``key`` → (the ``refreshed_at`` they read, the answer, how to
    compute it)."""

    def __init__(self, size: int = SIZE) -> None:
        self._items: OrderedDict[Hashable, _Kept] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: Hashable, at: float | None) -> dict[str, Any] | None:
        """The answer to ``key`` from the refresh made at ``at``, its ``stale_s`` as of now."""
        with self._lock:
            item = self._items.get(key)
            if item is None or at is None or item[0] != at:
                return None
            self._items.move_to_end(key)
        return _aged(item[1], at)

    def put(self, key: Hashable, at: float | None, answer: dict[str, Any],
            compute: Callable[[Any], dict]) -> None:
        if at is None or sum(len(rows) for rows in answer.get("tables", {}).values()) > MAX_ROWS:
            return
        with self._lock:
            self._items[key] = (at, answer, compute)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def warm(self, reader: Any, at: Callable[[], float | None], lock: threading.Lock,
             count: int = WARM) -> int:
        """Compute the ``count`` most recently asked answers again on ``reader`` (under
        ``lock``) for the refresh it reads now; returns how many were computed."""
        with self._lock:
            recent = list(self._items.items())[-count:]
        done = 0
        for key, (_, _, compute) in reversed(recent):
            with lock:
                now = at()
                if self.get(key, now) is None:
                    self.put(key, now, compute(reader), compute)
                    done += 1
        return done


def _aged(answer: dict[str, Any], at: float) -> dict[str, Any]:
    meta = answer.get("meta")
    if not isinstance(meta, dict) or "stale_s" not in meta:
        return answer
    return {**answer, "meta": {**meta, "stale_s": round(max(0.0, time.time() - at), 3)}}


__all__ = ["MAX_ROWS", "SIZE", "WARM", "Results"]
