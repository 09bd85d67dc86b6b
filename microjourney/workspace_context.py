"""A person's context for whoever takes over (an agent desktop, a chatbot): the part of the
Python API (:class:`~microjourney.workspace.Workspace` inherits it) behind
``GET /v1/persons/{id}/context`` and the dashboard's agent view (docs/handoff.md).

Given any identifier of a person (a user id, an anonymous id, a shared key's value such
as a phone number or a chat handle, linked by identify/alias calls), :meth:`Context.context`
says what the person is doing and did lately, in every channel, so that nobody asks them
twice: their open and recent attempts, the frictions in those attempts, what they already
entered (field *names* and the property *keys* of the steps they reached, never a value) and
verified, their latest survey scores, and the last intervention shown to them.

It reads the derived tables as the last refresh left them (``persons``, ``attempts``,
``tagged``, ``timeline``, ``frictions``) and, for the few raw events it needs (by the
``seq`` of the person's timeline rows), the ``events`` table. Every value reaches SQL as a
bound parameter; property keys as JSON Pointers, bound too. A person unknown, or erased,
is a ``QueryError`` ``query/person`` (404), the same for both: an erasure leaves no trace.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import duckdb

from .engine.surveys import RESPONSE
from .errors import QueryError, WorkspaceError
from .identity import BLANKS, normalise_text
from .vocabulary import json_pointer

if TYPE_CHECKING:
    from .engine.runtime import Runtime
    from .spec.model import Workspace as Spec

#: Days of recent attempts by default, and at most.
DAYS, MAX_DAYS = 7, 366
#: Attempts listed at most (open and recent together, newest first), and rows of every other list.
MAX_ATTEMPTS, MAX_ROWS = 100, 200
#: Interventions listed (newest first; the last one is also given alone).
MAX_INTERVENTIONS = 20
#: Characters of an identifier looked up at most: a longer one is no person's.
MAX_ID = 2000
#: The events an intervention travels as (read as ordinary events; docs/handoff.md).
INTERVENTIONS = ("intervention_offered", "intervention_held", "intervention_shown", "intervention_accepted",
                 "intervention_dismissed")
#: Their properties given with them (names, offers and decisions: never customer input).
INTERVENTION_KEYS = ("intervention", "decision", "offer")
#: Question types whose answers are scores.
SCORED = ("csat", "ces", "nps")
#: Words that make a moment, or a funnel step, a verification: its name (a step's label)
#: holds one of them (``login``, ``id_verification``, ``three_ds_verification``,
#: ``identity_verified``...). docs/handoff.md, "What counts as verified".
VERIFYING = ("login", "log_in", "sign_in", "signin", "verif", "auth", "identif", "otp", "3ds",
             "threeds", "three_ds", "kyc", "2fa", "mfa")
_VERIFYING = re.compile("|".join(re.escape(w) for w in VERIFYING), re.IGNORECASE)
_DAY_MS = 86_400_000

#: The person's attempts in the answer: open ones, and those that ended since the window's start.
_MINE = ("WITH mine AS (SELECT * FROM attempts WHERE person = ? AND (outcome = 'in_progress' "
         "OR epoch_ms(end_ts) >= ?) ORDER BY start_ts DESC, attempt_id LIMIT ?) ")


def verifying(name: str) -> bool:
    """Whether a moment's name or a step's label names a verification (:data:`VERIFYING`).

    >>> verifying("three_ds_verification"), verifying("login"), verifying("card_payment")
    (True, True, False)
    """
    return bool(_VERIFYING.search(name))


def when(ms: int | float | None) -> str | None:
    """Epoch milliseconds as an ISO 8601 time in UTC, to the millisecond."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


