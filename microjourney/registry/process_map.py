"""The process map: the directly-follows graph of all events per person, or of a moment's
steps, with how often each node follows another and how long it takes."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    nodes = pm.nodes.order_by([pm.nodes["count"].desc(), "name"]).to_pandas()
    starts = pm.starts.order_by("name").to_pandas()
    ends = pm.ends.order_by("name").to_pandas()
    return Output({"edges": edges, "nodes": nodes, "starts": starts, "ends": ends})


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
