"""Reading a lake's events: a DuckDB relation over its Parquet files, typed as the store's
``events`` table (layout: :mod:`.lake`)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from ..errors import LakeError
from .lake_where import _DAY, EVENTS, Location, _bucket, _not_a_file, _snapshot, locate
from .writer import quote_ident

# DuckDB reads the files; the parameter is the glob, never text spliced into SQL.
_SELECT_EVENTS = (
    "SELECT event_id, seq, CAST(timestamp AS TIMESTAMPTZ) AS timestamp, event, anonymous_id, "
    "user_id, channel, session_id, CAST(properties AS JSON) AS properties, "
    "CAST(context AS JSON) AS context, source FROM "
)
_READ_EVENTS = _SELECT_EVENTS + "read_parquet(?, hive_partitioning = true)"


def has_events(lake: str | os.PathLike[str] | Location) -> bool:
    """Whether the lake holds any event file yet."""
    where = locate(lake)
    if not where.local:
        return bool(_snapshot(where)[1])
    return next(iter(Path(where.path).glob("events/day=*/*.parquet")), None) is not None


def events_glob(lake: str | os.PathLike[str] | Location) -> str:
    """The glob matching every event file of the lake."""
    where = locate(lake)
    if not where.local:
        return f"{where.url}/events/day=*/*.parquet"
    return str(Path(where.path) / "events" / "day=*" / "*.parquet")


def event_objects(lake: str | os.PathLike[str] | Location) -> tuple[str, list[str]]:
    """Where the whole current copy of an object-storage lake's events is (``bucket/prefix/...``
    in the lake's file system: ``events``, or the staged copy while an export publishes),
    and its files."""
    return _snapshot(locate(lake))


def read_events(con: duckdb.DuckDBPyConnection,
                lake: str | os.PathLike[str] | Location) -> duckdb.DuckDBPyRelation:
    """A DuckDB relation over the lake's events, typed as the store's ``events`` table.

    DuckDB's ``read_parquet`` takes the glob as a bound parameter, with hive
    partitioning; ``timestamp`` is TIMESTAMPTZ, ``properties``/``context`` JSON. On object
    storage the objects listed now are registered as a pyarrow dataset (DuckDB has no S3
    access of its own here); :func:`append` with ``con`` adds new ones.
    """
    where = locate(lake)
    if not where.local:
        base, files = _snapshot(where)
        if not files:
            raise LakeError(f"the lake {where.url} holds no events (no {events_glob(where)}); run "
                            "`microjourney export --lake` first", code="lake/no-events")
        return con.sql(_SELECT_EVENTS + quote_ident(_register(con, where, base, files)))
    root = _not_a_file(Path(where.path))
    if next(iter(root.glob("events/day=*/*.parquet")), None) is None:
        raise LakeError(f"the lake {root} holds no events (no {events_glob(root)}); run "
                        "`microjourney export --lake` first", code="lake/no-events")
    return con.sql(_READ_EVENTS, params=[events_glob(root)])


def check(lake: str | os.PathLike[str] | Location) -> None:
    """For object storage, a LakeError (with its code) unless the lake's bucket answers with
    the environment's settings: one request. A folder is checked where it is used."""
    where = locate(lake)
    if not where.local:
        _bucket(where, "read")


def _view(where: Location) -> str:
    """The name under which a connection sees the lake's event objects (see :func:`read_events`)."""
    return "_lake_events_" + hashlib.sha256(where.url.encode()).hexdigest()[:16]


def _register(con: duckdb.DuckDBPyConnection, where: Location, base: str, files: list[str]) -> str:
    """Let ``con`` read ``files`` (a pyarrow dataset: projections and filters reach the scan)."""
    view = _view(where)
    con.register(view, ds.dataset(files, schema=pa.schema([*EVENTS, *_DAY]), format="parquet",
                                  filesystem=where.fs, partition_base_dir=base,
                                  partitioning=ds.partitioning(_DAY, flavor="hive")))
    con.register(view + "_files", pa.table({"path": pa.array(files, pa.string()),
                                            "base": pa.array([base] * len(files), pa.string())}))
    return view
