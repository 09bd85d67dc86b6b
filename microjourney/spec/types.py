"""Value types shared by the definition models: durations, one-or-many names, frozen models."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from ..vocabulary import CHANNELS
from .duration import parse_duration

#: A duration in seconds, written as a number of seconds or with units (``90s``, ``2h``).
Seconds = Annotated[float, BeforeValidator(parse_duration)]


def as_tuple(value: Any) -> Any:
    """One name or a list of names → a tuple."""
    return (value,) if isinstance(value, str) else value


#: One name or a list of names.
Names = Annotated[tuple[str, ...], BeforeValidator(as_tuple)]


#: A name in a definition (a moment, survey, rule, question...): a letter, then letters,
#: digits, ``_`` or ``-``.
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")

#: A language tag as a translation is keyed (``de``, ``pt-BR``).
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def check_name(value: str, what: str, longest: int | None = None) -> str:
    """``value`` if it is a :data:`NAME` (of at most ``longest`` characters), else a
    ``ValueError`` naming ``what`` it is (``"moment name"``)."""
    if not NAME.match(value) or (longest is not None and len(value) > longest):
        most = f" (at most {longest})" if longest is not None else ""
        raise ValueError(f"{what} {value!r} must start with a letter and use only letters, "
                         f"digits, _ or -{most}")
    return value


def check_channels(value: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """``value`` if each of its channels is known, else a ``ValueError`` naming the first
    that is not."""
    for ch in value or ():
        if ch not in CHANNELS:
            raise ValueError(f"unknown channel {ch!r}; allowed: {', '.join(CHANNELS)}")
    return value


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
