"""Workspace, journey and moment definitions (the ``microjourney.yaml`` contract).

The models are frozen pydantic models with ``extra="forbid"`` so that a misspelt
key is an error, not a silently ignored setting. Loading from YAML with line
numbers lives in :mod:`microjourney.spec.load`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal, get_args

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from ..ingest.lines import Limits
from .alerts import Alerts
from .experiments import MAX_EXPERIMENTS, Experiment
from .frictions import Frictions
from .interventions import MAX_INTERVENTIONS, Intervention
from .peak_end import PeakEnd
from .review import Review
from .surveys import MAX_SURVEYS, Survey
from .types import (
    MAX_EVENTS,
    MAX_IDENTITY_KEYS,
    MAX_JOURNEYS,
    MAX_KEY_CHARS,
    MAX_LIST,
    MAX_MOMENTS,
    MAX_PATHS,
    MAX_PREDICATES,
    MAX_STEPS,
    Frozen,
    Names,
    Seconds,
    as_tuple,
    check_channels,
    check_name,
)
from .value import COSTS, Value

Operator = Literal["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists"]
Intent = Literal["learn", "decide", "act"]
TargetMetric = Literal[
    "completion_rate",
    "failure_rate",
    "abandonment_rate",
    "escalation_rate",
    "sla_met_rate",
    "duration_median_s",
    "duration_p90_s",
]
OPERATORS: tuple[str, ...] = get_args(Operator)
INTENTS: tuple[str, ...] = get_args(Intent)
TARGET_METRICS: tuple[str, ...] = get_args(TargetMetric)
#: Metrics where a lower value is better (a target is a ceiling, not a floor).
LOWER_IS_BETTER = frozenset(
    {"failure_rate", "abandonment_rate", "escalation_rate", "duration_median_s", "duration_p90_s"}
)


class Predicate(Frozen):
    """A test on one event property: ``properties[key] <op> value``. Any key works
    (``org:resource``, ``it's``): it reaches SQL inside an escaped string literal."""

    key: str = Field(max_length=MAX_KEY_CHARS)
    op: Operator
    value: Any

    @model_validator(mode="after")
    def _check(self) -> Predicate:
        v = self.value
        if self.op in ("in", "not_in"):
            if not isinstance(v, list | tuple) or not v:
                raise ValueError(f"'{self.op}' takes a non-empty list of values")
            if len(v) > MAX_LIST:
                raise ValueError(f"'{self.op}' takes at most {MAX_LIST:,} values, got {len(v):,}")
            if any(not isinstance(x, str | int | float | bool) for x in v):
                raise ValueError(f"'{self.op}' values must be strings, numbers or booleans")
        elif self.op in ("gt", "gte", "lt", "lte"):
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise ValueError(f"'{self.op}' compares with a number, got {v!r}")
        elif self.op == "exists":
            if not isinstance(v, bool):
                raise ValueError("'exists' takes true or false")
        elif not isinstance(v, str | int | float | bool):
            raise ValueError(f"'{self.op}' compares with a string, number or boolean, got {v!r}")
        return self


def _predicates(where: Any) -> Any:
    """``{valid: true, amount: {gt: 10}}`` → a tuple of :class:`Predicate`."""
    if where is None:
        return ()
    if not isinstance(where, dict):
        raise ValueError("'where' maps property names to a value or to {operator: value}")
    out = []
    for key, cond in where.items():
        if isinstance(cond, dict):
            if len(cond) != 1:
                raise ValueError(
                    f"property {key!r}: give exactly one operator, one of {', '.join(OPERATORS)}"
                )
            op, value = next(iter(cond.items()))
            if op not in OPERATORS:
                raise ValueError(
                    f"property {key!r}: unknown operator {op!r}; allowed: {', '.join(OPERATORS)}"
                )
            out.append({"key": str(key), "op": op, "value": value})
        elif isinstance(cond, list):
            out.append({"key": str(key), "op": "in", "value": cond})
        else:
            out.append({"key": str(key), "op": "eq", "value": cond})
    return tuple(out)


class Matcher(Frozen):
    """Which events play a role: event name(s), optional property tests and channels."""

    event: Names = Field(min_length=1, max_length=MAX_EVENTS)
    where: Annotated[tuple[Predicate, ...], BeforeValidator(_predicates),
                     Field(max_length=MAX_PREDICATES)] = ()
    channel: Annotated[tuple[str, ...] | None, BeforeValidator(as_tuple)] = None
    name: str | None = None
    #: On a step (or ``complete``): the longest this step should take after the one before;
    #: later is a ``waiting`` friction.
    sla: Seconds | None = Field(default=None, gt=0)
    #: On a step (or ``complete``): its conversion window in funnels. The step counts only
    #: when it happens at most this long after the funnel step before it (after the start
    #: for the first step); the funnel's own window, from the start, still applies.
    within: Seconds | None = Field(default=None, gt=0)

    @field_validator("channel")
    @classmethod
    def _known_channels(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return check_channels(value)

    @field_validator("event")
    @classmethod
    def _nonempty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not e.strip() for e in value):
            raise ValueError("an event name cannot be empty")
        return value

    @property
    def label(self) -> str:
        """The name shown for this matcher as a funnel step."""
        return self.name or " | ".join(self.event)


class Target(Frozen):
    """What the moment's owner commits to: ``metric`` at ``value``, by the day ``by`` (none:
    from now on)."""

    metric: TargetMetric
    value: float
    by: date | None = None

    @property
    def lower_is_better(self) -> bool:
        return self.metric in LOWER_IS_BETTER


#: Keywords and example phrases of a moment, each at most MAX_PHRASE characters.
MAX_PHRASES, MAX_PHRASE = 200, 300


class Moment(Frozen):
    """A micro-journey: a start, ordered steps, outcome rules and its operating data."""

    name: str
    title: str | None = None
    description: str | None = None
    intent: Intent | None = None
    start: Matcher
    steps: tuple[Matcher, ...] = Field((), max_length=MAX_STEPS)
    complete: Matcher
    fail: Matcher | None = None
    escalate: Matcher | None = None
    timeout: Seconds = 1800.0
    sla: Seconds | None = None
    #: A failed or abandoned self-service attempt followed this soon by an assisted
    #: contact about the moment is escalated.
    escalation_window: Seconds = Field(default=86400.0, gt=0)
    #: A second assisted contact about the moment this soon after one is a repeat contact.
    repeat_contact_window: Seconds = Field(default=604800.0, gt=0)
    owner: str | None = None
    problem: str | None = None
    #: What customers say when this moment is what they need (intents, docs/intents.md):
    #: words that point to it, and example phrases in their words.
    keywords: tuple[str, ...] = Field((), max_length=MAX_PHRASES)
    phrases: tuple[str, ...] = Field((), max_length=MAX_PHRASES)
    target: Target | None = None
    failure_cost: float | None = Field(default=None, ge=0)
    contact_cost: float | None = Field(default=None, ge=0)
    lifetime_value: float | None = Field(default=None, ge=0)
    #: What the moment's failures cost (docs/value.md): its own costs, currency and retention
    #: window; a key it leaves out comes from the workspace's ``value:``. ``failure_cost``,
    #: ``contact_cost`` and ``lifetime_value`` above are the same keys written on the moment.
    value: Value | None = None

    @field_validator("value")
    @classmethod
    def _cost_once(cls, value: Value | None, info: ValidationInfo) -> Value | None:
        for key in COSTS:
            if value is not None and getattr(value, key) is not None \
                    and info.data.get(key) is not None:
                raise ValueError(f"{key} is given twice, on the moment and in its value; keep one")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "moment name")

    @field_validator("keywords", "phrases", mode="before")
    @classmethod
    def _phrases(cls, value: Any) -> Any:
        value = as_tuple(value)
        for text in value if isinstance(value, list | tuple) else ():
            if not isinstance(text, str) or not text.strip() or len(text) > MAX_PHRASE:
                raise ValueError(f"{text!r}: keywords and phrases are texts of 1 to {MAX_PHRASE} "
                                 "characters")
        return value

    @field_validator("start", "fail", "escalate")
    @classmethod
    def _no_within(cls, value: Matcher | None, info: ValidationInfo) -> Matcher | None:
        # Ignoring it would hide a mistake: only a funnel step has a step before it.
        if value is not None and value.within is not None:
            why = ("the start has no funnel step before it (the funnel's own window, by default "
                   "the moment's timeout, runs from the start)" if info.field_name == "start"
                   else f"{info.field_name} is not a funnel step")
            raise ValueError(f"'within' belongs on a step or on complete; {why}")
        return value

    @property
    def funnel(self) -> tuple[Matcher, ...]:
        """The moment's funnel: its start, its steps, then its complete event."""
        return (self.start, *self.steps, self.complete)

    @property
    def step_labels(self) -> tuple[str, ...]:
        labels = [m.label for m in self.funnel]
        # Repeated labels (the same event twice) are told apart by position.
        return tuple(
            f"{lab} ({i + 1})" if labels.count(lab) > 1 else lab for i, lab in enumerate(labels)
        )


