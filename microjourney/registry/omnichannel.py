"""Omnichannel consistency: each moment across the channels its attempts start in —
completion, time to complete, escalation and CSAT per channel — with a consistency score,
the worst channel and its gap to the best other one with its interval, beyond chance or not
(Holm over every pair of channels compared), and the channel that escalates most
(docs/omnichannel.md).

The engine returns per (moment, channel) sufficient statistics only: attempts, finished,
completed, escalated, the completed attempts' n, sum, sum of squares and median of the time
to complete, and the satisfied and all CSAT answers linked to the channel's attempts;
:mod:`microjourney.analysis.omnichannel` does the rest."""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis
import pandas as pd
from ibis.expr.types import Table
from pydantic import Field

from ..analysis import omnichannel as analysis
from ..vocabulary import CHANNELS
from . import filters
from .base import Analysis, Column, Notice, Output, View
from .experiment import survey_scores

if TYPE_CHECKING:
    from ..workspace import Workspace

FINISHED = "finished attempts (attempts − in progress) started in the channel"
JUDGED = "channels with at least MIN_FINISHED (default 30) finished attempts"

CHANNEL_COLUMNS = (
    Column("moment", "moment", keep=0),
    Column("channel", "channel", "text", "the channel of the attempt's start event", keep=0),
    Column("attempts", "attempts", "count", "attempts started in the channel", keep=3),
    Column("finished", "finished", "count", FINISHED, keep=0),
    Column("completion", "completion", "rate", f"completed ÷ {FINISHED}; Wilson 95% interval",
           ci="completion_ci", keep=0),
    Column("gap_to_best", "vs best", "points", "completion − the highest completion among the "
           f"moment's judged channels ({JUDGED})", keep=1),
    Column("duration_median_s", "median time", "seconds", "median time to complete, over the "
           "channel's completed attempts", keep=1),
    Column("duration_mean_s", "mean time", "seconds", "mean time to complete, over the channel's "
           "completed attempts; Student's t 95% interval", ci="duration_ci", keep=3),
    Column("escalation_rate", "escalation", "rate", "escalated attempts (the escalated outcome, "
           f"or a contact after a failed or abandoned self-service attempt) ÷ {FINISHED}",
           ci="escalation_ci", keep=1),
    Column("csat", "CSAT", "rate", "CSAT answers of 4–5 ÷ CSAT answers linked to the channel's "
           "attempts (where a survey of the moment asks CSAT); Wilson 95% interval",
           ci="csat_ci", keep=2),
    Column("csat_answers", "CSAT answers", "count", "CSAT answers linked to the channel's "
           "attempts", keep=3),
    Column("judged", "judged", "flag", "at least MIN_FINISHED finished attempts: the channel "
           "counts for the consistency score, the worst channel and the most escalated", keep=2),
)
MOMENT_COLUMNS = (
    Column("moment", "moment", keep=0),
    Column("channels", "channels", "count", "channels with a finished attempt of the moment",
           keep=2),
    Column("judged", "judged", "count", JUDGED, keep=2),
    Column("consistency", "consistency", "score", "1 − the typical gap: 1 when every judged "
           "channel completes as often as every other", keep=0),
    Column("typical_gap", "typical gap", "points", "the root mean square of the completion gaps "
           "between every two judged channels, less what chance alone adds (each rate's "
           "binomial variance), never below 0", keep=1),
    Column("worst_channel", "worst channel", "text", "the judged channel with the lowest "
           "completion (a tie: the one with more finished attempts)", keep=0),
    Column("worst_completion", "its completion", "rate", f"completed ÷ {FINISHED}", keep=1),
    Column("best_channel", "best other", "text", "the judged channel with the highest completion "
           "besides the worst", keep=0),
    Column("best_completion", "best completion", "rate", f"completed ÷ {FINISHED}", keep=2),
    Column("gap", "gap", "points", "worst − best other channel's completion, with Newcombe's "
           "95% interval", ci="gap_ci", keep=0),
    Column("beyond_chance", "beyond chance", "flag", "the gap's Holm-adjusted p < 0.05", keep=0),
    Column("p_adjusted", "p (Holm)", "p", "the two-proportion z-test's p-value of the gap, "
           "adjusted by Holm's method over every pair of judged channels of every moment shown",
           keep=1),
    Column("p_value", "p", "p", "the two-proportion z-test's p-value of the gap, unadjusted",
           keep=3),
    Column("worst_finished", "worst finished", "count", "the worst channel's finished attempts",
           keep=3),
    Column("best_finished", "best finished", "count", "the best other channel's finished attempts",
           keep=3),
    Column("most_escalated", "most escalated", "text", "the judged channel with the highest "
           "escalation rate", keep=1),
    Column("most_escalated_rate", "its escalation", "rate", "escalated attempts ÷ finished "
           "attempts started in the most escalated channel", keep=2),
)


