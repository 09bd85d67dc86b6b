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

Two ways in:

* :func:`export` replaces a table in the lake with the store's copy. It writes into a
  staging folder inside the lake, fsyncs it, then swaps it in by renames, so
  exporting twice gives the same rows and a crash never shows a half-written table
  (a crash between the two renames leaves the old copy aside; the next export puts it
  back first). One exporter per lake at a time, and no appends while exporting.
* :func:`append` adds one batch of events durably (the collector's path): one new
  file per day, renamed into place from a temporary dot-name and fsynced.

Readers see only ``*.parquet`` files in ``day=`` folders; staging folders and
temporary files start with a dot, which DuckDB's glob and pyarrow both pass over.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ..errors import LakeError
from .writer import quote_ident

#: Tables a lake may hold, in export order; those missing from the store are skipped.
TABLES: tuple[str, ...] = ("events", "identities", "responses", "texts")

#: The Arrow schema of an event file (every field nullable: Parquet keeps no NOT NULL).
EVENTS = pa.schema([
    ("event_id", pa.string()), ("seq", pa.int64()), ("timestamp", pa.timestamp("us", tz="UTC")),
    ("event", pa.string()), ("anonymous_id", pa.string()), ("user_id", pa.string()),
    ("channel", pa.string()), ("session_id", pa.string()), ("properties", pa.string()),
    ("context", pa.string()), ("source", pa.string()),
])
_REQUIRED = ("event_id", "seq", "timestamp", "event", "channel", "source")
_DAY = pa.schema([("day", pa.string())])
_BATCH = 64_000  # rows per streamed batch: bounded memory at any store size
# DuckDB reads the files; the parameter is the glob, never text spliced into SQL.
_READ_EVENTS = (
    "SELECT event_id, seq, CAST(timestamp AS TIMESTAMPTZ) AS timestamp, event, anonymous_id, "
    "user_id, channel, session_id, CAST(properties AS JSON) AS properties, "
    "CAST(context AS JSON) AS context, source FROM read_parquet(?, hive_partitioning = true)"
)


@dataclass(frozen=True)
class TableExport:
    """What :func:`export` wrote for one table."""

    table: str
    rows: int
    days: int
    files: int


@dataclass(frozen=True)
class ExportResult:
    """Per exported table its rows, day partitions and files; ``result["events"].rows``."""

    lake: Path
    tables: tuple[TableExport, ...]

    def __getitem__(self, table: str) -> TableExport:
        return next(t for t in self.tables if t.table == table)


def export(con: duckdb.DuckDBPyConnection, lake: str | os.PathLike[str],
           tables: tuple[str, ...] = ("events",)) -> ExportResult:
    """Replace ``tables`` in the lake with the store's rows (those the store has)."""
    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        raise LakeError(f"cannot export {', '.join(unknown)}: a lake holds {', '.join(TABLES)}",
                        code="lake/unknown-table")
    root = _folder(lake)
    done = []
    for table in (t for t in TABLES if t in tables):
        columns = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = current_schema() ORDER BY ordinal_position",
            [table]).fetchall()
        if columns:
            done.append(_export_table(con, root, table, columns))
    return ExportResult(root, tuple(done))


def _export_table(con: duckdb.DuckDBPyConnection, root: Path, table: str,
                  columns: list[tuple[str, str]]) -> TableExport:
    _recover(root, table)
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
    staging = root / f".{table}.staging-{uuid.uuid4().hex}"
    written: list[tuple[Path, int]] = []
    try:
        staging.mkdir()
        ds.write_dataset(
            reader, staging, format="parquet", basename_template="part-{i}.parquet",
            partitioning=ds.partitioning(_DAY, flavor="hive") if by_day else None,
            # pyarrow's defaults for open files and row groups measured best: 10M events
            # (348 days) in 10-15 s under 1 GB; fewer open files or bigger row groups took more.
            preserve_order=True, max_partitions=1_000_000, existing_data_behavior="error",
            file_visitor=lambda f: written.append((Path(f.path), f.metadata.num_rows)))
        for path, _ in written:
            _fsync(path)
        for folder in {path.parent for path, _ in written} | {staging}:
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


def append(lake: str | os.PathLike[str], table: pa.Table) -> list[Path]:
    """Write one batch of events durably: one new file per UTC day; returns the files.

    ``table`` has the event file's columns (:data:`EVENTS`); nullable ones may be
    missing. When this returns, the files are renamed into place and fsynced.
    """
    batch = _events(table)
    root = _folder(lake)
    files = []
    days = pc.strftime(batch["timestamp"], format="%Y-%m-%d")
    for day in pc.unique(days).to_pylist():
        folder = root / "events" / f"day={day}"
        _make_dir(folder)
        final = folder / f"append-{uuid.uuid4().hex}.parquet"
        temp = folder / f".{final.name}.tmp"
        try:
            with temp.open("wb") as fh:
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


def has_events(lake: str | os.PathLike[str]) -> bool:
    """Whether the lake holds any event file yet."""
    return next(iter(Path(lake).glob("events/day=*/*.parquet")), None) is not None


def events_glob(lake: str | os.PathLike[str]) -> str:
    """The glob matching every event file of the lake."""
    return str(Path(lake) / "events" / "day=*" / "*.parquet")


def read_events(con: duckdb.DuckDBPyConnection, lake: str | os.PathLike[str]) -> duckdb.DuckDBPyRelation:
    """A DuckDB relation over the lake's events, typed as the store's ``events`` table.

    DuckDB's ``read_parquet`` takes the glob as a bound parameter, with hive
    partitioning; ``timestamp`` is TIMESTAMPTZ, ``properties``/``context`` JSON.
    """
    root = _not_a_file(Path(lake))
    if next(iter(root.glob("events/day=*/*.parquet")), None) is None:
        raise LakeError(f"the lake {root} holds no events (no {events_glob(root)}); run "
                        "`microjourney export --lake` first", code="lake/no-events")
    return con.sql(_READ_EVENTS, params=[events_glob(root)])


def _folder(lake: str | os.PathLike[str]) -> Path:
    """The lake folder, created if missing, or a LakeError saying why it cannot be."""
    root = _not_a_file(Path(lake))
    try:
        _make_dir(root)
    except OSError as exc:
        raise LakeError(f"cannot create the lake folder {root}: {exc.strerror or exc}",
                        code="lake/not-writable") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise LakeError(f"the lake folder {root} is not writable", code="lake/not-writable")
    return root


def _not_a_file(root: Path) -> Path:
    """``root``, unless it or the nearest existing folder above it is a file."""
    found = next((p for p in (root, *root.parents) if p.exists()), None)
    if found is not None and not found.is_dir():
        where = "" if found == root else f" ({found} is a file)"
        raise LakeError(f"the lake {root} is not a folder{where}; give a folder",
                        code="lake/not-a-folder")
    return root


def _make_dir(path: Path) -> None:
    """Create ``path`` and missing parents; each new folder's entry is fsynced in its parent."""
    if path.is_dir():
        return
    _make_dir(path.parent)
    path.mkdir(exist_ok=True)  # another writer may have made it meanwhile; a file raises
    _fsync(path.parent)


def _fsync(path: Path) -> None:
    """Flush a file or folder to disk (folders only where the OS allows it)."""
    if path.is_dir() and os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
