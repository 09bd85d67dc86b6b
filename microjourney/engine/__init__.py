"""The engine: Ibis expressions for tagging, attempts, metrics and funnels."""

from . import frictions
from .attempts import attempt_rows, attempts
from .conformance import conformance_counts, deviations
from .contacts import contacts, moment_settings, with_contacts
from .funnel import ORDERS, PER, FunnelQuery, funnel_stats
from .metrics import daily_counts, outcome_counts
from .paths import ARROW, ProcessMap, around, process_map, variants
from .tagging import roles, tag

__all__ = [
    "ARROW",
    "ORDERS",
    "PER",
    "FunnelQuery",
    "ProcessMap",
    "around",
    "attempt_rows",
    "attempts",
    "conformance_counts",
    "contacts",
    "daily_counts",
    "deviations",
    "frictions",
    "funnel_stats",
    "moment_settings",
    "outcome_counts",
    "process_map",
    "roles",
    "tag",
    "variants",
    "with_contacts",
]
