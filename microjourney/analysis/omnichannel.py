"""Omnichannel consistency: the same moment across the channels its attempts start in
(docs/omnichannel.md), from per (moment, channel) sufficient statistics.

Per channel: completion (completed ÷ finished attempts) with its Wilson interval, the time
to complete (the engine's median; the mean with its t interval from the completed attempts'
n, sum and sum of squares), escalation (escalated ÷ finished) and, where a survey of the
moment asks CSAT, the satisfied share of the CSAT answers linked to the channel's attempts.

Per moment in two or more channels, over its **judged** channels (those with at least
``min_finished`` finished attempts, :data:`MIN_FINISHED` by default; smaller ones are shown
but judge nothing):

- the **typical gap**: how far apart two of its channels' completion rates are, in points —
  the root mean square of the gaps over every pair of judged channels, less what chance
  alone adds (each rate's binomial variance, estimated without bias), never below 0;
- the **consistency** score, 1 − the typical gap: 1 when every channel completes as often
  as every other, 0.8 when two channels are typically 20 points apart;
- the **worst channel** (the lowest completion; a tie goes to the one with more finished
  attempts) and its **gap** to the best other judged channel, with Newcombe's hybrid score
  interval (method 10) and the pooled two-proportion z-test. The p-value is adjusted by
  Holm's method over every pair of judged channels of every moment compared (the worst and
  the best are picked after looking at all pairs, so every pair counts as a test); the gap is
  **beyond chance** when the adjusted p is below :data:`ALPHA`;
- the judged channel with the highest escalation rate.

>>> t = channels(pd.DataFrame({"moment": ["pay"] * 3, "channel": ["web", "app", "chat"],
...     "attempts": [100, 100, 100], "finished": [100, 100, 100], "completed": [80, 70, 50],
...     "escalated": [2, 5, 20]}))
>>> m = moments(t)
>>> m.worst_channel[0], m.best_channel[0], round(float(m.gap[0]), 2)
('chat', 'web', -0.3)
>>> round(float(m.typical_gap[0]), 4), round(float(m.consistency[0]), 4)
(0.2061, 0.7939)
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from itertools import combinations
from typing import Any

import pandas as pd

from . import stats

#: Channels with fewer finished attempts are shown but judge nothing (their completion's
#: 95% interval is wider than about ±15 points).
MIN_FINISHED = 30
#: A gap is beyond chance when its Holm-adjusted p-value is below this.
ALPHA = 0.05

#: The columns :func:`channels` adds to the statistics.
CHANNEL_COLUMNS = ("completion", "completion_ci", "gap_to_best", "duration_mean_s", "duration_ci",
                   "escalation_rate", "escalation_ci", "csat", "csat_ci", "judged")
#: The columns of :func:`moments`' rows.
MOMENT_COLUMNS = ("moment", "channels", "judged", "consistency", "typical_gap", "worst_channel",
                  "worst_completion", "worst_finished", "best_channel", "best_completion",
                  "best_finished", "gap", "gap_ci", "beyond_chance", "p_adjusted", "p_value",
                  "most_escalated", "most_escalated_rate")


def typical_gap(counts: Sequence[tuple[int, int]]) -> float:
    """The typical gap in completion between two channels, from their (completed, finished)
    counts: √(mean over pairs of (pᵢ − pⱼ)² − vᵢ − vⱼ), where vᵢ = pᵢ(1 − pᵢ) ÷ (nᵢ − 1)
    is the unbiased estimate of the variance of pᵢ, so that channels that differ only by
    chance read about 0 whatever their sizes; 0 when chance explains all of the spread;
    NaN with fewer than two channels of two or more attempts.

    >>> round(typical_gap([(80, 100), (70, 100), (50, 100)]), 4)
    0.2061
    >>> typical_gap([(40, 50), (400, 500)]), typical_gap([(8, 10)])
    (0.0, nan)
    """
    kept = [(k, n) for k, n in counts if n >= 2]
    if len(kept) < 2:
        return math.nan
    rates = [k / n for k, n in kept]
    noise = [p * (1 - p) / (n - 1) for p, (_, n) in zip(rates, kept, strict=True)]
    pairs = list(combinations(range(len(kept)), 2))
    excess = sum((rates[i] - rates[j]) ** 2 - noise[i] - noise[j] for i, j in pairs) / len(pairs)
    return math.sqrt(max(0.0, excess))


def mean_interval(n: int, total: float, total2: float,
                  confidence: float = 0.95) -> tuple[float, tuple[float, float] | None]:
    """The mean of ``n`` values from their sum and sum of squares, with Student's t interval
    (None under two values).

    >>> m, (lo, hi) = mean_interval(4, 20.0, 120.0)  # 2, 4, 6, 8: mean 5, sd 2.582
    >>> m, round(lo, 3), round(hi, 3)
    (5.0, 0.891, 9.109)
    """
    if n <= 0:
        return math.nan, None
    mean = total / n
    if n < 2:
        return mean, None
    var = max(0.0, (total2 - total * total / n) / (n - 1))
    from scipy.stats import t as student_t  # scipy.stats: imported when first needed
    half = float(student_t.ppf(0.5 + confidence / 2, n - 1)) * math.sqrt(var / n)
    return mean, (mean - half, mean + half)


def _share(k: float, n: float) -> tuple[float, list[float] | None]:
    if not n or n != n:
        return math.nan, None
    return k / n, list(stats.wilson_interval(int(k), int(n)))


def _int(value: Any) -> int:
    return 0 if value is None or value != value else int(value)


def channels(stats_: pd.DataFrame, min_finished: int = MIN_FINISHED) -> pd.DataFrame:
    """Per (moment, channel) row of ``stats_`` (``finished``, ``completed``, ``escalated``;
    optionally ``duration_n``, ``duration_sum``, ``duration_sum2`` and ``csat_satisfied``,
    ``csat_answers``): the rows with :data:`CHANNEL_COLUMNS` added, in the order given.
    ``gap_to_best``: completion − the highest completion among the moment's judged channels."""
    t = stats_.copy().reset_index(drop=True)
    rows: dict[str, list[Any]] = {c: [] for c in CHANNEL_COLUMNS}
    for r in t.to_dict("records"):
        finished = _int(r["finished"])
        completion, completion_ci = _share(_int(r["completed"]), finished)
        escalation, escalation_ci = _share(_int(r["escalated"]), finished)
        answers = _int(r.get("csat_answers"))
        csat, csat_ci = _share(_int(r.get("csat_satisfied")), answers)
        mean, mean_ci = mean_interval(_int(r.get("duration_n")), float(r.get("duration_sum") or 0.0),
                                      float(r.get("duration_sum2") or 0.0))
        for name, value in (("completion", completion), ("completion_ci", completion_ci),
                            ("duration_mean_s", mean),
                            # Sums of seconds add up in another order on another engine:
                            # the interval to 9 decimals is the same on every engine.
                            ("duration_ci", None if mean_ci is None else [round(x, 9) for x in mean_ci]),
                            ("escalation_rate", escalation), ("escalation_ci", escalation_ci),
                            ("csat", csat), ("csat_ci", csat_ci),
                            ("judged", finished >= min_finished)):
            rows[name].append(value)
    for name in CHANNEL_COLUMNS:
        if name != "gap_to_best":
            t[name] = pd.Series(rows[name], index=t.index, dtype=object if name.endswith("_ci")
                                else None)
    best = t[t["judged"].astype(bool)].groupby("moment")["completion"].max()
    t["gap_to_best"] = t["completion"] - t["moment"].map(best).astype(float)
    return t


