"""``microjourney experiment analyze-table``: the engine's sufficient statistics of a unit-level
file, the analysis of them, and the command, on a hand-made table and on cookie_cats."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from microjourney.cli import app
from microjourney.engine.experiment_table import table_statistics
from microjourney.registry.experiment_table import analyze_table

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
COOKIE_CATS = REALDATA / "experiments" / "cookie_cats.csv.gz"

# 4 units per arm: converted 1 of 4 against 3 of 4; revenue means 2.5 and 4.5
ROWS = """unit,arm,converted,revenue,pre revenue
1,A,0,1,1
2,A,0,2,2
3,A,1,3,2
4,A,0,4,5
5,B,1,3,2
6,B,1,4,4
7,B,0,5,4
8,B,1,6,7
9,,1,100,100
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "microjourney", *args], capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.fixture
def table(tmp_path) -> Path:
    path = tmp_path / "units.csv"
    path.write_text(ROWS, encoding="utf-8")
    return path


def test_the_command_prints_json_of_each_metric(table):
    done = _run("experiment", "analyze-table", str(table), "--variant", "arm", "--metric", "converted",
                "--metric", "revenue", "--covariate", "pre revenue", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    # the unit without an arm is left out
    assert result["variants"] == ["A", "B"] and result["units"] == [4, 4]
    converted, revenue = result["metrics"]
    assert converted["kind"] == "proportion" and [a["mean"] for a in converted["arms"]] == [0.25, 0.75]
    assert revenue["kind"] == "mean" and [a["mean"] for a in revenue["arms"]] == [2.5, 4.5]
    c = revenue["comparisons"][0]
    # Welch by hand: both variances 5/3, se = √(2 × 5/3 / 4) = 0.91287, t = 2.19089, 6 degrees of freedom
    assert c["absolute"]["estimate"] == pytest.approx(2.0)
    assert c["absolute"]["se"] == pytest.approx(math.sqrt(5 / 6))
    assert c["absolute"]["p_value"] == pytest.approx(0.0710, abs=1e-4)
    assert c["relative"]["estimate"] == pytest.approx(0.8)
    assert 0.5 < c["bayesian"]["chance_to_win"] < 1
    assert c["sequential"]["ci"][0] < c["absolute"]["ci"][0]
    assert c["cuped"]["theta"] > 0.5 and c["cuped"]["variance_reduction"] > 0
    codes = {n["code"] for n in revenue["notices"]}
    assert "too-few-units" in codes
    assert result["srm"]["flagged"] is False


def test_text_output_and_the_control_option(table):
    runner = CliRunner()
    done = runner.invoke(app, ["experiment", "analyze-table", str(table), "--variant", "arm", "--metric",
                               "revenue", "--control", "B"], env={"COLUMNS": "160"})
    assert done.exit_code == 0, done.output
    assert "revenue (mean)" in done.output and "control" in done.output
    assert "-44.44%" in done.output  # (2.5 − 4.5) / 4.5 against B
    assert "sample-ratio check" in done.output and "too-few-units" in done.output


def test_columns_are_quoted_and_bad_ones_refused(tmp_path, table):
    odd = tmp_path / "odd.csv"
    odd.write_text('arm,"x""; DROP TABLE unit_rows; --"\nA,1\nA,2\nB,3\nB,5\n', encoding="utf-8")
    r = analyze_table(odd, "arm", ['x"; DROP TABLE unit_rows; --'])
    assert [a.mean for a in r.metrics[0].arms] == [1.5, 4.0]
    runner = CliRunner()
    for args, text in ((["--metric", "nope"], "no column 'nope'"), (["--metric", "arm"], "not numbers"),
                       (["--metric", "revenue", "--control", "C"], "no variant 'C'")):
        done = runner.invoke(app, ["experiment", "analyze-table", str(table), "--variant", "arm", *args])
        assert done.exit_code != 0 and text in str(done.exception)


def test_the_outlier_rule_flags_an_extreme_value_not_a_heavy_tail(tmp_path):
    rng = np.random.default_rng(3)
    values = np.round(rng.lognormal(2, 1.5, 5000), 2)  # heavy: max ≈ 6 × q99.9 beyond the median
    path = tmp_path / "tail.csv"
    lines = ["arm,value"] + [f"{'AB'[i % 2]},{v}" for i, v in enumerate(values)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tail = table_statistics(path, "arm", ["value"]).outliers.iloc[0]
    assert tail["above"] == 0 and tail["below"] == 0
    path.write_text("\n".join([*lines, "A,1000000"]) + "\n", encoding="utf-8")
    spike = table_statistics(path, "arm", ["value"]).outliers.iloc[0]
    assert spike["above"] == 1 and spike["max"] == 1_000_000 and spike["upper"] < 1_000_000


@pytest.mark.skipif(not COOKIE_CATS.exists(), reason=f"real data not here: {COOKIE_CATS}")
def test_cookie_cats_retention_by_gate():
    r = analyze_table(COOKIE_CATS, "version", ["retention_1", "retention_7", "sum_game_rounds"])
    assert r.variants == ("gate_30", "gate_40") and r.units == (44700, 45489)
    assert not r.srm.flagged and r.srm.p_value == pytest.approx(0.0086, abs=1e-4)
    one, seven, rounds = r.metrics
    assert [round(a.mean, 3) for a in seven.arms] == [0.190, 0.182]  # published: 19.0% vs 18.2%
    c7 = seven.comparisons[0]
    assert c7.absolute.estimate == pytest.approx(-0.0082, abs=1e-4) and c7.absolute.p_value < 0.01
    assert c7.bayesian.chance_to_win < 0.01
    assert one.comparisons[0].absolute.p_value > 0.05  # 1-day retention: no clear difference
    assert rounds.kind == "mean" and one.kind == "proportion"
    outliers = [n for n in r.notices if n.code == "outlier"]
    assert len(outliers) == 1 and outliers[0].message.startswith("sum_game_rounds: 1 extreme")
    assert "49,854" in outliers[0].message


@pytest.mark.skipif(not COOKIE_CATS.exists(), reason=f"real data not here: {COOKIE_CATS}")
def test_cookie_cats_on_the_command_line():
    done = _run("experiment", "analyze-table", str(COOKIE_CATS), "--variant", "version",
                "--metric", "retention_7", "--metric", "sum_game_rounds")
    assert done.returncode == 0, done.stderr
    assert "retention_7 (proportion)" in done.stdout and "19.02%" in done.stdout and "18.20%" in done.stdout
    assert "[outlier] sum_game_rounds" in done.stdout


def test_docstring_examples():
    import doctest

    import microjourney.vocabulary as module  # where the quoting of column names lives

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
