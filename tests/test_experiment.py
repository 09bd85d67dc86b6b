"""An experiment declared in the workspace, read from exposures and the attempts after them
(docs/experiments.md): persons are the units, attempts before exposure and persons who saw
two variants are left out; hand-worked lift, interval and p-value; the sample-ratio check."""

from __future__ import annotations

import math

import pytest
from scipy.stats import t as student

from microjourney.errors import QueryError, SpecError
from microjourney.fmt import cell
from microjourney.registry import get
from microjourney.spec.load import parse_workspace

from .helpers import PAYMENT_YAML, ev, workspace_of

YAML = PAYMENT_YAML + """\
experiments:
  - name: short_form
    moment: card_payment
    variants: [{name: control, weight: 50}, {name: short, weight: 50}]
    metric: completion_rate
    secondary: [duration]
    guardrails: [failure_rate]
"""


def exposure(t: str, who: str, variant: str) -> dict:
    return ev(t, "experiment_exposure", who,
              properties={"experiment": "short_form", "variant": variant})


def attempt(hour: int, who: str, ok: bool, seconds: int = 30) -> list[dict]:
    end = "payment_succeeded" if ok else "payment_failed"
    return [ev(f"{hour:02d}:00:00", "checkout_payment_opened", who),
            ev(f"{hour:02d}:00:{seconds:02d}", end, who)]


def events() -> list[dict]:
    rows = []
    # control: c1 c2 complete, c3 c4 fail; short: s1 s2 s3 complete, s4 fails.
    for who, ok in (("c1", True), ("c2", True), ("c3", False), ("c4", False)):
        rows += [exposure("09:00:00", who, "control"), *attempt(10, who, ok, 40)]
    for who, ok in (("s1", True), ("s2", True), ("s3", True), ("s4", False)):
        rows += [exposure("09:00:00", who, "short"), *attempt(10, who, ok, 20)]
    # s1 failed once before being exposed: not counted.
    rows += attempt(8, "s1", False)
    # m1 saw both variants: left out.
    rows += [exposure("09:00:00", "m1", "control"), exposure("09:30:00", "m1", "short"),
             *attempt(10, "m1", True)]
    return rows


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    w = workspace_of(tmp_path_factory.mktemp("experiment"), YAML, events())
    yield w
    w.close()


def test_lift_interval_and_p_value_by_hand(ws):
    r = ws.analysis("experiment", experiment="short_form")
    t = r.table("metrics").set_index(["metric", "variant"])
    control, short = t.loc[("completion_rate", "control")], t.loc[("completion_rate", "short")]
    assert (control.units, short.units) == (4, 4)
    assert (control.rate, short.rate) == (0.5, 0.75)
    # Per person one attempt: sample variances 1/3 (control) and 1/4 (short). The delta
    # method's variance of the lift: 0.25 / (4 × 0.5²) + 0.75² × (1/3) / (4 × 0.5⁴) = 1.0;
    # Welch's degrees of freedom (1/12 + 1/16)² / ((1/12)²/3 + (1/16)²/3) = 5.88, as gbstats.
    assert short.lift == pytest.approx(0.5)
    df = (1 / 12 + 1 / 16) ** 2 / ((1 / 12) ** 2 / 3 + (1 / 16) ** 2 / 3)
    half = student.ppf(0.975, df) * 1.0
    low, high = short.lift_ci
    assert (low, high) == (pytest.approx(0.5 - half), pytest.approx(0.5 + half))
    assert short.p == pytest.approx(2 * student.sf(0.5, df), abs=1e-6)
    assert short.verdict == "inconclusive" and control.verdict == "control"
    # Time to complete over completed attempts: 40 s against 20 s.
    assert t.loc[("duration", "control")].seconds == 40 and t.loc[("duration", "short")].seconds == 20
    assert "score" not in t.columns  # the mean answer's column: only with a ces metric
    assert t.loc[("failure_rate", "short")]["role"] == "guardrail"
    assert 0 < short.p_holm <= 1 and short.p_holm >= short.p
    # Two p-values across the metrics (duration has no spread: no test). Holm: the smaller
    # × 2, the larger at least that. Benjamini–Hochberg: the larger as it is, the smaller
    # min(2 × itself, the larger).
    fail = t.loc[("failure_rate", "short")]
    low, high = sorted([short.p, fail.p])
    assert (short.p_holm, fail.p_holm) == (pytest.approx(2 * low), pytest.approx(2 * low))
    assert (short.p_bh, fail.p_bh) == (pytest.approx(min(2 * low, high)),) * 2
    assert math.isnan(t.loc[("duration", "short")].p_bh)
    # The always-valid interval reads as the other intervals do, around the lift.
    assert short.always_valid_lift == short.lift and short.always_valid[0] < low_ci_of(short)
    column = next(c for c in get("experiment").views[0].columns if c.name == "always_valid_lift")
    text = cell(column, short.to_dict())
    assert text.startswith("50.0% [-") and text.endswith("%]"), text
    # No persons had attempts in the 28 days before exposure (s1's failure at 08:00 is one):
    # CUPED is not applied, and says so.
    assert math.isnan(short.cuped_lift) and r.meta["cuped"] == []
    skipped = next(w for w in r.warnings if w.code == "cuped-not-applied")
    assert "control 0, short 1" in skipped.message
    codes = {w.code for w in r.warnings}
    assert "mixed-exposure" in codes and "srm" not in codes
    exposure_rows = r.table("exposure").set_index("variant")
    assert list(exposure_rows.exposed) == [4, 4] and list(exposure_rows.planned) == [0.5, 0.5]


def low_ci_of(row) -> float:
    return row.lift_ci[0]


def test_assignment_is_deterministic_and_follows_the_weights():
    spec = parse_workspace(YAML.replace("weight: 50}, {name: short, weight: 50}",
                                        "weight: 1}, {name: short, weight: 3}"))
    e = spec.experiments[0]
    got = [e.variant_of(f"p{i}") for i in range(8000)]
    assert got == [e.variant_of(f"p{i}") for i in range(8000)]
    share = got.count("short") / len(got)
    assert abs(share - 0.75) < 3 * math.sqrt(0.75 * 0.25 / len(got))


def test_declarations_and_names_are_checked(ws):
    with pytest.raises(SpecError, match="experiment 'short_form' is of moment 'nope'"):
        parse_workspace(YAML.replace("moment: card_payment\n    variants", "moment: nope\n    variants"))
    with pytest.raises(SpecError, match="a variant is named twice"):
        parse_workspace(YAML.replace("name: short, weight", "name: control, weight"))
    with pytest.raises(QueryError, match="no experiment 'nope'; experiments: short_form"):
        ws.analysis("experiment", experiment="nope")
