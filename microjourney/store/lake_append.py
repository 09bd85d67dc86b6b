"""Appending to a lake: the collector's way in (``microjourney serve --lake``), one new file
per UTC day and batch, durable when :func:`append` returns (layout: :mod:`.lake`)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import LakeError
from .lake_read import _register, _view
from .lake_where import EVENTS, Location, _folder, _fsync, _make_dir, _remote, locate
from .private import DIR_MODE, create, narrow
from .writer import quote_ident

_REQUIRED = ("event_id", "seq", "timestamp", "event", "channel", "source")


def append(lake: str | os.PathLike[str] | Location, table: pa.Table, *,
           con: duckdb.DuckDBPyConnection | None = None) -> list[Path | str]:
    """Write one batch of events durably: one new file per UTC day; returns the files.

    ``table`` has the event file's columns (:data:`EVENTS`); nullable ones may be
    missing. When this returns, the files are renamed into place and fsynced; on object
    storage, each object's upload has returned (it exists, whole). ``con``: a connection
    whose :func:`read_events` relation over this lake must see the new objects at once
    (a folder is listed again by every query anyway).
    """
    batch = _events(table)
    where = locate(lake)
    if not where.local:
        return _append_objects(where, batch, con)
    root = _folder(Path(where.path))
    files: list[Path | str] = []
    days = pc.strftime(batch["timestamp"], format="%Y-%m-%d")
    for day in pc.unique(days).to_pylist():
        folder = root / "events" / f"day={day}"
        _make_dir(folder)
        for made in (folder.parent, folder):  # folders an earlier version made wider
            narrow(made, DIR_MODE)
        final = folder / f"append-{uuid.uuid4().hex}.parquet"
        temp = folder / f".{final.name}.tmp"
        try:
            with os.fdopen(create(temp), "wb") as fh:  # new, 0600, whatever the umask
                pq.write_table(batch.filter(pc.equal(days, day)), fh)
                fh.flush()
                os.fsync(fh.fileno())
            temp.rename(final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        _fsync(folder)
        files.append(final)
    return files


def _append_objects(where: Location, batch: pa.Table,
                    con: duckdb.DuckDBPyConnection | None) -> list[Path | str]:
    """One object per day, uploaded whole from memory: it appears when its upload completes
    (S3 makes an object visible atomically) and a failed upload leaves nothing."""
    days = pc.strftime(batch["timestamp"], format="%Y-%m-%d")
    keys = []
    for day in pc.unique(days).to_pylist():
        sink = pa.BufferOutputStream()
        pq.write_table(batch.filter(pc.equal(days, day)), sink)
        key = where.join("events", f"day={day}", f"append-{uuid.uuid4().hex}.parquet")
        with _remote(where, "append to"):
            out = where.fs.open_output_stream(key)
            out.write(sink.getvalue())
            out.close()  # returns once the store has the whole object
        keys.append(key)
    if con is not None:
        _see(con, where, keys)
    return [f"s3://{key}" for key in keys]


def _see(con: duckdb.DuckDBPyConnection, where: Location, keys: list[str]) -> None:
    """Add appended objects to what ``con``'s relations over the lake read (if it reads it)."""
    try:
        rows = con.sql("SELECT path, base FROM " + quote_ident(_view(where) + "_files")).fetchall()
    except duckdb.CatalogException:
        return  # this connection has no relation over the lake
    base = rows[0][1] if rows else where.join("events")
    _register(con, where, base, [path for path, _ in rows] + keys)


def _events(table: pa.Table) -> pa.Table:
    """``table`` in the event file layout, or a LakeError saying what is wrong."""
    names = set(table.column_names)
    missing = [n for n in _REQUIRED if n not in names]
    extra = sorted(names - set(EVENTS.names))
    if missing or extra:
        raise LakeError(f"an event batch needs the columns {', '.join(EVENTS.names)}; missing: "
                        f"{', '.join(missing) or '-'}, unknown: {', '.join(extra) or '-'}",
                        code="lake/bad-batch")
    ts = table.schema.field("timestamp").type
    if not pa.types.is_timestamp(ts) or ts.tz is None:
        raise LakeError(f"an event batch needs `timestamp` as a timestamp with a time zone, not {ts}",
                        code="lake/bad-batch")
    columns = [table[n] if n in names else pa.nulls(table.num_rows, f.type)
               for n, f in zip(EVENTS.names, EVENTS, strict=True)]
    try:
        batch = pa.Table.from_arrays(columns, names=EVENTS.names).cast(EVENTS)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise LakeError(f"an event batch does not fit the lake layout: {exc}",
                        code="lake/bad-batch") from None
    nulls = [n for n in _REQUIRED if batch[n].null_count]
    if nulls:
        raise LakeError(f"an event batch has missing values in {', '.join(nulls)}",
                        code="lake/bad-batch")
    return batch
