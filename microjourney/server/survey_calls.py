"""The requests of ``GET /v1/decide`` and ``POST /v1/responses`` taken apart and checked,
and the survey events they become (docs/collector.md, "Surveys").

Everything a client sends is bounded here (sizes, types) before it reaches the rules or
the collector; a bad value is a 400 ``request/bad`` whose message starts with the field
(``answers[1].answer: '6' is not an answer to csat question 'ease' ...``). The events go
through the collector like any track call, so consent, scrubbing and durability are the
collector's (docs/collector.md, "Durability").
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ..errors import ApiError
from ..ingest.schema import CHANNELS, MAX_OFFSET_MINUTES
from ..spec.surveys import Survey
from ..spec.types import MAX_LIST
from .decide import Ask, Shown
from .survey_history import DISMISSED, RESPONSE, SHOWN

#: Characters of an identifier, event name, event id, attempt or display id.
MAX_ID = 200
#: Characters of the ``properties`` JSON of a decide.
MAX_PROPERTIES = 2_000
#: Answers in one ``POST /v1/responses``.
MAX_ANSWERS = 100
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$")
_TRUE, _FALSE = ("true", "1"), ("false", "0", "")


def json_body(raw: bytes) -> Any:
    """A request body read as JSON; 400 ``request/bad-json`` when it is not."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError("request/bad-json", f"the body is not JSON: {exc}") from None


def bad(where: str, message: str) -> ApiError:
    return ApiError("request/bad", f"{where}: {message}")


def text_field(value: Any, where: str, *, required: bool = False, limit: int = MAX_ID) -> str | None:
    if value is None or value == "":
        if required:
            raise bad(where, "required")
        return None
    if not isinstance(value, str):
        raise bad(where, f"a string, not {type(value).__name__}")
    if len(value) > limit:
        raise bad(where, f"{len(value):,} characters; at most {limit:,}")
    if not value.strip():
        raise bad(where, "blank")
    return value


def flag_field(value: Any, where: str) -> bool:
    if isinstance(value, bool) or value is None:
        return bool(value)
    if isinstance(value, str) and value.lower() in (*_TRUE, *_FALSE):
        return value.lower() in _TRUE
    raise bad(where, "true or false")


def channel_field(value: Any, where: str) -> str:
    channel = text_field(value, where) or "web"
    if channel not in CHANNELS:
        raise bad(where, f"unknown channel; channels: {', '.join(CHANNELS)}")
    return channel


def ask(query: Mapping[str, str], *, need_event: bool = True) -> tuple[Ask, bool]:
    """The decide's query string as an :class:`Ask` (``event`` may be missing when not
    ``need_event``: experiments named only), and whether it carries consent."""
    props: dict[str, Any] = {}
    raw = query.get("properties")
    if raw:
        if len(raw) > MAX_PROPERTIES:
            raise bad("properties", f"{len(raw):,} characters; at most {MAX_PROPERTIES:,}")
        try:
            props = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise bad("properties", "not JSON") from None
        if not isinstance(props, dict):
            raise bad("properties", "a JSON object")
    language = text_field(query.get("language"), "language", limit=35)
    if language is not None and not _LANGUAGE.match(language):
        raise bad("language", "a language tag like de or pt-BR")
    a = Ask(event=text_field(query.get("event"), "event", required=need_event) or "",
            channel=channel_field(query.get("channel"), "channel"),
            anonymous_id=text_field(query.get("anonymous_id"), "anonymous_id"),
            user_id=text_field(query.get("user_id"), "user_id"), language=language,
            event_id=text_field(query.get("event_id"), "event_id"),
            attempt=text_field(query.get("attempt"), "attempt"), properties=props)
    if not a.ids:
        raise bad("anonymous_id", "an anonymous_id or a user_id is required")
    return a, flag_field(query.get("consent"), "consent")


def digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


def consent_context(consent: bool) -> dict[str, Any]:
    return {"consent": {"analytics": True}} if consent else {}


def shown_call(a: Ask, shown: Shown, consent: bool, now: datetime) -> dict[str, Any]:
    """The ``survey_shown`` track call of a display (one id per display: a retry is a
    duplicate)."""
    props: dict[str, Any] = {"survey": shown.survey.name, "display": shown.display,
                             "control": shown.control}
    if a.attempt:
        props["attempt"] = a.attempt
    return {"type": "track", "event": SHOWN,
            "event_id": "mj-shown-" + digest(shown.survey.name, shown.display),
            "timestamp": now.isoformat(), "anonymous_id": a.anonymous_id, "user_id": a.user_id,
            "channel": a.channel, "properties": props, "context": consent_context(consent)}


