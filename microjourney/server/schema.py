"""The shapes of the HTTP API, for its OpenAPI document (docs/collector.md).

The handlers do not parse requests with these models (per-event pydantic validation
halves the collector's throughput); :mod:`.calls` and the store's writer judge each call.
These models only describe the shapes, and a test keeps them in step with the handlers.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..ingest.schema import CHANNELS

Channel = Literal[CHANNELS]  # type: ignore[valid-type]


class _Call(BaseModel):
    model_config = ConfigDict(extra="allow")
    timestamp: str = Field(description="ISO 8601 date-time with a time zone offset",
                           examples=["2026-11-22T10:15:30.250Z"])
    anonymous_id: str | None = Field(None, description="The device's or visitor's id")
    user_id: str | None = Field(None, description="The customer's id in your systems")


class Track(_Call):
    """An event; judged exactly like a row of an ingested file."""

    type: Literal["track"] = "track"
    event: str = Field(description="The event's name", examples=["payment_gateway_loaded"])
    event_id: str | None = Field(None, description="Unique id chosen by the sender; a retried "
                                 "call with the same id is stored once")
    channel: Channel | None = Field(None, description="Where it happened (default: other)")
    session_id: str | None = None
    properties: dict[str, Any] | None = None
    context: dict[str, Any] | None = Field(None, description="Device, page, traits and "
                                           '`consent` (`{"analytics": true}`)')


class Page(_Call):
    """A page view, stored as the event ``page_viewed`` with a ``page`` property."""

    type: Literal["page"]
    name: str | None = Field(None, description="The page's name; default: properties.page, "
                             "else the path of properties.url")
    event_id: str | None = None
    channel: Channel | None = None
    session_id: str | None = None
    properties: dict[str, Any] | None = None
    context: dict[str, Any] | None = None


class Identify(_Call):
    """Links ``anonymous_id`` to ``user_id``; ``traits`` may hold identity keys (e-mail...)."""

    type: Literal["identify"]
    user_id: str
    traits: dict[str, Any] | None = None
    message_id: str | None = Field(None, description="Unique id; a retried call is stored once")


class Alias(_Call):
    """Joins ``previous_id`` (an earlier user id) to ``user_id``."""

    type: Literal["alias"]
    previous_id: str
    user_id: str
    message_id: str | None = None


class BatchRequest(BaseModel):
    """``POST /v1/batch``: up to 5000 calls."""

    batch: list[Track | Page | Identify | Alias] = Field(max_length=5000)
    key: str | None = Field(None, description="The key, when no Authorization header can be "
                            "sent (navigator.sendBeacon)")


class Rejected(BaseModel):
    index: int = Field(description="The call's place in the batch, from 0")
    field: str | None = Field(description="The field at fault")
    reason: str


class BatchAnswer(BaseModel):
    """Every accepted call is committed (durable) when this answer is sent."""

    ok: Literal[True]
    accepted: int
    duplicates: int = Field(description="Calls whose id was stored before (retries)")
    withheld: int = Field(description="Events not stored for lack of analytics consent")
    rejected: list[Rejected] = Field(description="Calls refused, also kept in quarantine")


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable code, e.g. auth/missing-key")
    message: str


class ErrorEnvelope(BaseModel):
    """The shape of every error the API answers."""

    ok: Literal[False]
    status: int
    error: ErrorDetail


class FollowUp(BaseModel):
    question: str
    at_least: int | None = None
    at_most: int | None = None


class QuestionShown(BaseModel):
    id: str
    type: Literal["nps", "csat", "ces", "thumbs", "single", "multiple", "text"]
    text: str = Field(description="In the language chosen, else the survey's own")
    choices: list[str]
    required: bool
    scale: list[int] | None = Field(description="The lowest and highest answer of a scored question")
    when: FollowUp | None = Field(description="A follow-up: shown only when the answer to "
                                  "`question` lies within the bounds")


class SurveyShown(BaseModel):
    name: str
    title: str | None
    display: str = Field(description="This display's id: answers and a dismissal name it")
    control: bool = Field(description="Shown to the control sample, whatever the outcome")
    delay_ms: int = Field(description="Wait this long before showing it")
    language: str | None = Field(description="The language of the texts (None: the survey's own)")
    questions: list[QuestionShown]


class DecideAnswer(BaseModel):
    """The survey to show now, or none; the display is recorded (committed) already. The
    variants are only assigned: the client logs an exposure when it shows one."""

    ok: Literal[True]
    survey: SurveyShown | None
    experiments: dict[str, str] = Field(description="By running experiment of the event's "
                                        "moment, and by running experiment named, the person's "
                                        "variant (user_id, else anonymous_id)")
    refused: dict[str, str] = Field(description="By survey of the moment, the first rule it "
                                    "failed: window, trigger, cap, shown, recontact, cooldown, "
                                    "sample, consent")


class SurveyAnswer(BaseModel):
    """One answer in a display, or its dismissal (``dismissed: true``, no question)."""

    survey: str
    display: str
    question: str | None = None
    answer: str | int | float | bool | list[str] | None = Field(
        None, description="Checked against the question (NPS 0-10, CSAT 1-5, CES 1-7, thumbs, "
        "a choice, text up to 5000 characters)")
    final: bool = Field(False, description="The last answer of this display")
    dismissed: bool = False
    anonymous_id: str | None = None
    user_id: str | None = None
    attempt: str | None = None
    channel: Channel | None = None
    timestamp: str | None = Field(None, description="ISO 8601 with an offset; default: now")
    consent: bool = Field(False, description="The person gave analytics consent")


class ResponsesRequest(BaseModel):
    """``POST /v1/responses``: one answer, or up to 100 under ``answers``."""

    answers: list[SurveyAnswer] = Field(max_length=100)


class ExposureCall(BaseModel):
    """One exposure: ``variant`` of ``experiment`` was shown to the person."""

    experiment: str
    variant: str = Field(description="One of the experiment's variants")
    anonymous_id: str | None = None
    user_id: str | None = None
    channel: Channel | None = None
    timestamp: str | None = Field(None, description="ISO 8601 with an offset; default: now")
    consent: bool = Field(False, description="The person gave analytics consent")


class ExposuresRequest(BaseModel):
    """``POST /v1/exposures``: one exposure, or up to 100 under ``exposures``."""

    exposures: list[ExposureCall] = Field(max_length=100)


class CustomerText(BaseModel):
    """``POST /v1/texts``: one customer text (send up to 100 under ``texts``)."""

    text: str = Field(description="1 to 5000 characters; scrubbed of personal data on the way in")
    source: str = Field("other", description="search, helpcentre, chat, agent_note, email, "
                        "survey or other")
    id: str | None = Field(None, description="The text's own id: a retried request stores it once")
    anonymous_id: str | None = None
    user_id: str | None = None
    channel: Channel | None = None
    timestamp: str | None = Field(None, description="ISO 8601 with an offset; default: now")
    consent: bool = Field(False, description="The person gave analytics consent")


_QUERY = {"event": ("The event just tracked (required unless experiment is given)", False),
          "channel": ("Where: web (default), app, ...", False),
          "anonymous_id": ("The visitor's id (this or user_id)", False),
          "user_id": ("The customer's id", False),
          "event_id": ("The tracked event's id: asking again gives the same answer", False),
          "attempt": ("The attempt, when the page knows it", False),
          "language": ("A language tag (de, pt-BR) for the texts", False),
          "properties": ("The event's properties as a JSON object, for moments that test "
                         "them (at most 2000 characters)", False),
          "consent": ("true when the person gave analytics consent", False)}
#: The query parameters of ``GET /v1/decide`` for the OpenAPI document.
DECIDE_PARAMETERS = [*({"name": name, "in": "query", "required": required, "description": doc,
                        "schema": {"type": "string"}} for name, (doc, required) in _QUERY.items()),
                     {"name": "experiment", "in": "query", "required": False, "explode": True,
                      "description": "Experiments to assign whatever the event (repeated or "
                      "comma-separated names)", "schema": {"type": "array", "items": {"type": "string"}}}]

MODELS = (Track, Page, Identify, Alias, BatchRequest, Rejected, BatchAnswer, ErrorDetail,
          ErrorEnvelope, FollowUp, QuestionShown, SurveyShown, DecideAnswer, SurveyAnswer,
          ResponsesRequest, ExposureCall, ExposuresRequest, CustomerText)


def openapi_components() -> dict[str, Any]:
    """JSON schemas of :data:`MODELS`, referring to each other under components."""
    out: dict[str, Any] = {}
    for model in MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out
