"""Experiments on moments: the ``experiments:`` section of ``microjourney.yaml``
(docs/experiments.md, "Declaring an experiment").

::

    experiments:
      - name: short_card_form
        moment: card_payment
        variants: [{name: control, weight: 50}, {name: short_form, weight: 50}]
        salt: short-card-form-2026-11
        start: 2026-11-02
        end: 2026-11-15
        metric: completion_rate
        secondary: [duration]
        guardrails: [escalation_rate, friction_seconds]
        cuped_days: 28

The metrics are those of the attempts (:data:`ExperimentMetric`) and of the survey answers
linked to them (:data:`SurveyMetric`: ``csat``, ``ces``).

A person's variant is a deterministic hash of the salt and the person (:meth:`Experiment.variant_of`),
so every surface that assigns — the collector's decide, the Python client, a backend —
gives the same answer without sharing state. The analysis counts the persons exposed (an
``experiment_exposure`` event) and their attempts of the moment after their first exposure.
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Literal, get_args

from pydantic import Field, field_validator, model_validator

from .types import Frozen, check_name

#: The metrics of the attempts, each per exposed person over their attempts of the moment
#: after exposure (docs/experiments.md, "The `experiment` analysis"); what ``experiment-plan``
#: plans for too.
ExperimentMetric = Literal["completion_rate", "failure_rate", "abandonment_rate", "escalation_rate",
                           "duration", "friction_seconds"]
#: The survey metrics, each per exposed person over the answers linked to their attempts of
#: the moment after exposure, from any survey of the moment with such a question
#: (docs/experiments.md, "Survey metrics"): ``csat`` the share satisfied (CSAT answers of 4–5 ÷
#: CSAT answers), ``ces`` the mean CES answer (1–7, higher is easier).
SurveyMetric = Literal["csat", "ces"]
#: Every metric an experiment can be judged on.
Metric = Literal[ExperimentMetric, SurveyMetric]
METRICS: tuple[str, ...] = get_args(Metric)
SURVEY_METRICS: tuple[str, ...] = get_args(SurveyMetric)
#: Experiments per workspace, variants per experiment.
MAX_EXPERIMENTS, MAX_VARIANTS = 200, 20


class Variant(Frozen):
    """One arm: its ``name`` and its ``weight`` (relative; the weights need not sum to 100)."""

    name: str
    weight: float = Field(1.0, gt=0, le=1_000_000)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "variant name", 100)


class Experiment(Frozen):
    """An experiment of one moment (module docstring). The first variant is the control."""

    name: str
    moment: str
    title: str | None = None
    variants: tuple[Variant, ...] = Field(min_length=2, max_length=MAX_VARIANTS)
    salt: str | None = Field(None, max_length=200)
    start: date | None = None
    end: date | None = None
    metric: Metric = "completion_rate"
    secondary: tuple[Metric, ...] = ()
    guardrails: tuple[Metric, ...] = ("escalation_rate", "failure_rate")
    #: The days before a person's first exposure whose attempts give their CUPED covariate
    #: (0: no CUPED).
    cuped_days: int = Field(28, ge=0, le=365)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "experiment name", 100)

    @model_validator(mode="after")
    def _consistent(self) -> Experiment:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("a variant is named twice")
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self

    @property
    def control(self) -> str:
        """The control: the first variant."""
        return self.variants[0].name

    @property
    def metrics(self) -> tuple[str, ...]:
        """The primary metric, the secondary ones, then the guardrails, each once."""
        return tuple(dict.fromkeys((self.metric, *self.secondary, *self.guardrails)))

    def variant_of(self, person: str) -> str:
        """The variant of ``person``: the first 8 bytes of SHA-256 of ``salt:person`` (salt:
        the experiment's name when none is given) as a number in [0, 1), placed on the
        variants' cumulative weights. The same inputs give the same variant anywhere.

        >>> e = Experiment(name="e", moment="m", variants=[{"name": "a"}, {"name": "b"}])
        >>> e.variant_of("cus_1"), e.variant_of("cus_1") == e.variant_of("cus_1")
        ('a', True)
        """
        digest = hashlib.sha256(f"{self.salt or self.name}:{person}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64
        total = sum(v.weight for v in self.variants)
        upto = 0.0
        for v in self.variants:
            upto += v.weight / total
            if point < upto:
                return v.name
        return self.variants[-1].name

    def weights(self) -> dict[str, float]:
        """Each variant's planned share of the persons."""
        total = sum(v.weight for v in self.variants)
        return {v.name: v.weight / total for v in self.variants}


__all__ = ["METRICS", "MAX_EXPERIMENTS", "SURVEY_METRICS", "Experiment", "ExperimentMetric", "Metric",
           "SurveyMetric", "Variant"]
