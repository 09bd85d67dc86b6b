"""Table cells shared by the portfolio and the moment sections: escaped, in words."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

import pandas as pd

from microjourney.fmt import DASH, interval, metric, num, pct
from microjourney.fmt import seconds as secs
from microjourney.registry.scorecard import target_status


def missing(value: Any) -> bool:
    """``None``, NaN, ``pandas.NA``/``NaT`` or empty text."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # list-like
        return False


def first(*values: Any) -> Any:
    """The first value that is not missing, else ``None``."""
    return next((v for v in values if not missing(v)), None)


def h(value: Any) -> str:
    """User text, HTML-escaped (quotes too); missing values as an em dash."""
    return DASH if missing(value) else escape(str(value), quote=True)


def target(row: Mapping[str, Any], meta: Mapping[str, Any]) -> tuple[str | None, float | None]:
    """``(metric, value)`` of a moment's target: the scorecard's, else its definition's."""
    name = row.get("target_metric")
    value = num(row.get("target_value"))
    goal = meta.get("target") or {}
    if not isinstance(name, str) or not name:
        name = goal.get("metric") or None
    if value is None:
        value = num(goal.get("value"))
    return name, value


def target_badge(row: Mapping[str, Any], name: str | None, goal: float | None) -> str:
    """The "vs target" verdict as a badge that says it in words, not colour alone: the
    scorecard's status (the dashboard's words), and which way the metric lies."""
    if not name or goal is None:
        return '<span class="badge none">no target</span>'
    wanted = f"{name.replace('_', ' ')} target {metric(name, goal)}"
    word = target_status(row, name, goal)
    value = num(row.get(name))
    if value is None:
        return f'<span class="badge none">{word}</span><span class="sub">{h(wanted)}</span>'
    mark = "▲" if value > goal else "▼" if value < goal else "="
    klass = {"on target": "good", "near target": "near"}.get(word, "bad")
    return (f'<span class="badge {klass}"><span aria-hidden="true">{mark}</span> {word}</span>'
            f'<span class="sub">{h(wanted)}</span>')


def vs_sla(value: Any, sla: Any) -> str:
    """A duration, flagged in words when it is over the SLA."""
    x, limit = num(value), num(sla)
    text = secs(x)
    if x is not None and limit is not None and x > limit:
        return f'{text} <span class="flag bad">over SLA</span>'
    return text


def sla(row: Mapping[str, Any], meta: Mapping[str, Any]) -> float | None:
    """A moment's SLA in seconds: the scorecard's, else its definition's."""
    value = num(row.get("sla_s"))
    return value if value is not None else num(meta.get("sla_s"))


def completion(row: Mapping[str, Any]) -> str:
    """Completion rate with its 95% confidence interval underneath."""
    low, high = interval(row.get("completion_ci"))
    ci = "" if low is None or high is None else (
        f'<span class="sub">95% CI {pct(low)}–{pct(high)}</span>')
    return f"{pct(row.get('completion_rate'))}{ci}"


