"""The team's records in the Python API (:class:`~microjourney.workspace.Workspace` inherits
them): changes to moments added, listed and removed (docs/playbook.md), and moments'
baselines frozen on request (docs/review.md)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import duckdb
from pydantic import ValidationError

from .errors import QueryError
from .spec.changes import Change
from .store import baselines as baseline_store
from .store import changes as store

if TYPE_CHECKING:
    from .spec.model import Workspace as Spec


class Changes:
    """A mixin: the workspace gives the spec and the store's connection."""

    spec: Spec
    con: duckdb.DuckDBPyConnection

    if TYPE_CHECKING:  # the workspace's (Analyses); a stub here would hide it
        def analysis(self, name: str, **params: Any) -> Any: ...

    def add_change(self, moment: str, day: date | str, kind: str, title: str, *,
                   experiment: str | None = None, note: str | None = None,
                   source: str = "api") -> dict[str, Any]:
        """Keep a change to ``moment`` shipped on ``day``; returns it with its ``change_id``
        and ``new`` (False when the same moment, day and title were kept before).

        Raises :class:`QueryError` (``query/change``) naming the field that is wrong."""
        try:
            c = Change(moment=moment, day=day, kind=kind, title=title,  # type: ignore[arg-type]
                       experiment=experiment, note=note)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"]) or "change"
            raise QueryError(f"{where}: {first['msg']}", code="query/change") from None
        if c.moment not in self.spec.moments:
            raise QueryError(f"moment: no moment {c.moment!r}; moments: "
                             f"{', '.join(self.spec.moments) or 'none defined yet'}", code="query/change")
        if c.experiment is not None and c.experiment not in {e.name for e in self.spec.experiments}:
            known = ", ".join(e.name for e in self.spec.experiments) or "none defined yet"
            raise QueryError(f"experiment: no experiment {c.experiment!r}; experiments: {known}",
                             code="query/change")
        ident, new = store.add(self.con, moment=c.moment, day=c.day, kind=c.kind, title=c.title,
                               experiment=c.experiment, note=c.note, source=source)
        return {"change_id": ident, "new": new, **c.model_dump()}

    def changes(self, moment: str | None = None) -> list[dict[str, Any]]:
        """The changes kept (or ``moment``'s), by day."""
        return store.listed(self.con, moment)

    def remove_change(self, change_id: str) -> bool:
        """Forget the change ``change_id``; False when there was none."""
        return store.remove(self.con, change_id)

    def freeze_baseline(self, moment: str, *, since: str | None = None, until: str | None = None,
                        days: int = 28) -> dict[str, Any]:
        """Freeze ``moment``'s baseline: its scorecard over ``since`` to ``until`` (days,
        YYYY-MM-DD; default: the ``days`` days before the end of the data), kept in the store
        with the day it was frozen. The latest is the moment's baseline (docs/review.md)."""
        return self.freeze_baselines([moment], since=since, until=until, days=days)[0]

    def freeze_baselines(self, moments: Sequence[str], *, since: str | None = None,
                         until: str | None = None, days: int = 28) -> list[dict[str, Any]]:
        """:meth:`freeze_baseline` for each of ``moments`` over one period (one scorecard)."""
        for moment in moments:
            if moment not in self.spec.moments:
                raise QueryError(f"no moment {moment!r}; moments: "
                                 f"{', '.join(self.spec.moments) or 'none defined yet'}",
                                 code="query/moment")
        end = _day(until) if until else _end_of_data(self.analysis("scorecard").meta.get("as_of"))
        start = _day(since) if since else end - timedelta(days=days)
        if not start < end:
            raise QueryError(f"baseline: the period {start.date()} to {end.date()} is empty",
                             code="query/option")
        card = self.analysis("scorecard", since=start.date().isoformat(), until=end.date().isoformat())
        rows = {r["moment"]: r for r in card.table().to_dict("records")}
        for moment in moments:
            if not (rows.get(moment) or {}).get("attempts"):
                raise QueryError(f"baseline: {moment} has no attempts from {start.date()} to "
                                 f"{end.date()}", code="query/option")
        return [baseline_store.freeze(self.con, moment, start, end,
                                      {k: _plain(rows[moment].get(k)) for k in BASELINE_FIGURES})
                for moment in moments]

    def baselines(self, moment: str | None = None) -> list[dict[str, Any]]:
        """The baselines frozen (or ``moment``'s), newest first."""
        return baseline_store.listed(self.con, moment)


#: The scorecard's figures a baseline keeps.
BASELINE_FIGURES = ("attempts", "finished", "completion_rate", "completion_ci", "failure_rate",
                    "abandonment_rate", "escalation_rate", "repeat_contact_rate",
                    "duration_median_s", "duration_p90_s", "sla_met_rate")


def _day(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        raise QueryError(f"baseline: {text!r} is not a day (YYYY-MM-DD)", code="query/option") from None


def _end_of_data(as_of: Any) -> datetime:
    """The day after the data's last event (midnight UTC), or today's when there is none."""
    last = as_of if isinstance(as_of, datetime) else (
        datetime.fromisoformat(str(as_of)) if as_of else datetime.now(UTC))
    last = last if last.tzinfo else last.replace(tzinfo=UTC)
    return datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)


def _plain(value: Any) -> Any:
    """A figure as JSON: numbers as floats (NaN as None), intervals as lists."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if x != x else x
