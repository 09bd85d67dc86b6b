"""The portfolio: every moment ranked by the value at stake in it (failure, deflection and
retention value, each with its bootstrap interval over persons), beside its frequency and
failure rate; the retention comparison behind the retention value; and each moment's
costs with where they come from (docs/value.md)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..analysis import value as value_analysis
from ..analysis.stats import wilson_interval
from ..analysis.value import Costs, Estimate, MomentValue
from ..engine import value as value_engine
from ..engine.backend import rows_table
from ..spec.value import Value, effective, resolved
from . import filters
from .base import Analysis, Column, Notice, Output, View
from .notices import small_counts

if TYPE_CHECKING:
    from ..workspace import Workspace

INTERVAL = "; 95% bootstrap interval over persons"

COLUMNS = (
    Column("rank", "rank", "count", "place by total value at stake, highest first (moments "
           "without a total last)", keep=0),
    Column("moment", "moment", keep=0),
    Column("journey", "journey", keep=4),
    Column("attempts", "attempts", "count", "attempts starting in the period (the moment's "
           "frequency)", keep=1),
    Column("persons", "persons", "count", "distinct persons with an attempt: the units the "
           "intervals resample", keep=3),
    Column("failure_rate", "failure rate", "rate", "failed ÷ finished attempts (attempts − in "
           f"progress){INTERVAL}", ci="failure_rate_ci", keep=1),
    Column("failure_value", "failure value", "number", "attempts × failure rate × failure "
           f"cost{INTERVAL}", ci="failure_value_ci", keep=1),
    Column("avoidable_contacts", "avoidable contacts", "count", "distinct assisted contacts "
           "that escalations led to, plus contacts followed by a repeat contact within the "
           "repeat-contact window (docs/value.md)", keep=3),
    Column("deflection_value", "deflection value", "number", "avoidable contacts × contact "
           f"cost{INTERVAL}", ci="deflection_value_ci", keep=1),
    Column("retention_difference", "retention gap", "points", "persons who came back within the "
           "retention window after a completed first attempt ÷ such persons − the same after a "
           f"failed one (observational, not causal){INTERVAL}", ci="retention_difference_ci",
           keep=2),
    Column("retention_value", "retention value", "number", "retention gap × persons whose first "
           f"finished attempt failed × lifetime value{INTERVAL}", ci="retention_value_ci", keep=1),
    Column("total_value", "value at stake", "number", "failure + deflection + retention value, "
           f"the parts that have their cost{INTERVAL} (the parts resampled together)",
           ci="total_value_ci", keep=0),
    Column("currency", "currency", "text", "the currency of the values (the moment's value: "
           "currency)", keep=2),
)
RETENTION_COLUMNS = (
    Column("moment", "moment", keep=0),
    Column("completed_persons", "completed first", "count", "persons whose first finished "
           "attempt of the moment in the period completed, with their retention window over",
           keep=1),
    Column("completed_returned", "came back after completing", "rate", "of those, persons with "
           "a qualifying event (docs/value.md) within the retention window ÷ completed-first "
           "persons; Wilson 95% interval", ci="completed_returned_ci", keep=0),
    Column("failed_persons", "failed first", "count", "persons whose first finished attempt "
           "failed, with their retention window over", keep=1),
    Column("failed_returned", "came back after failing", "rate", "of those, persons with a "
           "qualifying event within the retention window ÷ failed-first persons; Wilson 95% "
           "interval", ci="failed_returned_ci", keep=0),
    Column("retention_difference", "retention gap", "points", "came back after completing − "
           f"after failing{INTERVAL}", ci="retention_difference_ci", keep=0),
    Column("affected", "persons affected", "count", "persons whose first finished attempt "
           "failed, window over or not", keep=1),
    Column("open", "window open", "count", "persons whose first finished attempt completed or "
           "failed less than the retention window before the end of the data: not yet known, "
           "left out of the gap", keep=1),
    Column("retention_s", "retention window", "seconds", "how long after the attempt a person "
           "is watched for coming back (value: retention_days); events in the moment's "
           "escalation window after it (its aftermath) are not a return", keep=2),
)
PARAMETER_COLUMNS = (
    Column("moment", "moment", keep=0),
    Column("failure_cost", "failure cost", "number", "money lost per failed attempt", keep=0),
    Column("contact_cost", "contact cost", "number", "cost of one assisted contact", keep=0),
    Column("lifetime_value", "lifetime value", "number", "a customer's lifetime value", keep=0),
    Column("currency", "currency", "text", "the currency of the three", keep=1),
    Column("retention_s", "retention window", "seconds", "value: retention_days", keep=1),
    Column("source", "from", "text", "where each key comes from: the moment (its value: or "
           "its own keys) or the workspace's value:; keys not named take the built-in default",
           keep=2),
)


class Params(filters.Filters):
    """The filters (which attempts count)."""


def costs_of(v: Value) -> Costs:
    return Costs(v.failure_cost, v.contact_cost, v.lifetime_value)


def _value(e: Estimate | None) -> float:
    return math.nan if e is None else e.value


def _ci(e: Estimate | None) -> list[float] | None:
    return None if e is None else e.ci


def _pair(ci: tuple[float, float]) -> list[float] | None:
    return None if math.isnan(ci[0]) else [float(ci[0]), float(ci[1])]


def compute(ws: Workspace, p: Params) -> Output:
    spec = ws.spec
    names = list(ws.moments)
    values = {m: effective(ws.moment(m), spec.value) for m in names}
    results: dict[str, MomentValue] = {}
    if names:
        a = filters.attempts(ws.attempts(), p)
        # The timeline and the tag table are as fresh as the attempts just read.
        windows = rows_table([{"w_moment": m, "after_ms": round(ws.moment(m).escalation_window * 1000),
                               "retention_ms": round(v.retention_days * 1000)}
                              for m, v in values.items()],
                             {"w_moment": "string", "after_ms": "int64", "retention_ms": "int64"})
        patterns = value_engine.person_patterns(a, ws.db.table("timeline"), windows,
                                                ws.as_of_ms() or 0).to_pandas()
        for m in names:
            rows = patterns[patterns["moment"] == m]
            results[m] = value_analysis.value_at_stake(m, rows, costs_of(values[m]))
    order = value_analysis.rank(results)
    table = pd.DataFrame([_row(i + 1, m, ws.spec.journey_of(m), results[m], values[m])
                          for i, m in enumerate(order)],
                         columns=[c.name for c in COLUMNS] + [c.ci for c in COLUMNS if c.ci])
    retention = pd.DataFrame([_retention_row(m, results[m], values[m]) for m in order],
                             columns=[c.name for c in RETENTION_COLUMNS]
                             + [c.ci for c in RETENTION_COLUMNS if c.ci])
    parameters = pd.DataFrame([_parameter_row(m, ws, spec.value) for m in names],
                              columns=[c.name for c in PARAMETER_COLUMNS])

    notices = small_counts(table, "persons", ["moment"], "persons")
    notices += [Notice(code, message, where) for code, message, where in
                value_analysis.missing({m: costs_of(values[m]) for m in order})]
    notices += [Notice(code, message, {"moment": m}) for m in order for code, message in
                results[m].notes]
    empty = [m for m in order if values[m].retention_days <= ws.moment(m).escalation_window]
    if empty:
        notices.append(Notice("retention-window-empty", f"{', '.join(empty)}: the retention window "
                              "(value: retention_days) is no longer than the escalation window, the "
                              "attempt's aftermath a return must follow: nobody can come back in "
                              "it; lengthen retention_days", {"moments": empty}))
    currencies = sorted({v.currency for v in values.values()})
    if len(currencies) > 1:
        notices.append(Notice("mixed-currencies", f"the moments' values are in {', '.join(currencies)}: "
                              "the ranking compares amounts in different currencies; give every "
                              "moment one currency (the workspace's value: currency)",
                              {"currencies": currencies}))
    totals = [r.total.value for r in results.values() if r.total is not None
              and not math.isnan(r.total.value)]
    meta: dict[str, Any] = {
        "currency": currencies[0] if len(currencies) == 1 else None,
        "total_value": float(sum(totals)) if totals and len(currencies) == 1 else None,
        "resamples": value_analysis.RESAMPLES,
    }
    return Output({"moments": table, "retention": retention, "parameters": parameters}, notices,
                  meta)


def _row(rank: int, name: str, journey: str, v: MomentValue, value: Value) -> dict[str, Any]:
    diff = v.retention.difference
    return {
        "rank": rank, "moment": name, "journey": journey, "attempts": v.attempts,
        "persons": v.persons, "failure_rate": _value(v.failure_rate),
        "failure_value": _value(v.failure_value), "avoidable_contacts": v.avoidable,
        "deflection_value": _value(v.deflection_value), "retention_difference": _value(diff),
        "retention_value": _value(v.retention_value), "total_value": _value(v.total),
        "currency": value.currency,
        "failure_rate_ci": _ci(v.failure_rate), "failure_value_ci": _ci(v.failure_value),
        "deflection_value_ci": _ci(v.deflection_value), "retention_difference_ci": _ci(diff),
        "retention_value_ci": _ci(v.retention_value), "total_value_ci": _ci(v.total),
    }


def _retention_row(name: str, v: MomentValue, value: Value) -> dict[str, Any]:
    r = v.retention
    return {
        "moment": name, "completed_persons": r.completed, "completed_returned": r.completed_rate,
        "failed_persons": r.failed, "failed_returned": r.failed_rate,
        "retention_difference": _value(r.difference), "affected": r.affected, "open": r.open,
        "retention_s": value.retention_days,
        "completed_returned_ci": _pair(wilson_interval(r.completed_back, r.completed)),
        "failed_returned_ci": _pair(wilson_interval(r.failed_back, r.failed)),
        "retention_difference_ci": _ci(r.difference),
    }


def _parameter_row(name: str, ws: Workspace, default: Value) -> dict[str, Any]:
    keys = resolved(ws.moment(name), default)
    given = {"moment": [k for k, (_, s) in keys.items() if s == "moment"],
             "workspace": [k for k, (_, s) in keys.items() if s == "workspace"]}
    return {
        "moment": name, **{k: keys[k][0] for k in ("failure_cost", "contact_cost", "lifetime_value",
                                                    "currency")},
        "retention_s": keys["retention_days"][0],
        "source": "; ".join(f"{where}: {', '.join(ks)}" for where, ks in given.items() if ks) or "—",
    }


ANALYSIS = Analysis(
    name="portfolio",
    title="Value at stake",
    doc="Every moment ranked by the value at stake in it: failure value (attempts × failure "
        "rate × failure cost), deflection value (avoidable assisted contacts × contact cost) and "
        "retention value (the gap in coming back between persons whose first attempt completed "
        "and failed × persons affected × lifetime value), each with a 95% bootstrap interval "
        "over persons; the retention comparison behind it; each moment's costs (value: in the "
        "workspace, docs/value.md).",
    params=Params,
    compute=compute,
    views=(View("moments", "Value at stake", COLUMNS),
           View("retention", "Coming back after completing and after failing", RETENTION_COLUMNS),
           View("parameters", "Costs per moment", PARAMETER_COLUMNS)),
    examples=lambda ws: [{}, {"channel": "web"}],
)

__all__ = ["ANALYSIS", "COLUMNS", "costs_of"]
