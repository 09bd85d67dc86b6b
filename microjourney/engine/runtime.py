"""Where the engine runs: the workspace's store, or a Parquet lake on DuckDB or Spark.

A runtime gives the workspace three things, whatever the backend: the ``events``
table, a place to materialise derived tables (timeline, tagged, attempts, frictions),
and a small key/value memory for their fingerprints. The analyses are the same Ibis
expressions on every runtime; only this module and :mod:`.spark` know backends apart.

* :class:`Store` — the embedded default: the workspace's DuckDB file holds events and
  derived tables, and fingerprints persist in its ``meta`` table.
* :class:`LakeDuckDB` — DuckDB in memory over a lake (``microjourney export --lake``):
  derived tables live for the session and spill to a temporary folder.
* :class:`.spark.LakeSpark` — PySpark over the same lake (local mode or a cluster):
  derived tables are cached in the Spark session.

A lake is a folder, or an :class:`ObjectLake` on S3-compatible storage that the caller
(the workspace) resolved through the store: the engine reads it, never locates it or
looks at credentials.

The interface and the lake's checks live in :mod:`.runtime_base`, which :mod:`.spark`
builds on; this module chooses the runtime (so it imports :mod:`.spark`) and names them
too, for the workspace.
"""

from __future__ import annotations

import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pyarrow as pa
import pyarrow.dataset as ds
import sqlglot
from ibis.expr.types import Table

from ..errors import WorkspaceError
from .runtime_base import EVENTS_GLOB, ObjectLake, Runtime, check_objects, lake_folder

#: Statements compiled once per process (:meth:`Store.run_compiled`), by key: every
#: store of the process with the same definitions runs the same SQL (a server, the tests'
#: many small workspaces). Bounded: the oldest go first.
_COMPILED: OrderedDict[Hashable, tuple[str, Table]] = OrderedDict()
_COMPILED_MAX = 512
_COMPILING = threading.Lock()  # a server's refresh and its requests share the cache


def _typed(sql: str, expr: Table) -> str:
    """``sql`` (``expr`` compiled) with each column cast to the type the expression
    declares: a table made from it has the types Ibis's own ``create_table`` gives (DuckDB
    would type a literal 1 as INTEGER where the expression says int64)."""
    columns = ", ".join(
        f"CAST({d.this.sql('duckdb')} AS {d.args['kind'].sql('duckdb')}) AS {d.this.sql('duckdb')}"
        for d in expr.schema().to_sqlglot_column_defs("duckdb"))
    return "SELECT " + columns + " FROM (" + sql + ")"


class Store(Runtime):
    """The workspace's DuckDB file."""

    name = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        super().__init__()
        self.con = con
        self.db = ibis.duckdb.from_connection(con)
        #: The compiled statements whose literal tables this connection has registered.
        self._prepared: set[Hashable] = set()

    def run_compiled(self, key: Hashable, build: Callable[[], Table], into: str, how: str) -> None:
        """Write ``build()``'s rows into table ``into`` (``how``: make it a ``table``, a
        ``temp`` table or a ``view``), compiling the statement once per ``key`` in this
        process: later calls with the same key, on this store or another, run the SQL
        compiled the first time without building the expression again. The key must name
        all that the statement depends on; values that change from call to call are read
        from tables."""
        with _COMPILING:
            entry = _COMPILED.get(key)
            if entry is not None:
                _COMPILED.move_to_end(key)
        if entry is None:
            expr = build()
            sql = str(self.db.compile(expr))
            entry = (sql if how == "view" else _typed(sql, expr), expr)
            with _COMPILING:
                _COMPILED[key] = entry
                while len(_COMPILED) > _COMPILED_MAX:
                    _COMPILED.popitem(last=False)
        if key not in self._prepared:
            # Its literal tables (settings, roles) registered on this connection, where they
            # stay; the expression is kept so that they are not collected.
            self.db._run_pre_execute_hooks(entry[1])
            self._prepared.add(key)
        target = sqlglot.exp.to_identifier(into, quoted=True).sql("duckdb")
        head = {"table": "CREATE OR REPLACE TABLE " + target + " AS ",
                "temp": "CREATE OR REPLACE TEMP TABLE " + target + " AS ",
                "view": "CREATE OR REPLACE VIEW " + target + " AS "}[how]
        self.con.execute(head + entry[0])

    def forget_compiled(self) -> None:
        """Register the literal tables again before the next statement (after a rollback,
        which unregisters those registered in its transaction)."""
        self._prepared.clear()
        self.db._memtables.clear()

    def drop_any(self, name: str) -> None:
        rows = self.con.execute("SELECT table_type FROM information_schema.tables WHERE "
                                "table_schema = current_schema() AND table_name = ?", [name]).fetchall()
        if rows and rows[0][0] == "VIEW":
            self.db.drop_view(name, force=True)
        elif rows:
            self.db.drop_table(name, force=True)

    # The store's ``meta`` table (created by :mod:`microjourney.store`), read and written
    # here so that the engine does not import the store.
    def get_meta(self, key: str) -> str | None:
        rows = self.con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchall()
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value]).fetchall()


