"""Journey analytics on ordered steps: directly-follows process maps and path variants.

Both take *case rows*: a ``case`` (a person, or an attempt), a ``node`` (an event name,
or a moment's step label), and the order keys ``t_ms``, ``seq`` and ``rank`` (the role
order when one event plays two roles in a moment). Everything is an
aggregate in the engine; Python sees one row per node, edge or variant.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
from ibis.expr.types import Table

from .backend import list_select

#: Separator of the nodes of a path variant.
ARROW = " → "
ORDER = ["t_ms", "seq", "rank"]


@dataclass(frozen=True)
class ProcessMap:
    """The directly-follows graph: node counts, edges with times, start and end counts
    (``node_stats``: all three counts per node in one table, one query for all)."""

    nodes: Table
    edges: Table
    starts: Table
    ends: Table
    node_stats: Table


def follows(rows: Table) -> Table:
    """Case rows with the node that follows in the case (``target``, at ``target_t``) and
    ``first`` (the case's first row): what :func:`process_map` reads. The timeline
    (:mod:`.timeline`) already carries these, so the map of all events sorts nothing."""
    w = ibis.window(group_by="case", order_by=ORDER)
    return rows.mutate(target=rows.node.lead().over(w), target_t=rows.t_ms.lead().over(w),
                       first=ibis.row_number().over(w) == 0)


def process_map(rows: Table) -> ProcessMap:
    """Directly-follows graph of case rows with their successors (see :func:`follows`)."""
    f = rows.filter(rows.target.notnull())
    gap = (f.target_t - f.t_ms) / 1000.0
    edges = f.group_by(source=f.node, target=f.target).aggregate(
        count=f.count(), median_s=gap.median(), mean_s=gap.mean())
    stats = rows.group_by(name=rows.node).aggregate(
        count=rows.count(), starts=rows.first.cast("int64").sum(),
        ends=rows.target.isnull().cast("int64").sum())
    return ProcessMap(nodes=stats.select("name", "count"), edges=edges,
                      starts=stats.filter(stats.starts > 0).select("name", count=stats.starts),
                      ends=stats.filter(stats.ends > 0).select("name", count=stats.ends),
                      node_stats=stats)


def variants(rows: Table) -> Table:
    """Path variants: each case's node sequence; count and median duration per variant.

    A case's path is collected as a list of small node codes, not as text: grouping
    cases by it is cheap, and only the distinct variants are spelled out in names."""
    names = rows.select(name=rows.node).distinct()
    names = names.mutate(code=ibis.row_number().over(order_by=names.name) + 1)
    rows = rows.view()  # a join with a table derived from itself needs a fresh reference
    r = rows.inner_join(names, rows.node == names.name)
    cases = r.group_by("case").aggregate(
        path=r.code.collect(order_by=[r[c] for c in ORDER]),
        steps=r.count(),
        duration_s=(r.t_ms.max() - r.t_ms.min()) / 1000.0,
    )
    v = cases.group_by(["path", "steps"]).aggregate(
        cases=cases.count(), duration_median_s=cases.duration_s.median())
    lookup = names.aggregate(names=names.name.collect(order_by=names.code))
    v = v.cross_join(lookup)
    v = v.select(variant=list_select(v.names, v.path).join(ARROW), steps=v.steps, cases=v.cases,
                 duration_median_s=v.duration_median_s)
    v = v.mutate(share=v.cases / v.cases.sum().over(ibis.window()))
    return v.order_by([v.cases.desc(), v.variant])


def around(rows: Table, node: str, *, after: bool, length: int) -> Table:
    """Variants of the paths that start (``after``) or end at each case's first ``node``,
    ``length`` nodes long at most (the node included)."""
    w = ibis.window(group_by="case", order_by=ORDER)
    r = rows.mutate(rn=ibis.row_number().over(w))
    hits = r.filter(r.node == node)
    first = hits.group_by(at_case="case").aggregate(at=hits.rn.min())
    r = r.inner_join(first, r.case == first.at_case)
    span = (r.rn >= r.at) & (r.rn < r.at + length) if after else (r.rn <= r.at) & (r.rn > r.at - length)
    return variants(r.filter(span).select("case", "node", *ORDER))
