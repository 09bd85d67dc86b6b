"""Analyses while ``microjourney serve`` runs: the server holds the workspace's store (one
process may write a DuckDB file), so the CLI asks it, through ``GET /v1/analyses/{name}``
with the workspace's secret key, for the result it would have computed itself. The
server says where it listens in ``.microjourney/server.json`` (server/run.py).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .. import workspace as ws_api
from ..errors import MicrojourneyError, WorkspaceError
from ..jsonable import jsonable
from ..registry import Result

SERVER_FILE = "server.json"
#: Seconds to wait for a running server's answer (a first analysis may refresh tables).
TIMEOUT = 600.0


def running_server(workspace: Path) -> str | None:
    """The base URL of the server holding ``workspace``'s store, or None: no server file,
    or its process is gone (a server killed without shutting down leaves the file)."""
    path = workspace / ws_api.STORE_DIR / SERVER_FILE
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
        pid, url = int(found["pid"]), str(found["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _alive(pid):
        return None
    parts = urlsplit(url)
    if parts.hostname in ("0.0.0.0", "::", ""):  # listening everywhere: ask it on loopback
        url = f"{parts.scheme}://127.0.0.1:{parts.port}"
    return url


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (another user's counts: signalling it is refused)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def analysis_result(workspace: Path, name: str, values: dict[str, Any],
                    engine: dict[str, Any]) -> Result:
    """The result of analysis ``name``: from the running server when one holds the store
    (and no other engine or lake was asked for), else computed here."""
    url = running_server(workspace)
    if url is not None and not engine.get("engine") and not engine.get("lake"):
        return ask(url, ws_api.keys(workspace).secret_key, name, values)
    with ws_api.open(workspace, engine=engine.get("engine"), lake=engine.get("lake")) as ws:
        return ws.analysis(name, **values)


def ask(url: str, secret: str, name: str, values: dict[str, Any]) -> Result:
    """``GET /v1/analyses/{name}`` of the server at ``url``; its error as a product error."""
    return Result.from_dict(call(url, secret, "GET", f"/v1/analyses/{urllib.parse.quote(name)}",
                                 values))


def through_server(workspace: Path, method: str, path: str,
                   values: dict[str, Any] | None = None,
                   body: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The running server's answer to ``method path`` (with the secret key; ``values`` in
    the query, ``body`` as JSON), or None when no server holds ``workspace``'s store (the
    caller opens it itself)."""
    url = running_server(workspace)
    if url is None:
        return None
    return call(url, ws_api.keys(workspace).secret_key, method, path, values or {}, body)


def refuse_while_served(workspace: Path, what: str, instead: str) -> None:
    """A clear error for what only the store's holder may do, while a server holds it."""
    url = running_server(workspace)
    if url is not None:
        raise WorkspaceError(f"a server ({url}) holds this workspace's store, so {what} cannot run "
                             f"beside it: {instead}, or stop the server (Ctrl-C, or SIGTERM to its "
                             "process) and run it again", code="workspace/served")


def call(url: str, secret: str, method: str, path: str, values: dict[str, Any],
         body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One request to the server at ``url``; its JSON answer, or its error as a product error."""
    query = urllib.parse.urlencode(
        {k: v for k, v in jsonable(values).items() if v is not None}, doseq=True)
    headers = {"Authorization": f"Bearer {secret}"}
    data = None
    if body is not None:
        data = json.dumps(jsonable(body)).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(f"{url}{path}{'?' + query if query else ''}", method=method,
                                     headers=headers, data=data)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:  # noqa: S310 - own server
            data: dict[str, Any] = json.loads(answer.read())
            return data
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read())["error"]
        except (ValueError, KeyError, TypeError):
            error = {"code": "workspace/server", "message": f"the server answered {exc.code}"}
        raise MicrojourneyError(error["message"], code=error["code"]) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise WorkspaceError(f"a server ({url}) holds this workspace's store but did not answer "
                             f"({exc}); stop it or try again", code="workspace/server") from None

