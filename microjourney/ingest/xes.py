"""Streaming reader for XES (IEEE 1849) event logs, plain ``.xes`` or gzipped.

The log is read with :func:`xml.etree.ElementTree.iterparse` and every element is
dropped as soon as it has been used, so memory stays bounded by one event (plus
one batch of rows) however large the log is.

Mapping of one ``<event>`` to a raw row (see :mod:`microjourney.ingest.schema`):

* ``user_id``   — the enclosing trace's ``concept:name`` (the case id)
* ``event``     — the event's ``concept:name``
* ``timestamp`` — the event's ``time:timestamp`` text, verbatim (validation parses it)
* ``event_id``  — the event's ``identity:id``
* ``properties``— JSON object: every other event attribute by its key, plus every
  other trace attribute as ``"case:" + key``; typed by the XES element
  (``int``, ``float``, ``boolean``; everything else as text)
* ``anonymous_id``, ``channel``, ``session_id``, ``context`` — null
* ``__row``     — 1-based ordinal of the event in the document

Missing attributes become nulls, never errors: validation quarantines such rows
with a reason. Only a file that cannot be read as an XES log at all raises
:class:`~microjourney.errors.IngestError`.

A ``log``, ``trace`` or ``event`` element where XES allows none (inside an
attribute, say) is skipped with its content rather than taken for data.

Memory stays bounded whatever the file holds (docs/workspace.md, "Ingest limits"): reading
stops with an :class:`IngestError` once ``limits.max_file_bytes`` have been read after
decompression, or when ``limits.max_line_bytes`` are read without an element ending (one
endless attribute or text), after the rows before were yielded.

Trace attributes are taken from the trace's attribute elements that come before
its events, which is the order the XES schema prescribes; that is what lets an
event be emitted the moment it ends instead of holding a whole trace.
"""

from __future__ import annotations

import gc
import io
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from xml.parsers.expat import ErrorString

import orjson
import pyarrow as pa

from microjourney.errors import IngestError
from microjourney.ingest.lines import Limits, open_bytes, stopped_reading
from microjourney.ingest.schema import FIELDS, ROW

__all__ = ["SCHEMA", "read_xes"]

#: Arrow schema of every batch :func:`read_xes` yields.
SCHEMA = pa.schema([pa.field(name, pa.string()) for name in FIELDS] + [pa.field(ROW, pa.int64())])

#: Error code for a file that is there but cannot be read as an XES log (as the other readers).
_UNREADABLE = "ingest/unreadable"

#: XES attribute element names; anything else inside an event or trace is ignored.
_NESTED_TAGS = frozenset({"list", "container"})
_TEXT_TAGS = frozenset({"string", "date", "id"})
_ATTRIBUTE_TAGS = _TEXT_TAGS | {"int", "float", "boolean"} | _NESTED_TAGS

#: Keys that become columns rather than properties.
_NAME, _TIME, _ID = "concept:name", "time:timestamp", "identity:id"
_COLUMNS = frozenset({_NAME, _TIME, _ID})

