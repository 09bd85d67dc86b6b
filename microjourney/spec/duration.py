"""Durations as people write them: ``90s``, ``30m``, ``2h``, ``7d``, ``1h30m`` or seconds."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: object) -> float:
    """Return seconds for a duration written as a number of seconds or with units.

    >>> parse_duration("1h30m")
    5400.0
    >>> parse_duration(90)
    90.0
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; write e.g. 90s, 30m, 2h or 7d")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        elif text and _PART.sub("", text) == "":
            seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
        else:
            raise ValueError(f"{value!r} is not a duration; write e.g. 90s, 30m, 2h or 7d")
    else:
        raise ValueError(f"{value!r} is not a duration; write e.g. 90s, 30m, 2h or 7d")
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """Short human form of a duration, the inverse of :func:`parse_duration` for whole units.

    >>> format_duration(5400)
    '1h30m'
    """
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    out, rest = [], float(seconds)
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        n = int(rest // size) if unit != "s" else rest
        if n:
            out.append(f"{n:g}{unit}")
            rest -= n * size
    return "".join(out) or "0s"
