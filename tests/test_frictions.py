"""Friction detectors, worked by hand on small streams, and the friction summaries."""

from __future__ import annotations

import math
import random
from fractions import Fraction as F

import pandas as pd
import pytest

from microjourney.analysis.frictions import KIND_COLUMNS, impact, ranked
from microjourney.analysis.stats import difference_interval
from microjourney.errors import QueryError, SpecError
from microjourney.fmt import lower_is_better
from microjourney.spec import KINDS, parse_workspace

from .helpers import ev

PAY = """\
journeys:
  - name: payment
    moments:
      - name: pay
        start: {event: open}
        steps:
          - {event: loaded, sla: 3s}
          - {event: card, where: {valid: true}}
        complete: {event: ok}
        fail: {event: failed}
        timeout: 10m
"""

CALL = """\
journeys:
  - name: support
    moments:
      - name: call
        start: {event: call_started, channel: voice}
        steps:
          - {event: agent_answered}
        complete: {event: call_resolved}
        fail: {event: call_dropped}
        timeout: 1h
frictions:
  uncertainty: {events: [status_checked], within: 60s}
  repeated_auth: {events: [caller_identified]}
  redundant_input: {events: [caller_identified]}
"""


def found(ws, kind=None):
    df = ws.frictions(kind=kind).to_pandas()
    return sorted((r.kind, r.step, round(r.seconds_lost, 3)) for r in df.itertuples())


def click(t, x, y, who="a", **props):
    return ev(t, "click", who, properties={"x": x, "y": y, "selector": "#pay", **props})


def test_rage_and_dead_clicks_and_step_sla(make_ws):
    ws = make_ws(PAY, [
        ev("10:00:00", "open", "a"),
        # A burst of four clicks, each within 1 s and 30 px of the one before.
        click("10:00:01.000", 100, 100), click("10:00:01.400", 105, 102),
        click("10:00:01.900", 108, 100), click("10:00:02.500", 110, 100),
        ev("10:00:06", "loaded", "a"),  # 6 s after open; its sla is 3 s
        click("10:00:10.000", 100, 100), click("10:00:10.500", 300, 300),  # too far apart
        ev("10:00:20", "card", "a", properties={"valid": True}),
        ev("10:00:30", "ok", "a"),
    ])
    assert found(ws) == [
        # The last click of the burst and the far click wait 3.5 s and 9.5 s for anything.
        ("dead_click", 0, 3.5), ("dead_click", 1, 9.5),
        # From the burst's first click to the next event after it.
        ("rage_click", 0, 5.0),
        ("waiting", 1, 3.0),
    ]
    rage = ws.frictions(kind="rage_click").to_pandas().iloc[0]
    assert len(rage.evidence) == 4 and rage.version == 3 and rage.moment == "pay"


def test_rage_clicks_by_element_when_there_are_no_coordinates(make_ws):
    def tap(t, who, **props):
        return ev(t, "click", who, properties=props)

    spec = PAY + "frictions:\n  dead_click: {enabled: false}\n"
    ws = make_ws(spec, [
        # a: three taps on one element, 0.4 s apart, no coordinates: a rage click.
        ev("10:00:00", "open", "a"),
        tap("10:00:01.000", "a", selector="#pay"), tap("10:00:01.400", "a", selector="#pay"),
        tap("10:00:01.800", "a", selector="#pay"),
        ev("10:00:03", "ok", "a"),
        # b: three taps on different elements: clicking through a form, not rage.
        ev("10:00:00", "open", "b"),
        tap("10:00:01.000", "b", selector="#name"), tap("10:00:01.400", "b", selector="#card"),
        tap("10:00:01.800", "b", selector="#pay"),
        ev("10:00:03", "ok", "b"),
        # c: neither coordinates nor element: nothing says it is the same place.
        ev("10:00:00", "open", "c"),
        tap("10:00:01.000", "c"), tap("10:00:01.400", "c"), tap("10:00:01.800", "c"),
        ev("10:00:03", "ok", "c"),
        # d: the tracker calls it ``element``; and a fourth tap 2 s later is not in the burst.
        ev("10:00:00", "open", "d"),
        tap("10:00:01.000", "d", element="buy"), tap("10:00:01.500", "d", element="buy"),
        tap("10:00:02.000", "d", element="buy"), tap("10:00:04.000", "d", element="buy"),
        ev("10:00:05", "ok", "d"),
        # e: coordinates win when both clicks have them: one element, but 200 px apart.
        ev("10:00:00", "open", "e"),
        click("10:00:01.000", 0, 0, "e"), click("10:00:01.400", 200, 0, "e"),
        click("10:00:01.800", 0, 0, "e"),
        ev("10:00:03", "ok", "e"),
        # f: one click with coordinates among element-only ones: compared by element.
        ev("10:00:00", "open", "f"),
        tap("10:00:01.000", "f", selector="#pay"), click("10:00:01.400", 5, 5, "f"),
        tap("10:00:01.800", "f", selector="#pay"),
        ev("10:00:03", "ok", "f"),
    ])
    rage = ws.frictions(kind="rage_click").to_pandas()
    # From the first tap to the next event: a 2 s, d 3 s (to the fourth tap), f 2 s.
    assert sorted((r.person, len(r.evidence), r.seconds_lost) for r in rage.itertuples()) == [
        ("a", 3, 2.0), ("d", 3, 3.0), ("f", 3, 2.0)]


