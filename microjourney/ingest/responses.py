"""Survey answers from other tools (post-call IVR, e-mail, in-app surveys) as survey
events: each row of a CSV or JSON Lines file is one response, each answer column one
``survey_response`` event (docs/surveys.md, "Importing answers").

The rows come as a reader gives them (:mod:`.readers`); what comes out is raw event rows
for the store's writer, which judges, scrubs and stores them like any other. An answer
that is no answer to its question (off the scale, not a choice) is a reject with the row,
the column and the reason; an empty cell is no answer and nothing more. Event ids are
made from the survey, the response and the question, so importing a file twice stores it
once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from ..errors import IngestError
from .lines import Reject
from .schema import FIELDS, ROW

__all__ = ["ResponseColumns", "parse_time", "response_events"]

RESPONSE = "survey_response"
#: The properties an answer event carries itself.
RESERVED = ("survey", "display", "question", "answer", "final", "attempt")


@dataclass(frozen=True)
class ResponseColumns:
    """Which columns of a file hold what: ``answers`` (question id → column), ``time`` (the
    column with when the response was given) and its ``time_format`` (``strptime``; None:
    ISO 8601), ``person`` (the column with the customer's user id; None: each response is
    its own anonymous respondent), ``response`` (a column with the response's own id; None:
    the file and row), and ``properties`` kept with each answer (property → column)."""

    answers: Mapping[str, str]
    time: str
    time_format: str | None = None
    person: str | None = None
    response: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)

    def needed(self) -> list[str]:
        """Every column named, once each, in order."""
        named = [*self.answers.values(), self.time, self.person, self.response,
                 *self.properties.values()]
        return list(dict.fromkeys(c for c in named if c))

    def check(self, survey: str, questions: Sequence[str], columns: list[str], path: str) -> None:
        """An ``IngestError`` when a question is not among the survey's ``questions`` or a
        column not the file's (a JSON Lines file's keys are its columns)."""
        for qid in self.answers:
            if qid not in questions:
                raise IngestError(f"--answer {qid}=...: survey {survey!r} has no question "
                                  f"{qid!r}; its questions: {', '.join(questions)}",
                                  code="ingest/mapping")
        if not self.answers:
            raise IngestError("name at least one answer column: --answer QUESTION=COLUMN",
                              code="ingest/mapping")
        for prop in self.properties:
            if prop in FIELDS or prop in RESERVED:
                raise IngestError(f"--property {prop}=...: {prop!r} is a field of the answer "
                                  "event; name the property otherwise", code="ingest/mapping")
        missing = [c for c in self.needed() if c not in columns]
        if missing:
            raise IngestError(f"{path} has no column {missing[0]!r}; columns: "
                              f"{', '.join(c for c in columns if c != ROW)}", code="ingest/mapping")


def rows_of(table: pa.Table) -> list[dict[str, Any]]:
    """The rows of a reader's batch, with a JSON Lines row's other keys (gathered in
    ``properties``) as columns of their own."""
    rows = table.to_pylist()
    if "properties" not in table.column_names:
        return rows
    out = []
    for row in rows:
        props = row.get("properties")
        extra: Any = {}
        if isinstance(props, str):
            try:
                extra = orjson.loads(props)
            except orjson.JSONDecodeError:
                extra = {}
        out.append({**(extra if isinstance(extra, dict) else {}), **row})
    return out


def columns_of(table: pa.Table) -> list[str]:
    """The columns a batch offers: its own, and a JSON Lines row's other keys."""
    names = [n for n in table.column_names if n != "properties"]
    if "properties" in table.column_names:
        for row in rows_of(table.slice(0, 100)):
            names.extend(k for k in row if k not in names)
    return names


def parse_time(text: str, fmt: str | None) -> str:
    """A response time as ISO 8601 text (without an offset when the file gives none: the
    writer applies ``--timezone`` or says it is missing)."""
    if fmt is None:
        return text
    try:
        return datetime.strptime(text, fmt).isoformat()
    except ValueError:
        raise ValueError(f"{text[:40]!r} does not match the time format {fmt!r}") from None


def _event_id(survey: str, response: str, question: str) -> str:
    digest = hashlib.sha256(f"{survey}\x1f{response}\x1f{question}".encode()).hexdigest()
    return f"resp-{digest[:32]}"


def response_events(table: pa.Table, survey: str, answer: Callable[[str, object], str],
                    cols: ResponseColumns, source: str) -> tuple[pa.Table, list[Reject]]:
    """Raw event rows (one per answer) of ``survey`` from a batch of response rows, and the
    rejects; ``answer(question, value)`` gives an answer as stored, or a ``ValueError``
    saying why it is none (:meth:`microjourney.spec.surveys.Question.answer`)."""
    out: dict[str, list[Any]] = {k: [] for k in (
        "event_id", "timestamp", "event", "user_id", "anonymous_id", ROW, "survey", "display",
        "question", "answer", "final", *cols.properties)}
    rejects: list[Reject] = []
    for cells in rows_of(table):
        row = int(cells.get(ROW) or 0)
        raw = orjson.dumps({c: cells.get(c) for c in cols.needed()}, default=str).decode()
        response = str(cells.get(cols.response) or "") if cols.response else ""
        response = response or f"{source}:{row}"
        when = cells.get(cols.time)
        try:
            stamp = parse_time(str(when).strip(), cols.time_format) if when not in (None, "") else None
        except ValueError as exc:
            rejects.append(Reject(row, f"row {row}: {cols.time}: {exc}", raw, "timestamp"))
            continue
        person = str(cells.get(cols.person) or "") if cols.person else ""
        answers: list[tuple[str, str]] = []
        for qid, column in cols.answers.items():
            value = cells.get(column)
            if value is None or str(value).strip() == "":
                continue
            try:
                answers.append((qid, answer(qid, value)))
            except ValueError as exc:
                rejects.append(Reject(row, f"row {row}: {column}: {exc}", raw, column))
        for qid, given in answers:
            out["event_id"].append(_event_id(survey, response, qid))
            out["timestamp"].append(stamp)
            out["event"].append(RESPONSE)
            out["user_id"].append(person or None)
            out["anonymous_id"].append(None if person else f"respondent:{response}")
            out[ROW].append(row)
            out["survey"].append(survey)
            out["display"].append(response)
            out["question"].append(qid)
            out["answer"].append(given)
            out["final"].append("true")
            for prop, column in cols.properties.items():
                value = cells.get(column)
                out[prop].append(None if value is None else str(value))
    arrays = {k: pa.array(v, pa.int64() if k == ROW else pa.string()) for k, v in out.items()}
    return pa.table(arrays), rejects