class Context:
    """A mixin: the workspace gives the spec, the runtime and fresh derived tables."""

    spec: Spec
    run: Runtime

    def _refresh_frictions(self) -> None: ...
    def as_of_ms(self) -> int: ...
    def refreshed_at(self) -> float | None: ...

    def context(self, person: str, days: int = DAYS) -> dict[str, Any]:
        """What an agent or a chatbot needs to know about the person one of whose
        identifiers is ``person`` (docs/handoff.md): a dict with ``person`` (their person
        id), ``open`` and ``recent`` attempts (those that ended in the last ``days`` days of
        the data), ``frictions`` in them, what they ``entered`` (field names, step property
        keys) and ``verified``, their latest survey ``scores``, the ``last_intervention``
        and the ``interventions`` of the window, and ``meta`` (``as_of``, ``refreshed_at``,
        ``stale_s``...).

        ``QueryError`` ``query/person`` (404) for an identifier of no person (or an erased
        one), ``query/option`` for ``days`` outside 1 to 366.
        """
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
            raise QueryError(f"days: a whole number of days from 1 to {MAX_DAYS}", code="query/option")
        self._refresh_frictions()
        con = self._context_connection()
        found = _person_of(con, person, self.spec.identity.keys)
        as_of = self.as_of_ms()
        since = as_of - days * _DAY_MS
        mine = [found, since, MAX_ATTEMPTS]
        attempts = self._attempts_of(con, mine)
        verified = self._verified(con, found, since, attempts)  # takes the steps out of attempts
        frictions = _rows(con, _MINE + """
            SELECT f.attempt_id, f.moment, f.kind, f.step, f.seconds_lost, f.at_ms
            FROM frictions f JOIN mine a ON f.attempt_id = a.attempt_id
            WHERE f.person = ? ORDER BY f.at_ms DESC, f.kind LIMIT ?""", [*mine, found, MAX_ROWS])
        at = self.refreshed_at()
        return {
            "person": found,
            "meta": {"as_of": when(as_of) if as_of else None, "refreshed_at": when(at * 1000) if at else None,
                     "stale_s": round(max(0.0, datetime.now(UTC).timestamp() - at), 3) if at else None,
                     "days": days, "since": when(since) if as_of else None, "engine": self.run.name,
                     "limits": {"attempts": MAX_ATTEMPTS, "rows": MAX_ROWS}},
            "open": [a for a in attempts if a["outcome"] == "in_progress"],
            "recent": [a for a in attempts if a["outcome"] != "in_progress"],
            "frictions": [{"attempt_id": f["attempt_id"], "moment": f["moment"], "kind": f["kind"],
                           "step": self._step_name(f["moment"], f["step"]), "step_index": f["step"],
                           "seconds_lost": _seconds(f["seconds_lost"]), "at": when(f["at_ms"])}
                          for f in frictions],
            "entered": self._entered(con, found, since, mine),
            "verified": verified,
            "scores": self._scores(con, found),
            **self._interventions(con, found, since),
        }

    # -- where the tables are --------------------------------------------------
    def _context_connection(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection holding the derived tables (the store's, or DuckDB's over a
        lake); Spark has none."""
        con = getattr(self.run, "con", None)
        if not isinstance(con, duckdb.DuckDBPyConnection):
            raise WorkspaceError("a person's context is read with DuckDB: open the workspace over "
                                 "its store or a lake with the duckdb engine", code="workspace/lake")
        return con

    def _step_name(self, moment: str, step: int | None) -> str | None:
        """The label of funnel step ``step`` of ``moment`` (0 the start … the complete)."""
        m = self.spec.moments.get(moment)
        if m is None or step is None or not 0 <= step < len(m.funnel):
            return None
        return m.step_labels[step]

    # -- the parts of the answer -------------------------------------------------
    def _attempts_of(self, con: duckdb.DuckDBPyConnection, mine: list[Any]) -> list[dict[str, Any]]:
        rows = _rows(con, _MINE + """
            SELECT a.attempt_id, a.moment, a.outcome, a.channel, a.end_channel,
                   epoch_ms(a.start_ts) AS start_ms, epoch_ms(a.end_ts) AS end_ms, a.duration_s,
                   a.furthest_step, a.steps_reached, a.escalated, a.escalation_channel,
                   a.authenticated, a.sla_met,
                   list(DISTINCT t.channel) AS channels,
                   list(struct_pack(s := t.step, ms := t.t_ms, c := t.channel) ORDER BY t.t_ms, t.seq)
                       FILTER (WHERE t.role = 'step') AS steps
            FROM mine a LEFT JOIN tagged t ON t.person = a.person AND t.moment = a.moment
                 AND t.segment = a.segment
            GROUP BY ALL ORDER BY start_ms DESC, a.attempt_id""", mine)
        out = []
        for r in rows:
            moment = self.spec.moments.get(r["moment"])
            steps: dict[int, tuple[int, str]] = {}  # each step reached: its first time, channel
            for reach in r["steps"] or []:
                if reach["s"] is not None:
                    steps.setdefault(reach["s"], (reach["ms"], reach["c"]))
            out.append({
                "attempt_id": r["attempt_id"], "moment": r["moment"],
                "title": moment.title if moment is not None else None,
                "journey": self.spec.journey_of(r["moment"]) if moment is not None else None,
                "outcome": r["outcome"], "channel": r["channel"], "end_channel": r["end_channel"],
                "channels": sorted(c for c in (r["channels"] or []) if c is not None),
                "start": when(r["start_ms"]), "end": when(r["end_ms"]),
                "duration_s": _seconds(r["duration_s"]),
                "furthest_step": self._step_name(r["moment"], r["furthest_step"]),
                "furthest_step_index": r["furthest_step"],
                "steps": [self._step_name(r["moment"], s) for s in steps],
                "escalated": bool(r["escalated"]), "escalation_channel": r["escalation_channel"],
                "authenticated": bool(r["authenticated"]), "sla_met": r["sla_met"],
                "_steps": steps, "_end_ms": r["end_ms"]})  # for _verified, which takes them out
        return out

    def _entered(self, con: duckdb.DuckDBPyConnection, person: str, since: int,
                 mine: list[Any]) -> dict[str, list[dict[str, Any]]]:
        """Field names (the ``field_key`` of the field events the friction settings name) and
        the step events of the person's attempts (and the input events of
        ``redundant_input.events``) with their property keys: never a value."""
        f = self.spec.frictions
        fields: dict[str, dict[str, Any]] = {}
        for events, key in {(tuple(f.redundant_input.field_events), f.redundant_input.field_key),
                            (tuple(f.cognitive_load.field_events), f.cognitive_load.field_key)}:
            if not events:
                continue
            for r in _rows(con, """
                    SELECT json_extract_string(e.properties, ?) AS field, count(*) AS times,
                           min(m.t_ms) AS first_ms, max(m.t_ms) AS last_ms,
                           list(DISTINCT m.channel) AS channels
                    FROM timeline m JOIN events e ON e.seq = m.seq
                    WHERE m.person = ? AND m.t_ms >= ? AND list_contains(?::VARCHAR[], m.event)
                    GROUP BY ALL HAVING field IS NOT NULL AND field <> ''
                    ORDER BY last_ms DESC, field LIMIT ?""",
                    [json_pointer(key), person, since, list(events), MAX_ROWS]):
                had = fields.get(r["field"])
                if had is None:
                    fields[r["field"]] = {"field": r["field"], "times": r["times"], "first": r["first_ms"],
                                          "last": r["last_ms"], "channels": set(r["channels"] or [])}
                else:  # the same field under both settings: counted once per event
                    had.update(first=min(had["first"], r["first_ms"]), last=max(had["last"], r["last_ms"]))
                    had["channels"] |= set(r["channels"] or [])
        shown = sorted(fields.values(), key=lambda x: (-x["last"], x["field"]))[:MAX_ROWS]
        steps = _rows(con, _MINE + """
            SELECT t.event, t.moment, t.step, t.channel, t.t_ms, a.attempt_id,
                   json_keys(e.properties) AS keys
            FROM mine a JOIN tagged t ON t.person = a.person AND t.moment = a.moment
                 AND t.segment = a.segment AND t.role = 'step'
            JOIN events e ON e.seq = t.seq
            ORDER BY t.t_ms DESC, t.seq DESC LIMIT ?""", [*mine, MAX_ROWS])
        inputs = [{"event": r["event"], "moment": r["moment"],
                   "step": self._step_name(r["moment"], r["step"]), "attempt_id": r["attempt_id"],
                   "channel": r["channel"], "at": when(r["t_ms"]), "keys": sorted(set(r["keys"] or []))}
                  for r in steps]
        if f.redundant_input.events:
            for r in _rows(con, """
                    SELECT m.event, m.channel, m.t_ms, json_keys(e.properties) AS keys
                    FROM timeline m JOIN events e ON e.seq = m.seq
                    WHERE m.person = ? AND m.t_ms >= ? AND list_contains(?::VARCHAR[], m.event)
                    ORDER BY m.t_ms DESC, m.seq DESC LIMIT ?""",
                    [person, since, list(f.redundant_input.events), MAX_ROWS]):
                inputs.append({"event": r["event"], "moment": None, "step": None, "attempt_id": None,
                               "channel": r["channel"], "at": when(r["t_ms"]),
                               "keys": sorted(set(r["keys"] or []))})
        inputs.sort(key=lambda x: x["at"] or "", reverse=True)
        return {"fields": [{"field": x["field"], "times": x["times"], "first": when(x["first"]),
                            "last": when(x["last"]), "channels": sorted(x["channels"] - {None})}
                           for x in shown],
                "inputs": inputs[:MAX_ROWS]}

    def _verified(self, con: duckdb.DuckDBPyConnection, person: str, since: int,
                  attempts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Authentication events (``frictions.repeated_auth.events``) in the window; completed
        attempts of verification moments; verification steps reached in the attempts."""
        out: list[dict[str, Any]] = []
        auth = list(self.spec.frictions.repeated_auth.events)
        if auth:
            for r in _rows(con, """
                    SELECT m.event, m.channel, max(m.t_ms) AS last_ms, count(*) AS times
                    FROM timeline m WHERE m.person = ? AND m.t_ms >= ?
                         AND list_contains(?::VARCHAR[], m.event)
                    GROUP BY ALL ORDER BY last_ms DESC, m.event, m.channel LIMIT ?""",
                    [person, since, auth, MAX_ROWS]):
                out.append({"how": "event", "what": r["event"], "moment": None, "attempt_id": None,
                            "channel": r["channel"], "at": when(r["last_ms"]), "times": r["times"]})
        for a in attempts:
            steps, end_ms = a.pop("_steps"), a.pop("_end_ms")
            if a["outcome"] == "completed" and verifying(a["moment"]):
                out.append({"how": "moment", "what": a["moment"], "moment": a["moment"],
                            "attempt_id": a["attempt_id"], "channel": a["end_channel"],
                            "at": when(end_ms), "times": 1})
            for s, (ms, channel) in steps.items():
                label = self._step_name(a["moment"], s)
                if label is not None and verifying(label):
                    out.append({"how": "step", "what": label, "moment": a["moment"],
                                "attempt_id": a["attempt_id"], "channel": channel, "at": when(ms),
                                "times": 1})
        return out

    def _scores(self, con: duckdb.DuckDBPyConnection, person: str) -> list[dict[str, Any]]:
        """The latest answer to each scored question (CSAT, CES, NPS) of each survey, with the
        survey's moment: the first answer stored counts in a display, as in every analysis."""
        kinds = {(s.name, q.id): (q.type, s.moment, int(s.link_within * 1000)) for s in self.spec.surveys
                 for q in s.questions if q.type in SCORED}
        if not kinds:
            return []
        rows = _rows(con, """
            WITH answers AS (
              SELECT json_extract_string(e.properties, '/survey') AS survey,
                     coalesce(json_extract_string(e.properties, '/display'), e.event_id) AS display,
                     json_extract_string(e.properties, '/question') AS question,
                     json_extract_string(e.properties, '/answer') AS answer,
                     json_extract_string(e.properties, '/attempt') AS attempt,
                     m.t_ms, m.channel, m.seq
              FROM timeline m JOIN events e ON e.seq = m.seq
              WHERE m.person = ? AND m.event = ?),
            firsts AS (SELECT * FROM answers WHERE survey IS NOT NULL AND question IS NOT NULL
                      QUALIFY row_number() OVER (PARTITION BY survey, display, question ORDER BY seq) = 1)
            SELECT * FROM firsts
            QUALIFY row_number() OVER (PARTITION BY survey, question ORDER BY t_ms DESC, seq DESC) = 1
            ORDER BY t_ms DESC, survey, question LIMIT ?""", [person, RESPONSE, MAX_ROWS])
        out = []
        for r in rows:
            kind = kinds.get((r["survey"], r["question"]))
            score = _score(r["answer"])
            if kind is None or score is None:
                continue  # a text, choice or thumbs answer, or a survey no longer declared
            out.append({"survey": r["survey"], "question": r["question"], "type": kind[0],
                        "score": score, "moment": kind[1],
                        "attempt_id": _linked(con, person, kind[1], r["attempt"], r["t_ms"], kind[2]),
                        "channel": r["channel"], "at": when(r["t_ms"])})
        return out

    def _interventions(self, con: duckdb.DuckDBPyConnection, person: str, since: int) -> dict[str, Any]:
        rows = _rows(con, """
            SELECT m.event, m.channel, m.t_ms, json_extract_string(e.properties, ?) AS intervention,
                   json_extract_string(e.properties, ?) AS decision,
                   json_extract_string(e.properties, ?) AS offer
            FROM timeline m JOIN events e ON e.seq = m.seq
            WHERE m.person = ? AND list_contains(?::VARCHAR[], m.event)
            ORDER BY m.t_ms DESC, m.seq DESC LIMIT ?""",
                     [*(json_pointer(k) for k in INTERVENTION_KEYS), person, list(INTERVENTIONS),
                      MAX_INTERVENTIONS])
        shown = [{"event": r["event"], **{k: r[k] for k in INTERVENTION_KEYS}, "channel": r["channel"],
                  "at": when(r["t_ms"]), "_ms": r["t_ms"]} for r in rows]
        last = dict(shown[0]) if shown else None
        if last is not None:
            last.pop("_ms")
        return {"last_intervention": last,
                "interventions": [{k: v for k, v in x.items() if k != "_ms"} for x in shown
                                  if x["_ms"] >= since]}