def _pick(rows: list[dict[Hashable, Any]], key: str, lowest: bool) -> dict[Hashable, Any]:
    """The row with the lowest (or highest) ``key``; a tie goes to the one with more finished
    attempts, then to the first given."""
    sign = 1 if lowest else -1
    order = sorted(range(len(rows)), key=lambda i: (sign * float(rows[i][key]),
                                                    -int(rows[i]["finished"]), i))
    return rows[order[0]]


def moments(table: pd.DataFrame, min_finished: int = MIN_FINISHED) -> pd.DataFrame:
    """Per moment with finished attempts in two or more channels (``table`` as
    :func:`channels` gives it): the judged channels, the consistency score and the typical
    gap, the worst channel and its gap to the best other one with its interval and p-values,
    and the channel that escalates most (see the module doc). Least consistent first; moments
    with fewer than two judged channels last."""
    out: list[dict[str, Any]] = []
    tests: list[tuple[int, tuple[str, str], float]] = []  # (row, pair, p) for Holm
    chosen: dict[int, tuple[str, str]] = {}
    for moment, group in table.groupby("moment", sort=False):
        present = [r for r in group.to_dict("records") if _int(r["finished"]) > 0]
        if len(present) < 2:
            continue
        judged = [r for r in present if _int(r["finished"]) >= min_finished]
        gap = typical_gap([(_int(r["completed"]), _int(r["finished"])) for r in judged])
        row: dict[str, Any] = {c: None for c in MOMENT_COLUMNS}
        row.update(moment=moment, channels=len(present), judged=len(judged), typical_gap=gap,
                   consistency=1 - gap, p_value=math.nan, p_adjusted=math.nan)
        i = len(out)
        if len(judged) >= 2:
            worst = _pick(judged, "completion", lowest=True)
            best = _pick([r for r in judged if r is not worst], "completion", lowest=False)
            k = (_int(worst["completed"]), _int(worst["finished"]),
                 _int(best["completed"]), _int(best["finished"]))
            low, high = stats.difference_interval(*k)
            row.update(worst_channel=worst["channel"], worst_completion=worst["completion"],
                       worst_finished=k[1], best_channel=best["channel"],
                       best_completion=best["completion"], best_finished=k[3],
                       gap=worst["completion"] - best["completion"], gap_ci=[low, high],
                       p_value=stats.two_proportion_p(*k))
            chosen[i] = (str(worst["channel"]), str(best["channel"]))
            for a, b in combinations(judged, 2):
                p = stats.two_proportion_p(_int(a["completed"]), _int(a["finished"]),
                                           _int(b["completed"]), _int(b["finished"]))
                tests.append((i, (str(a["channel"]), str(b["channel"])), p))
            loud = _pick(judged, "escalation_rate", lowest=False)
            row.update(most_escalated=loud["channel"], most_escalated_rate=loud["escalation_rate"])
        out.append(row)
    adjusted = stats.holm([p for _, _, p in tests])
    for (i, pair, _), adj in zip(tests, adjusted, strict=True):
        if set(pair) == set(chosen[i]):
            out[i]["p_adjusted"] = adj
    for r in out:
        r["beyond_chance"] = (None if r["gap"] is None
                              else bool(r["p_adjusted"] < ALPHA and r["gap"] != 0))
    t = pd.DataFrame(out, columns=list(MOMENT_COLUMNS))
    t["gap_ci"] = pd.Series([r["gap_ci"] for r in out], index=t.index, dtype=object)
    t["beyond_chance"] = pd.Series([r["beyond_chance"] for r in out], index=t.index, dtype=object)
    for name in ("consistency", "typical_gap", "worst_completion", "best_completion", "gap",
                 "p_adjusted", "p_value", "most_escalated_rate"):
        t[name] = t[name].astype(float)
    for name in ("worst_finished", "best_finished"):
        t[name] = t[name].astype("Int64")
    t["_order"] = t["consistency"].fillna(2.0)
    return t.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)


