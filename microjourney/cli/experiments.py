"""``microjourney experiment``: experiments read from their data. ``analyze-table`` reads a
unit-level table (one row per unit: variant, metrics, optionally a pre-exposure covariate)
and prints each treatment against the control (docs/experiments.md)."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from .. import workspace as ws_api
from ..fmt import cell, num
from ..registry import get as get_analysis
from ..registry.base import Result
from ..registry.experiment_rows import records
from ..registry.experiment_table import analyze_table
from .common import JsonOpt, WideOpt, WorkspaceOpt, _engine, _print_json, app, out
from .render import show
from .served import analysis_result

experiment = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                         help="Experiments: analyse A/B tests from their unit-level data.")
app.add_typer(experiment, name="experiment")


def _num(x: float, percent: bool, signed: bool = False, unit: str = "") -> str:
    if x is None or not math.isfinite(x):
        return "—"
    sign = "+" if signed else ""
    return f"{x * 100:{sign}.2f}{unit or '%'}" if percent else f"{x:{sign}.4g}"


def _ci(ci: tuple[float, float], percent: bool, unit: str = "") -> str:
    return f"({_num(ci[0], percent, unit=unit)}, {_num(ci[1], percent, unit=unit)})".replace(" pp", "")


def _p(p: float) -> str:
    return "—" if not math.isfinite(p) else f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


@experiment.command("analyze-table")
def analyze_table_command(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The units, one per row (CSV, "
                                         "optionally gzipped, or Parquet).")],
    variant: Annotated[str, typer.Option(help="The column with each unit's variant.")],
    metric: Annotated[list[str], typer.Option("--metric", help="A column with a metric (numbers, "
                                              "or true/false for a rate). Repeatable.")],
    covariate: Annotated[str | None, typer.Option(help="A column measured before exposure, for "
                                                  "CUPED variance reduction.")] = None,
    control: Annotated[str | None, typer.Option(help="The control's variant (default: the first "
                                                "in sorted order).")] = None,
    alpha: Annotated[float, typer.Option(help="1 − the intervals' confidence.", min=0.0001,
                                         max=0.5)] = 0.05,
    as_json: JsonOpt = False,
) -> None:
    """Each treatment against the control on each metric: means, the absolute and relative
    difference with interval and p-value (Welch / two-proportion, Holm-adjusted across the
    metrics), the chance to win, the always-valid (sequential) interval, CUPED with
    --covariate, the sample-ratio check and data-quality warnings."""
    result = analyze_table(file, variant, metric, covariate, control, alpha)
    if as_json:
        _print_json(asdict(result))
        return
    level = f"{1 - alpha:.0%}"
    for m in result.metrics:
        pct = m.kind == "proportion"
        table = Table(title=f"{m.metric} ({m.kind})", title_justify="left")
        for name in ("variant", "units", "mean", f"difference ({level} CI)", f"lift ({level} CI)", "p",
                     "p Holm", "chance to win", "always-valid lift CI"):
            table.add_column(name, justify="left" if name == "variant" else "right")
        by_name = {c.treatment: (c, p) for c, p in zip(m.comparisons, m.p_holm, strict=True)}
        for arm in m.arms:
            row = [escape(arm.variant), f"{arm.n:,}", _num(arm.mean, pct)]
            if arm.variant in by_name:
                c, holm = by_name[arm.variant]
                a, r = c.absolute, c.relative
                row += [f"{_num(a.estimate, pct, True, ' pp')} {_ci(a.ci, pct, ' pp')}",
                        f"{_num(r.estimate, True, True)} {_ci(r.ci, True)}", _p(a.p_value), _p(holm),
                        _num(c.bayesian.chance_to_win, True), _ci(c.sequential_relative.ci, True)]
            else:
                row += ["control", "", "", "", "", ""]
            table.add_row(*row)
        out.print(table)
        for c in m.comparisons:
            if c.cuped is not None:
                adj = c.cuped.adjusted
                out.print(f"  CUPED {escape(c.treatment)}: difference {_num(adj.estimate, pct, True, ' pp')} "
                          f"{_ci(adj.ci, pct, ' pp')}, p {_p(adj.p_value)}; θ = {c.cuped.theta:.4g}, "
                          f"variance {_num(-c.cuped.variance_reduction, True, True)}")
        for n in m.notices:
            out.print(f"  [yellow]warning[/] {escape(f'[{n.code}]')} {escape(n.message)}", soft_wrap=True)
    s = result.srm
    split = " / ".join(f"{u:,}" for u in result.units)
    out.print(f"units: {split} ({', '.join(escape(v) for v in result.variants)}); sample-ratio check "
              f"p = {_p(s.p_value)}: {'MISMATCH' if s.flagged else 'ok'} (flagged below 0.001)")
    for n in result.notices:
        out.print(f"[yellow]warning[/] {escape(f'[{n.code}]')} {escape(n.message)}", soft_wrap=True)


@experiment.command("analyze")
def analyze_command(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The experiment (declared in the "
                                        "workspace).")],
    workspace: WorkspaceOpt = Path("."),
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """One experiment of the workspace: each metric per variant against the control over the
    persons exposed, with the lift, its interval, p-values (Holm, Benjamini–Hochberg), chance
    to win, the CUPED lift, the always-valid interval, the effect by week and verdict, and the
    sample-ratio check overall and per channel and os (docs/experiments.md). A summary of the
    primary and secondary metrics comes first."""
    result = analysis_result(workspace, "experiment", {"experiment": name}, _engine)
    if not as_json:
        for line in summary(result):
            out.print(line, highlight=False, width=min(100, out.width))
    show(result, get_analysis("experiment"), out, as_json=as_json, wide=wide)


def summary(result: Result) -> list[str]:
    """One line per treatment and primary or secondary metric: the lift with its interval and
    p, the CUPED lift and the variance it removed, the effect by week, the verdict."""
    columns = {c.name: c for c in get_analysis("experiment").views[0].columns}
    table = result.tables.get("metrics")
    if table is None or table.empty:
        return []
    lines = []
    for r in records(table):
        if r.get("role") not in ("primary", "secondary") or r.get("verdict") in ("control", "no data"):
            continue
        said = [f"{r['variant']} on {r['metric']} ({r['role']}): lift {cell(columns['lift'], r)}, "
                f"p {cell(columns['p'], r)}"]
        if num(r.get("cuped_lift")) is not None:
            said.append(f"CUPED {cell(columns['cuped_lift'], r)} "
                        f"({cell(columns['variance_reduction'], r)} of the variance removed)")
        said.append(f"by week: {r.get('durability') or '—'}")
        said.append(f"verdict: {r['verdict']}")
        lines.append(escape("; ".join(said)))
    return lines


@experiment.command("list")
def list_command(workspace: WorkspaceOpt = Path("."), as_json: JsonOpt = False) -> None:
    """The experiments the workspace declares: moment, variants and weights, dates, metrics."""
    with ws_api.open(workspace) as ws:
        rows: list[dict[str, Any]] = [{"name": e.name, "moment": e.moment, "variants": e.weights(),
                 "start": e.start.isoformat() if e.start else None,
                 "end": e.end.isoformat() if e.end else None, "metric": e.metric,
                 "secondary": list(e.secondary), "guardrails": list(e.guardrails)}
                for e in ws.spec.experiments]
    if as_json:
        _print_json(rows)
        return
    if not rows:
        out.print("no experiments declared (docs/experiments.md, \"Declaring an experiment\")")
        return
    t = Table(title="Experiments")
    for label in ("name", "moment", "variants", "dates", "metric", "guardrails"):
        t.add_column(label)
    for r in rows:
        split = ", ".join(f"{k} {v:.0%}" for k, v in r["variants"].items())
        dates = f"{r['start'] or '…'} – {r['end'] or '…'}"
        t.add_row(escape(r["name"]), escape(r["moment"]), escape(split), dates, r["metric"],
                  ", ".join(r["guardrails"]))
    out.print(t)
