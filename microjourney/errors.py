"""The one exception tree of microjourney, and the HTTP status of each of its codes.

Every error a user can meet carries a stable ``code`` (for scripts and the HTTP API)
and a message saying what is wrong and, where it helps, what is allowed::

    MicrojourneyError                 code
    ├── SpecError                     spec/...      workspace file invalid (file:line)
    ├── WorkspaceError                workspace/... no workspace, already exists, locked
    ├── IngestError                   ingest/...    a file cannot be read at all
    ├── LakeError                     lake/...      a lake folder unusable, empty, a bad batch
    ├── QueryError                    query/...     unknown moment, bad option value
    └── ApiError                      request/...   a request the HTTP API refuses before it
                                      auth/...      reaches the workspace: not JSON, too large,
                                      cors/...      no key, a foreign origin, the key file
                                      server/...    unreadable

The API answers an error with the status :func:`http_status` gives its code, from the
one table :data:`STATUS`, in the envelope :func:`error_body` builds. The status says who
must act: the client (4xx: fix the request, or the thing named does not exist), the
workspace's state (409: the request is fine, the workspace refuses it as it is), time
(503: retry later), the operator (500: the server's setup).

Row-level problems found while ingesting are *not* raised: the row goes to the
quarantine table with its row number and reason, and the rest of the file is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_STATUS",
    "STATUS",
    "ApiError",
    "IngestError",
    "LakeError",
    "MicrojourneyError",
    "QueryError",
    "SpecError",
    "SpecProblem",
    "WorkspaceError",
    "error_body",
    "http_status",
]

#: The HTTP status of each error code. A key ending in ``/`` is the fallback of its family,
#: for a code not listed itself; a code of no family listed answers :data:`DEFAULT_STATUS`.
#: Every code raised in the package is listed itself (tests/test_errors.py finds them in the
#: source), so none gets its status by chance; docs/collector.md shows this table.
STATUS: dict[str, int] = {
    # The request itself is wrong: the client fixes it.
    "request/": 400,
    "request/bad": 400,
    "request/bad-json": 400,
    "request/bad-batch": 400,
    "request/unprocessable": 400,
    "request/error": 400,
    "request/not-found": 404,
    "request/method-not-allowed": 405,
    "request/timeout": 408,
    "request/too-large": 413,
    "request/too-many-calls": 413,
    "request/invalid": 422,
    "request/rate-limited": 429,
    "auth/": 401,
    "auth/missing-key": 401,
    "auth/bad-key": 401,
    "auth/forbidden": 403,
    "cors/": 403,
    "cors/origin": 403,
    "cors/preflight": 400,
    "server/": 500,
    "server/error": 500,
    "server/keys-unavailable": 503,
    "server/warming-up": 503,
    # Queries: a thing named that does not exist is 404, a value not allowed 400.
    "query/": 400,
    "query/error": 400,
    "query/option": 400,
    "query/action": 400,
    "query/change": 400,
    "query/moment": 404,
    "query/person": 404,
    "query/attempt": 404,
    "query/survey": 404,
    "query/experiment": 404,
    "query/no-change": 404,
    "query/analysis": 404,
    # The request is well formed; the workspace defines no moments yet (its file must
    # change, not the request): a conflict with the workspace's state.
    "query/no-moments": 409,
    # The workspace as it is refuses the request, is busy, or is set up wrong.
    "workspace/": 409,
    "workspace/error": 409,
    "workspace/exists": 409,
    "workspace/lake": 409,
    "workspace/missing": 404,
    "workspace/locked": 503,
    "workspace/server": 503,
    # Served: no refresh of the derived tables has completed yet (the next one may).
    "workspace/not-refreshed": 503,
    "workspace/served": 409,
    "workspace/lock-wait": 500,
    "workspace/engine": 500,
    "workspace/spark-s3a": 500,
    # The lake: a bad batch or table name is the caller's; the rest is the lake's state,
    # the object store's answer or the server's setup.
    "lake/": 500,
    "lake/error": 500,
    "lake/bad-batch": 400,
    "lake/unknown-table": 400,
    "lake/no-events": 409,
    "lake/busy": 503,
    "lake/unreachable": 503,
    "lake/object-store": 502,
    "lake/denied": 500,
    "lake/no-bucket": 500,
    "lake/credentials": 500,
    "lake/bad-url": 500,
    "lake/not-writable": 500,
    "lake/not-a-folder": 500,
    "lake/broken-export": 500,
    # Files given to ingest and the workspace file: what was given is wrong.
    "spec/": 400,
    "spec/invalid": 400,
    "ingest/": 400,
    "ingest/error": 400,
    "ingest/missing": 400,
    "ingest/unreadable": 400,
    "ingest/format": 400,
    "ingest/header": 400,
    "ingest/empty": 400,
    "ingest/mapping": 400,
    "ingest/identity": 400,
    "ingest/too-large": 400,
    # The demo's own collector failed (the CLI's `demo --live`; no API answers it).
    "demo/": 500,
    "demo/collector": 500,
}
#: The status of a code of no family in :data:`STATUS`.
DEFAULT_STATUS = 400


def http_status(code: str) -> int:
    """The HTTP status the API answers an error with ``code``: its own entry in
    :data:`STATUS`, else its family's (``query/`` for ``query/...``), else 400."""
    if code in STATUS:
        return STATUS[code]
    family, slash, _ = code.partition("/")
    return STATUS.get(family + slash, DEFAULT_STATUS) if slash else DEFAULT_STATUS


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    """The envelope of an error, as every answer of the API and the collector gives it."""
    return {"ok": False, "status": status, "error": {"code": code, "message": message}}


class MicrojourneyError(Exception):
    """Base of every error microjourney raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        #: Headers of the HTTP answer (``Retry-After``, say); see :class:`ApiError`.
        self.headers: dict[str, str] = {}

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    @property
    def status(self) -> int:
        """The HTTP status of this error (:func:`http_status` of its code)."""
        return http_status(self.code)

    def envelope(self) -> dict[str, Any]:
        """The API's answer to this error (:func:`error_body`)."""
        return error_body(self.status, self.code, self.message)


@dataclass(frozen=True)
class SpecProblem:
    """One problem in a workspace file, located at ``file:line:column``."""

    file: str
    line: int | None
    column: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        at = f" ({self.path})" if self.path else ""
        return f"{where}: {self.message}{at}"


class SpecError(MicrojourneyError):
    """The workspace definition is invalid; ``problems`` lists every problem found."""

    code = "spec/invalid"

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(f"{n} problem{'s' if n != 1 else ''} in the workspace definition:\n{lines}")


class WorkspaceError(MicrojourneyError):
    """No workspace where one was expected, or one exists where it should not."""

    code = "workspace/error"


class IngestError(MicrojourneyError):
    """A whole file cannot be ingested (unreadable, unknown format, bad mapping)."""

    code = "ingest/error"


class LakeError(MicrojourneyError):
    """The Parquet lake cannot be used: not a folder, not writable, no events, a bad batch."""

    code = "lake/error"


class QueryError(MicrojourneyError):
    """An analysis was asked for something that does not exist or is not allowed."""

    code = "query/error"


class ApiError(MicrojourneyError):
    """A request the HTTP API refuses before it reaches the workspace (not JSON, too large,
    no key, a foreign origin, the key file unreadable); ``headers`` go with the answer."""

    code = "request/error"

    def __init__(self, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, code=code)
        self.headers = dict(headers or {})
