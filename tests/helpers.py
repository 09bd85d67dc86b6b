"""Helpers for tests: workspace text, event rows, the real-data folder."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa

from microjourney.server.calls import plain_rows, track_columns, track_rows

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"

PAYMENT_YAML = """\
journeys:
  - name: payment
    moments:
      - name: card_payment
        intent: act
        start: {event: checkout_payment_opened}
        steps:
          - {event: payment_gateway_loaded}
          - {event: card_details_entered, where: {valid: true}}
        complete: {event: payment_succeeded}
        fail: {event: payment_failed}
        escalate: {event: contact_started, channel: [chat, voice, agent]}
        timeout: 30m
        sla: 90s
        owner: payments-team
        target: {metric: completion_rate, value: 0.92}
"""

FIELDS = ("event_id", "timestamp", "event", "anonymous_id", "user_id", "channel", "session_id",
          "properties", "context")


def workspace_of(root: Path, spec: str, rows: Iterable[dict] = ()):
    """A workspace made in ``root`` from the YAML text ``spec`` holding ``rows`` (ingested
    from a CSV file beside it): for module-scoped fixtures, which close it themselves."""
    import microjourney as mj

    w = mj.init(root)
    (root / "microjourney.yaml").write_text(spec, encoding="utf-8")
    w.reload()
    rows = list(rows)
    if rows:
        w.ingest(write_events(root / "e.csv", rows))
    return w


def write_events(path: Path, rows: Iterable[dict]) -> Path:
    """Write rows as CSV (properties/context dicts as JSON text)."""
    rows = list(rows)
    names = [f for f in FIELDS if any(f in r for r in rows)]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=names)
        w.writeheader()
        for r in rows:
            w.writerow({k: json.dumps(v) if isinstance(v, dict) else v for k, v in r.items()})
    return path


def ev(t: str, event: str, who: str = "u1", **extra: object) -> dict:
    """A row at ``2024-01-01T{t}+00:00`` (t like ``10:00:05``) for user ``who``."""
    row: dict = {"timestamp": f"2024-01-01T{t}+00:00", "event": event, "user_id": who,
                 "channel": extra.pop("channel", "web")}
    row.update(extra)
    return row


def rows() -> list[dict]:
    return [
        ev("10:00:00", "checkout_payment_opened", "a", anonymous_id="anon-a", session_id="s1",
           properties={"amount": 12.5}, context={"device": "mobile"}),
        ev("10:00:02", "payment_gateway_loaded", "a", channel="app"),
        {**ev("00:00:00", "payment_succeeded", "b"), "timestamp": "2024-01-01T23:30:00-02:00"},
        {**ev("00:00:00", "payment_failed", "c"), "timestamp": "2024-01-02T00:30:00+02:00"},
    ]


def store_table(con) -> pa.Table:
    return con.sql("SELECT * FROM events ORDER BY seq").to_arrow_table()


#: The collector tests' first timestamp.
T0 = "2026-11-02T10:00:00"


def track(i: int, **kw) -> dict:
    call = {"type": "track", "event_id": f"e{i}", "event": "payment_gateway_loaded",
            "timestamp": f"{T0}.{i % 1000:03d}Z", "user_id": f"u{i % 7}", "channel": "web",
            "properties": {"x": i}}
    call.update(kw)
    return call


def track_table(calls: list) -> pa.Table:
    """The fast road's raw rows of one request's ``track_calls``, with ``idx`` (each call's
    place in the batch), as the collector builds them for a group."""
    rows = track_rows(track_columns(calls))
    return rows.add_column(0, "idx", pa.array(range(rows.num_rows), pa.int64()))


def plain_table(calls: list) -> pa.Table | None:
    """One request's rows judged and typed by the plain road (``plain_rows``), with
    ``idx``; None when one of its calls is not plain."""
    if not calls:
        return None
    values = track_columns(calls)
    rows, plain = plain_rows(values, track_rows(values), [len(calls)])
    return rows.add_column(0, "idx", pa.array(range(rows.num_rows), pa.int64())) if plain[0] else None


def result_table(text: str, name: str | None = None) -> list[dict]:
    """The rows of table ``name`` (default: the first) of an analysis's ``--json`` output."""
    tables = json.loads(text)["tables"]
    return tables[name] if name is not None else next(iter(tables.values()))


FRESHNESS = ("refreshed_at", "stale_s")


def without_freshness(result: dict) -> dict:
    """An analysis result without when its derived tables were refreshed.

    Two runtimes (the store and a lake, a served and a local read) answer with the same
    numbers but refresh their tables at different moments, so comparisons leave these out.
    """
    meta = {k: v for k, v in result.get("meta", {}).items() if k not in FRESHNESS}
    return {**result, "meta": meta}


