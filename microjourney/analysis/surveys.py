"""Survey scores on sufficient statistics (counts per answer, per stratum), with no I/O:
NPS with its standard error and adjusted-Wald interval, CSAT and CES, and the correction of
the selection bias of triggered surveys by reweighting strata to the attempts they stand for.

NPS is the share of promoters (9–10) minus the share of detractors (0–6), here as a fraction
in [−1, 1] (surfaces show it in points). Each answer is +1, 0 or −1, so with ``p`` and ``d``
the shares its variance is ``p + d − (p − d)²`` and its standard error ``√(var / n)``. The
interval is the adjusted Wald of Rocks (The American Statistician, 2016), which had the best
coverage of six methods there: add 3 answers, ¾ of them promoters and ¾ detractors, and use
the same variance on the adjusted shares.

>>> s = nps([0, 7, 7, 9, 9, 9])
>>> round(s.score * 100, 1), round(s.variance, 4), round(5 / 9, 4)
(33.3, 0.5556, 0.5556)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .stats import wilson_interval, z_value

#: NPS bands: detractors answer 0–6, passives 7–8, promoters 9–10.
DETRACTOR_MAX, PROMOTER_MIN = 6, 9
#: The adjusted-Wald interval's pseudo-answers: 3 in all, ¾ promoters and ¾ detractors.
ADDED, ADDED_EACH = 3.0, 0.75


@dataclass(frozen=True)
class NPS:
    """Net Promoter Score of ``n`` answers: the score in [−1, 1], the shares of promoters
    and detractors, the variance of one answer, the standard error, the adjusted-Wald 95%
    interval (None without answers)."""

    n: int
    promoters: float
    detractors: float
    score: float
    variance: float
    se: float
    ci: tuple[float, float] | None


def nps_counts(promoters: int, passives: int, detractors: int, confidence: float = 0.95) -> NPS:
    """:class:`NPS` from the counts of promoters, passives and detractors.

    By hand for the answers 0, 7, 7, 9, 9, 9: se = √(5/9 / 6) = 0.3043; adjusted, n = 9,
    p = 3.75/9, d = 1.75/9, centre 0.2222, variance 0.5617, half-width 1.96 × √(0.5617/9)
    = 0.4897:

    >>> s = nps_counts(3, 2, 1)
    >>> round(s.se, 4), [round(x, 4) for x in s.ci]
    (0.3043, [-0.2674, 0.7119])
    """
    n = promoters + passives + detractors
    if n <= 0:
        return NPS(0, math.nan, math.nan, math.nan, math.nan, math.nan, None)
    p, d = promoters / n, detractors / n
    variance = p + d - (p - d) ** 2
    z = z_value(confidence)
    n_adj = n + ADDED
    pa, da = (promoters + ADDED_EACH) / n_adj, (detractors + ADDED_EACH) / n_adj
    half = z * math.sqrt((pa + da - (pa - da) ** 2) / n_adj)
    centre = pa - da
    return NPS(n, p, d, p - d, variance, math.sqrt(variance / n),
               (max(-1.0, centre - half), min(1.0, centre + half)))


def nps(scores: Iterable[int]) -> NPS:
    """:class:`NPS` of answers on the 0–10 scale (out-of-range answers are an error)."""
    promoters = passives = detractors = 0
    for s in scores:
        if not 0 <= s <= 10:
            raise ValueError(f"an NPS answer is 0 to 10, not {s}")
        if s >= PROMOTER_MIN:
            promoters += 1
        elif s <= DETRACTOR_MAX:
            detractors += 1
        else:
            passives += 1
    return nps_counts(promoters, passives, detractors)


@dataclass(frozen=True)
class Scale:
    """Answers on a rating scale: their number, mean with its 95% interval (normal, from the
    sample variance), and the share of top answers (CSAT: 4–5 of 5) with its Wilson interval."""

    n: int
    mean: float
    mean_ci: tuple[float, float] | None
    top_share: float
    top_ci: tuple[float, float] | None


def scale(counts: Mapping[int, int], top: int | None = None, confidence: float = 0.95) -> Scale:
    """:class:`Scale` of answers given as ``{answer: count}``; ``top``: the lowest answer
    that counts as satisfied (4 for CSAT on 1–5; None: no top share).

    >>> s = scale({1: 1, 3: 1, 4: 2, 5: 4}, top=4)  # CSAT: 6 of 8 answered 4 or 5
    >>> s.n, s.mean, s.top_share  # (1 + 3 + 8 + 20) / 8
    (8, 4.0, 0.75)
    """
    n = sum(counts.values())
    if n <= 0:
        return Scale(0, math.nan, None, math.nan, None)
    mean = sum(k * c for k, c in counts.items()) / n
    ci = None
    if n > 1:
        var = sum(c * (k - mean) ** 2 for k, c in counts.items()) / (n - 1)
        half = z_value(confidence) * math.sqrt(var / n)
        ci = (mean - half, mean + half)
    if top is None:
        return Scale(n, mean, ci, math.nan, None)
    hits = sum(c for k, c in counts.items() if k >= top)
    return Scale(n, mean, ci, hits / n, wilson_interval(hits, n, confidence))


@dataclass(frozen=True)
class Reweighted:
    """A score over the attempts, not only over those who answered: the raw mean of the
    answers, and the mean reweighted to the strata's shares of attempts (with its standard
    error); ``missing`` names strata with attempts but no answers, left out (their weight
    shared among the others), which the estimate cannot speak for."""

    raw: float
    reweighted: float
    se: float
    missing: tuple[str, ...]


def reweight(strata: Sequence[tuple[str, int, int, float, float]]) -> Reweighted:
    """Post-stratification of a score: per stratum (an outcome, or outcome × friction) its
    name, attempts, answers, the answers' mean and their sample variance. Triggered surveys
    ask some outcomes more than others; weighting each stratum's mean by its share of
    attempts instead of its share of answers gives the score of the attempts. Its variance
    is Σ w² s² / n over the strata with answers.

    >>> r = reweight([("completed", 900, 90, 4.5, 0.5), ("failed", 100, 90, 2.0, 1.0)])
    >>> r.raw, r.reweighted
    (3.25, 4.25)
    """
    answered = [s for s in strata if s[2] > 0]
    missing = tuple(s[0] for s in strata if s[2] == 0 and s[1] > 0)
    n = sum(s[2] for s in answered)
    attempts = sum(s[1] for s in answered)
    if n == 0 or attempts == 0:
        return Reweighted(math.nan, math.nan, math.nan, missing)
    raw = sum(s[2] * s[3] for s in answered) / n
    weights = [s[1] / attempts for s in answered]
    value = sum(w * s[3] for w, s in zip(weights, answered, strict=True))
    variance = sum(w * w * s[4] / s[2] for w, s in zip(weights, answered, strict=True))
    return Reweighted(raw, value, math.sqrt(variance), missing)


#: The lowest satisfied answer per scored question type (CSAT 4–5 of 5, thumbs up); CES
#: (1–7, higher is easier) is read by its mean.
SATISFIED: dict[str, int] = {"csat": 4, "thumbs": 1}


def answer_value(kind: str, answer: int) -> float:
    """What one answer adds to its question's headline score: NPS +1 (promoter), 0 or −1
    (detractor); CSAT and thumbs 1 when satisfied, else 0; CES the answer itself.

    >>> answer_value("nps", 10), answer_value("nps", 7), answer_value("nps", 3)
    (1.0, 0.0, -1.0)
    >>> answer_value("csat", 4), answer_value("csat", 3), answer_value("ces", 6)
    (1.0, 0.0, 6.0)
    """
    if kind == "nps":
        return 1.0 if answer >= PROMOTER_MIN else -1.0 if answer <= DETRACTOR_MAX else 0.0
    if kind in SATISFIED:
        return 1.0 if answer >= SATISFIED[kind] else 0.0
    return float(answer)


def _moments(kind: str, counts: Mapping[int, int]) -> tuple[int, float, float]:
    """Answers, mean and sample variance of the headline values of ``counts``."""
    n = sum(counts.values())
    if n == 0:
        return 0, math.nan, math.nan
    values = {k: answer_value(kind, k) for k in counts}
    mean = sum(values[k] * c for k, c in counts.items()) / n
    var = (sum(c * (values[k] - mean) ** 2 for k, c in counts.items()) / (n - 1)) if n > 1 else 0.0
    return n, mean, var


@dataclass(frozen=True)
class Summary:
    """One scored question's answers summed up: ``n``; NPS (nps questions) with its
    interval; the satisfied share (CSAT, thumbs) with its Wilson interval; the mean with
    its interval; and the headline reweighted to the attempts' strata (:func:`reweight`)."""

    n: int
    nps: float = math.nan
    nps_ci: tuple[float, float] | None = None
    satisfied: float = math.nan
    satisfied_ci: tuple[float, float] | None = None
    mean: float = math.nan
    mean_ci: tuple[float, float] | None = None
    reweighted: Reweighted | None = None


