"""Interventions measured, not assumed: each rule's offered persons against its holdout — the
share who then completed the moment and the share who then contacted an assisted channel,
the difference with its interval, beyond chance or not (Holm over every rule and measure),
and a coded warning for a rule that does harm (docs/interventions.md, "Measured against the
holdout").

The engine returns, per rule and arm, the persons decided (each person's first decision of
the rule) and how many completed or contacted within ``within`` hours after it
(:mod:`microjourney.engine.interventions`); the statistics are the week on week's (Newcombe's
interval, the pooled two-proportion z-test)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from ..analysis import stats
from ..engine.interventions import HELD, OFFERED, decisions, followed
from ..errors import QueryError
from . import filters
from .base import Analysis, Column, Notice, Output, View, frame

if TYPE_CHECKING:
    from ..workspace import Workspace

#: The measures: (name, the count column, whether more is better, what it counts).
MEASURES = (("completed", "completed", True, "persons who completed the rule's moment after "
             "their decision"),
            ("contacted", "contacted", False, "persons who started an assisted-channel contact "
             "after their decision"),
            ("repeated", "repeated", False, "persons who started a contact after their decision "
             "that another contact about the same moment followed (a repeat contact)"))
#: An arm with fewer persons than this is measured, with a warning.
MIN_UNITS = 20
ALPHA = 0.05

COLUMNS = (
    Column("rule", "rule", keep=0),
    Column("moment", "moment", keep=1),
    Column("measure", "measure", "text", "; ".join(f"{m[0]}: {m[3]}" for m in MEASURES)
           + " (within WITHIN hours)", keep=0),
    Column("offered", "offered", "count", "persons offered the intervention (their first "
           "decision of the rule)", keep=0),
    Column("held", "held out", "count", "persons in the rule's holdout (their first decision)",
           keep=0),
    Column("rate_offered", "offered rate", "rate", "the measure's persons ÷ persons offered",
           keep=0),
    Column("rate_held", "held-out rate", "rate", "the measure's persons ÷ persons held out",
           keep=0),
    Column("effect", "effect", "points", "offered rate − held-out rate; Newcombe's 95% interval",
           ci="effect_ci", keep=0),
    Column("p_adjusted", "p (Holm)", "p", "the pooled two-proportion z-test's p, Holm-adjusted "
           "over every rule and measure", keep=1),
    Column("verdict", "verdict", "text", "better or worse when beyond chance (Holm p < 0.05; "
           "fewer contacts and repeat contacts are better), else inconclusive; no holdout: "
           "nothing to measure against", keep=0),
)


class InterventionParams(filters.Filters):
    """The filters (of the decisions: when, in which channel) and one rule or all."""

    rule: str | None = Field(None, description="Only this rule.", json_schema_extra={"argument": True})
    within: float = Field(24.0, gt=0, le=24 * 90, description="Hours after a decision in which "
                          "what the person did counts.")


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
    rows: list[dict[str, Any]] = []
    notices: list[Notice] = []
    for rule in sorted(set(counts["rule"]) | ({p.rule} if p.rule else set(declared))):
        arms = {int(r["held"]): r for r in counts[counts["rule"] == rule].to_dict("records")}
        on, off = arms.get(0, {}), arms.get(1, {})
        n1, n0 = int(on.get("units", 0)), int(off.get("units", 0))
        moment = declared[rule].moment if rule in declared else None
        for name, col, more_is_better, _ in MEASURES:
            k1, k0 = int(on.get(col, 0)), int(off.get(col, 0))
            times = [v for arm in (on, off) for v in (arm.get("first"), arm.get("last"))
                     if v is not None and v == v]
            row: dict[str, Any] = {"rule": rule, "moment": moment, "measure": name, "offered": n1,
                                   "first": min(times) if times else None,
                                   "last": max(times) if times else None,
                                   "held": n0, "rate_offered": k1 / n1 if n1 else None,
                                   "rate_held": k0 / n0 if n0 else None, "effect": None,
                                   "effect_ci": None, "p_value": None, "more_is_better": more_is_better}
            if n1 and n0:
                low, high = stats.difference_interval(k1, n1, k0, n0)
                row.update(effect=k1 / n1 - k0 / n0, p_value=stats.two_proportion_p(k1, n1, k0, n0),
                           effect_ci=None if low != low else [round(low, 9), round(high, 9)])
            rows.append(row)
        if 0 < min(n1, n0) < MIN_UNITS:
            notices.append(Notice("too-few-units", f"{rule}: {n1} offered and {n0} held out (under "
                                  f"{MIN_UNITS} in an arm): read the interval, not the verdict",
                                  {"rule": rule}))
        if n1 and not n0:
            notices.append(Notice("no-holdout", f"{rule}: no person held out yet (holdout: "
                                  f"{declared[rule].holdout if rule in declared else '?'}%): its "
                                  "effect cannot be measured", {"rule": rule}))
    tested = [i for i, r in enumerate(rows) if r["p_value"] is not None and r["p_value"] == r["p_value"]]
    adjusted = stats.holm([rows[i]["p_value"] for i in tested]) if tested else []
    for i, adj in zip(tested, adjusted, strict=True):
        rows[i]["p_adjusted"] = adj
    for r in rows:
        q = r.get("p_adjusted")
        if r["held"] == 0 or r["offered"] == 0:
            r["verdict"] = "no holdout" if r["held"] == 0 else "not offered"
        elif q is None or not q < ALPHA or not r["effect"]:
            r["verdict"] = "inconclusive"
        else:
            r["verdict"] = "better" if (r["effect"] > 0) == r["more_is_better"] else "worse"
        if r["verdict"] == "worse":
            notices.append(Notice("intervention-harm", f"{r['rule']}: persons offered it "
                                  f"{'completed less' if r['measure'] == 'completed' else 'contacted more'} "
                                  "than its holdout, beyond chance: consider stopping it",
                                  {"rule": r["rule"], "measure": r["measure"]}))
    table = frame(rows, COLUMNS, ("p_value", "first", "last"))
    return Output({"rules": table}, notices, meta={"within_hours": p.within})


ANALYSIS = Analysis(
    name="interventions",
    title="Interventions against their holdout",
    doc="Each intervention rule's offered persons against its holdout: the share who then "
        "completed the moment and the share who then contacted an assisted channel, the "
        "difference with its 95% interval, beyond chance or not (Holm), and a warning for a "
        "rule that does harm.",
    params=InterventionParams,
    compute=compute,
    views=(View("rules", "Interventions against their holdout", COLUMNS),),
)

__all__ = ["ANALYSIS", "MEASURES"]
