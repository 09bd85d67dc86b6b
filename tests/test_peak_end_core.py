"""The Peak-End rule's pure core (microjourney.analysis.peak_end and peak_end_validation):
intensities and episodes by hand; Redelmeier and Kahneman's colonoscopy patients and duration
neglect; the per-episode table against a plain Python reference; the per-moment shares by hand;
the validation's intervals against hand computations and a published example (Zou, 2007), their
coverage, and seeded simulations in which ratings come from the peak-end score or from the mean."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

import microjourney.analysis.peak_end as pe
import microjourney.analysis.peak_end_validation as pv
from microjourney.analysis import stats
from microjourney.analysis.peak_end import (
    Weights,
    cut,
    episode,
    episodes,
    intensities,
    intensity,
    journeys,
    mark,
)
from microjourney.analysis.peak_end_validation import (
    MISSING_VALUES,
    SINGULAR,
    TOO_FEW_RATINGS,
    ZERO_VARIANCE,
    fisher_interval,
    validate,
    zou_interval,
)


@pytest.mark.parametrize("module", [pe, pv])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


# --- intensity -------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome, seconds, score, expected", [
    ("completed", 0, 1.0, 0.75),                        # 0.5·1 + 0.25·0 + 0.25·(2·1 − 1)
    ("completed", 0, None, 0.5 / 0.75),                 # no score: 0.5 and 0.25 renormalised
    ("failed", 60, 0.0, -0.875),                        # −0.5 − 0.25·0.5 − 0.25
    ("abandoned", 30, None, (-0.3 - 0.0625) / 0.75),     # 0.5·(−0.6) + 0.25·(−30/120)
    ("escalated", 240, 0.5, -0.4),                      # −0.15 − 0.25 (capped) + 0
    ("completed", 90, 0.8, (0.5 - 0.1875 + 0.15)),      # 0.5 − 0.25·0.75 + 0.25·0.6
    ("failed", 1e6, 0.0, -1.0),                         # the floor
])
def test_intensity_by_hand(outcome, seconds, score, expected):
    assert intensity(outcome, seconds, score) == pytest.approx(expected)


def test_intensity_weights_scale_and_values():
    assert intensity("failed", 600, 1.0, Weights(outcome=1, friction=0, survey=0)) == -1.0
    # Weights need not sum to 1: they are divided by the sum of those present.
    assert intensity("completed", 60, None, Weights(2, 2, 4)) == pytest.approx((2 - 2 * 0.5) / 4)
    assert intensity("completed", 60, None, friction_scale=60) == pytest.approx((0.5 - 0.25) / 0.75)
    assert intensity("escalated", 0, None, Weights(1, 0, 0), values={"escalated": 0.2}) == pytest.approx(0.2)
    # Survey weight only: no answer, no intensity.
    assert math.isnan(intensity("completed", 0, None, Weights(0, 0, 1)))
    assert intensity("completed", 0, 0.8, Weights(0, 0, 1)) == pytest.approx(0.6)
    assert math.isnan(intensity("in_progress", 30, 0.5))


def test_intensities_match_the_scalar_and_stay_in_range():
    rng = np.random.default_rng(3)
    n = 2000
    outcomes = rng.choice(["completed", "failed", "abandoned", "escalated", "in_progress"], n)
    seconds = np.where(rng.random(n) < 0.1, np.nan, rng.exponential(100, n))
    scores = np.where(rng.random(n) < 0.6, np.nan, rng.random(n))
    x = intensities(outcomes, seconds, scores)
    finite = np.isfinite(x)
    assert (~finite == (outcomes == "in_progress")).all()
    assert ((x[finite] >= -1) & (x[finite] <= 1)).all()
    for i in range(0, n, 97):
        score = None if np.isnan(scores[i]) else scores[i]
        expected = intensity(str(outcomes[i]), 0.0 if np.isnan(seconds[i]) else seconds[i], score)
        assert x[i] == pytest.approx(expected, nan_ok=True)
    assert list(intensities(pd.Series(["completed"]), [np.nan], [None])) == pytest.approx([0.5 / 0.75])


@pytest.mark.parametrize("call", [
    lambda: intensity("lost", 0, None),
    lambda: intensity("completed", -1, None),
    lambda: intensity("completed", 0, 1.2),
    lambda: intensity("completed", 0, None, friction_scale=0),
    lambda: intensities(["completed", "failed"], [0], [None, None]),
    lambda: Weights(outcome=-0.1),
    lambda: Weights(0, 0, 0),
    lambda: Weights(float("nan")),
])
def test_intensity_refuses_what_cannot_be_meant(call):
    with pytest.raises(ValueError):
        call()


# --- episodes --------------------------------------------------------------------------------


def test_episode_by_hand():
    e = episode([0.6, -0.8, 0.4], [0, 100, 500], [60, 160, 530])
    assert (e.neg_peak, e.neg_peak_index, e.pos_peak, e.pos_peak_index) == (-0.8, 1, 0.6, 0)
    assert (e.peak, e.peak_index, e.end, e.end_index) == (-0.8, 1, 0.4, 2)
    assert e.peak_end == pytest.approx(-0.2)
    assert e.mean == pytest.approx(0.2 / 3)
    assert (e.count, e.duration_s) == (3, 530.0)


def test_episode_ties_signs_and_missing():
    tie = episode([0.5, -0.5], [0, 60], [30, 90])
    assert (tie.peak, tie.peak_index) == (-0.5, 1)  # an equal |x|: the negative
    earliest = episode([-0.7, 0.1, -0.7], [0, 1, 2], [1, 2, 3])
    assert (earliest.neg_peak_index, earliest.peak_index, earliest.end_index) == (0, 0, 2)
    good = episode([0.2, 0.9, 0.4], [0, 1, 2], [1, 2, 3])
    assert math.isnan(good.neg_peak) and good.neg_peak_index == -1
    assert (good.peak, good.pos_peak_index, good.peak_end) == (0.9, 1, pytest.approx(0.65))
    zeros = episode([0.0, 0.0], [0, 1], [1, 2])
    assert (zeros.peak, zeros.peak_index, zeros.neg_peak_index, zeros.pos_peak_index) == (0.0, 0, -1, -1)
    # An attempt in progress is not yet part of the experience: the end is the last finished one.
    open_ = episode([-0.2, 0.9, math.nan], [0, 60, 120], [30, 90, math.nan])
    assert (open_.end, open_.end_index, open_.count, open_.duration_s) == (0.9, 1, 2, 90.0)
    none = episode([math.nan], [0], [1])
    assert none.count == 0 and math.isnan(none.peak_end) and none.peak_index == -1
    assert episode([], [], []).count == 0
    one = episode([-0.4], [0], [45])
    assert one.peak == one.end == one.mean == one.peak_end == -0.4 and one.duration_s == 45
    with pytest.raises(ValueError):
        episode([0.1, 0.2], [0], [1, 2])


# Kahneman's figure of Redelmeier and Kahneman (1996): pain 0–10 each minute; both peak at 8,
# A ends at 7 after 8 minutes, B at 1 after 24 (the values in between are illustrative).
PAIN_A = [2, 4, 5, 8, 6, 7, 8, 7]
PAIN_B = [2, 4, 6, 8, 5, 6, 5, 4] + [3] * 8 + [2] * 7 + [1]


def minutes(pain):
    starts = [60 * i for i in range(len(pain))]
    return [-p / 10 for p in pain], starts, [s + 60 for s in starts]


def test_colonoscopy_more_pain_remembered_as_less():
    a, b = episode(*minutes(PAIN_A)), episode(*minutes(PAIN_B))
    assert a.peak == b.peak == -0.8
    assert (a.end, b.end) == (-0.7, -0.1)
    assert a.peak_end == pytest.approx(-0.75) and b.peak_end == pytest.approx(-0.45)
    assert b.peak_end > a.peak_end  # B remembers it as better...
    assert sum(PAIN_B) > sum(PAIN_A)  # ...though B's total pain is larger (79 against 47)
    assert b.mean * b.count < a.mean * a.count and b.duration_s == 3 * a.duration_s


def test_duration_neglect():
    # Adding a better end (Kahneman et al., 1993): the same 60 s of cold water, then 30 s a
    # little less cold. More pain in all, a better peak-end score.
    short = [-0.8] * 4
    longer = short + [-0.6] * 2
    s, lg = (episode(x, [15 * i for i in range(len(x))], [15 * (i + 1) for i in range(len(x))])
             for x in (short, longer))
    assert sum(longer) < sum(short) and lg.peak_end > s.peak_end
    assert lg.peak_end == pytest.approx(-0.7) and s.peak_end == pytest.approx(-0.8)
    # The same peak and end, three times as long (and a different mean): the same score.
    brief = episode([-0.2, -0.9, -0.3], [0, 60, 120], [60, 120, 180])
    drawn_out = episode([-0.2, -0.9, -0.6, -0.6, -0.6, -0.3], [0, 60, 120, 180, 240, 300],
                        [60, 120, 180, 240, 300, 540])
    assert brief.peak_end == drawn_out.peak_end == pytest.approx(-0.6)
    assert drawn_out.duration_s == 3 * brief.duration_s and drawn_out.mean < brief.mean


def reference(rows):
    """The Episode fields of one episode by plain Python, from (order, intensity, start, end)."""
    live = sorted((r for r in rows if not math.isnan(r[1])), key=lambda r: r[0])
    if not live:
        return None
    x = [r[1] for r in live]
    lo, hi = min(x), max(x)
    neg = next(r for r in live if r[1] == lo)
    pos = next(r for r in live if r[1] == hi)
    peak = neg if abs(lo) >= abs(hi) else pos
    return {"neg_peak": lo if lo < 0 else math.nan, "neg_peak_index": neg[0] if lo < 0 else None,
            "pos_peak": hi if hi > 0 else math.nan, "pos_peak_index": pos[0] if hi > 0 else None,
            "peak": peak[1], "peak_index": peak[0], "end": live[-1][1], "end_index": live[-1][0],
            "peak_end": (peak[1] + live[-1][1]) / 2, "mean": sum(x) / len(x), "count": len(x),
            "duration_s": max(r[3] for r in live) - min(r[2] for r in live)}


def test_episodes_match_a_plain_reference():
    rng = np.random.default_rng(11)
    rows = []
    for person in range(60):
        for journey in ("pay", "card"):
            n = int(rng.integers(1, 8))
            orders = rng.permutation(n) + 10  # not in row order, not from 0
            for o in orders:
                # Rounded, so that peaks tie; some attempts still in progress.
                x = round(float(rng.uniform(-1, 1)), 1) if rng.random() > 0.1 else math.nan
                rows.append((person, journey, int(o), x, 60.0 * o, 60.0 * o + 30))
    frame = pd.DataFrame(rows, columns=["person", "journey", "order", "intensity", "start", "end"])
    table = episodes(frame, by=["person", "journey"])
    got = {(r["person"], r["journey"]): r for r in table.to_dict("records")}
    expected = {}
    for key, g in frame.groupby(["person", "journey"]):
        ref = reference(list(g[["order", "intensity", "start", "end"]].itertuples(index=False)))
        if ref is not None:
            expected[key] = ref
    assert got.keys() == expected.keys()
    for key, ref in expected.items():
        for field, value in ref.items():
            have = got[key][field]
            if value is None:
                assert pd.isna(have), (key, field)
            else:
                assert have == pytest.approx(value, nan_ok=True), (key, field)
    # One episode through episode() agrees with the table.
    g = frame[(frame.person == 3) & (frame.journey == "pay")].sort_values("order")
    one = episode(list(g.intensity), list(g.start), list(g.end))
    assert one.peak_end == pytest.approx(got[(3, "pay")]["peak_end"])
    assert one.count == got[(3, "pay")]["count"]


def test_mark_flags_one_peak_and_one_end_per_episode():
    frame = pd.DataFrame({"episode": [1, 1, 1, 2, 2, 3], "order": [3, 1, 2, 1, 2, 1],
                          "intensity": [0.4, -0.9, math.nan, 0.3, 0.8, math.nan], "start": range(6),
                          "end": range(1, 7), "moment": list("abcdef")})
    m = mark(frame.set_axis([5, 5, 6, 7, 8, 9]))
    assert list(m.moment) == list("abcdef") and list(m.index) == [5, 5, 6, 7, 8, 9]
    assert list(m.is_peak) == [False, True, False, False, True, False]
    assert list(m.is_end) == [True, False, False, False, True, False]
    assert list(m.is_neg_peak) == [False, True, False, False, False, False]
    assert list(m.is_pos_peak) == [True, False, False, False, True, False]
    assert mark(m).equals(m)  # marking again changes nothing
    with pytest.raises(ValueError, match="lacks"):
        mark(frame.drop(columns="start"))


def test_cut_opens_a_new_episode_after_the_window():
    day = 86400.0
    frame = pd.DataFrame({"person": ["p"] * 6 + ["q"], "journey": ["pay"] * 5 + ["card", "pay"],
                          "start": [0, 30 * day - 1, 30 * day, 59 * day, 61 * day, 40 * day, math.nan]},
                         index=[10, 11, 12, 13, 14, 15, 16])
    got = cut(frame)
    assert list(got.index) == list(frame.index)
    # Within 30 days of the first (strictly), then from the first attempt after, and so on.
    assert got.tolist() == [0, 0, 1, 1, 2, 0, -1]
    assert cut(frame, window_s=100 * day).tolist() == [0, 0, 0, 0, 0, 0, -1]


# --- per moment, per journey -----------------------------------------------------------------


def three_episodes():
    return mark(pd.DataFrame({
        "episode": [1, 1, 2, 3, 3, 3, 3],
        "order": [1, 2, 1, 1, 2, 3, 4],
        "moment": ["pay", "card", "pay", "login", "pay", "card", "pay"],
        "intensity": [-0.9, 0.5, 0.7, -0.2, -0.4, -0.6, 0.1],
        "start": [0, 60, 0, 0, 60, 120, 180], "end": [30, 90, 30, 30, 90, 150, 210]}))


def test_remembered_by_hand():
    # 1: pay −0.9 (negative peak, peak), card 0.5 (end). 2: pay 0.7 alone (peak and end, no
    # negative peak). 3: login, pay, card −0.6 (negative peak, peak), pay 0.1 (end).
    t = pe.remembered(three_episodes())
    assert list(t.moment) == ["pay", "card", "login"]
    rows = {r["moment"]: r for r in t.to_dict("records")}
    pay, card, login = rows["pay"], rows["card"], rows["login"]
    assert (pay["episodes"], pay["attempts"], card["episodes"], login["episodes"]) == (3, 4, 2, 1)
    assert pay["intensity"] == pytest.approx(-0.125) and card["intensity"] == pytest.approx(-0.05)
    assert (pay["neg_peak"], card["neg_peak"], login["neg_peak"]) == pytest.approx((1 / 3, 1 / 2, 0))
    assert (pay["end"], card["end"], login["end"]) == pytest.approx((2 / 3, 1 / 2, 0))
    # Shares: pay ½ + 1 + ½ over 3 episodes; card ½ (end of 1) + ½ (peak of 3); login nothing.
    assert (pay["share"], card["share"], login["share"]) == pytest.approx((2 / 3, 1 / 3, 0))
    # In the mean: pay ½ + 1 + 2/4, card ½ + ¼, login ¼, over 3.
    means = (pay["mean_share"], card["mean_share"], login["mean_share"])
    assert means == pytest.approx((2 / 3, 1 / 4, 1 / 12))
    assert t.share.sum() == pytest.approx(1) and t.mean_share.sum() == pytest.approx(1)
    assert pay["neg_peak_ci"] == pytest.approx(list(stats.wilson_interval(1, 3)))
    with pytest.raises(ValueError, match="mark"):
        pe.remembered(three_episodes().drop(columns="is_end"))


def test_journeys_pair_each_episode():
    table = pd.DataFrame({"journey": ["pay"] * 3 + ["card", "flat", "flat"],
                          "peak_end": [-0.5, 0.2, -0.1, 0.3, 0.1, 0.2],
                          "mean": [-0.2, 0.3, 0.1, 0.1, 0.0, 0.1]})
    t = journeys(table).set_index("journey")
    # pay: differences (−0.3, −0.1, −0.2): mean −0.2, sd 0.1, t(2) = 4.3027.
    half = sps.t.ppf(0.975, 2) * 0.1 / math.sqrt(3)
    assert t.loc["pay", "difference"] == pytest.approx(-0.2)
    assert t.loc["pay", "difference_ci"] == pytest.approx([-0.2 - half, -0.2 + half])
    assert t.loc["pay", "p_value"] == pytest.approx(2 * sps.t.sf(0.2 / (0.1 / math.sqrt(3)), 2))
    assert t.loc["pay", "peak_end"] == pytest.approx(-0.4 / 3)
    assert t.loc["pay", "mean"] == pytest.approx(0.2 / 3)
    # One episode, or no spread of the differences: no interval.
    assert t.loc["card", "difference_ci"] is None and math.isnan(t.loc["card", "p_value"])
    assert t.loc["flat", "difference"] == pytest.approx(0.1) and t.loc["flat", "difference_ci"] is None


# --- validation ------------------------------------------------------------------------------


def test_fisher_interval_by_hand():
    # atanh 0.5 = 0.549306; 1.959964 / √47 = 0.285890; tanh(0.263416), tanh(0.835196).
    low, high = fisher_interval(0.5, 50)
    assert (low, high) == pytest.approx((0.257488, 0.683256), abs=1e-6)
    assert fisher_interval(0.5, 50, confidence=0.9)[0] > low
    assert all(math.isnan(x) for x in fisher_interval(0.5, 3))
    assert fisher_interval(1.0, 10) == (1.0, 1.0)


def test_zou_interval_published_example():
    # Zou (2007), example 2: r12 = .396, r13 = .179, r23 = .088, n = 66 → (−.093, .517).
    assert zou_interval(0.396, 0.179, 0.088, 66) == pytest.approx((-0.093, 0.517), abs=5e-4)
    low, high = zou_interval(0.179, 0.396, 0.088, 66)
    assert (low, high) == pytest.approx((-0.517, 0.093), abs=5e-4)
    assert all(math.isnan(x) for x in zou_interval(0.4, 0.2, math.nan, 66))


def test_intervals_cover():
    # 1,000 samples of 80 from a normal trio with ρ(y, a) = 0.5, ρ(y, b) = 0.3, ρ(a, b) = 0.6.
    rng = np.random.default_rng(5)
    cov = np.array([[1, 0.5, 0.3], [0.5, 1, 0.6], [0.3, 0.6, 1]])
    chol = np.linalg.cholesky(cov)
    fisher = zou = 0
    reps = 1000
    for _ in range(reps):
        y, a, b = (rng.standard_normal((80, 3)) @ chol.T).T
        r = np.corrcoef([y, a, b])
        lo, hi = fisher_interval(r[0, 1], 80)
        fisher += lo <= 0.5 <= hi
        lo, hi = zou_interval(r[0, 1], r[0, 2], r[1, 2], 80)
        zou += lo <= 0.2 <= hi
    assert 0.93 <= fisher / reps <= 0.97
    assert 0.93 <= zou / reps <= 0.97


def test_correlation_matches_scipy():
    rng = np.random.default_rng(2)
    x = rng.normal(size=40)
    y = 0.4 * x + rng.normal(size=40)
    c = pv.correlation("mean", np.append(x, np.nan), np.append(y, 0.5))
    ref = sps.pearsonr(x, y)
    assert c.n == 40 and c.r == pytest.approx(ref.statistic) and c.p_value == pytest.approx(ref.pvalue)
    assert math.isnan(pv.correlation("end", [1, 2, 3], [4, 4, 4]).r)


def simulated(generator, n=400, seed=7):
    """Episodes of 2–8 attempts and a rating per episode made from ``generator``'s column:
    0.5 + 0.25·feature + noise (sd 0.05), in [0, 1]."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(2, 9, n)
    ep = np.repeat(np.arange(n), counts)
    order = np.concatenate([np.arange(c) for c in counts])
    x = np.clip(rng.normal(0.2, 0.5, len(ep)), -1, 1)
    table = episodes(pd.DataFrame({"episode": ep, "order": order, "intensity": x, "start": 60.0 * order,
                                   "end": 60.0 * order + 30}))
    ratings = np.clip(0.5 + 0.25 * table[generator] + rng.normal(0, 0.05, n), 0, 1)
    return ratings, table[["peak_end", "mean", "end", "peak", "neg_peak"]]


