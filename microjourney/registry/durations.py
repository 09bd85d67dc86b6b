"""The time to complete a moment, as a distribution against its SLA: completed attempts
counted in time bands, with the share within the SLA."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd
from pydantic import Field

from . import filters
from .base import Analysis, Column, Notice, Output, View

if TYPE_CHECKING:
    from ..workspace import Workspace

#: The upper edges of the time bands, in seconds (the last band is open).
EDGES = (5, 10, 15, 30, 45, 60, 90, 120, 180, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)

COLUMNS = (
    Column("from_s", "from", "seconds", "the band's lower edge (exclusive; 0 inclusive)", keep=0),
    Column("to_s", "to", "seconds", "the band's upper edge (inclusive); empty: open", keep=0),
    Column("completed", "completed", "count", "completed attempts whose time to complete falls "
           "in the band", keep=0),
    Column("share", "share", "rate", "completed in the band ÷ all completed attempts", keep=0),
    Column("cumulative", "cumulative", "rate", "completed up to the band's upper edge ÷ all "
           "completed attempts", keep=1),
    Column("within_sla", "within SLA", "flag", "whether the whole band is within the moment's "
           "SLA", keep=1),
)


class Params(filters.Filters):
    moment: str = Field(description="Moment name.", json_schema_extra={"argument": True})


def compute(ws: Workspace, p: Params) -> Output:
    sla = ws.moment(p.moment).sla
    a = filters.attempts(ws.attempts(p.moment), p)
    done = a.filter(a.outcome == "completed")
    # Bands closed on the right, as the SLA is met at exactly the SLA (duration <= sla).
    band = done.duration_s.bucket([0, *EDGES], closed="right", include_over=True)
    counts = done.group_by(band=band).aggregate(completed=done.count()).to_pandas()
    total = int(counts["completed"].sum()) if len(counts) else 0
    lows, highs = (0, *EDGES), (*EDGES, None)
    found = dict(zip(counts["band"].astype(int), counts["completed"].astype(int), strict=True))
    rows = []
    running = 0
    for i, (low, high) in enumerate(zip(lows, highs, strict=True)):
        n = found.get(i, 0)
        running += n
        rows.append({"from_s": float(low), "to_s": None if high is None else float(high),
                     "completed": n, "share": n / total if total else math.nan,
                     "cumulative": running / total if total else math.nan,
                     "within_sla": None if sla is None else (high is not None and high <= sla)})
    table = pd.DataFrame(rows)
    last = max((i for i, r in enumerate(rows) if r["completed"]), default=-1)
    table = table.iloc[:last + 1] if last >= 0 else table.iloc[:0]
    notices = [] if total else [Notice("no-completed", f"{p.moment}: no completed attempt",
                                       {"moment": p.moment})]
    return Output({"bands": table.reset_index(drop=True)}, notices,
                  meta={"sla_s": sla, "completed": total})


ANALYSIS = Analysis(
    name="durations",
    title="Time to complete",
    doc="A moment's completed attempts counted in bands of time to complete, with their share, "
        "the cumulative share and whether each band is within the SLA.",
    params=Params,
    compute=compute,
    views=(View("bands", "Time to complete", COLUMNS),),
    examples=lambda ws: [{"moment": m} for m in list(ws.moments)[:1]],
    report=False,  # per moment: the dashboard's moment page shows it
)

__all__ = ["ANALYSIS"]