class Params(filters.Filters):
    """The filters, one moment or all, and the smallest channel judged."""

    moment: str | None = Field(None, description="Only this moment (default: every moment).",
                               json_schema_extra={"argument": True})
    min_finished: int = Field(analysis.MIN_FINISHED, ge=2, le=1_000_000, description=(
        "Channels with fewer finished attempts are shown but judged for nothing: not in the "
        "consistency score, never the worst or the most escalated channel."))


def statistics(a: Table) -> Table:
    """Per (moment, channel of the start event) of the attempts ``a``: attempts, finished,
    completed, escalated (of finished attempts: the escalated outcome or an escalation after
    the attempt), and the completed attempts' ``duration_n``, ``duration_sum``,
    ``duration_sum2`` and ``duration_median_s``."""
    finished = a.outcome != "in_progress"
    done = a.outcome == "completed"
    took = ibis.ifelse(done, a.duration_s.cast("float64"), 0.0)
    a = a.mutate(_finished=finished.cast("int64"), _done=done.cast("int64"),
                 _escalated=(finished & ((a.outcome == "escalated") | a.escalated.fill_null(False)))
                 .cast("int64"), _took=took)
    return a.group_by(["moment", "channel"]).aggregate(
        attempts=a.count(),
        finished=a._finished.sum(),
        completed=a._done.sum(),
        escalated=a._escalated.sum(),
        duration_n=(done & a.duration_s.notnull()).cast("int64").sum(),
        duration_sum=a._took.sum(),
        duration_sum2=(a._took * a._took).sum(),
        duration_median_s=a.duration_s.median(where=done),
    )


def csat_statistics(ws: Workspace, a: Table, moments: list[str]
                    ) -> tuple[pd.DataFrame | None, set[str]]:
    """Per (moment, channel) of the attempts ``a``: the CSAT answers of 4–5
    (``csat_satisfied``) and all CSAT answers (``csat_answers``) linked to them, and the
    moments some survey of which asks CSAT (None and none when no survey of ``moments``
    does)."""
    answers = survey_scores(ws, moments, ("csat",))
    if answers is None:
        return None, set()
    asking = [s for s in ws.spec.surveys if s.moment in moments
              and any(q.type == "csat" for q in s.questions)]
    kept = a.select(_attempt=a.attempt_id, _moment=a.moment, _channel=a.channel)
    j = answers.inner_join(kept, answers.attempt_id == kept._attempt)
    j = j.select(moment=j._moment, channel=j._channel, satisfied=j.satisfied)
    out: pd.DataFrame = j.group_by(["moment", "channel"]).aggregate(
        csat_satisfied=j.satisfied.sum(), csat_answers=j.count()).to_pandas()
    return out, {str(s.moment) for s in asking}


