"""The delivery log of alert webhooks: one row per alert and URL (table ``deliveries``).

A row is *claimed* (status ``sending``) before the alert is sent to the URL, in a statement
committed on its own, and *finished* (``delivered`` or ``failed``, with the tries made, the
last HTTP status and the time) once the sender is done. A claim only succeeds where no row
exists, so an alert goes to a URL at most once, whoever else is sending and whatever crashed:
a row left ``sending`` by a crash is never sent again (docs/webhooks.md).

The table holds workspace records, no personal data: erasure leaves it alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

__all__ = ["Row", "claim", "finish", "rows"]

#: Inserts a claim unless a row of the alert and URL exists; answers the rows inserted.
_CLAIM = """INSERT INTO deliveries VALUES (?, ?, 'sending', 0, NULL, ?, NULL)
    ON CONFLICT DO NOTHING RETURNING alert_id"""

_FINISH = """UPDATE deliveries SET status = ?, tries = ?, answer = ?, finished_at = ?
    WHERE alert_id = ? AND url = ? AND status = 'sending'"""

_ROWS = """SELECT alert_id, url, status, tries, answer, claimed_at, finished_at FROM deliveries
    WHERE ? IS NULL OR alert_id = ?
    ORDER BY claimed_at DESC, alert_id, url LIMIT ?"""

#: The largest number of rows :func:`rows` answers.
MAX_ROWS = 10_000


@dataclass(frozen=True)
class Row:
    """One row of the delivery log: ``answer`` is the last HTTP status (None: no answer)."""

    alert_id: str
    url: str
    status: str
    tries: int
    answer: int | None
    claimed_at: datetime
    finished_at: datetime | None


def _now(at: datetime | None) -> datetime:
    return (at or datetime.now(UTC)).astimezone(UTC)


def claim(con: duckdb.DuckDBPyConnection, alert_id: str, url: str, at: datetime | None = None) -> bool:
    """Claim the delivery of ``alert_id`` to ``url``: True when this call inserted its row
    (``sending``), False when a row was there already (or another sender claimed it at the
    same moment). The insert runs on a cursor of its own, so it is committed before this
    returns even when ``con`` is inside a transaction."""
    cur = con.cursor()
    try:
        try:
            return bool(cur.execute(_CLAIM, [alert_id, url, _now(at)]).fetchall())
        except (duckdb.ConstraintException, duckdb.TransactionException):
            # A concurrent claim committed first: ours conflicts. Anything else is raised.
            taken = cur.execute("SELECT count(*) FROM deliveries WHERE alert_id = ? AND url = ?",
                                [alert_id, url]).fetchall()[0][0]
            if taken:
                return False
            raise
    finally:
        cur.close()


#: Tries of :func:`finish` while a concurrent claim of the same row conflicts.
_FINISH_TRIES = 6


def finish(con: duckdb.DuckDBPyConnection, alert_id: str, url: str, *, status: str, tries: int,
           answer: int | None, at: datetime | None = None) -> None:
    """Record how the claimed delivery of ``alert_id`` to ``url`` ended (``delivered`` or
    ``failed``): the tries made, the last HTTP status (None: none came) and when. Committed
    on a cursor of its own, as :func:`claim` is; a row no longer ``sending`` is left as it is."""
    cur = con.cursor()
    try:
        for attempt in range(_FINISH_TRIES):
            try:
                cur.execute(_FINISH, [status, tries, answer, _now(at), alert_id, url])
                return
            except duckdb.TransactionException:
                # Another sender's claim of the same row is committing at this instant
                # (DuckDB refuses the update until it has): try again shortly.
                if attempt == _FINISH_TRIES - 1:
                    raise
                time.sleep(0.02 * 2**attempt)
    finally:
        cur.close()


def rows(con: duckdb.DuckDBPyConnection, *, alert_id: str | None = None,
         limit: int = 1_000) -> list[Row]:
    """The delivery log, newest claim first: every row, or those of ``alert_id``; at most
    ``limit`` (up to :data:`MAX_ROWS`)."""
    limit = max(0, min(limit, MAX_ROWS))
    found = con.execute(_ROWS, [alert_id, alert_id, limit]).fetchall()
    return [Row(*r) for r in found]