def _person_of(con: duckdb.DuckDBPyConnection, ident: str, keys: Any) -> str:
    """The person one of whose identifiers is ``ident``: a user or anonymous id (compared
    trimmed, as ids link), a person id, or a shared key's value (normalised as it links)."""
    missing = QueryError("no person has this identifier (a user id, an anonymous id, a person id or "
                         "a shared key's value); an erased person has none", code="query/person")
    if not isinstance(ident, str) or not ident.strip(BLANKS) or len(ident) > MAX_ID:
        raise missing
    try:
        ident.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no stored identifier has one
        raise missing from None
    trimmed = ident.strip(BLANKS)
    where, params = ["(kind IN ('user', 'anonymous') AND trim(identifier, ?) = ?)", "person = ?"], \
        [BLANKS, trimmed, ident]
    for key in keys:
        value = normalise_text(ident, key)
        if value:
            where.append("(kind = ? AND identifier = ?)")
            params += [key, value]
    rows = con.execute(
        "SELECT person, min(CASE WHEN kind IN ('user', 'anonymous') AND trim(identifier, ?) = ? THEN 0 "
        "WHEN person = ? THEN 1 ELSE 2 END) AS rank FROM persons WHERE " + " OR ".join(where)
        + " GROUP BY person ORDER BY rank, person LIMIT 1", [BLANKS, trimmed, ident, *params]).fetchall()
    if not rows or rows[0][0] is None:
        raise missing
    return str(rows[0][0])


