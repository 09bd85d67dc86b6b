"""The offline HTML report: content, escaping, embedded chart specs, empty inputs."""

from __future__ import annotations

import html
import json
import math
import re
import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from microjourney.report import render_report, write_report
from microjourney.report.charts import script_json
from microjourney.report.html import inline_js

EVIL = "<script>alert(1)</script>"
EVIL_PROBLEM = "Users paste </script><img src=x onerror=alert(2)> & give up"
VENDOR = Path(__file__).resolve().parents[1] / "microjourney" / "report" / "vendor"


def _scorecard_row(moment, journey, attempts, completed, rate, ci, **extra):
    row = {
        "moment": moment, "journey": journey, "attempts": attempts, "persons": attempts - 5,
        "completed": completed, "failed": 10, "abandoned": 20, "escalated": 5,
        "in_progress": 0, "completion_rate": rate, "completion_ci": ci,
        "failure_rate": 10 / attempts if attempts else float("nan"),
        "abandonment_rate": 20 / attempts if attempts else float("nan"),
        "escalation_rate": 5 / attempts if attempts else float("nan"),
        "duration_median_s": 12.5, "duration_p90_s": 48.0, "sla_s": 30.0,
        "sla_met_rate": 0.81, "target_metric": "completion_rate", "target_value": 0.9,
    }
    return row | extra


def _inputs(**overrides):
    scorecard = pd.DataFrame([
        _scorecard_row("payment_gateway", "payment", 500, 460, 0.92, [0.893, 0.941]),
        _scorecard_row("password_reset", "account", 200, 150, 0.75, [0.686, 0.805],
                       duration_median_s=95.0, duration_p90_s=400.0, sla_s=120.0),
        _scorecard_row(EVIL, "account", 0, 0, float("nan"), [float("nan"), float("nan")],
                       persons=0, failed=0, abandoned=0, escalated=0,
                       duration_median_s=float("nan"), duration_p90_s=None,
                       sla_met_rate=None, target_metric=None, target_value=None),
    ])
    funnels = [
        {"moment": "payment_gateway", "order": "ordered", "per": "person", "window_s": 1800.0,
         "steps": [
             {"name": "Open gateway", "count": 500, "conversion_from_start": 1.0,
              "conversion_from_previous": 1.0, "median_time_from_previous_s": None},
             {"name": "Card entered", "count": 460, "conversion_from_start": 0.92,
              "conversion_from_previous": 0.92, "median_time_from_previous_s": 21.0},
             {"name": "Paid <fast>", "count": 437, "conversion_from_start": 0.874,
              "conversion_from_previous": 0.95, "median_time_from_previous_s": 3.25},
         ]},
        {"moment": "password_reset", "order": "ordered", "per": "person", "window_s": 3600.0,
         "steps": [
             {"name": "Request link", "count": 200, "conversion_from_start": 1.0,
              "conversion_from_previous": 1.0, "median_time_from_previous_s": None},
             {"name": "New password set", "count": 150, "conversion_from_start": 0.75,
              "conversion_from_previous": 0.75, "median_time_from_previous_s": 95.0},
         ]},
    ]
    start = date(2024, 5, 1)
    daily = {
        "payment_gateway": pd.DataFrame({
            "day": [start + timedelta(days=i) for i in range(3)],
            "attempts": [150, 170, 180], "completed": [140, 155, 165],
            "completion_rate": [140 / 150, 155 / 170, 165 / 180]}),
        "password_reset": pd.DataFrame({
            "day": [start, start + timedelta(days=1)], "attempts": [200, 0],
            "completed": [150, 0], "completion_rate": [0.75, float("nan")]}),
    }
    moments = [
        {"name": "payment_gateway", "journey": "payment", "title": "Payment gateway loads",
         "owner": "Ana Payments", "problem": "The gateway is slow on mobile.", "intent": "act",
         "sla_s": 30.0, "target": {"metric": "completion_rate", "value": 0.9}},
        {"name": "password_reset", "journey": "account", "title": "Password reset",
         "owner": "Ben Identity", "problem": "Reset e-mails arrive late.", "intent": "act",
         "sla_s": 120.0, "target": {"metric": "completion_rate", "value": 0.9}},
        {"name": EVIL, "journey": "account", "title": EVIL, "owner": "<b>Eve</b>",
         "problem": EVIL_PROBLEM, "intent": "learn", "sla_s": None, "target": None},
    ]
    summary = {"events": 12345, "persons": 678, "quarantined": 9,
               "period": ["2024-05-01T00:00:00+00:00", "2024-05-31T23:59:59+00:00"]}
    kwargs = dict(title="CX report — May", generated_at="2024-06-01T08:00:00+00:00",
                  scorecard=scorecard, funnels=funnels, daily=daily, moments=moments,
                  summary=summary)
    return kwargs | overrides


