"""The person tables (timeline, tagged rows, attempts) refreshed from where a change
reaches (the part of :class:`~microjourney.workspace_refresh.Refresh` that an
incremental refresh on the store runs; see docs/architecture.md, "Derived tables").

A refresh recomputes a person's rows only from the point the change can reach, and
keeps the rows before it:

* **The timeline** takes a person's new events after the last row it holds for them (in
  ``person_last``), whose next neighbour they become.
* **Tagged rows** are only added: the new rows of a (person, moment) are cut on from its
  last row cut (kept in ``tag_last``; a row's cut depends only on the rows before it).
* **Attempts** are made again, per (person, moment), from the beginning of a cut (a row
  that breaks whatever came before it: the first, one after an outcome or after a gap
  longer than the moment's timeout): that of the last cut when the new rows continue it
  or its attempt times out, that of the earliest attempt whose escalation or
  repeat-contact window reaches the new rows, or else the first new row.
* **Funnel tries** (``funnel_tries``), per (person, moment): from the moment's window (its
  timeout) before the person's first new funnel step; a try reads only the funnel events
  from its first step to the window's end, and cutting rows again changes no row's step.
* **Frictions** of the attempts whose span closes at or after the person's reach
  (:meth:`PersonRefresh._reach`; the friction part reads it).
* **Everything again** for a person whose identifiers moved and who had rows, who now
  holds such a person's old events, whose events an erasure took, or who has an event
  earlier than the last one kept (late data): their whole history, as a full rebuild
  would.

The stored tables are kept in time order (a full rebuild writes them so, and new rows
are recent), so that reading and deleting the rows after a point in time skips the
older row groups instead of scanning every person's rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ibis
from ibis.expr.types import Table, Value

from . import engine
from .engine.attempts import OUTCOMES
from .engine.backend import epoch_ms
from .engine.timeline import neighbours, rows
from .identity import with_person

if TYPE_CHECKING:
    from collections.abc import Callable

    from .engine.runtime import Runtime
    from .spec.model import Workspace as Spec

_AFFECTED = "_affected"
_FRESH = "_fresh_events"
_EVENTS = "_affected_events"
_WHOLE = "_whole"
_ANCHORS = "_anchors"
_ERASED = "_erased_persons"
_FLIPPED = "_flipped"
_RESTART = "_restart"
_REACH = "_reach"
_MOVED = "_moved"
_TRIES_FROM = "_tries_from"
_ROWS = "_attempt_rows"
TRIES_ROWS = "_tries_rows"
#: The tries a refresh made, before they go into ``funnel_tries``.
_NEW_TRIES = "_new_funnel_tries"
_VALUES = "_refresh_values"
_NEW = "_new_"
#: The temporary tables a refresh of the person tables leaves for the friction part.
TEMPS = (_FRESH, _EVENTS, _WHOLE, _ERASED, _ANCHORS, _FLIPPED, _RESTART, _REACH, _AFFECTED,
         _NEW + "timeline", _NEW + "fresh_tagged", _NEW + "tagged", _NEW + "attempts",
         _NEW + "tag_last", _ROWS, _TRIES_FROM, TRIES_ROWS, _NEW_TRIES)


def ms_time(ms: Value) -> Value:
    """Milliseconds since the epoch as a timestamp with time zone (the store's is UTC),
    to compare with a stored timestamp column so that its row groups can be skipped."""
    return ms.as_timestamp("ms").cast("timestamp('UTC')")


def last_cut(tagged: Table) -> Table:
    """Per (person, moment): the last tagged row's order, time, role, channel and attempt,
    and where its cut began (``tag_last``): what cutting the next rows needs
    (:func:`~microjourney.engine.attempts.segments_after`); and whether any row is in an
    attempt (``attempted``: the scorecard counts the persons with an attempt from it)."""
    t = tagged
    return t.group_by(["person", "moment"]).aggregate(
        rn=t.rn.max(), t_ms=t.t_ms.argmax(t.rn), role=t.role.argmax(t.rn),
        channel=t.channel.argmax(t.rn), segment=t.segment.argmax(t.rn),
        begin_rn=t.begin_rn.argmax(t.rn), begin_ms=t.begin_ms.argmax(t.rn),
        attempted=t.segment.notnull().any())


class RefreshPart:
    """What a part of the refresh (a mixin of :class:`~microjourney.workspace.Workspace`)
    is given: the definitions, the runtime and its store, and how the refresh writes
    (:meth:`~microjourney.workspace_refresh.Refresh._write`) and deletes."""

    spec: Spec
    run: Runtime
    db: Any
    con: Any

    def _write(self, label: str, into: str, how: str, build: Callable[[], Table]) -> None: ...
    def _delete(self, name: str, where: str, params: list[Any] | None = None) -> None: ...

    def _count(self, table: str) -> int:
        """The rows of the (temporary) table ``table``."""
        return int(self.con.execute("SELECT count(*) FROM " + table).fetchall()[0][0])

    def _insert(self, name: str, temp: str, where: str = "") -> None:
        """The rows of the temporary table ``temp`` (those ``where`` selects) into ``name``."""
        self.con.execute("INSERT INTO " + name + " BY NAME SELECT * FROM " + temp
                         + (" WHERE " + where if where else ""))


class PersonRefresh(RefreshPart):
    """The person tables' part of an incremental refresh on the store."""

    def _values(self) -> Table: ...
    def _events_of(self, affected: Table | None, since: int | Value = 0) -> Table: ...

    # -- who, and from where --------------------------------------------------
    def _affected_persons(self, *, erased: bool, aged: bool) -> int:
        """``_fresh_events`` (the new events, with their person), ``_flipped`` (attempts
        whose outcome the new end of the data changes), after an erasure
        ``_erased_persons``, and ``_affected`` (every person the change touches); the
        number of persons."""
        v = self._values()
        e = self.run.events()

        def fresh() -> Table:
            new = e.filter(e.seq > v.since_seq.as_scalar())
            # Only their identifiers' rows of the map: a join that builds on the whole
            # map costs more than the few events it maps.
            keys = new.select(k=ibis.coalesce(new.user_id, new.anonymous_id))
            persons = self.db.table("persons")
            return with_person(new, persons.semi_join(keys, persons.identifier == keys.k))

        self._write("fresh", _FRESH, "temp", fresh)
        self._write(f"flipped:{aged}", _FLIPPED, "temp", lambda: self._timed_out(aged))
        if erased:
            # An erasure deletes every event carrying one of the erased person's
            # identifiers, some of which may be others': those whose events went.
            def lost() -> Table:
                t = self.db.table("timeline")
                return t.anti_join(e, t.seq == e.seq).select("person").distinct()

            self._write("erased", _ERASED, "temp", lost)

        def touched() -> Table:
            parts: list[Table] = [self.db.table(_MOVED), self.db.table(_FRESH).select("person"),
                                  self.db.table(_FLIPPED).select("person")]
            if erased:
                parts.append(self.db.table(_ERASED))
            return _union(parts).distinct()

        self._write(f"affected:{erased}", _AFFECTED, "temp", touched)
        return self._count(_AFFECTED)

    def _timed_out(self, aged: bool) -> Table:
        """(person, moment) of the attempts whose outcome the move of the end of the data
        from ``before_ms`` to ``as_of_ms`` changes (abandoned ↔ in progress)."""
        if not aged:  # none (and no attempts table without moments)
            f = self.db.table(_FRESH)
            return f.select("person", moment=ibis.null("string")).limit(0)
        a = self.db.table("attempts")
        v = self._values()
        before, now = v.before_ms.as_scalar(), v.as_of_ms.as_scalar()
        s = engine.moment_settings(self.spec)
        longest = max(round(m.timeout * 1000) for m in self.spec.moments.values())
        # Only an attempt whose last event is within a timeout of the old end can flip.
        a = a.filter(a.outcome.isin(["abandoned", "in_progress"])
                     & (a.end_ts >= ms_time(ibis.least(before, now) - longest)))
        a = a.inner_join(s, a.moment == s.w_moment)
        end = epoch_ms(a.end_ts)
        flip = ((before - end) > a.timeout_ms) != ((now - end) > a.timeout_ms)
        return a.filter(flip).select("person", "moment").distinct()

    def _whole_persons(self, *, erased: bool, everyone: bool) -> int:
        """``_whole``: the affected persons recomputed from their whole history (all of
        them when ``everyone``); the number of them."""
        def whole() -> Table:
            affected = self.db.table(_AFFECTED)
            if everyone:
                return affected
            fresh, last = self.db.table(_FRESH), self.db.table("person_last")
            first = fresh.group_by(f_person="person").aggregate(
                first_t=epoch_ms(fresh.timestamp).min())
            late = first.inner_join(last, first.f_person == last.person)
            # Of the persons whose identifiers moved, those who had rows (a new visitor
            # has none: their new events are all there is); those who now hold some of
            # their old events join below (_person_timeline).
            moved = self.db.table(_MOVED)
            parts = [moved.semi_join(last, moved.person == last.person),
                     late.filter(late.first_t < late.t_ms).select("person")]
            if erased:
                parts.append(self.db.table(_ERASED))
            return _union(parts).distinct()

        self._write(f"whole:{erased}:{everyone}", _WHOLE, "temp", whole)
        return self._count(_WHOLE)

    # -- the timeline -----------------------------------------------------------
    def _person_timeline(self, whole: int) -> None:
        """The timeline of the affected persons' new events (of every event, for those
        recomputed whole), and ``person_last``."""
        v = self._values()
        if whole:
            # Their events: those their rows held (under the persons they had) and the new.
            self._write("events:whole", _EVENTS, "temp",
                        lambda: self._events_of(self.db.table(_WHOLE), v.since_seq.as_scalar()))
            # Whoever holds their old events now (a person they merged into) is whole too.
            self.con.execute("INSERT INTO _whole SELECT DISTINCT person FROM _affected_events "
                             "WHERE seq <= (SELECT since_seq FROM _refresh_values) "
                             "AND person NOT IN (SELECT person FROM _whole)")
            events = _EVENTS
        else:
            events = _FRESH

        def anchors() -> Table:  # the last row kept of each person with new events
            last, fresh, w = self.db.table("person_last"), self.db.table(_FRESH), self.db.table(_WHOLE)
            last = last.semi_join(fresh, last.person == fresh.person)
            return last.anti_join(w, last.person == w.person)

        self._write("anchors", _ANCHORS, "temp", anchors)

        def timeline() -> Table:
            e, w = self.db.table(events), self.db.table(_WHOLE)
            if whole:
                # A whole person's rows come from all their events (their new ones too).
                e = e.filter(e.seq > v.since_seq.as_scalar()).anti_join(w, "person").union(
                    e.semi_join(w, "person"))
            return neighbours(rows(e), self.db.table(_ANCHORS))

        self._write(f"timeline:{bool(whole)}", _NEW + "timeline", "temp", timeline)
        if whole:
            self._delete("timeline", "person IN (SELECT person FROM _whole)")
        self._delete("timeline", "seq IN (SELECT seq FROM _anchors)")
        self._insert("timeline", _NEW + "timeline")
        self._delete("person_last", "person IN (SELECT person FROM _new_timeline) "
                     "OR person IN (SELECT person FROM _whole)")
        self._insert("person_last", _NEW + "timeline", "next_t IS NULL")

    # -- tagged rows and attempts ---------------------------------------------------
    def _person_moments(self, whole: int) -> None:
        """The affected persons' new tagged rows and ``tag_last``, their attempts made again
        from where their new rows (or the end of the data) can reach, their funnel tries."""
        v = self._values()
        settings = engine.moment_settings(self.spec)
        events = _EVENTS if whole else _FRESH
        self._write(f"fresh_tagged:{bool(whole)}", _NEW + "fresh_tagged", "temp",
                    lambda: engine.tag(self.db.table(events), self.spec))

        def restart() -> Table:
            w = self.db.table(_WHOLE)
            fresh = self.db.table(_NEW + "fresh_tagged").anti_join(w, "person")
            f = fresh.group_by(["person", "moment"]).aggregate(first_t=fresh.t_ms.min())
            flipped = self.db.table(_FLIPPED).anti_join(w, "person")
            keys = f.select("person", "moment").union(flipped.select("person", "moment")).distinct()
            ff = f.select(f_person="person", f_moment="moment", first_t="first_t")
            k = keys.left_join(ff, [keys.person == ff.f_person, keys.moment == ff.f_moment])
            xx = flipped.select(x_person="person", x_moment="moment", flip=ibis.literal(True))
            k = k.left_join(xx, [k.person == xx.x_person, k.moment == xx.x_moment])
            last = self.db.table("tag_last")
            ll = last.select(l_person="person", l_moment="moment", l_rn="rn", l_t="t_ms",
                             l_role="role", l_channel="channel", l_segment="segment",
                             l_begin_rn="begin_rn", l_begin_ms="begin_ms", l_attempted="attempted")
            k = k.left_join(ll, [k.person == ll.l_person, k.moment == ll.l_moment])
            k = k.inner_join(settings, k.moment == settings.w_moment)
            # The stored attempts whose escalation or repeat-contact window reaches the
            # first new row: their contact columns may change.
            widest = max(round(max(m.escalation_window, m.repeat_contact_window) * 1000)
                         for m in self.spec.moments.values())
            a = self.db.table("attempts")
            a = a.filter(a.end_ts >= ms_time(f.first_t.min().as_scalar() - widest))
            a = a.inner_join(ff, [a.person == ff.f_person, a.moment == ff.f_moment])
            ss = settings.select(s_moment="w_moment", s_esc="escalation_ms", s_rep="repeat_ms")
            a = a.inner_join(ss, a.moment == ss.s_moment)
            a = a.filter(epoch_ms(a.end_ts) + ibis.greatest(a.s_esc, a.s_rep) >= a.first_t)
            reach = a.group_by(r_person="person", r_moment="moment").aggregate(
                r_rn=a.segment.min(), r_ms=a.begin_ms.min())
            k = k.left_join(reach, [k.person == reach.r_person, k.moment == reach.r_moment])
            # Where the new rows go: on the last cut, or after a break (the first row
            # ever, one after an outcome, one after a gap longer than the timeout).
            none = ibis.null("int64")
            continues = (k.l_rn.notnull() & ~k.l_role.isin(OUTCOMES)
                         & ((k.first_t - k.l_t) <= k.timeout_ms))
            new_rn = ibis.cases((k.first_t.isnull(), none), (continues, k.l_begin_rn),
                                else_=ibis.coalesce(k.l_rn + 1, 0))
            new_ms = ibis.cases((k.first_t.isnull(), none), (continues, k.l_begin_ms),
                                else_=k.first_t)
            flip_rn = ibis.ifelse(k.flip.notnull(), k.l_begin_rn, none)
            flip_ms = ibis.ifelse(k.flip.notnull(), k.l_begin_ms, none)
            return k.select("person", "moment",
                            restart_rn=ibis.least(new_rn, flip_rn, k.r_rn).cast("int64"),
                            restart_ms=ibis.least(new_ms, flip_ms, k.r_ms).cast("int64"),
                            # The last row cut, as in tag_last: the new rows are cut on from it.
                            rn=k.l_rn, t_ms=k.l_t, role=k.l_role, channel=k.l_channel,
                            segment=k.l_segment, begin_rn=k.l_begin_rn, begin_ms=k.l_begin_ms,
                            attempted=k.l_attempted)

        self._write("restart", _RESTART, "temp", restart)

        def tagged() -> Table:
            # The new rows, cut on from each (person, moment)'s last row: those before
            # stay as they are. A person recomputed whole is cut from their first row.
            fresh, w = self.db.table(_NEW + "fresh_tagged"), self.db.table(_WHOLE)
            new = engine.segments_after(fresh.anti_join(w, "person"), self.db.table(_RESTART))
            if not whole:
                return new
            return new.union(engine.segments(fresh.semi_join(w, "person")).select(*new.columns))

        self._write(f"tagged:{bool(whole)}", _NEW + "tagged", "temp", tagged)
        if whole:
            for name in ("tagged", "attempts", "tag_last", "funnel_tries"):
                self._delete(name, "person IN (SELECT person FROM _whole)")
        self._insert("tagged", _NEW + "tagged")

        def tag_last() -> Table:  # the rows before stay: attempted once, attempted since
            new, r = last_cut(self.db.table(_NEW + "tagged")), self.db.table(_RESTART)
            was = r.select(w_person="person", w_moment="moment", was="attempted")
            k = new.left_join(was, [new.person == was.w_person, new.moment == was.w_moment])
            return k.mutate(attempted=k.attempted | k.was.fill_null(False)).select(*new.columns)

        self._write("tag_last", _NEW + "tag_last", "temp", tag_last)
        self.con.execute("DELETE FROM tag_last USING _new_tag_last n WHERE tag_last.person = n.person "
                         "AND tag_last.moment = n.moment")
        self._insert("tag_last", _NEW + "tag_last")

        def reached() -> Table:
            # The rows of the attempts to make again: from where the change reaches on
            # (the new rows among them), and every row of a person recomputed whole.
            t, r = self.db.table("tagged"), self.db.table(_RESTART)
            rr = r.select(p="person", m="moment", rn0="restart_rn")
            old = t.filter(t.t_ms >= r.restart_ms.min().as_scalar())
            old = old.inner_join(rr, [old.person == rr.p, old.moment == rr.m, old.rn >= rr.rn0])
            old = old.select(*t.columns)
            if not whole:
                return old
            return old.union(self.db.table(_NEW + "tagged").semi_join(self.db.table(_WHOLE), "person"))

        self._write(f"attempt_rows:{bool(whole)}", _ROWS, "temp", reached)

        def attempts() -> Table:
            t = self.db.table(_ROWS)
            expr = engine.attempts(t, self.run.events(), v.as_of_ms.as_scalar())
            return engine.with_contacts(expr, t, settings)

        self._write("attempts", _NEW + "attempts", "temp", attempts)
        bound = "(SELECT min(restart_ms) FROM _restart)"
        match = "{t}.person = r.person AND {t}.moment = r.moment"
        self.con.execute("DELETE FROM attempts USING _restart r WHERE attempts.start_ts >= "
                         "to_timestamp(" + bound + " / 1000.0) AND " + match.format(t="attempts")
                         + " AND attempts.segment >= r.restart_rn")
        self._insert("attempts", _NEW + "attempts")
        self._person_tries(whole, settings)

    def _person_tries(self, whole: int, settings: Table) -> None:
        """The kept funnel tries of the affected persons (``funnel_tries``): per moment, the
        tries that begin at most its funnel's window (its timeout) before the person's first
        new funnel step, made again from the rows from there on (an earlier try ends before
        it, and cutting rows again changes no step); all of a person recomputed whole."""
        def bounds() -> Table:
            fresh = self.db.table(_NEW + "fresh_tagged").anti_join(self.db.table(_WHOLE), "person")
            fresh = fresh.filter(fresh.step.notnull())
            f = fresh.group_by(["person", "moment"]).aggregate(first_t=fresh.t_ms.min())
            f = f.inner_join(settings, f.moment == settings.w_moment)
            return f.select("person", "moment", from_ms=(f.first_t - f.timeout_ms).cast("int64"))

        self._write("tries_from", _TRIES_FROM, "temp", bounds)

        def tries_rows() -> Table:
            t, b = self.db.table("tagged"), self.db.table(_TRIES_FROM)
            cols = ("moment", "person", "seq", "t_ms", "step")
            bb = b.select(b_person="person", b_moment="moment", b_from="from_ms")
            recent = t.filter(t.t_ms >= b.from_ms.min().as_scalar())
            recent = recent.inner_join(bb, [recent.person == bb.b_person,
                                            recent.moment == bb.b_moment, recent.t_ms >= bb.b_from])
            out = recent.select(*cols)
            if whole:  # disjoint: _tries_from leaves out the whole persons
                out = out.union(t.semi_join(self.db.table(_WHOLE), "person").select(*cols))
            return out

        # Read once: each moment's tries read them (as many reads as moments otherwise).
        self._write(f"tries_rows:{bool(whole)}", TRIES_ROWS, "temp", tries_rows)
        self._kept_tries()
        self.con.execute("DELETE FROM funnel_tries USING _tries_from b WHERE funnel_tries.t0 >= "
                         "(SELECT min(from_ms) FROM _tries_from) AND funnel_tries.person = b.person "
                         "AND funnel_tries.moment = b.moment AND funnel_tries.t0 >= b.from_ms")
        self._insert("funnel_tries", _NEW_TRIES)

    def _kept_tries(self, into: str = _NEW_TRIES, how: str = "temp") -> None:
        """The tries of every moment's own funnel in the rows of ``_tries_rows`` (some
        persons' recent tagged rows, or a view of them all in a full rebuild), in time
        order, into ``into`` (``_new_funnel_tries``, or ``funnel_tries`` itself in a full
        rebuild: a copy of 2M tries held until the rebuild commits is 0.2 GB at 10M
        events): one statement for both, compiled once per definitions."""
        self._write("tries", into, how, lambda: engine.kept_tries(
            self.db.table(TRIES_ROWS), self.spec).order_by(["t0", "s0"]))

    def _reach(self) -> None:
        """``_reach``: per affected person, the time from which their frictions may have
        changed (the attempts whose span closes then or later are detected again):

        * their first event, for a person recomputed whole (all their attempts);
        * the new events' first, for a person with new events; or the last event kept, when
          the new come within the detectors' reach of it (its next neighbour changed:
          :func:`~microjourney.engine.frictions.reach`);
        * the old end of the data, when an attempt of theirs timed out (its outcome changed)."""
        near = round(engine.frictions.reach(self.spec) * 1000)

        def reach() -> Table:
            a, w = self.db.table(_AFFECTED), self.db.table(_WHOLE)
            fresh = self.db.table(_FRESH)
            first = fresh.group_by(f_person="person").aggregate(first_t=epoch_ms(fresh.timestamp).min())
            anchors = self.db.table(_ANCHORS).select(n_person="person", n_t="t_ms")
            mine = self.db.table(_NEW + "timeline").semi_join(w, "person")
            rows = mine.group_by(o_person="person").aggregate(o_t=mine.t_ms.min())
            flipped = self.db.table(_FLIPPED).select(x_person="person").distinct()
            before = self._values().before_ms.as_scalar()
            ww = w.select(w_person="person", is_whole=ibis.literal(True))
            k = a.left_join(ww, a.person == ww.w_person)
            k = k.left_join(first, k.person == first.f_person)
            k = k.left_join(anchors, k.person == anchors.n_person)
            k = k.left_join(flipped, k.person == flipped.x_person)
            k = k.left_join(rows, k.person == rows.o_person)
            new = ibis.ifelse(k.n_t.notnull() & ((k.first_t - k.n_t) <= near), k.n_t, k.first_t)
            timed_out = ibis.ifelse(k.x_person.notnull(), before, ibis.null("int64"))
            return k.select("person", reach_ms=ibis.ifelse(
                k.is_whole.notnull(), k.o_t, ibis.least(new, timed_out)).cast("int64"))

        self._write("reach", _REACH, "temp", reach)


def _union(parts: list[Table]) -> Table:
    out = parts[0]
    for p in parts[1:]:
        out = out.union(p)
    return out


__all__ = ["TEMPS", "TRIES_ROWS", "PersonRefresh", "RefreshPart", "last_cut", "ms_time"]
