"""An experiment read straight from a unit-level table (``microjourney experiment
analyze-table``): the engine's sufficient statistics of the file, then the pure analysis.
Not a registered analysis (it reads a file, not the workspace); it lives here because the
registry is the layer that joins the engine to the analysis for the surfaces."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..analysis.experiments.sequential import N_STAR
from ..analysis.experiments.table import TableResult, analyze
from ..engine.experiment_table import table_statistics
from ..errors import QueryError

__all__ = ["analyze_table"]


def analyze_table(path: Path, variant: str, metrics: Sequence[str], covariate: str | None = None,
                  control: str | None = None, alpha: float = 0.05, n_star: float = N_STAR) -> TableResult:
    """Each treatment against ``control`` on each metric of the table at ``path`` (CSV or
    Parquet, one row per unit), with ``covariate`` (a pre-exposure value) for CUPED."""
    tables = table_statistics(path, variant, metrics, covariate)
    try:
        statistics = [{str(k): v for k, v in r.items()} for r in tables.statistics.to_dict("records")]
        outliers = [{str(k): v for k, v in r.items()} for r in tables.outliers.to_dict("records")]
        return analyze(statistics, outliers, control=control, alpha=alpha, n_star=n_star)
    except ValueError as exc:
        raise QueryError(str(exc), code="query/option") from None
