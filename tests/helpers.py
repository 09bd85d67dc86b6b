"""Helpers for tests: workspace text, event rows, the real-data folder."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path

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
