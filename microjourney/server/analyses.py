"""``GET /v1/analyses`` and ``GET /v1/analyses/{name}``: every registered analysis over
HTTP, each a route of its own so that the OpenAPI document lists its parameters (the
query string) as the registry declares them. Secret key only: results describe persons.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from .. import registry
from ..registry.base import Analysis
from ..store.keys import SECRET
from .guards import json_response

Authorise = Callable[..., str]
Read = Callable[..., Awaitable[Any]]


def add_routes(app: FastAPI, authorise: Authorise, read: Read) -> None:
    """The analysis routes, in registry order; ``read`` runs a function of the workspace
    in the server's thread pool, after what the collector holds is committed."""

    @app.get("/v1/analyses", summary="The analyses and their parameters (secret key)",
             tags=["analyses"])
    async def listing(request: Request) -> Response:
        authorise(request, need=SECRET)
        return json_response({"ok": True, "analyses": [
            {"name": a.name, "title": a.title, "doc": a.doc,
             "params": a.params.model_json_schema(by_alias=True)} for a in registry.REGISTRY]})

    for analysis in registry.REGISTRY:
        _route(app, analysis, authorise, read)
    add_unknown_route(app, authorise)


def _route(app: FastAPI, analysis: Analysis, authorise: Authorise, read: Read) -> None:
    lists = {f.alias or k for k, f in analysis.params.model_fields.items()
             if typing.get_origin(f.annotation) is list}

    async def endpoint(request: Request) -> Response:
        authorise(request, need=SECRET)
        # Validated by the registry, as the CLI's and Python's values are: the same
        # query/option error, naming the parameter, for a bad or unknown one.
        values: dict[str, Any] = {}
        for key, value in request.query_params.multi_items():
            if key in lists:
                values.setdefault(key, []).append(value)
            else:
                values[key] = value
        return json_response(await analysis_answer(read, analysis, values))

    app.add_api_route(f"/v1/analyses/{analysis.name}", endpoint, methods=["GET"],
                      summary=f"{analysis.title} (secret key)", description=analysis.doc,
                      tags=["analyses"], name=f"analysis_{analysis.name.replace('-', '_')}",
                      openapi_extra={"parameters": _parameters(analysis)})


async def analysis_answer(read: Read, analysis: Analysis, values: dict[str, Any]) -> dict[str, Any]:
    """The JSON answer of ``analysis`` for ``values`` (validated by the registry, as the
    CLI's and Python's are), read by ``read`` and kept under one key for the API and the
    dashboard alike (results.py): until the tables it reads change, the derived tables at
    the next refresh that finds anything new, the store's own (quarantine, data quality)
    as the collector commits."""
    analysis.validate(values)

    def answer(ws: Any) -> dict[str, Any]:
        return {"ok": True, **registry.run(ws, analysis.name, values).to_dict()}

    key = (analysis.name, json.dumps(values, sort_keys=True))
    result: dict[str, Any] = await read(answer, own_tables=not analysis.engines, key=key)
    return result


def _parameters(analysis: Analysis) -> list[dict[str, Any]]:
    """The query parameters of an analysis for the OpenAPI document, from its model."""
    schema = analysis.params.model_json_schema(by_alias=True)
    out = []
    for name, field in analysis.params.model_fields.items():
        public = field.alias or name
        prop = dict(schema["properties"][public])
        description = prop.pop("description", field.description or "")
        prop.pop("title", None)
        options = [o for o in prop.pop("anyOf", []) if o.get("type") != "null"]
        if len(options) == 1:  # optional: a query parameter is absent, never null
            prop.update(options[0])
        elif options:
            prop["anyOf"] = options
        out.append({"name": public, "in": "query", "required": field.is_required(),
                    "description": description, "schema": prop})
    return out


def add_unknown_route(app: FastAPI, authorise: Authorise) -> None:
    """``/v1/analyses/{name}`` for a name no analysis has: 404 ``query/analysis``, naming
    the analyses there are (after every analysis's own route)."""

    @app.get("/v1/analyses/{name}", include_in_schema=False)
    async def unknown(name: str, request: Request) -> Response:
        authorise(request, need=SECRET)
        registry.get(name)  # raises the error that lists the analyses
        raise AssertionError("unreachable: every analysis has its own route")
