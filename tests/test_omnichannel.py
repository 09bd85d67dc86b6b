"""Omnichannel consistency: one moment in web, app, chat (and a tiny voice channel) with
hand-countable outcomes, times and CSAT; every number checked by hand; Holm over every pair
of channels; the score's correction for chance; a seeded simulation of false alarms."""

from __future__ import annotations

import doctest
import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as student_t

import microjourney.analysis.omnichannel as omni
from microjourney.errors import QueryError

from .helpers import ev

SPEC = """\
journeys:
  - name: j
    moments:
      - name: pay
        start: {event: open}
        complete: {event: ok}
        fail: {event: failed}
        escalate: {event: contact, channel: [chat, voice, agent]}
        timeout: 10m
      - name: reset
        start: {event: reset_open}
        complete: {event: reset_ok}
        timeout: 10m
surveys:
  - name: pay_csat
    moment: pay
    questions:
      - {id: ease, type: csat, text: How easy was it?}
"""


def _clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class _Rows:
    """Attempts of distinct persons, two minutes apart from 08:00."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.n = 0

    def attempt(self, channel: str, end: str | None, took: int, *, end_channel: str | None = None,
                csat: int | None = None, moment: str = "pay", answer_channel: str | None = None) -> None:
        who, start = f"p{self.n}", 8 * 3600 + 120 * self.n
        self.n += 1
        opened = "open" if moment == "pay" else "reset_open"
        self.rows.append(ev(_clock(start), opened, who, channel=channel))
        if end is not None:
            self.rows.append(ev(_clock(start + took), end, who, channel=end_channel or channel))
        if csat is not None:  # linked to the person's latest attempt of pay (docs/surveys.md)
            self.rows.append(ev(_clock(start + took + 60), "survey_response", who,
                                channel=answer_channel or channel,
                                properties={"survey": "pay_csat", "display": f"d{who}",
                                            "question": "ease", "answer": csat, "final": True}))


def _events() -> list[dict]:
    r = _Rows()
    # web: 40 finished — 32 completed (16 in 40 s, 16 in 80 s), 8 failed; 10 CSAT answers, 8
    # of them 4–5. One more attempt still in progress at the end of the data (below).
    for i in range(32):
        r.attempt("web", "ok", 40 if i % 2 else 80, csat=(5 if i < 8 else None))
    for i in range(8):
        r.attempt("web", "failed", 10, csat=(2 if i < 2 else None))
    # app: 40 — 28 completed (14 in 20 s, 14 in 40 s), 10 failed, 2 escalated to a chat.
    for i in range(28):
        r.attempt("app", "ok", 20 if i % 2 else 40)
    for _ in range(10):
        r.attempt("app", "failed", 10)
    for _ in range(2):
        r.attempt("app", "contact", 15, end_channel="chat")
    # chat: 40 — 20 completed (10 in 200 s, 10 in 400 s), 14 failed, 6 escalated to a call;
    # 5 CSAT answers (one by e-mail: it counts for the attempt's channel), one of them 4–5.
    for i in range(20):
        r.attempt("chat", "ok", 200 if i % 2 else 400, csat=(4 if i == 0 else None))
    for i in range(14):
        r.attempt("chat", "failed", 30, csat=(1 if i < 4 else None),
                  answer_channel="email" if i == 0 else None)
    for _ in range(6):
        r.attempt("chat", "contact", 60, end_channel="voice")
    # voice: 5 finished, all failed: the lowest completion, but too small to judge.
    for _ in range(5):
        r.attempt("voice", "failed", 30)
    # reset: in web only.
    for _ in range(3):
        r.attempt("web", "reset_ok", 20, moment="reset")
    r.rows.append(ev("23:00:00", "open", "late", channel="web"))  # in progress at the end
    return r.rows


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from .helpers import workspace_of

    w = workspace_of(tmp_path_factory.mktemp("omni"), SPEC, _events())
    yield w
    w.close()


def _wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson's score interval, written out again (Wilson, 1927)."""
    z = NormalDist().inv_cdf(0.975)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_each_channel_by_hand(ws):
    r = ws.analysis("omnichannel")
    t = r.table("channels")
    assert list(zip(t.moment, t.channel, strict=True)) == [
        ("pay", "web"), ("pay", "app"), ("pay", "chat"), ("pay", "voice"), ("reset", "web")]
    c = t[t.moment == "pay"].set_index("channel")
    assert c.attempts.to_dict() == {"web": 41, "app": 40, "chat": 40, "voice": 5}
    assert c.finished.to_dict() == {"web": 40, "app": 40, "chat": 40, "voice": 5}
    assert c.completion.to_dict() == {"web": 0.8, "app": 0.7, "chat": 0.5, "voice": 0.0}
    for channel, k in (("web", 32), ("app", 28), ("chat", 20)):
        assert c.completion_ci[channel] == pytest.approx(_wilson(k, 40))
    # web 32/40: centre (0.8 + 1.9600²/80) ÷ (1 + 1.9600²/40) = 0.7737, half 0.1213.
    assert c.completion_ci["web"] == pytest.approx([0.6524, 0.8950], abs=5e-5)
    assert c.gap_to_best.to_dict() == pytest.approx({"web": 0.0, "app": -0.1, "chat": -0.3,
                                                     "voice": -0.8})
    assert c.escalation_rate.to_dict() == {"web": 0.0, "app": 0.05, "chat": 0.15, "voice": 0.0}
    assert c.judged.to_dict() == {"web": True, "app": True, "chat": True, "voice": False}
    # Time to complete: web 16 × 40 s and 16 × 80 s, mean and median 60 s, sd
    # √(32 × 20² ÷ 31) = 20.32 s, t(31) 95% interval 60 ± 2.0395 × 20.32 ÷ √32.
    assert c.duration_median_s[["web", "app", "chat"]].tolist() == [60.0, 30.0, 300.0]
    assert math.isnan(c.duration_median_s["voice"]) and c.duration_ci["voice"] is None
    assert c.duration_mean_s[["web", "app", "chat"]].tolist() == pytest.approx([60.0, 30.0, 300.0])
    half = student_t.ppf(0.975, 31) * math.sqrt(32 * 400 / 31) / math.sqrt(32)
    assert c.duration_ci["web"] == pytest.approx([60 - half, 60 + half])
    assert c.duration_ci["web"] == pytest.approx([52.674, 67.326], abs=1e-3)
    # CSAT: web 8 of 10 answers 4–5, chat 1 of 5 (the e-mailed answer is about a chat
    # attempt), app and voice none.
    assert c.csat_answers.fillna(0).to_dict() == {"web": 10, "app": 0, "chat": 5, "voice": 0}
    assert c.csat["web"] == 0.8 and c.csat["chat"] == 0.2
    assert math.isnan(c.csat["app"]) and c.csat_ci["app"] is None
    assert c.csat_ci["chat"] == pytest.approx(_wilson(1, 5))


