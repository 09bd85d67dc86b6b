"""The attempts of journeys as people live them, for the Peak-End rule (docs/peak_end.md):
each finished attempt of a journey's moment with its person, journey, the seconds frictions
cost it and its survey score in [0, 1]. Episodes are cut and weighed by
:mod:`microjourney.analysis.peak_end`: cutting a person's attempts into 30-day journeys from
the first attempt not yet placed is sequential, which window functions cannot say, so the
engine hands over these rows — for a bounded number of persons (:func:`sampled`).
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
from ibis.expr.types import Table

__all__ = ["journey_steps", "sampled"]


def journey_steps(attempts: Table, journeys: Table, lost: Table, scores: Table | None,
                  outcomes: Sequence[str]) -> Table:
    """Per attempt of a journey's moment whose outcome is one of ``outcomes``: ``person``,
    ``journey``, ``moment``, ``attempt_id``, ``start_ts``, ``end_ts``, ``outcome``,
    ``f_seconds`` (seconds lost to frictions, 0 without) and ``score`` (the mean of its
    survey scores in [0, 1], NULL without). ``journeys``: ``j_moment`` → ``journey``;
    ``lost``: ``attempt``, ``seconds`` per friction; ``scores``: ``attempt_id``, ``score``."""
    a = attempts.filter(attempts.outcome.isin(list(outcomes)))
    a = a.inner_join(journeys, a.moment == journeys.j_moment).drop("j_moment")
    per = lost.group_by(lost.attempt).aggregate(f_seconds=lost.seconds.sum())
    a = a.left_join(per, a.attempt_id == per.attempt).drop("attempt")
    if scores is not None:
        s = scores.group_by(scores.attempt_id.name("s_attempt")).aggregate(score=scores.score.mean())
        a = a.left_join(s, a.attempt_id == s.s_attempt).drop("s_attempt")
    else:
        a = a.mutate(score=ibis.null("float64"))
    return a.select("person", "journey", "moment", "attempt_id", "start_ts", "end_ts", "outcome",
                    f_seconds=a.f_seconds.fill_null(0.0), score=a.score)


def sampled(steps: Table, persons: int, most: int) -> Table:
    """``steps`` of about ``most`` of the ``persons`` (all when fewer): those whose
    person id hashes into the first ``most / persons`` of the range — the same persons on
    every run and every engine, and all of each one's attempts."""
    if persons <= most:
        return steps
    keep = max(1, round(1000 * most / persons))
    bucket = steps.person.hash().abs() % 1000
    return steps.filter(bucket < keep)