def test_rage_click_element_keys_are_a_setting(make_ws):
    spec = PAY + "frictions:\n  rage_click: {selector_keys: [data-id]}\n"
    taps = [ev(f"10:00:01.{k}00", "click", "a", properties={"data-id": "buy", "selector": f"#{k}"})
            for k in range(3)]
    ws = make_ws(spec, [ev("10:00:00", "open", "a"), *taps, ev("10:00:03", "ok", "a")])
    assert found(ws, "rage_click") == [("rage_click", 0, 2.0)]


def test_input_errors_detours_and_repeats(make_ws):
    b = "b"
    ws = make_ws(PAY, [
        ev("10:00:00", "open", b),
        ev("10:00:05", "loaded", b),                      # 5 s against a 3 s sla: 2 s lost
        ev("10:00:08", "logged_in", b),
        ev("10:00:12", "field_edited", b, properties={"field": "email", "edits": 1, "dwell_ms": 4000}),
        ev("10:00:25", "help_opened", b, properties={"topic": "cvc"}),   # 5 s until the next event
        ev("10:00:30", "field_edited", b,
           properties={"field": "card_number", "edits": 7, "dwell_ms": 40000}),  # 40 s - 10 s
        ev("10:00:31", "card", b, properties={"valid": False}),  # invalid: 10 s to the valid card
        ev("10:00:31.500", "error_shown", b, properties={"message": "Check the card number"}),
        ev("10:00:40", "field_edited", b,  # the same field at the same step: not redundant
           properties={"field": "card_number", "edits": 1, "dwell_ms": 3000}),
        ev("10:00:41", "card", b, properties={"valid": True}),
        ev("10:00:43", "logged_in", b),                   # signed in again: 2 s after the card
        ev("10:00:45", "field_edited", b, properties={"field": "email", "edits": 1, "dwell_ms": 5000}),
        ev("10:00:50", "page_viewed", b, properties={"page": "payment"}),
        ev("10:00:55", "page_viewed", b, properties={"page": "basket"}),
        ev("10:01:00", "page_viewed", b, properties={"page": "payment"}),  # back after 5 s
        ev("10:01:10", "loaded", b),                      # back to step 1, 29 s after the card
        ev("10:01:20", "ok", b),
    ])
    assert found(ws) == [
        ("cognitive_load", 1, 5.0), ("cognitive_load", 1, 30.0),
        ("error_shown", 1, 9.5), ("error_shown", 1, 10.0),
        ("redundant_input", 2, 5.0),
        ("repeated_attempt", 1, 65.0),
        ("repeated_auth", 2, 2.0),
        ("u_turn", 1, 29.0), ("u_turn", 2, 5.0),
        ("waiting", 1, 2.0),
    ]


