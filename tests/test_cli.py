"""The command line, run as a user runs it: a real process, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .helpers import PAYMENT_YAML, ev, result_table, write_events


def run(*args: str, cwd: Path, ok: bool = True,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "microjourney", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env=None if env is None else {**os.environ, **env})
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_init_ingest_and_every_analysis(tmp_path):
    run("init", "shop", cwd=tmp_path)
    ws = tmp_path / "shop"
    assert (ws / "microjourney.yaml").is_file() and (ws / ".microjourney" / "store.duckdb").is_file()
    again = run("init", "shop", cwd=tmp_path, ok=False)
    assert again.returncode == 2 and "already exists" in again.stderr
    (ws / "microjourney.yaml").write_text(PAYMENT_YAML)
    rows = [ev("10:00:00", "checkout_payment_opened", "a"), ev("10:00:02", "payment_gateway_loaded", "a"),
            ev("10:00:09", "card_details_entered", "a", properties={"valid": True}),
            ev("10:00:15", "payment_succeeded", "a"),
            ev("10:00:00", "checkout_payment_opened", "b"), ev("10:00:04", "payment_failed", "b"),
            {"timestamp": "nope", "event": "x", "user_id": "c", "channel": "web"}]
    events = write_events(tmp_path / "events.csv", rows)

    out = run("ingest", str(events), "--workspace", str(ws), "--json", cwd=tmp_path)
    assert json.loads(out.stdout) == [{"source": "events.csv", "format": "csv", "accepted": 6,
                                       "duplicates": 0, "rejected": 1, "withheld": 0}]
    text = run("ingest", str(events), "-w", str(ws), cwd=tmp_path).stdout
    assert "0 accepted, 6 duplicate, 0 rejected" in text

    card = result_table(run("scorecard", "--json", "-w", str(ws), cwd=tmp_path).stdout)
    assert card[0]["moment"] == "card_payment" and card[0]["completed"] == 1
    assert card[0]["completion_rate"] == 0.5 and len(card[0]["completion_ci"]) == 2
    assert "card_payment" in run("scorecard", "-w", str(ws), cwd=tmp_path).stdout

    funnel = json.loads(run("funnel", "card_payment", "--json", "-w", str(ws), cwd=tmp_path).stdout)
    assert funnel["meta"]["params"]["moment"] == "card_payment"
    assert funnel["meta"]["params"]["order"] == "ordered"
    steps = funnel["tables"]["steps"]
    assert [s["count"] for s in steps] == [2, 1, 1, 1]
    assert set(steps[1]) == {"step", "name", "count", "conversion_from_start", "within_s",
                             "conversion_from_previous", "median_time_from_previous_s"}
    assert steps[1]["median_time_from_previous_s"] == 2.0
    strict = result_table(run("funnel", "card_payment", "--order", "strict", "--per", "attempt",
                              "--window", "10s", "--json", "-w", str(ws), cwd=tmp_path).stdout)
    assert [s["count"] for s in strict] == [2, 1, 1, 0]  # the window closes at 10 s

    daily = result_table(run("daily", "card_payment", "--json", "-w", str(ws), cwd=tmp_path).stdout)
    assert daily[0]["period"] == "2024-01-01" and daily[0]["attempts"] == 2

    att = result_table(run("attempts", "card_payment", "--json", "-w", str(ws), cwd=tmp_path).stdout)
    assert sorted(a["outcome"] for a in att) == ["completed", "failed"]

    q = json.loads(run("quarantine", "--json", "-w", str(ws), cwd=tmp_path).stdout)
    assert q["meta"]["total"] == 1
    assert q["tables"]["rows"][0]["reason"] == "timestamp nope is not an ISO 8601 date-time"
    assert "ok: 1 journeys, 1 moments" in run("check", "-w", str(ws), cwd=tmp_path).stdout


def test_errors_are_one_clear_line(tmp_path):
    missing = run("scorecard", "-w", str(tmp_path / "none"), cwd=tmp_path, ok=False)
    assert missing.returncode == 2
    assert "error [workspace/missing]: no workspace at" in missing.stderr
    assert "Traceback" not in missing.stderr
    (tmp_path / "microjourney.yaml").write_text(PAYMENT_YAML.replace("sla: 90s", "sla: soon"))
    bad = run("check", cwd=tmp_path, ok=False)
    assert "microjourney.yaml:14:14: 'soon' is not a duration" in bad.stderr
    (tmp_path / "microjourney.yaml").write_text(PAYMENT_YAML)
    unknown = run("funnel", "nope", cwd=tmp_path, ok=False)
    assert "error [query/moment]: no moment 'nope'; moments: card_payment" in unknown.stderr
    badmap = run("ingest", "x.csv", "--map", "oops", cwd=tmp_path, ok=False)
    assert badmap.returncode == 2 and "FIELD=COLUMN" in badmap.stderr


def test_demo_builds_analyses_and_reports(tmp_path):
    """The demo as `make demo` builds it (its full size: the incident it plants needs its
    volume to be found), and its weekly review: the moment of the incident in red, with the
    friction that grew and the change that fixed it (docs/review.md)."""
    out = run("demo", str(tmp_path / "demo"), cwd=tmp_path).stdout
    report = tmp_path / "demo" / "report.html"
    assert report.is_file() and f"Open the report: {report.resolve()}" in out.replace("\n", "")
    assert "card_payment" in out and "moments in" in out
    flat = " ".join(out.split())  # the console wraps long lines
    assert "The dashboard: `microjourney serve -w" in flat and "http://127.0.0.1:8321/" in flat
    assert "Baselines frozen over 2026-09-01 to 2026-09-29" in flat
    html = report.read_text(encoding="utf-8")
    assert "card_payment" in html and "<script" in html and "http://" not in html.split("<script")[0]
    again = run("demo", str(tmp_path / "demo"), cwd=tmp_path, ok=False)
    assert again.returncode == 2 and "already holds a workspace" in again.stderr

    review = json.loads(run("review", "-w", str(tmp_path / "demo"), "--json", cwd=tmp_path).stdout)
    assert review["meta"]["week"] == "2026-W43"  # the data ends on Monday 26 October
    rows = {r["moment"]: r for r in review["tables"]["moments"]}
    three_ds = rows["three_ds_verification"]
    assert three_ds["rag"] == "red" and "regression alert" in three_ds["reasons"][0]
    assert three_ds["friction"] == "error_shown"  # the friction that grew in the incident
    assert three_ds["alert"].endswith("os = android")
    assert three_ds["change_title"].startswith("Fix: the bank app hands Android customers back")
    assert three_ds["baseline"] is not None  # the demo froze its first four weeks
    assert "three_ds_verification is red" in review["meta"]["headline"] or \
        review["meta"]["rag"]["red"] > 1
    fixed = [c for c in review["tables"]["changes"] if c["moment"] == "three_ds_verification"]
    assert fixed and fixed[0]["day"] == "2026-10-20" and fixed[0]["this_week"] is True
    # The payment help intervention, measured against its holdout: better, beyond chance.
    helped = json.loads(run("interventions", "-w", str(tmp_path / "demo"), "--json", cwd=tmp_path).stdout)
    done = next(r for r in helped["tables"]["rules"] if r["measure"] == "completed")
    assert done["rule"] == "payment_help" and done["verdict"] == "better" and done["held"] > 100
    worst = {w["moment"]: w for w in review["tables"]["wall"] if w["side"] == "worst"}
    # No survey asks about 3-D Secure: the wall quotes what customers asked about it.
    assert worst["three_ds_verification"]["quote_from"] == "intent"
    assert worst["three_ds_verification"]["quote"]


def test_store_in_use_is_a_clear_error(tmp_path):
    import microjourney as mj

    (tmp_path / "microjourney.yaml").write_text(PAYMENT_YAML)
    with mj.open(tmp_path):
        busy = run("scorecard", cwd=tmp_path, ok=False, env={"MICROJOURNEY_LOCK_WAIT": "0"})
    assert busy.returncode == 2 and "error [workspace/locked]: the store" in busy.stderr
    assert "Traceback" not in busy.stderr
