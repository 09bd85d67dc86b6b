"""The owner's weekly review: per moment, the week against last week, the frozen baseline and
the target with a RAG status and its reasons; the frictions that grew; the regression alerts
that ran in the week; the changes shipped and their measured effect; the week's verbatims;
and a wall of the best and worst moments — grouped by owner (docs/review.md).

The week is an ISO week (Monday to Sunday, UTC), by default the last one the data covers to
its Sunday. Everything but the changes is read as of the week's end, so a review reads the
same whenever it is made; a change's effect is read on all the data there is (a change
shipped last week is measured as the days after it come in)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, cast

import ibis
import pandas as pd
from pydantic import Field, field_validator

from .. import engine, fmt
from ..analysis import review as analysis
from ..analysis.scorecard import scorecard
from ..engine.daily import daily_frictions
from ..errors import QueryError
from . import alerts as alerts_analysis
from . import intents as intents_analysis
from . import playbook as playbook_analysis
from .base import Analysis, Column, Notice, Output, Params, View, frame
from .notices import small_counts
from .verbatims import texts_between

if TYPE_CHECKING:
    from ..workspace import Workspace

WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
#: A rate metric's numerator and denominator among the scorecard's counts.
COUNTS = {"completion_rate": ("completed", "finished"), "failure_rate": ("failed", "finished"),
          "abandonment_rate": ("abandoned", "finished"), "escalation_rate": ("escalations", "finished"),
          "sla_met_rate": ("sla_met", "sla_known")}
#: Weeks before the review's week whose changes it lists too (so a change is seen measured).
CHANGE_WEEKS = 3
NO_OWNER = "(no owner)"

MOMENT_COLUMNS = (
    Column("owner", "owner", "text", "who owns the moment (its `owner`)", keep=0),
    Column("moment", "moment", keep=0),
    Column("rag", "RAG", "text", "red: a regression alert ran in the week, or worse than last "
           "week beyond chance, or off target past its target day; amber: off or near target, or "
           "worse than its baseline beyond chance; green: on target; grey: no target", keep=0),
    Column("reasons", "why", "list", "what made the colour", keep=0),
    Column("metric", "metric", "text", "the target's metric (completion without a target)", keep=1),
    Column("this_week", "this week", "measure", "the metric over the attempts started in the "
           "week (rates: ÷ finished attempts; SLA met: ÷ completed attempts with an SLA)", keep=0),
    Column("last_week", "last week", "measure", "the same over the week before", keep=1),
    Column("change", "change", "measure-change", "this week − last week; Newcombe's 95% "
           "interval", ci="change_ci", keep=0),
    Column("moved", "moved", "text", "better or worse when the change is beyond chance "
           "(Holm-adjusted p < 0.05 across the moments reviewed); times are not tested", keep=1),
    Column("p_adjusted", "p (Holm)", "p", "the two-proportion z-test's p-value of the change, "
           "Holm-adjusted across the moments reviewed", keep=3),
    Column("baseline", "baseline", "measure", "the metric in the moment's latest frozen "
           "baseline (`microjourney baseline`)", keep=1),
    Column("vs_baseline", "vs baseline", "measure-change", "this week − the baseline; "
           "Newcombe's 95% interval", ci="vs_baseline_ci", keep=2),
    Column("baseline_moved", "vs baseline moved", "text", "better or worse when beyond chance "
           "(Holm across the moments reviewed)", keep=3),
    Column("target", "target", "measure", "the target's value", keep=1),
    Column("target_by", "by", "text", "the day the target is to be reached by", keep=3),
    Column("status", "status", "text", "this week against the target: on, near (off, but the "
           "completion interval reaches it), off target; no target; no data", keep=2),
    Column("finished", "finished", "count", "finished attempts started in the week", keep=2),
    Column("alert", "alert", "text", "the first regression alert that ran in the week", keep=1),
    Column("friction", "friction that grew", "text", "the friction kind the alert names, else "
           "the one whose seconds lost grew most on last week", keep=1),
    Column("change_title", "change", "text", "the latest change shipped in the week or the "
           f"{CHANGE_WEEKS} before, and its verdict", keep=1),
    Column("journey", "journey", keep=3),
)
WALL_COLUMNS = (
    Column("side", "wall", "text", "worst: red, then amber, the largest fall first; best: green "
           "or better beyond chance, the largest rise first", keep=0),
    Column("moment", "moment", keep=0),
    Column("owner", "owner", keep=2),
    Column("rag", "RAG", keep=0),
    Column("metric", "metric", keep=2),
    Column("this_week", "this week", "measure", keep=0),
    Column("change", "change", "measure-change", "this week − last week", keep=1),
    Column("quote", "in their words", "text", "a free-text answer of the week to a survey of the "
           "moment (the most negative for the worst, the most positive for the best); else, for "
           "the worst, an example of the week's commonest intent mapped to it "
           "(docs/intents.md)", keep=0),
    Column("quote_from", "from", "text", "survey: a survey's free-text answer; intent: a "
           "customer text (chat, help-centre search, agent note) of the intent", keep=2),
)
FRICTION_COLUMNS = (
    Column("moment", "moment", keep=0),
    Column("kind", "friction", keep=0),
    Column("seconds_now", "seconds lost", "seconds", "seconds the kind cost the attempts "
           "started in the week", keep=0),
    Column("seconds_before", "last week", "seconds", "the same in the week before", keep=1),
    Column("growth", "grew by", "seconds", "seconds lost this week − last week", keep=0),
    Column("hit_now", "attempts hit", "count", "attempts of the week showing the kind", keep=1),
    Column("new", "new", "flag", "no attempt showed it last week", keep=0),
)
SIZE = Column("size", "size", "measure-change")
ALERT_COLUMNS = tuple(c for c in alerts_analysis.ALERT_COLUMNS
                      if c.name in ("moment", "metric", "scope", "start", "days", "ongoing", "size",
                                    "segment", "friction", "alert_id"))
CHANGE_COLUMNS = (
    *(c for c in playbook_analysis.CHANGE_COLUMNS
      if c.name in ("day", "moment", "kind", "title", "before", "after", "effect", "verdict")),
    Column("this_week", "this week", "flag", "shipped in the review's week", keep=1),
)
VERBATIM_COLUMNS = (
    Column("timestamp", "time", "time", "when the answer was given", keep=1),
    Column("moment", "moment", "text", "the moment of the survey (its journey for a journey "
           "survey)", keep=0),
    Column("text", "text", "text", "the answer as stored (personal data scrubbed on the way in)",
           keep=0),
    Column("sentiment", "sentiment", "number", "from −1 (negative) to +1 (positive), VADER",
           keep=0),
    Column("band", "band", "text", "the band of the score given in the same display", keep=1),
    Column("outcome", "outcome", "text", "the outcome of the attempt it links to", keep=2),
)


class ReviewParams(Params):
    """Which week, whose moments, and how much of each list."""

    week: str | None = Field(None, description="The ISO week, e.g. 2026-W43 (default: the last "
                             "week the data covers to its Sunday).")
    owner: str | None = Field(None, description="Only the moments this owner owns.")
    top: int = Field(10, ge=1, le=100, description="Frictions that grew, at most.")
    quotes: int = Field(10, ge=0, le=100, description="Verbatims of the week, at most: the most "
                        "negative half and the most positive half.")

    @field_validator("week")
    @classmethod
    def _week(cls, value: str | None) -> str | None:
        if value is not None:
            monday(value)
        return value


def monday(week: str) -> date:
    """The Monday of the ISO week ``week`` (``2026-W43``)."""
    m = WEEK.match(week)
    try:
        if not m:
            raise ValueError
        return date.fromisocalendar(int(m[1]), int(m[2]), 1)
    except ValueError:
        raise ValueError(f"{week!r} is not an ISO week (write e.g. 2026-W43)") from None


def _last_week(ws: Workspace) -> date:
    """The Monday of the last ISO week the data covers to its Sunday."""
    ms = ws.as_of_ms()
    last = (pd.Timestamp(ms, unit="ms", tz="UTC").date() if ms else datetime.now(UTC).date())
    sunday = last if last.weekday() == 6 else last - timedelta(days=last.weekday() + 1)
    return sunday - timedelta(days=6)


def _cards(ws: Workspace, a: Any) -> dict[str, pd.DataFrame]:
    """The scorecard of this week (``now``) and last week (``before``), by moment."""
    stats = engine.outcome_counts(a, ["moment", "window"]).to_pandas()
    out = {}
    for side in ("now", "before"):
        one = stats[stats["window"] == side].drop(columns="window").reset_index(drop=True)
        card = scorecard(one.copy(), ws.spec, ["moment"])
        # The SLA's counts, which the scorecard reads but does not keep.
        sla = one.set_index("moment")[["sla_met", "sla_known"]]
        card = card.join(sla, on="moment").fillna({"sla_met": 0, "sla_known": 0})
        out[side] = card.assign(finished=card["attempts"] - card["in_progress"]).set_index("moment")
    return out


def _counted(card: pd.Series, metric: str) -> tuple[Any, Any]:
    num, den = COUNTS.get(metric, (None, None))
    if num is None or den is None:
        return None, None
    return int(card[num]), int(card[den])


def _based(baseline: dict[str, Any] | None, metric: str) -> tuple[Any, Any, Any]:
    """The baseline's value of ``metric`` and the counts it stands for (when it kept them)."""
    if not baseline:
        return None, None, None
    figures = baseline["figures"]
    value, (_, den) = figures.get(metric), COUNTS.get(metric, (None, None))
    n = figures.get(den) if den else None
    if value is None or n is None:
        return value, None, None
    return value, round(value * n), int(n)