def weights(v):
    return {c.term: c for c in v.weighting}


def test_ratings_made_from_peak_end_are_found_so():
    v = validate(*simulated("peak_end"))
    assert v.n == 400 and v.notices == ()
    pe_r, mean_r = v.correlation("peak_end"), v.correlation("mean")
    assert pe_r.r > mean_r.r and pe_r.ci[0] > mean_r.ci[1]
    assert v.difference.estimate == pytest.approx(pe_r.r - mean_r.r) and v.difference.ci[0] > 0
    assert v.correlation("neg_peak").n < 400  # episodes with no attempt below 0 have none
    w = weights(v)
    # The generating weighting: 0.25·(peak + end)/2, nothing on the mean.
    assert w["peak"].estimate == pytest.approx(0.125, abs=0.015)
    assert w["end"].estimate == pytest.approx(0.125, abs=0.015)
    assert w["peak"].ci[0] < 0.125 < w["peak"].ci[1] and w["mean"].ci[0] < 0 < w["mean"].ci[1]
    assert w["intercept"].estimate == pytest.approx(0.5, abs=0.01)
    assert v.r2_cv > v.r2_cv_mean + 0.2 and v.r2_cv_peak_end > v.r2_cv_mean + 0.2
    assert v.r2_cv <= v.r2 and v.r2 > 0.8
    assert "peak-end score predicts the rating better than the mean" in pv.headline(v)


