"""Keeping the derived tables fresh (the part of the Python API that
:class:`~microjourney.workspace.Workspace` inherits; the tables are declared in
:mod:`microjourney.engine.derived`).

A refresh takes in what changed since the last one, as its *state* (in the store's
``meta``) records it: the last event and call sequence numbers, the erasures, the end of
the data (``as_of``) and a fingerprint of each definition the tables depend on.

* **Who is who.** New events and calls give new sightings; only the identity components
  they touch are resolved again (a component's persons depend on its own sightings
  only). An erasure or a change of identity keys resolves everything again.
* **Which persons.** Those whose component was resolved again, those with new events,
  and those with an open attempt whose timeout the new end of the data passed (or no
  longer passes, after an erasure). Their rows of every ``person`` table are replaced
  from the point the change reaches (:mod:`microjourney.workspace_person_refresh`):
  their whole history only when their identifiers moved, an erasure took some of their
  events, or an event came in earlier than their last one kept.
* **Which moments.** A moment whose definition changed has its tagged rows and attempts
  computed again for everyone; frictions then too (an event inside two attempts' spans
  goes to the innermost, whatever the moment, so frictions are not separable by moment),
  as after a change of detector settings.
* **The rest** (``whole`` tables and views) is computed again from those tables.

On the store, all of it is one transaction: a refresh that fails leaves the previous
tables readable and the state as it was, and the next refresh does the work again. A
workspace over a lake (DuckDB in memory, Spark) rebuilds in full, for its session.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
from ibis.expr.types import Table, Value

from . import engine
from .engine.backend import epoch_ms
from .engine.derived import DERIVED
from .errors import QueryError, WorkspaceError
from .identity import with_person
from .store.db import transaction
from .workspace_friction_refresh import FrictionRefresh
from .workspace_identity import IdentityRefresh
from .workspace_person_refresh import TEMPS, TRIES_ROWS, PersonRefresh, last_cut

if TYPE_CHECKING:
    from .engine.runtime import Runtime
    from .spec.model import Workspace as Spec

#: The layout of the derived tables; a store derived by another layout is rebuilt.
LAYOUT = 11
STATE = "refresh_state"
_VALUES = "_refresh_values"
_MOVED = "_moved"


@dataclass(frozen=True)
class Refreshed:
    """What a refresh did: ``mode`` ``none`` (fresh already), ``incremental`` or ``full``;
    the ``persons`` recomputed (None: all), the ``events`` taken in, the ``seconds`` it
    took, and the end of the data (``as_of_ms``)."""

    mode: str
    persons: int | None = 0
    events: int = 0
    seconds: float = 0.0
    as_of_ms: int = 0

    def __bool__(self) -> bool:
        return self.mode != "none"


class Refresh(IdentityRefresh, PersonRefresh, FrictionRefresh):
    """A mixin: the workspace gives the definitions, the store and the runtime."""

    spec: Spec
    run: Runtime
    db: Any
    con: duckdb.DuckDBPyConnection
    _fresh: bool
    #: A reader (:meth:`~microjourney.workspace.Workspace.reader`): never refreshes.
    _reading = False
    #: Whether the friction tables are wanted although the last refresh did not derive
    #: them (a friction analysis asked, or ``refresh(frictions=True)``).
    _with_frictions = False
    #: During an incremental refresh on the store: the definitions its statements are
    #: compiled for (:meth:`_write`).
    _compiling: str | None = None

    # -- what changed -------------------------------------------------------
    def _marks(self) -> dict[str, int]:
        """Where the stored data stands: events (count, last ``seq``), identify/alias calls
        (count, last ``seq``) and erasures. Events and calls are only appended, except by
        an erasure."""
        e = self.run.events()
        row = e.aggregate(n=e.count(), last=e.seq.max()).to_pyarrow().to_pylist()[0]
        calls, last_call, erased = self.con.execute(
            "SELECT count(*), max(seq), (SELECT count(*) FROM erasures) FROM identities").fetchall()[0]
        return {"events": int(row["n"]), "seq": int(row["last"] or 0), "calls": int(calls),
                "call_seq": int(last_call or 0), "erasures": int(erased)}

    def _definitions(self) -> dict[str, Any]:
        """A fingerprint of each definition the derived tables depend on."""
        def digest(text: str) -> str:
            return hashlib.sha256(text.encode()).hexdigest()[:16]

        moments = {name: digest(m.model_dump_json()) for name, m in self.spec.moments.items()}
        versions = ",".join(f"{d.KIND}:{d.VERSION}" for d in engine.frictions.DETECTORS)
        return {"layout": LAYOUT, "keys": list(self.spec.identity.keys), "moments": moments,
                "frictions": digest(f"{self.spec.frictions.model_dump_json()}:{versions}:"
                                    f"{json.dumps(moments, sort_keys=True)}")}

    def _state(self) -> dict[str, Any] | None:
        text = self.run.get_meta(STATE)
        state = json.loads(text) if text else None
        if not state or state.get("definitions", {}).get("layout") != LAYOUT:
            return None
        return state

    def _tables(self) -> set[str]:
        return self.run.tables()

    # -- the refresh ----------------------------------------------------------
    def refresh(self, *, force: bool = False, frictions: bool = False) -> Refreshed:
        """Bring the derived tables up to date with the stored events, calls and
        definitions, recomputing only what changed (``force``: everything); see the
        module docstring. The result is false when nothing had changed.

        The friction tables are derived the first time something reads them (a friction
        analysis, the report, ``serve``) or when ``frictions`` is true, and kept up to date
        by every refresh from then on."""
        if frictions and not self._with_frictions:
            self._with_frictions, self._fresh = True, False
        if not self.spec.moments:
            raise QueryError(f"no moments defined yet: declare journeys and moments in "
                             f"{getattr(self, 'spec_path', 'microjourney.yaml')} "
                             "(see docs/workspace.md)", code="query/no-moments")
        if self._reading:  # as the last refresh left the tables
            if self._state() is None:
                raise WorkspaceError("the derived tables have not been refreshed yet; the "
                                     "server's next refresh makes them", code="workspace/not-refreshed")
            return Refreshed("none", as_of_ms=self.as_of_ms())
        if self._fresh and not force:
            return Refreshed("none", as_of_ms=self.as_of_ms())
        return self._refresh(force=force)

    def _refresh_timeline(self) -> None:
        """The timeline (and who is who) up to date, with or without moments."""
        if not self._fresh and not self._reading:
            self._refresh(moments=bool(self.spec.moments))

    def catch_up(self) -> Refreshed:
        """Take in what another connection stored (the server's collector): every derived
        table of the moments there are, frictions included, or who is who and the timeline
        without moments."""
        self._fresh, self._with_frictions = False, True
        if not self.spec.moments:
            return self._refresh(moments=False)
        return self.refresh()

    def refreshed_at(self) -> float | None:
        """When (epoch seconds) the derived tables last took in the stored data: the
        start of the refresh that made them, as committed in the state (None before any
        refresh). An answer from them is as stale as ``now - refreshed_at``. For a
        workspace that refreshes before each analysis (not a reader), they are current
        while fresh: now."""
        if self._fresh and not self._reading:
            return time.time()
        state = self._state()
        return float(state["at"]) if state and "at" in state else None

    def tables_read(self) -> tuple[str | None, float | None]:
        """The derived tables a reader reads now: their version (a digest of what the
        refresh that made them took in — marks, definitions, end of the data; None before
        any) and :meth:`refreshed_at`. A refresh that finds nothing new keeps the version."""
        state = self._state()
        if state is None:
            return None, None
        made = {k: v for k, v in state.items() if k != "at"}
        version = hashlib.sha256(json.dumps(made, sort_keys=True).encode()).hexdigest()[:16]
        return version, self.refreshed_at()

    def store_read(self) -> str:
        """A version of the store's own tables as an analysis of them reads them now (the
        data-quality and quarantine analyses): the stored data's marks, what the batches
        received and the quarantine's rows; any ingest, collector commit, erasure or
        quarantine deletion changes it. A few aggregate reads, no scan of the events."""
        received, slots, rows, last = self.con.execute(
            "SELECT (SELECT coalesce(sum(accepted + duplicates + rejected + withheld), 0) FROM batches), "
            "(SELECT count(*) FROM batches), (SELECT count(*) FROM quarantine), "
            "(SELECT max(received_at) FROM quarantine)").fetchall()[0]
        made = {"marks": self._marks(), "batches": [int(received), int(slots)],
                "quarantine": [int(rows), str(last)], "keys": list(self.spec.identity.keys)}
        return hashlib.sha256(json.dumps(made, sort_keys=True).encode()).hexdigest()[:16]

    def _wanted(self, current: dict[str, Any] | None, moments: bool = True) -> dict[str, Any]:
        """The definitions the tables are to be derived for, given the ``current`` state."""
        want = self._definitions()
        if not moments:
            return {**want, "moments": {}, "frictions": ""}
        if not (self._with_frictions or (current and current["definitions"]["frictions"])):
            return {**want, "frictions": ""}  # derived on first use (workspace_friction_refresh)
        return want

    def prepare(self) -> bool:
        """Compile the statements of an incremental refresh before the first refresh that
        needs them (a server, when it starts: compiling them takes a few seconds at 10M
        events, which would make the answers after the first events that much staler). It
        runs an incremental refresh of nothing and rolls it back. Whether it did: only on
        the store, with moments, on tables derived for the definitions there are (else the
        next refresh rebuilds what they change, compiling as it goes)."""
        from .engine.runtime import Store

        current = self._state()
        if current is None or not isinstance(self.run, Store) or not self.spec.moments:
            return False
        marks, want = self._marks(), self._wanted(current)
        if current["definitions"] != want:
            return False
        # As if the tables had taken in every stored event and call (events stored since
        # are not new to it) but under another count, at an end of the data a millisecond
        # earlier: the statements run on next to nothing, and they are those a live refresh
        # runs (new events move the end of the data, which ages open attempts).
        old = {**current, "marks": {**marks, "events": -1}, "as_of": self._as_of_now() - 1}
        self.con.execute("BEGIN TRANSACTION")
        try:
            self._rebuild(old, marks, want)
        finally:
            self.con.execute("ROLLBACK")
            self.run.forget_compiled()  # the rollback unregistered their literal tables
        return True

    def _refresh(self, *, force: bool = False, moments: bool = True) -> Refreshed:
        started = time.perf_counter()
        at = time.time()  # what was stored by now is in the tables this refresh makes
        marks, current = self._marks(), self._state()
        want = self._wanted(current, moments)
        state = None if force else current
        if state and state["marks"] == marks and state["definitions"] == want:
            self.run.set_meta(STATE, json.dumps({**state, "at": at}))
            self._fresh = True
            return Refreshed("none", as_of_ms=int(state["as_of"]))
        try:
            with self._writing():
                done = self._rebuild(state, marks, want)
                self.run.set_meta(STATE, json.dumps({"marks": marks, "definitions": want,
                                                     "as_of": done.as_of_ms, "at": at}))
        except BaseException:
            self.run.forget_compiled()
            raise
        self._fresh = True
        self._as_of = done.as_of_ms
        return Refreshed(done.mode, done.persons, done.events,
                         round(time.perf_counter() - started, 3), done.as_of_ms)

    def _writing(self) -> AbstractContextManager[None]:
        """One transaction on the store; none on a lake (its tables are the session's)."""
        from .engine.runtime import Store

        return transaction(self.con) if isinstance(self.run, Store) else nullcontext()

    def _rebuild(self, state: dict[str, Any] | None, marks: dict[str, int],
                 want: dict[str, Any]) -> Refreshed:
        from .engine.runtime import Store

        # On the store, each statement is compiled once per definitions (Store.run_compiled)
        # and its SQL run again; what changes from one refresh to the next is read from
        # tables (the values below, the persons whose identifiers moved).
        on_store = isinstance(self.run, Store)
        self._compiling = json.dumps(want, sort_keys=True) if on_store else None
        try:
            return self._rebuild_compiled(state, marks, want, on_store)
        finally:  # on failure, the rollback drops the temporary tables, _refresh the rest
            self._compiling = None
            with suppress(duckdb.Error):  # the identifiers that moved, held in memory
                self.con.unregister(_MOVED)

    def _rebuild_compiled(self, state: dict[str, Any] | None, marks: dict[str, int],
                          want: dict[str, Any], on_store: bool) -> Refreshed:
        if (state is not None and state["marks"] == marks
                and {**state["definitions"], "frictions": want["frictions"]} == want):
            # Only the friction tables are new (their first use): from the tables there are.
            self._frictions(False)
            return Refreshed("incremental", 0, 0, 0.0, int(state["as_of"]))
        present = self._tables()
        incremental = (state is not None and on_store
                       and {"persons", "sightings", "timeline", "person_last"} <= present)
        if not incremental:
            self._drop_derived(present)
            present = set()
        old = state or {"marks": {}, "definitions": {}, "as_of": 0}
        moved = self._identity(old, marks, diff=incremental,
                               incremental=incremental
                               and old["definitions"].get("keys") == want["keys"]
                               and old["marks"].get("erasures") == marks["erasures"])
        as_of = self._as_of_now()
        new_events = marks["events"] - int(old["marks"].get("events", 0))
        if not on_store:  # a lake's session: the values as literals
            self._rebuild_all(want, as_of)
            return Refreshed("full", None, marks["events"], 0.0, as_of)
        since, before = int(old["marks"].get("seq", 0)), int(old["as_of"])
        self.con.execute("CREATE OR REPLACE TEMP TABLE " + _VALUES + " AS SELECT ?::BIGINT AS since_seq, "
                         "?::BIGINT AS as_of_ms, ?::BIGINT AS before_ms", [since, as_of, before])
        if not incremental:
            self._rebuild_all(want, self._values().as_of_ms.as_scalar())
            self.run.drop(_VALUES)
            return Refreshed("full", None, marks["events"], 0.0, as_of)
        self.con.register(_MOVED, pa.table({"person": pa.array(sorted(moved), pa.string())}))
        n = self._incremental(old, want, marks, present, as_of)
        for temp in (*TEMPS, _VALUES):
            self.run.drop(temp)
        return Refreshed("incremental", n, new_events, 0.0, as_of)

    def _rebuild_all(self, want: dict[str, Any], as_of: int | Value) -> None:
        self._full_timeline()
        if self.spec.moments:
            self._build_moment_tables(want, as_of)

    def _incremental(self, old: dict[str, Any], want: dict[str, Any], marks: dict[str, int],
                     present: set[str], as_of: int) -> int:
        """The incremental part of :meth:`_rebuild`; the number of persons recomputed."""
        erased = marks["erasures"] != old["marks"].get("erasures")
        moments = (bool(self.spec.moments)
                   and {"tagged", "attempts", "tag_last", "funnel_tries"} <= present)
        aged = moments and as_of != int(old["as_of"])
        n = self._affected_persons(erased=erased, aged=aged)
        changed = {m for m in set(want["moments"]) | set(old["definitions"].get("moments", {}))
                   if want["moments"].get(m) != old["definitions"].get("moments", {}).get(m)}
        if changed and moments:
            self._rebuild_moments(changed)
        whole = self._whole_persons(erased=erased, everyone=bool(changed))
        self._person_timeline(whole)
        if not self.spec.moments:
            return n
        if not moments:  # the moment tables are new: made for everyone
            self._build_moment_tables(want)
            return n
        self._person_moments(whole)
        if want["frictions"]:  # not derived until first used
            frictions_changed = want["frictions"] != old["definitions"].get("frictions")
            if (changed or frictions_changed
                    or not {"friction_rows", "friction_attempt_rows", "friction_waits"} <= present):
                self._frictions(False)
            else:
                self._reach()
                self._frictions(True)
        return n

    def _rebuild_moments(self, changed: set[str]) -> None:
        """The tagged rows, attempts, ``tag_last`` and funnel tries of every person in the
        ``changed`` moments (the affected persons' are made again after)."""
        gone = sorted(changed)
        for name in ("tagged", "attempts", "tag_last", "funnel_tries"):
            self._delete(name, "list_contains(?, moment)", [gone])
        live = sorted(m for m in changed if m in self.spec.moments)
        if not live:
            return
        settings = engine.moment_settings(self.spec)
        cut = engine.segments(engine.tag(self._events_of(None), self.spec, live))
        self.db.insert("tagged", cut.order_by(["t_ms", "seq", "rank"]))
        t = self.db.table("tagged")
        t = t.filter(t.moment.isin(live))
        self.db.insert("attempts", engine.with_contacts(
            engine.attempts(t, self.run.events(), self._values().as_of_ms.as_scalar()), t, settings))
        self.db.insert("tag_last", last_cut(t))
        self.db.insert("funnel_tries", engine.kept_tries(t, self.spec, live))

    def _values(self) -> Table:
        """This refresh's values (``since_seq``, ``as_of_ms``, ``before_ms``), one row."""
        return self.db.table(_VALUES)

    def _write(self, label: str, into: str, how: str, build: Callable[[], Table]) -> None:
        """``build()``'s rows into ``into`` (``how``: ``table``, ``temp`` or a ``view`` of
        it). On the store, compiled once per definitions and ``label``."""
        if self._compiling is not None:
            self.run.run_compiled((self._compiling, label), build, into, how)  # type: ignore[attr-defined]
        elif how == "view":
            self.run.view(into, build())
        else:
            self.run.save(into, build(), temp=how == "temp")

    # -- the persons' tables --------------------------------------------------
    def _events_of(self, affected: Table | None, since: int | Value = 0) -> Table:
        """The events (with their ``person``) of the ``affected`` persons; all when None.

        Before their timeline is replaced: their events are those its rows hold (under
        the persons they had, also affected when a person changed) and the events stored
        after sequence number ``since``. They are fetched by ``seq``, which the scan of the
        wide events table filters before it reads their properties."""
        persons, events = self.db.table("persons"), self.run.events()
        if affected is None:
            return with_person(events, persons)
        t = self.db.table("timeline")  # as the last refresh left it
        t = t.semi_join(affected, t.person == affected.person).select("seq")
        seqs = t.union(events.filter(events.seq > since).select(seq=events.seq.cast("int64")))
        return with_person(events.filter(events.seq.isin(seqs.seq)), persons)

    def _as_of_now(self) -> int:
        e = self.run.events()
        return int(epoch_ms(e.timestamp.max()).execute() or 0)

    def _build_moment_tables(self, want: dict[str, Any], as_of: int | Value | None = None) -> None:
        """Every person's tagged rows and attempts (and ``tag_last`` on the store), then
        the friction tables if wanted; in time order, so that an incremental refresh can
        skip the older row groups."""
        if as_of is None:
            as_of = self._values().as_of_ms.as_scalar()
        settings = engine.moment_settings(self.spec)

        def tagged() -> Table:
            t = engine.segments(engine.tag(self._events_of(None), self.spec))
            return t.order_by(["t_ms", "seq", "rank"])

        def attempts() -> Table:
            t = self.db.table("tagged")
            a = engine.with_contacts(engine.attempts(t, self.run.events(), as_of), t, settings)
            return a.order_by(["start_ts", "attempt_id"])

        self._write("all:tagged", "tagged", "table", tagged)
        self._write("all:attempts", "attempts", "table", attempts)
        if self._compiling is not None:
            # The store: the statement an incremental refresh runs, over every tagged row. A
            # lake's session keeps no tries: it derives every table again each time, so its
            # funnels follow the tries as asked instead (registry/funnel.py).
            self.con.execute("CREATE OR REPLACE TEMP VIEW " + TRIES_ROWS + " AS SELECT moment, "
                             "person, seq, t_ms, step FROM tagged")
            self._kept_tries("funnel_tries", "table")
            self.con.execute("DROP VIEW " + TRIES_ROWS)
            # Where the next refresh starts from.
            self._write("all:tag_last", "tag_last", "table", lambda: last_cut(self.db.table("tagged")))
        if want["frictions"]:  # not derived until first used
            self._frictions(False)

    def _full_timeline(self) -> None:
        """Every person's timeline, in time order (and ``person_last`` on the store)."""
        self._write("all:timeline", "timeline", "table",
                    lambda: engine.timeline(self._events_of(None)).order_by(["t_ms", "seq"]))
        if self._compiling is not None:
            self._write("all:person_last", "person_last", "table", lambda: (
                t := self.db.table("timeline")).filter(t.next_t.isnull()))

    def _drop_derived(self, present: set[str]) -> None:
        """Drop every derived table and view (a full rebuild, or an older layout)."""
        for t in DERIVED:
            if t.name in present:
                self.run.drop_any(t.name)

    # -- the end of the data ----------------------------------------------------
    _as_of: int | None

    def as_of_ms(self) -> int:
        """The end of the data: the time of the last event (ms), which ages attempts. Kept
        while the derived tables are fresh (every analysis's result names it: on Spark
        each look costs a job)."""
        if self._reading:  # the last refresh's, as committed
            state = self._state()
            return int(state["as_of"]) if state else 0
        if self._fresh and self._as_of is not None:
            return self._as_of
        value = self._as_of_now()
        self._as_of = value if self._fresh else None
        return value


__all__ = ["LAYOUT", "Refresh", "Refreshed"]