class Journey(Frozen):
    name: str
    title: str | None = None
    description: str | None = None
    moments: tuple[Moment, ...] = Field(min_length=1, max_length=MAX_MOMENTS)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "journey name")


class SparkSettings(Frozen):
    """``engine.spark``: where the Spark engine runs."""

    master: str = "local[2]"
    config: dict[str, str] = {}


class Engine(Frozen):
    """``engine``: which engine runs the analyses, over which data (docs/scaling.md)."""

    name: Literal["duckdb", "spark"] = "duckdb"
    #: A lake (``microjourney export --lake``): a folder, relative to the workspace, or an
    #: ``s3://bucket/prefix`` URL (docs/lake.md); none: the workspace's own store.
    lake: str | None = None
    #: DuckDB's memory limit (``20GB``), for the store and over a lake; past it DuckDB spills
    #: to disk. Default: 60% of the machine's memory for the store.
    memory_limit: str | None = None
    spark: SparkSettings = SparkSettings()

    @field_validator("lake")
    @classmethod
    def _lake(cls, value: str | None) -> str | None:
        scheme, sep, rest = (value or "").partition("://")
        if sep and (scheme.lower() not in ("s3", "s3a") or not rest.split("/")[0]):
            raise ValueError(f"lake: {value!r} is not a folder or an s3://bucket/prefix URL "
                             "(object storage is S3 or S3-compatible, docs/lake.md)")
        return value