def test_assisted_channels_transfer_hold_uncertainty(make_ws):
    c, d = "c", "d"
    v = {"channel": "voice"}
    ws = make_ws(CALL, [
        ev("10:00:00", "call_started", c, **v),
        ev("10:00:30", "caller_identified", c, **v),
        ev("10:01:00", "status_checked", c), ev("10:01:30", "status_checked", c),  # only two
        ev("10:03:00", "agent_answered", c, properties={"hold_seconds": 100}, **v),
        ev("10:05:00", "call_transferred", c, **v),
        ev("10:06:00", "agent_answered", c, properties={"hold_seconds": 20}, **v),
        ev("10:06:30", "caller_identified", c, **v),
        ev("10:07:00", "status_checked", c), ev("10:07:10", "status_checked", c),
        ev("10:07:20", "status_checked", c),
        ev("10:10:00", "call_resolved", c, **v),
        ev("11:00:00", "call_started", d, **v),
        ev("11:05:00", "call_dropped", d, **v),
    ])
    assert found(ws) == [
        ("redundant_input", 1, 30.0),      # security questions again after the transfer
        ("repeated_attempt", 1, 180.0),    # answered twice
        ("repeated_auth", 1, 30.0),
        ("transfer_hold", 0, 60.0),        # c answered after 3 min: 1 min over 2 min
        ("transfer_hold", 0, 180.0),       # d never answered: 5 min - 2 min
        ("transfer_hold", 1, 60.0),        # the transfer: 1 min until the next agent
        ("transfer_hold", 1, 70.0),        # 100 s hold - 30 s allowance
        ("uncertainty", 1, 20.0),
    ]


def test_settings_disable_and_tune(make_ws):
    spec = PAY + "frictions:\n  dead_click: {enabled: false}\n  rage_click: {clicks: 5}\n"
    ws = make_ws(spec, [
        ev("10:00:00", "open", "a"),
        click("10:00:01.000", 100, 100), click("10:00:01.400", 105, 102),
        click("10:00:01.900", 108, 100), click("10:00:02.500", 110, 100),
        ev("10:00:02.600", "loaded", "a"), ev("10:00:09", "ok", "a"),
    ])
    assert found(ws) == []
    kinds = [d["kind"] for d in ws.friction_detectors()]
    assert kinds == list(KINDS)
    dead = next(d for d in ws.friction_detectors() if d["kind"] == "dead_click")
    assert dead["enabled"] is False and dead["settings"]["within"] == 2.5


def test_unknown_settings_point_at_the_line():
    with pytest.raises(SpecError) as err:
        parse_workspace("frictions:\n  rage_click: {clickz: 3}\n  sulking: {}\n")
    text = str(err.value)
    assert "microjourney.yaml:2:16: unknown key 'clickz'" in text
    assert "unknown key 'sulking'" in text and "waiting" in text


def test_unknown_kind_is_a_query_error(make_ws):
    ws = make_ws(PAY, [ev("10:00:00", "open", "a")])
    with pytest.raises(QueryError, match="unknown friction kind 'sulk'"):
        ws.frictions(kind="sulk")


def test_summary_score_and_impact(make_ws):
    rows = []
    # Four attempts: two with an error (one completes), two without (both complete).
    for i, (error, outcome) in enumerate([(True, "ok"), (True, "failed"), (False, "ok"),
                                          (False, "ok")]):
        who = f"p{i}"
        rows += [ev("10:00:00", "open", who), ev("10:00:02", "loaded", who)]
        if error:
            rows.append(ev("10:00:04", "error_shown", who))
        rows.append(ev("10:00:10", outcome, who))
    ws = make_ws(PAY, rows)
    summary, kinds = (t.to_pandas() for t in ws.friction_summary("pay"))
    s = summary.iloc[0]
    # Errors cost 6 s each (4 s -> the outcome at 10 s); attempts last 10 s each.
    assert (s.attempts, s.affected, s.friction_seconds) == (4, 2, 12.0)
    assert s.seconds_per_attempt == 3.0 and s.friction_score == pytest.approx(30.0)
    # Only the kinds that occurred are listed.
    assert list(kinds.kind) == ["error_shown"]
    k = kinds.iloc[0]
    assert (k.frictions, k.attempts, k["rank"]) == (2, 2, 1)
    # Both errors came at step 1, which all four attempts reached.
    assert (k.completion_with, k.completion_without, k.compared) == (0.5, 1.0, 4)
    # Two attempts against two: too few for a difference.
    assert k.warning == "too-few-attempts" and math.isnan(k.completion_difference)
    assert k.difference_ci is None


