"""The Parquet lake: the store's tables as day-partitioned Parquet files, for scale.

Layout (hive-style partitions by the UTC day of ``timestamp``)::

    <lake>/events/day=YYYY-MM-DD/<name>.parquet

Each file holds exactly the columns of the store's ``events`` table, in store order:
``event_id``, ``seq``, ``timestamp`` (UTC timestamp, microseconds), ``event``,
``anonymous_id``, ``user_id``, ``channel``, ``session_id``, ``properties`` and
``context`` (both JSON *text*) and ``source``. ``day`` is only the folder name, never
a column inside a file. Other tables (identities, responses, texts) get the same
treatment under ``<lake>/<table>/`` once the store has them: partitioned by day when
they have a ``timestamp`` column, JSON columns as text.

A lake is a local folder or an ``s3://bucket/prefix`` URL (S3 or an S3-compatible
store; :func:`locate` reads the endpoint, region and credentials from the standard AWS
environment variables). Two ways in:

* :func:`export` replaces a table in the lake with the store's copy. In a folder it
  writes a staging folder inside the lake, fsyncs it, then swaps it in by renames, so
  exporting twice gives the same rows and a crash never shows a half-written table
  (a crash between the two renames leaves the old copy aside; the next export puts it
  back first). On object storage, which has no renames, it writes the new objects under
  a staging prefix, then publishes them (:func:`_publish`: a marker object, server-side
  copies in, the old objects out, the marker off); this module's readers follow the
  marker, so they see one whole copy. One exporter per lake at a time, and no appends
  while exporting.
* :func:`append` adds one batch of events durably (the collector's path): one new
  file per day, renamed into place from a temporary dot-name and fsynced; on object
  storage one new object per day, which exists once its upload has returned.

Readers see only ``*.parquet`` files in ``day=`` folders; staging folders and
temporary files start with a dot, which DuckDB's glob, pyarrow and Spark all pass over.
In a folder, what microjourney creates is readable by its owner only: files ``0600``,
folders ``0700`` (:mod:`.private`); object storage has no modes (its policies decide).

This module exports; :mod:`.lake_append` appends, :mod:`.lake_read` reads and
:mod:`.lake_where` finds a lake and holds what they share. Every public name is here.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from ..errors import LakeError
from .lake_append import append
from .lake_read import check, event_objects, events_glob, has_events, read_events
from .lake_where import (
    _DAY,
    EVENTS,
    SCHEMES,
    TABLES,
    Location,
    _bucket,
    _folder,
    _fsync,
    _marker,
    _objects,
    _remote,
    locate,
)
from .private import DIR_MODE, FILE_MODE
from .writer import quote_ident

__all__ = ["EVENTS", "SCHEMES", "TABLES", "ExportResult", "Location", "TableExport", "append",
           "check", "event_objects", "events_glob", "export", "has_events", "locate", "read_events"]

_BATCH = 64_000  # rows per streamed batch: bounded memory at any store size
_OBJECT_ROWS = 8_000_000  # rows per exported object: far below S3's 5 GB server-side copy limit
_WORKERS = 16  # concurrent copies and deletes while an export publishes on object storage


@dataclass(frozen=True)
class TableExport:
    """What :func:`export` wrote for one table."""

    table: str
    rows: int
    days: int
    files: int


@dataclass(frozen=True)
class ExportResult:
    """Per exported table its rows, day partitions and files; ``result["events"].rows``.

    ``lake`` is the folder (a Path) or the ``s3://`` URL."""

    lake: Path | str
    tables: tuple[TableExport, ...]

    def __getitem__(self, table: str) -> TableExport:
        return next(t for t in self.tables if t.table == table)


