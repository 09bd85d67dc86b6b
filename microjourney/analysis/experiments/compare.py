"""Every reading of one treatment against its control at once: the absolute and relative
differences (fixed-horizon and always-valid), the Bayesian chance to win, and CUPED when a
pre-exposure covariate is given; their notices gathered without repeats."""

from __future__ import annotations

from dataclasses import dataclass

from .bayesian import Bayesian, Prior, bayesian
from .cuped import Cuped, cuped
from .frequentist import Effect, difference
from .notices import Notice, unique
from .sequential import N_STAR, sequential
from .statistics import Regression, Statistic

__all__ = ["Comparison", "compare"]


@dataclass(frozen=True)
class Comparison:
    """``treatment`` against ``control``: fixed-horizon ``absolute`` and ``relative``
    effects, the always-valid ``sequential`` ones, the ``bayesian`` reading of the relative
    effect, CUPED's (None without a covariate), and every notice once."""

    control: str
    treatment: str
    absolute: Effect
    relative: Effect
    sequential: Effect
    sequential_relative: Effect
    bayesian: Bayesian
    cuped: Cuped | None
    cuped_relative: Cuped | None
    notices: tuple[Notice, ...]


def compare(control: Statistic, treatment: Statistic, control_name: str = "control",
            treatment_name: str = "treatment", alpha: float = 0.05, n_star: float = N_STAR,
            prior: Prior = Prior(), covariate: tuple[Regression, Regression] | None = None) -> Comparison:
    """The :class:`Comparison` of two arms' statistics (``covariate``: the arms' statistics
    with the pre-exposure covariate, for CUPED).

    >>> from .statistics import Proportion
    >>> c = compare(Proportion(1000, 100), Proportion(1000, 130))
    >>> round(c.absolute.estimate, 3), round(c.relative.estimate, 3), c.absolute.p_value < 0.05
    (0.03, 0.3, True)

    The lift's variance 0.13 × 0.87 / (1000 × 0.1²) + 0.09 × 0.13² / (1000 × 0.1⁴) = 0.02652,
    sd 0.16285: chance to win Φ(0.3 / 0.16285) = Φ(1.842):

    >>> c.sequential.ci[0] < c.absolute.ci[0], round(c.bayesian.chance_to_win, 3)
    (True, 0.967)
    """
    absolute = difference(control, treatment, False, alpha)
    relative = difference(control, treatment, True, alpha)
    seq = sequential(control, treatment, False, alpha, n_star)
    seq_rel = sequential(control, treatment, True, alpha, n_star)
    bayes = bayesian(control, treatment, True, prior, alpha)
    c_abs = c_rel = None
    notices = [*absolute.notices, *relative.notices]
    if covariate is not None:
        c_abs = cuped(*covariate, relative=False, alpha=alpha)
        c_rel = cuped(*covariate, relative=True, alpha=alpha)
        notices += [*c_abs.adjusted.notices, *c_rel.adjusted.notices]
    return Comparison(control_name, treatment_name, absolute, relative, seq, seq_rel, bayes,
                      c_abs, c_rel, unique(notices))
