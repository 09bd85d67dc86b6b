"""The scorecard: per moment (and breakdown group), volume, outcomes, completion with its
interval, escalation, repeat contact, self-service, times against the SLA, the target."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

from .. import engine
from ..analysis import scorecard as scorecard_analysis
from ..analysis.scorecard import rank_key, status
from ..spec.model import Target
from . import filters
from .base import Analysis, Column, Output, View
from .notices import small_counts

if TYPE_CHECKING:
    from ..workspace import Workspace

FINISHED = "finished attempts (attempts − in progress)"

COLUMNS = (
    Column("moment", "moment", keep=0),
    Column("journey", "journey", keep=4),
    Column("attempts", "attempts", "count", "attempts starting in the period", keep=0),
    Column("persons", "persons", "count", "distinct persons with an attempt", keep=3),
    Column("completion_rate", "completion", "rate", f"completed ÷ {FINISHED}",
           ci="completion_ci", keep=0),
    Column("on_target", "on target", "flag", "whether the moment's target metric meets its "
           "target value", keep=2),
    Column("status", "status", "text", "on target; near target: off, but the completion rate's "
           "95% interval reaches the target; off target; no target; no data", keep=1),
    Column("failure_rate", "failure rate", "rate", f"failed ÷ {FINISHED}", keep=1),
    Column("abandonment_rate", "abandonment rate", "rate", f"abandoned ÷ {FINISHED}", keep=2),
    Column("escalation_rate", "escalation rate", "rate", "escalated attempts (the escalated "
           "outcome, or a contact after a failed or abandoned self-service attempt) ÷ "
           f"{FINISHED}", keep=1),
    Column("repeat_contact_rate", "repeat contact rate", "rate", "contacts followed by another "
           "contact within the repeat-contact window ÷ contacts", keep=3),
    Column("self_service_rate", "self-service rate", "rate", "completed self-service attempts "
           f"that were not escalated ÷ {FINISHED}", keep=3),
    Column("duration_median_s", "median time", "seconds", "median time to complete, over "
           "completed attempts", keep=1),
    Column("duration_p90_s", "p90 time", "seconds", "90th percentile of the time to complete, "
           "over completed attempts", keep=2),
    Column("sla_s", "SLA", "seconds", "the moment's SLA", keep=3),
    Column("sla_met_rate", "SLA met", "rate", "completed within the SLA ÷ completed attempts "
           "(with an SLA)", keep=2),
    Column("attempts_short", "attempts short of target", "count", "the gap between the target "
           "metric and its target, on the wrong side, × the attempts that rate is over "
           "(rounded); 0 on target, empty without a target on a rate", keep=1),
    Column("owner", "owner", "text", "who owns the moment (its `owner` in the workspace)", keep=3),
)


class Params(filters.Breakdown):
    """Filters and an optional breakdown."""


def compute(ws: Workspace, p: Params) -> Output:
    a = filters.attempts(ws.attempts(), p)
    keys = ["moment"]
    if p.by:
        a, col = filters.breakdown(a, p.by, {"journey", *scorecard_analysis.COLUMNS,
                                             *engine.outcome_counts(a, ["moment"]).columns})
        keys.append(col)
    # Neither filtered nor broken down: the persons per moment as the refresh keeps them
    # (tag_last), not a distinct count over every attempt (most of the scorecard's time).
    kept = ws._attempted_persons() if not p.by and filters.unfiltered(p) else None
    stats = engine.outcome_counts(a, keys, persons=kept is None).to_pandas()
    if kept is not None:
        stats = stats.merge(kept.to_pandas(), on="moment", how="left", validate="one_to_one")
    table = scorecard_analysis.scorecard(stats, ws.spec, keys)
    table["finished"] = table["attempts"] - table["in_progress"]
    return Output({"moments": table}, small_counts(table, "finished", keys, "finished attempts"))


ANALYSIS = Analysis(
    name="scorecard",
    title="Moment scorecard",
    doc="Per moment: volume, outcomes, completion rate with its 95% interval, escalation, "
        "repeat contact, self-service, times against the SLA, and the target.",
    params=Params,
    compute=compute,
    views=(View("moments", "Moment scorecard", COLUMNS),),
    examples=lambda ws: [{}, {"by": "channel"}],
)

#: How every surface ranks the scorecard's moments (the portfolio, the report).


def target_status(row: Mapping[Hashable, Any], metric: str, goal: float) -> str:
    """:func:`status` of a row against a target given by its metric and value."""
    return status(row, Target(metric=metric, value=goal))


__all__ = ["ANALYSIS", "COLUMNS", "rank_key", "status", "target_status"]
