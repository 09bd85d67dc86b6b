"""Friction summaries from the engine's sufficient statistics: scores, rankings, impact.

Per moment: the share of attempts with a friction (with its Wilson interval), the
friction seconds per attempt, and the **friction score**: the share of the time
customers spent in the moment that frictions cost, in percent (0 to 100; **higher is
worse**).

Per kind within a moment (only kinds that occurred): frictions, attempts affected,
seconds lost, and the **impact on completion** (:func:`impact`): the completion of
finished attempts that met the kind, against that of finished attempts *that had
reached the same step* without having met it, step by step, averaged over the steps
where the kind was met (weighted by how many attempts met it there). A kind met only
late is thus not credited with the completion of attempts that got far; a negative
difference whose interval excludes 0 says the friction goes with lower completion (an
association, not proof of cause).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import pandas as pd

from ..spec import KINDS, Workspace
from .stats import wilson_interval, z_value

MOMENT_COLUMNS = ["moment", "attempts", "affected", "affected_rate", "affected_ci",
                  "friction_seconds", "seconds_per_attempt", "friction_score"]
KIND_COLUMNS = ["moment", "kind", "rank", "frictions", "attempts", "share_of_attempts",
                "seconds_lost", "seconds_per_affected", "completion_with", "completion_without",
                "completion_difference", "difference_ci", "compared", "warning"]

#: Fewest finished attempts with a friction, and fewest without it at the steps where it
#: was met (on average over those attempts), for a difference to be given: below them
#: the normal interval is unreliable and one or two attempts swing the difference by
#: many points.
MIN_EXPOSED = 30
MIN_UNEXPOSED = 30
#: The warning code when there are fewer (the difference and interval are left out).
TOO_FEW = "too-few-attempts"


def _div(a: float, b: float) -> float:
    return a / b if b else math.nan


def summary(moments: pd.DataFrame, spec: Workspace) -> pd.DataFrame:
    """One row per defined moment (moments without attempts show zeros). The
    ``friction_score`` is 100 × friction seconds ÷ seconds spent in attempts, at most
    100: higher is worse."""
    frame = pd.DataFrame({"moment": list(spec.moments)})
    df = frame.merge(moments, on="moment", how="left")
    for col in ("attempts", "finished", "completed", "affected"):
        df[col] = df[col].fillna(0).astype("int64")
    for col in ("friction_seconds", "attempt_seconds"):
        df[col] = df[col].fillna(0.0).astype("float64")
    df["affected_rate"] = [_div(k, n) for k, n in zip(df["affected"], df["attempts"], strict=True)]
    df["affected_ci"] = [list(wilson_interval(int(k), int(n))) for k, n in
                         zip(df["affected"], df["attempts"], strict=True)]
    df["seconds_per_attempt"] = [_div(s, n) for s, n in
                                 zip(df["friction_seconds"], df["attempts"], strict=True)]
    df["friction_score"] = [min(100.0, 100.0 * _div(s, t)) if t else (0.0 if n else math.nan)
                            for s, t, n in zip(df["friction_seconds"], df["attempt_seconds"],
                                               df["attempts"], strict=True)]
    return df[MOMENT_COLUMNS].reset_index(drop=True)


@dataclass(frozen=True)
class Impact:
    """A kind's impact on completion (see :func:`impact`)."""

    completion_with: float
    completion_without: float
    difference: float
    interval: tuple[float, float] | None
    compared: int
    warning: str | None