def headline(rows: Sequence[Mapping[Hashable, Any]], min_finished: int = MIN_FINISHED) -> str:
    """The widest gap beyond chance in a sentence (rows as :func:`moments` gives them).

    >>> headline([{"moment": "pay", "worst_channel": "chat", "best_channel": "web",
    ...            "worst_completion": 0.5, "best_completion": 0.8, "gap": -0.3,
    ...            "beyond_chance": True, "consistency": 0.79}])
    'pay: chat completes 30.0 points below web (50.0% against 80.0%), beyond chance; consistency 0.79.'
    """
    judged = [r for r in rows if r.get("gap") is not None and r["gap"] == r["gap"]]
    if not judged:
        return (f"No moment has two channels with {min_finished} or more finished attempts to "
                "compare.")
    apart = sorted((r for r in judged if r.get("beyond_chance")), key=lambda r: float(r["gap"]))
    if not apart:
        r = min(judged, key=lambda r: float(r["consistency"]))
        return (f"No moment's channels differ in completion beyond chance; the least consistent: "
                f"{r['moment']} ({float(r['consistency']):.2f}).")
    r = apart[0]
    more = f" {len(apart) - 1} more moments differ." if len(apart) > 1 else ""
    return (f"{r['moment']}: {r['worst_channel']} completes {abs(100 * float(r['gap'])):.1f} points "
            f"below {r['best_channel']} ({100 * float(r['worst_completion']):.1f}% against "
            f"{100 * float(r['best_completion']):.1f}%), beyond chance; consistency "
            f"{float(r['consistency']):.2f}.{more}")


__all__ = ["ALPHA", "CHANNEL_COLUMNS", "MIN_FINISHED", "MOMENT_COLUMNS", "channels", "headline",
           "mean_interval", "moments", "typical_gap"]
