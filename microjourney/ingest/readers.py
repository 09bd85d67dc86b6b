"""Readers: a file in, Arrow batches of raw rows out (plus rows unreadable as such).

All readers keep the source order and number rows from 1 (``__row``), so events at
the same instant keep their order and a rejected row can be found again. Columns
that are not event fields travel on and become properties in the store. CSV and JSON Lines
are read through :mod:`microjourney.ingest.lines`, in bounded memory whatever a file holds.
"""

from __future__ import annotations

import csv
import itertools
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import IngestError
from .lines import Chunk, Limits, Reject, chunks, cut, stopped_reading
from .records import records
from .schema import FIELDS, ROW, VALUE_FIELDS

FORMATS = ("csv", "jsonl", "parquet", "xes")

#: Process-mining column names (XES keys as CSV headers) and the field each fills.
PROCESS_MINING = {"case:concept:name": "user_id", "concept:name": "event", "time:timestamp": "timestamp"}


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
         mapping: Mapping[str, str] | None = None, batch_size: int = 1_000_000,
         limits: Limits = Limits()) -> Iterator[Batch]:
    """Yield raw batches from ``path``, renamed by ``mapping`` (field → source column).

    CSV, JSON Lines and XES; Parquet is read by the store itself (:func:`parquet_columns`).
    Memory stays bounded whatever the file holds (``limits``: docs/workspace.md, "Ingest
    limits"): a batch holds at most ``batch_size`` rows and :data:`BATCH_BYTES` of text; a line
    longer than ``limits.max_line_bytes`` or not valid UTF-8 is a reject; past
    ``limits.max_file_bytes`` the batches read so far are yielded, then an
    :class:`IngestError` (code ``ingest/too-large``) says how much was read."""
    p = Path(path)
    if not p.is_file():
        raise IngestError(f"{p}: no such file", code="ingest/missing")
    fmt = fmt or detect_format(p)
    if fmt not in FORMATS:
        raise IngestError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}", code="ingest/format")
    if fmt == "csv":
        batches: Iterator[Batch] = _csv(p, batch_size, limits)
    elif fmt == "jsonl":
        batches = _jsonl(p, batch_size, mapping or {}, limits)
        mapping = {}  # applied per object, before extra keys join the properties
    elif fmt == "parquet":
        raise IngestError(f"{p}: Parquet is read by the store itself; use parquet_columns()",
                          code="ingest/format")
    else:
        from .xes import read_xes

        batches = (Batch(t) for t in read_xes(p, batch_size=batch_size, limits=limits))
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


def parse_value(text: str) -> tuple[str, str, str]:
    """``--value FIELD:FROM=TO`` as (field, from, to): split at the first ``:`` and the last
    ``=`` (FROM, a value of the file, may hold both; TO holds no ``=`` and may be empty:
    a value mapped to nothing is missing)."""
    field_name, colon, pair = text.partition(":")
    source, equals, target = pair.rpartition("=")
    if not colon or not equals or not field_name.strip() or not source:
        raise IngestError(f"--value {text}: write FIELD:FROM=TO, e.g. channel:desktop=web",
                          code="ingest/mapping")
    return field_name.strip(), source, target


def value_map(texts: list[str]) -> dict[str, dict[str, str]]:
    """The ``--value FIELD:FROM=TO`` options as ``{field: {from: to}}``, checked
    (:func:`check_values`); a value given twice for one field is an error."""
    values: dict[str, dict[str, str]] = {}
    for text in texts:
        name, source, target = parse_value(text)
        if source in values.get(name, {}):
            raise IngestError(f"--value {text}: {name} value {source!r} is already mapped to "
                              f"{values[name][source]!r}", code="ingest/mapping")
        values.setdefault(name, {})[source] = target
    check_values(values)
    return values


def check_values(values: Mapping[str, Mapping[str, str]]) -> None:
    """Refuse a value map (``--value``) for a field whose values cannot be mapped, or with an
    empty FROM (an empty cell is a missing value, which ``--channel`` fills for channels)."""
    for name, pairs in values.items():
        if name not in VALUE_FIELDS:
            raise IngestError(f"--value {name}:...: the values of {name!r} cannot be mapped; "
                              f"fields: {', '.join(VALUE_FIELDS)}", code="ingest/mapping")
        for source, target in pairs.items():
            if not isinstance(source, str) or not isinstance(target, str) or not source:
                raise IngestError(f"--value {name}:{source}={target}: FROM and TO are text, FROM "
                                  "not empty", code="ingest/mapping")


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


#: A batch holds at most this many bytes of source text, besides ``batch_size`` rows.
BATCH_BYTES = 128 * 2**20


def _too_large(path: Path, limits: Limits, last: int) -> IngestError:
    """The error that ends a file cut at ``limits.max_file_bytes`` (its rows before are kept)."""
    return IngestError(f"{path}: {stopped_reading(limits, f'lines 1 to {last:,}')}", code="ingest/too-large")


