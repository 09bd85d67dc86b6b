"""Regression alerts: each moment's daily volume, completion, failure, abandonment,
escalation, time to complete and friction seconds held against a robust, weekday-aware
baseline; a significant regression that lasts is an alert, named with its size and
interval, its start, the segments that moved most and the friction kinds that grew
(docs/alerts.md)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from pydantic import Field

from ..analysis.alerts import LOW_VOLUME, Alert, detect
from ..analysis.alerts_segments import movers
from ..engine.daily import (
    MEANS,
    RATES,
    SURVEY_MEANS,
    SURVEY_RATES,
    daily_frictions,
    daily_metrics,
)
from ..errors import QueryError
from . import filters, interventions
from .base import Analysis, Column, Notice, Output, View, frame
from .daily import daily_table, with_surveys

if TYPE_CHECKING:
    from ..workspace import Workspace

#: Between a moment and its segment in the series detection reads (never in a name).
SEP = "\x1f"
#: The metrics watched, each per moment and UTC day (the survey scores where a survey of
#: the moment asks CSAT or CES).
WATCHED = ("volume", *RATES, *MEANS, *SURVEY_RATES, *SURVEY_MEANS)

ALERT_COLUMNS = (
    Column("moment", "moment", keep=0),
    Column("metric", "metric", keep=0),
    Column("scope", "in", "text", "all: the moment's own series regressed; else the one "
           "segment whose own series did (each dimension's alpha divided among its values); "
           "intervention RULE: those offered the rule completed less (completion_rate) or were "
           "escalated more (escalation_rate) than its holdout (the baseline: the holdout's "
           "rate)", keep=0),
    Column("start", "start", "text", "the first day of the regression", keep=0),
    Column("days", "days", "count", "days it has lasted, to its last regressed day (weeks with "
           "--every week)", keep=1),
    Column("ongoing", "ongoing", "flag", "still regressed on the last day of the data", keep=2),
    Column("baseline", "baseline", "measure", "the metric the same weekdays of the weeks "
           "before would give these days (rates: of finished attempts; volume: attempts a day)",
           keep=1),
    Column("observed", "observed", "measure", "the metric over the regression's days (rates: "
           "its attempts ÷ finished attempts)", keep=1),
    Column("size", "size", "measure-change", "observed − baseline; 95% interval", ci="size_ci",
           keep=0),
    Column("p", "p", "p", "one-sided p-value of the run against the baseline", keep=2),
    Column("segment", "moved most", "text", "the segment with the largest share of the excess",
           keep=0),
    Column("friction", "friction that grew", "text", "the friction kind whose seconds lost grew "
           "most", keep=1),
    Column("alert_id", "id", "text", "stable: the same regression keeps its id", keep=3),
)
SEGMENT_COLUMNS = (
    Column("alert_id", "alert", keep=3),
    Column("moment", "moment", keep=0),
    Column("metric", "metric", keep=0),
    Column("dimension", "dimension", keep=0),
    Column("value", "value", keep=0),
    Column("baseline", "baseline", "measure", "over the baseline days (rates: ÷ finished "
           "attempts of the segment)", keep=1),
    Column("observed", "observed", "measure", "over the regression's days (rates: ÷ finished "
           "attempts of the segment)", keep=0),
    Column("change", "change", "measure-change", "observed − baseline", keep=0),
    Column("share", "share of the excess", "rate", "the segment's excess ÷ the excess of all "
           "segments of the dimension that got worse", keep=0),
    Column("p", "p", "p", keep=2),
)
FRICTION_COLUMNS = (
    Column("alert_id", "alert", keep=3),
    Column("moment", "moment", keep=0),
    Column("kind", "friction", keep=0),
    Column("hit_before", "attempts hit before", "rate", "attempts showing it ÷ finished "
           "attempts, baseline days", keep=1),
    Column("hit_after", "attempts hit during", "rate", "attempts showing it ÷ finished "
           "attempts, the regression's days", keep=0),
    Column("seconds_before", "seconds lost before", "seconds", "seconds it lost ÷ finished "
           "attempts, baseline days", keep=1),
    Column("seconds_after", "seconds lost during", "seconds", "seconds it lost ÷ finished "
           "attempts, the regression's days", keep=0),
    Column("excess", "extra seconds lost", "seconds", "(during − before) × the regression's "
           "finished attempts", keep=0),
)


class Params(filters.Filters):
    moment: str | None = Field(None, description="Only this moment's alerts.",
                               json_schema_extra={"argument": True})
    since: str | None = Field(None, description="Only alerts starting on or after this UTC day "
                              "(YYYY-MM-DD); the baseline still reads the weeks before it.")
    metric: str | None = Field(None, description=f"Only this metric: {', '.join(WATCHED)}.")
    every: Literal["day", "week"] = Field("day", description="Read each UTC day, or each whole ISO "
                                          "week (Monday to Sunday; not volume): min_days then "
                                          "counts weeks and the baseline is the weeks before.")


def long_form(daily: pd.DataFrame) -> pd.DataFrame:
    """:func:`daily_metrics`' rows (with :func:`daily_surveys`' columns when a survey asks
    CSAT or CES) as one row per (moment, metric, day) with the tallies :func:`detect` reads:
    ``count``; ``num``, ``den``; or ``n``, ``sum``, ``sum2``."""
    parts = [daily[["moment", "day"]].assign(metric="volume", count=daily["attempts"])]
    for metric, (num, den) in {**RATES, **SURVEY_RATES}.items():
        if den in daily:
            parts.append(daily[["moment", "day"]].assign(metric=metric, num=daily[num],
                                                         den=daily[den]))
    for metric, (n, s, s2) in {**MEANS, **SURVEY_MEANS}.items():
        if n in daily:
            parts.append(daily[["moment", "day"]].assign(metric=metric, n=daily[n], sum=daily[s],
                                                         sum2=daily[s2]))
    return pd.concat(parts, ignore_index=True)


def _days(rows: pd.DataFrame, lo: date, hi: date) -> pd.DataFrame:
    return rows[(rows["day"] >= lo) & (rows["day"] <= hi)]


def _windows(a: Alert, weeks: int) -> tuple[tuple[date, date], tuple[date, date]]:
    """The baseline's days (the weeks before the start) and the run's."""
    return (a.start - timedelta(days=7 * weeks), a.start - timedelta(days=1)), (a.start, a.end)


def _tallies(rows: pd.DataFrame, metric: str, side: str) -> dict[str, Any]:
    if metric in RATES:
        num, den = RATES[metric]
        return {f"{side}_num": rows[num].sum(), f"{side}_den": rows[den].sum()}
    n, s, s2 = MEANS[metric]
    return {f"{side}_n": rows[n].sum(), f"{side}_sum": rows[s].sum(), f"{side}_sum2": rows[s2].sum()}


def _segments(a: Alert, by: dict[str, pd.DataFrame], weeks: int) -> list[dict[str, Any]]:
    """The segments of each dimension that moved most for alert ``a``."""
    if a.metric == "volume":
        return []
    (b0, b1), (r0, r1) = _windows(a, weeks)
    out = []
    for dimension, daily in by.items():
        rows = daily[daily["moment"] == a.moment]
        if rows[dimension].nunique() < 2:
            continue  # one value: it moved as the moment did, saying nothing
        tallies = []
        for value, g in rows.groupby(dimension):
            tallies.append({"dimension": dimension, "value": str(value),
                            **_tallies(_days(g, b0, b1), a.metric, "base"),
                            **_tallies(_days(g, r0, r1), a.metric, "run")})
        if not tallies:
            continue
        for m in movers(pd.DataFrame(tallies), a.metric, top=3):
            out.append({"alert_id": a.alert_id, "moment": a.moment, "metric": a.metric,
                        "dimension": m.dimension, "value": m.value, "baseline": m.baseline,
                        "observed": m.observed, "change": m.change, "share": m.share,
                        "p": m.p_value, "excess": m.excess})
    return sorted(out, key=lambda r: -r["excess"])


def _frictions(a: Alert, daily: pd.DataFrame, kinds: pd.DataFrame,
               weeks: int) -> list[dict[str, Any]]:
    """The friction kinds of the alert's moment whose seconds lost grew most."""
    (b0, b1), (r0, r1) = _windows(a, weeks)
    moment = daily[daily["moment"] == a.moment]
    fin_b = float(_days(moment, b0, b1)["finished"].sum())
    fin_r = float(_days(moment, r0, r1)["finished"].sum())
    if fin_b <= 0 or fin_r <= 0:
        return []
    rows = kinds[kinds["moment"] == a.moment]
    out: list[dict[str, Any]] = []
    for kind, g in rows.groupby("kind"):
        before, during = _days(g, b0, b1), _days(g, r0, r1)
        sec_b = float(before["seconds"].sum()) / fin_b
        sec_r = float(during["seconds"].sum()) / fin_r
        out.append({"alert_id": a.alert_id, "moment": a.moment, "kind": str(kind),
                    "hit_before": before["hit"].sum() / fin_b, "hit_after": during["hit"].sum() / fin_r,
                    "seconds_before": sec_b, "seconds_after": sec_r, "excess": (sec_r - sec_b) * fin_r})
    return sorted([r for r in out if r["excess"] > 0], key=lambda r: -r["excess"])[:5]


