"""The Spark runtime: the same engine expressions on PySpark, over a Parquet lake.

The engine names a few backend builtins (:mod:`.backend`): ``epoch_us``,
``json_extract_string``, ``list_select``, ``list_grade_up`` and ``bit_count``. DuckDB
has them; Spark has ``bit_count``, and this module defines the others as session SQL
functions (Spark 4 ``CREATE TEMPORARY FUNCTION ... RETURN``), so Ibis compiles one
expression for both. Derived tables are checkpointed in the session (executor memory,
spilling to disk) and read as temporary views.

Local mode binds to 127.0.0.1 and runs without the web UI; ``master`` and any Spark
``config`` come from the workspace (``engine.spark``) for a cluster.

A lake on object storage (``s3://``) is read through Hadoop's s3a connector: the URL
becomes ``s3a://``, and the endpoint, region and credentials the store found become
``spark.hadoop.fs.s3a.*`` settings (:func:`s3a_config`; ``engine.spark.config`` wins). The
connector (``hadoop-aws`` and its AWS SDK) is not part of PySpark: without it the engine
stops with ``workspace/spark-s3a`` and says what to add.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ibis
import ibis.common.exceptions as com
import sqlglot.expressions as sge
from ibis.backends.sql.compilers.pyspark import PySparkCompiler
from ibis.expr.types import Table

from ..errors import WorkspaceError
from .runtime_base import ObjectLake, Runtime, check_objects, lake_folder

#: Session SQL functions with the names and meaning of the DuckDB builtins the engine uses.
FUNCTIONS = (
    "CREATE OR REPLACE TEMPORARY FUNCTION epoch_us(ts TIMESTAMP) RETURNS BIGINT "
    "RETURN unix_micros(ts)",
    # The engine names a top-level member by a JSON Pointer, /key (~1 for /, ~0 for ~);
    # the key, decoded, is looked up in the object read as a map: exact for any key
    # (get_json_object's $['key'] cannot hold a key with ']).
    "CREATE OR REPLACE TEMPORARY FUNCTION json_extract_string(doc STRING, path STRING) "
    "RETURNS STRING RETURN from_json(doc, 'MAP<STRING, STRING>')"
    "[replace(replace(substr(path, 2), '~1', '/'), '~0', '~')]",
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


#: The class Spark loads for ``s3a://`` paths; it ships in Hadoop's hadoop-aws jar.
S3A = "org.apache.hadoop.fs.s3a.S3AFileSystem"


def s3a_config(s3: Mapping[str, str]) -> dict[str, str]:
    """Spark settings for Hadoop's s3a connector from the store's S3 ``endpoint``,
    ``region`` and credentials (``access_key``, ``secret_key``, ``session_token``).

    >>> config = s3a_config({"endpoint": "http://127.0.0.1:9000", "region": "us-east-1"})
    >>> config["spark.hadoop.fs.s3a.path.style.access"], config["spark.hadoop.fs.s3a.connection.ssl.enabled"]
    ('true', 'false')
    """
    hadoop = "spark.hadoop.fs.s3a."
    out: dict[str, str] = {}
    if s3.get("endpoint"):  # an S3-compatible store: its own host, paths not host names for buckets
        out |= {hadoop + "endpoint": s3["endpoint"], hadoop + "path.style.access": "true",
                hadoop + "connection.ssl.enabled": str(s3["endpoint"].startswith("https:")).lower()}
    if s3.get("region"):
        out[hadoop + "endpoint.region"] = s3["region"]
    if s3.get("access_key") and s3.get("secret_key"):
        out |= {hadoop + "access.key": s3["access_key"], hadoop + "secret.key": s3["secret_key"]}
        provider = "SimpleAWSCredentialsProvider"
        if s3.get("session_token"):
            out[hadoop + "session.token"] = s3["session_token"]
            provider = "TemporaryAWSCredentialsProvider"
        out[hadoop + "aws.credentials.provider"] = f"org.apache.hadoop.fs.s3a.{provider}"
    return out


def s3a_url(lake: ObjectLake) -> str:
    """The lake's event files as Spark reads them: ``s3a://bucket/prefix/events``."""
    return f"s3a://{lake.events}"


def require_s3a(spark: Any) -> None:
    """A WorkspaceError naming what to install unless the session can load :data:`S3A`."""
    jvm = spark.sparkContext._jvm
    try:  # Spark's own loader sees --jars and spark.jars.packages too
        loadable = bool(jvm.org.apache.spark.util.Utils.classIsLoadable(S3A))
    except Exception:  # noqa: BLE001 - py4j's error for a JVM exception
        loadable = False
    if not loadable:
        hadoop = jvm.org.apache.hadoop.util.VersionInfo.getVersion()
        raise WorkspaceError(
            f"the spark engine reads s3:// lakes through Hadoop's s3a connector, which this Spark "
            f"cannot load ({S3A}): add `spark.jars.packages: org.apache.hadoop:hadoop-aws:{hadoop}` "
            f"(the Hadoop version of this Spark) to engine.spark.config, or put hadoop-aws-{hadoop}.jar "
            "and the AWS SDK bundle it names into Spark's jars folder (docs/scaling.md)",
            code="workspace/spark-s3a") from None


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
    # json_extract_string reads an object as a map: a key given twice keeps its last
    # value, as JSON parsers do, instead of failing the query.
    spark.conf.set("spark.sql.mapKeyDedupPolicy", "LAST_WIN")
    return spark