def _csv(path: Path, batch_size: int, limits: Limits) -> Iterator[Batch]:
    delimiter = "\t" if path.name.lower().removesuffix(".gz").endswith(".tsv") else ","
    parts = chunks(path, limits)
    names, first = _header(path, parts, delimiter, limits)
    tables: list[pa.Table] = []
    rejects: list[Reject] = []
    rows = size = last = 0
    stopped = False
    for whole in records(itertools.chain([first] if first else [], parts), limits):
        chunk = whole.chunk
        # A CSV row is numbered from the first line after the header (its line less one).
        rejects.extend(replace(r, row=r.row - 1) for r in chunk.rejects)
        if len(chunk.numbers):
            table, bad = (_csv_lines(chunk, names, delimiter, whole.joined) if whole.multiline
                          else _csv_chunk(chunk, names, delimiter))
            tables.append(table)
            rejects.extend(bad)
            rows, size, last = rows + table.num_rows, size + len(chunk.data), int(chunk.numbers[-1])
        stopped = stopped or chunk.stopped
        if rows >= batch_size or size >= BATCH_BYTES:
            yield Batch(_concat(tables, names), rejects)
            tables, rejects, rows, size = [], [], 0, 0
    if tables or rejects or not last:
        yield Batch(_concat(tables, names), rejects)
    if stopped:
        raise _too_large(path, limits, last)


def _header(path: Path, parts: Iterator[Chunk], delimiter: str,
            limits: Limits) -> tuple[list[str], Chunk | None]:
    """The column names (line 1) and what is left of the chunk that held them."""
    for chunk in parts:
        if chunk.rejects and chunk.rejects[0].row == 1:
            reason = chunk.rejects[0].reason.removeprefix("line 1: ")
            raise IngestError(f"{path}:1: the CSV header cannot be read: {reason}", code="ingest/header")
        if not len(chunk.numbers):
            continue
        end = chunk.data.index(b"\n")
        # Header cells may be as long as a line may be (the csv module's own limit is 128 kB).
        csv.field_size_limit(max(csv.field_size_limit(), limits.max_line_bytes))
        try:
            header = next(csv.reader([chunk.data[:end].decode().rstrip("\r")], delimiter=delimiter), [])
        except csv.Error as exc:
            raise IngestError(f"{path}:1: the CSV header cannot be read: {exc}",
                              code="ingest/header") from None
        if not any(h.strip() for h in header):
            break
        rest = Chunk(chunk.data[end + 1:], chunk.numbers[1:], chunk.rejects, chunk.stopped)
        return [h.strip() for h in header], rest
    raise IngestError(f"{path}: the CSV file is empty (no header row)", code="ingest/empty")


def _csv_chunk(chunk: Chunk, names: list[str], delimiter: str) -> tuple[pa.Table, list[Reject]]:
    """Parse the lines of ``chunk`` (no header); rows keep their line number less one."""
    data = np.frombuffer(chunk.data, np.uint8)
    ends = np.flatnonzero(data == 10)
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts - (data[np.maximum(ends - 1, 0)] == 13)
    lines = chunk.numbers[lengths > 0]  # Arrow skips empty lines and counts only the others
    rejects: list[Reject] = []
    dropped: list[int] = []

    def invalid(row: pacsv.InvalidRow) -> str:
        at = (row.number or 0) - 1
        line = int(lines[at]) if 0 <= at < len(lines) else 0
        dropped.append(at)
        rejects.append(Reject(row=line - 1, raw=cut(row.text.encode()),
                              reason=f"line {line}: expected {row.expected_columns} columns, "
                                     f"found {row.actual_columns}"))
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.BufferReader(chunk.data),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False,
                                           block_size=max(len(chunk.data) + 1, 2**20)),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=invalid),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                 strings_can_be_null=True, null_values=[""]),
        )
    except pa.ArrowInvalid:
        return _csv_lines(chunk, names, delimiter)
    rows = np.delete(lines, dropped)
    if len(rows) != table.num_rows:  # a lone carriage return inside a line: Arrow saw more lines
        return _csv_lines(chunk, names, delimiter)
    return table.append_column(ROW, pa.array(rows - 1, pa.int64())), rejects


def _csv_lines(chunk: Chunk, names: list[str], delimiter: str,
               joined: np.ndarray | None = None) -> tuple[pa.Table, list[Reject]]:
    """The slow road for a chunk Arrow could not parse, or whose records span lines
    (``joined``: see :class:`~microjourney.ingest.records.Records`): record by record with
    the csv module."""
    cols: list[list[str | None]] = [[] for _ in names]
    rows: list[int] = []
    rejects: list[Reject] = []
    for number, line in _joined(chunk, joined):
        text = line.decode().rstrip("\r")
        if not text:
            continue
        try:
            cells = next(csv.reader([text], delimiter=delimiter))
        except csv.Error as exc:
            rejects.append(Reject(number - 1, f"line {number}: not a CSV record ({exc})", cut(line)))
            continue
        if len(cells) != len(names):
            rejects.append(Reject(number - 1, f"line {number}: expected {len(names)} columns, "
                                              f"found {len(cells)}", cut(line)))
            continue
        for col, cell in zip(cols, cells, strict=True):
            col.append(cell or None)
        rows.append(number - 1)
    arrays = [pa.array(c, pa.string()) for c in cols] + [pa.array(rows, pa.int64())]
    return pa.Table.from_arrays(arrays, names=[*names, ROW]), rejects


