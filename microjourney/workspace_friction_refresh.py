"""The friction tables, kept fresh: the friction part of a refresh (the part of
:class:`~microjourney.workspace_refresh.Refresh` that derives ``friction_rows``,
``friction_attempt_rows``, ``friction_waits``, their baselines, views and summaries; see
docs/frictions.md).

They are derived on first use — a friction analysis, the report, or ``serve``, whose
background refresh keeps everything fresh — and kept fresh by every refresh from then
on: an analysis that reads no friction (a funnel, the scorecard) does not pay for
detecting them. The detectors read the timeline, tagged rows and attempts of the persons
a refresh recomputes (all, in a full rebuild); the baselines are then computed again over
every candidate. The judged rows and the summaries span every attempt: they are views,
computed when read, so that a refresh's work grows with what changed.
"""

from __future__ import annotations

from collections.abc import Callable

import ibis
import pyarrow as pa
from ibis.expr.types import Table

from . import engine
from .engine.backend import epoch_ms
from .engine.frictions.scope import FINISHED
from .workspace_person_refresh import RefreshPart, ms_time

_EVENTS = "_friction_events"
_FROM = "_friction_from"
_REACH = "_reach"
_WHOLE = "_whole"
_NEW = "_new_"


class FrictionRefresh(RefreshPart):
    """The friction tables' part of a refresh."""

    def _tables(self) -> set[str]: ...

    def _frictions(self, incremental: bool) -> None:
        """The friction tables (of the attempts the refresh's change reaches, when
        ``incremental``: see :meth:`_friction_scope`), then the baselines, the views and
        the summaries from all of them."""
        fr = engine.frictions
        table = self.db.table

        def write(label: str, into: str, how: str, build: Callable[[], Table]) -> None:
            self._write(("some:" if incremental else "all:") + label, into, how, build)

        # The spans, the scope and the events they hold are read by every detector:
        # computed once, then dropped. An incremental refresh's are small and stay in
        # memory; a full rebuild's go to the store file, compressed and evictable (the
        # scope of 10M events holds 1.1 GB in memory, 0.2 GB there), dropped before its
        # transaction commits.
        held = "temp" if incremental else "table"
        if incremental:
            timeline, tagged = self._friction_scope()
        else:
            settings = engine.moment_settings(self.spec)
            write("spans", "friction_spans", held,
                  lambda: fr.spans(table("attempts"), settings).mutate(reached=ibis.literal(True)))
            timeline, tagged = table("timeline"), table("tagged")
        write("scope", "friction_scope", held, lambda: fr.scope(timeline, tagged, table("friction_spans")))
        if incremental:  # the properties and ids of the scope's events, read once
            write("events", _EVENTS, "temp", self._scope_events)
        events = table(_EVENTS) if incremental else self.run.events()

        def context() -> fr.Context:
            return fr.Context(self.spec, events, timeline, table("friction_spans"))

        write("found", "friction_found", held, lambda: fr.detect(table("friction_scope"), context()))

        def reached() -> Table:  # the attempts whose rows are kept
            s = table("friction_spans")
            return s.filter(s.reached)

        def per_attempt() -> Table:
            # Kept by the attempt's id: a filtered summary is counted again from it.
            spans = reached()
            per = fr.per_attempt(table("friction_found"), spans)
            ids = spans.select(i_inner="inner", i_id="attempt_id", i_person="a_person")
            per = per.inner_join(ids, per.attempt == ids.i_inner)
            return per.mutate(attempt=per.i_id, person=per.i_person).drop("i_inner", "i_id", "i_person")

        def waits() -> Table:
            found = fr.waits(table("friction_scope"), context(), reached(), events)
            return _empty_waits() if found is None else found  # no baseline detector on

        # Each table with the column holding the attempt's id, and its time if it has one:
        # kept in time order, so that deleting the reached attempts' rows (all after the
        # first of them starts) skips the older row groups.
        rows = {"friction_rows": ("attempt_id", "at_ms",
                                  lambda: fr.named(table("friction_found"), reached(), events)),
                "friction_attempt_rows": ("attempt", None, per_attempt),
                "friction_waits": ("attempt_id", "at_ms", waits)}
        whole = incremental and bool(self._count(_WHOLE))
        for name, (key, at, build) in rows.items():
            if not incremental:
                self._write("all:" + name, name, "table",
                            lambda build=build, at=at: build().order_by(at) if at else build())
                continue
            self._write(name, _NEW + name, "temp", build)
            if whole:
                self._delete(name, "person IN (SELECT person FROM _whole)")
            since = (at + " >= (SELECT min(from_ms) FROM _friction_from) AND ") if at else ""
            self._delete(name, since + key + " IN (SELECT attempt_id FROM friction_spans WHERE reached)")
            self._insert(name, _NEW + name)
            self.run.drop(_NEW + name)
        for temp in ("friction_found", "friction_scope", "friction_spans", _FROM, _EVENTS):
            self.run.drop(temp)

        def baselines() -> Table:  # of every candidate: a few rows
            w = table("friction_waits")
            base = fr.baselines(w, self.spec)
            if base is None:
                base = w.select(kind="kind", moment="moment", step="step",
                                baseline=w.latency_ms.cast("float64")).limit(0)
            return base

        write("baselines", "friction_baselines", "table", baselines)

        # Judged against the baselines over every attempt, and summed over every attempt:
        # by views, when read. A refresh does only the work of the persons it recomputes;
        # what spans every attempt is computed by whoever reads it (the server keeps the
        # answer per refresh).
        def judged() -> tuple[Table, Table]:
            frictions, attempts = table("friction_rows"), table("friction_attempt_rows")
            found = fr.judged(table("friction_waits"), table("friction_baselines"), self.spec)
            if found is None:
                return frictions, attempts
            # In the stored tables' types (a stored array may hold NULLs).
            late = found[1].select(*attempts.columns).cast(attempts.schema())
            return frictions.union(found[0].cast(frictions.schema())), attempts.union(late)

        views = ("frictions", "friction_attempts", "friction_kinds", "friction_moments")
        if not incremental or not set(views) <= self._tables():  # made again only when
            # the definitions change
            write("view:frictions", "frictions", "view", lambda: judged()[0])
            write("view:friction_attempts", "friction_attempts", "view", lambda: judged()[1])

            def stats() -> tuple[Table, Table]:
                return fr.friction_stats(table("friction_attempts"), table("attempts"))

            write("view:friction_kinds", "friction_kinds", "view", lambda: stats()[0])
            write("view:friction_moments", "friction_moments", "view", lambda: stats()[1])


    def _friction_scope(self) -> tuple[Table, Table]:
        """``friction_spans`` of the affected persons' attempts that can matter to the
        attempts the change reaches, and the timeline and tagged rows to scope them.

        An attempt is *reached* when its span closes at or after the person's reach
        (``_reach``, :meth:`~microjourney.workspace_person_refresh.PersonRefresh._reach`):
        its events, its neighbours or its outcome may have changed; the frictions of the
        others stay as they are. The reached attempts' events are all at or after the
        first of them starts (``_friction_from``), so the scope reads the rows from
        there, and the spans that close there (an earlier attempt around a reached one
        can take an event from it, as the innermost)."""
        table = self.db.table
        settings = engine.moment_settings(self.spec)
        longest = max(round(m.timeout * 1000) for m in self.spec.moments.values())

        def start() -> Table:
            a, r = table("attempts"), table(_REACH)
            a = a.filter(a.end_ts >= ms_time(r.reach_ms.min().as_scalar() - longest))
            rr = r.select(r_person="person", r_ms="reach_ms")
            a = a.inner_join(rr, a.person == rr.r_person)
            a = a.inner_join(settings, a.moment == settings.w_moment)
            end = epoch_ms(a.end_ts)
            close = ibis.ifelse(a.outcome.isin(list(FINISHED)), end,
                                end + a.timeout_ms)
            a = a.filter(close >= a.r_ms)
            return a.group_by("person").aggregate(reach_ms=a.r_ms.min(),
                                                  from_ms=epoch_ms(a.start_ts).min())

        self._write("some:from", _FROM, "temp", start)

        def spans() -> Table:
            a, f = table("attempts"), table(_FROM)
            a = a.filter(a.end_ts >= ms_time(f.from_ms.min().as_scalar() - longest))
            a = a.semi_join(f, "person")
            s = engine.frictions.spans(a, settings)
            ff = f.select(q_person="person", q_reach="reach_ms")
            s = s.inner_join(ff, s.a_person == ff.q_person)
            return s.mutate(reached=s.close_ms >= s.q_reach).drop("q_person", "q_reach")

        self._write("some:spans", "friction_spans", "temp", spans)

        def rows(name: str) -> Table:
            t, f = table(name), table(_FROM)
            t = t.filter(t.t_ms >= f.from_ms.min().as_scalar())
            ff = f.select(b_person="person", b_from="from_ms")
            t = t.inner_join(ff, [t.person == ff.b_person, t.t_ms >= ff.b_from])
            return t.drop("b_person", "b_from")

        return rows("timeline"), rows("tagged")

    def _scope_events(self) -> Table:
        """The sequence number, id and properties of the events in ``friction_scope``."""
        e, s = self.run.events(), self.db.table("friction_scope")
        seqs = s.select(s_seq="seq")
        return e.semi_join(seqs, e.seq == seqs.s_seq).select("seq", "event_id", "properties")


def _empty_waits() -> Table:
    from .engine.frictions import WAITS

    types = {"attempt_id": "string", "person": "string", "moment": "string", "kind": "string",
             "event_id": "string"}
    schema = {c: types.get(c, "int64") for c in WAITS}
    return ibis.memtable(pa.Table.from_pylist([], schema=ibis.schema(schema).to_pyarrow()))


__all__ = ["FrictionRefresh"]
