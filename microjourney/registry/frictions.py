"""Micro-frictions: per moment the friction score, the seconds lost per attempt and the
share of attempts affected; per kind the seconds lost and the impact on completion; the
frictions that cost the most, with their evidence; and the detectors in force."""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis
import pandas as pd
from pydantic import Field

from .. import engine
from ..analysis.frictions import MIN_EXPOSED, MIN_UNEXPOSED
from ..errors import QueryError
from ..spec import KINDS
from . import filters
from .base import Analysis, Column, Notice, Output, View

if TYPE_CHECKING:
    from ..workspace import Workspace

MOMENTS = (
    Column("moment", "moment", keep=0),
    Column("attempts", "attempts", "count", keep=0),
    Column("affected_rate", "with friction", "rate", "attempts with at least one friction ÷ "
           "attempts", ci="affected_ci", keep=0),
    Column("seconds_per_attempt", "lost per attempt", "seconds", "seconds lost to frictions ÷ "
           "attempts", keep=0),
    Column("friction_score", "friction score", "number", "share of the time customers spent in "
           "the moment that frictions cost, in percent (0–100; higher is worse)", keep=1),
)
KINDS_VIEW = (
    Column("moment", "moment", keep=0),
    Column("rank", "#", "count", keep=2),
    Column("kind", "kind", keep=0),
    Column("frictions", "frictions", "count", keep=2),
    Column("attempts", "attempts", "count", "attempts with this kind", keep=1),
    Column("share_of_attempts", "share", "rate", "attempts with this kind ÷ the moment's "
           "attempts", keep=2),
    Column("seconds_lost", "seconds lost", "seconds", keep=0),
    Column("seconds_per_affected", "per attempt", "seconds", "seconds lost ÷ attempts with this "
           "kind", keep=3),
    Column("completion_with", "completion with", "rate", "completed ÷ finished attempts that "
           "met the kind (at the step where they first met it)", keep=1),
    Column("completion_without", "without", "rate", "completed ÷ finished attempts that "
           "reached the same step without it, weighted over steps as the exposed are", keep=1),
    Column("completion_difference", "difference", "points", "with − without, stratified by "
           "step (negative: the kind goes with lower completion); none under "
           f"{MIN_EXPOSED} exposed or {MIN_UNEXPOSED} unexposed attempts", ci="difference_ci",
           keep=0),
    Column("compared", "compared", "count", "finished attempts in the comparison", keep=3),
)
EXAMPLES = (
    Column("attempt_id", "attempt", keep=0),
    Column("kind", "kind", keep=0),
    Column("step", "step", "count", keep=2),
    Column("seconds_lost", "seconds lost", "seconds", keep=0),
    Column("evidence_events", "evidence", "list", "the evidence events: name (channel, UTC "
           "time), in time order", keep=1),
    Column("evidence", "evidence (event ids)", "list", keep=3),
)
DETECTORS = (
    Column("kind", "kind", keep=0),
    Column("version", "version", "count", keep=0),
    Column("enabled", "enabled", "flag", keep=0),
    Column("settings", "settings", "text", keep=1),
)


class FrictionParams(filters.Filters):
    moment: str | None = Field(None, description="One moment (default: all).",
                               json_schema_extra={"argument": True})
    kind: str | None = Field(None, description=f"Only this kind: {', '.join(KINDS)}.")
    examples: int = Field(0, ge=0, le=1_000_000, description="Also list this many frictions "
                          "with the most seconds lost, with their evidence.")
    detectors: bool = Field(False, description="List the detectors, their versions and "
                            "settings, instead.")


def compute(ws: Workspace, p: FrictionParams) -> Output:
    if p.kind is not None and p.kind not in KINDS:
        raise QueryError(f"unknown friction kind {p.kind!r}; kinds: {', '.join(KINDS)}",
                         code="query/option")
    if p.detectors:
        rows = [{**d, "settings": ", ".join(f"{k}={v}" for k, v in d["settings"].items())}  # type: ignore[attr-defined]
                for d in ws.friction_detectors()]
        return Output({"detectors": pd.DataFrame(rows)})
    kept = None if filters.unfiltered(p) else filters.attempts(ws.attempts(p.moment), p)
    moments, kinds = (t.to_pandas() for t in ws.friction_summary(p.moment, attempts=kept))
    if p.moment is not None:
        moments = moments[moments["moment"] == p.moment].reset_index(drop=True)
    if p.kind:
        kinds = kinds[kinds["kind"] == p.kind].reset_index(drop=True)
    tables = {"moments": moments, "kinds": kinds}
    if p.examples:
        t = ws.frictions(p.moment, kind=p.kind)
        if kept is not None:
            ids = kept.select(k_id="attempt_id")
            t = t.semi_join(ids, t.attempt_id == ids.k_id)
        examples = t.order_by([t.seconds_lost.desc(), t.attempt_id, t.at_ms]).limit(
            p.examples).to_pandas()
        tables["examples"] = _with_evidence(ws, examples)
    return Output(tables, _few(kinds))


def _with_evidence(ws: Workspace, examples: pd.DataFrame) -> pd.DataFrame:
    """``examples`` with ``evidence_events``: each evidence event as read, not only its id."""
    ids = sorted({str(i) for ev in examples.get("evidence", []) for i in (ev if ev is not None else [])})
    shown: dict[str, str] = {}
    if ids:
        found = engine.events_by_id(ws.events(), ibis.memtable({"e_id": ids})).to_pandas()
        for r in found.to_dict("records"):  # in time order
            stamp = pd.Timestamp(r["timestamp"])
            stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
            shown[str(r["event_id"])] = f"{r['event']} ({r['channel']}, {stamp:%Y-%m-%d %H:%M:%S})"
    order = {i: n for n, i in enumerate(shown)}
    examples = examples.copy()
    examples["evidence_events"] = pd.Series(
        [[shown.get(i, f"{i} (erased or not stored)")
          for i in sorted((str(x) for x in ev), key=lambda i: order.get(i, len(order)))]
         if ev is not None else [] for ev in examples.get("evidence", [])],
        index=examples.index, dtype=object)
    return examples


def _few(kinds: pd.DataFrame) -> list[Notice]:
    """The kinds whose impact is left out for too few attempts, as coded warnings."""
    out = []
    for r in kinds.to_dict("records"):
        if isinstance(r.get("warning"), str):
            out.append(Notice(str(r["warning"]), f"{r['moment']} {r['kind']}: too few attempts "
                              f"with or without it ({r.get('compared') or 0} compared) for a "
                              "difference in completion", {"moment": r["moment"], "kind": r["kind"]}))
    return out


ANALYSIS = Analysis(
    name="frictions",
    title="Micro-frictions",
    doc="Micro-frictions: per moment a friction score, seconds lost per attempt, and the kinds "
        "ranked by seconds lost with their impact on completion.",
    params=FrictionParams,
    compute=compute,
    views=(View("moments", "Micro-frictions per moment", MOMENTS),
           View("kinds", "Frictions by seconds lost; completion with vs without", KINDS_VIEW),
           View("examples", "Frictions with the most seconds lost", EXAMPLES),
           View("detectors", "Friction detectors", DETECTORS)),
    examples=lambda ws: [{"examples": 1_000_000}],
)
