"""The process map: the directly-follows graph of all events per person, or of a moment's
steps, with how often each node follows another and how long it takes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import fmt
from .base import Analysis, Column, Output, View
from .cases import CaseParams

if TYPE_CHECKING:
    from ..workspace import Workspace

EDGES = (
    Column("source", "from", keep=0),
    Column("target", "to", keep=0),
    Column("count", "count", "count", "times the target directly followed the source in a case",
           keep=0),
    Column("median_s", "median", "seconds", "median time from source to target", keep=1),
    Column("mean_s", "mean", "seconds", "mean time from source to target", keep=2),
)
NODES = (
    Column("name", "node", keep=0),
    Column("count", "count", "count", "occurrences of the node", keep=0),
)
ENDS = (
    Column("name", "node", keep=0),
    Column("count", "cases", "count", keep=0),
)


class Params(CaseParams):
    """Cases, filters and outcome."""


def compute(ws: Workspace, p: Params) -> Output:
    pm = ws.process_map(p.moment, by=p.case, channel=p.channel, since=p.since, until=p.until,
                        outcome=p.outcome, where=p.where)
    edges = pm.edges.order_by([pm.edges["count"].desc(), "source", "target"]).to_pandas()
    # Nodes, starts and ends from one query.
    stats = pm.node_stats.to_pandas()
    nodes = stats[["name", "count"]].sort_values(["count", "name"], ascending=[False, True])
    starts, ends = ((stats[stats[c] > 0][["name", c]].rename(columns={c: "count"}).sort_values("name"))
                    for c in ("starts", "ends"))
    nodes, starts, ends = (t.reset_index(drop=True) for t in (nodes, starts, ends))
    # A moment's designed path (start, steps, completion), for drawings to highlight.
    path = list(ws.moment(p.moment).step_labels) if p.moment else []
    return Output({"edges": edges, "nodes": nodes, "starts": starts, "ends": ends},
                  meta={"path": path})


#: Edge colours by median time from source to target: (at most this many seconds, colour,
#: legend). Fixed bands, so that two moments' maps read alike.
TIME_BANDS: tuple[tuple[float | None, str, str], ...] = (
    (5, "#1b7f3b", "≤ 5 s"), (30, "#5f8f00", "≤ 30 s"), (120, "#b38600", "≤ 2 min"),
    (600, "#d9730d", "≤ 10 min"), (None, "#b3261e", "> 10 min"), )
#: Transitions a drawn map shows at most (the commonest; the designed path always).
DRAWN_EDGES = 40


def graph(edges: Sequence[dict[str, Any]], nodes: Sequence[dict[str, Any]],
          path: Sequence[str] = (), *, top: int = DRAWN_EDGES) -> dict[str, Any]:
    """A process map as a drawing takes it (rows as the analysis's JSON gives them): the
    ``top`` commonest transitions and the designed ``path`` (a moment's start, steps and
    completion, in order), each node sized by its count, each edge as wide as its count and
    coloured by its median time (:data:`TIME_BANDS`); ``designed`` marks the path.

    >>> g = graph([{"source": "a", "target": "b", "count": 9, "median_s": 3.0}],
    ...           [{"name": "a", "count": 10}, {"name": "b", "count": 9}], ("a", "b"))
    >>> g["edges"][0]["designed"], g["edges"][0]["color"], g["edges"][0]["title"]
    (True, '#1b7f3b', 'a → b: 9 times, median 3.0 s')
    """
    on_path = set(zip(path, path[1:], strict=False))
    ranked = sorted(edges, key=lambda e: (-e["count"], e["source"], e["target"]))
    kept = [e for i, e in enumerate(ranked) if i < top or (e["source"], e["target"]) in on_path]
    shown = {n for e in kept for n in (e["source"], e["target"])} | set(path)
    counts = {n["name"]: n["count"] for n in nodes}
    most_node = max([counts.get(n, 0) for n in shown] + [1])
    most_edge = max([e["count"] for e in kept] + [1])

    def colour(median: float | None) -> str:
        if median is None:
            return "#7b8794"
        return next(c for bound, c, _ in TIME_BANDS if bound is None or median <= bound)

    order = {name: i for i, name in enumerate(path)}
    drawn_nodes = [{
        "id": name, "count": counts.get(name, 0), "designed": name in order,
        "text": fmt.count(counts.get(name, 0)),
        # Wide enough for its name (about 8 px a character in the drawing's bold 12 px), and
        # taller the more often it happened.
        "w": max(80, 8 * len(name) + 20),
        "h": round(36 + 24 * math.sqrt(counts.get(name, 0) / most_node)),
    } for name in sorted(shown, key=lambda n: (order.get(n, len(order)), -counts.get(n, 0), n))]
    drawn_edges = [{
        "source": e["source"], "target": e["target"], "count": e["count"],
        "median_s": e.get("median_s"), "designed": (e["source"], e["target"]) in on_path,
        "width": round(1.5 + 8 * math.sqrt(e["count"] / most_edge), 1),
        "color": colour(e.get("median_s")),
        "title": f"{e['source']} → {e['target']}: {fmt.count(e['count'])} times, "
                 f"median {fmt.seconds(e.get('median_s'))}",
    } for e in kept]
    return {"nodes": drawn_nodes, "edges": drawn_edges, "total_edges": len(edges),
            "legend": [{"color": c, "label": label} for _, c, label in TIME_BANDS]}


ANALYSIS = Analysis(
    name="process-map",
    title="Process map",
    doc="Directly-follows graph: how often each step follows another, and how long it takes; "
        "with the nodes, where cases start and where they end.",
    params=Params,
    compute=compute,
    views=(View("edges", "Most frequent transitions", EDGES, rows=30),
           View("starts", "Where cases start", ENDS, rows=10),
           View("ends", "Where cases end", ENDS, rows=10)),
    examples=lambda ws: [{}] + [{"moment": m} for m in list(ws.moments)[:2]],
)
