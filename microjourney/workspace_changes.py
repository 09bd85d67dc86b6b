"""The change playbook's part of the Python API (:class:`~microjourney.workspace.Workspace`
inherits it): changes to moments added, listed and removed (docs/playbook.md)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

import duckdb
from pydantic import ValidationError

from .errors import QueryError
from .spec.changes import Change
from .store import changes as store

if TYPE_CHECKING:
    from .spec.model import Workspace as Spec


class Changes:
    """A mixin: the workspace gives the spec and the store's connection."""

    spec: Spec
    con: duckdb.DuckDBPyConnection

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
