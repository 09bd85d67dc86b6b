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
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
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
#: URL schemes of object storage a lake may be on (``s3a`` is Hadoop's name for S3).
SCHEMES = ("s3", "s3a")
_REQUIRED = ("event_id", "seq", "timestamp", "event", "channel", "source")
_DAY = pa.schema([("day", pa.string())])
_BATCH = 64_000  # rows per streamed batch: bounded memory at any store size
_OBJECT_ROWS = 8_000_000  # rows per exported object: far below S3's 5 GB server-side copy limit
_WORKERS = 16  # concurrent copies and deletes while an export publishes on object storage
# DuckDB reads the files; the parameter is the glob, never text spliced into SQL.
_SELECT_EVENTS = (
    "SELECT event_id, seq, CAST(timestamp AS TIMESTAMPTZ) AS timestamp, event, anonymous_id, "
    "user_id, channel, session_id, CAST(properties AS JSON) AS properties, "
    "CAST(context AS JSON) AS context, source FROM "
)
_READ_EVENTS = _SELECT_EVENTS + "read_parquet(?, hive_partitioning = true)"
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):/(?P<rest>.*)", re.S)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_DATA_FILE = re.compile(r"day=[^/]+/[^/._][^/]*\.parquet")
#: How the object store's answers map to error codes (the AWS SDK's error names).
_S3_ERRORS = (
    ("lake/no-bucket", ("NO_SUCH_BUCKET",)),
    ("lake/denied", ("ACCESS_DENIED", "INVALID_ACCESS_KEY_ID", "SIGNATURE_DOES_NOT_MATCH",
                     "EXPIRED_TOKEN", "INVALID_CLIENT_TOKEN_ID", "HTTP status 403")),
    ("lake/unreachable", ("NETWORK_CONNECTION", "curlCode", "Could not connect", "REQUEST_TIMEOUT")),
)


@dataclass(frozen=True)
class Location:
    """Where a lake is: a folder (``fs`` is None) or ``bucket/prefix`` on S3 (``fs``).

    ``url`` is what messages show (the folder, or ``s3://bucket/prefix``); ``path`` is the
    folder, or ``bucket/prefix`` in ``fs``; ``settings`` holds the S3 endpoint, region and
    credentials :func:`locate` found, for engines that reach the store themselves (Spark).
    """

    url: str
    path: str
    fs: pafs.FileSystem | None = None
    settings: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def local(self) -> bool:
        return self.fs is None

    @property
    def bucket(self) -> str:
        return self.path.split("/", 1)[0]

    def join(self, *parts: str) -> str:
        return "/".join([self.path, *parts])


def locate(lake: str | os.PathLike[str] | Location, env: Mapping[str, str] | None = None) -> Location:
    """The lake at ``lake``: a folder, or an ``s3://bucket/prefix`` URL (``s3a://`` too).

    For a URL, the standard AWS variables of ``env`` (default: the environment) say how to
    reach it: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN``),
    ``AWS_REGION`` or ``AWS_DEFAULT_REGION``, and ``AWS_ENDPOINT_URL`` (or
    ``AWS_ENDPOINT_URL_S3``) for an S3-compatible store such as MinIO. A path that pathlib
    folded from ``s3://`` to ``s3:/`` is read as the URL.
    """
    if isinstance(lake, Location):
        return lake
    text = os.fspath(lake)
    match = _URL.fullmatch(text)
    if match is None or (match["scheme"].lower() not in SCHEMES and "://" not in text):
        return Location(url=text, path=text)
    scheme = match["scheme"].lower()
    if scheme not in SCHEMES:
        raise LakeError(f"the lake {text} is a {scheme}:// URL; a lake is a folder or an s3:// URL "
                        "(S3 or an S3-compatible store)", code="lake/bad-url")
    parts = match["rest"].removeprefix("/").rstrip("/").split("/")
    if (not _BUCKET.fullmatch(parts[0]) or "" in parts or {".", ".."} & set(parts)
            or any(c in text for c in "?#")):
        raise LakeError(f"the lake URL {text} is not s3://bucket/prefix (a bucket of 3-63 lower-case "
                        "letters, digits, dots and hyphens; no empty or relative parts, no query)",
                        code="lake/bad-url")
    path = "/".join(parts)
    fs, settings = _s3(path, os.environ if env is None else env)
    return Location(url=f"s3://{path}", path=path, fs=fs, settings=settings)


