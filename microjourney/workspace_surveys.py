"""The voice-of-the-customer part of the Python API (:class:`~microjourney.workspace.Workspace`
inherits it): the surveys declared, their answers linked to attempts, their displays,
answers imported from other tools (docs/surveys.md), and customer texts (docs/intents.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa
from ibis.expr.types import Table

from .engine import surveys as survey_engine
from .errors import IngestError, QueryError
from .identity import with_person
from .ingest import readers
from .ingest.lines import Reject
from .ingest.responses import ResponseColumns, columns_of, response_events
from .ingest.texts import SOURCES, TextColumns, text_events
from .spec.surveys import Survey

if TYPE_CHECKING:
    from .engine.runtime import Runtime
    from .spec.model import Workspace as Spec
    from .workspace import IngestResult


#: The columns of the attempts and friction tables the survey analyses read, for a
#: workspace with none yet.
ATTEMPT_COLUMNS = {"attempt_id": "string", "person": "string", "moment": "string",
                   "start_ts": "timestamp('UTC')", "end_ts": "timestamp('UTC')",
                   "outcome": "string", "channel": "string", "furthest_step": "int64",
                   "escalated": "boolean", "properties": "json", "context": "json"}
FRICTION_COLUMNS = {"attempt": "string", "kind": "string"}


def _empty(columns: Mapping[str, str]) -> Table:
    schema = ibis.schema(dict(columns))
    return ibis.memtable(schema.to_pyarrow().empty_table(), schema=schema)


class Surveys:
    """A mixin: the workspace gives the spec, the runtime and fresh derived tables."""

    spec: Spec
    run: Runtime
    db: Any

    def _refresh_frictions(self) -> None: ...
    def _persons(self) -> Table: ...

    def survey(self, name: str) -> Survey:
        """The survey ``name`` as declared (a ``QueryError`` naming the surveys there are)."""
        for s in self.spec.surveys:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.spec.surveys) or "none defined yet"
        raise QueryError(f"no survey {name!r}; surveys: {known}", code="query/survey")

    def _surveys(self, names: str | Sequence[str] | None) -> list[Survey]:
        if names is None:
            return list(self.spec.surveys)
        return [self.survey(n) for n in ([names] if isinstance(names, str) else names)]

    def events_of(self, event: str) -> Table:
        """The events named ``event`` with their ``person`` (survey events, texts,
        exposures...)."""
        events = self.run.events()
        events = events.filter(events.event == event)
        if not self.spec.moments:  # answers imported into a workspace of no moment yet
            return events.mutate(person=ibis.coalesce(events.user_id, events.anonymous_id))
        return with_person(events, self._persons())

    def survey_attempts(self) -> tuple[Table, Table]:
        """The attempts answers link to and the friction rows per (attempt, kind): the
        derived tables, or empty ones in a workspace of no moment yet."""
        if not self.spec.moments:
            return _empty(ATTEMPT_COLUMNS), _empty(FRICTION_COLUMNS)
        self._refresh_frictions()
        return self.db.table("attempts"), self.db.table("friction_attempts")

    def survey_answers(self, survey: str | Sequence[str] | None = None, *,
                       linked: bool = True) -> Table:
        """One row per answer (per survey, display and question; the first one stored) with
        the attempt it links to (``attempt_id``, NULL when none; the attempt's outcome,
        channel and furthest step as ``a_outcome``, ``a_channel``, ``a_furthest_step``):
        one survey's, those named or every survey's (docs/surveys.md, "Linking answers to attempts").
        ``linked=False``: the answers alone, with their person, linked to nothing."""
        chosen = self._surveys(survey)
        if not linked:
            return survey_engine.answers(self.events_of(survey_engine.RESPONSE),
                                         [s.name for s in chosen] or [""])
        attempts, _ = self.survey_attempts()
        names = [s.name for s in chosen]
        rows = survey_engine.answers(self.events_of(survey_engine.RESPONSE), names or [""])
        links = ibis.memtable(pa.table({
            "link_survey": pa.array(names, pa.string()),
            "link_moment": pa.array([s.moment for s in chosen], pa.string()),
            "link_ms": pa.array([int(s.link_within * 1000) for s in chosen], pa.int64()),
        }))
        return survey_engine.linked(rows, attempts, links)

    def survey_displays(self, survey: str | Sequence[str] | None = None) -> Table:
        """One row per display of one survey or every survey: when and in which channel it
        was shown, whether to the control sample, whether it was dismissed."""
        names = [s.name for s in self._surveys(survey)]
        events = self.run.events()
        return survey_engine.displays(events.filter(events.event.isin(
            (survey_engine.SHOWN, survey_engine.DISMISSED))), names or [""])

    def _ingest(self, path: str | os.PathLike[str], **kw: Any) -> IngestResult: ...

    def ingest_responses(
        self,
        path: str | os.PathLike[str],
        *,
        survey: str,
        answers: Mapping[str, str],
        time: str,
        time_format: str | None = None,
        person: str | None = None,
        response: str | None = None,
        properties: Mapping[str, str] | None = None,
        channel: str = "other",
        timezone: str | None = None,
        format: str | None = None,  # noqa: A002 - the CLI's word
    ) -> IngestResult:
        """Import a survey's answers from a CSV or JSON Lines file of responses, one row
        each (docs/surveys.md, "Importing answers"): ``answers`` maps question ids to
        columns, ``time`` names the column with when the response was given (read with
        ``time_format``, ``strptime`` codes, else ISO 8601; ``timezone`` for times without
        an offset), ``person`` a column with the customer's user id, ``response`` a column
        with the response's own id, ``properties`` columns kept with each answer (property →
        column). An answer off its question's scale goes to quarantine with its row and
        column; importing the same file again stores nothing twice.

        >>> ws.ingest_responses("ivr.csv", survey="call_csat", answers={"csat": "score"},
        ...                     time="called_at", person="customer")  # doctest: +SKIP
        """
        s = self.survey(survey)
        fmt = format or readers.detect_format(path)
        if fmt not in ("csv", "jsonl"):
            raise IngestError(f"{path}: answers import from CSV or JSON Lines, not {fmt}",
                              code="ingest/format")
        cols = ResponseColumns(dict(answers), time, time_format, person, response,
                               dict(properties or {}))
        source = Path(path).name
        checked: list[bool] = []

        def answer(qid: str, value: object) -> str:
            return s.question(qid).answer(value)

        def rows(table: pa.Table) -> tuple[pa.Table, list[Reject]]:
            if not checked:
                cols.check(s.name, [q.id for q in s.questions], columns_of(table), str(path))
                checked.append(True)
            return response_events(table, s.name, answer, cols, source)

        return self._ingest(path, format=fmt, channel=channel, timezone=timezone, rows=rows)

    def texts(self, source: str | None = None) -> Table:
        """Customer texts (``customer_text`` events) with their person, ``text``, ``source``
        and ``text_id``, oldest first: every source's or one's (docs/intents.md)."""
        rows = survey_engine.texts(self.events_of(survey_engine.TEXT))
        return rows if source is None else rows.filter(rows.source == source)

    def ingest_texts(
        self,
        path: str | os.PathLike[str],
        *,
        text: str,
        source: str = "other",
        time: str | None = None,
        time_format: str | None = None,
        person: str | None = None,
        ident: str | None = None,
        channel_column: str | None = None,
        source_column: str | None = None,
        channel: str = "other",
        timezone: str | None = None,
        format: str | None = None,  # noqa: A002 - the CLI's word
    ) -> IngestResult:
        """Import customer texts from a CSV or JSON Lines file, one per row (docs/intents.md,
        "Customer texts"): ``text`` names the column with the text, ``source`` says where
        they come from (:data:`~microjourney.ingest.texts.SOURCES`), ``time`` the column with
        when each was written (``time_format`` in ``strptime`` codes; None: now), ``person``
        a column with the customer's user id, ``ident`` a column with each text's own id,
        ``channel_column`` a column naming each text's channel (else ``channel``),
        ``source_column`` one naming each text's source (else ``source``). Importing the
        same file again stores nothing twice."""
        if source not in SOURCES:
            raise IngestError(f"unknown text source {source!r}; sources: {', '.join(SOURCES)}",
                              code="ingest/mapping")
        fmt = format or readers.detect_format(path)
        if fmt not in ("csv", "jsonl"):
            raise IngestError(f"{path}: texts import from CSV or JSON Lines, not {fmt}",
                              code="ingest/format")
        cols = TextColumns(text, time, time_format, person, ident, channel_column, source_column)
        name, now, checked = Path(path).name, datetime.now(UTC), []

        def rows(table: pa.Table) -> tuple[pa.Table, list[Reject]]:
            if not checked:
                cols.check(columns_of(table), str(path))
                checked.append(True)
            return text_events(table, cols, source=source, kind=source, channel=channel,
                               file=name, now=now)

        return self._ingest(path, format=fmt, channel=channel, timezone=timezone, rows=rows)