def test_the_moment_by_hand(ws):
    r = ws.analysis("omnichannel")
    m = r.table("moments")
    assert m.moment.tolist() == ["pay"]  # reset is in one channel only
    pay = m.iloc[0]
    assert (pay.channels, pay.judged) == (4, 3)
    # The tiny voice channel (0 of 5) is not the worst: chat is, against web.
    assert (pay.worst_channel, pay.best_channel) == ("chat", "web")
    assert (pay.worst_completion, pay.best_completion, pay.gap) == (0.5, 0.8, pytest.approx(-0.3))
    assert (pay.worst_finished, pay.best_finished) == (40, 40)
    # Newcombe's hybrid score interval, by hand from the two Wilson intervals.
    (l1, u1), (l2, u2) = _wilson(20, 40), _wilson(32, 40)
    low = -0.3 - math.sqrt((0.5 - l1) ** 2 + (u2 - 0.8) ** 2)
    high = -0.3 + math.sqrt((u1 - 0.5) ** 2 + (0.8 - l2) ** 2)
    assert pay.gap_ci == pytest.approx([low, high])
    assert pay.gap_ci == pytest.approx([-0.4759, -0.0910], abs=5e-5)
    # Pooled z-tests of the three judged pairs; Holm over the three: chat–web 0.00491 × 3.
    z = 0.3 / math.sqrt(0.65 * 0.35 * (1 / 40 + 1 / 40))  # 52 of 80 completed together
    assert pay.p_value == pytest.approx(2 * NormalDist().cdf(-z))
    assert pay.p_value == pytest.approx(0.004911, abs=1e-6)
    assert pay.p_adjusted == pytest.approx(3 * pay.p_value)
    assert pay.beyond_chance and r.to_dict()["tables"]["moments"][0]["beyond_chance"] is True
    # Typical gap: pairs' squared gaps less each rate's variance p(1 − p) ÷ (n − 1).
    v = {p: p * (1 - p) / 39 for p in (0.8, 0.7, 0.5)}
    pairs = [(0.8, 0.7), (0.8, 0.5), (0.7, 0.5)]
    gap = math.sqrt(sum((a - b) ** 2 - v[a] - v[b] for a, b in pairs) / 3)
    assert pay.typical_gap == pytest.approx(gap) and gap == pytest.approx(0.18992, abs=1e-5)
    assert pay.consistency == pytest.approx(1 - gap)
    assert (pay.most_escalated, pay.most_escalated_rate) == ("chat", 0.15)
    assert r.meta["headline"] == ("pay: chat completes 30.0 points below web (50.0% against "
                                  "80.0%), beyond chance; consistency 0.81.")


