"""Vega-Lite specifications for the dashboard's charts, built from the JSON results of
registered analyses (rows as the API gives them). The browser renders them with the
vendored Vega (``/static/vendor/``) and ``vega-interpreter``: no ``eval``, so the pages keep
their content security policy."""

from __future__ import annotations

from typing import Any

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"  # an identifier, never fetched


def series_spec(rows: list[dict[str, Any]], *, target: float | None = None,
                title: str = "Completion by week") -> dict[str, Any]:
    """Completion per period with its 95% interval as a band, the target as a rule, and the
    finished attempts in the tooltip. The y axis fits the data (and the target): a moment
    between 70% and 80% is not drawn flat on a 0–100% axis."""
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
             {"field": "period", "type": "temporal", "title": "week of"},
             {"field": "completion", "type": "quantitative", "format": ".1%"},
             {"field": "low", "type": "quantitative", "format": ".1%", "title": "95% from"},
             {"field": "high", "type": "quantitative", "format": ".1%", "title": "95% to"},
             {"field": "finished", "type": "quantitative", "title": "finished attempts"}]}},
    ]
    if target is not None:
        layers.append({"data": {"values": [{"target": target}]},
                       "mark": {"type": "rule", "strokeDash": [4, 4]},
                       "encoding": {"y": {"field": "target", "type": "quantitative"}}})
    return {"$schema": SCHEMA, "title": title, "width": "container", "height": 220,
            "data": {"values": values}, "layer": layers}


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
    return {"$schema": SCHEMA, "title": title, "width": "container", "height": 200,
            "data": {"values": values},
            "mark": {"type": "bar"},
            "encoding": {
                "x": {"field": "band", "type": "ordinal", "sort": {"field": "order"}, "title": None},
                "y": {"field": "completed", "type": "quantitative", "title": "completed attempts"},
                "color": {"field": "sla", "type": "nominal", "title": None,
                          "scale": {"domain": ["within the SLA", "beyond the SLA", "no SLA"],
                                    "range": ["#1b7f3b", "#b3261e", "#5b6475"]}},
                "tooltip": [{"field": "band", "title": "time to complete"},
                            {"field": "completed", "type": "quantitative"},
                            {"field": "share", "type": "quantitative", "format": ".1%"}]}}


__all__ = ["durations_spec", "series_spec"]
