"""Intents: customer texts clustered into what customers ask for, each named by its
distinctive words and examples, mapped to the moment that should serve it, and joined
with demand over time and that moment's performance: "customers ask X this often; the
moment that should answer it fails this often" (docs/intents.md)."""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import Field

from .. import engine
from .. import text as text_core
from ..analysis.stats import wilson_interval
from ..errors import QueryError
from ..text.assign import MIN_SIMILARITY
from ..vocabulary import TEXT_SOURCES as SOURCES
from . import filters
from .base import Analysis, Column, Notice, Output, View

if TYPE_CHECKING:
    from ..workspace import Workspace

#: Texts clustered at most (the most recent); more are left out with a notice.
MAX_TEXTS = 100_000
#: Texts clustered at least; fewer give no intents (a notice says so).
MIN_TEXTS = 10
UNMAPPED = "(unmapped)"

INTENT_COLUMNS = (
    Column("intent", "intent", "count", "the intent's number (1: the most asked)", keep=0),
    Column("terms", "what customers ask", "list", "the words that set the intent's texts apart "
           "from the others", keep=0),
    Column("texts", "texts", "count", "texts in the intent", keep=0),
    Column("share", "share", "rate", "texts in the intent ÷ all texts clustered", keep=1),
    Column("last_week", "last 7 days", "count", "texts in the intent in the 7 days up to the "
           "last text", keep=2),
    Column("moment", "moment", "text", "the moment that should serve it: the one whose phrases "
           "and keywords its texts are nearest (docs/intents.md)", keep=0),
    Column("similarity", "similarity", "number", "cosine of the intent's centre to the "
           "moment's nearest phrase, plus its keyword hits", keep=3),
    Column("attempts", "moment attempts", "count", "finished attempts of the moment in the period",
           keep=2),
    Column("failure_rate", "moment fails", "rate", "the moment's failed, abandoned and escalated "
           "attempts ÷ its finished attempts", ci="failure_ci", keep=0),
    Column("examples", "examples", "list", "texts nearest the intent's centre", keep=3),
)
WEEK_COLUMNS = (
    Column("intent", "intent", "count", "the intent's number", keep=0),
    Column("week", "week of", "time", "the ISO week (its Monday, UTC)", keep=0),
    Column("texts", "texts", "count", "texts of the intent written in the week", keep=0),
)
TEXT_COLUMNS = (
    Column("text_id", "text", "text", "the text's id", keep=1),
    Column("timestamp", "time", "time", "when it was written", keep=1),
    Column("source", "source", "text", "where it comes from", keep=2),
    Column("intent", "intent", "count", "its intent's number (empty: a blank text)", keep=0),
    Column("text", "text", "text", "the text as stored (scrubbed of personal data)", keep=0),
)


class Params(filters.Filters):
    source: str | None = Field(None, description=f"Only texts from this source: {', '.join(SOURCES)}.")
    moment: str | None = Field(None, description="Only the intents mapped to this moment.")
    k: int | None = Field(None, ge=2, le=500, description="How many intents (default: chosen by "
                          "the silhouette, docs/intents.md).")
    min_similarity: float = Field(MIN_SIMILARITY, ge=-1, le=2,
                                  description="The least similarity for an intent to map to a "
                                              "moment.")
    texts: bool = Field(False, description="Also list every text with its intent (the `texts` "
                                           "table; `--out FILE` writes it as CSV).")


@functools.lru_cache(maxsize=8)
def _clustered(texts: tuple[str, ...], k: int | None) -> text_core.Clusters:
    """The clustering of ``texts``, kept for the next request on the same texts (the
    dashboard's moment pages ask one after another)."""
    return text_core.cluster(list(texts), k=k, seed=0)


def phrases(ws: Workspace) -> dict[str, list[str]]:
    """Each moment's phrases and keywords, the texts intents are mapped by."""
    return {name: [*m.phrases, *m.keywords] for name, m in ws.moments.items()
            if m.phrases or m.keywords}


