"""Vega-Lite specifications for the dashboard's charts, built from the JSON results of
registered analyses (rows as the API gives them). The browser renders them with the
vendored Vega (``/static/vendor/``) and ``vega-interpreter``: no ``eval``, so the pages keep
their content security policy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import fmt

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"  # an identifier, never fetched


def series_spec(rows: list[dict[str, Any]], *, target: float | None = None,
                title: str = "Completion by week", period: str = "week of",
                marks: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """Completion per period with its 95% interval as a band, the target as a rule, and the
    finished attempts in the tooltip; ``marks`` (``day``, ``label``, ``kind``: change or
    alert) as vertical rules: the changes shipped and the regressions' starts. The y axis
    fits the data (and the target): a moment between 70% and 80% is not drawn flat on a
    0–100% axis."""
    values = []
    for r in rows:
        ci = r.get("completion_ci") or [None, None]
        if r.get("completion_rate") is None:
            continue
        values.append({"period": r["period"], "completion": r["completion_rate"], "low": ci[0],
                       "high": ci[1], "finished": r.get("finished")})
    lows = [v["low"] for v in values if v["low"] is not None] + ([target] if target is not None else [])
    highs = [v["high"] for v in values if v["high"] is not None] + ([target] if target is not None else [])
    y: dict[str, Any] = {"field": "completion", "type": "quantitative", "title": "completion",
                         "axis": {"format": ".0%"},
                         "scale": {"zero": False, "nice": True}}
    if lows and highs:
        pad = max(0.01, (max(highs) - min(lows)) * 0.1)
        y["scale"]["domain"] = [max(0.0, min(lows) - pad), min(1.0, max(highs) + pad)]
    x = {"field": "period", "type": "temporal", "title": None, "axis": {"format": "%d %b"}}
    layers: list[dict[str, Any]] = [
        {"mark": {"type": "area", "opacity": 0.2},
         "encoding": {"x": x, "y": {**y, "field": "low"}, "y2": {"field": "high"}}},
        {"mark": {"type": "line", "point": True},
         "encoding": {"x": x, "y": y, "tooltip": [
             {"field": "period", "type": "temporal", "title": period},
             {"field": "completion", "type": "quantitative", "format": ".1%"},
             {"field": "low", "type": "quantitative", "format": ".1%", "title": "95% from"},
             {"field": "high", "type": "quantitative", "format": ".1%", "title": "95% to"},
             {"field": "finished", "type": "quantitative", "title": "finished attempts"}]}},
    ]
    if target is not None:
        layers.append({"data": {"values": [{"target": target}]},
                       "mark": {"type": "rule", "strokeDash": [4, 4]},
                       "encoding": {"y": {"field": "target", "type": "quantitative"}}})
    if marks and values:
        layers.append(marks_layer(marks))
    return {"$schema": SCHEMA, "title": title, "width": "container", "height": 220,
            "data": {"values": values}, "layer": layers}


#: How a mark on a trend reads: a change shipped in blue, a regression's start in red.
MARK_COLOURS = {"change": "#1f5fbf", "alert": "#b3261e"}


def marks_layer(marks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Vertical rules at each mark's ``day``, coloured by ``kind``, its ``label`` in the tooltip."""
    shown = [k for k in MARK_COLOURS if any(m["kind"] == k for m in marks)]
    return {"data": {"values": [{"period": m["day"], "label": m["label"], "kind": m["kind"]}
                                for m in marks]},
            "mark": {"type": "rule", "strokeWidth": 2, "strokeDash": [2, 2]},
            "encoding": {"x": {"field": "period", "type": "temporal"},
                         "color": {"field": "kind", "type": "nominal", "title": None,
                                   "scale": {"domain": shown,
                                             "range": [MARK_COLOURS[k] for k in shown]}},
                         "tooltip": [{"field": "kind", "title": "what"},
                                     {"field": "label", "title": "mark"},
                                     {"field": "period", "type": "temporal", "title": "day"}]}}


def durations_spec(rows: list[dict[str, Any]], sla: float | None) -> dict[str, Any]:
    """Completed attempts per band of time to complete, the bands within the SLA in one
    colour and those beyond it in another."""
    def label(seconds: float | None) -> str:
        if seconds is None:
            return "∞"
        return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"

    values = [{"band": f"{label(r['from_s'])}–{label(r.get('to_s'))}", "order": i,
               "completed": r["completed"], "share": r.get("share"),
               "sla": "no SLA" if r.get("within_sla") is None
               else ("within the SLA" if r["within_sla"] else "beyond the SLA")}
              for i, r in enumerate(rows)]
    title = "Time to complete" + (f" (SLA {label(sla)})" if sla is not None else "")
    # Only the colours the bands use: a legend entry for nothing confuses.
    colours = {"within the SLA": "#1b7f3b", "beyond the SLA": "#b3261e", "no SLA": "#5b6475"}
    shown = {v["sla"] for v in values}
    return {"$schema": SCHEMA, "title": title, "width": "container", "height": 200,
            "data": {"values": values},
            "mark": {"type": "bar"},
            "encoding": {
                "x": {"field": "band", "type": "ordinal", "sort": {"field": "order"}, "title": None},
                "y": {"field": "completed", "type": "quantitative", "title": "completed attempts"},
                "color": {"field": "sla", "type": "nominal", "title": None,
                          "scale": {"domain": [k for k in colours if k in shown],
                                    "range": [c for k, c in colours.items() if k in shown]}},
                "tooltip": [{"field": "band", "title": "time to complete"},
                            {"field": "completed", "type": "quantitative"},
                            {"field": "share", "type": "quantitative", "format": ".1%"}]}}


#: Weeks a sparkline shows at most, and its size in pixels.
SPARK_WEEKS, SPARK_WIDTH, SPARK_HEIGHT = 12, 96, 26


def sparkline(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """A moment's weekly completion (its ``series`` rows, in order) as the points of a small
    line drawn on the server: the last :data:`SPARK_WEEKS` weeks with a rate, on an axis
    that fits them; ``None`` with fewer than two. ``label`` says it in words."""
    kept = [r for r in rows if r.get("completion_rate") is not None][-SPARK_WEEKS:]
    if len(kept) < 2:
        return None
    rates = [float(r["completion_rate"]) for r in kept]
    low, high = min(rates), max(rates)
    span = max(high - low, 0.02)  # a flat line stays flat, not noise blown up
    mid = (low + high) / 2
    step = (SPARK_WIDTH - 6) / (len(rates) - 1)
    xy = [(3 + i * step, SPARK_HEIGHT - 3 - (SPARK_HEIGHT - 6) * ((v - mid) / span + 0.5))
          for i, v in enumerate(rates)]
    return {"points": " ".join(f"{x:.1f},{y:.1f}" for x, y in xy), "last": xy[-1],
            "width": SPARK_WIDTH, "height": SPARK_HEIGHT, "weeks": len(rates),
            "label": f"Completion by week, {len(rates)} weeks from {kept[0]['period']}: "
                     f"{fmt.pct(rates[0])} to {fmt.pct(rates[-1])} (lowest {fmt.pct(low)}, "
                     f"highest {fmt.pct(high)})"}


__all__ = ["durations_spec", "series_spec", "sparkline"]