def test_ratings_made_from_the_mean_are_found_so():
    v = validate(*simulated("mean"))
    pe_r, mean_r = v.correlation("peak_end"), v.correlation("mean")
    assert mean_r.r > pe_r.r and mean_r.ci[0] > pe_r.ci[1] and v.difference.ci[1] < 0
    w = weights(v)
    assert w["mean"].estimate == pytest.approx(0.25, abs=0.04)
    assert w["peak"].ci[0] < 0 < w["peak"].ci[1] and w["end"].ci[0] < 0 < w["end"].ci[1]
    assert v.r2_cv_mean > v.r2_cv_peak_end + 0.1
    assert v.r2_cv_mean >= v.r2_cv - 0.01  # the two extra terms add nothing out of sample
    assert "mean predicts the rating better" in pv.headline(v)


def test_the_weighting_is_exact_on_exact_ratings_and_cross_validation_is_leave_one_out():
    rng = np.random.default_rng(1)
    f = pd.DataFrame({"peak": rng.uniform(-1, 0, 50), "end": rng.uniform(-1, 1, 50),
                      "mean": rng.uniform(-1, 1, 50)})
    f["peak_end"] = (f.peak + f.end) / 2
    y = 0.4 + 0.1 * f.peak + 0.2 * f.end + 0.05 * f["mean"]
    w = weights(validate(y, f))
    fitted = [w[t].estimate for t in ("intercept", "peak", "end", "mean")]
    assert fitted == pytest.approx([0.4, 0.1, 0.2, 0.05])
    assert w["end"].se == pytest.approx(0, abs=1e-9)
    # With as many folds as episodes, k-fold is leave-one-out: PRESS from the hat matrix.
    noisy = y + rng.normal(0, 0.05, 50)
    x = np.column_stack([np.ones(50), f.peak, f.end, f["mean"]])
    h = np.diag(x @ np.linalg.inv(x.T @ x) @ x.T)
    resid = noisy - x @ np.linalg.lstsq(x, noisy, rcond=None)[0]
    press = float(((resid / (1 - h)) ** 2).sum())
    v = validate(noisy, f, folds=50)
    assert v.r2_cv == pytest.approx(1 - press / float(((noisy - noisy.mean()) ** 2).sum()))
    # The folds come from the seed: the same seed, the same fit.
    assert validate(noisy, f, seed=4).r2_cv == validate(noisy, f, seed=4).r2_cv


