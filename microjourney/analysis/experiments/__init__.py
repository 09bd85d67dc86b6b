"""The statistics of experiments, on sufficient statistics (n, sums, sums of squares and cross
products per arm), with no I/O: fixed-horizon and sequential tests, Bayesian chance to win,
CUPED, sample-ratio mismatch, multiple-testing adjustment, guardrails, effect by week and
planning (docs/experiments.md). Problems come back as coded :class:`Notice` s."""

from __future__ import annotations

from .bayesian import Bayesian, Prior, bayesian, posterior
from .compare import Comparison, compare
from .cuped import Cuped, cuped, theta
from .frequentist import Effect, Moments, difference, moments
from .guardrails import Guardrail, verdict
from .multiple import benjamini_hochberg, holm
from .notices import MIN_UNITS, Notice
from .power import Plan, mde, plan, power, rate_variance, sample_size
from .sequential import N_STAR, sequential
from .srm import SRMCheck, srm, srm_by
from .statistics import Proportion, Ratio, Regression, SampleMean, Statistic
from .table import Arm, MetricResult, TableResult, analyze
from .weekly import Durability, durability

__all__ = [
    "MIN_UNITS", "N_STAR", "Arm", "Bayesian", "Comparison", "Cuped", "Durability", "Effect", "Guardrail",
    "MetricResult", "Moments", "Notice", "Plan", "Prior", "Proportion", "Ratio", "Regression", "SRMCheck",
    "SampleMean", "Statistic", "TableResult", "analyze", "bayesian", "benjamini_hochberg", "compare", "cuped",
    "difference", "durability", "holm", "mde", "moments", "plan", "posterior", "power", "rate_variance",
    "sample_size", "sequential", "srm", "srm_by", "theta", "verdict",
]
