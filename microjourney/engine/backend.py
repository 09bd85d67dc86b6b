"""Backend helpers: the few functions the engine needs that Ibis spells per backend.

The analytics are Ibis expressions; a backend only has to name these builtins.
DuckDB is the default; other backends map the same names to their own functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import pyarrow as pa
from ibis.expr.types import Table, Value

from ..vocabulary import CHANNELS, json_pointer


def _builtin(name: str) -> Callable[[Callable[..., Any]], Callable[..., Value]]:
    """Ibis's decorator declaring backend builtin ``name`` (the signature's Ibis types give its
    argument and result types; the body never runs), typed: Ibis ships no types."""
    declare: Callable[[Callable[..., Any]], Callable[..., Value]] = ibis.udf.scalar.builtin(name=name)
    return declare


# An Ibis type with arguments (dt.Timestamp(timezone=...)) is a call, not a type, to mypy.
@_builtin("epoch_us")
def _epoch_us(ts: dt.Timestamp(timezone="UTC")) -> dt.int64:  # type: ignore[valid-type]
    """Microseconds since 1970 (DuckDB ``epoch_us``)."""


@_builtin("json_extract_string")
def _json_text(doc: dt.JSON, path: dt.string) -> dt.string:
    """A JSON member as text: strings unquoted, numbers and booleans as written."""


def epoch_ms(ts: Value) -> Value:
    """A timestamp as integer milliseconds, so time arithmetic is exact and portable:
    microseconds cut down to the millisecond on every backend (DuckDB's own ``epoch_ms``
    rounds, Spark's ``unix_millis`` truncates)."""
    return (_epoch_us(ts) // 1000).cast("int64")


def json_path(key: str) -> str:
    """The path of a top-level member: its JSON Pointer (:func:`~microjourney.vocabulary.json_pointer`).

    >>> json_path("org:resource"), json_path("a/b~c")
    ('/org:resource', '/a~1b~0c')
    """
    return json_pointer(key)


def json_text(doc: Value, key: str) -> Value:
    """Property ``key`` of a JSON object column as text (NULL when absent or null)."""
    return _json_text(doc, json_path(key))


@_builtin("bit_count")
def _bit_count(x: dt.int64) -> dt.int64:
    """Number of set bits (DuckDB and Spark ``bit_count``)."""


def bit_count(bits: Value) -> Value:
    """How many members a bit set holds (a cheap COUNT(DISTINCT) for small domains)."""
    return _bit_count(bits).cast("int64")


@_builtin("list_select")
def _list_select(values: dt.Array(dt.string), positions: dt.Array(dt.int64)) -> dt.Array(dt.string):  # type: ignore[valid-type]
    """The members of ``values`` at 1-based ``positions`` (DuckDB ``list_select``)."""


def list_select(values: Value, positions: Value) -> Value:
    """A list of codes spelled out: the members of ``values`` at 1-based ``positions``."""
    return _list_select(values, positions)


@_builtin("list_grade_up")
def _grade_up(values: dt.Array(dt.int64)) -> dt.Array(dt.int64):  # type: ignore[valid-type]
    """The 1-based positions that sort ``values`` (DuckDB ``list_grade_up``)."""


def grade_up(values: Value) -> Value:
    """The 1-based positions that would sort ``values``: with :func:`list_select`, lists
    collected in any order are put in the order of a companion list."""
    return _grade_up(values)


def rows_table(rows: list[dict[str, Any]], schema: dict[str, str]) -> Table:
    """A small literal table (role tables, settings) typed by ``schema``. Built through
    Arrow, so an integer column with NULLs stays integer on every backend (from a list
    of dicts, pandas would make it float, and Spark would read NULLs)."""
    arrow = pa.Table.from_pylist(rows, schema=ibis.schema(schema).to_pyarrow())
    return ibis.memtable(arrow)


def channel_bit(channel: Value) -> Value:
    """A channel as one bit, so a set of channels is a bit_or of them."""
    return ibis.cases(*((channel == c, 1 << i) for i, c in enumerate(CHANNELS)), else_=0).cast("int64")
