"""The quarantine: rows rejected on the way in (files and the collector), newest first,
with the source, row number, field and reason; and the commonest reasons."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import Field

from .base import Analysis, Column, Output, Params, View

if TYPE_CHECKING:
    from ..workspace import Workspace

ROWS = (
    Column("source", "source", keep=0),
    Column("row", "row", "count", "row (line) number in the source", keep=1),
    Column("field", "field", keep=1),
    Column("reason", "reason", keep=0),
)
REASONS = (
    Column("source", "source", keep=0),
    Column("reason", "reason", keep=0),
    Column("rows", "rows", "count", keep=0),
)


class QuarantineParams(Params):
    limit: int = Field(20, ge=0, le=1_000_000, description="Rows to show.")
    source: str | None = Field(None, description="Only rows of this source (a file name, or "
                               "`http` for the collector's).")


def compute(ws: Workspace, p: QuarantineParams) -> Output:
    q = ws.quarantine()
    if p.source is not None:
        q = q.filter(q.source == p.source)
    total = int(q.count().to_pyarrow().as_py())
    # The newest file first, each file's rows in file order whichever check rejected them
    # (a reader's and the writer's rejects of one ingest are stored moments apart, sometimes
    # across a second). Read through Arrow: a missing row or field stays missing.
    q = q.mutate(_latest=q.received_at.max().over(group_by=q.source))
    rows = q.order_by([q._latest.desc(), q.source, q.row]).limit(p.limit).drop("_latest")
    rows = rows.to_pyarrow().to_pylist()
    for r in rows:
        r["raw"] = _raw(r["raw"])
    reasons = q.group_by(["source", "reason"]).aggregate(rows=q.count())
    reasons = reasons.order_by([reasons.rows.desc(), "source", "reason"]).limit(50)
    table = pd.DataFrame(rows, columns=q.columns) if rows else pd.DataFrame(columns=q.columns)
    return Output({"rows": table, "reasons": reasons.to_pandas()}, meta={"total": total})


def _raw(text: str | None) -> Any:
    """A quarantined row's raw JSON (at most 4,096 characters) as a value, or as the text
    itself when it does not parse (cut, or nested deeper than a parser goes)."""
    try:
        return None if text is None else json.loads(text)
    except (ValueError, RecursionError):
        return text


ANALYSIS = Analysis(
    name="quarantine",
    title="Quarantine",
    doc="Rejected rows, newest first: source file, row number, field and reason; and the "
        "commonest reasons per source.",
    params=QuarantineParams,
    compute=compute,
    views=(View("rows", "Quarantine: {total:,} rows", ROWS),
           View("reasons", "Commonest reasons", REASONS)),
    engines=False,
    report=False,
    cli=False,
)
