"""The error tree's codes and the HTTP status of each: one table (errors.STATUS), checked
against every code in the source, the framework's and the collector's answers, the docs,
and a real server on 127.0.0.1."""

from __future__ import annotations

import ast
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

import microjourney as mj
from microjourney.errors import (
    DEFAULT_STATUS,
    STATUS,
    ApiError,
    IngestError,
    LakeError,
    MicrojourneyError,
    QueryError,
    SpecError,
    WorkspaceError,
    http_status,
)
from microjourney.server import jobs
from microjourney.server.app import create_app
from microjourney.server.guards import HTTP_CODES

PACKAGE = Path(mj.__file__).parent
DOCS = PACKAGE.parent / "docs" / "collector.md"
SHAPED = re.compile(r"[a-z]+/[a-z0-9-]+")
#: String literals in the package shaped like a code that are not error codes.
NOT_CODES = {"application/json", "text/javascript", "text/css", "text/plain", "build/demo"}

#: Every code in the package and the status the API answers it with, written out by hand:
#: a new code fails test_every_code_in_the_source_has_a_row_of_its_own until it is added
#: here and to errors.STATUS. Changes from the handlers before the one table are marked.
EXPECTED = {
    "request/bad": 400, "request/bad-json": 400, "request/bad-batch": 400,
    "request/unprocessable": 400, "request/error": 400, "request/not-found": 404,
    "request/method-not-allowed": 405, "request/timeout": 408, "request/too-large": 413,
    "request/too-many-calls": 413, "request/invalid": 422, "request/rate-limited": 429,
    "auth/missing-key": 401, "auth/bad-key": 401, "auth/forbidden": 403,
    "cors/origin": 403, "cors/preflight": 400,
    "server/error": 500, "server/keys-unavailable": 503, "server/warming-up": 503,
    # Before: 404 when the message began "unknown" (unknown --by, outcome, friction kind).
    "query/option": 400,
    "query/error": 400, "query/action": 400,
    "query/moment": 404, "query/person": 404, "query/attempt": 404, "query/survey": 404,
    "query/experiment": 404, "query/change": 400, "query/no-change": 404,
    "query/analysis": 404,  # before: 400 ("no analysis ..." did not begin "unknown")
    "query/no-moments": 409,  # before: 400
    # Before: every workspace/, lake/ and demo/ code was 400.
    "workspace/error": 409, "workspace/exists": 409, "workspace/lake": 409,
    "workspace/missing": 404, "workspace/locked": 503, "workspace/server": 503,
    "workspace/not-refreshed": 503,
    "workspace/served": 409, "workspace/lock-wait": 500,
    "workspace/engine": 500, "workspace/spark-s3a": 500,
    "lake/error": 500, "lake/bad-batch": 400, "lake/unknown-table": 400, "lake/no-events": 409,
    "lake/busy": 503, "lake/unreachable": 503, "lake/object-store": 502, "lake/denied": 500,
    "lake/no-bucket": 500, "lake/credentials": 500, "lake/bad-url": 500,
    "lake/not-writable": 500, "lake/not-a-folder": 500, "lake/broken-export": 500,
    "demo/collector": 500,
    "spec/invalid": 400,
    "ingest/error": 400, "ingest/missing": 400, "ingest/unreadable": 400, "ingest/format": 400,
    "ingest/header": 400, "ingest/empty": 400, "ingest/mapping": 400, "ingest/identity": 400,
    "ingest/too-large": 400,
}


