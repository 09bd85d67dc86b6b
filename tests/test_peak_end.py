"""Peak-End on a workspace: journeys lived cut by the window, each attempt's intensity from
its outcome, frictions and survey score, the worst point and the end per moment, and the
journey's own rating linked to the journey lived it is about — by hand; and a seeded
workspace where ratings follow peak-end shows it in the validation."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from microjourney.analysis import peak_end as core

SPEC = """\
journeys:
  - name: shop
    moments:
      - {name: pay, start: {event: open}, complete: {event: ok}, fail: {event: failed}, timeout: 10m}
      - {name: track, start: {event: track_open}, complete: {event: track_seen}, timeout: 10m}
"""
RATED = SPEC + """\
surveys:
  - name: shop_nps
    journey: shop
    link_within: 3d
    questions: [{id: nps, type: nps, text: Would you recommend the shop?}]
"""
T0 = datetime(2024, 3, 4, 10)


def _attempt(who: str, at: datetime, moment: str, ok: bool) -> list[dict]:
    start, done = ("open", "ok" if ok else "failed") if moment == "pay" else ("track_open", "track_seen")
    return [{"timestamp": at.isoformat() + "+00:00", "event": start, "user_id": who, "channel": "web"},
            {"timestamp": (at + timedelta(seconds=30)).isoformat() + "+00:00", "event": done,
             "user_id": who, "channel": "web"}]


def test_journeys_lived_by_hand(make_ws):
    rows = []
    # a: pays (fails), pays (ok), tracks — one journey lived; 40 days later pays again: a second.
    rows += _attempt("a", T0, "pay", False) + _attempt("a", T0 + timedelta(hours=1), "pay", True)
    rows += _attempt("a", T0 + timedelta(days=2), "track", True)
    rows += _attempt("a", T0 + timedelta(days=40), "pay", True)
    # b: one failed payment.
    rows += _attempt("b", T0, "pay", False)
    ws = make_ws(SPEC, rows)
    r = ws.analysis("peak-end").to_dict()
    fail, ok = core.intensity("failed", 0, None), core.intensity("completed", 0, None)
    (shop,) = r["tables"]["journeys"]
    assert shop["episodes"] == 3 and r["meta"]["journeys_lived"] == 3
    # a's first: peak = the failure, end = the tracking; a's second and b's: one attempt each.
    peak_ends = [(fail + ok) / 2, ok, fail]
    means = [(fail + ok + ok) / 3, ok, fail]
    assert shop["peak_end"] == pytest.approx(np.mean(peak_ends))
    assert shop["mean"] == pytest.approx(np.mean(means))
    moments = {m["moment"]: m for m in r["tables"]["moments"]}
    # pay is in 3 journeys lived, the worst point of 2 (a's first, b's), the end of 2.
    assert moments["pay"]["episodes"] == 3
    assert moments["pay"]["neg_peak"] == pytest.approx(2 / 3)
    assert moments["pay"]["end"] == pytest.approx(2 / 3)
    assert moments["track"]["end"] == 1.0 and moments["track"]["neg_peak"] == 0.0
    # Shares of what is remembered: pay ½ + ½ (a's second) + 1 (b's) + ½ (a's first peak) = 2.5
    # of 3 journeys; track the ½ of a's first end.
    assert moments["pay"]["share"] == pytest.approx(2.5 / 3)
    assert moments["track"]["share"] == pytest.approx(0.5 / 3)
    assert r["tables"]["validation"] == []
    assert ws.analysis("peak-end", journey="shop").to_dict()["tables"]["journeys"][0]["episodes"] == 3


def test_a_journey_rating_is_validated_against_peak_end(make_ws):
    """300 persons each live one journey of three payments; the journey's NPS, asked a day
    after, follows its peak-end score (plus noise): the validation says so."""
    rng = np.random.default_rng(5)
    rows = []
    for i in range(300):
        who, at = f"p{i}", T0 + timedelta(minutes=7 * i)
        oks = rng.random(3) < 0.6
        for k, ok in enumerate(oks):
            rows += _attempt(who, at + timedelta(hours=k), "pay", bool(ok))
        outcomes = ["completed" if ok else "failed" for ok in oks]
        x = core.intensities(outcomes, np.zeros(3), np.full(3, np.nan), core.Weights())
        peak = x[np.argmax(np.abs(x) + (x < 0) * 1e-9)]
        pe = (peak + x[-1]) / 2
        nps = int(np.clip(np.round(5 + 5 * pe + rng.normal(0, 1.0)), 0, 10))
        rows.append({"timestamp": (at + timedelta(days=1)).isoformat() + "+00:00",
                     "event": "survey_response", "user_id": who, "channel": "email",
                     "event_id": f"r{i}", "properties": {"survey": "shop_nps", "display": f"d{i}",
                                                          "question": "nps", "answer": nps, "final": True}})
    ws = make_ws(RATED, rows)
    r = ws.analysis("peak-end").to_dict()
    checks = {c["feature"]: c for c in r["tables"]["validation"]}
    assert checks["peak_end"]["n"] == 300
    assert checks["peak_end"]["r"] > 0.6 and checks["peak_end"]["r_ci"][0] > 0.5
    assert checks["peak_end"]["r"] > checks["mean"]["r"]
    fit = r["tables"]["weighting"]
    assert {w["term"] for w in fit} >= {"peak", "end", "mean"}
    assert fit[0]["r2_cv"] > fit[0]["r2_cv_mean"]
    assert "predicts the rating better than the mean" in r["meta"]["validation"]["shop"]


def test_a_journey_survey_names_a_defined_journey_and_not_a_moment_too(tmp_path):
    from microjourney.errors import SpecError
    from microjourney.spec.load import parse_workspace

    for wrong, words in (("journey: nope", "journey 'nope', which is not defined"),
                         ("journey: shop\n    moment: pay", "of a moment or of a journey, not both")):
        text = RATED.replace("journey: shop", wrong)
        with pytest.raises(SpecError) as caught:
            parse_workspace(text, file="microjourney.yaml")
        assert words in str(caught.value)
    assert parse_workspace(RATED, file="microjourney.yaml").surveys[0].journey == "shop"
