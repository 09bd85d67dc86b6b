"""Moments' baselines, frozen on request (table ``baselines``): the figures of a period kept
with the day they were frozen, so that the weekly review compares each week with what the
moment was before the work on it began — not with a baseline that moves with the data.

Rows are workspace figures (rates, counts, seconds), not personal data: erasure leaves them
alone. The latest frozen baseline of a moment is its baseline.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import duckdb

__all__ = ["freeze", "latest", "listed"]


def freeze(con: duckdb.DuckDBPyConnection, moment: str, since: datetime, until: datetime,
           figures: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
    """Keep ``figures`` (JSON values) as ``moment``'s baseline over ``since`` to ``until``."""
    when = (at or datetime.now(UTC)).astimezone(UTC)
    con.execute("INSERT INTO baselines VALUES (?, ?, ?, ?, ?)",
                [moment, when, since, until, json.dumps(figures, allow_nan=False)])
    return {"moment": moment, "frozen_at": when, "since": since, "until": until, "figures": figures}


def listed(con: duckdb.DuckDBPyConnection, moment: str | None = None) -> list[dict[str, Any]]:
    """Every baseline frozen (or ``moment``'s), newest first."""
    rows = con.execute("SELECT moment, frozen_at, since, until, CAST(figures AS VARCHAR) FROM baselines "
                       "WHERE ? IS NULL OR moment = ? ORDER BY frozen_at DESC, moment",
                       [moment, moment]).fetchall()
    return [{"moment": m, "frozen_at": f, "since": s, "until": u, "figures": json.loads(j)}
            for m, f, s, u, j in rows]


def latest(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    """Each moment's latest baseline, by moment."""
    out: dict[str, dict[str, Any]] = {}
    for row in listed(con):
        out.setdefault(row["moment"], row)
    return out