def compute(ws: Workspace, p: Params) -> Output:
    names = [p.moment] if p.moment is not None else list(ws.moments)
    a = filters.attempts(ws.attempts(p.moment), p)
    stats = statistics(a).to_pandas()
    csat, asked = csat_statistics(ws, a, names)
    if csat is not None:
        stats = stats.merge(csat, on=["moment", "channel"], how="left")
        # Where a survey asks CSAT, a channel without answers has 0 (elsewhere: not known).
        for c in ("csat_satisfied", "csat_answers"):
            stats[c] = stats[c].where(stats[c].notna() | ~stats["moment"].isin(asked), 0)
    # The workspace's order of moments, the vocabulary's of channels.
    place = {m: i for i, m in enumerate(names)}
    stats = stats.assign(_m=stats["moment"].map(place), _c=stats["channel"].map(
        {c: i for i, c in enumerate(CHANNELS)}).fillna(len(CHANNELS)))
    stats = stats.sort_values(["_m", "_c", "channel"], kind="stable").drop(columns=["_m", "_c"])
    table = analysis.channels(stats, p.min_finished)
    per_moment = analysis.moments(table, p.min_finished)
    return Output({"moments": _declared(per_moment, MOMENT_COLUMNS),
                   "channels": _declared(table, CHANNEL_COLUMNS,
                                         ("completed", "escalated", "csat_satisfied"))},
                  _notices(names, table, p),
                  meta={"headline": analysis.headline(per_moment.to_dict("records"),
                                                      p.min_finished)})


def _declared(df: pd.DataFrame, columns: tuple[Column, ...], extra: tuple[str, ...] = ()
              ) -> pd.DataFrame:
    """``df`` with the declared ``columns``, their interval columns and ``extra`` ones, in
    that order (as :func:`~microjourney.registry.base.frame`, keeping the column types)."""
    names = [c.name for c in columns] + [c.ci for c in columns if c.ci] + list(extra)
    return df.reindex(columns=list(dict.fromkeys(names)))


def _notices(names: list[str], table: pd.DataFrame, p: Params) -> list[Notice]:
    out: list[Notice] = []
    rows = table.to_dict("records")
    for moment in names:
        mine = [r for r in rows if r["moment"] == moment]
        present = [r for r in mine if int(r["finished"]) > 0]
        if not present:
            if p.moment is not None:
                out.append(Notice("no-units", f"{moment}: no finished attempts; nothing to compare",
                                  {"moment": moment}))
            continue
        if len(present) == 1:
            only = present[0]["channel"]
            out.append(Notice("one-channel", f"{moment}: finished attempts in {only} only; "
                              "nothing to compare across channels",
                              {"moment": moment, "channel": only}))
            continue
        for r in mine:
            if int(r["finished"]) < p.min_finished:
                out.append(Notice("channel-too-small", f"{moment} {r['channel']}: "
                                  f"{int(r['finished'])} finished attempts (under "
                                  f"{p.min_finished}); shown, not judged",
                                  {"moment": moment, "channel": r["channel"]}))
        judged = [r for r in present if int(r["finished"]) >= p.min_finished]
        if len(judged) < 2:
            out.append(Notice("too-few-judged", f"{moment}: {len(judged)} channel(s) with "
                              f"{p.min_finished} or more finished attempts; no consistency score "
                              "or worst channel", {"moment": moment}))
    return out


ANALYSIS = Analysis(
    name="omnichannel",
    title="Omnichannel consistency",
    doc="Each moment across the channels its attempts start in: completion with its 95% "
        "interval, time to complete, escalation and CSAT per channel; per moment a consistency "
        "score (1 − the typical completion gap between two channels, less chance), the worst "
        "channel and its gap to the best other one with Newcombe's interval and a Holm-adjusted "
        "p, and the channel that escalates most. Channels under 30 finished attempts judge nothing.",
    params=Params,
    compute=compute,
    views=(View("moments", "Consistency across channels", MOMENT_COLUMNS),
           View("channels", "Moments by channel", CHANNEL_COLUMNS)),
    examples=lambda ws: [{}, {"min_finished": 10}],
)

__all__ = ["ANALYSIS"]
