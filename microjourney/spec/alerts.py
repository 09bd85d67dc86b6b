"""Regression alerts: the ``alerts:`` section of ``microjourney.yaml`` (docs/alerts.md).

::

    alerts:
      baseline_weeks: 4        # the weekday-aware baseline: the same weekdays of the weeks before
      min_days: 2              # a regression must last this many days to be raised
      alpha: 0.001             # each day's test; a run of days must each pass it
      segments: [platform]     # properties (besides channel) to name the segments that moved
      every: 10m               # how often `serve` reads the alerts and sends the new ones
      webhooks:
        - url: https://hooks.example.com/cx
          secret_env: MICROJOURNEY_ALERT_SECRET

Each webhook receives every new alert once, as JSON, signed with HMAC-SHA256 of the body
under the secret read from the named environment variable (never written in the file).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, field_validator

from .types import Frozen, Names, Seconds

#: Webhooks per workspace, segment properties an alert breaks down by.
MAX_WEBHOOKS, MAX_SEGMENTS = 20, 20


class Webhook(Frozen):
    """One receiver of alerts: an http(s) URL and the environment variable holding its secret."""

    url: str = Field(max_length=2_000)
    secret_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"a webhook URL is http:// or https:// with a host, not {value!r}")
        return value


class Alerts(Frozen):
    """``alerts``: how regressions are detected and where they are sent."""

    #: Weeks of history the weekday-aware baseline is taken from.
    baseline_weeks: int = Field(4, ge=2, le=26)
    #: Consecutive days a regression must last before it is raised.
    min_days: int = Field(2, ge=1, le=14)
    #: Each day's significance level (a run of ``min_days`` days must each pass it).
    alpha: float = Field(0.001, gt=0, lt=0.5)
    #: Properties, besides the channel, whose values an alert ranks by how much they moved.
    segments: Names = Field((), max_length=MAX_SEGMENTS)
    webhooks: tuple[Webhook, ...] = Field((), max_length=MAX_WEBHOOKS)
    #: How often ``serve`` reads the alerts and sends the new ones (a duration, default 10 min).
    every: Seconds = Field(600.0, ge=1, le=86_400)