#: A log, trace or event where XES allows none (say, inside an attribute) is renamed
#: to this, so that it and its content are skipped instead of being taken for data.
_STRUCTURE = frozenset({"log", "trace", "event"})
_MISPLACED = "?"

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def read_xes(path: str | os.PathLike, *, batch_size: int = 100_000,
             limits: Limits = Limits()) -> Iterator[pa.Table]:
    """Yield batches of raw event rows from an XES log.

    Each batch has the columns of :data:`SCHEMA` and at most ``batch_size`` rows;
    a log without events yields no batch. Raises :class:`IngestError` naming the
    file (and line) when it cannot be opened, is not well-formed XML, or its root
    element is not ``log``; an error late in the file surfaces after the batches
    before it were yielded (so does going past ``limits``, see the module's docstring).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    path = Path(path)
    with open_bytes(path, "XES log") as raw:
        stream = _Counted(raw, limits)
        tables = _parse(stream, path, batch_size)
        while True:
            with _gc_paused():
                table = _next_table(tables, path)
            if table is None:
                return
            yield table


def _next_table(tables: Iterator[pa.Table], path: Path) -> pa.Table | None:
    """Advance the parser by one batch, turning read errors into :class:`IngestError`."""
    try:
        return next(tables, None)
    except ET.ParseError as exc:
        line, column = exc.position
        reason = ErrorString(exc.code) or str(exc)  # the bare reason; we format the place
        raise IngestError(f"{path}:{line}:{column}: not well-formed XML: {reason}", code=_UNREADABLE) from exc
    except _TooMuch as exc:
        raise IngestError(f"{path}: {exc}", code="ingest/too-large") from None
    except (OSError, EOFError) as exc:
        # A corrupt or truncated gzip stream only shows up while reading.
        raise IngestError(f"{path}: cannot read XES log: {exc}", code=_UNREADABLE) from exc


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while the reader works.

    Parsing allocates over a million short-lived elements, each of which would
    count towards a collection pass that finds nothing (the reader makes no
    reference cycles); pausing saves about a quarter of the run time. The previous
    state is restored before a batch goes back to the caller.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _TooMuch(Exception):
    """Reading went past a limit; the message says which and where."""


class _Counted(io.RawIOBase):
    """The decompressed stream, counting what the parser reads: past ``max_file_bytes`` in
    all, or ``max_line_bytes`` since an element last ended (:attr:`mark`), it stops."""

    def __init__(self, stream: io.BufferedIOBase, limits: Limits) -> None:
        self._stream, self._limits = stream, limits
        self.total = 0
        #: ``total`` when an element last ended (set by the parser).
        self.mark = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.total += len(data)
        if self.total > self._limits.max_file_bytes:
            raise _TooMuch(stopped_reading(self._limits, "the events before that point"))
        if self.total - self.mark > self._limits.max_line_bytes + len(data):
            raise _TooMuch(f"no element ends in the {self.total - self.mark:,} bytes after byte "
                           f"{self.mark:,} (ingest.max_line_bytes is {self._limits.max_line_bytes:,}); "
                           "the events before were read and ingested, the rest was not")
        return data

    def readable(self) -> bool:
        return True


class _Batch:
    """Column lists for the rows of one output table."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Empty the batch (once its table has been made)."""
        # Filled column-wise: building Arrow arrays from per-column lists is several
        # times cheaper than transposing row tuples.
        self.event_id: list[str | None] = []
        self.timestamp: list[str | None] = []
        self.event: list[str | None] = []
        self.user_id: list[str | None] = []
        self.properties: list[str] = []
        self.row: list[int] = []

    def __len__(self) -> int:
        return len(self.row)

    def add(self, event: dict[str, Any], case_id: str | None, row: int) -> None:
        """Append one finished event, given as its attributes by key."""
        self.event_id.append(event.pop(_ID, None))
        self.timestamp.append(event.pop(_TIME, None))
        self.event.append(event.pop(_NAME, None))
        self.user_id.append(case_id)
        self.properties.append(orjson.dumps(event).decode())
        self.row.append(row)

    def table(self) -> pa.Table:
        """The batch as a table with the columns of :data:`SCHEMA`."""
        string, n = pa.string(), len(self)
        columns = {
            "event_id": pa.array(self.event_id, string),
            "timestamp": pa.array(self.timestamp, string),
            "event": pa.array(self.event, string),
            "user_id": pa.array(self.user_id, string),
            "properties": pa.array(self.properties, string),
            ROW: pa.array(self.row, pa.int64()),
        }
        arrays = [columns.get(name) or pa.nulls(n, string) for name in SCHEMA.names]
        return pa.Table.from_arrays(arrays, schema=SCHEMA)


def _parse(stream: _Counted, path: Path, batch_size: int) -> Iterator[pa.Table]:
    """The iterparse loop (:func:`_rows`); on going past a limit, the rows read so far first."""
    batch = _Batch()
    try:
        yield from _rows(stream, path, batch_size, batch)
    except _TooMuch:
        if len(batch):
            yield batch.table()
        raise