#: A survey for a workspace made by ``benchmarks/generate.py``, of its first moment.
SURVEY_YAML = """\
surveys:
  - name: pay_csat
    moment: {moment}
    questions:
      - {{id: ease, type: csat, text: How easy was it?}}
      - {{id: nps, type: nps, text: Would you recommend us?, required: false}}
      - {{id: why, type: text, text: Why?, required: false}}
    control: 10
"""


#: The free-text answers of low scores in :func:`survey_rows`.
WHY = ("my card was declined again", "the card was declined for no reason",
       "the page was far too slow", "the page kept loading forever",
       "I could not find the pay button", "too many steps, it took ages")


def survey_rows(attempts, seed: int = 3, share: float = 0.3) -> list[dict]:
    """Seeded ``survey_shown`` and ``survey_response`` events for ``share`` of the finished
    ``attempts`` (a DataFrame of the attempts table): answers a minute after the attempt's
    end, better after a completion than a failure; some partial, some dismissed, some
    naming their attempt and some not; low scores with a free-text reason (:data:`WHY`)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    words = np.random.default_rng(seed + 1)
    out: list[dict] = []
    done = attempts[attempts.outcome.isin(["completed", "failed", "abandoned"])]
    done = done.sort_values("attempt_id")
    for i, a in enumerate(done.itertuples()):
        if rng.random() >= share:
            continue
        at = a.end_ts + pd_seconds(60)
        display = f"d{i}"
        base = {"user_id": a.person, "channel": a.channel}
        out.append({**base, "event_id": f"show-{display}", "event": "survey_shown",
                    "timestamp": at.isoformat(),
                    "properties": {"survey": "pay_csat", "display": display, "attempt": a.attempt_id,
                                   "control": bool(rng.random() < 0.1)}})
        if rng.random() < 0.2:
            out.append({**base, "event_id": f"gone-{display}", "event": "survey_dismissed",
                        "timestamp": (at + pd_seconds(5)).isoformat(),
                        "properties": {"survey": "pay_csat", "display": display}})
            continue
        good = a.outcome == "completed"
        ease = int(np.clip(rng.normal(4.3 if good else 2.2, 0.9), 1, 5).round())
        nps = int(np.clip(rng.normal(8.5 if good else 4.0, 2.0), 0, 10).round())
        named = {"attempt": a.attempt_id} if rng.random() < 0.5 else {}
        answers = [("ease", ease)] + ([("nps", nps)] if rng.random() < 0.8 else [])
        if ease <= 2:  # low scores say why (drawn apart, so the other draws stay as they were)
            answers.append(("why", WHY[int(words.integers(len(WHY)))]))
        for k, (q, v) in enumerate(answers):
            out.append({**base, "event_id": f"{display}-{q}", "event": "survey_response",
                        "timestamp": (at + pd_seconds(10 + k)).isoformat(),
                        "properties": {"survey": "pay_csat", "display": display, "question": q,
                                       "answer": v, "final": k == len(answers) - 1, **named}})
    return out


def pd_seconds(n: float):
    import pandas as pd

    return pd.Timedelta(seconds=n)


#: The real telecom NPS survey (../shared/realdata/surveys), answers with verbatims by
#: journey stage.
TELECOM = REALDATA / "surveys" / "telecom_nps_verbatims.csv.gz"
TELECOM_YAML = """\
surveys:
  - name: telecom_nps
    questions:
      - {id: nps, type: nps, text: How likely are you to recommend us?}
      - {id: why, type: text, text: Why?, required: false}
"""


def telecom_workspace(root: Path):
    """A workspace of no moment holding the telecom survey's answers (``stage``: its
    journey stage); returns the open workspace and the import's result."""
    import microjourney as mj

    w = mj.init(root)
    (root / "microjourney.yaml").write_text(TELECOM_YAML)
    w.reload()
    r = w.ingest_responses(TELECOM, survey="telecom_nps", answers={"nps": "NPS_SCORE", "why": "text"},
                           time="CUSTOMER_RESPONSE_DATE", time_format="%d/%m/%Y %H:%M",
                           properties={"stage": "SURVEY_SUB_TYPE"}, timezone="UTC", channel="email")
    return w, r


#: An experiment for a workspace made by ``benchmarks/generate.py``, of its first moment.
EXPERIMENT_YAML = """\
experiments:
  - name: bench_copy
    moment: {moment}
    variants: [{{name: control}}, {{name: short_copy}}]
    secondary: [duration, friction_seconds]
"""


def exposure_rows(attempts, experiment) -> list[dict]:
    """An ``experiment_exposure`` event for each person with an attempt, a second before
    their first one, in the variant the experiment assigns them."""
    first = attempts.sort_values("start_ts").groupby("person").head(1)
    return [{"event_id": f"exp-{r.person}", "event": "experiment_exposure", "user_id": r.person,
             "channel": r.channel, "timestamp": (r.start_ts - pd_seconds(1)).isoformat(),
             "properties": {"experiment": experiment.name, "variant": experiment.variant_of(r.person)}}
            for r in first.itertuples()]
