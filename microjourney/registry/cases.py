"""What the journey analyses (process map, variants, paths) share: cases are persons (all
events) or a moment's attempts; the filters keep events, ``outcome`` a moment's attempts."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field

from . import filters
from .attempts import Outcome


class CaseParams(filters.Filters):
    moment: str | None = Field(None, description="Only this moment's steps (default: all "
                               "events).", json_schema_extra={"short": "-m"})
    case: Literal["person", "attempt"] | None = Field(
        None, validation_alias=AliasChoices("case", "by"),
        description="Cases are a person or an attempt (default: person for all events, "
        "attempt for a moment).", json_schema_extra={"also": "--by"})
    outcome: Outcome | None = Field(None, description="Only attempts with this outcome "
                                    "(needs --moment).")