def test_newcombe_difference_matches_published_values():
    # Newcombe (1998), Statistics in Medicine 17:873-890, table II, method 10.
    published = {(56, 70, 48, 80): (0.0524, 0.3339), (9, 10, 3, 10): (0.1705, 0.8090),
                 (5, 56, 0, 29): (-0.0381, 0.1926), (0, 10, 0, 20): (-0.1611, 0.2775),
                 (10, 10, 0, 20): (0.6791, 1.0)}
    for counts, expected in published.items():
        assert [round(x, 4) for x in difference_interval(*counts)] == list(expected)


def test_the_score_is_lower_is_better():
    # The CLI and the report colour a metric by this; the score counts time lost.
    assert lower_is_better("friction_score")


def test_engine_counts_per_step(make_ws):
    """The stored counts for error_shown, u_turn and repeated_attempt, by hand."""
    def steps(who, *names):
        return [ev(f"10:00:{i:02d}", name, who, properties={"valid": True} if name == "card" else {})
                for i, name in enumerate(names)]

    ws = make_ws(PAY, [
        *steps("a", "open", "loaded", "error_shown", "card", "ok"),   # error at step 1, completes
        *steps("b", "open", "loaded", "card", "error_shown", "failed"),  # error at step 2
        *steps("c", "open", "loaded", "card", "ok"),                  # no error, completes
        *steps("d", "open", "loaded", "failed"),                      # no error, furthest 1
        *steps("e", "open", "failed"),                                # no error, furthest 0
        *steps("f", "open", "error_shown"),                           # in progress: not compared
        *steps("g", "open", "error_shown", "loaded", "error_shown", "ok"),  # first at step 0
        # Back to step 1 from step 2: the U-turn (and the repeat) happened at step 2.
        *steps("h", "open", "loaded", "card", "loaded", "failed"),
    ])
    ws.friction_summary()
    t = ws.db.table("friction_kinds").to_pandas()
    cols = ["step", "frictions", "attempts", "exposed", "exposed_completed", "unexposed",
            "unexposed_completed", "never", "never_completed"]

    def table(kind):
        return [tuple(int(v) for v in r) for r in
                t[t.kind == kind].sort_values("step")[cols].itertuples(index=False)]

    assert table("error_shown") == [
        # f and g met it at step 0 (g twice); g finished and completed. Without it at step
        # 0: a, b, c, d, e, h (a and c completed); e never went further.
        (0, 3, 2, 1, 1, 6, 2, 1, 0),
        # a at step 1; b, c, d, h reached step 1 without it (c completed); d stopped there.
        (1, 1, 1, 1, 1, 4, 1, 1, 0),
        # b at step 2; c and h reached step 2 without it; h stopped there.
        (2, 1, 1, 1, 0, 2, 1, 1, 0),
        (3, 0, 0, 0, 0, 1, 1, 1, 1),                                  # c completed
    ]
    # a, b, c and g reached step 2 (g skipped the card: furthest is what counts) without a
    # U-turn; a, c and g completed; b stopped there.
    assert table("u_turn")[2] == (2, 1, 1, 1, 0, 4, 3, 1, 0)
    assert table("repeated_attempt")[2][:4] == (2, 1, 1, 1)
    assert "dead_click" not in set(t.kind)


#: Four hand-worked cells of finished attempts (``impact``'s input): 10 met the friction
#: at step 1 (4 completed), 20 at step 2 (15 completed); of those that never met it, 10
#: stopped at step 0, 20 at step 1, 10 at step 2 and 40 completed (step 3).
WORKED = [
    {"step": 0, "exposed": 0, "exposed_completed": 0, "unexposed": 110, "unexposed_completed": 59,
     "never": 10, "never_completed": 0},
    {"step": 1, "exposed": 10, "exposed_completed": 4, "unexposed": 90, "unexposed_completed": 55,
     "never": 20, "never_completed": 0},
    {"step": 2, "exposed": 20, "exposed_completed": 15, "unexposed": 50, "unexposed_completed": 40,
     "never": 10, "never_completed": 0},
    {"step": 3, "exposed": 0, "exposed_completed": 0, "unexposed": 40, "unexposed_completed": 40,
     "never": 40, "never_completed": 40},
]


