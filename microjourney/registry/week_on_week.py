"""Week on week: each moment's completion in the last ``days`` days against the ``days``
before, the change with its interval and whether it is beyond chance (Holm across the
moments), ranked so that what moved most comes first, and that as a headline."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import ibis
import pandas as pd
from pydantic import Field

from .. import engine
from ..analysis import week_on_week as analysis
from . import filters
from .base import Analysis, Column, Output, View
from .notices import small_counts

if TYPE_CHECKING:
    from ..workspace import Workspace

COLUMNS = (
    Column("moment", "moment", keep=0),
    Column("journey", "journey", keep=3),
    Column("completion_before", "completion before", "rate", "completed ÷ finished attempts "
           "started in the earlier window", keep=1),
    Column("completion_now", "completion now", "rate", "completed ÷ finished attempts started "
           "in the last window", keep=0),
    Column("change", "change", "points", "completion now − before, with Newcombe's 95% "
           "interval", ci="change_ci", keep=0),
    Column("moved", "moved", "text", "up or down when the change is beyond chance (Holm-adjusted "
           "p < 0.05 across the moments)", keep=0),
    Column("p_adjusted", "p (Holm)", "p", "the two-proportion z-test's p-value, adjusted by "
           "Holm's method across the moments", keep=1),
    Column("p_value", "p", "p", "the two-proportion z-test's p-value, unadjusted", keep=3),
    Column("finished_before", "finished before", "count", "finished attempts (attempts − in "
           "progress) started in the earlier window", keep=2),
    Column("finished_now", "finished now", "count", "finished attempts started in the last "
           "window", keep=2),
)


class Params(filters.Filters):
    """The filters, and the length of each window."""

    days: int = Field(7, ge=1, le=91, description="Days in each window: the last DAYS days "
                      "before the end (`until`, else the end of the data) against the DAYS "
                      "before those.")


def compute(ws: Workspace, p: Params) -> Output:
    end_ms = ws.as_of_ms()
    end = (filters.when(p.until) if p.until else
           pd.Timestamp(end_ms or 0, unit="ms", tz="UTC").to_pydatetime() + timedelta(milliseconds=1))
    now_from, before_from = end - timedelta(days=p.days), end - timedelta(days=2 * p.days)
    a = filters.attempts(ws.attempts(), p)
    a = a.filter((a.start_ts >= before_from) & (a.start_ts < end))
    a = a.mutate(window=ibis.ifelse(a.start_ts >= now_from, "now", "before"))
    stats = engine.outcome_counts(a, ["moment", "window"]).to_pandas()
    stats["finished"] = stats["attempts"] - stats["in_progress"]
    counts = pd.DataFrame({"moment": list(ws.moments)})
    for side in ("before", "now"):
        one = stats[stats["window"] == side].set_index("moment")
        counts[f"finished_{side}"] = counts["moment"].map(one["finished"]).fillna(0).astype("int64")
        counts[f"completed_{side}"] = counts["moment"].map(one["completed"]).fillna(0).astype("int64")
    counts["journey"] = [ws.spec.journey_of(m) for m in counts["moment"]]
    table = analysis.compare(counts)
    rows = table.to_dict("records")
    warnings = [*small_counts(table, "finished_before", ["moment"], "finished attempts before"),
                *small_counts(table, "finished_now", ["moment"], "finished attempts now")]
    return Output({"moments": table}, warnings,
                  meta={"headline": analysis.headline(rows, p.days),
                        "windows": {"before": [before_from.isoformat(), now_from.isoformat()],
                                    "now": [now_from.isoformat(), end.isoformat()]}})


ANALYSIS = Analysis(
    name="week-on-week",
    title="Week on week",
    doc="Each moment's completion in the last 7 days (or DAYS) against the 7 before: the change "
        "in points with its 95% interval, whether it is beyond chance (Holm across the moments), "
        "what moved most first, and a headline.",
    params=Params,
    compute=compute,
    views=(View("moments", "Completion week on week", COLUMNS),),
    examples=lambda ws: [{}, {"days": 14}],
)