def _specs(page: str) -> dict[str, dict]:
    found = re.findall(r'<script type="application/json" id="([^"]+)">(.*?)</script>', page,
                       flags=re.DOTALL)
    return {key: json.loads(text) for key, text in found}


def _outside_scripts(page: str) -> str:
    return re.sub(r"<script\b[^>]*>.*?</script>", "", page, flags=re.DOTALL | re.IGNORECASE)


@pytest.fixture(scope="module")
def page() -> str:
    return render_report(**_inputs())


def test_header_and_sections(page):
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>CX report — May</title>" in page
    assert "2024-05-01 00:00 UTC → 2024-05-31 23:59 UTC" in page
    assert "12,345" in page and "678" in page
    assert "2024-06-01 08:00 UTC" in page
    for i, title in enumerate(["Payment gateway loads", "Password reset"], start=1):
        assert f'<section class="moment" id="m-{i}"' in page
        assert title in page
    assert page.count('<section class="moment"') == 3
    assert "The gateway is slow on mobile." in page and "Ana Payments" in page


def test_vendored_libraries_inlined_and_nothing_external(page):
    for name in ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js"):
        source = (VENDOR / name).read_text(encoding="utf-8")
        body = source.split("\n//# sourceMappingURL=")[0]
        assert inline_js(body) in page
    assert "sourceMappingURL" not in page
    assert not re.search(r"<script[^>]*\bsrc=", page, flags=re.IGNORECASE)
    assert not re.search(r"<link\b", page, flags=re.IGNORECASE)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, flags=re.IGNORECASE)
    assert "@import" not in page and "url(" not in _outside_scripts(page)
    # Only the vendored libraries mention URLs at all (in strings they never load).
    assert "http://" not in _outside_scripts(page) and "https://" not in _outside_scripts(page)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_inline_js_escapes_script_end():
    assert inline_js('x = "</script>"; y = "</SCRIPT"') == 'x = "<\\/script>"; y = "<\\/SCRIPT"'
    assert "<!--" not in inline_js("a = '<!--'")


def test_funnel_table_numbers(page):
    table = re.search(r'<table class="funnel">.*?</table>', page, flags=re.DOTALL).group(0)
    cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", table)
    assert cells[6:12] == ["1", "Open gateway", "500", "100.0%", "100.0%", "—"]
    assert cells[12:18] == ["2", "Card entered", "460", "92.0%", "92.0%", "21.0 s"]
    assert cells[18:24] == ["3", "Paid &lt;fast&gt;", "437", "87.4%", "95.0%", "3.2 s"]
    assert "ordered, per person, 30.0 min window" in page


def test_portfolio_target_verdicts_and_sla(page):
    portfolio = re.search(r'<table class="portfolio">.*?</table>', page, flags=re.DOTALL)
    rows = re.findall(r"<tr>(.*?)</tr>", portfolio.group(0), flags=re.DOTALL)[1:]
    assert [re.search(r'<a href="#m-(\d)">', r).group(1) for r in rows] == ["1", "2", "3"]
    pay, reset, evil = rows
    assert "92.0%" in pay and "95% CI 89.3%–94.1%" in pay
    assert 'class="badge good"' in pay and "on target" in pay
    assert 'class="badge bad"' in reset and "off target" in reset
    assert "over SLA" in reset and "over SLA" in pay  # p90 48 s > 30 s
    assert "2.0%" in pay and "4.0%" in pay and "1.0%" in pay  # failure/abandonment/escalation
    assert "no attempts yet" in evil


