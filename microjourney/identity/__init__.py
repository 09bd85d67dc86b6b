"""Who is who: identifiers stitched into persons (rules and reasons: docs/identity.md).

Identifiers are the nodes of a graph: user ids, anonymous ids (one namespace of ids)
and the values of the workspace's shared keys (``identity: keys: [email, phone]``),
one namespace per key. Links are what was seen together: an anonymous id and a user
id on one event or identify call, a key value and the id it was declared for
(``context.traits.<key>`` on events, ``traits.<key>`` on identify calls), and an alias
call's ``previous_id`` and ``user_id``.

* User ids join one another only through alias links: the alias groups (connected
  components of alias links) are the identified persons, named by their smallest
  user id.
* The other identifiers (anonymous ids, key values) form clusters: connected
  components of the links among them that do not pass through a grouped id. A
  cluster linked to one or more user groups goes whole to the group it was first
  linked with (earliest link time, then the smallest person id); a cluster linked to
  none is an anonymous person, named by its smallest anonymous id.

Everything depends on the *set* of links and the earliest time of each, never on
arrival order, so the result is the same for any order and for repeated calls.

Two steps, portable across backends: :func:`sightings` is one Ibis group-by over the
events (the distinct identifier combinations with their first time) and
:func:`call_sightings` the same over the stored calls; :func:`resolve` computes the
components on those few rows with vectorised SciPy/Arrow code (no Python loop over
rows) and returns the identifier → person map, which :func:`with_person` joins to
events by Ibis.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ibis.expr.types import Table, Value
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["BLANKS", "PERSONS", "call_sightings", "id_node", "key_kind", "normalise", "normalise_text",
           "resolve", "resolve_rows", "sighting_schema", "sightings", "trait", "with_person"]

#: The schema of the identifier → person map (``kind``: ``user``, ``anonymous`` or a key name).
#: ``component``: the identity component (every identifier linked to it, by any link;
#: named by its smallest node): a person's map depends on its component's sightings only,
#: so a refresh resolves again just the components that new sightings touch.
PERSONS = pa.schema([("kind", pa.string()), ("identifier", pa.string()), ("person", pa.string()),
                     ("component", pa.string())])

_ID_KINDS = ("user", "anonymous")
#: What trimming takes off an id or a key value: the characters Ibis's ``strip()`` trims
#: on DuckDB and Spark (space, tab, line feed, carriage return, vertical tab, form feed).
BLANKS = " \t\n\r\x0b\x0c"


@ibis.udf.scalar.builtin(name="json_extract_string")
def _member(doc: str, path: str) -> str:  # type: ignore[empty-body]
    """A JSON member as text (DuckDB's builtin; the Spark runtime defines the same name)."""


def _path(key: str) -> str:
    """A top-level member as a JSON Pointer (``/key``, ``~1`` for ``/``, ``~0`` for ``~``),
    as the engine names members (``engine.backend.json_path``): any key works."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def key_kind(key: str) -> str:
    """How a key's values are normalised: ``email`` (a name holding "mail"), ``phone``
    (holding "phone"), else ``text``."""
    name = key.lower()
    return "email" if "mail" in name else "phone" if "phone" in name else "text"


def normalise(value: Value, key: str) -> Value:
    """A key value as it links: e-mail trimmed and lower-cased, phone digits only,
    other keys trimmed; empty is missing."""
    kind = key_kind(key)
    text = value.cast("string")
    if kind == "email":
        text = text.strip().lower()
    elif kind == "phone":
        text = text.re_replace(r"[^0-9]", "")
    else:
        text = text.strip()
    return text.nullif("")


def normalise_text(value: str, key: str) -> str:
    """One key value as :func:`normalise` makes it link, in Python (for looking a person
    up by a value a caller gives); empty is missing.

    >>> normalise_text(" Ann@Example.COM ", "email"), normalise_text("+44 20 7946", "phone")
    ('ann@example.com', '44207946')
    """
    kind = key_kind(key)
    if kind == "email":  # trimmed of what the engine trims (:data:`BLANKS`), no more
        return value.strip(BLANKS).lower()
    if kind == "phone":
        return re.sub(r"[^0-9]", "", value)
    return value.strip(BLANKS)


def id_node(ids: pa.Array) -> pa.Array:
    """User and anonymous ids as they link: trimmed of :data:`BLANKS` (``" u-42 "`` is
    ``u-42``), unless nothing else is left. Ids are stored as given; the map keeps every
    spelling seen, so events still join it exactly."""
    trimmed = pc.utf8_trim(ids, characters=BLANKS)
    return pc.if_else(pc.equal(trimmed, ""), ids, trimmed)


def trait(doc: Value, key: str, *, under: str | None = "traits") -> Value:
    """Normalised key ``key`` of a JSON object column (of its ``under`` member)."""
    text = doc.cast("string")
    if under is not None:
        text = _member(text, _path(under))
    return normalise(_member(text, _path(key)), key)


def _keyed(keys: Sequence[str]) -> dict[str, str]:
    return {f"k{i}": k for i, k in enumerate(keys)}


def sightings(events: Table, keys: Sequence[str] = ()) -> Table:
    """The distinct (anonymous_id, user_id, previous_id, alias, k0..kn) combinations on
    events with their first time ``ts`` (``k<i>``: the normalised value of ``keys[i]``
    in ``context.traits``)."""
    cols: dict[str, Value] = {"anonymous_id": events.anonymous_id, "user_id": events.user_id}
    for name, key in _keyed(keys).items():
        cols[name] = trait(events.context, key)
    rows = events.group_by(**cols).aggregate(ts=events.timestamp.min())
    return rows.mutate(previous_id=ibis.null("string"), alias=ibis.literal(False))


def sighting_schema(keys: Sequence[str] = ()) -> pa.Schema:
    """The Arrow schema of :func:`sightings` and :func:`call_sightings` rows, as
    :func:`resolve` and the stored ``sightings`` take them."""
    return pa.schema([("anonymous_id", pa.string()), ("user_id", pa.string()),
                      ("previous_id", pa.string()), ("alias", pa.bool_()),
                      *((name, pa.string()) for name in _keyed(keys)),
                      ("ts", pa.timestamp("us", tz="UTC"))])


def call_sightings(calls: Table, keys: Sequence[str] = ()) -> Table:
    """The same rows from the stored identify/alias calls (``traits.<key>`` of identify
    calls; an alias links ``previous_id`` to ``user_id``)."""
    alias = calls.kind == "alias"
    cols: dict[str, Value] = {"anonymous_id": ibis.ifelse(alias, ibis.null("string"), calls.anonymous_id),
                              "user_id": calls.user_id,
                              "previous_id": ibis.ifelse(alias, calls.previous_id, ibis.null("string")),
                              "alias": alias}
    for name, key in _keyed(keys).items():
        cols[name] = ibis.ifelse(alias, ibis.null("string"), trait(calls.traits, key, under=None))
    return calls.group_by(**cols).aggregate(ts=calls.timestamp.min())


def _column(t: pa.Table, name: str) -> pa.Array:
    return t.column(name).combine_chunks() if name in t.column_names else pa.nulls(t.num_rows, pa.string())


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected-component labels of ``n`` nodes under the edges ``a[i]``–``b[i]``."""
    graph = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


class _Order:
    """An ascending order of values (``order``: their indices in that order; ``rank``: each
    one's place in it), so that "the smallest" of any subset is a minimum of integers (no
    Python string is made per row)."""

    def __init__(self, order: np.ndarray) -> None:
        self.order = order.astype(np.int64)
        self.rank = np.empty(len(order), np.int64)
        self.rank[self.order] = np.arange(len(order))

    @classmethod
    def of(cls, values: pa.Array) -> _Order:
        """The ascending order of ``values``."""
        return cls(pc.sort_indices(values).to_numpy())

    def smallest(self, labels: np.ndarray, members: np.ndarray, size: int) -> np.ndarray:
        """Per label (0..size-1), the member (an index into the values) that comes first,
        -1 where a label has none; ``labels[i]`` is ``members[i]``'s label."""
        none = len(self.order)
        if not none:
            return np.full(size, -1, np.int64)
        first = np.full(size, none, np.int64)
        np.minimum.at(first, labels, self.rank[members])
        return np.where(first < none, self.order[np.minimum(first, none - 1)], -1)


def resolve(rows: pa.Table, keys: Sequence[str] = ()) -> pa.Table:
    """The identifier → person map (:data:`PERSONS`) of sighting rows (the union of
    :func:`sightings` and :func:`call_sightings`, as Arrow)."""
    return resolve_rows(rows, keys)[0]


def _codes(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The distinct values (nulls left out) and each row's index among them (-1: null)."""
    enc = values.dictionary_encode()
    return enc.dictionary, enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _first_present(columns: Sequence[np.ndarray]) -> np.ndarray:
    """Per row, the first of ``columns`` that is not -1 (else -1)."""
    out = np.full(len(columns[0]), -1, np.int64)
    for c in reversed(columns):
        out = np.where(c >= 0, c, out)
    return out


def resolve_rows(rows: pa.Table, keys: Sequence[str] = ()) -> tuple[pa.Table, pa.Array]:
    """:func:`resolve`'s map and, per sighting row, its identity component."""
    names = _keyed(keys)
    prefixes = [chr(0xE000 + i) for i in range(len(names) + 1)]  # 0: ids; i: keys[i - 1]
    size = rows.num_rows

    # Nodes, numbered: ids as they link (one namespace), then each key's values. A node's
    # name is its namespace's prefix and its value; every choice below is of a number.
    raw_ids = [_column(rows, c).cast(pa.string()) for c in ("anonymous_id", "user_id", "previous_id")]
    spelled, spelling = _codes(pa.concat_arrays(raw_ids))
    id_values, of_node = _codes(id_node(spelled))  # the node of each spelling seen
    ids = np.where(spelling >= 0, of_node[np.maximum(spelling, 0)] if len(of_node) else -1, -1)
    anon, user, prev = ids[:size], ids[size:2 * size], ids[2 * size:]
    values, kind_blocks, key_nodes = [id_values], [np.zeros(len(id_values), np.int64)], []
    for i, name in enumerate(names):
        key_values, code = _codes(_column(rows, name).cast(pa.string()))
        offset = sum(len(v) for v in values)
        key_nodes.append(np.where(code >= 0, code + offset, -1))
        values.append(key_values)
        kind_blocks.append(np.full(len(key_values), i + 1, np.int64))
    value = pa.concat_arrays(values)
    kind_of = np.concatenate(kind_blocks)
    nodes = pa.concat_arrays([pc.binary_join_element_wise(prefixes[k], v, "")
                              for k, v in enumerate(values)])
    n = len(nodes)
    everyone = np.arange(n, dtype=np.int64)
    is_user = np.zeros(n, bool)
    is_user[user[user >= 0]] = True
    main = np.where(user >= 0, user, anon)
    alias_flag = (_column(rows, "alias").fill_null(False) if "alias" in rows.column_names
                  else pa.array(np.zeros(size, bool))).to_numpy(zero_copy_only=False).astype(bool)
    ts = rows.column("ts").combine_chunks().cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())

    # Links as (a, b, time, alias?): ids seen together, key values to their id, aliases.
    ia = np.concatenate([anon, prev, *key_nodes])
    ib = np.concatenate([user, user, *[main] * len(key_nodes)])
    no = np.zeros(size, bool)
    strong = np.concatenate([no, alias_flag, *[no] * len(key_nodes)])
    t_link = np.tile(ts.to_numpy(zero_copy_only=False), 2 + len(key_nodes))
    keep = (ia >= 0) & (ib >= 0) & (ia != ib)
    ia, ib, strong, t_link = ia[keep], ib[keep], strong[keep], t_link[keep]
    # Node names sort by namespace, then value: one sort of the values gives both orders.
    by_value = _Order.of(value)
    by_node = _Order(np.lexsort((by_value.rank, kind_of)))

    # Identity components: every link counts. Named by their smallest node.
    full = _components(n, ia, ib)
    n_full = int(full.max()) + 1 if n else 0
    component = by_node.smallest(full, everyone, n_full)[full]
    first = _first_present([anon, user, prev, *key_nodes])
    row_component = nodes.take(pa.array(np.where(first >= 0, component[np.maximum(first, 0)]
                                                 if n else -1, -1), mask=first < 0))

    # Alias groups: the components of alias links that hold a user id.
    group = _components(n, ia[strong], ib[strong])
    n_groups = int(group.max()) + 1 if n else 0
    group_person = by_value.smallest(group[is_user], everyone[is_user], n_groups)
    grouped = group_person[group] >= 0

    # Clusters of the other identifiers, by the links among them.
    weak = ~strong
    free_free = weak & ~grouped[ia] & ~grouped[ib]
    cluster = _components(n, ia[free_free], ib[free_free])
    n_clusters = int(cluster.max()) + 1 if n else 0

    # Each cluster goes to the user group it was first linked with (time, then person id).
    one = weak & (grouped[ia] ^ grouped[ib])
    free_end = np.where(grouped[ia[one]], ib[one], ia[one])
    owner = group_person[group[np.where(grouped[ia[one]], ia[one], ib[one])]]
    chosen = np.full(n_clusters, -1, np.int64)
    if len(free_end):
        c = cluster[free_end]
        at = np.lexsort((by_value.rank[owner], t_link[one], c))
        c, owner = c[at], owner[at]
        firsts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
        chosen[c[firsts]] = owner[firsts]
    # Clusters linked to no user: named by their smallest anonymous id (else smallest value).
    free = ~grouped
    is_id = (kind_of == 0) & free
    by_id = by_value.smallest(cluster[is_id], everyone[is_id], n_clusters)
    by_any = by_value.smallest(cluster[free], everyone[free], n_clusters)
    named = np.where(chosen >= 0, chosen, np.where(by_id >= 0, by_id, by_any))
    person = np.where(grouped, group_person[group], named[cluster])

    # Key values are listed as they link; ids in every spelling seen, each with its node's
    # person, so that events (ids stored as given) join the map exactly.
    kinds = pa.array([*_ID_KINDS, *names.values()], pa.string())
    kind_code = np.where(kind_of == 0, np.where(is_user, 0, 1), kind_of + 1)
    keyed = np.flatnonzero(kind_of != 0)
    listed = np.concatenate([keyed, of_node]).astype(np.int64)
    return pa.table([
        kinds.take(kind_code[listed]),
        pa.concat_arrays([value.take(keyed), spelled]),
        value.take(person[listed]),
        nodes.take(component[listed])],
        schema=PERSONS), row_component


def with_person(events: Table, persons: Table) -> Table:
    """``events`` with a ``person`` column, from the identifier → person map ``persons``
    (:func:`resolve`, materialised)."""
    ids = persons.filter(persons.kind.isin(_ID_KINDS)).select(
        _pid=persons.identifier, _person=persons.person)
    key = ibis.coalesce(events.user_id, events.anonymous_id)
    joined = events.left_join(ids, key == ids._pid)
    return joined.mutate(person=ibis.coalesce(joined._person, key)).drop("_pid", "_person")

