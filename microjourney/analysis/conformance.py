"""Conformance tables in words: rates per moment, deviations named by their steps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from .stats import wilson_interval


def summary(counts: pd.DataFrame, moments: Sequence[str]) -> pd.DataFrame:
    """Per moment: attempts, conforming attempts, conformance rate with its Wilson interval."""
    by = {r["moment"]: r for r in counts.to_dict("records")}
    rows = []
    for name in moments:
        n = int(by.get(name, {}).get("attempts", 0) or 0)
        bad = int(by.get(name, {}).get("deviating", 0) or 0)
        rows.append({"moment": name, "attempts": n, "conforming": n - bad,
                     "conformance_rate": (n - bad) / n if n else float("nan"),
                     "conformance_ci": list(wilson_interval(n - bad, n))})
    return pd.DataFrame(rows)


def named(dev: pd.DataFrame, labels_of: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Deviations with step labels and a sentence each, most frequent first."""
    out = []
    for r in dev.to_dict("records"):
        labels = labels_of[r["moment"]]
        a, b = labels[int(r["prev"])], labels[int(r["step"])]
        if r["kind"] == "skipped":
            gap = ", ".join(labels[int(r["prev"]) + 1:int(r["step"])])
            text = f"skipped {gap} (from {a} to {b})"
        elif r["kind"] == "repeated":
            text = f"repeated {a}"
        else:
            text = f"{b} again after {a}"
        out.append({"moment": r["moment"], "kind": r["kind"], "from_step": a, "to_step": b,
                    "deviation": text, "attempts": int(r["attempts"]),
                    "occurrences": int(r["occurrences"])})
    df = pd.DataFrame(out, columns=["moment", "kind", "from_step", "to_step", "deviation",
                                    "attempts", "occurrences"])
    return df.sort_values(["moment", "attempts", "deviation"], ascending=[True, False, True],
                          ignore_index=True)
