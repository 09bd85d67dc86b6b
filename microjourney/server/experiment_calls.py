"""Experiments served to pages and backends: the variants ``GET /v1/decide`` answers, and
``POST /v1/exposures`` (docs/collector.md, "Experiments"; docs/experiments.md).

Decide only *assigns*: ``Experiment.variant_of`` on the person the page will keep (its
``user_id``, else its ``anonymous_id``), for the running experiments of the moment the
tracked event belongs to and for those named in ``experiment=``; it records nothing. The
client logs the exposure when it actually shows the variant: an ``experiment_exposure``
event stored through the collector like any track call (consent, scrubbing, durability),
whose id is made from the experiment, the person and the variant, so logging the same
exposure again is a duplicate and the analysis reads the first one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from ..spec.experiments import Experiment
from ..spec.model import Workspace as Spec
from .guards import JSON, json_response
from .survey_calls import (
    bad,
    channel_field,
    consent_context,
    digest,
    flag_field,
    json_body,
    text_field,
    timestamp_field,
)

#: The event of an exposure (the engine's ``engine.experiments.EXPOSURE``).
EXPOSURE = "experiment_exposure"
#: Experiments named in one decide; exposures in one ``POST /v1/exposures``.
MAX_NAMED, MAX_EXPOSURES = 20, 100

Record = Callable[[list[dict[str, Any]]], Awaitable[dict[str, Any]]]


def running(e: Experiment, today: date) -> bool:
    """Whether ``e`` runs on the UTC day ``today`` (no dates: always)."""
    return (e.start is None or e.start <= today) and (e.end is None or today <= e.end)


class Assigner:
    """The experiments of one workspace by name and by the event names of their moment
    (any of its matchers: start, steps, complete, fail, escalate)."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.by_name = {e.name: e for e in spec.experiments}
        self._by_event: dict[str, list[Experiment]] = {}
        for e in spec.experiments:
            moment = spec.moments.get(e.moment)
            if moment is None:
                continue
            matchers = (*moment.funnel, moment.fail, moment.escalate)
            for name in sorted({n for m in matchers if m is not None for n in m.event}):
                self._by_event.setdefault(name, []).append(e)

    def named(self, query: Any) -> list[Experiment]:
        """The experiments named by ``experiment=`` (repeated or comma-separated), checked."""
        raw = query.getlist("experiment") if hasattr(query, "getlist") else []
        names: list[str] = []
        for value in raw:
            text_field(value, "experiment", limit=MAX_NAMED * 101)
            names.extend(n.strip() for n in value.split(",") if n.strip())
        names = list(dict.fromkeys(names))
        if len(names) > MAX_NAMED:
            raise bad("experiment", f"{len(names)} experiments; at most {MAX_NAMED}")
        out = []
        for name in names:
            e = self.by_name.get(name)
            if e is None:
                raise bad("experiment", f"no experiment {name[:40]!r} in this workspace")
            out.append(e)
        return out

    def assign(self, person: str, event: str | None, named: Sequence[Experiment],
               today: date | None = None) -> dict[str, str]:
        """``{experiment: variant}`` of ``person`` for the running experiments of ``event``'s
        moment and the running ones ``named``."""
        today = today or datetime.now(UTC).date()
        chosen = [*(self._by_event.get(event, ()) if event else ()), *named]
        return {e.name: e.variant_of(person) for e in chosen if running(e, today)}


def assigner(state: dict[str, Any], spec: Spec) -> Assigner:
    """The :class:`Assigner` of ``spec``, made once per spec (``state["assigner"]``)."""
    current: Assigner | None = state.get("assigner")
    if current is None or current.spec is not spec:
        current = state["assigner"] = Assigner(spec)
    return current


@dataclass(frozen=True)
class Exposure:
    """One exposure of ``POST /v1/exposures``, checked, as its track call."""

    call: dict[str, Any]
    experiment: str
    variant: str


def exposure(item: Any, where: str, experiments: Mapping[str, Experiment], now: datetime,
             tolerance: float) -> Exposure:
    """One exposure of an exposures body, checked (``where``: its place)."""
    if not isinstance(item, dict):
        raise bad(where or "body", "an exposure is a JSON object")
    name = text_field(item.get("experiment"), f"{where}experiment", required=True) or ""
    e = experiments.get(name)
    if e is None:
        raise bad(f"{where}experiment", f"no experiment {name[:40]!r} in this workspace")
    variant = text_field(item.get("variant"), f"{where}variant", required=True) or ""
    variants = [v.name for v in e.variants]
    if variant not in variants:
        raise bad(f"{where}variant", f"experiment {name!r} has no variant {variant[:40]!r}; its "
                  f"variants: {', '.join(variants)}")
    anonymous_id = text_field(item.get("anonymous_id"), f"{where}anonymous_id")
    user_id = text_field(item.get("user_id"), f"{where}user_id")
    person = user_id or anonymous_id
    if person is None:
        raise bad(f"{where}anonymous_id", "an anonymous_id or a user_id is required")
    consent = flag_field(item.get("consent"), f"{where}consent")
    call = {"type": "track", "event": EXPOSURE,
            "event_id": "mj-exposure-" + digest(name, person, variant),
            "timestamp": timestamp_field(item.get("timestamp"), f"{where}timestamp", now, tolerance),
            "anonymous_id": anonymous_id, "user_id": user_id,
            "channel": channel_field(item.get("channel"), f"{where}channel"),
            "properties": {"experiment": name, "variant": variant},
            "context": consent_context(consent)}
    return Exposure(call, name, variant)


def exposures(body: Any, experiments: Mapping[str, Experiment], now: datetime,
              tolerance: float) -> list[Exposure]:
    """The exposures of a body: one, a list of them, or ``{"exposures": [...]}``."""
    prefix = ""
    if isinstance(body, dict) and "exposures" in body:
        body, prefix = body["exposures"], "exposures"
    if isinstance(body, dict):
        return [exposure(body, "", experiments, now, tolerance)]
    if not isinstance(body, list) or not body:
        raise bad(prefix or "body", "an exposure (a JSON object) or a non-empty list of them")
    if len(body) > MAX_EXPOSURES:
        raise bad(prefix or "body", f"{len(body):,} exposures; at most {MAX_EXPOSURES}")
    return [exposure(item, f"{prefix}[{i}].", experiments, now, tolerance) for i, item in enumerate(body)]


def add_routes(app: FastAPI, state: dict[str, Any], authorise: Callable[..., str],
               check_origin: Callable[[Request], None], body: Callable[[Request], Awaitable[bytes]],
               record: Record, answers: Callable[[str], dict[str, Any]]) -> None:
    """``POST /v1/exposures``; ``record`` stores track calls through the collector."""

    @app.post("/v1/exposures", summary="Variants shown to persons: experiment exposures "
              "(write key)", tags=["experiments"], response_model=None,
              openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": {"anyOf": [
                  {"$ref": "#/components/schemas/ExposureCall"},
                  {"$ref": "#/components/schemas/ExposuresRequest"}]}}}},
                  "responses": answers("BatchAnswer")})
    async def post_exposures(request: Request) -> Response:
        check_origin(request)
        authorise(request)
        data = json_body(await body(request))
        spec: Spec = state["surveys"].spec
        given = exposures(data, assigner(state, spec).by_name, datetime.now(UTC),
                          spec.ingest.future_tolerance)
        return json_response(await record([g.call for g in given]))