def _condensed(notes: Any) -> list[Notice]:
    """One notice per code and moment, naming its metrics (detection says each metric's)."""
    kept: dict[tuple[str, str], tuple[str, list[str]]] = {}
    for n in notes:
        head, _, rest = n.message.partition(": ")
        moment, _, metric = head.partition(" ")
        if not rest or not metric:
            kept[(n.code, n.message)] = (n.message, [])
            continue
        kept.setdefault((n.code, moment), (rest, []))[1].append(metric)
    out = []
    for (code, moment), (rest, metrics) in kept.items():
        if not metrics:
            out.append(Notice(code, rest))
            continue
        which = metrics[0] if len(metrics) == 1 else f"{len(metrics)} metrics ({', '.join(metrics)})"
        out.append(Notice(code, f"{moment}, {which}: {rest}", {"moment": moment}))
    return out


def _segment_alerts(by: dict[str, pd.DataFrame], settings: Any, metric: str | None,
                    since: date | None, until: date | None) -> list[Alert]:
    """The regressions of each segment's own series (not volume: a channel's share moves by
    design), each dimension's ``alpha`` divided among its values (Bonferroni)."""
    found: list[Alert] = []
    for dimension, daily in by.items():
        values = daily[dimension].unique()
        if len(values) < 2:
            continue  # one value: the segment is the moment itself
        long = long_form(daily.drop(columns=[dimension]).assign(
            moment=daily["moment"] + SEP + dimension + " = " + daily[dimension].astype(str)))
        long = long[long["metric"] != "volume"]
        if metric:
            long = long[long["metric"] == metric]
        strict = settings.model_copy(update={"alpha": settings.alpha / len(values)})
        found += detect(long, strict, since=since, until=until)[0]
    return found