def test_notices_for_small_channels_and_single_channel_moments(ws):
    r = ws.analysis("omnichannel")
    got = {(w.code, tuple(sorted(w.where.items()))) for w in r.warnings}
    assert got == {("channel-too-small", (("channel", "voice"), ("moment", "pay"))),
                   ("one-channel", (("channel", "web"), ("moment", "reset")))}
    small = next(w for w in r.warnings if w.code == "channel-too-small")
    assert small.message == "pay voice: 5 finished attempts (under 30); shown, not judged"
    # Judging channels of 5 or more: voice (0 of 5) is now the worst, against web.
    low = ws.analysis("omnichannel", min_finished=5).table("moments").iloc[0]
    assert (low.worst_channel, low.best_channel, low.judged) == ("voice", "web", 4)
    assert low.gap == pytest.approx(-0.8)
    # Judging only channels of 41 or more: none, so no score, no worst channel.
    none = ws.analysis("omnichannel", min_finished=41)
    row = none.table("moments").iloc[0]
    assert row.worst_channel is None and math.isnan(row.consistency) and row.beyond_chance is None
    assert "too-few-judged" in {w.code for w in none.warnings}
    assert none.meta["headline"] == "No moment has two channels with 41 or more finished attempts to compare."


def test_moment_and_filters(ws):
    one = ws.analysis("omnichannel", moment="reset")
    assert one.table("moments").empty and one.table("channels").channel.tolist() == ["web"]
    assert [w.code for w in one.warnings] == ["one-channel"]
    web = ws.analysis("omnichannel", channel="web")
    assert web.table("moments").empty
    assert {w.code for w in web.warnings} == {"one-channel"}
    early = ws.analysis("omnichannel", moment="pay", until="2024-01-01T09:00:00")
    # 08:00 to 09:00: the first 30 attempts, all web and completed.
    assert early.table("channels").finished.tolist() == [30]
    assert early.table("channels").completion.tolist() == [1.0]
    with pytest.raises(QueryError, match="no moment 'nope'"):
        ws.analysis("omnichannel", moment="nope")
    with pytest.raises(QueryError, match="--min-finished"):
        ws.analysis("omnichannel", min_finished=1)


