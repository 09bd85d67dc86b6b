"""Coded warnings shared by analyses: where a rate or interval would mislead."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .base import Notice

#: Below this many units (finished attempts, cases) a rate gets a ``few-units`` warning:
#: its 95% interval is wider than about ±20 points.
MIN_UNITS = 20


def small_counts(df: pd.DataFrame, n: str, keys: Sequence[str], what: str) -> list[Notice]:
    """A ``no-units`` warning for each row with no ``n`` (its rates are undefined) and a
    ``few-units`` one for each with fewer than :data:`MIN_UNITS`."""
    out = []
    for row in df.to_dict("records"):
        count = row.get(n)
        if count is None or count != count:
            continue
        where = {k: row[k] for k in keys}
        name = " ".join(str(v) for v in where.values())
        if int(count) == 0:
            out.append(Notice("no-units", f"{name}: no {what}; its rates are undefined", where))
        elif int(count) < MIN_UNITS:
            out.append(Notice("few-units", f"{name}: {int(count)} {what} (under {MIN_UNITS}); "
                              "its rates are rough, read the 95% interval", where))
    return out