def codes_in_source() -> dict[str, set[str]]:
    """Each string literal of the package shaped like ``family/name`` (every code, however
    it is raised: ``code=``, a table, a constant) and the files it is in."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and SHAPED.fullmatch(node.value) and node.value not in NOT_CODES):
                found.setdefault(node.value, set()).add(str(path.relative_to(PACKAGE)))
    return found


def test_every_code_in_the_source_has_a_row_of_its_own():
    found = codes_in_source()
    assert {"query/moment", "workspace/locked", "lake/denied", "request/too-many-calls"} <= set(found)
    new = {code: sorted(files) for code, files in found.items() if code not in EXPECTED}
    assert not new, f"codes with no status decided yet (add them to errors.STATUS and here): {new}"
    assert not set(EXPECTED) - set(found), "codes no longer raised anywhere"
    for code, status in EXPECTED.items():
        assert code in STATUS, f"{code} gets its status from a fallback, not a row of its own"
        assert http_status(code) == status, code


def test_the_table_holds_error_statuses_and_a_fallback_per_family():
    assert all(400 <= status <= 599 for status in STATUS.values())
    families = {code.partition("/")[0] for code in STATUS}
    assert {code for code in STATUS if code.endswith("/")} == {f"{f}/" for f in families}
    for cls, family in [(SpecError, "spec"), (WorkspaceError, "workspace"), (IngestError, "ingest"),
                        (LakeError, "lake"), (QueryError, "query"), (ApiError, "request")]:
        assert cls.code.startswith(f"{family}/") and cls.code in STATUS


def test_a_code_not_listed_takes_its_familys_status_else_400():
    assert [http_status(c) for c in ("query/window", "workspace/full", "auth/expired",
                                     "server/busy", "lake/slow", "cors/x")] == [400, 409, 401, 500, 500, 403]
    assert DEFAULT_STATUS == 400
    assert [http_status(c) for c in ("nowhere/x", "error", "", "/x", "query")] == [400] * 5
    assert MicrojourneyError("anything").status == 400  # its code is "error"


def test_the_frameworks_and_the_collectors_answers_agree_with_the_table():
    # The framework's answers keep its status: their codes must have the same one.
    assert {status: http_status(code) for status, code in HTTP_CODES.items()} == \
        {status: status for status in HTTP_CODES}
    # The collector answers with statuses of its own (jobs.ANSWERS); the app raises them again.
    assert {code: status for status, code, _ in jobs.ANSWERS.values()} == {
        "request/bad-json": 400, "request/bad-batch": 400, "request/too-many-calls": 413,
        "request/unprocessable": 400}
    for status, code, _ in jobs.ANSWERS.values():
        assert http_status(code) == status, code


def test_an_api_error_is_one_of_the_tree_and_keeps_its_headers():
    exc = ApiError("server/keys-unavailable", "the key file cannot be read", {"Retry-After": "5"})
    assert isinstance(exc, MicrojourneyError) and (exc.code, exc.status) == ("server/keys-unavailable", 503)
    assert exc.headers == {"Retry-After": "5"}
    assert exc.envelope() == {"ok": False, "status": 503, "error": {
        "code": "server/keys-unavailable", "message": "the key file cannot be read"}}
    lost = QueryError("unknown outcome 'lost'; allowed: completed, abandoned", code="query/option")
    assert (lost.status, lost.headers) == (400, {})


def _docs_section() -> str:
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("<!-- status table:")
    return text[text.index("\n", start) + 1:text.index("<!-- end of status table -->")]


def test_the_docs_list_the_table_itself():
    rows = ["| code | status |", "|---|---|"] + [
        f"| `{code}*` | {status} |" if code.endswith("/") else f"| `{code}` | {status} |"
        for code, status in STATUS.items()]
    expected = "\n".join(rows) + "\n"
    assert _docs_section() == expected, f"docs/collector.md's status table is stale; it reads:\n{expected}"


def test_the_docs_table_of_answers_agrees_with_the_table():
    text = DOCS.read_text(encoding="utf-8")
    body = text[text.index("| status | code | when |"):text.index("### Every code and its status")]
    pairs = []
    for row in body.splitlines()[2:]:
        if not row.startswith("| "):
            continue
        statuses = [int(s) for s in row.split("|")[1].split(",")]
        codes = re.findall(r"`([a-z]+/[a-z0-9-]+)`", row.split("|")[2])
        pairs += zip(statuses * len(codes) if len(statuses) == 1 else statuses, codes, strict=True)
    assert len(pairs) == 30
    assert [(code, status) for status, code in pairs if http_status(code) != status] == []


def _raises(exc: MicrojourneyError):
    def route() -> None:
        raise exc
    return route


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """The app of a new workspace, served by uvicorn on 127.0.0.1, with routes that raise
    errors the API's analyses and store raise (the handlers are the app's own)."""
    root = tmp_path_factory.mktemp("errors") / "ws"
    mj.init(root).close()
    app = create_app(root)
    for name, exc in {
        "unknown-option": QueryError("unknown outcome 'lost'; allowed: completed, abandoned",
                                     code="query/option"),
        "no-analysis": QueryError("no analysis 'churn'; analyses: funnel, paths", code="query/analysis"),
        "no-moments": QueryError("no moments defined yet", code="query/no-moments"),
        "locked": WorkspaceError("the store is held by process 4242", code="workspace/locked"),
        "lake-busy": LakeError("exports keep publishing into s3://b/lake", code="lake/busy"),
        "keys": ApiError("server/keys-unavailable", "the key file cannot be read", {"Retry-After": "5"}),
        "spec": SpecError([]),
    }.items():
        app.add_api_route(f"/test/{name}", _raises(exc), methods=["GET"])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_level="warning")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    port = uv.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(30)


def test_a_real_server_answers_each_error_with_its_codes_status(server):
    with httpx.Client(base_url=server, timeout=10) as c:
        answers = {name: c.get(f"/test/{name}") for name in (
            "unknown-option", "no-analysis", "no-moments", "locked", "lake-busy", "keys", "spec")}
        # The framework's own answers and the app's routes, for comparison.
        nowhere, no_key = c.get("/v1/nowhere"), c.get("/v1/summary")
    # Before the one table: 404, 400, 400, 400, 400 (the first by its message's first word).
    assert {name: a.status_code for name, a in answers.items()} == {
        "unknown-option": 400, "no-analysis": 404, "no-moments": 409, "locked": 503,
        "lake-busy": 503, "keys": 503, "spec": 400}
    for a in [*answers.values(), nowhere, no_key]:
        body = a.json()
        assert set(body) == {"ok", "status", "error"} and body["ok"] is False
        assert body["status"] == a.status_code == http_status(body["error"]["code"])
        assert set(body["error"]) == {"code", "message"} and body["error"]["message"]
    assert answers["no-analysis"].json()["error"] == {
        "code": "query/analysis", "message": "no analysis 'churn'; analyses: funnel, paths"}
    assert answers["keys"].headers["retry-after"] == "5"
    assert "retry-after" not in answers["locked"].headers
    assert (nowhere.status_code, nowhere.json()["error"]["code"]) == (404, "request/not-found")
    assert (no_key.status_code, no_key.json()["error"]["code"]) == (401, "auth/missing-key")