def _alert_text(r: dict[str, Any]) -> str:
    """An alert in a few words: ``failure_rate +8.4 pts from 2026-10-15; os = android``."""
    size = fmt.cell(SIZE, {"size": r["size"], "metric": r["metric"]})
    where = f"; {r['segment']}" if r.get("segment") else ""
    return f"{r['metric']} {size} from {r['start']}{where}"


def _change_text(r: dict[str, Any]) -> str:
    return f"{r['title']} ({r['day']}, {r['verdict']})"


def compute(ws: Workspace, p: ReviewParams) -> Output:
    first = monday(p.week) if p.week else _last_week(ws)
    sunday = first + timedelta(days=6)
    start = datetime.combine(first, time(), UTC)
    end, before = start + timedelta(days=7), start - timedelta(days=7)
    week = f"{first.isocalendar()[0]}-W{first.isocalendar()[1]:02d}"
    moments = [m for m, spec in ws.moments.items() if p.owner in (None, spec.owner)]
    if not moments:
        owners = sorted({s.owner for s in ws.moments.values() if s.owner})
        raise QueryError(f"review: no moment is owned by {p.owner!r}; owners: "
                         f"{', '.join(owners) or 'none declared'}", code="query/option")
    ws.refresh(frictions=True)
    a = ws.attempts()
    a = a.filter(a.moment.isin(moments) & (a.start_ts >= before) & (a.start_ts < end))
    a = a.mutate(window=ibis.ifelse(a.start_ts >= start, "now", "before"))
    cards = _cards(ws, a)
    baselines: dict[str, dict[str, Any]] = {}
    for b in ws.baselines():
        baselines.setdefault(b["moment"], b)

    found = alerts_analysis.compute(ws, alerts_analysis.Params(until=end.date().isoformat()))
    ran = found.tables["alerts"]
    ran = ran[ran["moment"].isin(moments) & (ran["start"] <= sunday.isoformat())
              & (ran["end"] >= first.isoformat())].reset_index(drop=True)
    shipped = playbook_analysis.compute(ws, playbook_analysis.Params()).tables["changes"]
    shipped = shipped[shipped["moment"].isin(moments)
                      & (shipped["day"] >= (first - timedelta(weeks=CHANGE_WEEKS)).isoformat())
                      & (shipped["day"] <= sunday.isoformat())].reset_index(drop=True)
    shipped["this_week"] = shipped["day"] >= first.isoformat()

    kinds = daily_frictions(a, ws.db.table("friction_attempts")).to_pandas()
    kinds["window"] = ["now" if pd.Timestamp(d).date() >= first else "before" for d in kinds["day"]]
    per = kinds.groupby(["window", "moment", "kind"], as_index=False)[["seconds", "hit"]].sum()
    grew = analysis.grown(per[per["window"] == "now"].drop(columns="window"),
                          per[per["window"] == "before"].drop(columns="window"), top=len(per) + 1)

    rows = []
    for m in moments:
        spec = ws.moments[m]
        now, last = cards["now"].loc[cast(Any, m)], cards["before"].loc[cast(Any, m)]
        target = spec.target
        metric = target.metric if target else "completion_rate"
        k_now, n_now = _counted(now, metric)
        k_before, n_before = _counted(last, metric)
        value_base, k_base, n_base = _based(baselines.get(m), metric)
        mine = _rows(ran[ran["moment"] == m])
        changes = _rows(shipped[shipped["moment"] == m].sort_values("day"))
        rose = grew[grew["moment"] == m]
        friction = (mine[0]["friction"] if mine and mine[0].get("friction")
                    else (rose["kind"].iloc[0] if len(rose) else None))
        rows.append({
            "owner": spec.owner or NO_OWNER, "moment": m, "metric": metric,
            "this_week": now.get(metric), "last_week": last.get(metric),
            "k_now": k_now, "n_now": n_now, "k_before": k_before, "n_before": n_before,
            "k_base": k_base, "n_base": n_base, "baseline": value_base,
            "target": target.value if target else None,
            "target_by": target.by.isoformat() if target and target.by else None,
            "status": now["status"] if now["finished"] else "no data",
            "overdue": bool(target and target.by and target.by <= sunday),
            "finished": int(now["finished"]), "finished_before": int(last["finished"]),
            "alerts": len(mine), "alert": _alert_text(mine[0]) if mine else None,
            "friction": friction,
            "change_title": _change_text(changes[-1]) if changes else None,
            "journey": ws.spec.journey_of(m)})
    table = analysis.compare(pd.DataFrame(rows))
    for c in ("this_week", "last_week", "baseline", "change", "vs_baseline"):
        table[c] = pd.to_numeric(table[c], errors="coerce")
    # A time has no counts to test: its change is shown, never called a move.
    untested = table["n_now"].isna()
    table.loc[untested, "change"] = table["this_week"] - table["last_week"]
    table.loc[untested, "vs_baseline"] = table["this_week"] - table["baseline"]
    judged = [analysis.judge(r) for r in _rows(table)]
    table["rag"] = [j[0] for j in judged]
    table["reasons"] = pd.Series([j[1] for j in judged], index=table.index, dtype=object)
    order = {m: i for i, m in enumerate(moments)}
    table = table.assign(_own=table["owner"].eq(NO_OWNER), _rag=table["rag"].map(analysis.RAGS.index),
                         _at=table["moment"].map(order))
    table = table.sort_values(["_own", "owner", "_rag", "_at"]).drop(columns=["_own", "_rag", "_at"])
    table = table.reset_index(drop=True)

    texts = texts_between(ws, start, end, moments)
    wall = _wall(table, texts, _asked(ws, start, end, moments))
    voices = _voices(texts, p.quotes)
    notices = [*small_counts(table, "finished", ["moment"], "finished attempts this week")]
    if not table["finished"].any():
        notices.insert(0, Notice("no-attempts", f"no attempt of the moments reviewed started in "
                                 f"{week} ({first} to {sunday})", {"week": week}))
    missing = [m for m in table["moment"] if m not in baselines]
    if missing:
        notices.append(Notice("no-baseline", f"{len(missing)} moment(s) without a frozen baseline "
                              "(`microjourney baseline MOMENT`): " + ", ".join(missing),
                              {"moments": missing}))
    counts = analysis.counts_of(list(table["rag"]))
    return Output({"moments": frame(_rows(table), MOMENT_COLUMNS,
                                    ("change_ci", "vs_baseline_ci", "finished_before")),
                   "wall": frame(wall, WALL_COLUMNS, ("sentiment",)),
                   "frictions": frame(_rows(grew.head(p.top)), FRICTION_COLUMNS),
                   "alerts": frame(_rows(ran), ALERT_COLUMNS, ("size_ci", "end")),
                   "changes": frame(_rows(shipped), CHANGE_COLUMNS, ("effect_ci",)),
                   "verbatims": frame(voices, VERBATIM_COLUMNS)},
                  notices,
                  meta={"week": week, "from": first.isoformat(), "to": sunday.isoformat(),
                        "owner": p.owner, "rag": counts,
                        "headline": _headline(week, counts, _rows(table))})