def compute(ws: Workspace, p: Params) -> Output:
    if p.source is not None and p.source not in SOURCES:
        raise QueryError(f"unknown text source {p.source!r}; sources: {', '.join(SOURCES)}",
                         code="query/option")
    if p.moment is not None:
        ws.moment(p.moment)
    rows = filters.events(ws.texts(p.source), p)
    total = int(rows.count().to_pyarrow().as_py())
    notices: list[Notice] = []
    if total > MAX_TEXTS:
        notices.append(Notice("texts-cut", f"{total:,} texts; the {MAX_TEXTS:,} most recent are "
                              "clustered", {"texts": total}))
        rows = rows.order_by([rows.timestamp.desc(), rows.event_id.desc()]).limit(MAX_TEXTS)
        rows = rows.order_by([rows.timestamp, rows.event_id])
    df = rows.select("text_id", "timestamp", "source", "text").to_pandas()
    empty = {"intents": pd.DataFrame(columns=[c.name for c in INTENT_COLUMNS] + ["failure_ci"]),
             "weekly": pd.DataFrame(columns=[c.name for c in WEEK_COLUMNS])}
    if p.texts:
        empty["texts"] = pd.DataFrame(columns=[c.name for c in TEXT_COLUMNS])
    if len(df) < MIN_TEXTS:
        notices.append(Notice("few-texts", f"{len(df)} texts: intents need at least {MIN_TEXTS} "
                              "(import them with `microjourney intents FILE --text COLUMN`)",
                              {"texts": len(df)}))
        return Output(empty, notices, meta={"texts": len(df)})
    c = _clustered(tuple(df["text"].astype(str)), p.k)
    notices += [Notice(n.code, n.message) for n in c.warnings]
    targets = phrases(ws)
    mapped = text_core.assign(c, targets, min_similarity=p.min_similarity)
    if not targets:
        notices.append(Notice("no-phrases", "no moment has phrases or keywords: intents are not "
                              "mapped to moments (docs/workspace.md, Moment)"))
    by_cluster = {m.item: m for m in mapped.matches}
    # Intent numbers by falling size (the clusters come so): 1 is the most asked.
    number = {g.id: i + 1 for i, g in enumerate(c.clusters)}
    df["intent"] = [number.get(int(x)) if x >= 0 else None for x in c.labels]
    at = pd.to_datetime(df["timestamp"], utc=True)
    day = at.dt.floor("D")
    df["week"] = day - pd.to_timedelta(day.dt.day_of_week, unit="D")  # the ISO week's Monday
    recent = df[at > at.max() - pd.Timedelta(days=7)]
    week_counts = recent.groupby("intent").size().to_dict()
    card = _moment_failures(ws, p)
    out = []
    for g in c.clusters:
        m = by_cluster.get(g.id)
        moment = m.target if m is not None and m.target else None
        perf = card.get(moment or "", {})
        out.append({"intent": number[g.id], "terms": list(g.terms), "texts": g.size,
                    "share": g.size / len(df), "last_week": int(week_counts.get(number[g.id], 0)),
                    "moment": moment or UNMAPPED,
                    "similarity": m.score if m is not None else math.nan,
                    "attempts": perf.get("attempts"), "failure_rate": perf.get("rate", math.nan),
                    "failure_ci": perf.get("ci"), "examples": list(g.examples)})
    intents = pd.DataFrame(out, columns=[c_.name for c_ in INTENT_COLUMNS] + ["failure_ci"])
    if p.moment is not None:
        intents = intents[intents["moment"] == p.moment].reset_index(drop=True)
    keep = set(intents["intent"])
    weekly = (df[df["intent"].isin(keep)].groupby(["intent", "week"]).size()
              .reset_index(name="texts").sort_values(["intent", "week"]))
    weekly["intent"] = weekly["intent"].astype(int)
    tables: dict[str, pd.DataFrame] = {"intents": intents, "weekly": weekly.reset_index(drop=True)}
    if p.texts:
        tables["texts"] = df[[c_.name for c_ in TEXT_COLUMNS]]
    return Output(tables, notices, meta={"texts": len(df), "k": c.k, "chosen_by": c.chosen_by,
                                         "embedding": c.method})


def _moment_failures(ws: Workspace, p: Params) -> dict[str, dict[str, Any]]:
    """Per moment: finished attempts in the period and the share not completed (the
    scorecard's outcome counts)."""
    if not ws.spec.moments:
        return {}
    a = filters.attempts(ws.attempts(), filters.Filters(since=p.since, until=p.until))
    counts = engine.outcome_counts(a, ["moment"]).to_pandas()
    out = {}
    for r in counts.to_dict("records"):
        n = int(r["attempts"]) - int(r["in_progress"])
        bad = n - int(r["completed"])
        low, high = wilson_interval(bad, n)
        out[str(r["moment"])] = {"attempts": n, "rate": bad / n if n else math.nan,
                                 "ci": [low, high] if n else None}
    return out


ANALYSIS = Analysis(
    name="intents",
    title="Intents",
    doc="Customer texts (searches, help-centre searches, chat messages, agent notes) clustered "
        "into intents with the number chosen automatically, each named by its distinctive "
        "words and examples, mapped to the moment that should serve it, with its demand "
        "(texts, last 7 days, by week) and that moment's failure rate.",
    params=Params,
    compute=compute,
    views=(View("intents", "Intents: what customers ask", INTENT_COLUMNS),
           View("weekly", "Intents by week", WEEK_COLUMNS, rows=30),
           View("texts", "Texts and their intents", TEXT_COLUMNS, rows=20)),
    examples=lambda ws: [{}],
    cli=False,  # `microjourney intents [FILE --text COLUMN]` imports, then runs it (cli/voice.py)
)

__all__ = ["ANALYSIS", "phrases"]
