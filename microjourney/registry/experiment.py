"""One experiment's results: each metric per variant against the control, over the persons
exposed and their attempts of the moment after exposure — the lift with its interval and
p-value (Holm-adjusted across the metrics), the Bayesian chance to win, the always-valid
interval for peeking, a verdict, and the sample-ratio check of the exposures
(docs/experiments.md)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import Field

from ..analysis.experiments.compare import compare
from ..analysis.experiments.guardrails import HARMFUL, verdict
from ..analysis.experiments.srm import srm
from ..analysis.experiments.statistics import Ratio, SampleMean
from ..analysis.stats import holm
from ..engine.experiments import EXPOSURE, exposed, metric_statistics
from ..errors import QueryError
from ..fmt import lower_is_better
from . import filters
from .base import Analysis, Column, Notice, Output, View

if TYPE_CHECKING:
    from ..workspace import Workspace

#: The metrics read in seconds; the others are rates.
SECONDS = ("duration", "friction_seconds")

COLUMNS = (
    Column("metric", "metric", keep=0),
    Column("role", "role", "text", "primary, secondary or guardrail", keep=1),
    Column("variant", "variant", keep=0),
    Column("units", "persons", "count", "exposed persons with an attempt after exposure", keep=0),
    Column("rate", "rate", "rate", "the variant's rate: Σ over persons of the attempts counted "
           "÷ Σ of their finished attempts after exposure", keep=0),
    Column("seconds", "seconds", "seconds", "time to complete (duration: Σ over completed "
           "attempts ÷ completed attempts) or friction seconds per finished attempt", keep=0),
    Column("lift", "lift", "rate", "(variant − control) ÷ control, delta method over persons; "
           "95% interval", ci="lift_ci", keep=0),
    Column("p", "p", "p", "two-sided p-value of no difference", keep=1),
    Column("p_holm", "p (Holm)", "p", "Holm-adjusted across the experiment's metrics", keep=2),
    Column("chance_to_win", "chance to win", "rate", "the posterior mass of the lift on the "
           "variant's winning side ÷ all of it (flat prior; for metrics to lower, winning is "
           "lower)", keep=1),
    Column("always_valid", "always-valid lift", "list", "the lift's always-valid 95% interval, "
           "safe to read at every look (docs/experiments.md)", keep=3),
    Column("verdict", "verdict", "text", "primary and secondary: better, worse or inconclusive; "
           "guardrails: harmful, ok or inconclusive", keep=0),
)
EXPOSURE_COLUMNS = (
    Column("variant", "variant", keep=0),
    Column("planned", "planned share", "rate", "the variant's weight ÷ all weights", keep=0),
    Column("exposed", "exposed", "count", "persons exposed to this variant only", keep=0),
    Column("share", "share", "rate", "its exposed persons ÷ all exposed persons", keep=0),
)


class ExperimentParams(filters.Filters):
    experiment: str = Field(description="The experiment's name.", json_schema_extra={"argument": True})


def _statistic(row: dict[str, Any]) -> Ratio:
    n = int(row["units"])
    num = SampleMean(n, float(row["num"]), float(row["num2"]))
    den = SampleMean(n, float(row["den"]), float(row["den2"]))
    return Ratio(n, num, den, float(row["numden"]))


def _finite(pair: tuple[float, float]) -> bool:
    return all(math.isfinite(x) for x in pair)


def compute(ws: Workspace, p: ExperimentParams) -> Output:
    e = next((x for x in ws.spec.experiments if x.name == p.experiment), None)
    if e is None:
        known = ", ".join(x.name for x in ws.spec.experiments) or "none defined yet"
        raise QueryError(f"no experiment {p.experiment!r}; experiments: {known}",
                         code="query/experiment")
    ws.refresh(frictions=True)
    everyone = exposed(ws.events_of(EXPOSURE), e.name)
    people = everyone.to_pandas()
    mixed = int((people["variants"] > 1).sum()) if len(people) else 0
    notices: list[Notice] = []
    if mixed:
        notices.append(Notice("mixed-exposure", f"{mixed} persons saw more than one variant: left "
                              "out", {"experiment": e.name}))
    counts = people[people["variants"] == 1].groupby("variant").size().to_dict() if len(people) else {}
    weights = e.weights()
    total = sum(int(counts.get(v, 0)) for v in weights)
    exposure = pd.DataFrame([{"variant": v, "planned": w, "exposed": int(counts.get(v, 0)),
                              "share": int(counts.get(v, 0)) / total if total else math.nan}
                             for v, w in weights.items()])
    check = srm([int(counts.get(v, 0)) for v in weights], list(weights.values()))
    if check.flagged:
        notices.append(Notice("srm", f"sample-ratio mismatch: exposed {check.counts} against the "
                              f"planned {tuple(round(x) for x in check.expected)}, p = "
                              f"{check.p_value:.2g}; the assignment or the exposure logging is "
                              "broken, so the results below are not to be trusted",
                              {"experiment": e.name}))
    attempts = filters.attempts(ws.attempts(e.moment), p)  # the period, channel, segment
    people_t = everyone.filter(everyone.variants == 1)
    until = (datetime.combine(e.end, datetime.min.time(), UTC) + timedelta(days=1)) if e.end else None
    stats = metric_statistics(attempts, people_t, ws.db.table("friction_attempts"), e.metrics,
                              until).to_pandas()
    rows, raw_p = [], []
    by = {(r["metric"], r["variant"]): r for r in stats.to_dict("records")}
    for metric in e.metrics:
        role = ("primary" if metric == e.metric else
                "secondary" if metric in e.secondary else "guardrail")
        higher = not lower_is_better(metric)
        base = by.get((metric, e.control))
        for v in weights:
            row = by.get((metric, v))
            stat = _statistic(row) if row else None
            out: dict[str, Any] = {"metric": metric, "role": role, "variant": v,
                                   "units": stat.n if stat else 0, "lift_ci": None,
                                   "always_valid": None}
            mean = stat.mean if stat else math.nan
            out["rate" if metric not in SECONDS else "seconds"] = mean
            if v == e.control or stat is None or base is None:
                out["verdict"] = "control" if v == e.control else "no data"
                rows.append(out)
                continue
            c = compare(_statistic(base), stat, e.control, v)
            rel = c.relative
            chance = c.bayesian.chance_to_win if higher else 1 - c.bayesian.chance_to_win
            # Sums of seconds add up in another order on another engine: the interval is
            # given to 9 decimals, so that every engine gives the same one.
            valid = c.sequential_relative.ci
            out.update(lift=rel.estimate, p=rel.p_value, chance_to_win=chance,
                       lift_ci=[round(x, 9) for x in rel.ci] if _finite(rel.ci) else None,
                       always_valid=[round(x, 4) for x in valid] if _finite(valid) else None)
            if role == "guardrail":
                out["verdict"] = verdict(rel, higher).verdict
            else:
                out["verdict"] = ("inconclusive" if not rel.ci[0] > 0 and not rel.ci[1] < 0 else
                                  "better" if (rel.ci[0] > 0) == higher else "worse")
            notices += [Notice(n.code, f"{metric} {v}: {n.message}", {"metric": metric, "variant": v})
                        for n in c.notices]
            if math.isfinite(rel.p_value):
                raw_p.append((len(rows), rel.p_value))
            rows.append(out)
    adjusted = holm([p_ for _, p_ in raw_p]) if raw_p else []
    for (i, _), q in zip(raw_p, adjusted, strict=True):
        rows[i]["p_holm"] = q
    table = pd.DataFrame(rows, columns=[c_.name for c_ in COLUMNS] + ["lift_ci"])
    harmful = table[(table["role"] == "guardrail") & (table["verdict"] == HARMFUL)]
    for r in harmful.to_dict("records"):
        notices.append(Notice("guardrail-harmful", f"{r['variant']} harms {r['metric']}",
                              {"metric": r["metric"], "variant": r["variant"]}))
    return Output({"metrics": table, "exposure": exposure}, notices,
                  meta={"experiment": e.name, "moment": e.moment, "control": e.control,
                        "srm_p": check.p_value,
                        "exposed": total})


ANALYSIS = Analysis(
    name="experiment",
    title="Experiment",
    doc="One experiment: each metric per variant against the control over the persons exposed "
        "and their attempts after exposure — lift with its 95% interval and p-value (Holm "
        "across metrics), chance to win, the always-valid interval, a verdict per metric and "
        "guardrail, and the sample-ratio check of the exposures.",
    params=ExperimentParams,
    compute=compute,
    views=(View("metrics", "{experiment} on {moment}: each metric against {control}", COLUMNS),
           View("exposure", "Exposure", EXPOSURE_COLUMNS)),
    examples=lambda ws: [{"experiment": e.name} for e in ws.spec.experiments[:1]],
    report=False,
    cli=False,  # `microjourney experiment analyze NAME` and `experiment list` (cli/experiments.py)
)

__all__ = ["ANALYSIS"]
