"""Survey statistics (microjourney/analysis/surveys.py): NPS against hand-worked values and
a real telecom survey, the adjusted-Wald interval's coverage and the reweighting of
triggered surveys by seeded simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from microjourney.analysis.surveys import nps, nps_counts, reweight, scale

from .helpers import REALDATA


def test_nps_of_the_hand_worked_answers():
    # 0, 7, 7, 9, 9, 9: promoters 3/6, detractors 1/6: NPS 33.3; variance
    # 1/2 + 1/6 − (1/3)² = 5/9; standard error √(5/9 / 6).
    s = nps([0, 7, 7, 9, 9, 9])
    assert s.score * 100 == pytest.approx(33.333, abs=1e-3)
    assert s.variance == pytest.approx(5 / 9) and s.se == pytest.approx(math.sqrt(5 / 9 / 6))
    # Adjusted Wald: 3 more answers, ¾ promoters and ¾ detractors: (3.75 − 1.75) / 9 = 0.2222
    # ± 1.96 × √((0.4167 + 0.1944 − 0.2222²) / 9).
    centre = 2 / 9
    half = 1.959964 * math.sqrt((3.75 / 9 + 1.75 / 9 - centre ** 2) / 9)
    assert s.ci == pytest.approx((centre - half, centre + half), abs=1e-6)
    assert nps_counts(0, 0, 0).ci is None and math.isnan(nps_counts(0, 0, 0).score)
    with pytest.raises(ValueError, match="0 to 10, not 11"):
        nps([9, 11])


def test_csat_and_ces_on_their_scales():
    csat = scale({1: 1, 3: 1, 4: 2, 5: 4}, top=4)
    assert (csat.n, csat.mean, csat.top_share) == (8, 4.0, 0.75)
    sd = math.sqrt((9 + 1 + 0 + 4) / 7)  # deviations from 4: −3, −1, 0, 0, +1 ×4
    assert csat.mean_ci == pytest.approx((4 - 1.959964 * sd / math.sqrt(8), 4 + 1.959964 * sd / math.sqrt(8)))
    ces = scale({2: 3, 6: 1})  # CES on 1–7: a mean, no top share
    assert ces.mean == 3.0 and math.isnan(ces.top_share) and ces.top_ci is None


def test_the_adjusted_wald_interval_covers_at_the_nominal_rate():
    """Seeded: 2,000 samples of 40 answers from a population with NPS 20 (45% promoters,
    25% detractors); the 95% interval covers the true score at 95% within Monte Carlo
    error."""
    rng = np.random.default_rng(21)
    truth, reps, n = 0.20, 2000, 40
    draws = rng.multinomial(n, [0.45, 0.30, 0.25], size=reps)
    covered = sum(lo <= truth <= hi for lo, hi in (nps_counts(*map(int, d)).ci for d in draws))
    se = math.sqrt(0.95 * 0.05 / reps)
    assert abs(covered / reps - 0.95) <= 3 * se, covered / reps


def test_reweighting_undoes_the_bias_of_a_triggered_survey():
    """Seeded: 300 runs of 2,000 attempts, 80% completed (CSAT mean 4.5) and 20% failed
    (mean 2.0): the true score over attempts is 4.0. The survey asks 10% of completed and
    60% of failed attempts, so failures are over-represented: the raw mean of the answers is
    biased low (about 3.0); the mean reweighted by outcome is not, and its standard error
    matches the spread of its estimates."""
    rng = np.random.default_rng(2026)
    raw, fixed, ses = [], [], []
    for _ in range(300):
        strata = []
        for name, attempts, mean, asked in (("completed", 1600, 4.5, 0.10), ("failed", 400, 2.0, 0.60)):
            answers = np.clip(np.round(rng.normal(mean, 0.8, size=rng.binomial(attempts, asked))), 1, 5)
            strata.append((name, attempts, len(answers), float(answers.mean()), float(answers.var(ddof=1))))
        r = reweight(strata)
        raw.append(r.raw)
        fixed.append(r.reweighted)
        ses.append(r.se)
    # The rounded, clipped normal answers have means a little inside 4.5 and 2.0: the truth
    # of this population is the attempts' mean of those, computed the same way at large n.
    big = [np.clip(np.round(rng.normal(m, 0.8, size=400_000)), 1, 5).mean() for m in (4.5, 2.0)]
    truth = 0.8 * big[0] + 0.2 * big[1]
    spread = float(np.std(fixed, ddof=1))
    assert abs(np.mean(fixed) - truth) < 3 * spread / math.sqrt(len(fixed))  # unbiased
    assert np.mean(raw) < truth - 0.4  # the raw mean is not
    assert np.mean(ses) == pytest.approx(spread, rel=0.15)
    unanswered = reweight([("completed", 10, 2, 4.0, 0.5), ("failed", 5, 0, math.nan, math.nan)])
    assert unanswered.missing == ("failed",) and unanswered.reweighted == 4.0


@pytest.mark.skipif(not (REALDATA / "surveys" / "telecom_nps_verbatims.csv.gz").exists(),
                    reason="../shared/realdata is absent")
def test_a_real_telecom_survey_by_journey_stage():
    import pandas as pd

    data = pd.read_csv(REALDATA / "surveys" / "telecom_nps_verbatims.csv.gz").dropna(subset=["NPS_SCORE"])
    scores = data["NPS_SCORE"].astype(int)
    # Our bands are the survey's own labels, answer for answer.
    bands = np.where(scores >= 9, "Promoter", np.where(scores <= 6, "Detractor", "Passive"))
    assert (bands == data["NPS_RATING"].to_numpy()).all()
    by_stage = {stage: nps(group.astype(int)) for stage, group in scores.groupby(data["SURVEY_SUB_TYPE"])}
    # Counted by hand from the file: promoters − detractors over answers.
    expected = {"Order": (341 - 437) / 962, "First Payment": (307 - 638) / 1130,
                "Equipment Received": (39 - 170) / 231, "Service in Use": (3 - 26) / 30}
    for stage, value in expected.items():
        s = by_stage[stage]
        assert s.score == pytest.approx(value) and s.ci[0] < s.score < s.ci[1]
    width = {k: s.ci[1] - s.ci[0] for k, s in by_stage.items()}
    assert width["Service in Use"] > 3 * width["First Payment"]  # 30 answers against 1,130
