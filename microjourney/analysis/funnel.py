"""Funnel steps from the engine's per-step counts and median times."""

from __future__ import annotations

import math

import pandas as pd


def steps(stats: pd.DataFrame, labels: tuple[str, ...]) -> pd.DataFrame:
    """One row per step: count, conversion from start and from previous, median time."""
    row = stats.iloc[0] if len(stats) else {}
    counts = [int(_num(row.get(f"count{k}"), 0)) for k in range(len(labels))]
    out = []
    for k, label in enumerate(labels):
        median = _num(row.get(f"median{k}"), math.nan) if k else math.nan
        out.append({
            "step": k + 1,
            "name": label,
            "count": counts[k],
            "conversion_from_start": counts[k] / counts[0] if counts[0] else math.nan,
            "conversion_from_previous": (counts[k] / counts[k - 1] if k and counts[k - 1]
                                         else (1.0 if counts[0] else math.nan) if not k
                                         else math.nan),
            "median_time_from_previous_s": None if math.isnan(median) else median / 1000.0,
        })
    return pd.DataFrame(out)


def _num(value: object, default: float) -> float:
    if value is None:
        return default
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return default if math.isnan(v) else v