@dataclass(frozen=True)
class Given:
    """One answer (or dismissal) of ``POST /v1/responses``, checked, as its track call."""

    call: dict[str, Any]
    ids: tuple[str, ...]
    survey: str
    display: str
    dismissed: bool
    consent: bool


def timestamp_field(value: Any, where: str, now: datetime, tolerance: float) -> str:
    if value is None:
        return now.isoformat()
    text = text_field(value, where, limit=40) or ""
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise bad(where, "an ISO 8601 date-time with an offset") from None
    offset = ts.utcoffset()
    if offset is None:
        raise bad(where, "has no time zone offset (give one)")
    if abs(offset) > timedelta(minutes=MAX_OFFSET_MINUTES):
        raise bad(where, "offset beyond ±14:00")
    if not datetime(1970, 1, 1, tzinfo=UTC) <= ts <= now + timedelta(seconds=tolerance):
        raise bad(where, "outside 1970 to the present")
    return ts.isoformat()


def _answer_value(item: Mapping[str, Any], where: str) -> object:
    value = item.get("answer")
    if isinstance(value, list):  # a multiple choice as a list
        if len(value) > MAX_LIST or not all(isinstance(v, str) for v in value):
            raise bad(where, f"a list of at most {MAX_LIST:,} choices (strings)")
        return ";".join(value)
    if value is None or isinstance(value, dict):
        raise bad(where, "required: a number, a string or true/false")
    return value


def given(item: Any, where: str, surveys: Mapping[str, Survey], now: datetime,
          tolerance: float) -> Given:
    """One answer or dismissal of a responses body, checked (``where``: its place)."""
    if not isinstance(item, dict):
        raise bad(where, "an answer is a JSON object")
    name = text_field(item.get("survey"), f"{where}survey", required=True) or ""
    survey = surveys.get(name)
    if survey is None:
        raise bad(f"{where}survey", f"no survey {name[:40]!r} in this workspace")
    display = text_field(item.get("display"), f"{where}display", required=True) or ""
    ids = tuple(i for i in (text_field(item.get("anonymous_id"), f"{where}anonymous_id"),
                            text_field(item.get("user_id"), f"{where}user_id")) if i)
    if not ids:
        raise bad(f"{where}anonymous_id", "an anonymous_id or a user_id is required")
    attempt = text_field(item.get("attempt"), f"{where}attempt")
    consent = flag_field(item.get("consent"), f"{where}consent")
    dismissed = flag_field(item.get("dismissed"), f"{where}dismissed")
    props: dict[str, Any] = {"survey": name, "display": display}
    if dismissed:
        event, event_id = DISMISSED, "mj-dismissed-" + digest(name, display)
    else:
        qid = text_field(item.get("question"), f"{where}question", required=True) or ""
        try:
            question = survey.question(qid)
        except KeyError:
            raise bad(f"{where}question", f"survey {name!r} has no question {qid[:40]!r}; its "
                      f"questions: {', '.join(q.id for q in survey.questions)}") from None
        try:
            answer = question.answer(_answer_value(item, f"{where}answer"))
        except ValueError as exc:
            raise bad(f"{where}answer", str(exc)) from None
        if answer == "":
            raise bad(f"{where}answer", "empty (send nothing for a question left unanswered)")
        props.update(question=qid, answer=answer, final=flag_field(item.get("final"), f"{where}final"))
        event, event_id = RESPONSE, "mj-response-" + digest(name, display, qid)
    if attempt:
        props["attempt"] = attempt
    call = {"type": "track", "event": event, "event_id": event_id,
            "timestamp": timestamp_field(item.get("timestamp"), f"{where}timestamp", now, tolerance),
            "anonymous_id": ids[0] if item.get("anonymous_id") else None,
            "user_id": item.get("user_id") or None,
            "channel": channel_field(item.get("channel"), f"{where}channel"),
            "properties": props, "context": consent_context(consent)}
    return Given(call, ids, name, display, dismissed, consent)


def answers(body: Any, surveys: Mapping[str, Survey], now: datetime, tolerance: float) -> list[Given]:
    """The answers of a responses body: one answer, a list of them, or ``{"answers": [...]}``."""
    if isinstance(body, dict) and "answers" in body:
        body = body["answers"]
        prefix = "answers"
    else:
        prefix = ""
    if isinstance(body, dict):
        return [given(body, "", surveys, now, tolerance)]
    if not isinstance(body, list) or not body:
        raise bad(prefix or "body", "an answer (a JSON object) or a non-empty list of them")
    if len(body) > MAX_ANSWERS:
        raise bad(prefix or "body", f"{len(body):,} answers; at most {MAX_ANSWERS}")
    return [given(item, f"{prefix}[{i}].", surveys, now, tolerance) for i, item in enumerate(body)]
