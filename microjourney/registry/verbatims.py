"""Verbatims: the free-text answers of surveys (and texts imported as answers), each with
its sentiment and the score band of the same display, grouped into themes named by their
distinctive terms and example quotes, beside the behaviour of the attempts they speak of
(docs/surveys.md, "Verbatims").

The engine selects the answers (filters, band, the most recent :data:`MAX_TEXTS`); the
texts are then scored and clustered by the offline text core (:mod:`microjourney.text`),
in one fixed order (time, then event id) with a fixed seed, so every engine gives the
same themes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
from ibis.expr.types import StringValue, Table
from pydantic import Field

from ..errors import QueryError
from ..spec.surveys import Survey
from ..text import Clusters, sentiment, themes
from . import filters
from .base import Analysis, Column, Notice, Output, View

if TYPE_CHECKING:
    from ..workspace import Workspace

#: The score bands of each scored question type: (band, lowest, highest answer).
BANDS: dict[str, tuple[tuple[str, int, int], ...]] = {
    "nps": (("detractor", 0, 6), ("passive", 7, 8), ("promoter", 9, 10)),
    "csat": (("low", 1, 2), ("neutral", 3, 3), ("high", 4, 5)),
    "ces": (("low", 1, 3), ("neutral", 4, 4), ("high", 5, 7)),
    "thumbs": (("down", 0, 0), ("up", 1, 1)),
}
NONE = "(none)"
Band = Literal["detractor", "passive", "promoter", "low", "neutral", "high", "down", "up", "(none)"]
#: The order bands are listed in (ties for the commonest band go to the first).
BAND_ORDER = ("detractor", "passive", "promoter", "low", "neutral", "high", "down", "up", NONE)
#: Texts read at most (the most recent): enough for themes, small enough for one process.
MAX_TEXTS = 20_000
#: Below this many texts no themes are drawn: a cluster of two or three texts says nothing.
MIN_THEME_TEXTS = 10
#: The seed of the themes: the same texts give the same themes.
SEED = 0
MAX_QUOTES, MAX_K = 200, 20

THEME_COLUMNS = (
    Column("theme", "theme", "count", "the theme's number, the largest first", keep=0),
    Column("terms", "terms", "list", "the words that set its texts apart from the others "
           "(class-based TF-IDF)", keep=0),
    Column("texts", "texts", "count", "free-text answers in the theme", keep=0),
    Column("share", "share", "rate", "texts in the theme ÷ texts clustered (the answers "
           "selected, those without words left out)", keep=1),
    Column("sentiment", "sentiment", "number", "mean sentiment of its texts, from −1 "
           "(negative) to +1 (positive), VADER", keep=0),
    Column("negative", "negative", "rate", "its texts of negative sentiment ÷ its texts", keep=1),
    Column("band", "commonest band", "text", "the score band most of its texts' displays fall "
           "in (NPS detractor/passive/promoter, CSAT and CES low/neutral/high, thumbs "
           "down/up; (none) without a score)", keep=1),
    Column("band_share", "in that band", "rate", "its texts in the commonest band ÷ its texts",
           keep=2),
    Column("linked", "attempts", "count", "attempts its texts link to", keep=2),
    Column("completed", "completed", "rate", "linked attempts completed ÷ linked attempts",
           keep=1),
    Column("outcome", "commonest outcome", "text", "the commonest outcome of its linked "
           "attempts", keep=2),
    Column("examples", "examples", "list", "three of its texts nearest its centre", keep=0),
)
QUOTE_COLUMNS = (
    Column("timestamp", "time", "time", "when the answer was given", keep=0),
    Column("survey", "survey", keep=2),
    Column("question", "question", keep=2),
    Column("text", "text", "text", "the answer as stored (personal data scrubbed on the way "
           "in)", keep=0),
    Column("sentiment", "sentiment", "number", "from −1 (negative) to +1 (positive), VADER",
           keep=0),
    Column("band", "band", "text", "the band of the score given in the same display", keep=0),
    Column("score", "score", "count", "the answer to the survey's first scored question in "
           "the same display", keep=1),
    Column("theme", "theme", "count", "the theme it falls in", keep=2),
    Column("outcome", "outcome", "text", "the outcome of the attempt it links to", keep=1),
    Column("attempt_id", "attempt", "text", "the attempt it links to", keep=1),
)


class Params(filters.Filters):
    survey: str | None = Field(None, description="Only this survey (default: every survey).")
    moment: str | None = Field(None, description="Only the surveys of this moment.")
    question: str | None = Field(None, description="Only this free-text question (default: "
                                 "every free-text question).")
    band: Band | None = Field(None, description="Only answers whose display's score falls in "
                              "this band: NPS detractor (0–6), passive (7–8), promoter "
                              "(9–10); CSAT low (1–2), neutral (3), high (4–5); CES low "
                              "(1–3), neutral (4), high (5–7); thumbs down, up; (none): no "
                              "score.")
    quotes: int = Field(20, ge=0, le=MAX_QUOTES, description="How many of the most recent "
                        "texts to list.")
    k: int | None = Field(None, ge=2, le=MAX_K, description="How many themes (default: chosen "
                          "by the silhouette, at most 8).")


def _chosen(ws: Workspace, p: Params) -> tuple[list[Survey], list[tuple[Survey, str]]]:
    """The surveys chosen, and the free-text questions read: (survey, question id)."""
    chosen = [ws.survey(p.survey)] if p.survey else list(ws.spec.surveys)
    if p.moment is not None:
        ws.moment(p.moment)
        chosen = [s for s in chosen if s.moment == p.moment]
    if p.question is not None:
        having = [s for s in chosen if any(q.id == p.question for q in s.questions)]
        if not having and chosen:
            where = (f"survey {p.survey!r} has no question {p.question!r}; its questions: "
                     + ", ".join(q.id for q in chosen[0].questions) if p.survey
                     else f"no survey asks a question {p.question!r}")
            raise QueryError(f"verbatims --question: {where}", code="query/option")
        for s in having:
            asked = s.question(p.question)
            if asked.type != "text":
                texts = ", ".join(q.id for q in s.questions if q.type == "text") or "none"
                raise QueryError(f"verbatims --question: {p.question!r} of survey {s.name!r} is a "
                                 f"{asked.type} question, not free text; its free-text questions: "
                                 f"{texts}", code="query/option")
        chosen = having
    read = [(s, q.id) for s in chosen for q in s.questions
              if q.type == "text" and p.question in (None, q.id)]
    return chosen, read


def _band(kind: StringValue, score: StringValue) -> StringValue:
    """The band of a scored answer (stored as its whole number) by its question type."""
    cases = [((kind == t) & score.isin([str(v) for v in range(low, high + 1)]), name)
             for t, bands in BANDS.items() for name, low, high in bands]
    out: StringValue = ibis.cases(*cases, else_=NONE)
    return out


def _pairs(**columns: Sequence[str]) -> Table:
    return ibis.memtable(pa.table({k: pa.array(list(v), pa.string()) for k, v in columns.items()}))


def _texts(ws: Workspace, p: Params, asked: list[tuple[Survey, str]]) -> pd.DataFrame:
    """The selected free-text answers, the most recent :data:`MAX_TEXTS` + 1 (to tell that
    there were more), with the score and band of their display and their attempt."""
    names = sorted({s.name for s, _ in asked})
    wanted = _pairs(t_survey=[s.name for s, _ in asked], t_question=[q for _, q in asked])
    a = ws.survey_answers(names)
    t = a.inner_join(wanted, [a.survey == wanted.t_survey, a.question == wanted.t_question])
    t = filters.events(t, p)
    scored = [(s.name, s.scored[0]) for s in {s.name: s for s, _ in asked}.values() if s.scored]
    keys = _pairs(s_survey=[n for n, _ in scored], s_question=[q.id for _, q in scored],
                  s_type=[q.type for _, q in scored])
    b = ws.survey_answers(names, linked=False)
    b = b.inner_join(keys, [b.survey == keys.s_survey, b.question == keys.s_question])
    b = b.select(sc_survey=b.survey, sc_display=b.display, score=b.answer,
                 sc_band=_band(b.s_type, b.answer))
    j = t.left_join(b, [t.survey == b.sc_survey, t.display == b.sc_display])
    j = j.mutate(band=j.sc_band.fill_null(NONE))
    if p.band is not None:
        j = j.filter(j.band == p.band)
    j = j.select("event_id", "timestamp", "survey", "question", "answer", "score", "band",
                 "attempt_id", outcome=j.a_outcome)
    j = j.order_by([ibis.desc(j.timestamp), ibis.desc(j.event_id)]).limit(MAX_TEXTS + 1)
    df: pd.DataFrame = j.to_pandas().rename(columns={"answer": "text"})
    return df


def _commonest(values: Sequence[str], order: Sequence[str] = ()) -> tuple[str | None, int]:
    """The commonest value and its count; ties go to the first in ``order``, then by name."""
    if not values:
        return None, 0
    counts = Counter(values)
    rank = {v: i for i, v in enumerate(order)}
    best = min(counts, key=lambda v: (-counts[v], rank.get(v, len(rank)), v))
    return best, counts[best]


def _theme_rows(rows: pd.DataFrame, labels: np.ndarray[Any, Any], clusters: Clusters) -> pd.DataFrame:
    clustered = int((labels >= 0).sum())
    out = []
    for c in clusters.clusters:
        mine = rows[labels == c.id]
        band, in_band = _commonest(list(mine.band), BAND_ORDER)
        linked = mine[mine.attempt_id.notna()].drop_duplicates("attempt_id")
        outcome, _ = _commonest([str(o) for o in linked.outcome if isinstance(o, str)])
        n = len(mine)
        out.append({
            "theme": c.id + 1, "terms": list(c.terms), "texts": n,
            "share": n / clustered if clustered else np.nan,
            "sentiment": float(mine.sentiment.mean()) if n else np.nan,
            "negative": float((mine.sentiment_label == "negative").mean()) if n else np.nan,
            "band": band, "band_share": in_band / n if n else np.nan,
            "linked": len(linked),
            "completed": float((linked.outcome == "completed").mean()) if len(linked) else np.nan,
            "outcome": outcome, "examples": list(c.examples),
        })
    return pd.DataFrame(out, columns=[c.name for c in THEME_COLUMNS])


def _score(value: Any, band: str) -> int | None:
    return int(value) if band != NONE and isinstance(value, str) else None


def _empty(notices: list[Notice], meta: dict[str, Any] | None = None) -> Output:
    return Output({"themes": pd.DataFrame(columns=[c.name for c in THEME_COLUMNS]),
                   "quotes": pd.DataFrame(columns=[c.name for c in QUOTE_COLUMNS])},
                  notices, meta or {"texts": 0})


def compute(ws: Workspace, p: Params) -> Output:
    chosen, asked = _chosen(ws, p)
    if not chosen:
        where = f"moment {p.moment!r} has" if p.moment else "the workspace declares"
        return _empty([Notice("no-surveys", f"{where} no survey (docs/surveys.md)")])
    if not asked:
        names = ", ".join(s.name for s in chosen)
        return _empty([Notice("no-free-text", f"{names}: no free-text question asked",
                              {"surveys": [s.name for s in chosen]})])
    rows = _texts(ws, p, asked)
    notices: list[Notice] = []
    if len(rows) > MAX_TEXTS:
        rows = rows.iloc[:MAX_TEXTS]
        notices.append(Notice("texts-capped", f"more than {MAX_TEXTS:,} free-text answers: the "
                              f"{MAX_TEXTS:,} most recent are read (narrow with --since or "
                              "--band)", {"read": MAX_TEXTS}))
    if rows.empty:
        return _empty([Notice("no-free-text", "no free-text answers"
                              + (" with these filters" if p.band or p.filters() else ""))])
    # One order whatever the engine returned: time, then event id (a tie-breaker).
    rows = rows.sort_values(["timestamp", "event_id"], kind="stable").reset_index(drop=True)
    texts = [str(t) for t in rows.text]
    tone = sentiment(texts)
    rows["sentiment"] = tone.scores
    rows["sentiment_label"] = list(tone.labels)
    rows["score"] = [_score(v, b) for v, b in zip(rows.score, rows.band, strict=True)]
    seen = {n.code for n in tone.warnings}
    notices += [Notice(n.code, n.message) for n in tone.warnings]
    meta: dict[str, Any] = {"texts": len(rows), "themes_k": 0}
    labels = np.full(len(rows), -1, np.int64)
    if len(rows) < MIN_THEME_TEXTS:
        notices.append(Notice("few-texts", f"{len(rows)} free-text answer(s), under "
                              f"{MIN_THEME_TEXTS}: no themes drawn", {"texts": len(rows)}))
        table = pd.DataFrame(columns=[c.name for c in THEME_COLUMNS])
    else:
        clusters = themes(texts, k=p.k, seed=SEED)
        labels = np.asarray(clusters.labels, np.int64)
        notices += [Notice(n.code, n.message) for n in clusters.warnings if n.code not in seen]
        table = _theme_rows(rows, labels, clusters)
        meta.update(themes_k=clusters.k, chosen_by=clusters.chosen_by, method=clusters.method,
                    silhouette=clusters.silhouette)
    rows["theme"] = [int(v) + 1 if v >= 0 else None for v in labels]
    recent = rows.iloc[::-1].head(p.quotes)
    quotes = recent[[c.name for c in QUOTE_COLUMNS]].reset_index(drop=True)
    quotes = quotes.astype({"score": object, "theme": object})
    return Output({"themes": table, "quotes": quotes}, notices, meta)


def texts_between(ws: Workspace, since: datetime, until: datetime,
                  moments: Sequence[str]) -> pd.DataFrame:
    """The free-text answers given from ``since`` to before ``until`` to the surveys of
    ``moments`` (and the journey surveys of their journeys), the most recent
    :data:`MAX_TEXTS`: ``timestamp``, ``moment`` (the survey's moment, else its journey),
    ``survey``, ``text``, ``sentiment``, ``band``, ``outcome``, ``attempt_id``."""
    columns = ["timestamp", "moment", "survey", "text", "sentiment", "band", "outcome", "attempt_id"]
    journeys = {ws.spec.journey_of(m) for m in moments}
    about = {s.name: s.moment or s.journey for s in ws.spec.surveys
             if s.moment in moments or (s.moment is None and s.journey in journeys)}
    p = Params(since=since.isoformat(), until=until.isoformat())
    asked = [(s, q.id) for s in ws.spec.surveys if s.name in about
             for q in s.questions if q.type == "text"]
    rows = _texts(ws, p, asked).head(MAX_TEXTS) if asked else pd.DataFrame()
    if rows.empty:
        return pd.DataFrame(columns=columns)
    rows = rows.sort_values(["timestamp", "event_id"], kind="stable").reset_index(drop=True)
    rows["sentiment"] = sentiment([str(t) for t in rows.text]).scores
    rows["moment"] = rows["survey"].map(about)
    return rows[columns]


def _examples(ws: Workspace) -> list[dict[str, Any]]:
    if not any(q.type == "text" for s in ws.spec.surveys for q in s.questions):
        return [{}]
    bands = [name for s in ws.spec.surveys if s.scored for name, _, _ in BANDS[s.scored[0].type]]
    return [{}, {"band": bands[0], "quotes": 5}] if bands else [{}]


ANALYSIS = Analysis(
    name="verbatims",
    title="Verbatims",
    doc="The free-text answers of surveys: each text's sentiment and the score band of its "
        "display, themes (clusters of texts named by their distinctive terms, with example "
        "quotes) with their sentiment, commonest band and the behaviour of the attempts they "
        "speak of (share completed, commonest outcome), and the most recent quotes linked to "
        "their attempts; per survey, moment, question and score band.",
    params=Params,
    compute=compute,
    views=(View("themes", "Themes of {texts:,} free-text answers", THEME_COLUMNS),
           View("quotes", "Recent free-text answers", QUOTE_COLUMNS, rows=20)),
    examples=_examples,
)

__all__ = ["ANALYSIS", "BANDS", "texts_between"]
