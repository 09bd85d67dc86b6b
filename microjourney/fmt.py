"""Number formatting for every surface (CLI, report, dashboard); every function accepts
missing values.

Missing means ``None``, NaN, ``pandas.NA`` or anything that is not a number; it is
shown as an em dash.

>>> pct(0.92), pct(float("nan")), count(12345), seconds(95)
('92.0%', '—', '12,345', '1.6 min')
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from .registry.base import Column

DASH = "—"


def num(value: Any) -> float | None:
    """*value* as a finite float, or ``None`` when it is missing or not a number."""
    if value is None or isinstance(value, str | bytes | bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def pct(value: Any, digits: int = 1) -> str:
    """A rate in 0..1 as a percentage: ``0.92`` → ``92.0%``."""
    x = num(value)
    return DASH if x is None else f"{x * 100:.{digits}f}%"


def count(value: Any) -> str:
    """An integer count with thousands separators."""
    x = num(value)
    return DASH if x is None else f"{round(x):,}"


def seconds(value: Any) -> str:
    """A duration in seconds, in the unit that reads best (s, min, h, d)."""
    x = num(value)
    if x is None:
        return DASH
    if abs(x) < 60:
        return f"{x:.1f} s"
    if abs(x) < 3600:
        return f"{x / 60:.1f} min"
    if abs(x) < 86400:
        return f"{x / 3600:.1f} h"
    return f"{x / 86400:.1f} d"


def share(part: Any, whole: Any) -> float | None:
    """``part / whole``, or ``None`` when *whole* is missing or zero."""
    p, w = num(part), num(whole)
    return None if p is None or not w else p / w


def interval(ci: Any) -> tuple[float | None, float | None]:
    """``(low, high)`` from a ``[low, high]`` pair; missing parts are ``None``."""
    try:
        low, high = list(ci)
    except (TypeError, ValueError):
        return None, None
    return num(low), num(high)


def when(text: Any) -> str:
    """An ISO timestamp as ``YYYY-MM-DD HH:MM`` (plus its offset); other text as given."""
    if text is None:
        return DASH
    raw = str(text)
    try:
        stamp = datetime.fromisoformat(raw)
    except ValueError:
        return raw
    if len(raw) <= 10:
        return stamp.strftime("%Y-%m-%d")
    out = stamp.strftime("%Y-%m-%d %H:%M")
    offset = stamp.utcoffset()
    if offset is not None:
        out += " UTC" if not offset else stamp.strftime(" UTC%z")
    return out


def metric(name: str | None, value: Any) -> str:
    """*value* formatted by what metric *name* measures (rate, seconds or count)."""
    key = (name or "").lower()
    if key.endswith("_s") or "duration" in key or "time" in key:
        return seconds(value)
    if "rate" in key or "share" in key:
        return pct(value)
    x = num(value)
    return DASH if x is None else f"{x:,.4g}"


#: Words in a metric name for which a lower value is better.
LOWER_IS_BETTER = ("duration", "time", "fail", "abandon", "escalat", "retry", "repeat",
                   "friction", "error", "cost", "wait")


def lower_is_better(name: str | None) -> bool:
    """Whether a smaller value of metric *name* is the better one (durations, failures)."""
    key = (name or "").lower()
    return key.endswith("_s") or any(word in key for word in LOWER_IS_BETTER)


def cell(column: Column, row: Mapping[str, Any]) -> str:
    """A value of a declared column as every surface shows it (CLI, report, dashboard)."""
    value = row.get(column.name)
    kind = column.kind
    if kind == "count":
        return count(value)
    if kind in ("measure", "measure-change"):
        unit = measure(row.get("metric"))
        kind = {"rate": "rate" if kind == "measure" else "points", "seconds": "seconds",
                "count": "count" if kind == "measure" else "number", "number": "number"}[unit]
        return cell(replace(column, kind=kind), row)
    if kind in _SHOWN:
        one, both = _SHOWN[kind]
        text = one(value)
        if column.ci is not None and num(value) is not None:
            low, high = interval(row.get(column.ci))
            if low is not None and high is not None:
                text += both(low, high)
        return text
    if kind == "p":
        return p_value(value)
    if kind == "time":
        return DASH if _missing(value) else when(value.isoformat() if hasattr(value, "isoformat")
                                                  else value)
    if kind == "flag":
        return DASH if _missing(value) else ("yes" if bool(value) else "no")
    if kind == "list":
        return DASH if _missing(value) else ", ".join(str(v) for v in value)
    if isinstance(value, dict):  # properties: as the JSON they were sent as
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    return DASH if _missing(value) else str(value)


#: Metrics read in seconds, as counts and as plain numbers (a mean answer on a survey's
#: scale); every other metric is a rate.
SECONDS_METRICS = ("duration", "friction_seconds")
COUNT_METRICS = ("volume",)
NUMBER_METRICS = ("ces",)


def measure(metric: Any) -> str:
    """The unit a metric reads in: ``rate``, ``seconds``, ``count`` or ``number``.

    >>> measure("failure_rate"), measure("duration"), measure("volume"), measure("ces")
    ('rate', 'seconds', 'count', 'number')
    """
    name = str(metric or "")
    if name in SECONDS_METRICS or name.endswith("_s"):
        return "seconds"
    if name in NUMBER_METRICS:
        return "number"
    return "count" if name in COUNT_METRICS else "rate"


def _fixed(spec: str) -> Any:
    """A formatter of a number by the format ``spec`` (missing: the dash)."""
    def show(value: Any) -> str:
        x = num(value)
        return DASH if x is None else format(x, spec)
    return show


#: How the numeric kinds read: the value, and its interval after it (low, high).
_SHOWN: dict[str, tuple[Any, Any]] = {
    "rate": (lambda v: pct(v), lambda lo, hi: f" [{pct(lo)}–{pct(hi)}]"),
    "points": (lambda v: _points(v), lambda lo, hi: f" [{lo * 100:+.1f}, {hi * 100:+.1f}]"),
    "seconds": (lambda v: seconds(v), lambda lo, hi: f" [{seconds(lo)}, {seconds(hi)}]"),
    "score": (_fixed("+.2f"), lambda lo, hi: f" [{lo:+.2f}, {hi:+.2f}]"),
    "number": (_fixed(",.1f"), lambda lo, hi: f" [{lo:,.1f}–{hi:,.1f}]"),
}


def p_value(value: Any) -> str:
    """A p-value: three decimals, or ``< 0.001``.

    >>> p_value(0.0123), p_value(0.00004), p_value(None)
    ('0.012', '< 0.001', '—')
    """
    x = num(value)
    if x is None:
        return DASH
    return "< 0.001" if x < 0.001 else f"{x:.3f}"


def _points(value: Any) -> str:
    x = num(value)
    return DASH if x is None else f"{x * 100:+.1f} pts"


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    try:
        return bool(pd.isna(value)) if not isinstance(value, list | tuple) else False
    except (TypeError, ValueError):
        return False