def impact(steps: Iterable[Mapping[str, Any]], *, confidence: float = 0.95,
           min_exposed: int = MIN_EXPOSED, min_unexposed: int = MIN_UNEXPOSED) -> Impact:
    """Completion with a friction against completion without it at the same step.

    ``steps``: per step (``step``) where attempts first met the kind, the engine's counts
    of finished attempts (:func:`microjourney.engine.frictions.friction_stats`):
    ``exposed`` / ``exposed_completed`` (first met it there), ``unexposed`` /
    ``unexposed_completed`` (reached the step without having met it by then) and
    ``never`` / ``never_completed`` (never met it; their furthest step is this one).

    With ``n1k`` exposed and ``n0k`` unexposed attempts at step k, completion rates
    ``p1k`` and ``p0k``, over the steps with both (``N1 = Σ n1k``, ``w_k = n1k / N1``):

    * ``completion_with = Σ w_k p1k``: the completion of the attempts that met it;
    * ``completion_without = Σ w_k p0k``: what attempts without it completed at the same
      steps, standardised to where the friction was met;
    * the difference of the two (the exposed-weighted risk difference: Rothman,
      Greenland & Lash, *Modern Epidemiology*, 3rd ed. 2008, ch. 15, "standardized
      measures" with the exposed as the standard), and its normal ``confidence``
      interval, clipped to [-1, 1].

    The variance: one attempt is in the comparison group of every step it passed, so the
    steps are not independent strata and the textbook formulas for stratified
    differences (Greenland & Robins 1985; Sato 1989), which assume disjoint strata, do
    not apply. It is instead the delta method over the attempts as independent draws
    (the influence function of the estimator; e.g. van der Vaart, *Asymptotic
    Statistics*, 1998, ch. 20): with the attempt's completion ``y``, its first exposed
    step ``e`` (if any) and the last step ``m`` at which it was still without the kind,

        φ = [e compared] (y - D - p0e) / N1  -  Σ_{compared k ≤ m} w_k (y - p0k) / n0k

    and ``Var(D) = Σ φ²`` over attempts, computed per cell of equal (e, m, y): the
    ``exposed`` counts (``m = e - 1``) and the ``never`` ones (no ``e``). With one step
    it is the familiar ``p1(1-p1)/n1 + p0(1-p0)/n0``.

    ``compared``: the distinct attempts in the comparison (those that reached the first
    compared step). ``warning`` is :data:`TOO_FEW` when fewer than ``min_exposed``
    attempts met the kind or fewer than ``min_unexposed`` were without it at the steps
    where it was met (their mean over the exposed attempts); the difference is then NaN
    and the interval ``None``.
    """
    rows = {int(r["step"]): r for r in steps}
    used = sorted(k for k, r in rows.items() if r["exposed"] > 0 and r["unexposed"] > 0)
    n1 = sum(int(rows[k]["exposed"]) for k in used)
    if not n1:
        return Impact(math.nan, math.nan, math.nan, None, 0, TOO_FEW)
    w = {k: int(rows[k]["exposed"]) / n1 for k in used}
    p1 = {k: int(rows[k]["exposed_completed"]) / int(rows[k]["exposed"]) for k in used}
    n0 = {k: int(rows[k]["unexposed"]) for k in used}
    p0 = {k: int(rows[k]["unexposed_completed"]) / n0[k] for k in used}
    with_rate = sum(w[k] * p1[k] for k in used)
    without_rate = sum(w[k] * p0[k] for k in used)
    d = with_rate - without_rate
    first = rows[used[0]]
    compared = int(first["unexposed"]) + int(first["exposed"])
    if n1 < min_exposed or sum(w[k] * n0[k] for k in used) < min_unexposed:
        return Impact(with_rate, without_rate, math.nan, None, compared, TOO_FEW)

    def unexposed_part(m: int, y: int) -> float:
        return sum(w[k] * (y - p0[k]) / n0[k] for k in used if k <= m)

    var = 0.0
    for k, r in rows.items():
        for y, n in ((1, int(r["exposed_completed"])), (0, int(r["exposed"]) - int(r["exposed_completed"]))):
            phi = ((y - d - p0[k]) / n1 if k in w else 0.0) - unexposed_part(k - 1, y)
            var += n * phi * phi
        for y, n in ((1, int(r["never_completed"])), (0, int(r["never"]) - int(r["never_completed"]))):
            phi = -unexposed_part(k, y)
            var += n * phi * phi
    half = z_value(confidence) * math.sqrt(var)
    return Impact(with_rate, without_rate, d, (max(-1.0, d - half), min(1.0, d + half)),
                  compared, None)


def ranked(kinds: pd.DataFrame, moments: pd.DataFrame, spec: Workspace, *,
           min_exposed: int = MIN_EXPOSED, min_unexposed: int = MIN_UNEXPOSED) -> pd.DataFrame:
    """Kinds per moment ranked by seconds lost, with their impact on completion
    (:func:`impact`); ``kinds`` holds the engine's counts per (moment, kind, step). Kinds
    that did not occur in a moment are not listed."""
    if kinds.empty:
        return pd.DataFrame(columns=KIND_COLUMNS)
    in_moment = {str(m): int(n) for m, n in zip(moments["moment"], moments["attempts"], strict=True)}
    rows = []
    for (moment, kind), steps in kinds.groupby(["moment", "kind"], sort=False):
        attempts = int(steps["attempts"].sum())
        if not attempts:
            continue
        seconds = float(steps["seconds_lost"].sum())
        records = cast(list[dict[str, Any]], steps.to_dict("records"))
        i = impact(records, min_exposed=min_exposed, min_unexposed=min_unexposed)
        rows.append({
            "moment": moment, "kind": kind, "frictions": int(steps["frictions"].sum()),
            "attempts": attempts,
            "share_of_attempts": _div(attempts, in_moment[str(moment)]),
            "seconds_lost": seconds, "seconds_per_affected": _div(seconds, attempts),
            "completion_with": i.completion_with, "completion_without": i.completion_without,
            "completion_difference": i.difference,
            "difference_ci": None if i.interval is None else list(i.interval),
            "compared": i.compared, "warning": i.warning,
        })
    if not rows:
        return pd.DataFrame(columns=KIND_COLUMNS)
    df = pd.DataFrame(rows)
    order = {k: i for i, k in enumerate([*spec.moments, *KINDS])}
    df = df.sort_values(["moment", "seconds_lost", "kind"], ascending=[True, False, True],
                        key=lambda s: s.map(order) if s.name != "seconds_lost" else s)
    df["rank"] = df.groupby("moment").cumcount() + 1
    return df[KIND_COLUMNS].reset_index(drop=True)
