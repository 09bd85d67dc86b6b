"""The friction part of the Python API (:class:`~microjourney.workspace.Workspace`
inherits it): the friction rows (derived by the refresh, :mod:`.workspace_refresh`), the
detectors in force, and the summary with its impact on completion (counted again over
filtered attempts when asked)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ibis
from ibis.expr.types import Table

from . import engine
from .analysis import frictions as friction_analysis
from .errors import QueryError, WorkspaceError
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
    _reading: bool

    def refresh(self, *, force: bool = False, frictions: bool = False) -> Any: ...
    def _state(self) -> dict[str, Any] | None: ...

    def _refresh_frictions(self) -> None:
        """The derived tables up to date, the friction tables included: derived the first
        time they are read, kept up to date by every refresh after."""
        self.refresh(frictions=True)
        if self._reading and not (self._state() or {}).get("definitions", {}).get("frictions"):
            raise WorkspaceError("the friction tables have not been derived yet; the server's "
                                 "next refresh makes them", code="workspace/not-refreshed")

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