def test_user_text_is_escaped(page):
    assert "<script>alert" not in page
    assert "<img src=x" not in page and "<b>Eve</b>" not in page
    assert html.escape(EVIL) in page
    assert html.escape(EVIL_PROBLEM) in page
    assert "&lt;b&gt;Eve&lt;/b&gt;" in page
    # Every </script> in the page closes one of the page's own scripts.
    assert page.lower().count("</script") == page.lower().count("<script")


def test_chart_specs_parse_with_expected_values(page):
    specs = _specs(page)
    assert set(specs) == {"spec-1-funnel", "spec-1-daily", "spec-2-funnel", "spec-2-daily"}
    funnel = specs["spec-1-funnel"]
    values = funnel["data"]["values"]
    assert [v["step"] for v in values] == ["1. Open gateway", "2. Card entered", "3. Paid <fast>"]
    assert [v["count"] for v in values] == [500, 460, 437]
    assert values[1]["from_start"] == pytest.approx(0.92)
    assert values[1]["text"] == "460 · 92.0%"
    assert funnel["encoding"]["y"]["sort"] == [v["step"] for v in values]
    daily = specs["spec-1-daily"]
    assert [v["day"] for v in daily["data"]["values"]] == [
        "2024-05-01", "2024-05-02", "2024-05-03"]
    assert [v["attempts"] for v in daily["data"]["values"]] == [150, 170, 180]
    assert daily["layer"][-1]["data"]["values"][0]["target"] == 0.9
    assert daily["resolve"] == {"scale": {"y": "independent"}}
    assert "$schema" not in funnel  # nothing that looks like a URL to fetch


def test_nan_becomes_null_not_invalid_json(page):
    raw = dict(re.findall(r'<script type="application/json" id="([^"]+)">(.*?)</script>', page))
    assert "NaN" not in raw["spec-2-daily"]
    values = _specs(page)["spec-2-daily"]["data"]["values"]
    assert values[1]["completion_rate"] is None and values[1]["rate_text"] == "—"


def test_markup_in_names_is_inert_in_chart_specs():
    kwargs = _inputs()
    sc = kwargs["scorecard"].copy()
    sc.loc[2, ["attempts", "completed"]] = [10, 9]
    funnel = {"moment": EVIL, "order": "ordered", "per": "attempt", "window_s": None, "steps": [
        {"name": EVIL, "count": 10, "conversion_from_start": 1.0,
         "conversion_from_previous": 1.0, "median_time_from_previous_s": None},
        {"name": EVIL, "count": 9, "conversion_from_start": 0.9,
         "conversion_from_previous": 0.9, "median_time_from_previous_s": 1.0}]}
    daily = kwargs["daily"] | {EVIL: pd.DataFrame({
        "day": ["2024-05-01", "2024-05-04"], "attempts": [6, 4], "completed": [5, 4],
        "completion_rate": [5 / 6, 1.0]})}
    page = render_report(**(kwargs | {"scorecard": sc, "funnels": [funnel], "daily": daily}))
    assert "<script>alert" not in page
    raw = dict(re.findall(r'<script type="application/json" id="([^"]+)">(.*?)</script>', page))
    assert "<" not in raw["spec-3-funnel"] and "\\u003cscript\\u003e" in raw["spec-3-funnel"]
    specs = _specs(page)
    steps = [v["step"] for v in specs["spec-3-funnel"]["data"]["values"]]
    assert steps == [f"1. {EVIL}", f"2. {EVIL}"]  # same name, still two bars
    assert specs["spec-3-funnel"]["encoding"]["x"]["title"] == "Attempts"
    assert EVIL in specs["spec-3-daily"]["description"]
    days = specs["spec-3-daily"]["data"]["values"]  # the gap days are filled with zeros
    assert [(d["day"], d["attempts"], d["completion_rate"]) for d in days] == [
        ("2024-05-01", 6, 5 / 6), ("2024-05-02", 0, None), ("2024-05-03", 0, None),
        ("2024-05-04", 4, 1.0)]
    assert "spec-3-daily" in page and "target" not in json.dumps(specs["spec-3-daily"]["layer"])


def test_script_json_escapes_markup():
    text = script_json({"a": "</script><!-- & >", "n": float("nan"), "b": [math.inf]})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"a": "</script><!-- & >", "n": None, "b": [None]}


