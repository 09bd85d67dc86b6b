"""The analysis registry: every analysis, declared once (:mod:`.base`), in the order the
CLI, the API, the report and the conformance suite list them.

Adding an analysis is adding a module here that declares ``ANALYSIS``, naming it in
:data:`REGISTRY`, its test and its docs page (docs/architecture.md, "Adding an analysis").
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import QueryError
from . import (
    alerts,
    attempt,
    attempts,
    conformance,
    data_quality,
    durations,
    experiment,
    experiment_plan,
    frictions,
    funnel,
    intents,
    interventions,
    omnichannel,
    paths,
    peak_end,
    playbook,
    portfolio,
    process_map,
    quarantine,
    review,
    scorecard,
    series,
    survey_scores,
    variants,
    verbatims,
    week_on_week,
)
from .base import Analysis, Column, Notice, Output, Params, Result, View
from .filters import Filters

if TYPE_CHECKING:
    from ..workspace import Workspace

REGISTRY: tuple[Analysis, ...] = (
    scorecard.ANALYSIS,
    funnel.ANALYSIS,
    series.ANALYSIS,
    week_on_week.ANALYSIS,
    portfolio.ANALYSIS,
    durations.ANALYSIS,
    attempts.ANALYSIS,
    attempt.ANALYSIS,
    frictions.ANALYSIS,
    survey_scores.ANALYSIS,
    verbatims.ANALYSIS,
    experiment.ANALYSIS,
    experiment_plan.ANALYSIS,
    playbook.ANALYSIS,
    interventions.ANALYSIS,
    alerts.ANALYSIS,
    peak_end.ANALYSIS,
    review.ANALYSIS,
    omnichannel.ANALYSIS,
    intents.ANALYSIS,
    conformance.ANALYSIS,
    process_map.ANALYSIS,
    variants.ANALYSIS,
    paths.ANALYSIS,
    quarantine.ANALYSIS,
    data_quality.ANALYSIS,
)
_BY_NAME = {a.name: a for a in REGISTRY}


def get(name: str) -> Analysis:
    """The analysis called ``name``; a QueryError listing the others when there is none."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise QueryError(f"no analysis {name!r}; analyses: {', '.join(_BY_NAME)}",
                         code="query/analysis") from None


def run(ws: Workspace, name: str, values: Mapping[str, Any]) -> Result:
    """Validate ``values``, compute the analysis on ``ws`` and return its result with the
    metadata: the parameters in force, the filters, the engine, ``as_of`` (the end of the
    data) and how fresh the derived tables it read are: ``refreshed_at``, when they last
    took in the stored data, and ``stale_s``, seconds since (0 when the analysis brought
    them up to date itself; up to the server's ``refresh_every`` while served)."""
    analysis = get(name)
    params = analysis.validate(values)
    out = analysis.compute(ws, params)
    tables = {k: _plain(df) for k, df in out.tables.items()}
    as_of = ws.as_of_ms()
    at = ws.refreshed_at()
    now = time.time()
    meta = {
        "title": analysis.title,
        "params": params.model_dump(by_alias=True, mode="json"),
        "filters": params.filters() if isinstance(params, Filters) else {},
        "engine": ws.engine,
        "as_of": pd.Timestamp(as_of, unit="ms", tz="UTC").isoformat() if as_of else None,
        "refreshed_at": (pd.Timestamp(at, unit="s", tz="UTC").isoformat(timespec="milliseconds")
                         if at is not None else None),
        "stale_s": round(max(0.0, now - at), 3) if at is not None else None,
        **out.meta,
    }
    return Result(analysis.name, tables, tuple(out.warnings), meta)


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """One type per value whichever engine computed it: Spark's decimals become floats, and
    its times (which Spark hands over without their zone) UTC instants, as DuckDB's are."""
    df = df.reset_index(drop=True)
    for c in df.columns:
        column = df[c]
        if column.dtype == object and any(isinstance(v, Decimal) for v in column.head(50)):
            df[c] = column.map(lambda v: float(v) if isinstance(v, Decimal) else v)
        elif isinstance(column.dtype, np.dtype) and column.dtype.kind == "M":
            df[c] = column.dt.tz_localize("UTC")  # the engines' session zone is UTC
    return df


__all__ = ["REGISTRY", "Analysis", "Column", "Filters", "Notice", "Output", "Params", "Result",
           "View", "get", "run"]
