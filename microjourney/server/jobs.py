"""A request as the collector holds it (:class:`Job`), its answer and the totals.

A job gathers what happened to its calls (accepted, duplicates, withheld, rejected with a
reason) while its group is committed; :func:`answer` turns that into the JSON answer and
counts it in :class:`Totals`. A request whose body is not a batch carries a ``problem``
(a key of :data:`ANSWERS`) and is answered with the error envelope's fields instead.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from .calls import MAX_CALLS, Track
from .guards import error_body

#: A request whose body is not a batch (or cannot be read): (status, code, message).
ANSWERS = {
    "json": (400, "request/bad-json", "the body is not JSON"),
    "batch": (400, "request/bad-batch", 'the body must be {"batch": [call, ...]}'),
    "size": (413, "request/too-many-calls", f"more than {MAX_CALLS} calls in one request"),
    # A request that failed on its own while the rest of its group was stored: something
    # in it cannot be stored (the log holds the reference, not the body).
    "unstorable": (400, "request/unprocessable", "a value in this request cannot be stored; "
                   "nothing in it was stored"),
}


@dataclass(eq=False)
class Job:
    """One request's body, its calls on the fast road, and what became of them."""

    body: bytes
    future: Future[dict[str, Any]]
    #: The body's calls when it takes the fast road (:func:`.calls.track_calls`).
    tracks: list[Track] | None = None
    #: In the event loop (:meth:`.Collector.collect`): its answer, or None once the request
    #: is handed to the collector's thread (then ``future`` holds it).
    waiter: asyncio.Future[dict[str, Any] | None] | None = None
    #: Its answer, once its events are journaled and until the journal is synced.
    answer: dict[str, Any] | None = None
    rejected: list[dict[str, Any]] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    withheld: int = 0
    #: Why the body is not a batch (a key of :data:`ANSWERS`), and where, when known.
    problem: str | None = None
    detail: str = ""

    @property
    def calls(self) -> int:
        """How many calls the fast road took from the body."""
        return 0 if self.tracks is None else len(self.tracks)

    def reject(self, index: int, name: str | None, reason: str) -> None:
        """Call ``index`` of the batch is rejected: ``name`` is the field, ``reason`` why."""
        self.rejected.append({"index": index, "field": name, "reason": reason})

    def restart(self) -> None:
        """Forget what a failed commit counted, before the request is committed again."""
        self.rejected, self.accepted, self.duplicates, self.withheld = [], 0, 0, 0


@dataclass
class Totals:
    """What the collector stored since it started."""

    requests: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    withheld: int = 0
    #: Groups committed, and how many of them in the event loop (:meth:`.Collector.collect`).
    commits: int = 0
    loop_commits: int = 0


def error(problem: str, detail: str = "") -> dict[str, Any]:
    """The answer to a request with ``problem`` (a key of :data:`ANSWERS`); ``detail`` says
    where, when known."""
    status, code, message = ANSWERS[problem]
    return error_body(status, code, f"{message} ({detail})" if detail else message)


def answer(job: Job, totals: Totals) -> dict[str, Any]:
    """The answer to ``job`` once its group is committed, counted in ``totals``."""
    totals.requests += 1
    if job.problem is not None:
        return error(job.problem, job.detail)
    totals.accepted += job.accepted
    totals.duplicates += job.duplicates
    totals.rejected += len(job.rejected)
    totals.withheld += job.withheld
    return {"ok": True, "accepted": job.accepted, "duplicates": job.duplicates,
            "withheld": job.withheld, "rejected": sorted(job.rejected, key=lambda r: r["index"])}
