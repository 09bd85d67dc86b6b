"""Friction summaries from the engine's sufficient statistics: scores, rankings, impact.

Per moment: the share of attempts with a friction (with its Wilson interval), the
friction seconds per attempt, and the **friction score**: the share of the time
customers spent in the moment that frictions cost, in percent (at most 100).

Per kind within a moment: frictions, attempts affected, seconds lost, and the
**impact on completion**: the completion rate of finished attempts with the friction
minus that of finished attempts without it that reached the earliest step where the
friction occurs, with Newcombe's hybrid score interval.
A negative difference whose interval excludes 0 says the friction goes with lower
completion (an association, not proof of cause).
"""

from __future__ import annotations

import math

import pandas as pd

from ..spec import KINDS, Workspace
from .stats import difference_interval, wilson_interval

MOMENT_COLUMNS = ["moment", "attempts", "affected", "affected_rate", "affected_ci",
                  "friction_seconds", "seconds_per_attempt", "friction_score"]
KIND_COLUMNS = ["moment", "kind", "rank", "frictions", "attempts", "share_of_attempts",
                "seconds_lost", "seconds_per_affected", "completion_with", "completion_without",
                "completion_difference", "difference_ci"]


def _div(a: float, b: float) -> float:
    return a / b if b else math.nan


def summary(moments: pd.DataFrame, spec: Workspace) -> pd.DataFrame:
    """One row per defined moment (moments without attempts show zeros)."""
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


def ranked(kinds: pd.DataFrame, moments: pd.DataFrame, spec: Workspace) -> pd.DataFrame:
    """Kinds per moment ranked by seconds lost, with their impact on completion."""
    if kinds.empty:
        return pd.DataFrame(columns=KIND_COLUMNS)
    tot = moments.set_index("moment")
    rows = []
    for r in kinds.to_dict("records"):
        m = tot.loc[r["moment"]]
        k_with, n_with = int(r["completed"]), int(r["finished"])
        # Without: attempts that reached the kind's earliest step and did not meet it.
        k_without = int(r["reached_completed"]) - k_with
        n_without = int(r["reached_finished"]) - n_with
        with_rate, without_rate = _div(k_with, n_with), _div(k_without, n_without)
        rows.append({
            "moment": r["moment"], "kind": r["kind"], "frictions": int(r["frictions"]),
            "attempts": int(r["attempts"]),
            "share_of_attempts": _div(int(r["attempts"]), int(m["attempts"])),
            "seconds_lost": float(r["seconds_lost"]),
            "seconds_per_affected": _div(float(r["seconds_lost"]), int(r["attempts"])),
            "completion_with": with_rate, "completion_without": without_rate,
            "completion_difference": with_rate - without_rate,
            "difference_ci": list(difference_interval(k_with, n_with, k_without, n_without)),
        })
    df = pd.DataFrame(rows)
    order = {k: i for i, k in enumerate([*spec.moments, *KINDS])}
    df = df.sort_values(["moment", "seconds_lost", "kind"], ascending=[True, False, True],
                        key=lambda s: s.map(order) if s.name != "seconds_lost" else s)
    df["rank"] = df.groupby("moment").cumcount() + 1
    return df[KIND_COLUMNS].reset_index(drop=True)
