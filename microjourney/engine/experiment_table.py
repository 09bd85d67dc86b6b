"""Sufficient statistics of a unit-level experiment table (one row per unit: its variant,
metrics and optionally a pre-exposure covariate), computed by DuckDB straight from a CSV or
Parquet file: per variant and metric the units, ``n``, sum and sum of squares, and with a
covariate the sums over the units that have both, with their cross products. Python then
reads a few rows (``analysis/experiments``).

The file's path is bound as a parameter, column names are quoted identifiers, and the
outlier bounds are bound as parameters: no value is written into SQL.

**Outliers** (a data-quality check, per metric over all units): a value is flagged when it
lies more than ``OUTLIER_FACTOR`` (10) times as far from the median as the 99.9th percentile
does (below: the 0.1th), i.e. beyond ``median + 10 × (q99.9 − median)``. Heavy tails stretch
q99.9 with them, so they are not flagged: a log-normal of σ = 1.5 has its maximum of 100,000
units about 6 times as far out as q99.9; a value 10 times beyond it is an error, a bot or a
test account, and it moves the mean on its own. The rule needs :data:`OUTLIER_MIN_ROWS`
(1,000) values, so that one value cannot move q99.9 itself, and a spread: when 99.9% of the
values equal the median the side is not checked. In cookie_cats's ``sum_game_rounds``
(median 16, q99.9 ≈ 1,070) the bound is ≈ 10,600: the one player with 49,854 rounds is
flagged, the next (2,961) is not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from ..errors import IngestError, QueryError
from ..vocabulary import quote_ident

__all__ = ["OUTLIER_FACTOR", "OUTLIER_MIN_ROWS", "Tables", "table_statistics"]

OUTLIER_FACTOR = 10.0
OUTLIER_QUANTILE = 0.999
OUTLIER_MIN_ROWS = 1000
NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
           "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "BOOLEAN")


@dataclass(frozen=True)
class Tables:
    """``statistics``: one row per variant and metric (variant, units, metric, n, sum,
    sum_squares, nonbinary; with a covariate pre_n, post_sum, post_sum_squares, pre_sum,
    pre_sum_squares, sum_products, pre_nonbinary). ``outliers``: one row per metric (rows,
    median, lower, upper, below, above, min, max, share of the metric's absolute sum)."""

    statistics: pd.DataFrame
    outliers: pd.DataFrame


def _source(path: Path) -> str:
    name = path.name.lower()
    return "read_parquet(?)" if name.endswith((".parquet", ".pq")) else "read_csv(?)"


def _columns(con: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str]:
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {_source(path)}", [str(path)]).fetchall()
    except duckdb.Error as exc:
        raise IngestError(f"{path}: cannot read the table: {exc}", code="ingest/unreadable") from exc
    return {str(r[0]): str(r[1]) for r in rows}


def _check(columns: dict[str, str], variant: str, numeric: Sequence[str]) -> None:
    for name in [variant, *numeric]:
        if name not in columns:
            raise QueryError(f"no column {name!r}; the table has {', '.join(columns)}", code="query/option")
    for name in numeric:
        kind = columns[name].split("(")[0]
        if kind not in NUMERIC and not kind.startswith("DECIMAL"):
            raise QueryError(f"column {name!r} is {columns[name]}, not numbers or true/false",
                             code="query/option")


def _number(name: str, kind: str) -> str:
    """The column as a DOUBLE; true/false as 1/0 (by CASE: DuckDB would push a plain cast into
    the CSV reader, which then fails to read "False" as a number)."""
    if kind == "BOOLEAN":
        return f"CASE WHEN {quote_ident(name)} THEN 1::DOUBLE WHEN NOT {quote_ident(name)} THEN 0::DOUBLE END"
    return f"CAST({quote_ident(name)} AS DOUBLE)"


def table_statistics(path: Path, variant: str, metrics: Sequence[str], covariate: str | None = None,
                     factor: float = OUTLIER_FACTOR) -> Tables:
    """The :class:`Tables` of the file at ``path`` (CSV, optionally gzipped, or Parquet)."""
    if not path.exists():
        raise IngestError(f"{path}: no such file", code="ingest/missing")
    if not metrics:
        raise QueryError("name at least one metric column", code="query/option")
    con = duckdb.connect()
    try:
        columns = _columns(con, path)
        _check(columns, variant, [*metrics, *([covariate] if covariate else [])])
        cols = [f"{_number(m, columns[m])} AS m{i}" for i, m in enumerate(metrics)]
        if covariate:
            cols.append(f"{_number(covariate, columns[covariate])} AS x")
        try:
            con.execute(f"CREATE TEMP TABLE unit_rows AS SELECT CAST({quote_ident(variant)} AS VARCHAR) "
                        f"AS variant, {', '.join(cols)} FROM {_source(path)}", [str(path)])
        except duckdb.Error as exc:
            raise IngestError(f"{path}: cannot read the table: {exc}", code="ingest/unreadable") from exc
        return Tables(_statistics(con, metrics, covariate is not None),
                      _outliers(con, metrics, factor))
    finally:
        con.close()


def _statistics(con: duckdb.DuckDBPyConnection, metrics: Sequence[str], covariate: bool) -> pd.DataFrame:
    parts = ["variant", "count(*)"]
    for i in range(len(metrics)):
        m = f"m{i}"
        parts += [f"count({m})", f"sum({m})", f"sum({m} * {m})", f"count(*) FILTER (WHERE {m} NOT IN (0, 1))"]
        if covariate:
            both = f"{m} IS NOT NULL AND x IS NOT NULL"
            parts += [f"count(*) FILTER (WHERE {both})", f"sum({m}) FILTER (WHERE {both})",
                      f"sum({m} * {m}) FILTER (WHERE {both})", f"sum(x) FILTER (WHERE {both})",
                      f"sum(x * x) FILTER (WHERE {both})", f"sum({m} * x)",
                      f"count(*) FILTER (WHERE {both} AND x NOT IN (0, 1))"]
    rows = con.execute(f"SELECT {', '.join(parts)} FROM unit_rows WHERE variant IS NOT NULL "
                       "GROUP BY variant ORDER BY variant").fetchall()
    names = ["n", "sum", "sum_squares", "nonbinary"]
    if covariate:
        names += ["pre_n", "post_sum", "post_sum_squares", "pre_sum", "pre_sum_squares", "sum_products",
                  "pre_nonbinary"]
    out: list[dict[str, Any]] = []
    for row in rows:
        for i, metric in enumerate(metrics):
            values = row[2 + i * len(names): 2 + (i + 1) * len(names)]
            record: dict[str, Any] = {"variant": row[0], "units": int(row[1]), "metric": metric}
            record.update({k: (0 if v is None else v) for k, v in zip(names, values, strict=True)})
            out.append(record)
    return pd.DataFrame(out, columns=["variant", "units", "metric", *names])


def _outliers(con: duckdb.DuckDBPyConnection, metrics: Sequence[str], factor: float) -> pd.DataFrame:
    q_low, q_high = 1 - OUTLIER_QUANTILE, OUTLIER_QUANTILE
    parts = []
    for i in range(len(metrics)):
        m = f"m{i}"
        parts += [f"count({m})", f"median({m})", f"quantile_cont({m}, ?)", f"quantile_cont({m}, ?)",
                  f"min({m})", f"max({m})", f"sum(abs({m}))"]
    row = con.execute(f"SELECT {', '.join(parts)} FROM unit_rows", [q_low, q_high] * len(metrics)).fetchone()
    assert row is not None
    found: list[dict[str, Any]] = []
    bounds: list[Any] = []
    for i, metric in enumerate(metrics):
        n, median, low, high, least, most, total = row[i * 7: (i + 1) * 7]
        lower = upper = None
        if n and n >= OUTLIER_MIN_ROWS:
            if high > median:
                upper = median + factor * (high - median)
            if low < median:
                lower = median - factor * (median - low)
        found.append({"metric": metric, "rows": int(n or 0), "median": median, "lower": lower,
                      "upper": upper, "min": least, "max": most, "total": total or 0.0})
        bounds += [lower, upper]
    counts = []
    for i in range(len(metrics)):
        m = f"m{i}"
        counts += [f"count(*) FILTER (WHERE {m} < ?)", f"count(*) FILTER (WHERE {m} > ?)",
                   f"sum(abs({m})) FILTER (WHERE {m} < ? OR {m} > ?)"]
    params: list[Any] = []
    for i in range(len(metrics)):
        params += [bounds[2 * i], bounds[2 * i + 1], bounds[2 * i], bounds[2 * i + 1]]
    tally = con.execute(f"SELECT {', '.join(counts)} FROM unit_rows", params).fetchone()
    assert tally is not None
    for i, record in enumerate(found):
        below, above, flagged = tally[i * 3: (i + 1) * 3]
        total = record.pop("total")
        record.update(below=int(below), above=int(above),
                      share=(float(flagged or 0.0) / total) if total else 0.0)
    return pd.DataFrame(found, columns=["metric", "rows", "median", "lower", "upper", "below", "above",
                                        "min", "max", "share"])
