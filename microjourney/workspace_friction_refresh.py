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
from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa
from ibis.expr.types import Table

from . import engine

if TYPE_CHECKING:
    from .engine.runtime import Runtime
    from .spec.model import Workspace as Spec

class FrictionRefresh:
    """A mixin: the workspace gives the definitions and the runtime, the refresh how to
    write (:meth:`~microjourney.workspace_refresh.Refresh._write`) and whose rows."""

    spec: Spec
    run: Runtime
    db: Any

    def _write(self, label: str, into: str, how: str, build: Callable[[], Table]) -> None: ...
    def _of(self, name: str, affected: Table | None) -> Table: ...
    def _put(self, name: str, build: Callable[[], Table], affected: Table | None) -> None: ...
    def _tables(self) -> set[str]: ...

    def _frictions(self, affected: Table | None, events: Table) -> None:
        """The friction tables of ``affected`` (all when None; ``events``: theirs), then
        the baselines, the views and the summaries from all of them."""
        fr = engine.frictions
        settings = engine.moment_settings(self.spec)
        incremental = affected is not None
        # The spans and the scope are read by every detector: computed once, kept in
        # memory only. Each statement is built from the tables before it, when compiled.
        table = self.db.table

        def write(label: str, into: str, how: str, build: Callable[[], Table]) -> None:
            self._write(("some:" if incremental else "all:") + label, into, how, build)

        def timeline() -> Table:
            return self._of("timeline", affected)

        def context() -> fr.Context:
            return fr.Context(self.spec, events, timeline(), table("friction_spans"))

        write("spans", "friction_spans", "temp",
                    lambda: fr.spans(self._of("attempts", affected), settings))
        write("scope", "friction_scope", "temp",
                    lambda: fr.scope(timeline(), self._of("tagged", affected), table("friction_spans")))
        write("found", "friction_found", "temp",
                    lambda: fr.detect(table("friction_scope"), context()))

        def per_attempt() -> Table:
            # Kept by the attempt's id: a filtered summary is counted again from it.
            spans = table("friction_spans")
            per = fr.per_attempt(table("friction_found"), spans)
            ids = spans.select(i_inner="inner", i_id="attempt_id", i_person="a_person")
            per = per.inner_join(ids, per.attempt == ids.i_inner)
            return per.mutate(attempt=per.i_id, person=per.i_person).drop("i_inner", "i_id", "i_person")

        def waits() -> Table:
            found = fr.waits(table("friction_scope"), context(), table("friction_spans"), events)
            return _empty_waits() if found is None else found  # no baseline detector on

        self._put("friction_rows", lambda: fr.named(table("friction_found"), table("friction_spans"),
                                                    events), affected)
        self._put("friction_attempt_rows", per_attempt, affected)
        self._put("friction_waits", waits, affected)
        for temp in ("friction_found", "friction_scope", "friction_spans"):
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


def _empty_waits() -> Table:
    from .engine.frictions import WAITS

    types = {"attempt_id": "string", "person": "string", "moment": "string", "kind": "string",
             "event_id": "string"}
    schema = {c: types.get(c, "int64") for c in WAITS}
    return ibis.memtable(pa.Table.from_pylist([], schema=ibis.schema(schema).to_pyarrow()))


__all__ = ["FrictionRefresh"]