def _rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], df.to_dict(orient="records"))


def _asked(ws: Workspace, start: datetime, end: datetime, moments: list[str]) -> dict[str, str]:
    """Per moment, an example text of the commonest intent mapped to it among the customer
    texts of the week (none when the workspace keeps no texts)."""
    found = intents_analysis.compute(ws, intents_analysis.Params(since=start.isoformat(),
                                                                 until=end.isoformat()))
    t = found.tables["intents"]
    out: dict[str, str] = {}
    if t.empty:
        return out
    for r in _rows(t.sort_values(["texts", "intent"], ascending=[False, True], kind="stable")):
        if r["moment"] in moments and r["moment"] not in out and len(r["examples"]):
            out[r["moment"]] = str(r["examples"][0])
    return out


def _wall(table: pd.DataFrame, texts: pd.DataFrame, asked: dict[str, str]) -> list[dict[str, Any]]:
    rows = {r["moment"]: r for r in _rows(table)}
    out = []
    for place in analysis.wall(list(rows.values())):
        r = rows[place["moment"]]
        said = texts[texts["moment"] == r["moment"]].sort_values(
            ["sentiment", "timestamp"], ascending=[place["side"] == "worst", False])
        quote, source, tone = None, None, None
        if len(said):
            quote, source, tone = said["text"].iloc[0], "survey", float(said["sentiment"].iloc[0])
        elif r["moment"] in asked and place["side"] == "worst":  # demand, not praise
            quote, source = asked[r["moment"]], "intent"
        out.append({"side": place["side"], "moment": r["moment"], "owner": r["owner"],
                    "rag": r["rag"], "metric": r["metric"], "this_week": r["this_week"],
                    "change": r["change"], "quote": quote, "quote_from": source,
                    "sentiment": tone})
    return out


