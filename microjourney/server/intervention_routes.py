"""The interventions of ``GET /v1/decide`` (docs/interventions.md): started with the server,
answered beside the survey, recorded through the collector, webhook offers sent by a thread.

A decision is recorded as an ``intervention_offered`` or ``intervention_held`` event stored
through the collector before decide answers (so a 2xx means it is durable; without consent
where the workspace requires it, nothing is stored and nothing is offered). The SDK reports
what the customer did with an offer as ordinary events: ``intervention_shown``,
``intervention_accepted``, ``intervention_dismissed``.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from ..store.lake import has_events, read_events
from ..webhooks import deliver
from .decide import Ask, Decider, Shown
from .decide import payload as survey_payload
from .interventions import Intervener, Ledger, Made, Verdict, decision_call, payload
from .live import Live, Watched
from .survey_calls import digest, shown_call

log = logging.getLogger("microjourney.server")
Record = Callable[[list[dict[str, Any]]], Awaitable[dict[str, Any]]]
#: Webhook offers waiting to be sent; past it, new ones are dropped (and logged).
MAX_WAITING = 10_000
#: Seconds between two prunings of the ledger (decisions older than every cap's window).
PRUNE_EVERY = 60.0


class Interventions:
    """The server's interventions: the live state, the ledger, the rules and the sender."""

    def __init__(self, ws: Any, lake: Any, collector: Any) -> None:
        spec = ws.spec
        self.live = Live(spec)
        memory = max([86_400.0, *(r.cap.within for r in spec.interventions)])
        self.ledger = Ledger(memory)
        if spec.interventions:
            con = ws.con.cursor()
            try:
                now_ms = int(datetime.now(UTC).timestamp() * 1000)
                source = con.table("events") if lake is None else (
                    read_events(con, lake) if has_events(lake) else None)
                if source is not None:
                    self.ledger.load(source, now_ms)
                    self.live.resume(source, now_ms / 1000)
            finally:
                con.close()
        self.rules = Intervener(spec, self.live, self.ledger)
        if isinstance(collector, Watched):
            collector.live = self.live
        self._con = ws.con
        self._pruned = 0.0
        self._queue: queue.Queue[tuple[Made, dict[str, Any]] | None] = queue.Queue(MAX_WAITING)
        self._thread: threading.Thread | None = None
        if any(r.offer == "webhook" for r in spec.interventions):
            self._thread = threading.Thread(target=self._send, name="microjourney-interventions",
                                            daemon=True)
            self._thread.start()

    async def answer(self, a: Ask, consent: bool, record: Record, surveys: Decider,
                     survey_free: bool) -> dict[str, Any]:
        """The ``intervention`` and ``intervention_refused`` members of decide's answer (none
        when the workspace has no rules: the answer keeps its shape)."""
        if not self.live.rules:
            return {}
        if not a.event:
            return {"intervention": None, "intervention_refused": {}}
        now = datetime.now(UTC)
        if now.timestamp() - self._pruned > PRUNE_EVERY:
            self._pruned = now.timestamp()
            self.ledger.prune(int(now.timestamp() * 1000))
        verdict = self.rules.decide(a, consent, now, survey_free=survey_free)
        made, shown = verdict.made, None
        offered = verdict.offered
        if offered is not None and offered.rule.offer == "survey":
            shown = self._display(a, offered, surveys)
        calls = [decision_call(a, m, consent, now) for m in made]
        if shown is not None:
            calls.append(shown_call(a, shown, consent, now))
        if calls:
            try:
                stored = await record(calls)
            except BaseException:
                self._undo(a, verdict, shown, surveys, now)
                raise
            if stored["withheld"] or stored["rejected"]:  # no consent: nothing may be stored
                self._undo(a, verdict, shown, surveys, now)
                return {"intervention": None,
                        "intervention_refused": {**verdict.refused,
                                                 **{m.rule.name: "consent" for m in made}}}
        if offered is None:
            return {"intervention": None, "intervention_refused": verdict.refused}
        out = payload(offered, a.language)
        if shown is not None:
            out["survey"] = survey_payload(shown, a.language)
        if offered.rule.offer == "webhook" and not offered.again:
            self._enqueue(offered, a, now)
        return {"intervention": out, "intervention_refused": verdict.refused}

    @staticmethod
    def _display(a: Ask, made: Made, surveys: Decider) -> Shown | None:
        survey = next((s for s in surveys.spec.surveys if s.name == made.rule.survey), None)
        if survey is None:
            return None
        display = "d" + digest(survey.name, made.decision)
        again = display in surveys.history.displays(a.ids, survey.name)
        surveys.history.show(a.ids, survey.name, display, int(datetime.now(UTC).timestamp() * 1000))
        return Shown(survey, display, False, again=again)

    def _undo(self, a: Ask, verdict: Verdict, shown: Shown | None, surveys: Decider,
              now: datetime) -> None:
        self.rules.take_back(a, verdict.made, now)
        if shown is not None and not shown.again:
            surveys.history.unshow(a.ids, shown.survey.name, shown.display)

    def _enqueue(self, made: Made, a: Ask, now: datetime) -> None:
        body = {"intervention_id": made.decision, "intervention": made.rule.name,
                "moment": made.rule.moment, "signal": made.rule.when.signal,
                "anonymous_id": a.anonymous_id, "user_id": a.user_id, "channel": a.channel,
                "event": a.event, "attempt": a.attempt, "decided_at": now.isoformat()}
        try:
            self._queue.put_nowait((made, body))
        except queue.Full:
            log.warning("interventions/webhook-dropped %s: %d waiting", made.rule.name, MAX_WAITING)

    def _send(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            made, body = item
            try:
                deliver(self._con, [body], made.rule.webhooks, kind="intervention")
            except Exception as exc:  # the log names the kind, never the body
                log.error("interventions/webhook-failed %s %s", made.rule.name, type(exc).__name__)

    def drop(self, ids: Iterable[str]) -> None:
        """Forget an erased person's identifiers."""
        ids = list(ids)
        self.live.drop(ids)
        self.ledger.drop(ids)

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None, timeout=10)
            self._thread.join(10)
