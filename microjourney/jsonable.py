"""The one JSON encoding of every surface (CLI ``--json``, HTTP API, report data).

Engines hand back values of many types for the same number: DuckDB a float, Spark a
``Decimal``; pandas a NumPy scalar, ``NaN``, ``NaT`` or ``pd.NA``. They all become the
same plain JSON value here, so a result reads the same whichever engine computed it.

>>> from decimal import Decimal
>>> import numpy as np
>>> jsonable({"rate": Decimal("0.25"), "n": np.int64(4), "ci": np.array([0.1, 0.5]),
...           "gone": float("nan")})
{'rate': 0.25, 'n': 4, 'ci': [0.1, 0.5], 'gone': None}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import orjson
import pandas as pd


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON values: decimals and NumPy numbers as int or float,
    missing values (None, NaN, NaT, NA) as None, times as ISO 8601 text, durations in
    seconds, arrays and tuples as lists, mapping keys as text."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):  # NumPy's float64 is one too: made a plain float
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset | np.ndarray | pd.Series):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return jsonable(int(value) if value == value.to_integral_value() and
                        value.as_tuple().exponent == 0 else float(value))
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return jsonable(float(value))
    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, pd.Timedelta | timedelta | np.timedelta64):
        return pd.Timedelta(value).total_seconds()
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else pd.Timestamp(value).isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"no JSON form for a {type(value).__name__}")


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """A table's rows as JSON objects: the values :func:`jsonable` gives, converted column by
    column (a number column at once, not value by value: a 100,000-row result encodes in
    a fraction of the time)."""
    names = [str(c) for c in df.columns]
    columns = [_column(df.iloc[:, i]) for i in range(df.shape[1])]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)] \
        if names else [{} for _ in range(len(df))]


def _column(s: pd.Series) -> list[Any]:
    kind = s.dtype.kind if isinstance(s.dtype, np.dtype) else "O"  # nullable dtypes hold NA
    if kind in "iub":
        return s.tolist()  # NumPy integers and booleans as Python's, no missing value possible
    if kind == "f":
        return [v if math.isfinite(v) else None for v in s.tolist()]
    return [jsonable(v) for v in s.tolist()]


#: orjson writes plain values itself and hands every other one (times included) to
#: :func:`jsonable`; NaN and infinities become null, as jsonable makes them.
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_PASSTHROUGH_DATETIME


def dumps(value: Any, *, indent: bool = False) -> str:
    """JSON text of ``value``, with the values :func:`jsonable` gives; non-ASCII kept as it is.

    >>> dumps({"t": pd.Timestamp("2026-09-01", tz="UTC"), "r": Decimal("0.5"), "x": float("nan")})
    '{"t":"2026-09-01T00:00:00+00:00","r":0.5,"x":null}'
    """
    option = _OPTIONS | (orjson.OPT_INDENT_2 if indent else 0)
    return orjson.dumps(value, default=jsonable, option=option).decode()


#: Characters JSON may hold that would end or confuse an HTML ``<script>`` element.
_SCRIPT_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
                  "\u2029": "\\u2029"}


def script_safe(text: str) -> str:
    """JSON ``text`` made safe inside ``<script>`` (the report's and the dashboard's charts):
    ``<``, ``>``, ``&`` and line separators as JSON escapes, the same value."""
    return "".join(_SCRIPT_UNSAFE.get(ch, ch) for ch in text)
