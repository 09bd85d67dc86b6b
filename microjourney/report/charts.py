"""Vega-Lite specs for the report, built as plain dicts, and their safe embedding.

Specs carry their data inline (``data.values``) so a report needs nothing but the
vendored libraries. :func:`script_json` turns a spec into text that can sit inside
a ``<script>`` element whatever the user-provided strings in it contain.

>>> spec = funnel_spec({"moment": "m", "per": "person", "steps": [
...     {"name": "open", "count": 10, "conversion_from_start": 1.0,
...      "conversion_from_previous": 1.0, "median_time_from_previous_s": None}]})
>>> spec["data"]["values"][0]["text"]
'10 · 100.0%'
>>> script_json({"a": "</script>"})
'{"a":"\\\\u003c/script\\\\u003e"}'
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from microjourney.fmt import count, num, pct
from microjourney.jsonable import script_safe

#: Palette shared with ``style.css``.
INK = "#1f2933"
MUTED = "#616e7c"
ACCENT = "#2f5d8f"
VOLUME = "#cbd2d9"
BAD = "#b42318"
#: A change shipped, as a mark on a trend.
ACCENT_CHANGE = "#7a4cc2"
GRID = "#e4e7eb"
FONT = (
    'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, '
    '"Noto Sans", sans-serif'
)

CONFIG: dict[str, Any] = {
    "font": FONT,
    "background": None,
    "view": {"stroke": None},
    "axis": {
        "labelColor": MUTED,
        "titleColor": MUTED,
        "titleFontWeight": "normal",
        "gridColor": GRID,
        "domainColor": VOLUME,
        "tickColor": VOLUME,
        "labelFontSize": 11,
        "titleFontSize": 11,
    },
    "text": {"fontSize": 11},
}



def plain(value: Any) -> Any:
    """Make *value* JSON-ready: NaN/NA become ``None``, numpy scalars become Python."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()  # numpy scalar
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def script_json(spec: Any) -> str:
    """JSON text safe inside ``<script>``: ``<``, ``>``, ``&`` and line separators escaped."""
    text = json.dumps(plain(spec), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return script_safe(text)


def _step_labels(names: list[str]) -> list[str]:
    """Numbered step labels, so that two steps with one name stay two bars."""
    return [f"{i}. {name}" for i, name in enumerate(names, start=1)]


def funnel_spec(funnel: Mapping[str, Any]) -> dict[str, Any]:
    """A horizontal bar per funnel step: its count, labelled with conversion from start."""
    steps = list(funnel.get("steps") or [])
    labels = _step_labels([str(s.get("name", "")) for s in steps])
    unit = "Attempts" if funnel.get("per") == "attempt" else "Persons"
    rows = []
    for i, (label, step) in enumerate(zip(labels, steps, strict=True)):
        n = num(step.get("count")) or 0
        rows.append({
            "index": i,
            "step": label,
            "count": int(n),
            "from_start": num(step.get("conversion_from_start")),
            "from_previous": num(step.get("conversion_from_previous")),
            "text": f"{count(n)} · {pct(step.get('conversion_from_start'))}",
            "from_start_text": pct(step.get("conversion_from_start")),
            "from_previous_text": pct(step.get("conversion_from_previous")),
        })
    top = max([r["count"] for r in rows] + [1])
    return {
        "description": f"Funnel of {funnel.get('moment', '')}: {unit.lower()} reaching each step",
        "width": "container",
        "height": max(len(rows), 1) * 34,
        "data": {"values": rows},
        "encoding": {
            "y": {"field": "step", "type": "nominal", "sort": labels, "title": None,
                  "axis": {"labelLimit": 240, "labelColor": INK, "labelFontSize": 12,
                           "ticks": False, "domain": False}},
            "x": {"field": "count", "type": "quantitative", "title": unit,
                  "scale": {"domain": [0, top * 1.3], "nice": False},
                  "axis": {"format": ",d", "tickCount": 5}},
        },
        "layer": [
            {"mark": {"type": "bar", "color": ACCENT, "cornerRadiusEnd": 2, "height": {"band": 0.7}},
             "encoding": {"tooltip": [
                 {"field": "step", "title": "Step"},
                 {"field": "count", "title": unit, "format": ",d"},
                 {"field": "from_start_text", "title": "From start"},
                 {"field": "from_previous_text", "title": "From previous"}]}},
            {"mark": {"type": "text", "align": "left", "baseline": "middle", "dx": 5,
                      "color": INK},
             "encoding": {"text": {"field": "text"}}},
        ],
        "config": CONFIG,
    }


def daily_rows(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    """One row per calendar day from the first to the last; days without data are zero."""
    if frame is None or len(frame) == 0:
        return []
    days = pd.to_datetime(frame["day"], errors="coerce").dt.strftime("%Y-%m-%d")
    seen = {
        day: (int(num(attempts) or 0), int(num(completed) or 0), num(rate))
        for day, attempts, completed, rate in zip(
            days, frame["attempts"], frame["completed"], frame["completion_rate"], strict=True)
        if isinstance(day, str)
    }
    if not seen:
        return []
    rows = []
    for day in pd.date_range(min(seen), max(seen), freq="D").strftime("%Y-%m-%d"):
        attempts, completed, rate = seen.get(day, (0, 0, None))
        rows.append({"day": day, "attempts": attempts, "completed": completed,
                     "completion_rate": rate, "rate_text": pct(rate)})
    return rows


def daily_spec(
    moment: str, frame: pd.DataFrame | None, target: float | None = None,
    marks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Daily completion rate (line, left axis) over attempt volume (bars, right axis).

    *target* (a completion-rate target in 0..1) adds a dashed rule; *marks* (``day``,
    ``label``, ``kind``: change or alert) vertical rules: the changes shipped and the
    regressions' starts.
    """
    values = daily_rows(frame)
    # A band per day (the gaps are filled above), so bars, points and labels line up.
    x = {"field": "day", "type": "ordinal", "timeUnit": "utcyearmonthdate", "title": None,
         "scale": {"paddingInner": 0.2, "paddingOuter": 0.2 if len(values) > 7 else 1},
         "axis": {"format": "%d %b", "labelAngle": 0, "ticks": False,
                  "labelOverlap": "parity", "labelSeparation": 6}}
    rate_y = {"type": "quantitative", "scale": {"domain": [0, 1]}}
    tooltip = [
        {"field": "day", "type": "temporal", "timeUnit": "utcyearmonthdate", "title": "Day",
         "format": "%Y-%m-%d"},
        {"field": "attempts", "type": "quantitative", "title": "Attempts", "format": ",d"},
        {"field": "completed", "type": "quantitative", "title": "Completed", "format": ",d"},
        {"field": "rate_text", "type": "nominal", "title": "Completion rate"},
    ]
    layers: list[dict[str, Any]] = [
        # A short series gets narrower bars rather than a few very wide ones.
        {"mark": {"type": "bar", "color": VOLUME, "opacity": 0.7,
                  "width": {"band": min(1.0, (len(values) + 2) / 16)}},
         "encoding": {"x": x, "tooltip": tooltip,
                      "y": {"field": "attempts", "type": "quantitative", "title": "Attempts",
                            "axis": {"orient": "right", "format": ",d", "grid": False,
                                     "tickCount": 4}}}},
        {"mark": {"type": "line", "color": ACCENT, "strokeWidth": 2,
                  "point": {"filled": True, "size": 28, "color": ACCENT}},
         "encoding": {"x": x, "tooltip": tooltip,
                      "y": {**rate_y, "field": "completion_rate", "title": "Completion rate",
                            "axis": {"orient": "left", "format": ".0%", "tickCount": 5}}}},
    ]
    if target is not None:
        layers.append(
            {"data": {"values": [{"target": target, "label": f"target {pct(target)}"}]},
             "layer": [
                 {"mark": {"type": "rule", "color": BAD, "strokeDash": [4, 4]},
                  "encoding": {"y": {**rate_y, "field": "target", "axis": None}}},
                 {"mark": {"type": "text", "align": "right", "dx": -4, "dy": 9, "color": BAD},
                  "encoding": {"y": {**rate_y, "field": "target", "axis": None},
                               "x": {"value": "width"}, "text": {"field": "label"}}}]})
    days = {v["day"] for v in values}
    shown = [m for m in marks or [] if m["day"] in days]
    if shown:
        colours = {"change": ACCENT_CHANGE, "alert": BAD}
        kinds = [k for k in colours if any(m["kind"] == k for m in shown)]
        layers.append(
            {"data": {"values": [{"day": m["day"], "label": m["label"], "kind": m["kind"]}
                                 for m in shown]},
             "mark": {"type": "rule", "strokeWidth": 2, "strokeDash": [2, 2]},
             "encoding": {"x": x, "color": {"field": "kind", "type": "nominal", "title": None,
                                            "scale": {"domain": kinds,
                                                      "range": [colours[k] for k in kinds]}},
                          "tooltip": [{"field": "kind", "title": "What"},
                                      {"field": "label", "title": "Mark"},
                                      {"field": "day", "type": "nominal", "title": "Day"}]}})
    return {
        "description": f"Daily completion rate and attempts of {moment}",
        "width": "container",
        "height": 200,
        "data": {"values": values},
        "layer": layers,
        "resolve": {"scale": {"y": "independent"}},
        "config": CONFIG,
    }
