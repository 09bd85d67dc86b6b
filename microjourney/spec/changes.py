"""Changes to moments: the entries of the change playbook (docs/playbook.md).

A change says what was changed in a moment, on which day, and of which kind — the words of
a message (``copy``), when something happens (``timing``), the steps of the flow
(``structure``), how a choice is presented (``framing``), or a rule of the business
(``policy``) — optionally with the experiment that tested it. Changes are added with
``microjourney change add``, ``POST /v1/changes`` or the dashboard's form, kept in the
store, measured by the ``playbook`` analysis and drawn on every trend chart.

>>> Change(moment="card_payment", day="2026-09-29", kind="structure", title="Gateway v2").day
datetime.date(2026, 9, 29)
"""

from __future__ import annotations

from datetime import date
from typing import Literal, get_args

from pydantic import Field, field_validator

from .types import Frozen

ChangeKind = Literal["copy", "timing", "structure", "framing", "policy"]
KINDS: tuple[str, ...] = get_args(ChangeKind)
#: Characters of a change's title and of its note.
MAX_TITLE, MAX_NOTE = 200, 2_000


class Change(Frozen):
    """One change to a moment, as a user gives it (the store adds its id and when)."""

    moment: str = Field(min_length=1, max_length=200)
    day: date
    kind: ChangeKind
    title: str = Field(min_length=1, max_length=MAX_TITLE)
    experiment: str | None = Field(None, min_length=1, max_length=200)
    note: str | None = Field(None, max_length=MAX_NOTE)

    @field_validator("title", "note")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is None:
            return value
        value = value.strip()
        if any(ord(c) < 32 and c not in "\n\t" for c in value):
            raise ValueError("control characters are not allowed")
        return value
