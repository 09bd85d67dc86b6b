"""Which segments moved most in a regression (docs/alerts.md, "Segments"): for each value of
each dimension (platform = android, channel = web...), its metric over the baseline days and
over the regression's days, and its *excess*: the extra bad outcomes (or seconds) it had over
the run, ``(observed − baseline) × its finished attempts (or attempts measured) in the run``,
counted the worse way (fewer completions for completion). Ranked by excess, a segment that
is both large and much worse comes first: a small segment that doubled its rate may matter
less than a large one up by a third.

``share`` is the excess over the alert's: by default the whole dimension's pooled tallies
(its rows partition the moment), so shares of a dimension need not add to 1: the rest is
mix (a segment growing in the run), and segments that improved count against it. A segment
with no baseline tallies (a new app version) is held against its dimension's baseline.
The p-value (two-sided; the pooled two-proportion test, Welch's z for means) compares the
segment's run with its own baseline, with no allowance for days varying more than sampling:
read it as a guide to which moves are more than noise, not as a test.

>>> seg = pd.DataFrame({"dimension": "platform", "value": ["ios", "android"],
...                     "base_num": [50, 50], "base_den": [1000, 1000],
...                     "run_num": [52, 100], "run_den": [1000, 1000]})
>>> [(m.value, round(m.change, 3), round(m.excess, 1), round(m.share, 2))
...  for m in movers(seg, "failure_rate")]
[('android', 0.05, 50.0, 0.96), ('ios', 0.002, 2.0, 0.04)]
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import pandas as pd

from .stats import two_proportion_p

__all__ = ["METRICS", "Mover", "movers"]

#: Each metric's kind (``rate``: num/den; ``mean``: n/sum/sum2; ``count``) and its worse
#: direction: +1 up, −1 down, 0 either (volume: a drop, or a spike of retries or bots).
#: Here, below :mod:`.alerts` (which imports it and this module's :func:`movers`).
METRICS: Final[Mapping[str, tuple[str, int]]] = {
    "completion_rate": ("rate", -1), "failure_rate": ("rate", 1), "abandonment_rate": ("rate", 1),
    "escalation_rate": ("rate", 1), "duration": ("mean", 1), "friction_seconds": ("mean", 1),
    "volume": ("count", 0), "csat": ("rate", -1), "ces": ("mean", -1)}


@dataclass(frozen=True)
class Mover:
    """One segment's move: its metric over the baseline and the run, the change (observed −
    baseline), its excess (worse outcomes or seconds it added), its share of the alert's
    excess, and the p-value of its change."""

    dimension: str
    value: str
    baseline: float
    observed: float
    change: float
    excess: float
    share: float
    p_value: float


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


def _variance(n: float, s: float, s2: float) -> float:
    return (s2 - s * s / n) / (n - 1) if n > 1 else math.nan


def _welch_p(r: Mapping[Hashable, Any]) -> float:
    """Two-sided p of Welch's z for the run's mean against the baseline's."""
    nr, nb = float(r["run_n"]), float(r["base_n"])
    se2 = (_variance(nr, float(r["run_sum"]), float(r["run_sum2"])) / nr
           + _variance(nb, float(r["base_sum"]), float(r["base_sum2"])) / nb)
    if not se2 > 0:
        return math.nan
    z = (r["run_sum"] / nr - r["base_sum"] / nb) / math.sqrt(se2)
    return math.erfc(abs(z) / math.sqrt(2))


def movers(segments: pd.DataFrame, metric: str, *, top: int = 5,
           total: float | None = None) -> list[Mover]:
    """The ``top`` segments by excess, the largest first (see the module's docstring).

    ``segments``: one row per (dimension, value) with base_num, base_den, run_num, run_den
    (rates) or base_n, base_sum, base_sum2, run_n, run_sum, run_sum2 (means): tallies over
    the baseline days and over the run's days. ``total``: the alert's excess, if known;
    by default each dimension's from its rows pooled.
    """
    kind, sign = METRICS[metric]
    if kind == "count":
        raise ValueError("movers ranks rates and means; volume has no segment tallies of this form")
    num, den = ("num", "den") if kind == "rate" else ("sum", "n")
    out = []
    for dimension, rows in segments.groupby("dimension", sort=True):
        pooled = rows[[f"base_{num}", f"base_{den}", f"run_{num}", f"run_{den}"]].astype(float).sum()
        whole = _ratio(float(pooled[f"base_{num}"]), float(pooled[f"base_{den}"]))
        ran = float(pooled[f"run_{den}"])
        pooled_excess = sign * (_ratio(float(pooled[f"run_{num}"]), ran) - whole) * ran
        overall = pooled_excess if total is None else total
        for r in rows.to_dict("records"):
            own = _ratio(float(r[f"base_{num}"]), float(r[f"base_{den}"]))
            baseline = whole if math.isnan(own) else own
            observed = _ratio(float(r[f"run_{num}"]), float(r[f"run_{den}"]))
            change = observed - baseline
            excess = sign * change * float(r[f"run_{den}"]) if not math.isnan(change) else math.nan
            if kind == "rate":
                p = two_proportion_p(int(r["run_num"]), int(r["run_den"]), int(r["base_num"]),
                                     int(r["base_den"]))
            else:
                p = _welch_p(r)
            out.append(Mover(str(dimension), str(r["value"]), baseline, observed, change, excess,
                             excess / overall if overall > 0 else math.nan, p))
    # The largest excess first; segments without one (no attempts in the run) last.
    out.sort(key=lambda m: (math.isnan(m.excess), -m.excess if not math.isnan(m.excess) else 0.0,
                            m.dimension, m.value))
    return out[:top]
