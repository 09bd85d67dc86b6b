"""The self-contained HTML report: a portfolio of moments, then one section per moment.

The page needs no network: the stylesheet and the vendored Vega, Vega-Lite and
vega-embed builds are inlined, chart specs carry their data, and a
Content-Security-Policy forbids every fetch. Charts are drawn by the browser; each
has an HTML table beside it, so the numbers read without JavaScript and in print.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import pandas as pd

from microjourney.fmt import count, num, pct, when
from microjourney.fmt import seconds as secs
from microjourney.registry.scorecard import COLUMNS as SCORECARD
from microjourney.report.cells import completion, first, h, sla, target, target_badge, vs_sla
from microjourney.report.section import moment_section

#: The outcome rates the portfolio shows, labelled as every surface labels them.
OUTCOME_RATES = ("failure_rate", "abandonment_rate", "escalation_rate")
LABELS = {c.name: c.label for c in SCORECARD}

VENDOR = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js", "dagre.min.js")

CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'unsafe-inline'; img-src data: blob:; font-src data:"
)

BOOT = """(function () {
  var opts = {mode: "vega-lite", actions: false, renderer: "svg"};
  document.querySelectorAll("[data-spec]").forEach(function (el) {
    var spec = JSON.parse(document.getElementById(el.getAttribute("data-spec")).textContent);
    vegaEmbed(el, spec, opts).catch(function (err) {
      el.textContent = "Chart could not be drawn: " + err.message;
    });
  });
})();"""


def inline_js(source: str) -> str:
    """JavaScript safe inside ``<script>``: no ``</script`` or ``<!--``, no source map."""
    source = re.sub(r"^//# sourceMappingURL=.*$", "", source, flags=re.MULTILINE)
    source = re.sub(r"</(script)", r"<\\/\1", source, flags=re.IGNORECASE)
    return source.replace("<!--", "<\\!--")


@cache
def _assets() -> tuple[str, str]:
    here = files(__package__)
    css = (here / "style.css").read_text(encoding="utf-8")
    js = "\n".join(
        [inline_js((here / "vendor" / name).read_text(encoding="utf-8")) for name in VENDOR]
        + [inline_js((here / "processmap.js").read_text(encoding="utf-8"))]
    )
    return css, js


def _records(scorecard: pd.DataFrame | None) -> dict[str, dict[str, Any]]:
    if scorecard is None or len(scorecard) == 0:
        return {}
    return {str(r["moment"]): r for r in scorecard.to_dict("records")}


def _portfolio_row(i: int, name: str, row: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    attempts = num(row.get("attempts")) or 0
    journey = first(row.get("journey"), meta.get("journey"))
    label = first(meta.get("title"), name)
    cells = [
        f"<td>{h(journey)}</td>",
        f'<th scope="row"><a href="#m-{i}">{h(label)}</a>'
        f'<span class="sub code">{h(name)}</span></th>',
        f"<td>{h(meta.get('owner'))}</td>",
        f'<td class="n">{count(attempts)}</td>',
    ]
    if not attempts:
        cells.append('<td colspan="10" class="muted">no attempts yet</td>')
        return "<tr>" + "".join(cells) + "</tr>"
    limit = sla(row, meta)
    cells += [
        f'<td class="n">{completion(row)}</td>',
        f"<td>{target_badge(row, *target(row, meta))}</td>",
        f'<td class="n">{count(row.get("attempts_short"))}</td>',
        f'<td class="n">{vs_sla(row.get("duration_median_s"), limit)}</td>',
        f'<td class="n">{vs_sla(row.get("duration_p90_s"), limit)}</td>',
        f'<td class="n">{secs(limit)}</td>',
        f'<td class="n">{pct(row.get("sla_met_rate"))}</td>',
    ]
    for rate in OUTCOME_RATES:
        cells.append(f'<td class="n">{pct(row.get(rate))}</td>')
    return "<tr>" + "".join(cells) + "</tr>"


def portfolio(order: list[str], rows: dict[str, dict], metas: dict[str, dict]) -> str:
    """The table of all moments, in ``order`` (ranked by attempts short of target)."""
    if not order:
        return '<p class="empty">No moments are defined yet.</p>'
    rates = [LABELS[r].capitalize() for r in OUTCOME_RATES]
    heads = ["Journey", "Moment", "Owner", "Attempts", "Completion", "vs target",
             "Attempts short of target", "Median", "p90", "SLA", "SLA met", *rates]
    numeric = {"Attempts", "Completion", "Attempts short of target", "Median", "p90", "SLA",
               "SLA met", *rates}
    head = "".join(
        f'<th scope="col"{" class=n" if x in numeric else ""}>{x}</th>' for x in heads)
    body = "\n".join(
        _portfolio_row(i, name, rows.get(name, {}), metas.get(name, {}))
        for i, name in enumerate(order, start=1))
    return (
        '<div class="scroll"><table class="portfolio">'
        "<caption>Completion rate with its 95% confidence interval; durations from start "
        "to outcome; completion, failure, abandonment and escalation rates over finished "
        "attempts (attempts − in progress), as in the CLI and the API.</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table></div>"
    )


def _order(moments: list[dict], rows: dict[str, dict]) -> list[str]:
    """The moments in the order given (``build_report`` ranks them as the dashboard's
    portfolio does: most attempts short of target first), then any other scorecard row."""
    names = [str(m.get("name")) for m in moments if m.get("name") is not None]
    names += [n for n in rows if n not in names]
    return list(dict.fromkeys(names))


def _header(title: str, generated_at: str, summary: Mapping[str, Any], n_moments: int,
            filters: str = "") -> str:
    period = list(summary.get("period") or [])
    if len(period) == 2 and any(p is not None for p in period):
        span = f"{h(when(period[0]))} → {h(when(period[1]))}"
    else:
        span = "no events yet"
    stats = [("Events", summary.get("events")), ("Persons", summary.get("persons")),
             ("Quarantined", summary.get("quarantined")), ("Moments", n_moments)]
    cards = "".join(
        f'<div class="stat"><dt>{k}</dt><dd>{count(v)}</dd></div>' for k, v in stats)
    return (
        f"<header class=\"page\"><h1>{h(title)}</h1>"
        f'<p class="meta">Period {span} · generated '
        f'<time datetime="{h(generated_at)}">{h(when(generated_at))}</time>'
        f'{f" · <span class=filters>filters: {h(filters)}</span>" if filters else ""}</p>'
        f'<dl class="stats">{cards}</dl></header>'
    )


def render_report(
    *,
    title: str,
    generated_at: str,
    scorecard: pd.DataFrame,
    funnels: list[dict],
    daily: dict[str, pd.DataFrame],
    moments: list[dict],
    summary: dict,
    frictions: dict[str, dict] | None = None,
    more: list[str] | None = None,
    filters: str = "",
    graphs: dict[str, dict] | None = None,
    headline: str | None = None,
) -> str:
    """Render the report as one HTML document (a ``str``) that works offline.

    >>> page = render_report(title="CX", generated_at="2024-06-01T08:00:00+00:00",
    ...     scorecard=pd.DataFrame(), funnels=[], daily={}, moments=[],
    ...     summary={"events": 0, "persons": 0, "quarantined": 0, "period": [None, None]})
    >>> "No moments are defined yet." in page
    True
    """
    css, js = _assets()
    moved = (f'<p class="headline"><strong>What moved most:</strong> {h(headline)} '
             f'<a href="#a-week-on-week">How this is judged</a></p>' if headline else "")
    moments = list(moments or [])
    rows = _records(scorecard)
    metas = {str(m.get("name")): m for m in moments}
    by_moment = {str(f.get("moment")): f for f in funnels or []}
    order = _order(moments, rows)
    sections = "\n".join(
        moment_section(
            i, name, rows.get(name, {}), metas.get(name, {}), by_moment.get(name),
            (daily or {}).get(name), (frictions or {}).get(name), (graphs or {}).get(name))
        for i, name in enumerate(order, start=1))
    extra = "\n".join(more or [])
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="generator" content="microjourney">
<title>{h(title)}</title>
<style>
{css}
</style>
</head>
<body>
<main>
{_header(title, generated_at, summary or {}, len(order), filters)}
<section class="portfolio" aria-labelledby="portfolio-h">
<h2 id="portfolio-h">Portfolio</h2>
{moved}
{portfolio(order, rows, metas)}
</section>
{sections}
{extra}
<noscript><p class="empty">Charts need JavaScript; every chart's figures are in the
tables beside it.</p></noscript>
</main>
<script>
{js}
</script>
<script>
{BOOT}
</script>
</body>
</html>
"""


def write_report(path: str | Path, **kwargs: Any) -> Path:
    """Render the report (same keyword arguments as :func:`render_report`) to *path*."""
    out = Path(path)
    out.write_text(render_report(**kwargs), encoding="utf-8")
    return out