def test_impact_worked_by_hand():
    i = impact(WORKED)
    # Weights 1/3 (step 1) and 2/3 (step 2). With: 19/30. Without: at step 1, 55 of 90
    # (the 20 that met it at step 2 had not yet); at step 2, 40 of 50:
    # 1/3 * 11/18 + 2/3 * 4/5 = 199/270. Difference: 171/270 - 199/270 = -28/270.
    assert i.completion_with == pytest.approx(19 / 30)
    assert i.completion_without == pytest.approx(199 / 270)
    assert i.difference == pytest.approx(-28 / 270)
    # Reached step 1 (the first compared): 90 without it and 10 with it there.
    assert (i.compared, i.warning) == (100, None)
    # Each cell's influence φ (impact's docstring), by hand with D = -28/270,
    # w1/n0_1 = 1/270 and w2/n0_2 = 1/75:
    phi = {  # (count, φ)
        "met at 1, completed": (4, F(133, 8100)),            # (1 - D - 11/18) / 30
        "met at 1, not": (6, F(-137, 8100)),                  # (0 - D - 11/18) / 30
        "met at 2, completed": (15, F(211, 24300)),           # (1 - D - 4/5) / 30 - (1 - 11/18) / 270
        "met at 2, not": (5, F(-509, 24300)),                 # (0 - D - 4/5) / 30 + 11/18 / 270
        "never, stopped at 0": (10, F(0)),
        "never, stopped at 1": (20, F(11, 4860)),             # 11/18 / 270
        "never, stopped at 2": (10, F(11, 4860) + F(4, 375)),  # ... + 4/5 / 75
        "never, completed": (40, -(F(7, 4860) + F(1, 375))),  # -(7/18 / 270 + 1/5 / 75)
    }
    assert sum(n * p for n, p in phi.values()) == 0  # an influence function sums to 0
    se = math.sqrt(sum(n * p * p for n, p in phi.values()))
    assert se == pytest.approx(0.0925667, abs=1e-7)
    assert i.interval == pytest.approx((-28 / 270 - 1.959964 * se, -28 / 270 + 1.959964 * se))


def test_impact_at_one_step_is_the_plain_difference():
    # Everything met at step 0, which every attempt reached: p1 = 12/40, p0 = 45/60, and the
    # variance is the familiar p1(1-p1)/n1 + p0(1-p0)/n0.
    i = impact([
        {"step": 0, "exposed": 40, "exposed_completed": 12, "unexposed": 60,
         "unexposed_completed": 45, "never": 15, "never_completed": 0},
        {"step": 1, "exposed": 0, "exposed_completed": 0, "unexposed": 45,
         "unexposed_completed": 45, "never": 45, "never_completed": 45},
    ])
    se = math.sqrt(0.3 * 0.7 / 40 + 0.75 * 0.25 / 60)
    assert (i.completion_with, i.completion_without, i.compared) == (0.3, 0.75, 100)
    assert i.difference == pytest.approx(-0.45)
    assert i.interval == pytest.approx((-0.45 - 1.959964 * se, -0.45 + 1.959964 * se))


def test_impact_minimums():
    one = [{"step": 1, "exposed": 29, "exposed_completed": 10, "unexposed": 100,
            "unexposed_completed": 50, "never": 100, "never_completed": 50}]
    assert impact(one).warning == "too-few-attempts" and impact(one).interval is None
    assert impact(one, min_exposed=29).warning is None
    # 30 met it, but the steps where they did had 20 attempts without it on average.
    few = [{"step": 1, "exposed": 30, "exposed_completed": 10, "unexposed": 20,
            "unexposed_completed": 15, "never": 20, "never_completed": 15}]
    assert impact(few).warning == "too-few-attempts"
    # Nobody without it reached the step: nothing to compare with.
    alone = [{"step": 2, "exposed": 50, "exposed_completed": 10, "unexposed": 0,
              "unexposed_completed": 0, "never": 0, "never_completed": 0}]
    i = impact(alone)
    assert (i.compared, i.warning) == (0, "too-few-attempts") and math.isnan(i.completion_with)


