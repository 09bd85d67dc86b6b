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

#: Separator of the nodes of a path variant.
ARROW = " → "
ORDER = ["t_ms", "seq", "rank"]


@dataclass(frozen=True)
class ProcessMap:
    """The directly-follows graph: node counts, edges with times, start and end counts."""

    nodes: Table
    edges: Table
    starts: Table
    ends: Table


def process_map(rows: Table) -> ProcessMap:
    """Directly-follows graph of case rows."""
    w = ibis.window(group_by="case", order_by=ORDER)
    r = rows.mutate(target=rows.node.lead().over(w), target_t=rows.t_ms.lead().over(w),
                    first=ibis.row_number().over(w) == 0)
    follows = r.filter(r.target.notnull())
    gap = (follows.target_t - follows.t_ms) / 1000.0
    edges = follows.group_by(source=follows.node, target=follows.target).aggregate(
        count=follows.count(), median_s=gap.median(), mean_s=gap.mean())
    return ProcessMap(nodes=_count_nodes(rows), edges=edges, starts=_count_nodes(r.filter(r.first)),
                      ends=_count_nodes(r.filter(r.target.isnull())))


def _count_nodes(rows: Table) -> Table:
    return rows.group_by(name=rows.node).aggregate(count=rows.count())


def variants(rows: Table) -> Table:
    """Path variants: each case's node sequence; count and median duration per variant."""
    cases = rows.group_by("case").aggregate(
        variant=rows.node.group_concat(ARROW, order_by=[rows[c] for c in ORDER]),
        steps=rows.count(),
        duration_s=(rows.t_ms.max() - rows.t_ms.min()) / 1000.0,
    )
    v = cases.group_by(["variant", "steps"]).aggregate(
        cases=cases.count(), duration_median_s=cases.duration_s.median())
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