def _joined(chunk: Chunk, joined: np.ndarray | None) -> Iterator[tuple[int, bytes]]:
    """(number of its first line, text) of each record of ``chunk``: its lines, or lines
    joined where ``joined`` says a quoted field goes on."""
    lines = chunk.data.split(b"\n")
    if joined is None or not joined.any():
        yield from zip(chunk.numbers.tolist(), lines, strict=False)
        return
    start = 0
    for i, goes_on in enumerate(joined.tolist()):
        if not goes_on:
            yield int(chunk.numbers[start]), b"\n".join(lines[start:i + 1])
            start = i + 1


def _concat(tables: list[pa.Table], names: list[str]) -> pa.Table:
    if tables:
        return pa.concat_tables(tables)
    return pa.table({**{n: pa.array([], pa.string()) for n in names}, ROW: pa.array([], pa.int64())})


def _jsonl(path: Path, batch_size: int, mapping: Mapping[str, str], limits: Limits) -> Iterator[Batch]:
    _check_mapping(path, list(mapping.values()), mapping)
    by_source = {src: dst for dst, src in mapping.items()}
    rows: list[dict[str, object]] = []
    rejects: list[Reject] = []
    size = last = 0
    stopped = False
    for chunk in chunks(path, limits):
        rejects.extend(chunk.rejects)
        stopped = stopped or chunk.stopped
        for number, line in zip(chunk.numbers.tolist(), chunk.data.split(b"\n"), strict=False):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                rejects.append(Reject(number, f"line {number}: not valid JSON ({exc})", cut(line.strip())))
                continue
            if not isinstance(obj, dict):
                rejects.append(Reject(number, f"line {number}: not a JSON object", cut(line.strip())))
                continue
            if by_source:
                obj = {by_source.get(k, k if k not in mapping else f"source:{k}"): v
                       for k, v in obj.items()}
            try:
                row = json_row(obj)
            except ValueError as exc:
                rejects.append(Reject(number, f"line {number}: {exc}", cut(line.strip())))
                continue
            row[ROW] = number
            rows.append(row)
            if len(rows) >= batch_size:
                yield Batch(_jsonl_table(rows), rejects)
                rows, rejects, size = [], [], 0
        if len(chunk.numbers):
            last = int(chunk.numbers[-1])
        size += len(chunk.data)
        if size >= BATCH_BYTES:
            yield Batch(_jsonl_table(rows), rejects)
            rows, rejects, size = [], [], 0
    if rows or rejects:
        yield Batch(_jsonl_table(rows), rejects)
    if stopped:
        raise _too_large(path, limits, last)

_FIELD_SET = frozenset(FIELDS)


def json_row(obj: dict[str, object]) -> dict[str, object]:
    """One JSON object → text fields; keys that are not event fields join the properties
    (unless ``properties`` is given as something other than an object). One pass over the
    object's keys: this runs for every line of a file. A ``ValueError`` when a value is
    nested too deep to be written back as JSON."""
    row: dict[str, object] = {}
    extras: dict[str, object] = {}
    for key, value in obj.items():
        if key not in _FIELD_SET:
            extras[key] = value
        elif value is None:
            continue
        elif type(value) is str:
            row[key] = value  # a JSON string in properties or context is the JSON text it holds
        elif isinstance(value, dict | list):
            row[key] = _dumps(key, value)  # properties, context travel as JSON text
        elif isinstance(value, bool):
            row[key] = "true" if value else "false"
        else:
            row[key] = str(value)
    props = obj.get("properties")
    if extras and (props is None or isinstance(props, dict)):
        row["properties"] = _dumps("properties", {**extras, **(props or {})})
    return row


def _dumps(key: str, value: object) -> str:
    """``value`` as JSON text; a ``ValueError`` naming ``key`` when it is nested deeper than
    orjson writes (254 levels; it reads up to 1,024)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError as exc:
        raise ValueError(f"{key} is nested too deep to store ({exc})") from None


def _jsonl_table(rows: list[dict[str, object]]) -> pa.Table:
    names: dict[str, None] = {}
    for r in rows:
        names.update(dict.fromkeys(r))
    cols = {n: pa.array([r.get(n) for r in rows], pa.int64() if n == ROW else pa.string())
            for n in names}
    if ROW not in cols:
        cols[ROW] = pa.array([], pa.int64())
    return pa.table(cols)
