"""Who was shown which survey, and which displays were answered: the history
``GET /v1/decide`` reads, kept in memory (docs/surveys.md, "Serving surveys").

Read once from the store's survey events when the server starts (one scan of the events
named ``survey_shown``, ``survey_response`` and ``survey_dismissed``), then kept up to date
by every decide and every response the server takes, so that a decision never scans the
events. By identifier (an ``anonymous_id`` or a ``user_id``, as the events carry them):
each survey's displays and when they were shown; by survey: the displays answered (for
``cap`` and ``until_answered``) and dismissed. Survey events sent some other way while the
server runs (``POST /v1/batch``, file ingest) are read at the next start.

Identifiers are personal data: the history holds no more than the survey events do, and
an erasure (``DELETE /v1/persons/{id}``) drops the person's identifiers from it too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import duckdb

SHOWN, RESPONSE, DISMISSED = "survey_shown", "survey_response", "survey_dismissed"
#: The survey events of a table of events (``source``), oldest first. Constants only.
_SQL = """SELECT event, anonymous_id, user_id, epoch_ms(timestamp),
       json_extract_string(properties, '/survey'),
       coalesce(json_extract_string(properties, '/display'), event_id)
FROM source
WHERE event IN ('survey_shown', 'survey_response', 'survey_dismissed')
ORDER BY timestamp"""


class History:
    """The survey history by identifier and by survey (module doc). ``lock`` is held by a
    decision from its checks to the display it records, so that two requests at once
    cannot both take a person's only display."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        #: identifier -> survey -> display -> when shown (ms since 1970)
        self._shown: dict[str, dict[str, dict[str, int]]] = {}
        self._answered: dict[str, set[str]] = {}
        self._dismissed: dict[str, set[str]] = {}

    def load(self, source: duckdb.DuckDBPyRelation) -> History:
        """Take in the survey events of ``source`` (the store's events, or a lake's)."""
        found = source.query("source", _SQL)
        rows = found.fetchall() if found is not None else []
        with self.lock:
            for event, anonymous_id, user_id, ms, survey, display in rows:
                if not survey or not display:
                    continue
                ids = [i for i in (anonymous_id, user_id) if i]
                if event == SHOWN:
                    self.show(ids, survey, display, ms)
                elif event == RESPONSE:
                    self.answer(ids, survey, display, ms)
                else:
                    self.dismiss(ids, survey, display, ms)
        return self

    def displays(self, ids: Iterable[str], survey: str) -> dict[str, int]:
        """The displays of ``survey`` to anyone of ``ids``, with when each was shown."""
        out: dict[str, int] = {}
        for i in ids:
            out.update(self._shown.get(i, {}).get(survey, {}))
        return out

    def last_shown(self, ids: Iterable[str]) -> int | None:
        """When anyone of ``ids`` was last shown any survey (ms), or None."""
        times = [ms for i in ids for shown in self._shown.get(i, {}).values() for ms in shown.values()]
        return max(times, default=None)

    def answered(self, survey: str, display: str) -> bool:
        return display in self._answered.get(survey, ())

    def dismissed(self, survey: str, display: str) -> bool:
        return display in self._dismissed.get(survey, ())

    def answered_displays(self, survey: str) -> int:
        """How many displays of ``survey`` have at least one answer (``cap``)."""
        return len(self._answered.get(survey, ()))

    def show(self, ids: Iterable[str], survey: str, display: str, ms: int) -> None:
        """A display of ``survey`` to ``ids`` at ``ms`` (the first time counts)."""
        with self.lock:
            for i in ids:
                self._shown.setdefault(i, {}).setdefault(survey, {}).setdefault(display, ms)

    def unshow(self, ids: Iterable[str], survey: str, display: str) -> None:
        """Forget a display that was not recorded after all (withheld, refused)."""
        with self.lock:
            for i in ids:
                self._shown.get(i, {}).get(survey, {}).pop(display, None)

    def answer(self, ids: Iterable[str], survey: str, display: str, ms: int) -> None:
        """An answer in ``display``: it was shown (an answer without a display of record is
        a display of its own, docs/surveys.md) and is answered."""
        with self.lock:
            self.show(ids, survey, display, ms)
            self._answered.setdefault(survey, set()).add(display)

    def dismiss(self, ids: Iterable[str], survey: str, display: str, ms: int) -> None:
        with self.lock:
            self.show(ids, survey, display, ms)
            self._dismissed.setdefault(survey, set()).add(display)

    def drop(self, ids: Iterable[str]) -> None:
        """Forget the identifiers ``ids`` (an erased person's) and their displays, as a
        restart would after the erasure."""
        with self.lock:
            for i in ids:
                for survey, shown in self._shown.pop(i, {}).items():
                    for display in shown:
                        self._answered.get(survey, set()).discard(display)
                        self._dismissed.get(survey, set()).discard(display)
