"""Who is who, kept fresh: the identity part of a refresh (the part of
:class:`~microjourney.workspace_refresh.Refresh` that resolves ``sightings`` and
``persons``; see docs/identity.md).

New events and identify/alias calls give new sightings; only the identity components
they touch are resolved again, from their stored sightings and the new ones: a
component's persons depend on its own sightings only. An erasure or a change of the
identity keys resolves everything again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import duckdb
import ibis
import pyarrow as pa
import pyarrow.compute as pc
from ibis.expr.types import Table

from .identity import call_sightings, id_node, resolve_rows, sighting_schema, sightings
from .store.writer import quote_ident

if TYPE_CHECKING:
    from .engine.runtime import Runtime
    from .spec.model import Workspace as Spec

#: The kinds of identifiers that are ids (not shared keys).
IDS = ["user", "anonymous"]


class IdentityRefresh:
    """A mixin: the workspace gives the definitions, the store and the runtime."""

    spec: Spec
    run: Runtime
    db: Any
    con: duckdb.DuckDBPyConnection

    def _delete(self, name: str, where: str, params: list[Any] | None = None) -> None:
        """Delete the rows of derived table ``name`` that ``where`` (a constant) selects."""
        self.con.execute("DELETE FROM " + quote_ident(name) + " WHERE " + where, params or [])

    def _identity(self, old: dict[str, Any], marks: dict[str, int], *, incremental: bool,
                  diff: bool) -> set[str]:
        """Bring ``sightings`` and ``persons`` up to date (``incremental``: by the touched
        components); the persons whose identifiers changed, before and after (after a
        whole resolution, only with ``diff``: the other tables are kept)."""
        keys = self.spec.identity.keys
        calls = ibis.duckdb.from_connection(self.con).table("identities")
        schema = sighting_schema(keys)
        e = self.run.events()
        if incremental:
            e = e.filter(e.seq > int(old["marks"].get("seq", 0)))
            calls = calls.filter(calls.seq > int(old["marks"].get("call_seq", 0)))
        parts = [t.select(*schema.names).to_pyarrow().cast(schema)
                 for t in (sightings(e, keys), call_sightings(calls, keys))]
        # Each side is one row per combination already (its engine grouped it); only rows
        # of both can repeat one. (Two queries: over a lake the calls stay in the store.)
        rows = pa.concat_tables(parts)
        if all(part.num_rows for part in parts):
            rows = _grouped(rows)
        if not incremental:
            before = self._person_map() if diff else None
            self._save_identity(rows, None)
            if before is None:
                return set()
            return _moved(before, self._person_map())
        rows = self._novel(rows) if rows.num_rows else rows
        if not rows.num_rows:
            return set()
        components = self._components_of(rows, keys)
        touched = self.run.save("_components", ibis.memtable(
            pa.table({"c": pa.array(components, pa.string())})), temp=True)
        s = self.db.table("sightings")
        kept = s.semi_join(touched, s.component == touched.c).drop("component")
        kept = kept.to_pyarrow().cast(schema)
        p = self.db.table("persons")
        was = set(p.semi_join(touched, p.component == touched.c).person.to_pyarrow().to_pylist())
        subset = _grouped(pa.concat_tables([kept, rows]))
        now = self._save_identity(subset, components)
        self.run.drop("_components")
        return was | set(now)

    def _novel(self, rows: pa.Table) -> pa.Table:
        """The sighting ``rows`` (one per combination) that tell something new: a
        combination of identifiers not stored yet, or seen earlier than stored. The others
        (a returning visitor's next events) link nothing new, so their components need not
        be resolved again."""
        name = "_new_sightings"
        self.con.register(name, rows)
        try:
            new, s = self.db.table(name), self.db.table("sightings")
            same = [new[c].identical_to(s[c]) for c in rows.column_names if c != "ts"]
            return new.anti_join(s, [*same, s.ts <= new.ts]).to_pyarrow().cast(rows.schema)
        finally:  # identifiers: never left registered (an erasure must not leave them)
            self.con.unregister(name)

    def _components_of(self, rows: pa.Table, keys: list[str]) -> list[str]:
        """The stored identity components that the sighting ``rows`` touch."""
        ids = pc.unique(pa.concat_arrays([rows.column(c).combine_chunks()
                                          for c in ("anonymous_id", "user_id", "previous_id")]
                                         ).drop_null())
        # Ids under kind "" (no key is named so): a join on NULL keys is far slower.
        probe = [{"p_kind": "", "p_value": v} for v in pc.unique(id_node(ids)).to_pylist()]
        for i, key in enumerate(keys):
            probe += [{"p_kind": key, "p_value": v}
                      for v in pc.unique(rows.column(f"k{i}").combine_chunks().drop_null()).to_pylist()]
        if not probe:
            return []
        q = ibis.memtable(pa.Table.from_pylist(probe, schema=pa.schema(
            [("p_kind", pa.string()), ("p_value", pa.string())])))
        p = self.db.table("persons")
        # Ids are compared as they link (trimmed), whatever spelling the map holds.
        node = ibis.ifelse(p.identifier.strip() == "", p.identifier, p.identifier.strip())
        is_id = p.kind.isin(IDS)
        hit = p.inner_join(q, [ibis.ifelse(is_id, "", p.kind) == q.p_kind,
                               ibis.ifelse(is_id, node, p.identifier) == q.p_value])
        return sorted(set(hit.select("component").distinct().to_pyarrow().column(0).to_pylist()))

    def _save_identity(self, rows: pa.Table, components: list[str] | None) -> list[str]:
        """Resolve ``rows`` and store them and their map: replacing the ``components``
        given, or everything (None). Returns the persons of the new map (of the
        ``components`` replaced; none when everything was)."""
        keys = self.spec.identity.keys
        persons, row_components = resolve_rows(rows, keys)
        stored = rows.append_column("component", row_components)
        for name, table in (("sightings", stored), ("persons", persons)):
            literal = ibis.memtable(table)
            if components is None:
                self.run.save(name, literal)
            else:
                self._delete(name, "component IN (SELECT c FROM _components)")
                self.db.insert(name, literal)
            # Ibis keeps a literal table registered until the process ends; these hold
            # identifiers, which an erasure must not leave behind.
            _unregister(self.run, literal)
        return [] if components is None else pc.unique(persons.column("person")).to_pylist()

    def _person_map(self) -> pa.Table:
        p = self.db.table("persons")
        return p.select("kind", "identifier", "person").to_pyarrow()


def _grouped(rows: pa.Table) -> pa.Table:
    """Sighting rows merged: one per combination, with its first time."""
    keys = [c for c in rows.column_names if c != "ts"]
    out = rows.group_by(keys, use_threads=False).aggregate([("ts", "min")])
    return out.rename_columns([*keys, "ts"]).select(rows.column_names)


def _moved(before: pa.Table, after: pa.Table) -> set[str]:
    """Persons (before and after) of the identifiers whose person changed, appeared or
    went."""
    key = ["kind", "identifier"]
    j = before.join(after, key, join_type="full outer", left_suffix="_b", right_suffix="_a")
    b, a = j.column("person_b"), j.column("person_a")
    differ = pc.invert(pc.fill_null(pc.equal(b, a), False))
    moved = j.filter(differ)
    return {p for p in moved.column("person_b").to_pylist() + moved.column("person_a").to_pylist()
            if p is not None}


def _unregister(run: Runtime, literal: Table) -> None:
    name = literal.op().name  # type: ignore[attr-defined]
    con = getattr(run, "con", None)
    if isinstance(con, duckdb.DuckDBPyConnection):
        con.unregister(name)
    else:
        run.drop(name)


__all__ = ["IDS", "IdentityRefresh"]
