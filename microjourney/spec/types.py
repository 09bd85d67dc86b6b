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


# Limits of a workspace file (docs/workspace.md, "Limits"): far above what a real
# workspace needs, low enough that loading it and running its analyses stay fast and
# small whatever the file holds. Each is checked before the work it bounds.

#: Bytes of ``microjourney.yaml``; a larger file is not read.
MAX_FILE_BYTES = 4 * 2**20
#: YAML values (scalars, lists, mappings) once aliases are expanded: an alias bomb
#: (nested lists of aliases) stops here, before anything is built.
MAX_VALUES = 200_000
#: Nesting of lists and mappings (a moment's predicate sits about 10 deep).
MAX_DEPTH = 40
#: Journeys per workspace, and moments in all journeys together.
MAX_JOURNEYS = 200
MAX_MOMENTS = 1_000
#: Steps of one moment (between its start and its complete event). A funnel is the
#: start, the steps and the complete event; attempts keep the steps reached as bits of
#: a 64-bit integer, so 62 funnel steps is also the engine's bound.
MAX_STEPS = 60
#: Event names of one matcher, property tests of one matcher, values of one
#: ``in:``/``not_in:`` list.
MAX_EVENTS = 100
MAX_PREDICATES = 50
MAX_LIST = 1_000
#: Identity keys, and paths in ``privacy.scrub_except``.
MAX_IDENTITY_KEYS = 20
MAX_PATHS = 100
#: Characters of a property key (in ``where:``, friction settings, identity keys).
MAX_KEY_CHARS = 200
