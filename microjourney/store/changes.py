"""The change playbook's records (table ``changes``): what changed in a moment and when.

Rows are workspace records, not personal data: erasure leaves them alone. A change is
checked before it gets here (:class:`microjourney.spec.changes.Change`, and the workspace
checks its moment and experiment); adding the same moment, day and title again returns
the change already kept instead of a second one.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import duckdb

__all__ = ["COLUMNS", "add", "listed", "remove"]

COLUMNS = ("change_id", "moment", "day", "kind", "title", "experiment", "note", "added_at", "source")


def add(con: duckdb.DuckDBPyConnection, *, moment: str, day: date, kind: str, title: str,
        experiment: str | None = None, note: str | None = None, source: str = "cli") -> tuple[str, bool]:
    """Keep a change; returns its id and whether it is new (False: the same moment, day and
    title were kept before, and that change's id is returned)."""
    found = con.execute("SELECT change_id FROM changes WHERE moment = ? AND day = ? AND title = ?",
                        [moment, day, title]).fetchall()
    if found:
        return str(found[0][0]), False
    ident = uuid.uuid4().hex[:12]
    con.execute("INSERT INTO changes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [ident, moment, day, kind, title, experiment, note, datetime.now(UTC), source])
    return ident, True


def listed(con: duckdb.DuckDBPyConnection, moment: str | None = None) -> list[dict[str, Any]]:
    """Every change kept (or ``moment``'s), by day then title."""
    rows = con.execute("SELECT * FROM changes WHERE ? IS NULL OR moment = ? ORDER BY day, title",
                       [moment, moment])
    names = [d[0] for d in rows.description]
    return [dict(zip(names, r, strict=True)) for r in rows.fetchall()]


def remove(con: duckdb.DuckDBPyConnection, change_id: str) -> bool:
    """Forget a change; False when there was none of that id."""
    gone = con.execute("DELETE FROM changes WHERE change_id = ? RETURNING change_id", [change_id])
    return bool(gone.fetchall())
