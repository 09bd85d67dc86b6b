"""``GET /v1/decide`` and ``POST /v1/responses``: surveys served to the SDK (docs/collector.md,
"Surveys"; the rules: :mod:`.decide`). Decide also answers the experiments' variants, and
``POST /v1/exposures`` is added with these routes (:mod:`.experiment_calls`).

Both take the write key (or the secret key), like ``POST /v1/batch``: a web page holds it.
What they record — the display, each answer, a dismissal — is a survey event stored
through the collector, so it is acknowledged only after the commit that holds it, withheld
without consent where the workspace requires it, and scrubbed like any event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from ..errors import ApiError
from ..store.lake import has_events, read_events
from .decide import Ask, Decider, Shown, payload
from .experiment_calls import add_routes as add_exposure_routes
from .experiment_calls import assigner
from .guards import JSON, json_response
from .schema import DECIDE_PARAMETERS
from .survey_calls import answers, ask, json_body, shown_call
from .survey_history import History

Authorise = Callable[..., str]
Body = Callable[[Request], Awaitable[bytes]]


def start(ws: Any, lake: Any = None) -> Decider:
    """The rules of workspace ``ws`` over its survey history, read from its store (or its
    ``lake``) once, now."""
    con = ws.con.cursor()
    try:
        history = History()
        if lake is None:
            history.load(con.table("events"))
        elif has_events(lake):
            history.load(read_events(con, lake))
    finally:
        con.close()
    return Decider(ws.spec, history)


def forget(ws: Any, person: str, decider: Decider,
           also: Callable[[list[str]], None] | None = None) -> Any:
    """Erase ``person`` (``ws.forget``) and drop their identifiers from the survey history
    (and through ``also``, from the interventions').
    The identifiers are looked up first, as the erasure finds them (a person id, or one of
    their user ids)."""
    m = ws.persons()
    hit = m.filter((m.person == person) | ((m.identifier == person) & (m.kind == "user")))
    persons = hit.select("person").distinct().to_pyarrow().column("person").to_pylist()
    ids = m.filter(m.person.isin(persons or [person]) & m.kind.isin(["user", "anonymous"]))
    identifiers = ids.select("identifier").to_pyarrow().column("identifier").to_pylist()
    result = ws.forget(person)
    decider.history.drop(identifiers)
    if also is not None:  # the interventions' memory of them (intervention_routes.py)
        also(identifiers)
    return result


def add_routes(app: FastAPI, state: dict[str, Any], authorise: Authorise,
               check_origin: Callable[[Request], None], body: Body) -> None:
    """The survey routes; ``state`` holds the collector and the :class:`Decider`
    (``surveys``) once the app has started."""

    async def record(calls: list[dict[str, Any]]) -> dict[str, Any]:
        answer: dict[str, Any] = await state["collector"].collect(orjson.dumps({"batch": calls}))
        if not answer["ok"]:
            raise ApiError(answer["error"]["code"], answer["error"]["message"])
        return answer

    @app.get("/v1/decide", summary="Which survey to show now for the event just tracked, and "
             "the person's experiment variants (write key)", tags=["surveys"], response_model=None,
             openapi_extra={"parameters": DECIDE_PARAMETERS, "responses": _answers("DecideAnswer")})
    async def decide(request: Request) -> Response:
        check_origin(request)
        authorise(request)
        decider: Decider = state["surveys"]
        experiments = assigner(state, decider.spec)
        named = experiments.named(request.query_params)
        a, consent = ask(request.query_params, need_event=not named)
        variants = experiments.assign(a.person, a.event, named)
        decision = decider.decide(a) if a.event else None
        shown = decision.shown if decision else None
        acting = state.get("interventions")

        async def answered(survey: Any, refused: dict[str, str]) -> Response:
            out = {"ok": True, "survey": survey, "experiments": variants, "refused": refused}
            if acting is not None:  # docs/interventions.md
                out.update(await acting.answer(a, consent, record, decider, survey is None))
            return json_response(out)

        if decision is None or shown is None:
            return await answered(None, decision.refused if decision else {})
        try:
            answer = await record([shown_call(a, shown, consent, datetime.now(UTC))])
        except BaseException:
            _take_back(decider, a, shown)
            raise
        if answer["withheld"]:  # no consent: nothing of this person may be stored
            _take_back(decider, a, shown)
            return await answered(None, {**decision.refused, shown.survey.name: "consent"})
        if answer["rejected"]:
            _take_back(decider, a, shown)
            r = answer["rejected"][0]
            raise ApiError("request/bad", f"{r['field']}: {r['reason']}")
        return await answered(payload(shown, a.language), decision.refused)

    @app.post("/v1/responses", summary="Answers to a survey shown, partial or final, or its "
              "dismissal (write key)", tags=["surveys"], response_model=None,
              openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": {"anyOf": [
                  {"$ref": "#/components/schemas/SurveyAnswer"},
                  {"$ref": "#/components/schemas/ResponsesRequest"}]}}}},
                  "responses": _answers("BatchAnswer")})
    async def responses(request: Request) -> Response:
        check_origin(request)
        authorise(request)
        data = json_body(await body(request))
        decider: Decider = state["surveys"]
        now = datetime.now(UTC)
        given = answers(data, {s.name: s for s in decider.spec.surveys}, now,
                        decider.spec.ingest.future_tolerance)
        answer = await record([g.call for g in given])
        refused = {r["index"] for r in answer["rejected"]}
        required = decider.spec.privacy.consent_required
        ms = int(now.timestamp() * 1000)
        for i, g in enumerate(given):
            if i in refused or (required and not g.consent):
                continue
            if g.dismissed:
                decider.history.dismiss(g.ids, g.survey, g.display, ms)
            else:
                decider.history.answer(g.ids, g.survey, g.display, ms)
        return json_response(answer)

    add_exposure_routes(app, state, authorise, check_origin, body, record, _answers)


def _take_back(decider: Decider, a: Ask, shown: Shown) -> None:
    if not shown.again:
        decider.history.unshow(a.ids, shown.survey.name, shown.display)


def _answers(ok: str) -> dict[str, Any]:
    envelope = {JSON: {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
    return {
        "200": {"description": "Answered; what it records is committed",
                "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{ok}"}}}},
        "400": {"description": "A bad field (the message names it), or not JSON", "content": envelope},
        "401": {"description": "No key or a wrong key", "content": envelope},
        "429": {"description": "Rate limit; see Retry-After", "content": envelope},
    }
