"""The analyses of the Python API (:class:`~microjourney.workspace.Workspace` inherits them):
each filters the store's tables, asks the engine for counts and the pure analysis layer for
rates and intervals, and returns a small table.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import ibis
from ibis.expr.types import Table

from . import engine
from .analysis import conformance as conformance_analysis
from .analysis import funnel as funnel_analysis
from .analysis import scorecard as scorecard_analysis
from .errors import QueryError
from .spec import Moment, parse_duration

if TYPE_CHECKING:
    import duckdb
    from ibis.backends.duckdb import Backend

OUTCOMES = ("completed", "failed", "abandoned", "escalated", "in_progress")


class Analyses:
    """Scorecard, funnel, process map, variants, paths, conformance, daily series, summary.

    A mixin: the workspace gives the tables (:meth:`events`, :meth:`attempts`...)."""

    con: duckdb.DuckDBPyConnection
    db: Backend
    moments: dict[str, Moment]

    def moment(self, name: str) -> Moment: ...
    def events(self) -> Table: ...
    def attempts(self, moment: str | None = None) -> Table: ...
    def refresh(self, *, force: bool = False) -> bool: ...
    def _refresh_timeline(self, *, force: bool = False, key: str | None = None) -> None: ...
    def _tagged(self, moment: str) -> Table: ...

    # -- analyses -----------------------------------------------------------
    def _filtered_attempts(self, since: str | None, until: str | None) -> Table:
        a = self.attempts()
        if since:
            a = a.filter(a.start_ts >= _when(since))
        if until:
            a = a.filter(a.start_ts < _when(until))
        return a

    def scorecard(self, *, by: str | None = None, since: str | None = None,
                  until: str | None = None) -> Table:
        """Per moment (and ``by`` group): volume, outcomes, completion with CI, times."""
        a = self._filtered_attempts(since, until)
        keys = ["moment"]
        if by:
            a, col = _breakdown(a, by)
            keys.append(col)
        stats = engine.outcome_counts(a, keys).to_pandas()
        return ibis.memtable(scorecard_analysis.scorecard(stats, self.spec, keys))

    def funnel(self, moment: str, *, order: str = "ordered", window: str | float | None = None,
               per: str = "person") -> Table:
        """Step counts and conversion of a moment's funnel (start, steps, complete)."""
        m = self.moment(moment)
        if order not in engine.ORDERS:
            raise QueryError(f"unknown funnel order {order!r}; allowed: {', '.join(engine.ORDERS)}",
                             code="query/option")
        if per not in engine.PER:
            raise QueryError(f"unknown --per {per!r}; allowed: {', '.join(engine.PER)}",
                             code="query/option")
        window_s = m.timeout if window is None else _duration(window)
        q = engine.FunnelQuery(n_steps=len(m.funnel), order=order, window_ms=round(window_s * 1000),
                               per=per)
        events = self.events() if order == "strict" else None
        stats = engine.funnel_stats(self._tagged(moment), events, q).to_pandas()
        return ibis.memtable(funnel_analysis.steps(stats, m.step_labels))

    def _case_rows(self, moment: str | None, by: str | None, channel: str | None = None,
                   since: str | None = None, until: str | None = None,
                   outcome: str | None = None, *, follows: bool = False) -> Table:
        """Rows (case, node, t_ms, seq, rank) for journey analytics: events or a moment's steps;
        ``follows`` adds each row's successor in its case (see :func:`engine.follows`).

        Cases are persons for all events, attempts for a moment (unless ``by`` says). The
        filters keep events of one channel and of a period, and the attempts with one
        outcome; attempts are cut before them. All events by person, unfiltered, come from
        the timeline, already in order."""
        by = by or ("person" if moment is None else "attempt")
        if by not in ("person", "attempt"):
            raise QueryError(f"unknown --by {by!r}; allowed: person, attempt", code="query/option")
        if outcome is not None and outcome not in OUTCOMES:
            raise QueryError(f"unknown outcome {outcome!r}; allowed: {', '.join(OUTCOMES)}",
                             code="query/option")
        if moment is None:
            if by == "attempt" or outcome is not None:
                raise QueryError(f"{'--by attempt' if by == 'attempt' else '--outcome'} needs "
                                 "--moment: attempts belong to a moment", code="query/option")
            if not (channel or since or until):
                return self._timeline_rows(follows=follows)
            ev = _keep(self.events(), channel, since, until)
            rows = ev.select(case=ev.person, node=ev.event, t_ms=engine.backend.epoch_ms(ev.timestamp),
                             seq=ev.seq, rank=ibis.literal(0, "int64"))
            return engine.follows(rows) if follows else rows
        m = self.moment(moment)
        rows = self._tagged(moment)
        if by == "attempt" or outcome is not None:
            rows = engine.attempt_rows(rows)
        if outcome is not None:
            a = self.attempts(moment)
            a = a.filter(a.outcome == outcome).select(o_person="person", o_segment="segment")
            rows = rows.semi_join(a, [rows.person == a.o_person, rows.segment == a.o_segment])
        rows = _keep(rows, channel, since, until)
        case = rows.person.concat(":", rows.segment.cast("string")) if by == "attempt" else rows.person
        labels = m.step_labels
        node = ibis.cases(
            *((rows.step == k, label) for k, label in enumerate(labels)),
            *((rows.role == role, matcher.label) for role, matcher in
              (("fail", m.fail), ("escalate", m.escalate)) if matcher is not None),
            else_=rows.role,
        )
        rows = rows.select(case=case, node=node, t_ms=rows.t_ms, seq=rows.seq, rank=rows.rank)
        return engine.follows(rows) if follows else rows

    def _timeline_rows(self, *, follows: bool = False) -> Table:
        """Case rows of all events by person from the timeline (already in person order;
        ``follows`` adds each event's successor, as :func:`engine.follows` would)."""
        self._refresh_timeline()
        t = self.db.table("timeline")
        rows = {"case": t.person, "node": t.event, "t_ms": t.t_ms, "seq": t.seq,
                "rank": ibis.literal(0, "int64")}
        if follows:
            rows.update(target=t.next_event, target_t=t.next_t, first=t.prev_t.isnull())
        return t.select(**rows)

    def process_map(self, moment: str | None = None, *, by: str | None = None,
                    channel: str | None = None, since: str | None = None,
                    until: str | None = None, outcome: str | None = None) -> engine.ProcessMap:
        """Directly-follows graph of all events per person, or of a moment's steps
        (per person or per attempt): node counts, edges with median/mean seconds, starts, ends.
        ``outcome`` keeps a moment's attempts with that outcome (``failed``...)."""
        return engine.process_map(self._case_rows(moment, by, channel, since, until, outcome,
                                                  follows=True))

    def variants(self, moment: str | None = None, *, by: str | None = None,
                 top: int | None = None, channel: str | None = None, since: str | None = None,
                 until: str | None = None, outcome: str | None = None) -> Table:
        """Path variants with their number of cases, share and median duration."""
        v = engine.variants(self._case_rows(moment, by, channel, since, until, outcome))
        return v if top is None else v.limit(top)

    def paths(self, step: str, *, after: bool = True, moment: str | None = None,
              by: str | None = None, length: int = 5, top: int | None = 10) -> Table:
        """The commonest paths after (or before) each case's first ``step``: an event name,
        or with ``moment`` a step label; ``length`` nodes at most, the step included."""
        if length < 1:
            raise QueryError("--length must be at least 1", code="query/option")
        v = engine.around(self._case_rows(moment, by), step, after=after, length=length)
        return v if top is None else v.limit(top)

    def conformance(self, moment: str | None = None) -> tuple[Table, Table]:
        """How attempts follow each moment's designed step order: (summary, deviations)."""
        if moment is not None:
            self.moment(moment)
        self.refresh()
        tagged = self.db.table("tagged")
        if moment is not None:
            tagged = tagged.filter(tagged.moment == moment)
        rows = engine.attempt_rows(tagged)
        names = list(self.moments) if moment is None else [moment]
        counts = engine.conformance_counts(rows).to_pandas()
        dev = engine.deviations(rows).to_pandas()
        labels = {name: self.moments[name].step_labels for name in names}
        return (ibis.memtable(conformance_analysis.summary(counts, names)),
                ibis.memtable(conformance_analysis.named(dev, labels)))

    def daily(self, moment: str) -> Table:
        """Daily series (UTC days) of attempts, outcomes and completion rate with CI."""
        self.moment(moment)
        stats = engine.daily_counts(self.attempts(moment)).to_pandas()
        return ibis.memtable(scorecard_analysis.daily(stats))

    def summary(self) -> dict[str, object]:
        """Counts for a header: events, persons, quarantined rows, period covered."""
        ev = self.events()
        s = ev.aggregate(events=ev.count(), persons=ev.person.nunique(),
                         first=ev.timestamp.min(), last=ev.timestamp.max()).to_pandas().iloc[0]
        q = self.con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0]
        iso = (lambda v: None if v is None or v != v else v.isoformat())  # noqa: E731 - NaT check
        return {"events": int(s["events"]), "persons": int(s["persons"]), "quarantined": int(q),
                "period": [iso(s["first"]), iso(s["last"])]}