def export(con: duckdb.DuckDBPyConnection, lake: str | os.PathLike[str] | Location,
           tables: tuple[str, ...] = ("events",)) -> ExportResult:
    """Replace ``tables`` in the lake with the store's rows (those the store has)."""
    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        raise LakeError(f"cannot export {', '.join(unknown)}: a lake holds {', '.join(TABLES)}",
                        code="lake/unknown-table")
    where = locate(lake)
    root: Path | str
    if where.local:
        root = _folder(Path(where.path))
    else:
        _bucket(where, "export to")
        root = where.url
    done = []
    for table in (t for t in TABLES if t in tables):
        columns = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = current_schema() ORDER BY ordinal_position",
            [table]).fetchall()
        if columns:
            done.append(_export_table(con, root, table, columns) if isinstance(root, Path)
                        else _export_objects(con, where, table, columns))
    return ExportResult(root, tuple(done))


def _reader(con: duckdb.DuckDBPyConnection, table: str,
            columns: list[tuple[str, str]]) -> tuple[pa.RecordBatchReader, bool]:
    """The store's ``table`` streamed in the lake's layout, and whether it is by day."""
    names = [name for name, _ in columns]
    select = [f"CAST({quote_ident(n)} AS VARCHAR) AS {quote_ident(n)}" if typ == "JSON"
              else quote_ident(n) for n, typ in columns]
    by_day = "timestamp" in names
    if by_day:  # the UTC day, whatever the connection's time zone
        select.append("strftime(timezone('UTC', \"timestamp\"), '%Y-%m-%d') AS day")
    sql = "SELECT " + ", ".join(select) + " FROM " + quote_ident(table)
    reader = con.sql(sql).to_arrow_reader(_BATCH)
    if table == "events":  # the one layout append() writes too (a mismatch fails loudly)
        reader = reader.cast(pa.schema([*EVENTS, *_DAY]))
    return reader, by_day


def _export_table(con: duckdb.DuckDBPyConnection, root: Path, table: str,
                  columns: list[tuple[str, str]]) -> TableExport:
    _recover(root, table)
    reader, by_day = _reader(con, table, columns)
    staging = root / f".{table}.staging-{uuid.uuid4().hex}"
    written: list[tuple[Path, int]] = []
    try:
        # Private from the start: pyarrow creates what it writes inside with the umask's
        # modes, which are narrowed below before the copy is swapped in.
        staging.mkdir(mode=DIR_MODE)
        ds.write_dataset(
            reader, staging, format="parquet", basename_template="part-{i}.parquet",
            partitioning=ds.partitioning(_DAY, flavor="hive") if by_day else None,
            # pyarrow's defaults for open files and row groups measured best: 10M events
            # (348 days) in 10-15 s under 1 GB; fewer open files or bigger row groups took more.
            preserve_order=True, max_partitions=1_000_000, existing_data_behavior="error",
            file_visitor=lambda f: written.append((Path(f.path), f.metadata.num_rows)))
        for path, _ in written:
            os.chmod(path, FILE_MODE)
            _fsync(path)
        for folder in {path.parent for path, _ in written} | {staging}:
            os.chmod(folder, DIR_MODE)
            _fsync(folder)
        _swap(root, table, staging)
    except BaseException:
        reader.close()  # DuckDB refuses the next query while a result is half read
        shutil.rmtree(staging, ignore_errors=True)
        raise
    days = len({path.parent for path, _ in written}) if by_day else 0
    return TableExport(table, sum(n for _, n in written), days, len(written))


def _swap(root: Path, table: str, staging: Path) -> None:
    """Put ``staging`` in place of ``root/table``: old aside, new in, old removed."""
    target, old = root / table, root / f".{table}.old-{uuid.uuid4().hex}"
    if target.exists():
        target.rename(old)
    staging.rename(target)
    _fsync(root)
    shutil.rmtree(old, ignore_errors=True)


def _recover(root: Path, table: str) -> None:
    """Undo what an export that crashed left: its staging folder, a table set aside."""
    for stale in root.glob(f".{table}.staging-*"):
        shutil.rmtree(stale, ignore_errors=True)
    for old in sorted(root.glob(f".{table}.old-*")):
        if not (root / table).exists():
            old.rename(root / table)
            _fsync(root)
        else:
            shutil.rmtree(old, ignore_errors=True)


# -- object storage: export by staging and publishing --------------------------------