def test_validation_notices():
    ratings, features = simulated("peak_end", n=20)
    v = validate(ratings, features)
    assert [n.code for n in v.notices] == [TOO_FEW_RATINGS] and v.n == 20
    assert not math.isnan(v.r2)  # still estimated
    # Unrated episodes are left out quietly; rated ones without a mean with a notice.
    ratings, features = simulated("peak_end", n=100)
    ratings = ratings.to_numpy().copy()
    ratings[:10] = np.nan
    features = features.copy()
    features.loc[10, "mean"] = np.nan
    v = validate(ratings, features)
    assert v.n == 89 and [n.code for n in v.notices] == [MISSING_VALUES]
    flat = validate(np.full(100, 0.7), simulated("mean", n=100)[1])
    assert ZERO_VARIANCE in [n.code for n in flat.notices] and math.isnan(flat.correlation("mean").r)
    assert "cannot be compared" in pv.headline(flat)
    # One attempt per episode: peak, end and mean are one number, no weighting.
    x = np.random.default_rng(0).uniform(-1, 1, 60)
    single = pd.DataFrame({"peak_end": x, "mean": x, "end": x, "peak": x})
    s = validate(np.clip(0.5 + 0.3 * x, 0, 1), single)
    assert SINGULAR in [n.code for n in s.notices] and math.isnan(weights(s)["peak"].estimate)
    assert s.r2_cv_mean == pytest.approx(s.r2_cv_peak_end)
    empty = validate([], pd.DataFrame({"peak_end": [], "mean": [], "end": [], "peak": []}))
    assert empty.n == 0 and TOO_FEW_RATINGS in [n.code for n in empty.notices]


@pytest.mark.parametrize("call", [
    lambda f: validate([0.5] * 3, f),
    lambda f: validate([1.5] * 4, f),
    lambda f: validate([0.5] * 4, f.drop(columns="peak")),
    lambda f: validate([0.5] * 4, f, folds=1),
])
def test_validate_refuses_what_cannot_be_meant(call):
    f = pd.DataFrame({"peak_end": [0.1, 0.2, 0.3, 0.4], "mean": [0.0] * 4, "end": [0.1] * 4,
                      "peak": [0.2] * 4})
    with pytest.raises(ValueError):
        call(f)