def _stats(moment: str, counts: dict[str, tuple[int, int]]) -> pd.DataFrame:
    return pd.DataFrame([{"moment": moment, "channel": c, "attempts": n, "finished": n,
                          "completed": k, "escalated": 0} for c, (k, n) in counts.items()])


def test_holm_runs_over_every_pair_of_every_moment():
    stats = pd.concat([_stats("a", {"web": (90, 100), "app": (70, 100), "chat": (80, 100)}),
                       _stats("b", {"web": (50, 60), "app": (40, 60)})], ignore_index=True)
    m = omni.moments(omni.channels(stats)).set_index("moment")
    p = omni.stats.two_proportion_p
    family = [p(90, 100, 70, 100), p(90, 100, 80, 100), p(70, 100, 80, 100), p(50, 60, 40, 60)]
    adjusted = omni.stats.holm(family)
    assert m.p_adjusted["a"] == pytest.approx(adjusted[0])  # app against web, of four tests
    assert m.p_adjusted["b"] == pytest.approx(adjusted[3])
    assert (m.worst_channel["a"], m.best_channel["a"]) == ("app", "web")
    # Ties: the worse-placed of equal rates is the one with more finished attempts.
    tie = omni.moments(omni.channels(_stats("c", {"web": (40, 50), "app": (80, 100),
                                                  "chat": (45, 50)}))).iloc[0]
    assert (tie.worst_channel, tie.best_channel) == ("app", "chat")


def test_the_typical_gap_reads_about_zero_when_channels_differ_by_chance_only():
    """Seeded: three channels of one true completion rate. Uncorrected, chance alone reads
    channels of 2,000, 200 and 30 finished attempts about 6 points apart; corrected, the
    typical gap is 0 in most draws and well under half of that on average, while a real
    spread (80%, 70%, 50%: √((10² + 30² + 20²) ÷ 3) = 21.6 points) is found."""
    rng = np.random.default_rng(20261207)
    gaps, raw = [], []
    for _ in range(2000):
        rate = rng.uniform(0.6, 0.9)
        counts = [(int(rng.binomial(n, rate)), n) for n in (2000, 200, 30)]
        gaps.append(omni.typical_gap(counts))
        rates = [k / n for k, n in counts]
        raw.append(math.sqrt(np.mean([(a - b) ** 2 for j, a in enumerate(rates) for b in rates[j + 1:]])))
    assert np.mean(raw) > 0.04 and np.mean(np.array(gaps) == 0) > 0.5
    assert np.mean(gaps) < 0.5 * np.mean(raw)
    real = [omni.typical_gap([(int(rng.binomial(2000, p)), 2000) for p in (0.8, 0.7, 0.5)])
            for _ in range(200)]
    assert np.mean(real) == pytest.approx(math.sqrt((0.01 + 0.09 + 0.04) / 3), abs=0.005)


def test_holm_rarely_calls_a_gap_beyond_chance_when_there_is_none():
    """Seeded: 200 runs of 5 moments whose 3 channels share one true rate: the chance that a
    run calls any worst channel beyond chance stays at or under 5% (Monte Carlo error)."""
    rng = np.random.default_rng(20261208)
    sizes = {"web": 2000, "app": 200, "chat": 30}
    runs, flagged = 200, 0
    for _ in range(runs):
        frames = []
        for i in range(5):
            rate = rng.uniform(0.6, 0.9)
            frames.append(_stats(f"m{i}", {c: (int(rng.binomial(n, rate)), n) for c, n in sizes.items()}))
        m = omni.moments(omni.channels(pd.concat(frames, ignore_index=True)))
        flagged += bool(m.beyond_chance.any())
    assert flagged / runs <= 0.05 + 2.5 * (0.05 * 0.95 / runs) ** 0.5


def test_docstring_examples():
    result = doctest.testmod(omni)
    assert result.attempted > 0 and result.failed == 0
