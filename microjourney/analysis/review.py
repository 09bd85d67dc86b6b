"""The owner's weekly review (docs/review.md), from small tables: each moment's metric this
week against last week and against its frozen baseline, a RAG status with the reasons for
it, the frictions that grew, and the wall of the best and worst moments.

A moment's **metric** is its target's (completion when it has none). A rate's move is
tested like week on week's: the difference with Newcombe's hybrid score interval and the
pooled two-proportion z-test, Holm-adjusted across the moments reviewed — separately for
the move on last week and for the move against the baseline — so that only a move beyond
chance is called one. A time (a median) is shown but not tested.

**RAG**, in this order:

- **red** — something needs acting on now: a regression alert on the moment ran in the
  week; or its metric got worse than last week beyond chance; or its target's ``by`` day
  has passed and it is clearly off target;
- **amber** — off target (or near it: off, but within the interval), or worse than its
  baseline beyond chance;
- **green** — on target, and nothing above;
- **grey** — no target (or no finished attempt this week), and nothing above.

>>> t = compare(pd.DataFrame({"moment": ["pay"], "metric": ["completion_rate"],
...     "k_now": [56], "n_now": [70], "k_before": [48], "n_before": [80],
...     "k_base": [None], "n_base": [None]}))
>>> round(float(t.change[0]), 4), [round(x, 4) for x in t.change_ci[0]], t.moved[0]
(0.2, [0.0524, 0.3339], 'better')
>>> judge({"status": "off target", "moved": None, "baseline_moved": None, "alerts": 1,
...        "overdue": False})
('red', ['a regression alert ran in the week', 'off target'])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ..spec.model import LOWER_IS_BETTER
from . import stats

#: A move is called one when its Holm-adjusted p-value is below this.
ALPHA = 0.05
#: The colours, worst first.
RAGS = ("red", "amber", "green", "grey")
#: How many moments each side of the wall shows.
WALL = 3


def _tested(k: Any, n: Any, k0: Any, n0: Any) -> tuple[float, list[float] | None, float]:
    """The difference k/n − k0/n0, its 95% interval and the z-test's p (NaN when a side is
    missing or empty)."""
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (k, n, k0, n0)) \
            or not n or not n0:
        return math.nan, None, math.nan
    k, n, k0, n0 = int(k), int(n), int(k0), int(n0)
    low, high = stats.difference_interval(k, n, k0, n0)
    ci = None if math.isnan(low) else [low, high]
    return k / n - k0 / n0, ci, stats.two_proportion_p(k, n, k0, n0)


def _holm(ps: Sequence[float]) -> list[float]:
    """Holm's adjustment of the p-values that are numbers; NaN stays NaN."""
    out = [math.nan] * len(ps)
    known = [i for i, p in enumerate(ps) if p == p]
    for i, q in zip(known, stats.holm([ps[i] for i in known]) if known else [], strict=True):
        out[i] = q
    return out


def _direction(metric: str, change: float, p_adjusted: float) -> str | None:
    if not p_adjusted < ALPHA or change == 0:
        return None
    up = change > 0
    return "worse" if up == (metric in LOWER_IS_BETTER) else "better"


def compare(counts: pd.DataFrame) -> pd.DataFrame:
    """Per moment (rows with ``metric`` and, for a rate, its numerator and denominator this
    week, last week and in the baseline: ``k_now``, ``n_now``, ``k_before``, ``n_before``,
    ``k_base``, ``n_base``): ``change`` (now − last week) with ``change_ci``, ``p_value``,
    ``p_adjusted`` (Holm) and ``moved`` (``better``, ``worse`` or None); the same against
    the baseline as ``vs_baseline``, ``vs_baseline_ci``, ``baseline_p_adjusted`` and
    ``baseline_moved``."""
    t = counts.copy().reset_index(drop=True)
    for prefix, other in (("", "before"), ("vs_baseline", "base")):
        rows = [_tested(r["k_now"], r["n_now"], r[f"k_{other}"], r[f"n_{other}"])
                for r in t.to_dict("records")]
        name = prefix or "change"
        t[name] = [r[0] for r in rows]
        t[f"{name}_ci"] = pd.Series([r[1] for r in rows], index=t.index, dtype=object)
        p_name = "p_value" if not prefix else "baseline_p_value"
        t[p_name] = [r[2] for r in rows]
        adjusted = "p_adjusted" if not prefix else "baseline_p_adjusted"
        t[adjusted] = _holm(list(t[p_name]))
        moved = "moved" if not prefix else "baseline_moved"
        t[moved] = pd.Series([_direction(m, c, q) for m, c, q in
                              zip(t["metric"], t[name], t[adjusted], strict=True)],
                             index=t.index, dtype=object)
    return t