def summarise(kind: str, counts: Mapping[int, int],
              strata: Sequence[tuple[str, int, Mapping[int, int]]] = ()) -> Summary:
    """:class:`Summary` of a ``kind`` question from ``{answer: count}``; ``strata``: per
    stratum of attempts (outcome, with or without friction) its name, its attempts and the
    answer counts of its answers, for the reweighted headline (none: not reweighted).

    >>> s = summarise("nps", {0: 1, 7: 2, 9: 3})
    >>> s.n, round(s.nps * 100, 1), round(s.mean, 2)
    (6, 33.3, 6.83)
    >>> r = summarise("csat", {5: 9, 2: 3},
    ...               [("completed", 90, {5: 9}), ("failed", 10, {2: 3})]).reweighted
    >>> r.raw, r.reweighted  # 9 of 12 satisfied as answered; 90% of the attempts are
    (0.75, 0.9)
    """
    n = sum(counts.values())
    sc = scale(counts, top=SATISFIED.get(kind))
    out: dict[str, Any] = {"n": n, "mean": sc.mean, "mean_ci": sc.mean_ci,
                           "satisfied": sc.top_share, "satisfied_ci": sc.top_ci}
    if kind == "nps":
        promoters = sum(c for k, c in counts.items() if k >= PROMOTER_MIN)
        detractors = sum(c for k, c in counts.items() if k <= DETRACTOR_MAX)
        score = nps_counts(promoters, n - promoters - detractors, detractors)
        out.update(nps=score.score, nps_ci=score.ci)
    if strata:
        rows = [(name, attempts, *_moments(kind, c)) for name, attempts, c in strata]
        out["reweighted"] = reweight(rows)
    return Summary(**out)


__all__ = ["NPS", "SATISFIED", "Reweighted", "Scale", "Summary", "answer_value", "nps",
           "nps_counts", "reweight", "scale", "summarise"]
