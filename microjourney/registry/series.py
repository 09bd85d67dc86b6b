"""A moment's series (or every moment's): attempts, outcomes and completion (with its
interval) per UTC day or ISO week of the attempts' start, optionally per breakdown group."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from .. import engine
from ..analysis import scorecard as scorecard_analysis
from . import filters
from .base import Analysis, Column, Output, View
from .notices import small_counts

if TYPE_CHECKING:
    from ..workspace import Workspace

COLUMNS = (
    Column("moment", "moment", keep=1),
    Column("period", "period", "text", "the UTC day, or the Monday of the ISO week, the "
           "attempts started in", keep=0),
    Column("attempts", "attempts", "count", "attempts starting in the period", keep=0),
    Column("completed", "completed", "count", keep=1),
    Column("failed", "failed", "count", keep=2),
    Column("abandoned", "abandoned", "count", keep=2),
    Column("escalated", "escalated", "count", "attempts with the escalated outcome", keep=2),
    Column("completion_rate", "completion", "rate",
           "completed ÷ finished attempts (attempts − in progress)",
           ci="completion_ci", keep=0),
    Column("failure_rate", "failure rate", "rate",
           "failed ÷ finished attempts (attempts − in progress)", keep=1),
)


class Params(filters.Series):
    moment: str | None = Field(None, description="Moment name (default: every moment).",
                               json_schema_extra={"argument": True})


def compute(ws: Workspace, p: Params) -> Output:
    a = filters.attempts(ws.attempts(p.moment), p)
    keys = ["moment", "period"]
    if p.by:
        a, col = filters.breakdown(a, p.by, {"period", *scorecard_analysis.SERIES})
        keys.append(col)
    unit = "D" if p.every == "day" else "W"
    a = a.mutate(period=a.start_ts.truncate(unit).date())
    stats = engine.outcome_counts(a, keys).order_by(keys).to_pandas()
    table = scorecard_analysis.series(stats, keys)
    return Output({"periods": table},
                  small_counts(table, "finished", keys[1:], "finished attempts"))


ANALYSIS = Analysis(
    name="series",
    title="Series",
    doc="A moment's (or every moment's) attempts, outcomes and completion rate with its 95% "
        "interval per UTC day or ISO week, optionally per breakdown group.",
    params=Params,
    compute=compute,
    views=(View("periods", "Series", COLUMNS),),
    examples=lambda ws: [{"every": "week"}] + [{"moment": m} for m in list(ws.moments)[:1]] + [
        {"moment": m, "every": "week", "by": "channel"} for m in list(ws.moments)[:1]],
)