def judge(row: Mapping[str, Any]) -> tuple[str, list[str]]:
    """A moment's RAG colour and its reasons, from its ``status`` against the target, its
    week's move (``moved``), its move against the baseline (``baseline_moved``), the number
    of regression alerts that ran in the week (``alerts``) and whether the target's day has
    passed (``overdue``). The rules are the module's."""
    status = row.get("status")
    red, amber = [], []
    if row.get("alerts"):
        red.append("a regression alert ran in the week" if row["alerts"] == 1
                   else f"{row['alerts']} regression alerts ran in the week")
    if row.get("moved") == "worse":
        red.append("worse than last week beyond chance")
    if row.get("overdue") and status == "off target":
        red.append("off target past its target day")
    if status in ("off target", "near target") and not (row.get("overdue") and status == "off target"):
        amber.append(str(status))
    if row.get("baseline_moved") == "worse":
        amber.append("worse than its baseline beyond chance")
    if red:
        return "red", red + amber
    if amber:
        return "amber", amber
    if status == "on target":
        return "green", ["on target"]
    return "grey", [str(status or "no target")]


def better_change(metric: str, change: float) -> float:
    """``change`` signed so that a positive value is an improvement."""
    return -change if metric in LOWER_IS_BETTER else change


def wall(rows: Sequence[Mapping[str, Any]], size: int = WALL) -> list[dict[str, Any]]:
    """The wall: up to ``size`` worst moments (red, then amber; the largest fall on last
    week first) and up to ``size`` best (green or better beyond chance; the largest rise
    first), each ``{"side", "moment"}``. A moment is on one side only."""
    def fall(r: Mapping[str, Any]) -> float:
        c = r.get("change")
        return better_change(str(r["metric"]), float(c)) if c is not None and c == c else 0.0

    worst = sorted((r for r in rows if r.get("rag") in ("red", "amber")),
                   key=lambda r: (RAGS.index(str(r["rag"])), r.get("moved") != "worse", fall(r),
                                  str(r["moment"])))[:size]
    taken = {r["moment"] for r in worst}
    best = sorted((r for r in rows if r["moment"] not in taken and r.get("rag") != "red"
                   and (r.get("rag") == "green" or r.get("moved") == "better")),
                  key=lambda r: (r.get("moved") != "better", -fall(r), str(r["moment"])))[:size]
    return ([{"side": "worst", "moment": r["moment"]} for r in worst]
            + [{"side": "best", "moment": r["moment"]} for r in best])


def grown(now: pd.DataFrame, before: pd.DataFrame, top: int) -> pd.DataFrame:
    """The frictions that grew: per (moment, kind) with ``seconds`` and ``hit`` this week
    (``now``) and last (``before``), those whose seconds lost grew, the most first, at most
    ``top``; ``new`` when last week had none."""
    keys = ["moment", "kind"]
    columns = [*keys, "seconds_now", "seconds_before", "hit_now", "hit_before", "growth", "new"]
    if now.empty and before.empty:
        return pd.DataFrame(columns=columns)
    m = now.merge(before, on=keys, how="outer", suffixes=("_now", "_before"))
    for c in ("seconds_now", "seconds_before", "hit_now", "hit_before"):
        m[c] = m[c].fillna(0) if c in m else 0
    m["growth"] = m["seconds_now"] - m["seconds_before"]
    m["new"] = m["hit_before"] == 0
    m = m[m["growth"] > 0].sort_values(["growth", "moment", "kind"], ascending=[False, True, True])
    return m.head(top).reset_index(drop=True).astype({"hit_now": "int64", "hit_before": "int64"})


def counts_of(rags: Sequence[str]) -> dict[str, int]:
    """How many moments of each colour."""
    return {c: sum(r == c for r in rags) for c in RAGS}


__all__ = ["ALPHA", "RAGS", "WALL", "better_change", "compare", "counts_of", "grown", "judge", "wall"]