def _s3(path: str, env: Mapping[str, str]) -> tuple[pafs.S3FileSystem, dict[str, str]]:
    """The S3 file system for ``bucket/prefix`` as the AWS variables of ``env`` describe it.

    Given an endpoint and keys, nothing is looked up elsewhere: the region defaults to
    us-east-1 (S3-compatible stores ignore it) instead of the SDK's search, which would ask
    the instance metadata address. Without keys the SDK's own chain applies (files, roles).
    """
    key, secret, token = (env.get(k) or None for k in
                          ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"))
    if bool(key) != bool(secret):
        raise LakeError("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither (then the "
                        "AWS configuration files or the machine's role give the credentials)",
                        code="lake/credentials")
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    options: dict[str, Any] = {}
    settings: dict[str, str] = {}
    if endpoint:
        url = urlsplit(endpoint)
        if url.scheme not in ("http", "https") or not url.netloc or url.path not in ("", "/"):
            raise LakeError(f"AWS_ENDPOINT_URL={endpoint!r} is not an endpoint like "
                            "http://127.0.0.1:9000 or https://s3.example.com", code="lake/bad-url")
        options.update(endpoint_override=url.netloc, scheme=url.scheme)
        settings["endpoint"] = f"{url.scheme}://{url.netloc}"
        region = region or "us-east-1"
    elif not region:  # the bucket says where it is (one request to AWS)
        bucket = path.split("/", 1)[0]
        try:
            region = pafs.resolve_s3_region(bucket)
        except OSError as exc:
            raise LakeError(f"cannot find the region of the bucket {bucket} ({exc}); set AWS_REGION",
                            code="lake/unreachable") from None
    options["region"] = settings["region"] = region
    if key and secret:
        options.update(access_key=key, secret_key=secret, session_token=token)
        settings.update(access_key=key, secret_key=secret)
        if token:
            settings["session_token"] = token
    # Delayed open: a small object is one PUT when it is closed, not three requests.
    return pafs.S3FileSystem(**options, allow_delayed_open=True), settings


@contextmanager
def _remote(where: Location, doing: str) -> Iterator[None]:
    """Turn the object store's errors into a LakeError with a stable code and a hint."""
    try:
        yield
    except OSError as exc:
        text = str(exc)
        code = next((c for c, names in _S3_ERRORS if any(n in text for n in names)), "lake/object-store")
        server = where.settings.get("endpoint", "AWS S3")
        hint = {
            "lake/no-bucket": f"the bucket {where.bucket} does not exist at {server}; create it "
                              "first (microjourney creates no buckets)",
            "lake/denied": "access was refused: check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and "
                           "AWS_SESSION_TOKEN) and the bucket's policy",
            "lake/unreachable": f"cannot reach {server}: check AWS_ENDPOINT_URL and the network",
            "lake/object-store": "the object store answered with an error",
        }[code]
        detail = text[text.find("AWS Error"):] if "AWS Error" in text else text
        detail = detail.split(" (Request ID")[0]
        raise LakeError(f"cannot {doing} the lake {where.url}: {hint} ({detail})", code=code) from None


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


def _marker(where: Location, table: str) -> dict[str, Any] | None:
    """The publish marker of ``table`` (generation, files), or None when no export publishes."""
    try:
        with where.fs.open_input_stream(where.join(f".{table}.publishing")) as f:
            return json.loads(f.read())
    except FileNotFoundError:
        return None


def _objects(where: Location, prefix: str) -> list[str]:
    """Every object under ``prefix``, sorted."""
    infos = where.fs.get_file_info(pafs.FileSelector(prefix, recursive=True, allow_not_found=True))
    return sorted(i.path for i in infos if i.type == pafs.FileType.File)


def _snapshot(where: Location, table: str = "events") -> tuple[str, list[str]]:
    """The prefix holding the whole current copy of ``table`` and its data files.

    That is ``<table>/``, or while an export publishes its staging prefix; the marker is
    read before and after listing, so a publish starting meanwhile is noticed."""
    with _remote(where, "read"):
        for _ in range(3):
            before = _marker(where, table)
            base = where.join(f".{table}.staging-{before['generation']}" if before else table)
            files = [p for p in _objects(where, base) if _DATA_FILE.fullmatch(p[len(base) + 1:])]
            if _marker(where, table) == before:
                if not files:
                    _bucket(where, "read")  # an empty listing may hide a missing bucket
                return base, files
    raise LakeError(f"exports keep publishing into {where.url}; read it when they are done",
                    code="lake/busy")


def check(lake: str | os.PathLike[str] | Location) -> None:
    """For object storage, a LakeError (with its code) unless the lake's bucket answers with
    the environment's settings: one request. A folder is checked where it is used."""
    where = locate(lake)
    if not where.local:
        _bucket(where, "read")


def _bucket(where: Location, doing: str) -> None:
    """A LakeError unless the lake's bucket exists and answers."""
    with _remote(where, doing):
        found = where.fs.get_file_info(where.bucket).type != pafs.FileType.NotFound
    if not found:
        raise LakeError(f"cannot {doing} the lake {where.url}: the bucket {where.bucket} does not exist "
                        f"at {where.settings.get('endpoint', 'AWS S3')}; create it first (microjourney "
                        "creates no buckets)", code="lake/no-bucket")


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


# -- appending -----------------------------------------------------------------------

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


# -- reading -------------------------------------------------------------------------

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


# -- local folders -------------------------------------------------------------------

def _folder(lake: Path) -> Path:
    """The lake folder, created if missing, or a LakeError saying why it cannot be."""
    root = _not_a_file(lake)
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
