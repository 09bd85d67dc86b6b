"""The analyses of the Python API (:class:`~microjourney.workspace.Workspace` inherits them):
each filters the store's tables, asks the engine for counts and the pure analysis layer for
rates and intervals, and returns a small table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ibis
from ibis.expr.types import Table
from pydantic import ValidationError

from . import engine, registry
from .analysis import scorecard as scorecard_analysis
from .errors import QueryError
from .registry import filters
from .registry.base import Result
from .registry.filters import Filters
from .spec import Moment

if TYPE_CHECKING:
    import duckdb
    from ibis.backends.duckdb import Backend

OUTCOMES = ("completed", "failed", "abandoned", "escalated", "in_progress")
#: "All rows" for the Python API's wrappers of registered analyses.
MAX_ROWS = 1_000_000


class Analyses:
    """Scorecard, funnel, process map, variants, paths, conformance, daily series, summary.

    A mixin: the workspace gives the tables (:meth:`events`, :meth:`attempts`...)."""

    con: duckdb.DuckDBPyConnection
    db: Backend
    moments: dict[str, Moment]

    def moment(self, name: str) -> Moment: ...
    def events(self) -> Table: ...
    def attempts(self, moment: str | None = None) -> Table: ...
    def refresh(self, *, force: bool = False) -> Any: ...
    def _refresh_timeline(self) -> None: ...
    def _tagged(self, moment: str) -> Table: ...

    # -- analyses -----------------------------------------------------------
    def analysis(self, name: str, **params: Any) -> Result:
        """Run the registered analysis ``name`` (``microjourney.registry``) with ``params``
        (by name, or as the CLI and API spell them: ``**{"from": "step"}``); its result
        holds named tables (DataFrames), coded warnings and metadata.

        >>> ws.analysis("scorecard", by="device", since="2026-09-01").table()  # doctest: +SKIP
        """
        return registry.run(self, name, params)  # type: ignore[arg-type]

    def scorecard(self, *, by: str | None = None, since: str | None = None,
                  until: str | None = None, channel: str | None = None,
                  where: list[str] | None = None) -> Table:
        """Per moment (and ``by`` group): volume, outcomes, completion with CI, times."""
        r = self.analysis("scorecard", by=by, since=since, until=until, channel=channel,
                          where=where or [])
        return ibis.memtable(r.table())

    def funnel(self, moment: str, *, order: str = "ordered", window: str | float | None = None,
               per: str = "person") -> Table:
        """Step counts and conversion of a moment's funnel (start, steps, complete)."""
        self.moment(moment)
        window = None if window is None else str(window) if isinstance(window, str) else f"{window}s"
        return ibis.memtable(self.analysis("funnel", moment=moment, order=order, window=window,
                                           per=per).table())

    def _case_rows(self, moment: str | None, by: str | None, channel: str | None = None,
                   since: str | None = None, until: str | None = None,
                   outcome: str | None = None, where: list[str] | None = None, *,
                   follows: bool = False) -> Table:
        """Rows (case, node, t_ms, seq, rank) for journey analytics: events or a moment's steps;
        ``follows`` adds each row's successor in its case (see :func:`engine.follows`).

        Cases are persons for all events, attempts for a moment (unless ``by`` says). The
        filters keep events of one channel, of a period and with property values (``where``:
        ``KEY=VALUE``), and the attempts with one outcome; attempts are cut before them.
        All events by person, unfiltered, come from the timeline, already in order."""
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
            if not (channel or since or until or where):
                return self._timeline_rows(follows=follows)
            ev = _keep(self.events(), channel, since, until, where)
            rows = ev.select(case=ev.person, node=ev.event, t_ms=engine.backend.epoch_ms(ev.timestamp),
                             seq=ev.seq, rank=ibis.literal(0, "int64"))
            return engine.follows(rows) if follows else rows
        m = self.moment(moment)
        rows = self._tagged(moment)
        if by == "attempt" or outcome is not None or where:
            rows = engine.attempt_rows(rows)
        if outcome is not None or where:
            # A moment's rows carry no properties: ``where`` keeps the attempts whose start
            # event has the values, as it does in every analysis of attempts.
            a = _keep(self.attempts(moment), None, None, None, where)
            if outcome is not None:
                a = a.filter(a.outcome == outcome)
            a = a.select(o_person="person", o_segment="segment")
            rows = rows.semi_join(a, [rows.person == a.o_person, rows.segment == a.o_segment])
        rows = _keep(rows, channel, since, until)
        case = rows.person.concat(":", rows.segment.cast("string")) if by == "attempt" else rows.person
        labels = m.step_labels
        node = ibis.cases(
            *((rows.step == k, label) for k, label in enumerate(labels)),
            # A fail or escalate matcher of several events shows the event that happened
            # (payment_declined, not "payment_declined | payment_timeout"), unless named.
            *((rows.role == role, matcher.name or rows.event) for role, matcher in
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
                    until: str | None = None, outcome: str | None = None,
                    where: list[str] | None = None) -> engine.ProcessMap:
        """Directly-follows graph of all events per person, or of a moment's steps
        (per person or per attempt): node counts, edges with median/mean seconds, starts, ends.
        ``outcome`` keeps a moment's attempts with that outcome (``failed``...)."""
        return engine.process_map(self._case_rows(moment, by, channel, since, until, outcome,
                                                  where, follows=True))

    def variants(self, moment: str | None = None, *, by: str | None = None,
                 top: int | None = None, channel: str | None = None, since: str | None = None,
                 until: str | None = None, outcome: str | None = None,
                 where: list[str] | None = None) -> Table:
        """Path variants with their number of cases, share and median duration."""
        v = engine.variants(self._case_rows(moment, by, channel, since, until, outcome, where))
        return v if top is None else v.limit(top)

    def paths(self, step: str, *, after: bool = True, moment: str | None = None,
              by: str | None = None, length: int = 5, top: int | None = 10,
              channel: str | None = None, since: str | None = None, until: str | None = None,
              outcome: str | None = None, where: list[str] | None = None) -> Table:
        """The commonest paths after (or before) each case's first ``step``: an event name,
        or with ``moment`` a step label; ``length`` nodes at most, the step included. The
        filters are those of :meth:`variants`."""
        if length < 1:
            raise QueryError("--length must be at least 1", code="query/option")
        rows = self._case_rows(moment, by, channel, since, until, outcome, where)
        v = engine.around(rows, step, after=after, length=length)
        return v if top is None else v.limit(top)

    def conformance(self, moment: str | None = None) -> tuple[Table, Table]:
        """How attempts follow each moment's designed step order: (summary, deviations)."""
        r = self.analysis("conformance", moment=moment, top=MAX_ROWS)
        return ibis.memtable(r.table("moments")), ibis.memtable(r.table("deviations"))

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


def _keep(rows: Table, channel: str | None, since: str | None, until: str | None,
          where: list[str] | None = None) -> Table:
    """Rows of one channel, period and property values (any of them may be absent)."""
    try:
        f = Filters(channel=channel, since=since, until=until, where=where or [])
    except ValidationError as exc:
        raise QueryError(str(exc.errors()[0].get("msg", "invalid filter")), code="query/option") from None
    return filters.events(rows, f)
