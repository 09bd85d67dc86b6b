"""Value types shared by the definition models: durations, one-or-many names, frozen models."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from .duration import parse_duration

#: A duration in seconds, written as a number of seconds or with units (``90s``, ``2h``).
Seconds = Annotated[float, BeforeValidator(parse_duration)]


def as_tuple(value: Any) -> Any:
    """One name or a list of names → a tuple."""
    return (value,) if isinstance(value, str) else value


#: One name or a list of names.
Names = Annotated[tuple[str, ...], BeforeValidator(as_tuple)]


class Frozen(BaseModel):
    """A definition: immutable, and a misspelt key is an error, not an ignored setting."""

    model_config = ConfigDict(extra="forbid", frozen=True)