class Identity(Frozen):
    """``identity``: how identifiers join into persons (docs/identity.md)."""

    #: Identifiers shared across channels (``email``, ``phone``, ``chat_handle``) that join
    #: the identifiers seen with the same value into one person. Read from events'
    #: ``context.traits.<key>`` and identify calls' ``traits.<key>``; a name holding "mail"
    #: is an e-mail (trimmed, lower-cased), one holding "phone" a phone (digits only).
    keys: tuple[str, ...] = Field((), max_length=MAX_IDENTITY_KEYS)

    @field_validator("keys")
    @classmethod
    def _plain(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # Any key: identity names members by JSON Pointer, which SQL takes as a plain literal.
        for key in value:
            if not key or len(key) > MAX_KEY_CHARS:
                raise ValueError(f"identity key {key!r} must be 1 to {MAX_KEY_CHARS} characters")
        return value


class Privacy(Frozen):
    """``privacy``: consent and scrubbing on the way in (docs/privacy.md)."""

    #: ``required``: events without ``context.consent.analytics: true`` are counted, not stored.
    consent: Literal["not_required", "required"] = "not_required"
    #: Scrub e-mail addresses, phone numbers and card numbers from free text.
    scrub: bool = True
    #: Paths in the stored JSON left unscrubbed (``properties.x`` or ``context.x.y``);
    #: traits carry the identity keys (``email``, ``phone``) on purpose.
    scrub_except: Annotated[tuple[str, ...], BeforeValidator(as_tuple),
                            Field(max_length=MAX_PATHS)] = ("context.traits",)

    @field_validator("scrub_except")
    @classmethod
    def _paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for path in value:
            root, _, rest = path.partition(".")
            if root not in ("properties", "context") or not rest or "" in rest.split("."):
                raise ValueError(f"scrub_except: {path!r} is not a path like context.traits or "
                                 "properties.note (dot-separated keys under properties or context)")
            if len(path) > 4 * MAX_KEY_CHARS:
                raise ValueError(f"scrub_except: {path!r} is over {4 * MAX_KEY_CHARS} characters")
        return value

    @property
    def consent_required(self) -> bool:
        return self.consent == "required"


class Ingest(Frozen):
    """``ingest``: what one file may hold before it is refused or cut (docs/workspace.md).

    Bounds time and memory whatever a file holds (a compressed bomb, one endless line)."""

    #: The longest line (JSON Lines) or record (CSV) read, in bytes; a longer one is
    #: quarantined, cut to its first kilobytes, with its length in the reason.
    max_line_bytes: int = Field(Limits.max_line_bytes, gt=0)
    #: The most bytes read from one file after decompression; past it the file's remaining
    #: rows are not read, and the ingest says so (the rows before it are kept).
    max_file_bytes: int = Field(Limits.max_file_bytes, gt=0)
    #: How far after its arrival an event's timestamp may lie (a duration, default one
    #: day); a later one is quarantined, in files and in the collector.
    future_tolerance: Seconds = Field(86_400.0, gt=0)


class Server(Frozen):
    """``server``: the collector and HTTP API (docs/collector.md)."""

    #: Origins allowed to call the API from a browser (``https://shop.example``).
    cors_origins: tuple[str, ...] = ()
    #: Largest request body accepted, in bytes (413 above it).
    max_body: int = Field(1_000_000, gt=0)
    #: Requests per second allowed per key (429 with Retry-After above it).
    rate_limit: float = Field(2000.0, gt=0)
    #: Burst above the rate allowed per key.
    burst: int = Field(4000, gt=0)
    #: How often ``serve`` refreshes the derived tables in the background (a duration,
    #: default 5 s): the most an analysis's answer lags what was acknowledged, plus the
    #: refresh's own time (docs/collector.md).
    refresh_every: Seconds = Field(5.0, gt=0, le=3600)


class Workspace(Frozen):
    """The whole ``microjourney.yaml``."""

    name: str = "microjourney workspace"
    description: str | None = None
    journeys: tuple[Journey, ...] = Field((), max_length=MAX_JOURNEYS)
    frictions: Frictions = Frictions()
    engine: Engine = Engine()
    identity: Identity = Identity()
    privacy: Privacy = Privacy()
    server: Server = Server()
    ingest: Ingest = Ingest()
    #: Micro-surveys of the moments (docs/workspace.md, "Surveys"; the loader checks each
    #: names a defined moment), and the least time between two surveys shown to one
    #: person, whichever surveys they are.
    surveys: tuple[Survey, ...] = Field((), max_length=MAX_SURVEYS)
    #: Experiments on the moments (docs/experiments.md; the loader checks each names a
    #: defined moment).
    experiments: tuple[Experiment, ...] = Field((), max_length=MAX_EXPERIMENTS)
    #: Regression alerts: detection settings and webhooks (docs/alerts.md).
    alerts: Alerts = Alerts()
    #: The weekly review sent by webhook every week (docs/webhooks.md, "Sent every week").
    review: Review = Review()
    #: How journeys are read by the Peak-End rule (docs/peak_end.md).
    peak_end: PeakEnd = PeakEnd()
    survey_cooldown: Seconds = Field(0.0, ge=0)
    #: Rules acting in the moment on signals in open attempts (docs/interventions.md; the
    #: loader checks each names a defined moment, and a survey offer a defined survey).
    interventions: tuple[Intervention, ...] = Field((), max_length=MAX_INTERVENTIONS)
    #: The most persons whose open attempts the server follows live for the interventions
    #: (the least recently active are forgotten first).
    intervention_persons: int = Field(100_000, ge=1, le=10_000_000)
    #: The moments' value at stake by default: costs, currency, retention window (each
    #: moment's ``value:`` overrides it key by key; docs/value.md).
    value: Value = Value()

    @field_validator("journeys")
    @classmethod
    def _few_moments(cls, value: tuple[Journey, ...]) -> tuple[Journey, ...]:
        n = sum(len(j.moments) for j in value)
        if n > MAX_MOMENTS:
            raise ValueError(f"a workspace holds at most {MAX_MOMENTS:,} moments, this one {n:,}")
        return value

    @property
    def moments(self) -> dict[str, Moment]:
        return {m.name: m for j in self.journeys for m in j.moments}

    def journey_of(self, moment: str) -> str:
        for j in self.journeys:
            if any(m.name == moment for m in j.moments):
                return j.name
        raise KeyError(moment)