def _duration(value: str | float) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise QueryError(str(exc), code="query/option") from None


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(f"{text!r} is not a date or date-time (write e.g. 2026-09-01)",
                         code="query/option") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # plain dates are UTC days


def _keep(rows: Table, channel: str | None, since: str | None, until: str | None) -> Table:
    """Rows of one channel and period (any of them may be absent)."""
    if channel:
        rows = rows.filter(rows.channel == channel)
    if since:
        rows = rows.filter(rows.timestamp >= _when(since))
    if until:
        rows = rows.filter(rows.timestamp < _when(until))
    return rows


def _breakdown(a: Table, by: str) -> tuple[Table, str]:
    """Group attempts by a column (channel, outcome...) or a start-event property/context key.

    Any key works (it reaches SQL as a JSON Pointer in a string literal), except one named
    like a column of the attempts or the scorecard, which would overwrite it."""
    if by in ("channel", "outcome", "channels", "retries", "furthest_step"):
        return a, by
    if by in {*a.columns, *engine.outcome_counts(a, ["moment"]).columns, "journey",
              *scorecard_analysis.COLUMNS}:
        raise QueryError(f"--by {by!r}: a property named like a scorecard column cannot be a "
                         "breakdown; allowed columns: channel, outcome, channels, retries, "
                         "furthest_step", code="query/option")
    text = engine.backend.json_text
    value = ibis.coalesce(text(a.properties, by), text(a.context, by))
    return a.mutate(**{by: value.fill_null("(none)")}), by