# Ibis ships no types, so its compiler is Any to mypy; the methods below return what its
# untyped builders (self.f, self.if_, self.agg) make, so they say Any too.
class Compiler(PySparkCompiler):  # type: ignore[misc]
    """Ibis's Spark compiler, plus ``bit_or`` and the ordered aggregates Spark lacks: a collect ordered
    by keys is the sorted list of (keys, value) structs, spelled out; a first by keys is
    ``min_by`` over the keys as a struct. Ascending keys only, as the engine uses them."""

    def _keyed(self, arg: sge.Expression, where: sge.Expression | None,
               order_by: Sequence[sge.Ordered]) -> tuple[list[sge.Expression], sge.Expression]:
        if any(o.args.get("desc") for o in order_by):
            # A struct list sorts ascending only; no engine expression orders otherwise.
            raise com.UnsupportedOperationError("ordered aggregates on Spark sort ascending only")
        parts: list[sge.Expression] = []
        for i, o in enumerate(order_by):
            parts += [sge.convert(f"k{i}"), o.this]
        keep: sge.Expression = sge.Not(this=sge.Is(this=arg, expression=sge.Null()))
        if where is not None:
            keep = sge.And(this=keep, expression=where)
        return parts, keep

    def visit_ArrayCollect(self, op: Any, *, arg: sge.Expression, where: sge.Expression | None,
                           order_by: Sequence[sge.Ordered], include_null: bool, distinct: bool) -> Any:
        if not order_by or distinct or include_null:
            return super().visit_ArrayCollect(op, arg=arg, where=where, order_by=order_by,
                                              include_null=include_null, distinct=distinct)
        parts, keep = self._keyed(arg, where, order_by)
        item = self.if_(keep, self.f.named_struct(*parts, sge.convert("v"), arg), sge.Null())
        ordered = self.f.array_sort(self.f.collect_list(item))
        return self.f.transform(ordered, sge.Lambda(this=sge.column("v", table="s"),
                                                    expressions=[sge.to_identifier("s")]))

    def visit_Quantile(self, op: Any, *, arg: sge.Expression, quantile: sge.Expression,
                       where: sge.Expression | None) -> Any:
        # Ibis filters the fraction too, which Spark rejects (it must be a constant).
        if where is not None:
            arg = self.if_(where, arg, sge.Null())
        return self.f.percentile(arg, quantile)

    def visit_Median(self, op: Any, *, arg: sge.Expression, where: sge.Expression | None) -> Any:
        return self.visit_Quantile(op, arg=arg, quantile=sge.convert(0.5), where=where)

    def visit_BitOr(self, op: Any, *, arg: sge.Expression, where: sge.Expression | None) -> Any:
        return self.agg.bit_or(arg, where=where)

    def visit_First(self, op: Any, *, arg: sge.Expression, where: sge.Expression | None,
                    order_by: Sequence[sge.Ordered], include_null: bool) -> Any:
        if not order_by or include_null:
            return super().visit_First(op, arg=arg, where=where, order_by=order_by,
                                       include_null=include_null)
        parts, keep = self._keyed(arg, where, order_by)
        return self.f.min_by(arg, self.if_(keep, self.f.named_struct(*parts), sge.Null()))


class LakeSpark(Runtime):
    """PySpark over a lake's Parquet files."""

    name = "spark"

    def __init__(self, lake: str | Path | ObjectLake, *, master: str = "local[2]",
                 config: dict[str, str] | None = None) -> None:
        super().__init__()
        if isinstance(lake, ObjectLake):
            check_objects(lake)
            path = s3a_url(lake)
            s3a = {**s3a_config(lake.s3), **(config or {})}
            self.spark = session(master, s3a)
            require_s3a(self.spark)
            # A session that existed already keeps its context's Hadoop settings; Spark reads
            # files with the session's own settings laid over them, so set them there too.
            for key, value in s3a.items():
                if key.startswith("spark.hadoop.fs.s3a."):
                    self.spark.conf.set(key.removeprefix("spark.hadoop."), value)
        else:
            path = str(lake_folder(lake) / "events")
            self.spark = session(master, config)
        self.db = ibis.pyspark.connect(self.spark)
        self.db.compiler = Compiler()
        # Literal tables (role tables, settings) go to Spark through Arrow: Ibis 12 goes
        # through pandas, where an integer column with NULLs turns float and Spark then
        # reads every value as NULL.
        self.db._register_in_memory_table = self._register_literal_table
        files = self.spark.read.parquet(path)
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


__all__ = ["FUNCTIONS", "S3A", "LakeSpark", "require_s3a", "s3a_config", "s3a_url", "session"]
