"""Adjusted p-values across many metrics (or segments): Holm's step-down method keeps the
chance of any false positive (the family-wise error rate) at ``alpha``; Benjamini–Hochberg
keeps the expected share of false positives among the positives (the false discovery rate).
Both return the adjusted p-values in the order given; compare them with ``alpha`` as usual.

GrowthBook's Holm example, p = [.01, .04, .03, .005, .55, .6], sorted [.005, .01, .03, .04,
.55, .6]: adjusted 6 × .005 = .03, 5 × .01 = .05, 4 × .03 = .12, max(3 × .04, .12) = .12, then
1, 1. Benjamini–Hochberg, p × m / rank from the largest down, each at most the one above:
.6, min(.66, .6) = .6, .04 × 6/4 = .06, .03 × 6/3 = .06, .01 × 6/2 = .03, .005 × 6 = .03:

>>> p = [.01, .04, .03, .005, .55, .6]
>>> sorted(round(x, 4) for x in holm(p))
[0.03, 0.05, 0.12, 0.12, 1.0, 1.0]
>>> [round(x, 4) for x in benjamini_hochberg(p)]
[0.03, 0.06, 0.06, 0.03, 0.6, 0.6]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..stats import holm

__all__ = ["benjamini_hochberg", "holm"]


def benjamini_hochberg(p: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values, in the order given (NaN stays NaN and is not
    counted among the tests)."""
    known = [i for i, x in enumerate(p) if not math.isnan(x)]
    out = [math.nan] * len(p)
    from scipy.stats import false_discovery_control  # scipy.stats: imported when first needed
    if known:
        adjusted = false_discovery_control([p[i] for i in known], method="bh")
        for i, x in zip(known, adjusted, strict=True):
            out[i] = float(x)
    return out
