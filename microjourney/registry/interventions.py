"""Interventions measured, not assumed: each rule's offered persons against its holdout — the
share who then completed the moment, contacted an assisted channel, contacted again or were
escalated, and their survey scores (CSAT, CES) — the difference with its interval, beyond
chance or not (Holm over every rule and measure), and a coded warning for a rule that does
harm (docs/interventions.md, "Measured against the holdout").

The engine returns, per rule and arm, the persons decided (each person's first decision of
the rule) and how many of them did each thing within ``within`` hours after it, and the sums
of their survey answers in that time (:mod:`microjourney.engine.interventions`). The counts
read with the week on week's statistics (Newcombe's interval, the pooled two-proportion
z-test); the survey scores with the experiments' (a ratio per person, the delta method,
Welch's t)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import Field

from ..analysis import stats
from ..analysis.experiments.frequentist import difference
from ..engine.experiments import SURVEY_METRICS
from ..engine.interventions import HELD, OFFERED, answered, decisions, followed
from ..errors import QueryError
from . import filters
from .base import Analysis, Column, Notice, Output, View, frame
from .experiment import survey_scores
from .experiment_rows import NO_ANSWERS, ratio, records

if TYPE_CHECKING:
    from ibis.expr.types import Table

    from ..workspace import Workspace

#: The measures counted: (name, the count column, whether more is better, what it counts).
MEASURES = (("completed", "completed", True, "persons who completed the rule's moment after "
             "their decision"),
            ("contacted", "contacted", False, "persons who started an assisted-channel contact "
             "after their decision"),
            ("repeated", "repeated", False, "persons who started a contact after their decision "
             "that another contact about the same moment followed (a repeat contact)"),
            ("escalated", "escalated", False, "persons with an attempt of the rule's moment that "
             "ended escalated after their decision (an escalated outcome, or an assisted contact "
             "soon after it failed or was abandoned)"))
#: The survey measures, more is better for both: (name, what it reads). Only where a survey
#: of the rule's moment asks such a question.
SURVEY_MEASURES = (("csat", "the share of CSAT answers satisfied (4–5 on 1–5)"),
                   ("ces", "the mean CES answer (1–7, higher is easier)"))
#: How a rule that does worse than its holdout reads, per measure.
HARM = {"completed": "completed the moment less", "contacted": "contacted an assisted channel more",
        "repeated": "contacted again more", "escalated": "were escalated more",
        "csat": "were less satisfied", "ces": "found it harder"}
#: An arm with fewer persons than this is measured, with a warning.
MIN_UNITS = 20
ALPHA = 0.05
#: Every value a row may lack (a rate row has no mean answer, a ces row no rate): None.
_NONE = dict.fromkeys(("rate_offered", "rate_held", "score_offered", "score_held", "effect",
                       "effect_ci", "score_effect", "score_effect_ci", "p_value"))

COLUMNS = (
    Column("rule", "rule", keep=0),
    Column("moment", "moment", keep=1),
    Column("measure", "measure", "text", "; ".join(f"{m[0]}: {m[3]}" for m in MEASURES)
           + "; " + "; ".join(f"{m[0]}: {m[1]}, over the answers linked to an attempt of the "
                              "rule's moment" for m in SURVEY_MEASURES)
           + " (within WITHIN hours)", keep=0),
    Column("offered", "offered", "count", "persons offered the intervention (their first "
           "decision of the rule); csat and ces: those of them with an answer of that kind "
           "counted", keep=0),
    Column("held", "held out", "count", "persons in the rule's holdout (their first decision); "
           "csat and ces: those of them with an answer of that kind counted", keep=0),
    Column("rate_offered", "offered rate", "rate", "the measure's persons ÷ persons offered; "
           "csat: Σ over the persons offered of their CSAT answers of 4–5 ÷ Σ of their CSAT "
           "answers", keep=0),
    Column("rate_held", "held-out rate", "rate", "the measure's persons ÷ persons held out; "
           "csat: the same over the persons held out", keep=0),
    Column("score_offered", "offered mean answer", "number", "ces: Σ over the persons offered "
           "of their CES answers ÷ Σ of their CES answers (1–7, higher is easier)", keep=1),
    Column("score_held", "held-out mean answer", "number", "ces: the same over the persons held "
           "out", keep=1),
    Column("effect", "effect", "points", "offered rate − held-out rate; Newcombe's 95% interval "
           "(csat: Welch's, the delta method over persons).", ci="effect_ci", keep=0),
    Column("score_effect", "effect on answer", "number", "ces: offered mean answer − held-out "
           "mean answer, in answer points; Welch's 95% interval, the delta method over persons.",
           ci="score_effect_ci", keep=1),
    Column("p_adjusted", "p (Holm)", "p", "the pooled two-proportion z-test's p (csat and ces: "
           "Welch's t-test's), Holm-adjusted over every rule and measure", keep=1),
    Column("verdict", "verdict", "text", "better or worse when beyond chance (Holm p < 0.05; "
           "fewer contacts, repeat contacts and escalations are better, and a higher csat and "
           "ces), else inconclusive; no holdout: nothing to measure against; not offered: "
           "nobody offered it yet", keep=0),
)


class InterventionParams(filters.Filters):
    """The filters (of the decisions: when, in which channel) and one rule or all."""

    rule: str | None = Field(None, description="Only this rule.", json_schema_extra={"argument": True})
    within: float = Field(24.0, gt=0, le=24 * 90, description="Hours after a decision in which "
                          "what the person did counts.")


def _asked(ws: Workspace, moments: Sequence[str]) -> dict[str, list[str]]:
    """Per moment of ``moments``, the survey measures some survey of it asks."""
    return {m: [k for k in SURVEY_METRICS if any(s.moment == m and q.type == k
                                                 for s in ws.spec.surveys for q in s.questions)]
            for m in moments}


def _survey_sums(ws: Workspace, units: Table, moments: Sequence[str], within: float) -> pd.DataFrame:
    """:func:`answered` over the answers of the surveys of ``moments`` that ask CSAT or CES
    (an empty frame when none does)."""
    answers = survey_scores(ws, moments)
    if answers is None:
        return pd.DataFrame(columns=["rule", "held", "kind"])
    sums: pd.DataFrame = answered(units, answers, within).to_pandas()
    return sums


def _rate_row(on: Mapping[str, Any], off: Mapping[str, Any], col: str) -> dict[str, Any]:
    """A counted measure's columns from each arm's persons and count."""
    n1, n0 = int(on.get("units", 0)), int(off.get("units", 0))
    k1, k0 = int(on.get(col, 0)), int(off.get(col, 0))
    row: dict[str, Any] = {"offered": n1, "held": n0, "rate_offered": k1 / n1 if n1 else None,
                           "rate_held": k0 / n0 if n0 else None, "effect": None, "effect_ci": None,
                           "p_value": None}
    if n1 and n0:
        low, high = stats.difference_interval(k1, n1, k0, n0)
        row.update(effect=k1 / n1 - k0 / n0, p_value=stats.two_proportion_p(k1, n1, k0, n0),
                   effect_ci=None if low != low else [round(low, 9), round(high, 9)])
    row["_effect"] = row["effect"]
    return row


def _survey_row(kind: str, on: Mapping[str, Any] | None, off: Mapping[str, Any] | None) -> dict[str, Any]:
    """A survey measure's columns from each arm's sums: persons with an answer, each arm's
    ratio, and the offered − held-out difference with Welch's interval and p."""
    r1, r0 = (ratio(arm) if arm and int(arm["units"]) else None for arm in (on, off))
    value, effect = ("rate", "effect") if kind == "csat" else ("score", "score_effect")
    row: dict[str, Any] = {"offered": r1.n if r1 else 0, "held": r0.n if r0 else 0,
                           f"{value}_offered": r1.mean if r1 else None,
                           f"{value}_held": r0.mean if r0 else None, effect: None,
                           f"{effect}_ci": None, "p_value": None}
    if r1 and r0:
        e = difference(control=r0, treatment=r1, relative=False)
        row[effect] = r1.mean - r0.mean
        if math.isfinite(e.p_value):
            row.update({f"{effect}_ci": [round(x, 9) for x in e.ci], "p_value": e.p_value})
    row["_effect"] = row[effect]
    return row


