"""The Spark runtime: the same engine expressions on PySpark, over a Parquet lake.

The engine names a few backend builtins (:mod:`.backend`): ``epoch_us``,
``json_extract_string``, ``list_select``, ``list_grade_up`` and ``bit_count``. DuckDB
has them; Spark has ``bit_count``, and this module defines the others as session SQL
functions (Spark 4 ``CREATE TEMPORARY FUNCTION ... RETURN``), so Ibis compiles one
expression for both. Derived tables are checkpointed in the session (executor memory,
spilling to disk) and read as temporary views.

Local mode binds to 127.0.0.1 and runs without the web UI; ``master`` and any Spark
``config`` come from the workspace (``engine.spark``) for a cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ibis
import ibis.common.exceptions as com
import sqlglot.expressions as sge
from ibis.backends.sql.compilers.pyspark import PySparkCompiler
from ibis.expr.types import Table

from ..errors import WorkspaceError
from .runtime import Runtime, lake_folder

#: Session SQL functions with the names and meaning of the DuckDB builtins the engine uses.
FUNCTIONS = (
    "CREATE OR REPLACE TEMPORARY FUNCTION epoch_us(ts TIMESTAMP) RETURNS BIGINT "
    "RETURN unix_micros(ts)",
    # The engine writes DuckDB paths, $."key"; Spark reads the same member as $['key'].
    # (Keys holding quotes or backslashes are read on DuckDB only.)
    "CREATE OR REPLACE TEMPORARY FUNCTION json_extract_string(doc STRING, path STRING) "
    "RETURNS STRING RETURN get_json_object(doc, concat('$[', char(39), "
    "substr(path, 4, length(path) - 4), char(39), ']'))",
    "CREATE OR REPLACE TEMPORARY FUNCTION list_select(v ARRAY<STRING>, p ARRAY<BIGINT>) "
    "RETURNS ARRAY<STRING> RETURN transform(p, i -> element_at(v, CAST(i AS INT)))",
    "CREATE OR REPLACE TEMPORARY FUNCTION list_grade_up(v ARRAY<BIGINT>) RETURNS ARRAY<BIGINT> "
    "RETURN transform(array_sort(transform(v, (e, i) -> named_struct('v', e, 'i', "
    "CAST(i + 1 AS BIGINT)))), s -> s.i)",
)

#: Local-mode defaults: loopback only, no UI, few shuffle partitions for one machine.
LOCAL = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "false",
}


def session(master: str = "local[2]", config: dict[str, str] | None = None) -> Any:
    """A Spark session for the engine (the existing one when it matches)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise WorkspaceError("the spark engine needs PySpark: pip install 'microjourney[spark]' "
                             "(and Java 17 or later)", code="workspace/engine") from None
    b = SparkSession.builder.master(master).appName("microjourney")
    settings = dict(LOCAL) if master.startswith("local") else {"spark.sql.session.timeZone": "UTC"}
    settings.update(config or {})
    for k, v in settings.items():
        b = b.config(k, v)
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    for sql in FUNCTIONS:
        spark.sql(sql)
    return spark


