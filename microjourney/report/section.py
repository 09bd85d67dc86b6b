"""One report section per moment: who owns it, its problem, KPIs, funnel and trend."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from microjourney.fmt import DASH, count, interval, lower_is_better, metric, num, pct, seconds
from microjourney.registry.scorecard import COLUMNS as SCORECARD
from microjourney.report.cells import completion, first, h, sla, target, target_badge, vs_sla
from microjourney.report.charts import daily_spec, funnel_spec, script_json

#: The outcome rates a moment's section shows, labelled as every surface labels them.
OUTCOME_RATES = ("failure_rate", "abandonment_rate", "escalation_rate")
LABELS = {c.name: c.label for c in SCORECARD}
INTENTS = {"learn": "Learn", "decide": "Decide", "act": "Act"}


def chart(spec_id: str, spec: Mapping[str, Any], label: str) -> str:
    """A chart placeholder and its spec; the page's boot script draws it."""
    return (
        f'<div class="chart" data-spec="{spec_id}" role="img" aria-label="{h(label)}"></div>'
        f'<script type="application/json" id="{spec_id}">{script_json(spec)}</script>'
    )


def _facts(meta: Mapping[str, Any], goal: tuple[str | None, float | None],
           limit: float | None) -> str:
    metric_name, value = goal
    wanted = DASH if not metric_name or value is None else (
        f"{metric_name.replace('_', ' ')} {'≤' if lower_is_better(metric_name) else '≥'} "
        f"{metric(metric_name, value)}")
    intent = meta.get("intent")
    facts = [("Owner", h(meta.get("owner"))),
             ("Intent", h(INTENTS.get(str(intent), intent))),
             ("SLA", seconds(limit)),
             ("Target", h(wanted))]
    return '<dl class="facts">' + "".join(
        f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in facts) + "</dl>"


def _kpis(row: Mapping[str, Any], meta: Mapping[str, Any], limit: float | None) -> str:
    badge = target_badge(row, *target(row, meta))
    attempts = num(row.get("attempts"))
    parts = [
        ("Attempts", count(attempts), ""),
        ("Persons", count(row.get("persons")), ""),
        ("Completion", completion(row), badge),
        ("Median time", vs_sla(row.get("duration_median_s"), limit), ""),
        ("p90 time", vs_sla(row.get("duration_p90_s"), limit), ""),
        ("SLA met", pct(row.get("sla_met_rate")), ""),
    ]
    outcomes = " · ".join(f"{LABELS[rate]} {pct(row.get(rate))}" for rate in OUTCOME_RATES)
    cards = "".join(
        f'<div class="kpi"><dt>{k}</dt><dd>{v}{f"<div>{extra}</div>" if extra else ""}</dd></div>'
        for k, v, extra in parts)
    return (f'<dl class="kpis">{cards}</dl><p class="outcomes">Of finished attempts: '
            f'{outcomes}</p>')


