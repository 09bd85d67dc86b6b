"""Who is who: resolve the identifiers on events into persons.

Until full identity stitching (identify/alias calls, shared keys across channels)
lands, a person is the ``user_id`` when an event has one, else the ``anonymous_id``;
an event that carries both links that anonymous id to the user, so the anonymous
events before a login belong to the same person. When one anonymous id was seen
with several users, the first user (in time, then ingest order) wins.
"""

from __future__ import annotations

import ibis
from ibis.expr.types import Table

__all__ = ["with_person"]


def with_person(events: Table) -> Table:
    """``events`` with a ``person`` column."""
    both = events.filter(events.anonymous_id.notnull() & events.user_id.notnull())
    links = both.group_by(linked_anonymous_id=both.anonymous_id).aggregate(
        linked_user=both.user_id.first(order_by=[both.timestamp, both.seq])
    )
    joined = events.left_join(links, events.anonymous_id == links.linked_anonymous_id)
    return joined.mutate(
        person=ibis.coalesce(joined.user_id, joined.linked_user, joined.anonymous_id)
    ).drop("linked_anonymous_id", "linked_user")
