"""How many ids were merged into persons, and by what: events that carry two ids,
identify/alias calls, shared key values (docs/identity.md; the ``data-quality`` analysis).

Persons are formed three times over the same sightings (:mod:`microjourney.identity`):
from the events' links alone, then with the calls, then with the shared keys too (the
workspace's persons). An id merged is one that shares its person with another id
(ids − persons); each kind of link is credited with what it adds to the step before.
Only counts leave this module: the maps are built in memory and dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
from ibis.expr.types import Table

from ..identity import call_sightings, id_node, resolve, sighting_schema, sightings

__all__ = ["identity_merges"]

_ID_KINDS = pa.array(["user", "anonymous"])


def identity_merges(events: Table, calls: Table, keys: Sequence[str] = ()) -> dict[str, int]:
    """Ids, persons, persons with several ids, the ids merged by events, by calls (net: a
    call that makes an id a user id can split it from a person) and by keys, and the number
    of key values, for ``events`` and the stored identify/alias ``calls``."""
    schema = sighting_schema(keys)
    on_events, by_calls = (t.select(*schema.names).to_pyarrow().cast(schema)
                           for t in (sightings(events, keys), call_sightings(calls, keys)))
    both = pa.concat_tables([on_events, by_calls])
    with_calls = resolve(both)
    full = resolve(both, keys) if keys else with_calls  # no key: the same persons
    steps = [_counts(resolve(on_events)), _counts(with_calls), _counts(full)]
    merged = [ids - persons for ids, persons, _ in steps]
    ids, persons, several = steps[-1]
    return {"ids": ids, "persons": persons, "persons_with_several_ids": several,
            "merged_by_events": merged[0], "merged_by_calls": merged[1] - merged[0],
            "merged_by_keys": merged[2] - merged[1],
            "key_values": full.num_rows - int(pc.sum(pc.is_in(full["kind"], _ID_KINDS)).as_py() or 0)}


def _counts(persons: pa.Table) -> tuple[int, int, int]:
    """(ids, persons, persons with more than one id) of an identifier → person map; ids as
    they link (every spelling of an id is one id)."""
    ids = persons.filter(pc.is_in(persons["kind"], _ID_KINDS))
    nodes = pa.table({"node": id_node(ids["identifier"].combine_chunks()),
                      "person": ids["person"]}).group_by(["node", "person"]).aggregate([])
    per = nodes.group_by("person").aggregate([("node", "count")])
    several = int(pc.sum(pc.greater(per["node_count"], 1)).as_py() or 0)
    return nodes.num_rows, per.num_rows, several
