"""The storing thread: journaled events into the events table, many groups at once.

Plain events with nothing to scrub are answered once they are in the journal
(:mod:`..store.journal`, synced to disk); :class:`Storer` then moves them into the events
table in its own thread, up to :data:`MAX_INSERT` at a time, so that DuckDB's commits and
checkpoints stay off the answer path. Whatever reads the store first waits for it
(:meth:`Storer.drain`); when more than :data:`MAX_UNSTORED` events are journaled and not
stored, new groups wait too (back-pressure).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..store.journal import Journal
from ..store.writer import write_plain

log = logging.getLogger("microjourney.server")

#: The source the collector's writes record (events, identities, quarantine).
SOURCE = "http"
#: Journaled events not yet stored, at most: beyond it, answers wait for the storing thread.
MAX_UNSTORED = 400_000
#: Journaled events stored in one insert, at most.
MAX_INSERT = 100_000


def store_left_over(con: duckdb.DuckDBPyConnection, journal: Journal) -> None:
    """Store what ``journal`` holds and the store does not (the server was killed after
    answering them); then empty the journal."""
    groups = list(journal.read())
    if groups:
        rows = pa.concat_tables(groups)
        seq = rows.column("seq")
        # By seq, not "after the largest stored": events that may hold personal data are
        # stored at once, so they can follow journaled events not stored yet.
        stored = con.execute("SELECT seq FROM events WHERE seq BETWEEN $lo AND $hi", {
            "lo": pc.min(seq).as_py(), "hi": pc.max(seq).as_py()}).fetchnumpy()["seq"]
        rows = rows.filter(pa.array(~np.isin(seq.to_numpy(), stored)))
        if rows.num_rows:
            write_plain(con, rows, source=SOURCE, scrub=False)
    journal.clear()


class Storer:
    """Moves journaled groups into the events table in a thread of its own (``con``: a
    cursor of its own); ``seq``: the largest seq stored when it starts."""

    def __init__(self, con: duckdb.DuckDBPyConnection, journal: Journal, seq: int) -> None:
        self.journal = journal
        self._unstored: deque[pa.Table] = deque()
        #: The last seq journaled, and the last stored.
        self.journaled = self.stored = seq
        #: Why the last insert failed (None: it did not); answers wait, the API is told.
        self.error: BaseException | None = None
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, args=(con,), name="microjourney-store",
                                        daemon=True)
        self._thread.start()

    def behind(self) -> bool:
        """Too many journaled events are not stored yet."""
        return self.journaled - self.stored > MAX_UNSTORED

    def write(self, rows: pa.Table, wait: bool = True) -> int:
        """Journal a group of plain events and hand it to the thread; returns the journal's
        ticket. ``wait``: wait while :meth:`behind`, and for the sync (else the caller syncs
        to the ticket before it answers)."""
        if wait:
            with self._cond:
                while self.behind():
                    if self.error is not None:
                        raise self.error
                    self._cond.wait(0.1)
        ticket = self.journal.write(rows)
        with self._cond:
            self._unstored.append(rows)
            self.journaled = rows.column("seq")[-1].as_py()
            self._cond.notify_all()
        if wait:
            self.journal.sync(ticket)
        return ticket

    def drain(self) -> None:
        """Return once every event journaled so far is in the events table; raises the
        thread's error while it cannot store."""
        with self._cond:
            target = self.journaled
            while self.stored < target:
                if self.error is not None:
                    raise self.error
                self._cond.wait(0.1)

    def close(self, timeout: float) -> None:
        """Store what is journaled, stop the thread and empty the journal if all is stored."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if not self._thread.is_alive() and self.stored == self.journaled:
            self.journal.clear()

    def _run(self, con: duckdb.DuckDBPyConnection) -> None:
        while True:
            with self._cond:
                while not self._unstored and not self._stopping:
                    self._cond.wait()
                if not self._unstored:
                    return
                groups, n = [], 0
                for group in self._unstored:  # a bounded insert: drain() waits for it
                    groups.append(group)
                    n += group.num_rows
                    if n >= MAX_INSERT:
                        break
            rows = pa.concat_tables(groups)
            try:  # journaled rows are plain and have nothing to scrub
                write_plain(con, rows, source=SOURCE, scrub=False)
            except Exception as exc:  # kept journaled and retried; the message may quote values
                log.error("store/journal-insert-failed (%s); retrying", type(exc).__name__)
                with self._cond:
                    self.error = exc
                    self._cond.notify_all()
                time.sleep(0.5)
                continue
            last = rows.column("seq")[-1].as_py()
            with self._cond:
                for _ in groups:
                    self._unstored.popleft()
                self.stored, self.error = last, None
                self._cond.notify_all()
            self.journal.stored(last)
