"""The Peak-End reading of journeys: the ``peak_end:`` section of ``microjourney.yaml``
(docs/peak_end.md).

::

    peak_end:
      window: 30d            # a person's attempts of a journey this close together are one journey
      friction_scale: 2m     # friction seconds that count as the worst friction (−1)
      weights: {outcome: 0.5, friction: 0.25, survey: 0.25}

Each attempt's intensity in [−1, 1] weighs its outcome, the seconds frictions cost it and
its survey score (when it has one; the other weights are then scaled up).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from .types import Frozen, Seconds


class IntensityWeights(Frozen):
    """How much each part of an attempt makes its intensity (they need not add to 1: they
    are divided by their sum)."""

    outcome: float = Field(0.5, ge=0, le=1)
    friction: float = Field(0.25, ge=0, le=1)
    survey: float = Field(0.25, ge=0, le=1)

    @model_validator(mode="after")
    def _some(self) -> IntensityWeights:
        if self.outcome + self.friction + self.survey <= 0:
            raise ValueError("at least one weight must be above 0")
        return self


class PeakEnd(Frozen):
    """``peak_end``: how journeys are cut and attempts weighed."""

    #: Attempts of one journey by one person less than this apart belong to one journey.
    window: Seconds = Field(30 * 86_400.0, gt=0, le=366 * 86_400)
    #: Seconds lost to frictions that make the friction part −1 (fewer: in proportion).
    friction_scale: Seconds = Field(120.0, gt=0, le=86_400)
    weights: IntensityWeights = IntensityWeights()