def compute(ws: Workspace, p: InterventionParams) -> Output:
    declared = {r.name: r for r in ws.spec.interventions}
    if p.rule is not None and p.rule not in declared:
        raise QueryError(f"no intervention rule {p.rule!r}; rules: "
                         f"{', '.join(declared) or 'none declared'}", code="query/option")
    ws.refresh()
    units = decisions(filters.events(ws.events_of(OFFERED), p), filters.events(ws.events_of(HELD), p))
    if p.rule is not None:
        units = units.filter(units.rule == p.rule)
    counts = followed(units, ws.attempts(), p.within).to_pandas()
    rules = sorted(set(counts["rule"]) | ({p.rule} if p.rule else set(declared)))
    asked = _asked(ws, sorted({declared[r].moment for r in rules if r in declared}))
    sums = _survey_sums(ws, units, [m for m, kinds in asked.items() if kinds], p.within)
    rows: list[dict[str, Any]] = []
    notices: list[Notice] = []
    for rule in rules:
        arms = {int(r["held"]): r for r in counts[counts["rule"] == rule].to_dict("records")}
        on, off = arms.get(0, {}), arms.get(1, {})
        n1, n0 = int(on.get("units", 0)), int(off.get("units", 0))
        moment = declared[rule].moment if rule in declared else None
        times = [v for arm in (on, off) for v in (arm.get("first"), arm.get("last"))
                 if v is not None and v == v]
        base = {"rule": rule, "moment": moment, "first": min(times) if times else None,
                "last": max(times) if times else None, "_n1": n1, "_n0": n0, **_NONE}
        for name, col, more_is_better, _ in MEASURES:
            rows.append({**base, "measure": name, "more_is_better": more_is_better,
                         **_rate_row(on, off, col)})
        few = 0 < min(n1, n0) < MIN_UNITS
        if few:
            notices.append(Notice("too-few-units", f"{rule}: {n1} offered and {n0} held out (under "
                                  f"{MIN_UNITS} in an arm): read the interval, not the verdict",
                                  {"rule": rule}))
        if n1 and not n0:
            notices.append(Notice("no-holdout", f"{rule}: no person held out yet (holdout: "
                                  f"{declared[rule].holdout if rule in declared else '?'}%): its "
                                  "effect cannot be measured", {"rule": rule}))
        for kind in asked.get(moment or "", []):
            mine = sums[(sums["rule"] == rule) & (sums["kind"] == kind)]
            by_arm = {int(r["held"]): r for r in records(mine)}
            row = {**base, "measure": kind, "more_is_better": True,
                   **_survey_row(kind, by_arm.get(0), by_arm.get(1))}
            rows.append(row)
            m1, m0 = row["offered"], row["held"]
            if n1 and n0 and not (m1 and m0):
                who = "offered or held out" if not (m1 or m0) else "held out" if m1 else "offered"
                notices.append(Notice(NO_ANSWERS, f"{rule}: {kind}: no {kind.upper()} answer of a "
                                      f"person {who} is linked to an attempt of {moment} within "
                                      f"{p.within:g} hours after their decision: nothing to compare",
                                      {"rule": rule, "measure": kind}))
            elif not few and 0 < min(m1, m0) < MIN_UNITS:
                notices.append(Notice("too-few-units", f"{rule}: {kind}: {m1} offered and {m0} held "
                                      f"out answered (under {MIN_UNITS} in an arm): read the "
                                      "interval, not the verdict", {"rule": rule, "measure": kind}))
    tested = [i for i, r in enumerate(rows) if r["p_value"] is not None and r["p_value"] == r["p_value"]]
    adjusted = stats.holm([rows[i]["p_value"] for i in tested]) if tested else []
    for i, adj in zip(tested, adjusted, strict=True):
        rows[i]["p_adjusted"] = adj
    for r in rows:
        q = r.get("p_adjusted")
        if r["_n0"] == 0 or r["_n1"] == 0:
            r["verdict"] = "no holdout" if r["_n0"] == 0 else "not offered"
        elif q is None or not q < ALPHA or not r["_effect"]:
            r["verdict"] = "inconclusive"
        else:
            r["verdict"] = "better" if (r["_effect"] > 0) == r["more_is_better"] else "worse"
        if r["verdict"] == "worse":
            notices.append(Notice("intervention-harm", f"{r['rule']}: persons offered it "
                                  f"{HARM[r['measure']]} than its holdout ({r['measure']}), beyond "
                                  "chance: consider stopping it",
                                  {"rule": r["rule"], "measure": r["measure"]}))
    table = frame(rows, COLUMNS, ("p_value", "first", "last"))
    return Output({"rules": table}, notices, meta={"within_hours": p.within})


ANALYSIS = Analysis(
    name="interventions",
    title="Interventions against their holdout",
    doc="Each intervention rule's offered persons against its holdout: the share who then "
        "completed the moment, contacted an assisted channel, contacted again or were "
        "escalated, and their CSAT and CES, the difference with its 95% interval, beyond "
        "chance or not (Holm), and a warning for a rule that does harm.",
    params=InterventionParams,
    compute=compute,
    views=(View("rules", "Interventions against their holdout", COLUMNS),),
)

__all__ = ["ANALYSIS", "HARM", "MEASURES", "SURVEY_MEASURES"]
