"""The weekly review by webhook: the ``review:`` section of ``microjourney.yaml``
(docs/webhooks.md, "Sent every week").

::

    review:
      every: 1h                # how often `serve` looks for a new whole week to send
      webhooks:
        - url: https://hooks.example.com/weekly
          secret_env: MICROJOURNEY_REVIEW_SECRET

Each webhook receives the review of every whole ISO week once, as JSON, signed as alerts
are (the same :class:`~.alerts.Webhook`: HMAC-SHA256 of the body under the secret read from
the named environment variable, never written in the file).
"""

from __future__ import annotations

from pydantic import Field, field_validator

from .alerts import MAX_WEBHOOKS, Webhook
from .types import Frozen, Seconds


class Review(Frozen):
    """``review``: where the weekly review (the ``review`` analysis) is sent."""

    #: Receivers of each whole week's review, each sent it once.
    webhooks: tuple[Webhook, ...] = Field((), max_length=MAX_WEBHOOKS)
    #: How often ``serve`` looks for a whole week not yet sent (a duration, default 1 h).
    every: Seconds = Field(3_600.0, ge=1, le=86_400)

    @field_validator("webhooks")
    @classmethod
    def _once_each(cls, value: tuple[Webhook, ...]) -> tuple[Webhook, ...]:
        urls = [hook.url for hook in value]
        twice = sorted({url for url in urls if urls.count(url) > 1})
        if twice:
            raise ValueError(f"a webhook URL is listed twice: {twice[0]!r} (each URL is sent "
                             "the week's review once; list it once)")
        return value


__all__ = ["Review"]
