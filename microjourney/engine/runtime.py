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
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pyarrow as pa
import pyarrow.dataset as ds
from ibis.expr.types import Table

from ..errors import WorkspaceError

#: The lake's event files, below the lake folder (hive partitions by UTC day).
EVENTS_GLOB = "events/*/*.parquet"


class Runtime:
    """The interface every runtime offers (see the module docstring)."""

    name = "?"
    db: Any  # the Ibis backend

    def __init__(self) -> None:
        self._meta: dict[str, str] = {}  # fingerprints, for this session only

    def events(self) -> Table:
        return self.db.table("events")

    def save(self, name: str, expr: Table, *, temp: bool = False) -> Table:
        """Materialise ``expr`` as table ``name`` (replacing it) and return it."""
        self.db.create_table(name, expr, temp=temp, overwrite=True)
        return self.db.table(name)

    def drop(self, name: str) -> None:
        self.db.drop_table(name, force=True)

    def get_meta(self, key: str) -> str | None:
        return self._meta.get(key)

    def set_meta(self, key: str, value: str) -> None:
        self._meta[key] = value

    def close(self) -> None:
        """Release what the runtime holds; the store's own connection is the workspace's,
        so this base runtime holds nothing of its own."""


class Store(Runtime):
    """The workspace's DuckDB file."""

    name = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        super().__init__()
        self.con = con
        self.db = ibis.duckdb.from_connection(con)

    # The store's ``meta`` table (created by :mod:`microjourney.store`), read and written
    # here so that the engine does not import the store.
    def get_meta(self, key: str) -> str | None:
        rows = self.con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchall()
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value]).fetchall()


@dataclass(frozen=True)
class ObjectLake:
    """A lake on S3-compatible object storage, as the store resolved it.

    ``url``: ``s3://bucket/prefix``; ``events``: ``bucket/prefix/...`` in ``filesystem``, the
    prefix holding the current copy of the event files (``events``, or an export's staged
    copy while it publishes), and ``files`` those files, as the store listed them;
    ``filesystem``: a ``pyarrow.fs.S3FileSystem``; ``s3``: the endpoint, region and
    credentials, for engines that reach the store themselves (Spark's s3a).
    """

    url: str
    events: str
    files: tuple[str, ...]
    filesystem: Any
    s3: Mapping[str, str] = field(default_factory=dict, repr=False)


def lake_folder(lake: str | Path) -> Path:
    """The lake folder, checked: it must hold event files."""
    root = Path(lake)
    if not root.is_dir() or not any(root.glob(EVENTS_GLOB)):
        raise WorkspaceError(f"no lake at {root}: expected event files {root / EVENTS_GLOB} "
                             f"(write them with `microjourney export --lake {root}`)",
                             code="workspace/lake")
    return root


class LakeDuckDB(Runtime):
    """DuckDB in memory over a lake's Parquet files."""

    name = "duckdb"

    def __init__(self, lake: str | Path | ObjectLake, *, memory_limit: str | None = None) -> None:
        super().__init__()
        objects = _object_files(lake) if isinstance(lake, ObjectLake) else None
        root = lake_folder(lake) if objects is None else None
        self.con = duckdb.connect()
        self._spill = tempfile.TemporaryDirectory(prefix="microjourney-spill-")
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET temp_directory = ?", [self._spill.name])
        if memory_limit:
            self.con.execute("SET memory_limit = ?", [memory_limit])
        self.db = ibis.duckdb.from_connection(self.con)
        if objects is not None:  # DuckDB scans the pyarrow dataset: columns and filters pushed down
            self.con.register("_lake_events", objects)
            files = self.db.table("_lake_events")
        else:
            files = self.db.read_parquet(str(root / EVENTS_GLOB), hive_partitioning=True)
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


def check_objects(lake: ObjectLake) -> ObjectLake:
    """The object-storage lake, checked: it must hold event files."""
    if not lake.files:
        raise WorkspaceError(f"no lake at {lake.url}: expected event files {lake.url}/{EVENTS_GLOB} "
                             f"(write them with `microjourney export --lake {lake.url}`)",
                             code="workspace/lake")
    return lake


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