def _export_objects(con: duckdb.DuckDBPyConnection, where: Location, table: str,
                    columns: list[tuple[str, str]]) -> TableExport:
    """Write ``table`` under a fresh staging prefix, then publish it (see :func:`_publish`).

    Until the publish starts, readers see the old copy; a crash before it leaves only a
    staging prefix, which readers never list and the next export deletes."""
    with _remote(where, "export to"):
        _recover_objects(where, table)
    reader, by_day = _reader(con, table, columns)
    generation = uuid.uuid4().hex[:16]
    staging = where.join(f".{table}.staging-{generation}")
    written: list[tuple[str, int]] = []
    publishing = False
    try:
        with _remote(where, "export to"):
            ds.write_dataset(
                reader, staging, filesystem=where.fs, format="parquet",
                basename_template=f"part-{generation}-{{i}}.parquet",
                partitioning=ds.partitioning(_DAY, flavor="hive") if by_day else None,
                preserve_order=True, max_partitions=1_000_000, max_rows_per_file=_OBJECT_ROWS,
                existing_data_behavior="overwrite_or_ignore", create_dir=False,  # a fresh prefix
                file_visitor=lambda f: written.append((f.path, f.metadata.num_rows)))
            publishing = True
            _publish(where, table, generation, len(written))
    except BaseException:
        reader.close()  # DuckDB refuses the next query while a result is half read
        if not publishing:  # once published, readers follow the staged copy: keep it
            with _remote(where, "clean up"):
                _delete_prefix(where, staging)
        raise
    days = len({path.rsplit("/", 1)[0] for path, _ in written}) if by_day else 0
    return TableExport(table, sum(n for _, n in written), days, len(written))


def _publish(where: Location, table: str, generation: str, files: int) -> None:
    """Make the staged copy ``generation`` the table, in the only order S3 allows.

    1. PUT the marker ``.<table>.publishing`` (generation, file count): from now on this
       module's readers read the staged copy, which is complete.
    2. Copy each staged object into ``<table>/`` (server-side: no data through here).
    3. Delete every other object under ``<table>/`` (the old copy, appended files).
    4. Delete the marker: readers read ``<table>/`` again, now the new copy.
    5. Delete the staging prefix.

    Other readers of ``<table>/`` (Spark, pyarrow, the console) see the old copy, then
    during steps 2-3 old and new objects together, then the new copy. Idempotent: an
    export that finds a marker calls this again to finish a publish that crashed.
    """
    staging, target, marker = (where.join(f".{table}.staging-{generation}"), where.join(table),
                               where.join(f".{table}.publishing"))
    staged = _objects(where, staging)
    if len(staged) != files:  # the staging prefix is not the one the marker describes
        raise LakeError(f"the export being published in {where.url} has {len(staged)} of its {files} "
                        f"files under {staging}; delete {marker} and export again",
                        code="lake/broken-export")
    with where.fs.open_output_stream(marker) as out:
        out.write(json.dumps({"generation": generation, "files": files}).encode())
    new = [target + path[len(staging):] for path in staged]
    with ThreadPoolExecutor(_WORKERS) as pool:
        list(pool.map(where.fs.copy_file, staged, new))
        keep = set(new)
        list(pool.map(where.fs.delete_file, [p for p in _objects(where, target) if p not in keep]))
    where.fs.delete_file(marker)
    _delete_prefix(where, staging)


def _recover_objects(where: Location, table: str) -> None:
    """Finish a publish that crashed (its marker is there); delete unpublished staging prefixes."""
    marker = _marker(where, table)
    if marker is not None:
        _publish(where, table, marker["generation"], marker["files"])
    top = where.fs.get_file_info(pafs.FileSelector(where.path, allow_not_found=True))
    for info in top:
        if info.base_name.startswith(f".{table}.staging-"):
            _delete_prefix(where, info.path)


def _delete_prefix(where: Location, prefix: str) -> None:
    """Delete every object under ``prefix`` (batched), and its folder marker if any."""
    # delete_dir, not delete_dir_contents, which leaves a marker object for the folder;
    # nothing there is nothing to delete.
    with suppress(FileNotFoundError):
        where.fs.delete_dir(prefix)
