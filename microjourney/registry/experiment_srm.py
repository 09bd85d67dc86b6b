"""The sample-ratio check of an experiment's exposures (:mod:`.experiment`): each variant's
exposed persons against its planned share, overall and per value of the channel and the
:data:`~microjourney.engine.experiments.DIMENSIONS` of each person's first exposure, with
Holm-adjusted p-values across all those values (docs/experiments.md, "Sample-ratio check per
dimension")."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..analysis.experiments.srm import SRMCheck, srm, srm_by
from ..engine.experiments import DIMENSIONS
from ..spec.experiments import Experiment
from .base import Notice

__all__ = ["exposure_tables"]


def _split(counts: pd.DataFrame, variants: Sequence[str]) -> list[int]:
    got = counts.groupby("variant")["persons"].sum().to_dict() if len(counts) else {}
    return [int(got.get(v, 0)) for v in variants]


def exposure_tables(e: Experiment, counts: pd.DataFrame,
                    ) -> tuple[pd.DataFrame, pd.DataFrame, SRMCheck, list[Notice], int]:
    """From the persons per (variant, channel, dimensions, mixed): the ``exposure`` table
    (each variant's planned and exposed share), the ``srm`` table (the check overall, then
    per value of the first exposure's channel and :data:`DIMENSIONS` with Holm-adjusted
    p-values across all those values), the overall check, the notices and how many persons
    saw more than one variant."""
    weights = e.weights()
    variants = list(weights)
    if len(counts):
        mixed_rows = counts["mixed"].astype(bool)
        mixed = int(counts.loc[mixed_rows, "persons"].sum())
        kept = counts[~mixed_rows & counts["variant"].isin(variants)]
    else:
        mixed, kept = 0, counts
    notices: list[Notice] = []
    if mixed:
        notices.append(Notice("mixed-exposure", f"{mixed} persons saw more than one variant: left "
                              "out", {"experiment": e.name}))
    split = _split(kept, variants)
    total = sum(split)
    exposure = pd.DataFrame([{"variant": v, "planned": w, "exposed": n,
                              "share": n / total if total else math.nan}
                             for (v, w), n in zip(weights.items(), split, strict=True)])
    check = srm(split, list(weights.values()))
    if check.flagged:
        notices.append(Notice("srm", f"sample-ratio mismatch: exposed {check.counts} against the "
                              f"planned {tuple(round(x) for x in check.expected)}, p = "
                              f"{check.p_value:.2g}; the assignment or the exposure logging is "
                              "broken, so the results below are not to be trusted",
                              {"experiment": e.name}))
    rows: list[dict[str, Any]] = [{"dimension": "all", "value": "all", "exposed": total,
                                   "split": split, "p": check.p_value, "mismatch": check.flagged}]
    family: dict[str, list[int]] = {}
    keys: dict[str, tuple[str, str]] = {}
    for dim in ("channel", *DIMENSIONS):
        if dim not in kept.columns:
            continue
        values = sorted(str(x) for x in kept[dim].dropna().unique())
        if len(values) < 2:
            continue  # one value: the overall check
        for value in values:
            key = f"{dim} {value}"
            family[key] = _split(kept[kept[dim].astype(str) == value], variants)
            keys[key] = (dim, value)
    checks = srm_by(family, list(weights.values())) if family else {}
    for key, c in checks.items():
        dim, value = keys[key]
        rows.append({"dimension": dim, "value": value, "exposed": sum(c.counts), "split": list(c.counts),
                     "p": c.p_value, "mismatch": c.flagged})
        if c.flagged:
            notices.append(Notice("srm", f"sample-ratio mismatch in {dim} {value}: exposed "
                                  f"{list(c.counts)} against the planned "
                                  f"{[round(x) for x in c.expected]}, Holm-adjusted p = "
                                  f"{c.p_value:.2g} (< 0.001, across the {len(checks)} values "
                                  f"checked); look at how {dim} {value} assigns or logs exposures",
                                  {"experiment": e.name, "dimension": dim, "value": value}))
    srm_table = pd.DataFrame(rows, columns=["dimension", "value", "exposed", "split", "p", "mismatch"])
    return exposure, srm_table, check, notices, mixed