def test_zero_attempts_and_nan_rates():
    kwargs = _inputs()
    sc = kwargs["scorecard"].copy()
    sc.loc[0, ["completion_rate", "sla_met_rate", "duration_p90_s", "failure_rate"]] = float("nan")
    sc.at[0, "completion_ci"] = None
    sc["escalation_rate"] = pd.array([pd.NA, 0.025, 0], dtype="Float64")
    sc.at[1, "journey"] = float("nan")  # falls back to the moment definition's journey
    page = render_report(**(kwargs | {"scorecard": sc}))
    pay = re.search(r'<section class="moment" id="m-1".*?</section>', page, re.DOTALL).group(0)
    assert "no data" in pay and "95% CI" not in pay
    assert "failure rate — · abandonment rate 4.0% · escalation rate —" in pay
    reset = re.search(r'<section class="moment" id="m-2".*?</section>', page, re.DOTALL).group(0)
    assert '<p class="eyebrow">account · ' in reset
    outside = _outside_scripts(page)
    assert not re.search(r"\bnan\b|&lt;NA&gt;|<NA>", outside, flags=re.IGNORECASE)
    assert "NaN" not in "".join(re.findall(r'type="application/json"[^>]*>(.*?)</script>', page))
    evil = re.search(r'<section class="moment" id="m-3".*?</section>', page, re.DOTALL).group(0)
    assert "No attempts yet." in evil and "data-spec" not in evil


def test_moment_without_scorecard_row_funnel_or_daily():
    kwargs = _inputs(funnels=[], daily={})
    kwargs["moments"] = kwargs["moments"] + [{"name": "chat_wait", "journey": "service"}]
    page = render_report(**kwargs)
    assert 'id="m-4"' in page and "chat_wait" in page
    assert "No funnel computed" in page and "No daily figures yet." in page
    assert _specs(page) == {}


def test_empty_report(tmp_path):
    path = write_report(
        tmp_path / "empty.html", title="Nothing yet", generated_at="2024-06-01T08:00:00Z",
        scorecard=pd.DataFrame(), funnels=[], daily={}, moments=[],
        summary={"events": 0, "persons": 0, "quarantined": 0, "period": [None, None]})
    page = path.read_text(encoding="utf-8")
    assert "No moments are defined yet." in page and "no events yet" in page
    assert '<section class="moment"' not in page and "vegaEmbed" in page


def test_write_report_utf8(tmp_path):
    path = write_report(tmp_path / "r.html", **_inputs())
    assert path == tmp_path / "r.html"
    assert "CX report — May" in path.read_bytes().decode("utf-8")


CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists()
                                        else None)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_renders_in_headless_chromium(tmp_path):
    report = write_report(tmp_path / "report.html", **_inputs())
    shot = tmp_path / "shot.png"
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    subprocess.run([*base, f"--screenshot={shot}", "--window-size=1280,2000", report.as_uri()],
                   check=True, capture_output=True, timeout=120)
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 20_000
    # The vendored libraries draw every chart (as SVG) from the inlined specs.
    run = subprocess.run(
        [*base, "--virtual-time-budget=5000", "--enable-logging=stderr", "--v=0", "--dump-dom",
         report.as_uri()], check=True, capture_output=True, timeout=120, text=True)
    assert run.stdout.count('class="marks"') == 4
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    assert not [line for line in console if re.search(r"ERROR|WARN|Uncaught|Refused", line)]


def test_friction_table_numbers_and_escaping():
    from microjourney.report.section import friction_table

    html = friction_table({"friction_score": 12.5, "seconds_per_attempt": 8.0, "kinds": [
        {"kind": "rage_click<b>", "attempts": 40, "share_of_attempts": 0.1, "seconds_lost": 200.0,
         "seconds_per_affected": 5.0, "completion_with": 0.5, "completion_without": 0.8,
         "completion_difference": -0.3, "difference_ci": [-0.45, -0.14]}]})
    assert "friction score 12.5" in html and "-30.0 pts [-45.0, -14.0]" in html
    assert "rage click&lt;b&gt;" in html and "<b>" not in html
    assert "50.0%" in html and "80.0%" in html and "40 (10.0%)" in html
    assert friction_table({"kinds": []}) == ""
