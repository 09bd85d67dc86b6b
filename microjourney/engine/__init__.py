"""The engine: Ibis expressions for tagging, attempts, metrics and funnels."""

from .attempts import attempts
from .funnel import ORDERS, PER, FunnelQuery, funnel_stats
from .metrics import daily_counts, outcome_counts
from .tagging import roles, tag

__all__ = [
    "ORDERS",
    "PER",
    "FunnelQuery",
    "attempts",
    "daily_counts",
    "funnel_stats",
    "outcome_counts",
    "roles",
    "tag",
]