def funnel_table(funnel: Mapping[str, Any]) -> str:
    """The funnel as an accessible table (same numbers as its chart)."""
    unit = "Attempts" if funnel.get("per") == "attempt" else "Persons"
    rows = []
    for i, step in enumerate(funnel.get("steps") or [], start=1):
        rows.append(
            f'<tr><td class="n">{i}</td><th scope="row">{h(step.get("name"))}</th>'
            f'<td class="n">{count(step.get("count"))}</td>'
            f'<td class="n">{pct(step.get("conversion_from_start"))}</td>'
            f'<td class="n">{pct(step.get("conversion_from_previous"))}</td>'
            f'<td class="n">{seconds(step.get("median_time_from_previous_s"))}</td></tr>')
    return (
        f'<table class="funnel"><caption>Funnel steps: {unit.lower()} reaching each step'
        "</caption><thead><tr><th scope=\"col\" class=n>#</th><th scope=\"col\">Step</th>"
        f'<th scope="col" class=n>{unit}</th><th scope="col" class=n>From start</th>'
        '<th scope="col" class=n>From previous</th>'
        '<th scope="col" class=n>Median time from previous</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>")


def _funnel(i: int, name: str, funnel: Mapping[str, Any] | None) -> str:
    if not funnel or not funnel.get("steps"):
        return '<figure class="wide"><figcaption>Funnel</figcaption>' \
               '<p class="empty">No funnel computed for this moment.</p></figure>'
    how = [str(funnel.get("order") or "ordered"), f"per {funnel.get('per') or 'person'}"]
    window = num(funnel.get("window_s"))
    if window is not None:
        how.append(f"{seconds(window)} window")
    spec = funnel_spec({**funnel, "moment": name})
    return (
        f'<figure class="wide"><figcaption>Funnel <span class="sub">{h(", ".join(how))}'
        "</span></figcaption>"
        f'<div class="funnel-grid">{chart(f"spec-{i}-funnel", spec, spec["description"])}'
        f"{funnel_table(funnel)}</div></figure>")


def daily_table(rows: list[dict[str, Any]]) -> str:
    """Daily figures behind the trend chart, folded away."""
    body = "".join(
        f'<tr><th scope="row">{r["day"]}</th><td class="n">{count(r["attempts"])}</td>'
        f'<td class="n">{count(r["completed"])}</td><td class="n">{r["rate_text"]}</td></tr>'
        for r in rows)
    return (
        '<details><summary>Daily figures</summary><table class="daily"><thead><tr>'
        '<th scope="col">Day</th><th scope="col" class=n>Attempts</th>'
        '<th scope="col" class=n>Completed</th><th scope="col" class=n>Completion rate</th>'
        f"</tr></thead><tbody>{body}</tbody></table></details>")


def _daily(i: int, name: str, frame: pd.DataFrame | None, goal: tuple,
           marks: list[dict[str, Any]] | None = None) -> str:
    metric_name, value = goal
    spec = daily_spec(name, frame, value if metric_name == "completion_rate" else None, marks)
    rows = spec["data"]["values"]
    if not rows:
        return '<figure class="wide"><figcaption>Daily completion</figcaption>' \
               '<p class="empty">No daily figures yet.</p></figure>'
    return (
        '<figure class="wide"><figcaption>Daily completion <span class="sub">'
        "completion rate (line, left axis) over attempts (bars, right axis)</span></figcaption>"
        f'{chart(f"spec-{i}-daily", spec, spec["description"])}{daily_table(rows)}</figure>')


def friction_table(friction: Mapping[str, Any] | None) -> str:
    """Frictions of a moment ranked by seconds lost, with their impact on completion."""
    if not friction or not friction.get("kinds"):
        return ""
    rows = []
    for k in friction["kinds"]:
        lo, hi = interval(k.get("difference_ci"))
        diff = num(k.get("completion_difference"))
        ci = "" if lo is None or hi is None else f" [{lo * 100:+.1f}, {hi * 100:+.1f}]"
        rows.append(
            f'<tr><th scope="row">{h(str(k.get("kind")).replace("_", " "))}</th>'
            f'<td class="n">{count(k.get("attempts"))} ({pct(k.get("share_of_attempts"))})</td>'
            f'<td class="n">{seconds(k.get("seconds_lost"))}</td>'
            f'<td class="n">{seconds(k.get("seconds_per_affected"))}</td>'
            f'<td class="n">{pct(k.get("completion_with"))}</td>'
            f'<td class="n">{pct(k.get("completion_without"))}</td>'
            f'<td class="n">{"–" if diff is None else f"{diff * 100:+.1f} pts"}{h(ci)}</td></tr>')
    score = num(friction.get("friction_score"))
    sub = (f"friction score {score:.1f} (share of customers' time lost), "
           f"{seconds(friction.get('seconds_per_attempt'))} lost per attempt"
           if score is not None else "")
    return (
        f'<figure class="wide"><figcaption>Micro-frictions <span class="sub">{h(sub)}</span>'
        '</figcaption><table class="frictions"><caption>Frictions ranked by seconds lost; '
        "completion of attempts with and without each (difference with 95% CI)</caption>"
        '<thead><tr><th scope="col">Friction</th><th scope="col" class=n>Attempts</th>'
        '<th scope="col" class=n>Seconds lost</th><th scope="col" class=n>Per attempt</th>'
        '<th scope="col" class=n>Completion with</th><th scope="col" class=n>Without</th>'
        '<th scope="col" class=n>Difference</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></figure>")


def process_map(i: int, name: str, drawn: Mapping[str, Any] | None) -> str:
    """The moment's process map (``registry.process_map.graph``), laid out and drawn by the
    page's ``processmap.js``, with its legend."""
    if not drawn or not drawn.get("edges"):
        return ""
    legend = ", ".join(
        f'<svg class="swatch" width="12" height="12" aria-hidden="true"><rect width="12" '
        f'height="12" rx="2" fill="{h(b["color"])}"/></svg> {h(b["label"])}' for b in drawn["legend"])
    shown, total = len(drawn["edges"]), drawn["total_edges"]
    more = f" The {shown} commonest of {total:,} transitions." if total > shown else ""
    label = f"Process map of {name}: its steps in layers, the designed path outlined"
    return (f'<figure class="process"><figcaption>How attempts move between steps</figcaption>'
            f'<div class="scroll"><div class="graph" id="g-{i}" data-label="{h(label)}"></div></div>'
            f'<script type="application/json" class="graph-spec" data-target="g-{i}">'
            f"{script_json(drawn)}</script>"
            f'<p class="muted legend">Median time from step to step: {legend}. Thicker: more '
            f"often; outlined: the designed path.{more}</p></figure>")


def moment_section(i: int, name: str, row: Mapping[str, Any], meta: Mapping[str, Any],
                   funnel: Mapping[str, Any] | None, frame: pd.DataFrame | None,
                   friction: Mapping[str, Any] | None = None,
                   drawn: Mapping[str, Any] | None = None) -> str:
    """The section of moment number *i* (its anchor is ``m-i``)."""
    limit = sla(row, meta)
    goal = target(row, meta)
    journey = first(row.get("journey"), meta.get("journey"))
    head = (
        f'<header><p class="eyebrow">{h(journey)} · <code>{h(name)}</code></p>'
        f'<h2 id="m-{i}-h">{h(first(meta.get("title"), name))}</h2>'
        f"{_facts(meta, goal, limit)}</header>")
    problem = meta.get("problem")
    if problem:
        head += f'<p class="problem"><strong>Problem.</strong> {h(problem)}</p>'
    if not num(row.get("attempts")):
        body = '<p class="empty">No attempts yet.</p>'
    else:
        body = (_kpis(row, meta, limit) + _funnel(i, name, funnel) + friction_table(friction)
                + process_map(i, name, drawn) + _daily(i, name, frame, goal, meta.get("marks")))
    return (f'<section class="moment" id="m-{i}" aria-labelledby="m-{i}-h">'
            f"{head}{body}</section>")
