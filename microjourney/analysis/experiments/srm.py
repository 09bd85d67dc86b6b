"""Sample-ratio mismatch: are the units split between the arms as planned?

A split that differs from the plan by more than chance (Pearson's chi-square goodness of fit
against the planned weights, p < :data:`THRESHOLD` = 0.001) means assignment or logging lost
units unevenly, and every comparison of the arms may be biased: it comes back as an ``srm``
notice, not an error. The threshold is strict because the check runs on every experiment at
every look.

1,000 against 1,200 units planned 50/50: χ² = 2 × 100² / 1,100 = 18.18, p = 0.0000201:

>>> s = srm([1000, 1200])
>>> round(s.chi2, 2), f"{s.p_value:.3g}", s.flagged
(18.18, '2.01e-05', True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .multiple import holm
from .notices import SRM, Notice

__all__ = ["SRMCheck", "THRESHOLD", "srm", "srm_by"]

#: An SRM is flagged below this p-value.
THRESHOLD = 0.001


@dataclass(frozen=True)
class SRMCheck:
    """The observed units per arm, the expected ones, χ², its p-value, whether it is flagged,
    and the notice when it is."""

    counts: tuple[int, ...]
    expected: tuple[float, ...]
    chi2: float
    p_value: float
    flagged: bool
    notice: Notice | None = None


def srm(counts: Sequence[int], weights: Sequence[float] | None = None,
        threshold: float = THRESHOLD, label: str = "") -> SRMCheck:
    """Check the split ``counts`` against ``weights`` (default: equal). Arms of weight 0 are
    left out. No units: p = 1."""
    w = list(weights) if weights is not None else [1.0] * len(counts)
    if len(w) != len(counts):
        raise ValueError(f"{len(counts)} arms but {len(w)} weights")
    kept = [(int(c), float(x)) for c, x in zip(counts, w, strict=True) if x > 0]
    total, weight = sum(c for c, _ in kept), sum(x for _, x in kept)
    expected = tuple(total * x / weight for _, x in kept) if weight > 0 else ()
    if total == 0 or len(kept) < 2:
        return SRMCheck(tuple(int(c) for c in counts), expected, 0.0, 1.0, False)
    from scipy.stats import chisquare  # scipy.stats: imported when first needed
    result = chisquare([c for c, _ in kept], expected)
    chi2, p = float(result.statistic), float(result.pvalue)
    flagged = p < threshold
    where = f" in {label}" if label else ""
    notice = Notice(SRM, f"sample-ratio mismatch{where}: units {list(counts)} where "
                    f"{[round(e, 1) for e in expected]} were expected (p = {p:.2g} < {threshold})") \
        if flagged else None
    return SRMCheck(tuple(int(c) for c in counts), expected, chi2, p, flagged, notice)


def srm_by(counts: Mapping[str, Sequence[int]], weights: Sequence[float] | None = None,
           threshold: float = THRESHOLD, dimension: str = "") -> dict[str, SRMCheck]:
    """The check for each value of a dimension (``{"mobile": [n_a, n_b], ...}``), flagged on
    Holm-adjusted p-values so that checking many values does not flag one by chance: the
    chance of any false flag stays below ``threshold``. ``p_value`` is the adjusted one.

    App: χ² = 2 × 60² / 360 = 20, p = 7.7e-6, times 2 by Holm (the smaller of two):

    >>> checks = srm_by({"web": [500, 520], "app": [300, 420]})
    >>> checks["web"].flagged, checks["app"].flagged, f"{checks['app'].p_value:.2g}"
    (False, True, '1.5e-05')
    """
    raw = {k: srm(v, weights, threshold) for k, v in counts.items()}
    adjusted = holm([c.p_value for c in raw.values()])
    out: dict[str, SRMCheck] = {}
    for (key, check), p in zip(raw.items(), adjusted, strict=True):
        label = f"{dimension} = {key}" if dimension else key
        flagged = p < threshold and not math.isnan(p)
        notice = Notice(SRM, f"sample-ratio mismatch in {label}: units {list(check.counts)} "
                        f"(Holm-adjusted p = {p:.2g} < {threshold})") if flagged else None
        out[key] = SRMCheck(check.counts, check.expected, check.chi2, p, flagged, notice)
    return out
