"""Readers: a file in, Arrow batches of raw rows out (plus rows unreadable as such).

All readers keep the source order and number rows from 1 (``__row``), so events at
the same instant keep their order and a rejected row can be found again. Columns
that are not event fields travel on and become properties in the store.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import IngestError
from .schema import FIELDS, ROW

FORMATS = ("csv", "jsonl", "parquet", "xes")

#: Process-mining column names (XES keys as CSV headers) and the field each fills.
PROCESS_MINING = {"case:concept:name": "user_id", "concept:name": "event", "time:timestamp": "timestamp"}


@dataclass(frozen=True)
class Reject:
    """A row a reader could not read as a row at all (bad JSON, wrong column count)."""

    row: int
    reason: str
    raw: str
    field: str | None = None


@dataclass
class Batch:
    table: pa.Table
    rejects: list[Reject] = field(default_factory=list)


def detect_format(path: str | os.PathLike[str]) -> str:
    """The format implied by a file name (``.gz`` allowed)."""
    name = Path(path).name.lower().removesuffix(".gz")
    for ext, fmt in ((".csv", "csv"), (".tsv", "csv"), (".jsonl", "jsonl"), (".ndjson", "jsonl"),
                     (".json", "jsonl"), (".parquet", "parquet"), (".pq", "parquet"), (".xes", "xes")):
        if name.endswith(ext):
            return fmt
    raise IngestError(
        f"{path}: cannot tell the format from the file name; pass --format, one of {', '.join(FORMATS)}",
        code="ingest/format",
    )


def read(path: str | os.PathLike[str], fmt: str | None = None, *,
         mapping: Mapping[str, str] | None = None, batch_size: int = 1_000_000) -> Iterator[Batch]:
    """Yield raw batches from ``path``, renamed by ``mapping`` (field → source column).

    CSV, JSON Lines and XES; Parquet is read by the store itself (:func:`parquet_columns`)."""
    p = Path(path)
    if not p.is_file():
        raise IngestError(f"{p}: no such file", code="ingest/missing")
    fmt = fmt or detect_format(p)
    if fmt not in FORMATS:
        raise IngestError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}", code="ingest/format")
    if fmt == "csv":
        batches: Iterator[Batch] = _csv(p, batch_size)
    elif fmt == "jsonl":
        batches = _jsonl(p, batch_size, mapping or {})
        mapping = {}  # applied per object, before extra keys join the properties
    elif fmt == "parquet":
        raise IngestError(f"{p}: Parquet is read by the store itself; use parquet_columns()",
                          code="ingest/format")
    else:
        from .xes import read_xes

        batches = (Batch(t) for t in read_xes(p, batch_size=batch_size))
    first = True
    for batch in batches:
        if first:
            _check_mapping(p, batch.table.schema.names, mapping or {})
            first = False
        yield Batch(rename(batch.table, mapping or {}), batch.rejects)


def _check_mapping(path: Path, names: list[str], mapping: Mapping[str, str]) -> None:
    for target, source in mapping.items():
        if target not in FIELDS:
            raise IngestError(
                f"--map {target}={source}: {target!r} is not an event field; "
                f"allowed: {', '.join(FIELDS)}", code="ingest/mapping")
        if source not in names:
            raise IngestError(
                f"--map {target}={source}: {path} has no column {source!r}; "
                f"columns: {', '.join(n for n in names if n != ROW)}", code="ingest/mapping")


def rename(table: pa.Table, mapping: Mapping[str, str]) -> pa.Table:
    """Apply ``--map FIELD=COLUMN``, then process-mining defaults for unmapped fields."""
    names = list(table.schema.names)
    by_source = {src: dst for dst, src in mapping.items()}
    for src, dst in PROCESS_MINING.items():
        if dst not in mapping and dst not in names and src in names and src not in by_source:
            by_source[src] = dst
    if not by_source:
        return table
    out = []
    for n in names:
        if n in by_source:
            out.append(by_source[n])
        elif n in by_source.values():
            out.append(f"source:{n}")  # a column displaced by a mapping stays, as a property
        else:
            out.append(n)
    return table.rename_columns(out)


def parquet_columns(path: str | os.PathLike[str],
                    mapping: Mapping[str, str] | None = None) -> tuple[list[tuple[str, str]], pa.Schema]:
    """For a Parquet file read by the store itself: (file column, raw field) pairs and schema."""
    p = Path(path)
    if not p.is_file():
        raise IngestError(f"{p}: no such file", code="ingest/missing")
    try:
        schema = pq.read_schema(p)
    except (OSError, pa.ArrowInvalid) as exc:
        raise IngestError(f"{p}: not a readable Parquet file ({exc})", code="ingest/unreadable") from None
    _check_mapping(p, schema.names, mapping or {})
    renamed = rename(schema.empty_table(), mapping or {}).schema
    return list(zip(schema.names, renamed.names, strict=True)), renamed


def _open_text(path: Path) -> io.TextIOBase:
    raw = gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")  # noqa: SIM115
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def _csv(path: Path, batch_size: int) -> Iterator[Batch]:
    delimiter = "\t" if path.name.lower().removesuffix(".gz").endswith(".tsv") else ","
    with _open_text(path) as fh:
        header = next(csv.reader(fh, delimiter=delimiter), None)
    if not header:
        raise IngestError(f"{path}: the CSV file is empty (no header row)", code="ingest/empty")
    names = [h.strip() for h in header]
    rejects: list[Reject] = []

    def invalid(row: pacsv.InvalidRow) -> str:
        line = row.number if row.number is not None else 0
        rejects.append(Reject(row=line - 1, raw=row.text,
                              reason=f"line {line}: expected {row.expected_columns} columns, "
                                     f"found {row.actual_columns}"))
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.input_stream(str(path), compression="detect"),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=invalid),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                 strings_can_be_null=True, null_values=[""]),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise IngestError(f"{path}: not a readable CSV file ({exc})", code="ingest/unreadable") from None
    # Data rows are numbered 1.. in file order; rows skipped as invalid keep their number.
    skipped = sorted(r.row for r in rejects)
    rows, nxt, k = [], 1, 0
    for _ in range(table.num_rows):
        while k < len(skipped) and skipped[k] == nxt:
            nxt, k = nxt + 1, k + 1
        rows.append(nxt)
        nxt += 1
    table = table.append_column(ROW, pa.array(rows, pa.int64()))
    for offset in range(0, max(table.num_rows, 1), batch_size):
        yield Batch(table.slice(offset, batch_size), rejects if offset == 0 else [])


def _jsonl(path: Path, batch_size: int, mapping: Mapping[str, str]) -> Iterator[Batch]:
    _check_mapping(path, list(mapping.values()), mapping)
    by_source = {src: dst for dst, src in mapping.items()}
    rows: list[dict[str, object]] = []
    rejects: list[Reject] = []
    with _open_text(path) as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                rejects.append(Reject(number, f"line {number}: not valid JSON ({exc})", line.strip()))
                continue
            if not isinstance(obj, dict):
                rejects.append(Reject(number, f"line {number}: not a JSON object", line.strip()))
                continue
            if by_source:
                obj = {by_source.get(k, k if k not in mapping else f"source:{k}"): v
                       for k, v in obj.items()}
            row = _json_row(obj)
            row[ROW] = number
            rows.append(row)
            if len(rows) >= batch_size:
                yield Batch(_jsonl_table(rows), rejects)
                rows, rejects = [], []
    if rows or rejects:
        yield Batch(_jsonl_table(rows), rejects)


def _json_row(obj: dict[str, object]) -> dict[str, object]:
    """One JSON object → text fields; keys that are not event fields join the properties."""
    row: dict[str, object] = {}
    extras = {k: v for k, v in obj.items() if k not in FIELDS}
    props = obj.get("properties")
    if extras and (props is None or isinstance(props, dict)):
        obj = {**obj, "properties": {**extras, **(props or {})}}
    for key in FIELDS:
        value = obj.get(key)
        if isinstance(value, dict | list):
            row[key] = orjson.dumps(value).decode()  # properties, context travel as JSON text
        elif isinstance(value, bool):
            row[key] = str(value).lower()
        elif value is not None:
            row[key] = str(value)
    return row


def _jsonl_table(rows: list[dict[str, object]]) -> pa.Table:
    names: dict[str, None] = {}
    for r in rows:
        names.update(dict.fromkeys(r))
    cols = {n: pa.array([r.get(n) for r in rows], pa.int64() if n == ROW else pa.string())
            for n in names}
    if ROW not in cols:
        cols[ROW] = pa.array([], pa.int64())
    return pa.table(cols)