def _voices(texts: pd.DataFrame, n: int) -> list[dict[str, Any]]:
    """The week's most negative ``n − n // 2`` texts and its most positive ``n // 2``."""
    if texts.empty or n == 0:
        return []
    ranked = texts.sort_values(["sentiment", "timestamp"], ascending=[True, False])
    low = ranked.head(n - n // 2)
    high = ranked.drop(low.index).iloc[::-1].head(n // 2)
    return _rows(pd.concat([low, high]))


def _headline(week: str, counts: dict[str, int], rows: list[dict[str, Any]]) -> str:
    shown = ", ".join(f"{counts[c]} {c}" for c in analysis.RAGS if counts[c])
    head = f"{week}: {shown}."
    red = [r for r in rows if r["rag"] == "red"]
    if red:
        r = red[0]
        more = f" ({len(red) - 1} more red)" if len(red) > 1 else ""
        head += f" {r['moment']} is red: {r['reasons'][0]}{more}."
    return head


ANALYSIS = Analysis(
    name="review",
    title="Weekly review",
    doc="The owner's weekly review: per moment, this week against last week, the frozen "
        "baseline and the target with a RAG status and why; moves only when beyond chance; "
        "the frictions that grew by seconds lost; the regression alerts that ran in the week; "
        "the changes shipped and their measured effect; the week's verbatims; and a wall of "
        "the best and worst moments — grouped by owner.",
    params=ReviewParams,
    compute=compute,
    views=(View("moments", "Moments by owner", MOMENT_COLUMNS),
           View("wall", "The wall: best and worst moments", WALL_COLUMNS),
           View("frictions", "Frictions that grew", FRICTION_COLUMNS),
           View("alerts", "Regression alerts in the week", ALERT_COLUMNS),
           View("changes", "Changes shipped and their effect", CHANGE_COLUMNS),
           View("verbatims", "Verbatims of the week", VERBATIM_COLUMNS)),
)

__all__ = ["ANALYSIS", "ReviewParams", "monday"]
