"""Week on week: how each moment's completion moved between two windows of equal length
(by default the seven days before the end of the data and the seven before those), whether
the move is beyond chance, and the headline of what moved most.

The change is in percentage points of completion over finished attempts, with Newcombe's
hybrid score interval for a difference of proportions (method 10 of Newcombe, 1998), and
the pooled two-proportion z-test (the score test of a difference); p-values are adjusted
across the moments by Holm's method, so a headline drawn from a dozen moments every week
is not a false alarm one week in two.

>>> t = compare(pd.DataFrame({"moment": ["pay"], "finished_before": [80], "completed_before": [48],
...                           "finished_now": [70], "completed_now": [56]}))
>>> round(float(t.change[0]), 4), [round(x, 4) for x in t.change_ci[0]], t.moved[0]
(0.2, [0.0524, 0.3339], 'up')
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import stats

#: A move is reported as one (``up``/``down``) when its Holm-adjusted p-value is below this.
ALPHA = 0.05


def compare(counts: pd.DataFrame) -> pd.DataFrame:
    """Per moment (rows with ``finished_before``, ``completed_before``, ``finished_now``,
    ``completed_now``): both completion rates, the change (now − before) with its 95%
    interval, the p-value and its Holm adjustment, and ``moved`` (``up``, ``down``, or
    None); ranked: moves first by size, then the rest by p-value."""
    t = counts.copy()
    for side in ("before", "now"):
        n = t[f"finished_{side}"].astype(float)
        t[f"completion_{side}"] = t[f"completed_{side}"] / n.where(n > 0)
    t["change"] = t["completion_now"] - t["completion_before"]
    cis: list[list[float] | None] = []
    ps: list[float] = []
    for r in t.to_dict("records"):
        k = (int(r["completed_now"]), int(r["finished_now"]), int(r["completed_before"]),
             int(r["finished_before"]))
        low, high = stats.difference_interval(*k)
        cis.append(None if math.isnan(low) else [low, high])
        ps.append(stats.two_proportion_p(*k))
    t["change_ci"] = pd.Series(cis, index=t.index, dtype=object)
    t["p_value"] = ps
    tested = t["p_value"].notna()
    t["p_adjusted"] = np.nan
    if tested.any():
        t.loc[tested, "p_adjusted"] = stats.holm(list(t.loc[tested, "p_value"]))
    moved = tested & (t["p_adjusted"] < ALPHA)
    # Object, so that no move stays None (a string column would make it NaN).
    t["moved"] = pd.Series([("up" if c > 0 else "down") if m else None
                            for m, c in zip(moved, t["change"], strict=True)], index=t.index, dtype=object)
    # Moves first, the largest first; then the rest, the clearest first.
    t["_order"] = (-t["change"].abs()).where(moved, t["p_value"].fillna(2.0) + 1)
    t = t.sort_values(["_order", "moment"], kind="stable").drop(columns="_order")
    return t.reset_index(drop=True)


def headline(rows: Sequence[Mapping[Hashable, Any]], days: int) -> str:
    """What moved most, in a sentence (rows as :func:`compare` ranks them).

    >>> headline([{"moment": "pay", "moved": "down", "change": -0.062, "completion_before": 0.81,
    ...            "completion_now": 0.748, "finished_before": 1204, "finished_now": 1180,
    ...            "p_adjusted": 0.0004}], 7)
    'pay: completion down 6.2 points week on week (81.0% → 74.8%; 1,204 and 1,180 finished attempts).'
    """
    window = "week on week" if days == 7 else f"on the {days} days before"
    moving = [r for r in rows if r.get("moved")]
    if not moving:
        tested = [r for r in rows if r.get("p_value") is not None and r["p_value"] == r["p_value"]]
        if not tested:
            return f"No moment has finished attempts in both windows of {days} days."
        r = tested[0]
        return (f"No moment's completion moved beyond chance {window}; the clearest change: "
                f"{r['moment']} {100 * r['change']:+.1f} points.")
    r = moving[0]
    more = f" {len(moving) - 1} more moved." if len(moving) > 1 else ""
    return (f"{r['moment']}: completion {r['moved']} {abs(100 * r['change']):.1f} points {window} "
            f"({100 * r['completion_before']:.1f}% → {100 * r['completion_now']:.1f}%; "
            f"{r['finished_before']:,} and {r['finished_now']:,} finished attempts).{more}")


__all__ = ["ALPHA", "compare", "headline"]