def _overlaps(a: Alert, b: Alert) -> bool:
    return a.metric == b.metric and a.start <= b.end and b.start <= a.end


def _kept(total: list[Alert], parts: list[Alert]) -> list[tuple[Alert, str | None]]:
    """The moment's alerts, then each segment's that no alert of its moment and metric kept
    so far overlaps (the smallest p first): one incident, one alert."""
    out: list[tuple[Alert, str | None]] = [(a, None) for a in total]
    for a in sorted(parts, key=lambda x: x.p_value):
        moment, _, where = a.moment.partition(SEP)
        plain = replace(a, moment=moment)
        if not any(b.moment == moment and _overlaps(b, plain) for b, _ in out):
            out.append((plain, where))
    return out


def _dated(frame: pd.DataFrame, weekly: bool, span: tuple[date, date]) -> pd.DataFrame:
    """``frame`` with its ``day`` as a date; ``weekly``: summed per ISO week (dated by its
    Monday), only the weeks ``span`` (the data's first and last day) covers whole."""
    frame["day"] = pd.to_datetime(frame["day"]).dt.date
    if not weekly or frame.empty:
        return frame
    monday = frame["day"].map(lambda d: d - timedelta(days=d.weekday()))
    keys = [c for c in frame.columns if c != "day" and not pd.api.types.is_numeric_dtype(frame[c])]
    out = frame.assign(day=monday).groupby([*keys, "day"], as_index=False).sum(numeric_only=True)
    whole = (out["day"] >= span[0]) & (out["day"].map(lambda d: d + timedelta(days=6)) <= span[1])
    return out[whole].reset_index(drop=True)


def _harmful(ws: Workspace, p: Params) -> list[dict[str, Any]]:
    """An intervention rule whose offered persons completed its moment less often, or were
    escalated more often, than its holdout, beyond chance (the ``interventions`` analysis), as
    an alert on the moment's completion or escalation rate: ``in`` names the rule, the baseline
    is the holdout's rate."""
    metrics = {measure: metric for measure, metric in (("completed", "completion_rate"),
                                                       ("escalated", "escalation_rate"))
               if p.metric in (None, metric)}
    if not metrics:
        return []
    found = interventions.compute(ws, interventions.InterventionParams(until=p.until))
    out = []
    for r in found.tables["rules"].to_dict("records"):
        if r["verdict"] != "worse" or r["measure"] not in metrics:
            continue
        if p.moment not in (None, r["moment"]):
            continue
        first, last = (pd.Timestamp(r[k]).date() for k in ("first", "last"))
        key = hashlib.sha256(f"intervention\x00{r['rule']}\x00{r['measure']}".encode()).hexdigest()
        out.append({"alert_id": key[:16], "moment": r["moment"], "metric": metrics[r["measure"]],
                    "scope": f"intervention {r['rule']}", "start": first.isoformat(),
                    "end": last.isoformat(), "days": (last - first).days + 1, "ongoing": True,
                    "baseline": r["rate_held"], "observed": r["rate_offered"], "size": r["effect"],
                    "size_ci": r["effect_ci"], "p": r["p_adjusted"], "segment": None, "friction": None})
    return out


