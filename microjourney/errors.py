"""The one exception tree of microjourney.

Every error a user can meet carries a stable ``code`` (for scripts and the HTTP API)
and a message saying what is wrong and, where it helps, what is allowed::

    MicrojourneyError                 code
    ├── SpecError                     spec/...      workspace file invalid (file:line)
    ├── WorkspaceError                workspace/... no workspace, already exists
    ├── IngestError                   ingest/...    a file cannot be read at all
    ├── LakeError                     lake/...      a lake folder unusable, empty, a bad batch
    └── QueryError                    query/...     unknown moment, bad option value

Row-level problems found while ingesting are *not* raised: the row goes to the
quarantine table with its row number and reason, and the rest of the file is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "IngestError",
    "LakeError",
    "MicrojourneyError",
    "QueryError",
    "SpecError",
    "SpecProblem",
    "WorkspaceError",
]


class MicrojourneyError(Exception):
    """Base of every error microjourney raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


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
