"""The engine: Ibis expressions for the timeline, tagging, attempts, metrics, funnels,
frictions and journey analytics."""

from . import frictions
from .attempt import attempt_events, events_by_id
from .attempts import attempt_rows, attempts, segments, segments_after
from .conformance import conformance_counts, deviations
from .contacts import contacts, moment_settings, with_contacts
from .funnel import ORDERS, PER, FunnelQuery, funnel_stats, kept_funnel_stats, kept_tries, moment_query
from .metrics import daily_counts, outcome_counts
from .paths import ARROW, ProcessMap, around, follows, process_map, variants
from .tagging import roles, tag
from .timeline import timeline

__all__ = [
    "ARROW",
    "ORDERS",
    "PER",
    "FunnelQuery",
    "ProcessMap",
    "around",
    "attempt_events",
    "events_by_id",
    "attempt_rows",
    "attempts",
    "conformance_counts",
    "contacts",
    "daily_counts",
    "deviations",
    "follows",
    "frictions",
    "funnel_stats",
    "kept_funnel_stats",
    "kept_tries",
    "moment_query",
    "moment_settings",
    "outcome_counts",
    "process_map",
    "roles",
    "segments",
    "segments_after",
    "tag",
    "timeline",
    "variants",
    "with_contacts",
]