def compute(ws: Workspace, p: Params) -> Output:
    settings = ws.spec.alerts
    if p.metric is not None and p.metric not in WATCHED:
        raise QueryError(f"unknown alerts metric {p.metric!r}; allowed: {', '.join(WATCHED)}",
                         code="query/option")
    ws.refresh(frictions=True)
    scope = p.model_copy(update={"since": None})  # the baseline reads the weeks before --since
    a = filters.attempts(ws.attempts(p.moment), scope)
    frictions = ws.db.table("friction_attempts")
    daily = daily_table(a, frictions)
    if filters.unfiltered(scope):
        daily = with_surveys(ws, daily, p.moment)
    weekly = p.every == "week"
    days = sorted(daily["day"]) if len(daily) else [date.today()]
    span = (days[0], (filters.when(p.until) - timedelta(days=1)).date() if p.until else days[-1])
    daily = _dated(daily, weekly, span)
    long = long_form(daily)
    if weekly:  # a missing day reads as no attempts: volume is read per day only
        long = long[long["metric"] != "volume"]
    scored = long["metric"].isin([*SURVEY_RATES, *SURVEY_MEANS])
    # A moment no survey is answered in has no survey score to watch.
    answered = long[scored].fillna({"den": 0, "n": 0}).groupby(["moment", "metric"])[["den", "n"]]
    some = answered.transform("sum").sum(axis=1) > 0
    long = long[~scored | some.reindex(long.index, fill_value=True)]
    if p.metric:
        long = long[long["metric"] == p.metric]
    since = filters.when(p.since).date() if p.since else None
    until = (filters.when(p.until) - timedelta(days=1)).date() if p.until else None
    total, notes = detect(long, settings, since=since, until=until)
    if weekly:  # the days between two Mondays read as untested days: not worth a word
        notes = tuple(n for n in notes if n.code != LOW_VOLUME)
    notices = _condensed(notes)
    by: dict[str, pd.DataFrame] = {}
    for dimension in ("channel", *settings.segments):
        t, col = filters.breakdown(a, dimension, {"day", "moment"})
        d = daily_metrics(t, frictions, by=col).to_pandas()
        by[dimension] = _dated(d, weekly, span).rename(columns={col: dimension})
    found = _kept(total, _segment_alerts(by, settings, p.metric, since, until))
    segments: list[dict[str, Any]] = []
    kinds_rows: list[dict[str, Any]] = []
    if found:
        kinds = _dated(daily_frictions(a, frictions).to_pandas(), weekly, span)
        for alert, _ in found:
            segments += _segments(alert, by, settings.baseline_weeks)
            kinds_rows += _frictions(alert, daily, kinds, settings.baseline_weeks)
    rows = []
    for alert, where in found:
        top = next((s for s in segments if s["alert_id"] == alert.alert_id), None)
        grew = next((k for k in kinds_rows if k["alert_id"] == alert.alert_id), None)
        rows.append({"alert_id": alert.alert_id, "moment": alert.moment, "metric": alert.metric,
                     "scope": where or "all", "start": alert.start.isoformat(),
                     "end": alert.end.isoformat(), "days": alert.days, "ongoing": alert.ongoing,
                     "baseline": alert.baseline, "observed": alert.observed, "size": alert.size,
                     "size_ci": list(alert.ci), "p": alert.p_value,
                     "segment": f"{top['dimension']} = {top['value']}" if top else None,
                     "friction": grew["kind"] if grew else None})
    if ws.spec.interventions:
        rows += _harmful(ws, p)
    rows.sort(key=lambda r: (r["start"], r["moment"], r["metric"]))

    return Output({"alerts": frame(rows, ALERT_COLUMNS, ("end",)),
                   "segments": frame(segments, SEGMENT_COLUMNS, ("excess",)),
                   "frictions": frame(kinds_rows, FRICTION_COLUMNS)},
                  notices, meta={"alerts": len(rows), "every": p.every})


ANALYSIS = Analysis(
    name="alerts",
    title="Regression alerts",
    doc="Each moment's daily volume, completion, failure, abandonment and escalation rates, time "
        "to complete and friction seconds against a robust, weekday-aware baseline: every "
        "significant regression that lasts, with its size and interval, its start, the segments "
        "(channel and the workspace's alert segments) that moved most and the friction kinds "
        "that grew.",
    params=Params,
    compute=compute,
    views=(View("alerts", "Regressions", ALERT_COLUMNS),
           View("segments", "Segments that moved most", SEGMENT_COLUMNS),
           View("frictions", "Friction kinds that grew", FRICTION_COLUMNS)),
)

__all__ = ["ANALYSIS", "WATCHED", "long_form"]
