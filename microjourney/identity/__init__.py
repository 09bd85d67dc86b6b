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
           "resolve", "resolve_rows", "sightings", "trait", "with_person"]

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


def _present(values: np.ndarray) -> np.ndarray:
    """Which members of an object array are not None."""
    return np.not_equal(values, None)


def _smallest(labels: np.ndarray, values: pa.Array, size: int) -> np.ndarray:
    """Per label (0..size-1), the smallest of ``values`` (None where a label has none)."""
    out = np.full(size, None, dtype=object)
    if len(labels):
        t = pa.table({"g": labels, "v": values}).group_by("g").aggregate([("v", "min")])
        out[t.column("g").to_numpy()] = t.column("v_min").to_numpy(zero_copy_only=False)
    return out


def resolve(rows: pa.Table, keys: Sequence[str] = ()) -> pa.Table:
    """The identifier → person map (:data:`PERSONS`) of sighting rows (the union of
    :func:`sightings` and :func:`call_sightings`, as Arrow)."""
    return resolve_rows(rows, keys)[0]


def resolve_rows(rows: pa.Table, keys: Sequence[str] = ()) -> tuple[pa.Table, pa.Array]:
    """:func:`resolve`'s map and, per sighting row, its identity component."""
    names = _keyed(keys)
    prefixes = [chr(0xE000 + i) for i in range(len(names) + 1)]  # 0: ids; i: keys[i - 1]

    def node(kind: int, values: pa.Array) -> pa.Array:
        return pc.binary_join_element_wise(prefixes[kind], values.cast(pa.string()), "")

    raw_ids = [_column(rows, c).cast(pa.string()) for c in ("anonymous_id", "user_id", "previous_id")]
    anon, user, prev = (node(0, id_node(ids)) for ids in raw_ids)
    main = pc.coalesce(user, anon)
    alias_flag = (_column(rows, "alias").fill_null(False) if "alias" in rows.column_names
                  else pa.array(np.zeros(rows.num_rows, bool)))
    ts = rows.column("ts").combine_chunks().cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    key_nodes = [node(i + 1, _column(rows, name)) for i, name in enumerate(names)]

    # Links as (a, b, time, alias?): ids seen together, key values to their id, aliases.
    a_parts, b_parts = [anon, prev, *key_nodes], [user, user, *[main] * len(key_nodes)]
    no = pa.array(np.zeros(rows.num_rows, bool))
    alias_parts = [no, alias_flag, *[no] * len(key_nodes)]
    a, b = pa.concat_arrays(a_parts), pa.concat_arrays(b_parts)
    is_alias = pa.concat_arrays(alias_parts)
    t_link = pa.concat_arrays([ts] * len(a_parts))
    keep = pc.and_(pc.and_(pc.is_valid(a), pc.is_valid(b)), pc.not_equal(a, b).fill_null(False))
    a, b, is_alias, t_link = (pc.filter(x, keep) for x in (a, b, is_alias, t_link))

    nodes = pc.unique(pa.concat_arrays([anon, user, prev, *key_nodes]).drop_null())
    n = len(nodes)
    ia = pc.index_in(a, nodes).to_numpy(zero_copy_only=False).astype(np.int64)
    ib = pc.index_in(b, nodes).to_numpy(zero_copy_only=False).astype(np.int64)
    strong = is_alias.to_numpy(zero_copy_only=False).astype(bool)
    t_link = t_link.to_numpy(zero_copy_only=False)
    kind_of = pc.index_in(pc.utf8_slice_codeunits(nodes, 0, 1), pa.array(prefixes)).to_numpy(
        zero_copy_only=False)
    value = pc.utf8_slice_codeunits(nodes, 1)
    users = pc.unique(user.drop_null())
    is_user = pc.is_in(nodes, value_set=users).to_numpy(zero_copy_only=False)

    # Identity components: every link counts. Named by their smallest node.
    full = _components(n, ia, ib)
    n_full = int(full.max()) + 1 if n else 0
    component = _smallest(full, nodes, n_full)[full] if n else np.array([], dtype=object)
    first_node = pc.coalesce(anon, user, prev, *key_nodes)
    at = pc.index_in(first_node, nodes)
    valid = pc.is_valid(at).to_numpy(zero_copy_only=False)
    row_component = np.full(len(at), None, dtype=object)
    if n:
        idx = at.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        row_component[valid] = component[idx[valid]]

    # Alias groups: the components of alias links that hold a user id.
    group = _components(n, ia[strong], ib[strong])
    n_groups = int(group.max()) + 1 if n else 0
    group_person = _smallest(group[is_user], pc.filter(value, pa.array(is_user)), n_groups)
    grouped = _present(group_person[group])

    # Clusters of the other identifiers, by the links among them.
    weak = ~strong
    free_free = weak & ~grouped[ia] & ~grouped[ib]
    cluster = _components(n, ia[free_free], ib[free_free])
    n_clusters = int(cluster.max()) + 1 if n else 0
    person = np.where(grouped, group_person[group], None)

    # Each cluster goes to the user group it was first linked with (time, then person id).
    one = weak & (grouped[ia] ^ grouped[ib])
    free_end = np.where(grouped[ia[one]], ib[one], ia[one])
    owner = np.where(grouped[ia[one]], ia[one], ib[one])
    chosen = np.full(n_clusters, None, dtype=object)
    if len(free_end):
        links = pa.table({"c": cluster[free_end], "t": t_link[one],
                          "p": pa.array(group_person[group[owner]], pa.string())})
        links = links.take(pc.sort_indices(links, [("c", "ascending"), ("t", "ascending"),
                                                   ("p", "ascending")]))
        c = links.column("c").to_numpy()
        first = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
        chosen[c[first]] = links.column("p").to_numpy(zero_copy_only=False)[first]
    # Clusters linked to no user: named by their smallest anonymous id (else smallest value).
    free = ~grouped
    is_id = (kind_of == 0) & free
    by_id = _smallest(cluster[is_id], pc.filter(value, pa.array(is_id)), n_clusters)
    by_any = _smallest(cluster[free], pc.filter(value, pa.array(free)), n_clusters)
    named = np.where(_present(chosen), chosen, np.where(_present(by_id), by_id, by_any))
    person = np.where(grouped, person, named[cluster])

    kinds = np.array([None, *names.values()], dtype=object)[kind_of]
    kinds = np.where(kind_of == 0, np.where(is_user, _ID_KINDS[0], _ID_KINDS[1]), kinds)
    # Key values are listed as they link; ids in every spelling seen, each with its node's
    # person, so that events (ids stored as given) join the map exactly.
    spelled = pc.unique(pa.concat_arrays(raw_ids).drop_null())
    of_node = pc.index_in(node(0, id_node(spelled)), nodes).to_numpy(zero_copy_only=False)
    keyed = np.flatnonzero(kind_of != 0)
    return pa.table([
        pa.array(np.concatenate([kinds[keyed], kinds[of_node]]), pa.string()),
        pa.concat_arrays([value.take(pa.array(keyed, pa.int64())), spelled]),
        pa.array(np.concatenate([person[keyed], person[of_node]]), pa.string()),
        pa.array(np.concatenate([component[keyed], component[of_node]]), pa.string())],
        schema=PERSONS), pa.array(row_component, pa.string())


def with_person(events: Table, persons: Table) -> Table:
    """``events`` with a ``person`` column, from the identifier → person map ``persons``
    (:func:`resolve`, materialised)."""
    ids = persons.filter(persons.kind.isin(_ID_KINDS)).select(
        _pid=persons.identifier, _person=persons.person)
    key = ibis.coalesce(events.user_id, events.anonymous_id)
    joined = events.left_join(ids, key == ids._pid)
    return joined.mutate(person=ibis.coalesce(joined._person, key)).drop("_pid", "_person")