def test_impact_interval_covers_by_simulation():
    """Seeded Monte Carlo: the interval's width matches the spread of the difference
    (attempts sit in the comparison group of several steps, so this checks the variance
    where no textbook formula applies) and covers the true effect about 95% of the time."""
    rng = random.Random(11)

    def sample(n, harm):
        cells = {}
        for _ in range(n):
            k, met = 0, None
            while k < 4:
                if met is None and rng.random() < (0.1, 0.25, 0.25, 0.25)[k]:
                    met = k
                if rng.random() >= 0.8 - (harm if met is not None else 0.0):
                    break
                k += 1
            key = ("exposed", met) if met is not None else ("never", k)
            n_, c = cells.get(key, (0, 0))
            cells[key] = (n_ + 1, c + (k == 4))
        return as_steps(cells)

    for harm in (0.0, 0.2):
        ds, ses, covered = [], [], 0
        truth = None
        for _ in range(400):
            i = impact(sample(600, harm))
            ds.append(i.difference)
            ses.append((i.interval[1] - i.interval[0]) / (2 * 1.959964))
            truth = truth if truth is not None else i.difference
        mean = sum(ds) / len(ds)
        sd = math.sqrt(sum((d - mean) ** 2 for d in ds) / (len(ds) - 1))
        assert sum(ses) / len(ses) == pytest.approx(sd, rel=0.12)
        if harm == 0.0:
            assert abs(mean) < 0.01
            covered = sum(abs(d) <= 1.959964 * s for d, s in zip(ds, ses, strict=True))
            assert 0.92 <= covered / len(ds) <= 0.98
        else:
            assert mean < -0.15


def as_steps(cells):
    """``impact``'s rows from cells ``{("exposed", step) | ("never", step): (n, completed)}``."""
    out = []
    for k in range(5):
        n0 = sum(n for (g, s), (n, _) in cells.items() if (g == "never" and s >= k) or
                 (g == "exposed" and s > k))
        c0 = sum(c for (g, s), (_, c) in cells.items() if (g == "never" and s >= k) or
                 (g == "exposed" and s > k))
        e, ec = cells.get(("exposed", k), (0, 0))
        v, vc = cells.get(("never", k), (0, 0))
        out.append({"step": k, "exposed": e, "exposed_completed": ec, "unexposed": n0,
                    "unexposed_completed": c0, "never": v, "never_completed": vc})
    return out


def test_ranked_sums_steps_and_ranks_by_seconds():
    spec = parse_workspace(PAY)
    rows = [dict(r, moment="pay", kind="waiting", frictions=0, attempts=0, seconds_lost=0.0)
            for r in WORKED]
    rows[1].update(frictions=12, attempts=11, seconds_lost=40.0)
    rows[2].update(frictions=25, attempts=21, seconds_lost=10.0)
    rows.append({**WORKED[1], "moment": "pay", "kind": "error_shown", "frictions": 3,
                 "attempts": 3, "seconds_lost": 90.0, "exposed": 3, "exposed_completed": 0})
    moments = pd.DataFrame([{"moment": "pay", "attempts": 128, "finished": 110, "completed": 59,
                             "attempt_seconds": 1000.0, "affected": 30, "friction_seconds": 140.0}])
    df = ranked(pd.DataFrame(rows), moments, spec)
    assert list(df.columns) == KIND_COLUMNS
    df = df.set_index("kind")
    assert list(df.index) == ["error_shown", "waiting"]  # by seconds lost
    w = df.loc["waiting"]
    assert (w.frictions, w.attempts, w.seconds_lost, w.compared) == (37, 32, 50.0, 100)
    assert w.share_of_attempts == 0.25 and w.seconds_per_affected == 50.0 / 32
    assert w.completion_difference == pytest.approx(-28 / 270) and pd.isna(w.warning)
    assert df.loc["error_shown", "warning"] == "too-few-attempts"


SIM = """\
journeys:
  - name: sim
    moments:
      - name: apply
        start: {event: open}
        steps:
          - {event: s1, sla: 3s}
          - {event: s2, sla: 3s}
          - {event: s3, sla: 3s}
        complete: {event: done}
        fail: {event: gave_up}
        timeout: 10m
"""