class LakeDuckDB(Runtime):
    """DuckDB in memory over a lake's Parquet files."""

    name = "duckdb"

    def __init__(self, lake: str | Path | ObjectLake, *, memory_limit: str | None = None) -> None:
        super().__init__()
        # Checked before anything is opened, so a missing lake leaves nothing behind.
        source = _object_files(lake) if isinstance(lake, ObjectLake) else lake_folder(lake) / EVENTS_GLOB
        self.con = duckdb.connect()
        self._spill = tempfile.TemporaryDirectory(prefix="microjourney-spill-")
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET temp_directory = ?", [self._spill.name])
        if memory_limit:
            self.con.execute("SET memory_limit = ?", [memory_limit])
        self.db = ibis.duckdb.from_connection(self.con)
        if isinstance(source, Path):
            files = self.db.read_parquet(str(source), hive_partitioning=True)
        else:  # DuckDB scans the pyarrow dataset: columns and filters pushed down
            self.con.register("_lake_events", source)
            files = self.db.table("_lake_events")
        # The store's types: JSON text back to JSON; the partition column dropped.
        events = files.drop("day").mutate(properties=files.properties.cast("json"),
                                          context=files.context.cast("json"))
        self.db.create_view("events", events, overwrite=True)

    def save(self, name: str, expr: Table, *, temp: bool = False) -> Table:
        # One in-memory database: every table is the session's.
        self.db.create_table(name, expr, overwrite=True)
        return self.db.table(name)

    def close(self) -> None:
        self.con.close()
        self._spill.cleanup()


def _object_files(lake: ObjectLake) -> ds.Dataset:
    """The lake's event objects as a pyarrow dataset (``day`` from the hive folders)."""
    check_objects(lake)
    try:  # the files the store listed: no second listing; the schema from the first file
        return ds.dataset(list(lake.files), filesystem=lake.filesystem, format="parquet",
                          partition_base_dir=lake.events,
                          partitioning=ds.partitioning(pa.schema([("day", pa.string())]), flavor="hive"))
    except (OSError, pa.ArrowInvalid) as exc:
        raise WorkspaceError(f"cannot read the lake {lake.url}: {exc}", code="workspace/lake") from None


def open_runtime(con: duckdb.DuckDBPyConnection, *, engine: str, lake: str | Path | ObjectLake | None,
                 memory_limit: str | None = None, spark: dict[str, Any] | None = None) -> Runtime:
    """The runtime for ``engine`` (duckdb | spark) over ``lake`` (a folder or an
    :class:`ObjectLake`; None: the store)."""
    if engine not in ("duckdb", "spark"):
        raise WorkspaceError(f"unknown engine {engine!r}; engines: duckdb, spark",
                             code="workspace/engine")
    if engine == "spark":
        if lake is None:
            raise WorkspaceError("the spark engine reads a lake: give --lake PATH (or engine.lake "
                                 "in microjourney.yaml); write one with `microjourney export --lake`",
                                 code="workspace/engine")
        from .spark import LakeSpark

        return LakeSpark(lake, **(spark or {}))
    if lake is None:
        return Store(con)
    return LakeDuckDB(lake, memory_limit=memory_limit)


__all__ = ["EVENTS_GLOB", "LakeDuckDB", "ObjectLake", "Runtime", "Store", "check_objects", "lake_folder",
           "open_runtime"]