def _linked(con: duckdb.DuckDBPyConnection, person: str, moment: str | None, named: str | None,
            at_ms: int, within_ms: int) -> str | None:
    """The attempt an answer given at ``at_ms`` speaks of, as every analysis links it
    (docs/surveys.md, "Linking answers to attempts"): of the person and the survey's
    moment, started before the answer and ended at most ``within_ms`` before it; the one
    the answer ``named`` if it is such, else the latest."""
    if moment is None:
        return None
    rows = con.execute(
        "SELECT attempt_id FROM attempts WHERE person = ? AND moment = ? AND epoch_ms(start_ts) <= ? "
        "AND ? - epoch_ms(end_ts) <= ? ORDER BY attempt_id = ? DESC, start_ts DESC, attempt_id LIMIT 1",
        [person, moment, at_ms, at_ms, within_ms, named or ""]).fetchall()
    return str(rows[0][0]) if rows else None


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    """The rows of ``sql`` (its values bound from ``params``) as dicts."""
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def _score(answer: str | None) -> int | None:
    try:
        return None if answer is None else int(float(answer))
    except (ValueError, OverflowError):  # not a number, or not a finite one
        return None


__all__ = ["DAYS", "INTERVENTIONS", "MAX_DAYS", "VERIFYING", "Context", "verifying", "when"]
