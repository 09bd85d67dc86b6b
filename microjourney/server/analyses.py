"""``GET /v1/analyses`` and ``GET /v1/analyses/{name}``: every registered analysis over
HTTP, each a route of its own so that the OpenAPI document lists its parameters (the
query string) as the registry declares them. Secret key only: results describe persons.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import Response

from .. import registry
from ..registry.base import Analysis
from ..store.keys import SECRET
from .guards import json_response

Authorise = Callable[..., str]
Read = Callable[[Callable[[Any], Any]], Awaitable[Any]]


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


def _route(app: FastAPI, analysis: Analysis, authorise: Authorise, read: Read) -> None:
    model = analysis.params

    async def endpoint(request: Request, params: Any) -> Response:
        authorise(request, need=SECRET)
        values = params.model_dump(exclude_unset=True)
        result = await read(lambda ws: registry.run(ws, analysis.name, values))
        return json_response({"ok": True, **result.to_dict()})

    # The parameters' model is known only here: FastAPI reads it from the signature.
    endpoint.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
        inspect.Parameter("params", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                          annotation=Annotated[model, Query()]),
    ], return_annotation=Response)

    app.add_api_route(f"/v1/analyses/{analysis.name}", endpoint, methods=["GET"],
                      summary=f"{analysis.title} (secret key)", description=analysis.doc,
                      tags=["analyses"], name=f"analysis_{analysis.name.replace('-', '_')}")