def simulated(n, seed):
    """Attempts through three steps; each step is reached slowly (10 s against a 3 s sla)
    a quarter of the time, with no effect on what follows; an error at step 1 (a third of
    the attempts that get there) cuts the chance of going on from 0.8 to 0.45."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        who, t = f"p{i:04d}", 0.0

        def at(event, when, who=who):
            rows.append(ev(f"10:{int(when // 60):02d}:{when % 60:06.3f}", event, who))

        at("open", t)
        erred = False
        for k in (1, 2, 3, 4):
            go_on = 0.45 if erred and k == 2 else 0.8
            if rng.random() >= go_on:
                at("gave_up", t + 1)
                break
            t += 10.0 if k < 4 and rng.random() < 0.25 else 1.0
            at(("s1", "s2", "s3", "done")[k - 1], t)
            if k == 1 and rng.random() < 1 / 3:
                erred = True
                at("error_shown", t + 0.5)
    return rows


def test_like_with_like_by_simulation(make_ws):
    """A friction met more often by attempts that get further (waiting: every step can be
    slow) but harmless shows no difference; the old comparison (all attempts with it
    against those without it that reached its earliest step) showed a gain. A harmful
    one (the error) shows a loss near the true one."""
    ws = make_ws(SIM, simulated(1500, seed=3))
    kinds = ws.friction_summary("apply")[1].to_pandas().set_index("kind")
    assert set(kinds.index) == {"waiting", "error_shown"}
    wait, err = kinds.loc["waiting"], kinds.loc["error_shown"]
    lo, hi = wait.difference_ci
    assert abs(wait.completion_difference) < 0.04 and lo < 0 < hi and pd.isna(wait.warning)

    # The old comparison, from the rows: with waiting, against without it among the
    # finished attempts that reached step 1 (its earliest step).
    att = ws.attempts("apply").to_pandas()
    att = att[att.outcome != "in_progress"]
    waited = set(ws.frictions("apply", kind="waiting").to_pandas().attempt_id)
    met = att.attempt_id.isin(waited)
    done = att.outcome == "completed"
    old = done[met].mean() - done[~met & (att.furthest_step >= 1)].mean()
    assert old > 0.08

    # True effect of the error: 0.45 * 0.8 * 0.8 = 0.288 against 0.8 ** 3 = 0.512.
    assert err.completion_difference == pytest.approx(0.288 - 0.512, abs=0.06)
    assert err.difference_ci[1] < 0 and pd.isna(err.warning)


def test_two_factors_are_not_a_repeated_sign_in(make_ws):
    ws = make_ws(PAY, [
        ev("10:00:00", "open", "a"), ev("10:00:01", "logged_in", "a"),
        ev("10:00:02", "otp_verified", "a"), ev("10:00:03", "loaded", "a"), ev("10:00:04", "ok", "a"),
    ])
    assert found(ws, "repeated_auth") == []


NESTED = PAY + """\
  - name: onboarding
    moments:
      - name: open_account
        start: {event: signup_started}
        complete: {event: account_ready}
        timeout: 7d
"""


def burst(t0, who, ids):
    """Four clicks 0.3 s apart on one spot, listed latest first (so ingest order runs
    against time order)."""
    rows = [ev(f"{t0}.{300 * k:03d}", "click", who, event_id=i,
               properties={"x": 100 + k, "y": 100, "selector": "#pay"}) for k, i in enumerate(ids)]
    return rows[::-1]


def test_events_go_to_the_innermost_attempt_and_evidence_keeps_time_order(make_ws):
    ws = make_ws(NESTED, [
        ev("09:00:00", "signup_started", "a"),
        ev("10:00:00", "open", "a"),
        *burst("10:00:01", "a", ["z1", "y2", "x3", "w4"]),  # inside both spans: the payment's
        ev("10:00:06", "loaded", "a"),
        ev("10:00:20", "card", "a", properties={"valid": True}),
        ev("10:00:30", "ok", "a"),
        *burst("10:05:00", "a", ["q1", "p2", "o3", "n4"]),  # after the payment: the account's
        ev("11:00:00", "account_ready", "a"),
        ev("10:00:00", "open", "b"),
        *burst("10:00:02", "b", ["b1", "b2", "b3", "b4"]),  # one span alone
        ev("10:00:09", "ok", "b"),
    ])
    rage = ws.frictions(kind="rage_click").to_pandas().sort_values(["person", "at_ms"])
    assert [(r.person, r.moment, list(r.evidence)) for r in rage.itertuples()] == [
        ("a", "pay", ["z1", "y2", "x3", "w4"]),
        ("a", "open_account", ["q1", "p2", "o3", "n4"]),
        ("b", "pay", ["b1", "b2", "b3", "b4"]),
    ]
    # The stored summary counts them per moment.
    _, kinds = ws.friction_summary("open_account")
    k = kinds.to_pandas().set_index("kind")
    assert k.loc["rage_click", "frictions"] == 1 and k.loc["rage_click", "attempts"] == 1
