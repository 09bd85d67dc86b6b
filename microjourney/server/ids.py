"""Which event ids of a group are repeats: seen earlier in the group, or maybe stored.

The collector finds duplicates without scanning the stored ids on every commit: an index
of the 64-bit hashes of every stored id (:class:`IdIndex`, built once at start) says which
ids *may* be stored; only those are looked up in the store, exactly.
"""

from __future__ import annotations

import threading

import duckdb
import numpy as np
import pyarrow as pa

from .calls import id_hashes


class IdIndex:
    """The hashes of the stored event ids: which ids of a batch may already be stored.

    A bitmap of 2**27 bits (16 MB) answers most ids at once (a bit not set: not stored);
    only the few ids whose bit is set are searched for in the sorted hashes: those of the
    store and runs of those added since, merged now and then in a thread of their own."""

    _BITS = 27

    def __init__(self, events: duckdb.DuckDBPyRelation) -> None:
        hashes = [id_hashes(batch.column(0).to_pylist())
                  for batch in events.select("event_id").to_arrow_reader(1_000_000)]
        self._bitmap = np.zeros(1 << (self._BITS - 3), dtype=np.uint8)
        self._sorted = np.sort(np.concatenate([np.zeros(0, np.uint64), *hashes]))
        self._mark(self._sorted)
        self._chunks: list[np.ndarray] = []
        self._merge: _Merge | None = None

    def _slots(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        low = hashes & np.uint64((1 << self._BITS) - 1)
        return (low >> np.uint64(3)).astype(np.intp), (low & np.uint64(7)).astype(np.uint8)

    def _mark(self, hashes: np.ndarray) -> None:
        byte, bit = self._slots(hashes)
        np.bitwise_or.at(self._bitmap, byte, np.left_shift(np.uint8(1), bit))

    def maybe(self, hashes: np.ndarray) -> np.ndarray:
        """True where a hash is in the index (the id may be stored)."""
        byte, bit = self._slots(hashes)
        found = ((self._bitmap[byte] >> bit) & 1).astype(bool)
        if found.any():
            hits = np.flatnonzero(found)
            exact = np.zeros(len(hits), dtype=bool)
            for chunk in (self._sorted, *self._chunks):
                if len(chunk):
                    at = np.minimum(np.searchsorted(chunk, hashes[hits]), len(chunk) - 1)
                    exact |= chunk[at] == hashes[hits]
            found[hits] = exact
        return found

    def add(self, hashes: np.ndarray) -> None:
        """Take in the hashes of ids just stored; the sorted runs are merged in a thread."""
        if len(hashes):
            self._chunks.append(np.sort(hashes))
            self._mark(hashes)
        merge = self._merge
        if merge is not None and not merge.is_alive():  # done: its runs give way to its result
            self._merge = None
            if merge.into_stored:
                self._sorted = merge.result
                self._chunks = self._chunks[merge.runs:]
            else:
                self._chunks = [merge.result, *self._chunks[merge.runs:]]
        # Into the stored hashes only now and then: merging them costs their size.
        into_stored = sum(map(len, self._chunks)) > len(self._sorted) // 8
        if self._merge is None and (into_stored or len(self._chunks) > 16):
            self._merge = _Merge(self._sorted if into_stored else None, list(self._chunks))
            self._merge.start()


class _Merge(threading.Thread):
    """One sorted array of sorted runs (and the stored hashes, given ``stored``), made
    beside the event loop: at tens of millions of ids a merge takes seconds, and the
    loop answers requests meanwhile, looking in the runs as they are."""

    def __init__(self, stored: np.ndarray | None, runs: list[np.ndarray]) -> None:
        super().__init__(name="microjourney-id-merge", daemon=True)
        self.into_stored, self.runs = stored is not None, len(runs)
        self._parts = [*([] if stored is None else [stored]), *runs]
        self.result = np.zeros(0, np.uint64)

    def run(self) -> None:
        self.result = np.sort(np.concatenate(self._parts))  # NumPy lets go of the GIL to sort
        self._parts = []


def repeats(ids: pa.ChunkedArray, hashes: np.ndarray, order: np.ndarray) -> np.ndarray:
    """True for each id already seen earlier in ``order`` (by hash, then checked exactly)."""
    _, first = np.unique(hashes[order], return_index=True)
    again = np.ones(len(hashes), dtype=bool)
    again[order[first]] = False
    if again.any():  # the same hash: the same id, unless the hashes collide
        where = np.flatnonzero(again)
        firsts = dict(zip(hashes[order[first]].tolist(), order[first].tolist(), strict=True))
        text = ids.to_pylist()
        for i in where:
            if text[i] != text[firsts[int(hashes[i])]]:
                again[i] = False
    return again