def _rows(stream: _Counted, path: Path, batch_size: int, batch: _Batch) -> Iterator[pa.Table]:
    """The iterparse loop: track element nesting and emit a row at each event's end.

    This loop runs for every element of the file, so it is written for speed: the
    per-attribute work is inline and an event is a plain dict of its attributes.
    """
    names: dict[str, str] = {}  # tag -> local name; tags repeat, so memoise the split
    kinds = [""]  # local names of the open elements; "" stands for "outside the document"
    # The open <log> and <trace>, to drop their finished children (placeholders until then).
    log = trace = ET.Element("")
    case_id: str | None = None
    case_props: dict[str, Any] = {}
    event: dict[str, Any] | None = None  # attributes of the open event, by key
    ordinal = 0

    for action, elem in ET.iterparse(stream, events=("start", "end")):
        if action == "start":
            kind = names.get(elem.tag) or names.setdefault(elem.tag, _local(elem.tag))
            parent = kinds[-1]
            kinds.append(kind)
            if parent == "event":
                if kind in _ATTRIBUTE_TAGS and event is not None:
                    key, raw = elem.get("key"), elem.get("value")
                    if key is not None and (raw is not None or kind not in _NESTED_TAGS):
                        # Text needs no conversion, and nearly every attribute is text.
                        as_text = kind in _TEXT_TAGS or key in _COLUMNS
                        event[key] = raw if as_text else _typed(kind, raw)
                elif kind in _STRUCTURE:
                    kinds[-1] = _MISPLACED
            elif parent == "trace":
                if kind == "event":
                    event = {}
                elif kind in _ATTRIBUTE_TAGS:
                    case_id = _trace_attribute(case_props, case_id, kind, elem.attrib)
                elif kind in _STRUCTURE:
                    kinds[-1] = _MISPLACED
            elif parent == "log":
                if kind == "trace":
                    trace, case_id, case_props = elem, None, {}
                elif kind == "event":  # an event outside any trace: no case
                    event = {}
                elif kind == "log":
                    kinds[-1] = _MISPLACED
            elif parent == "":
                _check_root(kind, path)
                log = elem
            elif kind in _STRUCTURE:
                kinds[-1] = _MISPLACED
            continue

        stream.mark = stream.total
        kind = kinds.pop()
        parent = kinds[-1]
        if parent == "trace" or parent == "log":
            if kind == "event" and event is not None:
                ordinal += 1
                if parent == "trace":
                    for key, value in case_props.items():
                        event.setdefault(key, value)  # an event attribute of that key wins
                    batch.add(event, case_id, ordinal)
                else:
                    batch.add(event, None, ordinal)
                event = None
                if len(batch) >= batch_size:
                    yield batch.table()
                    batch.clear()
            # The element just closed has been used: drop it (and its subtree) from
            # its parent so that memory stays flat however long the log or trace is.
            del (trace if parent == "trace" else log)[:]
    if len(batch):
        yield batch.table()


def _local(tag: str) -> str:
    """``{namespace}name`` -> ``name``: XES files come with or without a namespace."""
    return tag.rpartition("}")[2]


def _check_root(kind: str, path: Path) -> None:
    """Refuse a well-formed XML file that is not an XES log."""
    if kind != "log":
        raise IngestError(f"{path}: not an XES log (root element is <{kind}>, not <log>)", code=_UNREADABLE)


def _trace_attribute(
    case_props: dict[str, Any], case_id: str | None, kind: str, attrib: dict[str, str]
) -> str | None:
    """Record one top-level trace attribute; return the (possibly new) case id."""
    key, raw = attrib.get("key"), attrib.get("value")
    if key == _NAME:
        return raw
    if key is not None and (raw is not None or kind not in _NESTED_TAGS):
        case_props["case:" + key] = _typed(kind, raw)
    return case_id


def _typed(kind: str, raw: str | None) -> Any:
    """Convert an attribute value to the JSON type its XES element declares.

    A value that does not parse as its declared type is kept as text rather than
    raising: one sloppy attribute should not cost the whole file.
    """
    if raw is None or kind == "string" or "_" in raw:
        return raw  # Python's int() and float() accept "1_000", XML Schema does not
    try:
        if kind == "int":
            number = int(raw)
            # XES ints are 64-bit; a larger one is kept as text, which every JSON reader takes.
            return number if _INT64_MIN <= number <= _INT64_MAX else raw
        if kind == "float":
            real = float(raw)
            return real if math.isfinite(real) else raw  # JSON has no NaN/Infinity
    except ValueError:
        return raw
    if kind == "boolean":
        lowered = raw.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
    return raw
