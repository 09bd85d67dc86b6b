"""Scorecards and daily series from outcome counts: rates, intervals, targets."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import Any

import pandas as pd

from ..spec import Target, Workspace
from .stats import wilson_interval

#: Rates over finished attempts: rate name → count column.
RATES = {"completion": "completed", "failure": "failed", "abandonment": "abandoned",
         "escalation": "escalations", "self_service": "self_served",
         "authenticated_self_service": "authenticated_self_served"}


def _rate(k: float, n: float) -> float:
    return k / n if n else math.nan


def _with_rates(df: pd.DataFrame) -> pd.DataFrame:
    # Attempts still within their timeout have no outcome yet: rates are over finished ones.
    finished = df["attempts"] - df["in_progress"]
    df = df.assign(finished=finished)
    for name, col in RATES.items():
        df[f"{name}_rate"] = [_rate(k, n) for k, n in zip(df[col], finished, strict=True)]
    df["completion_ci"] = [list(wilson_interval(int(k), int(n))) for k, n in
                           zip(df["completed"], finished, strict=True)]
    df["repeat_contact_rate"] = [_rate(k, n) for k, n in
                                 zip(df["repeat_contacts"], df["contacts"], strict=True)]
    df["retry_rate"] = [_rate(k, n) for k, n in zip(df["retried"], df["attempts"], strict=True)]
    df["sla_met_rate"] = [_rate(k, n) for k, n in zip(df["sla_met"], df["sla_known"], strict=True)]
    return df


#: The scorecard's columns after the moment, the journey and the breakdown keys.
COLUMNS = ("attempts", "persons", "completed", "failed", "abandoned", "escalated", "in_progress",
           "completion_rate", "completion_ci", "failure_rate", "abandonment_rate", "escalations",
           "escalation_rate", "contacts", "repeat_contacts", "repeat_contact_rate",
           "self_service_rate", "authenticated_self_service_rate", "retry_rate",
           "duration_median_s", "duration_p90_s", "sla_s", "sla_met_rate", "target_metric",
           "target_value", "on_target", "status", "attempts_short", "owner")

#: The denominator of each rate a target may name: how many attempts its gap is counted over.
_OVER = {"completion_rate": "finished", "failure_rate": "finished", "abandonment_rate": "finished",
         "escalation_rate": "finished", "sla_met_rate": "sla_known"}


def scorecard(stats: pd.DataFrame, spec: Workspace, keys: list[str]) -> pd.DataFrame:
    """One row per moment (and breakdown group), every defined moment present."""
    moments = spec.moments
    frame = pd.DataFrame({"moment": list(moments)})
    if len(keys) == 1:
        stats = frame.merge(stats, on="moment", how="left")
    counts = ["attempts", "persons", "completed", "failed", "abandoned", "escalated",
              "in_progress", "retried", "sla_known", "sla_met", "escalations", "contacts",
              "repeat_contacts", "self_served", "authenticated_self_served"]
    stats[counts] = stats[counts].fillna(0).astype("int64")
    df = _with_rates(stats)
    df.insert(1, "journey", [spec.journey_of(m) for m in df["moment"]])
    df["sla_s"] = [moments[m].sla for m in df["moment"]]
    df["owner"] = [moments[m].owner for m in df["moment"]]
    targets = [moments[m].target for m in df["moment"]]
    df["target_metric"] = [t.metric if t else None for t in targets]
    df["target_value"] = [t.value if t else None for t in targets]
    rows = df.to_dict("records")
    df["on_target"] = [_on_target(row, t) for row, t in zip(rows, targets, strict=True)]
    df["status"] = [status(row, t) for row, t in zip(rows, targets, strict=True)]
    df["attempts_short"] = [attempts_short(row, t) for row, t in zip(rows, targets, strict=True)]
    order = {m: i for i, m in enumerate(moments)}
    df = df.sort_values(by=keys, key=lambda s: s.map(order) if s.name == "moment" else s)
    return df[[*keys[:1], "journey", *keys[1:], *COLUMNS]].reset_index(drop=True)


def _on_target(row: Mapping[Hashable, Any], target: Target | None) -> bool | None:
    if target is None:
        return None
    value = row.get(target.metric)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if target.lower_is_better:
        return bool(value <= target.value)
    return bool(value >= target.value)


#: A moment's standing against its target, in the words every surface uses.
STATUSES = ("on target", "near target", "off target", "no target", "no data")


def status(row: Mapping[Hashable, Any], target: Target | None) -> str:
    """``on target``; ``near target``: off, but the completion rate's 95% interval reaches
    the target (not clearly off); ``off target``; ``no target``; ``no data``.

    >>> from microjourney.spec.model import Target
    >>> goal = Target(metric="completion_rate", value=0.9)
    >>> [status({"completion_rate": r, "completion_ci": ci}, goal)
    ...  for r, ci in ((0.93, [0.9, 0.95]), (0.88, [0.84, 0.91]), (0.8, [0.78, 0.82]), (None, None))]
    ['on target', 'near target', 'off target', 'no data']
    """
    if target is None:
        return "no target"
    on = _on_target(row, target)
    if on is None:
        return "no data"
    if on:
        return "on target"
    ci = row.get("completion_ci")
    high = ci[1] if ci is not None and len(ci) == 2 else None
    if target.metric == "completion_rate" and high is not None and high == high and high >= target.value:
        return "near target"
    return "off target"


def attempts_short(row: Mapping[Hashable, Any], target: Target | None) -> int | None:
    """How many attempts short of its target a moment is: the gap between its rate and the
    target, on the wrong side, times the attempts the rate is over (rounded); 0 on target.
    None without a target, or for a target on time (not counted in attempts).

    >>> from microjourney.spec.model import Target
    >>> attempts_short({"completion_rate": 0.80, "finished": 1000},
    ...                Target(metric="completion_rate", value=0.92))
    120
    >>> attempts_short({"failure_rate": 0.05, "finished": 400},
    ...                Target(metric="failure_rate", value=0.10))
    0
    """
    if target is None or target.metric not in _OVER:
        return None
    value, n = row.get(target.metric), row.get(_OVER[target.metric])
    if value is None or n is None or (isinstance(value, float) and math.isnan(value)):
        return None
    gap = value - target.value if target.lower_is_better else target.value - value
    return max(0, round(float(gap) * float(n)))


def rank_key(row: Mapping[Hashable, Any]) -> tuple[bool, float, float, str]:
    """How the portfolio (the dashboard's home, the report) ranks a scorecard row: most
    attempts short of target first; rows without a target on a rate last; then by volume
    and name.

    >>> rows = [{"moment": "a", "attempts_short": 0, "attempts": 900},
    ...         {"moment": "b", "attempts_short": 120, "attempts": 50},
    ...         {"moment": "c", "attempts_short": None, "attempts": 5000}]
    >>> [r["moment"] for r in sorted(rows, key=rank_key)]
    ['b', 'a', 'c']
    """
    short = _number(row.get("attempts_short"))
    return (short is None, -(short or 0.0), -(_number(row.get("attempts")) or 0.0), str(row["moment"]))


def _number(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


#: The columns of a series after its keys.
SERIES = ("attempts", "finished", "completed", "failed", "abandoned", "escalated", "in_progress",
          "completion_rate", "completion_ci", "failure_rate")


def series(stats: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """A series (``keys``: the moment, ``period`` and any breakdown) with the completion and
    failure rates over finished attempts and the completion's Wilson interval."""
    stats = _with_rates(stats.copy())
    stats["period"] = pd.to_datetime(stats["period"]).dt.strftime("%Y-%m-%d")  # a UTC day
    return stats[[*keys, *SERIES]].reset_index(drop=True)


def daily(stats: pd.DataFrame) -> pd.DataFrame:
    """Daily series with completion rate and its Wilson interval."""
    stats = _with_rates(stats.copy())
    stats["day"] = pd.to_datetime(stats["day"]).dt.strftime("%Y-%m-%d")  # a UTC calendar day
    return stats[["moment", "day", "attempts", "completed", "failed", "abandoned", "escalated",
                  "in_progress", "completion_rate", "completion_ci"]].reset_index(drop=True)
