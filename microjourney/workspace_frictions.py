"""The friction part of the Python API (:class:`~microjourney.workspace.Workspace`
inherits it): detecting frictions once per change of events, definitions or detector
settings, the friction rows, the detectors in force, and the summary with its impact on
completion (counted again over filtered attempts when asked)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import ibis
from ibis.expr.types import Table

from . import engine
from .analysis import frictions as friction_analysis
from .errors import QueryError
from .spec import KINDS, Moment

if TYPE_CHECKING:
    from .engine.runtime import Runtime
    from .spec.model import Workspace as Spec


class Frictions:
    """A mixin: the workspace gives the store, the runtime and the fresh derived tables."""

    spec: Spec
    run: Runtime
    db: Any

    def moment(self, name: str) -> Moment: ...
    def refresh(self, *, force: bool = False) -> bool: ...

    def _refresh_frictions(self) -> None:
        """Detect frictions if events, definitions or detector settings changed."""
        self.refresh()
        fp = self.run.get_meta("attempts_fingerprint") or ""
        settings = self.spec.frictions.model_dump_json()
        versions = ",".join(f"{d.KIND}:{d.VERSION}" for d in engine.frictions.DETECTORS)
        key = hashlib.sha256(f"{fp}:{settings}:{versions}".encode()).hexdigest()
        if self.run.get_meta("frictions_fingerprint") == key:
            return
        fr = engine.frictions
        # The spans and the scope are read by every detector: computed once, kept in
        # memory only.
        spans = self.run.save("friction_spans", fr.spans(self.db.table("attempts"),
                                                         engine.moment_settings(self.spec)), temp=True)
        scope = self.run.save("friction_scope", fr.scope(self.db.table("timeline"),
                                                         self.db.table("tagged"), spans), temp=True)
        events = self.run.events()
        ctx = fr.Context(self.spec, events, self.db.table("timeline"), spans)
        found = self.run.save("friction_found", fr.detect(scope, ctx), temp=True)
        self.run.save("frictions", fr.named(found, spans, events))
        # The summary's sufficient statistics, kept beside the rows: small tables that
        # reports and dashboards read.
        # Kept (by the attempt's id): a filtered summary is counted again from it.
        per = fr.per_attempt(found, spans)
        ids = spans.select(i_inner="inner", i_id="attempt_id")
        per = per.inner_join(ids, per.attempt == ids.i_inner)
        per = self.run.save("friction_attempts", per.mutate(attempt=per.i_id).drop("i_inner", "i_id"))
        kinds, moments = fr.friction_stats(per, self.db.table("attempts"))
        self.run.save("friction_kinds", kinds)
        self.run.save("friction_moments", moments)
        for temp in ("friction_found", "friction_scope", "friction_spans"):
            self.run.drop(temp)
        self.run.set_meta("frictions_fingerprint", key)

    def frictions(self, moment: str | None = None, *, kind: str | None = None) -> Table:
        """Friction rows: attempt, person, moment, step, kind, detector version, seconds
        lost, time (``at_ms``) and evidence (event ids); all moments or one."""
        if moment is not None:
            self.moment(moment)
        if kind is not None and kind not in KINDS:
            raise QueryError(f"unknown friction kind {kind!r}; kinds: {', '.join(KINDS)}",
                             code="query/option")
        self._refresh_frictions()
        t = self.db.table("frictions")
        if moment is not None:
            t = t.filter(t.moment == moment)
        return t if kind is None else t.filter(t.kind == kind)

    def friction_detectors(self) -> list[dict[str, object]]:
        """The detectors in registry order: kind, version, enabled, settings in force."""
        out = []
        for d in engine.frictions.DETECTORS:
            settings = getattr(self.spec.frictions, d.KIND).model_dump(mode="json")
            out.append({"kind": d.KIND, "version": d.VERSION, "enabled": settings.pop("enabled"),
                        "settings": settings})
        return out

    def friction_summary(self, moment: str | None = None, *,
                         attempts: Table | None = None) -> tuple[Table, Table]:
        """Per moment (score, seconds per attempt, share affected) and per kind (ranked by
        seconds lost, with the impact on completion): ``(moments, kinds)``; over
        ``attempts`` (some of :meth:`attempts`, filtered) when given, else all."""
        self.frictions(moment)
        kinds, moments = self.db.table("friction_kinds"), self.db.table("friction_moments")
        if attempts is not None:  # counted again over the attempts kept
            per = self.db.table("friction_attempts")
            keep = attempts.select(k_id="attempt_id")
            per = per.semi_join(keep, per.attempt == keep.k_id)
            kinds, moments = engine.frictions.friction_stats(per, attempts)
        if moment is not None:
            kinds, moments = kinds.filter(kinds.moment == moment), moments.filter(moments.moment == moment)
        m = moments.to_pandas()
        summary = friction_analysis.summary(m, self.spec)
        ranked = friction_analysis.ranked(kinds.to_pandas(), m, self.spec)
        return ibis.memtable(summary), ibis.memtable(ranked)