class Compiler(PySparkCompiler):
    """Ibis's Spark compiler, plus ``bit_or`` and the ordered aggregates Spark lacks: a collect ordered
    by keys is the sorted list of (keys, value) structs, spelled out; a first by keys is
    ``min_by`` over the keys as a struct. Ascending keys only, as the engine uses them."""

    def _keyed(self, arg, where, order_by):  # noqa: ANN001, ANN202 - sqlglot nodes
        if any(o.args.get("desc") for o in order_by):
            # A struct list sorts ascending only; no engine expression orders otherwise.
            raise com.UnsupportedOperationError("ordered aggregates on Spark sort ascending only")
        parts: list = []
        for i, o in enumerate(order_by):
            parts += [sge.convert(f"k{i}"), o.this]
        keep = sge.Not(this=sge.Is(this=arg, expression=sge.Null()))
        if where is not None:
            keep = sge.And(this=keep, expression=where)
        return parts, keep

    def visit_ArrayCollect(self, op, *, arg, where, order_by, include_null, distinct):  # noqa: ANN001, ANN201
        if not order_by or distinct or include_null:
            return super().visit_ArrayCollect(op, arg=arg, where=where, order_by=order_by,
                                              include_null=include_null, distinct=distinct)
        parts, keep = self._keyed(arg, where, order_by)
        item = self.if_(keep, self.f.named_struct(*parts, sge.convert("v"), arg), sge.Null())
        ordered = self.f.array_sort(self.f.collect_list(item))
        return self.f.transform(ordered, sge.Lambda(this=sge.column("v", table="s"),
                                                    expressions=[sge.to_identifier("s")]))

    def visit_Quantile(self, op, *, arg, quantile, where):  # noqa: ANN001, ANN201
        # Ibis filters the fraction too, which Spark rejects (it must be a constant).
        if where is not None:
            arg = self.if_(where, arg, sge.Null())
        return self.f.percentile(arg, quantile)

    def visit_Median(self, op, *, arg, where):  # noqa: ANN001, ANN201
        return self.visit_Quantile(op, arg=arg, quantile=sge.convert(0.5), where=where)

    def visit_BitOr(self, op, *, arg, where):  # noqa: ANN001, ANN201
        return self.agg.bit_or(arg, where=where)

    def visit_First(self, op, *, arg, where, order_by, include_null):  # noqa: ANN001, ANN201
        if not order_by or include_null:
            return super().visit_First(op, arg=arg, where=where, order_by=order_by,
                                       include_null=include_null)
        parts, keep = self._keyed(arg, where, order_by)
        return self.f.min_by(arg, self.if_(keep, self.f.named_struct(*parts), sge.Null()))


class LakeSpark(Runtime):
    """PySpark over a lake's Parquet files."""

    name = "spark"

    def __init__(self, lake: str | Path, *, master: str = "local[2]",
                 config: dict[str, str] | None = None) -> None:
        super().__init__()
        root = lake_folder(lake)
        self.spark = session(master, config)
        self.db = ibis.pyspark.connect(self.spark)
        self.db.compiler = Compiler()
        # Literal tables (role tables, settings) go to Spark through Arrow: Ibis 12 goes
        # through pandas, where an integer column with NULLs turns float and Spark then
        # reads every value as NULL.
        self.db._register_in_memory_table = self._register_literal_table
        files = self.spark.read.parquet(str(root / "events"))
        files.drop("day").createOrReplaceTempView("events")
        self._frames: dict[str, Any] = {}

    def _register_literal_table(self, op: Any) -> None:
        from ibis.backends.pyspark.datatypes import PySparkSchema

        arrow = op.data.to_pyarrow(op.schema)
        frame = self.spark.createDataFrame(arrow, schema=PySparkSchema.from_ibis(op.schema))
        frame.createOrReplaceTempView(op.name)

    def save(self, name: str, expr: Table, *, temp: bool = False) -> Table:
        # Computed once, now, and cut loose from the plan that made it (a local
        # checkpoint: executor memory, spilling to disk): later queries read the rows,
        # and dropping the tables it was made from does not touch it.
        staging = f"{name}__plan"
        self.db.create_view(staging, expr, overwrite=True)
        frame = self.spark.table(staging).localCheckpoint(eager=True)
        self.spark.catalog.dropTempView(staging)
        self.drop(name)
        frame.createOrReplaceTempView(name)
        self._frames[name] = frame
        return self.db.table(name)

    def drop(self, name: str) -> None:
        frame = self._frames.pop(name, None)
        if frame is not None:
            frame.unpersist()
        self.spark.catalog.dropTempView(name)

    def close(self) -> None:
        for name in list(self._frames):
            self.drop(name)


__all__ = ["FUNCTIONS", "LakeSpark", "session"]
