"""What a moment's failures cost: the ``value:`` mapping of a moment and the workspace's
default ``value:`` (docs/value.md, docs/workspace.md "Value").

::

    value:                      # the workspace's defaults
      currency: EUR
      contact_cost: 6.5
      retention_days: 30        # a number is days; or a duration: 4w, 90d
    journeys:
      - name: payment
        moments:
          - name: card_payment
            value: {failure_cost: 38, lifetime_value: 420}   # contact_cost: the default

A moment's *effective* value takes each key from its own ``value:`` when it gives it,
else from the moment's shorthand keys (``failure_cost``, ``contact_cost``,
``lifetime_value`` written on the moment itself), else from the workspace's ``value:``
(:func:`effective`). A cost that is set nowhere is missing, and the part of the value at
stake it prices is not computed (the ``portfolio`` analysis says so).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator, Field, field_validator

from .duration import parse_duration
from .types import Frozen

if TYPE_CHECKING:
    from .model import Moment

DAY = 86_400.0
#: The costs a moment may give on itself (the shorthand) as in its ``value:``.
COSTS = ("failure_cost", "contact_cost", "lifetime_value")


def _days(value: Any) -> Any:
    """A number (or a numeric text) is days, as the key says; anything else a duration
    (``4w``, ``90d``), so ``retention_days: 30`` is never thirty seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) * DAY
    if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
        return float(value.strip()) * DAY
    return parse_duration(value)


class Value(Frozen):
    """``value``: the money a moment's failures put at stake (docs/value.md)."""

    #: Money lost per failed attempt (a lost basket, a refund, the handling).
    failure_cost: float | None = Field(None, ge=0)
    #: Cost of one assisted contact (a chat, a call, an e-mail handled by an agent).
    contact_cost: float | None = Field(None, ge=0)
    #: A customer's lifetime value: what losing one customer costs.
    lifetime_value: float | None = Field(None, ge=0)
    #: The currency of the three amounts (an ISO 4217 code), shown beside every value.
    currency: str = "EUR"
    #: How long after an attempt a person is watched for coming back (retention): a number
    #: of days, or a duration; in seconds once loaded.
    retention_days: Annotated[float, BeforeValidator(_days)] = Field(30 * DAY, gt=0,
                                                                     le=730 * DAY)

    @field_validator("currency")
    @classmethod
    def _code(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Z]{3}", value):
            raise ValueError(f"currency {value!r} is not an ISO 4217 code (three capital "
                             "letters, e.g. EUR, USD, GBP)")
        return value


def effective(moment: Moment, default: Value) -> Value:
    """``moment``'s value: each key from its own ``value:`` when given there, else (for the
    costs) from the moment's shorthand keys, else from ``default`` (the workspace's)."""
    return Value.model_construct(**{k: v for k, (v, _) in resolved(moment, default).items()})


def resolved(moment: Moment, default: Value) -> dict[str, tuple[Any, str]]:
    """Each key of ``moment``'s effective value with where it comes from: ``moment`` (its
    ``value:`` or its shorthand keys), ``workspace`` (the workspace's ``value:``) or
    ``default`` (neither sets it: the built-in default, None for a cost)."""
    own = moment.value
    given = own.model_fields_set if own is not None else set()
    out: dict[str, tuple[Any, str]] = {}
    for key in Value.model_fields:
        if own is not None and key in given and getattr(own, key) is not None:
            out[key] = (getattr(own, key), "moment")
        elif key in COSTS and getattr(moment, key, None) is not None:
            out[key] = (getattr(moment, key), "moment")
        else:
            out[key] = (getattr(default, key),
                        "workspace" if key in default.model_fields_set else "default")
    return out


__all__ = ["COSTS", "DAY", "Value", "effective", "resolved"]
