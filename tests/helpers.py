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
