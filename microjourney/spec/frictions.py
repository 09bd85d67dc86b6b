"""Friction detector settings: the ``frictions:`` section of ``microjourney.yaml``.

Every detector has a model here with its published defaults; a workspace tunes a
detector by naming only the keys it changes::

    frictions:
      rage_click: {clicks: 4}
      uncertainty: {events: [tracking_status_loaded]}
      dead_click: {enabled: false}

The detectors themselves live in :mod:`microjourney.engine.frictions`, one module per
kind; docs/frictions.md defines each one and the seconds it counts as lost.
"""

from __future__ import annotations

from pydantic import Field

from .types import Frozen, Names, Seconds

#: ErrorShown's default ``invalid``, typed as the field is (a dict literal would be dict[str, bool]).
_NOT_VALID: dict[str, str | int | float | bool] = {"valid": False}


class _Detector(Frozen):
    enabled: bool = True


class Waiting(_Detector):
    """A step reached later than its ``sla`` (on the step) or the moment's baseline."""

    quantile: float = Field(0.75, gt=0, lt=1)
    min_seconds: Seconds = Field(1.0, ge=0)
    cap: Seconds = Field(1800.0, gt=0)


class RepeatedAttempt(_Detector):
    """The start or a step of the moment happening more than once in one attempt."""

    cap: Seconds = Field(1800.0, gt=0)


class RageClick(_Detector):
    """A burst of ``clicks`` or more, each within ``within`` of the last and in the same
    place: within ``distance`` px when both clicks carry coordinates (``x``, ``y``), else on
    the same element (the first of ``selector_keys`` an event carries)."""

    events: Names = ("click",)
    clicks: int = Field(3, ge=2)
    within: Seconds = Field(1.0, gt=0)
    distance: float = Field(30.0, gt=0)
    x: str = "x"
    y: str = "y"
    #: Many trackers send a click's element and no coordinates: the same element is the
    #: same place.
    selector_keys: Names = ("selector", "element", "target")
    cap: Seconds = Field(10.0, gt=0)


class DeadClick(_Detector):
    """A click followed by no other event within ``within`` (or flagged by the SDK)."""

    events: Names = ("click",)
    within: Seconds = Field(2.5, gt=0)
    flag: str = "dead"
    cap: Seconds = Field(10.0, gt=0)


class ErrorShown(_Detector):
    """An error event, or an event whose properties say the input was invalid."""

    events: Names = ("error_shown", "js_error")
    #: Property values that mark an event as a validation error (any of them).
    invalid: dict[str, str | int | float | bool] = Field(default_factory=lambda: _NOT_VALID.copy())
    cap: Seconds = Field(300.0, gt=0)


class UTurn(_Detector):
    """Back to an earlier step, or to a page left less than ``dwell`` ago (A → B → A)."""

    page_events: Names = ("page_viewed",)
    page_key: str = "page"
    dwell: Seconds = Field(30.0, gt=0)
    cap: Seconds = Field(1800.0, gt=0)


class Uncertainty(_Detector):
    """``checks`` or more looks at the same status, each within ``within`` of the last."""

    events: Names = ("status_checked",)
    checks: int = Field(3, ge=2)
    within: Seconds = Field(600.0, gt=0)
    cap: Seconds = Field(1800.0, gt=0)


class CognitiveLoad(_Detector):
    """A field edited ``edits`` times or for longer than ``dwell``; help opened mid-task."""

    field_events: Names = ("field_edited",)
    field_key: str = "field"
    edits_key: str = "edits"
    dwell_key: str = "dwell_ms"
    edits: int = Field(5, ge=2)
    dwell: Seconds = Field(30.0, gt=0)
    expected: Seconds = Field(10.0, ge=0)
    help_events: Names = ("help_opened",)
    cap: Seconds = Field(300.0, gt=0)


class RedundantInput(_Detector):
    """The same field (or input event) given again at a later step or in another channel."""

    field_events: Names = ("field_edited",)
    field_key: str = "field"
    dwell_key: str = "dwell_ms"
    events: Names = ()
    cap: Seconds = Field(120.0, gt=0)


class RepeatedAuth(_Detector):
    """A second login or identity check inside one attempt."""

    events: Names = ("logged_in", "login_succeeded", "otp_verified", "caller_identified",
                     "identity_verified")
    cap: Seconds = Field(120.0, gt=0)


class TransferHold(_Detector):
    """Transfers, hold over ``hold_allowance``, contacts not answered within ``answer_sla``."""

    transfer_events: Names = ("call_transferred", "chat_transferred", "contact_transferred")
    hold_keys: Names = ("hold_seconds",)
    hold_allowance: Seconds = Field(30.0, ge=0)
    answer_events: Names = ("agent_answered", "agent_joined")
    answer_sla: Seconds = Field(120.0, gt=0)
    cap: Seconds = Field(600.0, gt=0)


class Frictions(Frozen):
    """Settings of every detector, keyed by friction kind."""

    waiting: Waiting = Waiting()
    repeated_attempt: RepeatedAttempt = RepeatedAttempt()
    rage_click: RageClick = RageClick()
    dead_click: DeadClick = DeadClick()
    error_shown: ErrorShown = ErrorShown()
    u_turn: UTurn = UTurn()
    uncertainty: Uncertainty = Uncertainty()
    cognitive_load: CognitiveLoad = CognitiveLoad()
    redundant_input: RedundantInput = RedundantInput()
    repeated_auth: RepeatedAuth = RepeatedAuth()
    transfer_hold: TransferHold = TransferHold()


#: The friction kinds, in registry order.
KINDS: tuple[str, ...] = tuple(Frictions.model_fields)
