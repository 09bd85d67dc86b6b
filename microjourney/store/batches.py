"""What arrived when: rows accepted, duplicate, rejected and withheld per source and UTC
minute of arrival, with the ``seq`` range of the events accepted (table ``batches``).

Events carry no arrival time of their own, only ``seq``, their place in the ingest order,
which only grows. A row here says that the events of ``source`` with ``seq`` from
``first_seq`` to ``last_seq`` arrived in ``minute``; that is how late-arriving events are
found (the ``data-quality`` analysis) without a column on every event. A file ingest adds
one row (:func:`record`: its counts, the minute it started); the collector keeps its counts
in memory and adds them once a minute, before the API reads the store and when it stops
(:class:`Tally`), because a statement of its own on each group commit would cost as much as
the commit (docs/metrics.md, "Data quality").

Counts are not personal data: the table holds no identifier, so erasure leaves it alone.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Protocol

import duckdb

from .db import LAST_SEQ

__all__ = ["Counts", "Tally", "last_seq", "minute", "record"]

log = logging.getLogger("microjourney.store")

#: Adds one row's counts to the row of its source and minute (or inserts it); the seq range
#: widens to hold both (NULL, when no event was accepted, leaves it as it was).
_ADD = """INSERT INTO batches VALUES ($source, $minute, $accepted, $duplicates, $rejected,
                                      $withheld, $first, $last)
    ON CONFLICT (source, minute) DO UPDATE SET
        accepted = batches.accepted + excluded.accepted,
        duplicates = batches.duplicates + excluded.duplicates,
        rejected = batches.rejected + excluded.rejected,
        withheld = batches.withheld + excluded.withheld,
        first_seq = least(batches.first_seq, excluded.first_seq),
        last_seq = greatest(batches.last_seq, excluded.last_seq)"""


def minute(at: datetime | None = None) -> datetime:
    """``at`` (default: now) in UTC, cut to the minute."""
    return (at or datetime.now(UTC)).astimezone(UTC).replace(second=0, microsecond=0)


def last_seq(con: duckdb.DuckDBPyConnection) -> int:
    """The largest ``seq`` given (0 before the first event; :data:`.db.LAST_SEQ`)."""
    return int(con.execute(LAST_SEQ["events"]).fetchall()[0][0])


def record(con: duckdb.DuckDBPyConnection, source: str, at: datetime, *, accepted: int,
           duplicates: int, rejected: int, withheld: int, after_seq: int, upto_seq: int) -> None:
    """Add what ``source`` delivered at ``at`` to its minute's row: the events accepted hold
    the ``seq`` after ``after_seq`` up to ``upto_seq``."""
    some = upto_seq > after_seq
    con.execute(_ADD, {"source": source, "minute": minute(at), "accepted": accepted,
                       "duplicates": duplicates, "rejected": rejected, "withheld": withheld,
                       "first": after_seq + 1 if some else None, "last": upto_seq if some else None})


class Counts(Protocol):
    """Running totals since a start (the collector's ``Totals``)."""

    accepted: int
    duplicates: int
    rejected: int
    withheld: int


def _values(counts: Counts) -> tuple[int, int, int, int]:
    return counts.accepted, counts.duplicates, counts.rejected, counts.withheld


class Tally:
    """The collector's counts for ``batches``, kept in memory and added once a minute.

    ``con``: a cursor of its own; ``seq``: the largest seq stored at the start. Call
    :meth:`tick` before each group commit with the running totals and the largest seq given
    so far (cheap: a clock read): when the minute has changed, what came since the last row
    is added as the previous minute's. :meth:`flush` adds it at once (before the store is
    read, and when the collector stops). A failed write is logged and tried again with
    the next; a crash loses at most the counts since the last row written, never events.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, source: str, seq: int) -> None:
        self._con, self._source = con, source
        self._lock = threading.Lock()
        self._minute = minute()
        self._written = (0, 0, 0, 0)  # the totals already in the table
        self._seq = seq  # the largest seq already in the table's ranges

    def tick(self, counts: Counts, seq: int, now: datetime | None = None) -> None:
        then = minute(now)
        if then != self._minute:
            self._write(_values(counts), seq, then)

    def flush(self, counts: Counts, seq: int) -> None:
        self._write(_values(counts), seq, None)

    def _write(self, totals: tuple[int, int, int, int], seq: int, then: datetime | None) -> None:
        """Add the totals since the last row to the current minute; ``then``: start a new one."""
        with self._lock:
            delta = tuple(t - w for t, w in zip(totals, self._written, strict=True))
            if any(delta) or seq > self._seq:
                try:
                    record(self._con, self._source, self._minute, accepted=delta[0],
                           duplicates=delta[1], rejected=delta[2], withheld=delta[3],
                           after_seq=self._seq, upto_seq=seq)
                except duckdb.Error as exc:  # the next tick or flush tries again
                    log.warning("collector/counts-failed %s", type(exc).__name__)
                    return
                self._written, self._seq = totals, max(seq, self._seq)
            if then is not None:
                self._minute = then
