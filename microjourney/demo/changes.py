"""The changes the demo's company shipped in its period, kept in the change playbook
(docs/playbook.md): the faster payment gateway, the fix of the week-7 incident, a wording
change that did little, and the experiment on password resets."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any


def shipped(start: date, days: int) -> list[dict[str, Any]]:
    """The demo's changes for data from ``start`` over ``days`` days (the days of
    :class:`~microjourney.demo.world.World`'s change and incident)."""
    # The experiment ran from the first day: its change is measured by the experiment.
    on = [start + timedelta(days=d) for d in (min(28, days // 2), days * 49 // 56, days * 21 // 56, 0)]
    return [
        {"moment": "card_payment", "day": on[0], "kind": "structure",
         "title": "Payment gateway v2: the payment page loads three times faster"},
        {"moment": "three_ds_verification", "day": on[1], "kind": "structure",
         "title": "Fix: the bank app hands Android customers back after a push",
         "note": "Incident from day 44: payments stranded in the bank app on Android."},
        {"moment": "delivery_delay_notice", "day": on[2], "kind": "copy",
         "title": "Delay notice names the new delivery day in the subject"},
        {"moment": "password_reset", "day": on[3], "kind": "structure",
         "title": "A code by SMS for half the customers", "experiment": "reset_by_sms"},
    ]
