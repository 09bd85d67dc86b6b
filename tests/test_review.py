"""The owner's weekly review on a planted workspace (docs/review.md): the week against last
week, the frozen baseline and the target, each figure checked against statsmodels and the
rows themselves; the RAG rules; the frictions that grew, the alerts of the week, the changes
shipped, the verbatims and the wall; one owner; the Markdown and HTML documents; the CLI."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

import microjourney as mj
from microjourney.errors import QueryError
from microjourney.report.review import html, markdown

from . import planted
from .helpers import PAYMENT_YAML, ev, workspace_of
from .live_server import run_cli

SPEC = """\
name: review
journeys:
  - name: shop
    moments:
      - {name: pay, owner: payments, target: {metric: completion_rate, value: 0.9},
         start: {event: open}, complete: {event: ok}, fail: {event: failed},
         steps: [{event: card}], timeout: 10m}
      - {name: reset, owner: identity, target: {metric: completion_rate, value: 0.8},
         start: {event: reset_start}, complete: {event: reset_done}, fail: {event: reset_failed},
         timeout: 10m}
      - {name: login, owner: identity, target: {metric: failure_rate, value: 0.01, by: 2024-01-31},
         start: {event: login_start}, complete: {event: login_ok}, fail: {event: login_failed},
         timeout: 10m}
      - {name: search, owner: search-team, target: {metric: duration_median_s, value: 20},
         start: {event: search}, complete: {event: found}, timeout: 10m}
      - {name: browse, start: {event: browse}, complete: {event: browsed}, timeout: 10m}
alerts:
  segments: [os]
surveys:
  - name: pay_csat
    moment: pay
    trigger: {outcomes: [completed, failed]}
    questions:
      - {id: ease, type: csat, text: How easy was paying?}
      - {id: why, type: text, text: Why?, required: false}
"""
DAYS = 42  # 2024-01-01 (a Monday) to 2024-02-11 (a Sunday): ISO weeks 1 to 6
WEEK6 = 35  # the first day of 2024-W06
#: Per moment: (start, done, failed) events and each day's share failed.
OTHERS = {"reset": ("reset_start", "reset_done", "reset_failed", 20, 0.05),
          "login": ("login_start", "login_ok", "login_failed", 30, 0.03),
          "browse": ("browse", "browsed", None, 10, 0.0)}
TEXTS = [  # (day, text, score): four in the review's week, one the week before
    (WEEK6 + 1, "awful, the payment failed again and again", 1),
    (WEEK6 + 2, "terrible, my card was declined | no reason", 1),
    (WEEK6 + 3, "great, easy and quick, thank you", 5),
    (WEEK6 + 4, "<script>alert(1)</script> the page froze", 2),
    (WEEK6 - 2, "horrible, the worst payment ever", 1),
]


def _day(d: int, hour: int = 9) -> datetime:
    return datetime(2024, 1, 1, hour) + timedelta(days=d)


def rows() -> list[dict]:
    """Pay as tests/planted.py makes it, failing 8% of the time and 20% from week 6, when a
    third of the attempts also first see an error (5% before); reset, login and browse
    steady; survey answers with texts."""
    out = planted.rows(DAYS, seed=11, per_day=60,
                       fail=lambda d, os_: 0.20 if d >= WEEK6 else 0.08,
                       slow=lambda d, os_: 0.30 if d >= WEEK6 else 0.05)
    rng = np.random.default_rng(3)
    for moment, (start, done, failed, per_day, share) in OTHERS.items():
        for d in range(DAYS):
            for i in range(per_day):
                t = _day(d) + timedelta(minutes=5 * i)
                who = f"{moment}-{d}-{i}"
                out.append(_at(t, start, who))
                end = failed if failed and rng.random() < share else done
                out.append(_at(t + timedelta(seconds=30), end, who))
    for d in range(DAYS):  # a search takes 10 s, then 40 s in week 6
        for i in range(5):
            t = _day(d, 10) + timedelta(minutes=7 * i)
            out.append(_at(t, "search", f"search-{d}-{i}"))
            out.append(_at(t + timedelta(seconds=40 if d >= WEEK6 else 10), "found", f"search-{d}-{i}"))
    for n, (d, text, score) in enumerate(TEXTS):
        t = _day(d, 21)
        for q, value in (("ease", score), ("why", text)):
            out.append(_at(t, "survey_response", f"voice{n}", properties={
                "survey": "pay_csat", "display": f"d{n}", "question": q, "answer": value,
                "final": q == "why"}))
    return out


def _at(t: datetime, event: str, who: str, **extra: object) -> dict:
    return {"timestamp": t.isoformat() + "+00:00", "event": event, "user_id": who,
            "channel": "app", **extra}


def counted(all_rows: list[dict], moment: str, first: int, days: int = 7) -> tuple[int, int, int]:
    """(completed, failed, finished) of ``moment``'s attempts starting on days ``first`` to
    ``first + days − 1``, from the rows themselves: each attempt's events follow each other
    in the rows, its start first and its end last."""
    start, done, failed = ("open", "ok", "failed") if moment == "pay" else OTHERS[moment][:3]
    lo, hi = _day(first, 0), _day(first + days, 0)
    ok = bad = 0
    began = None
    for r in all_rows:
        if r["event"] == start:
            began = datetime.fromisoformat(r["timestamp"][:19])
        elif r["event"] in (done, failed) and began is not None:
            if lo <= began < hi:
                ok += r["event"] == done
                bad += r["event"] == failed
            began = None
    return ok, bad, ok + bad


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("review")
    data = rows()
    with workspace_of(root, SPEC, data) as ws:
        ws.freeze_baseline("pay", since="2024-01-01", until="2024-01-29")
        for day, title in (("2024-01-10", "Too early to be listed"), ("2024-01-22", "New card form"),
                           ("2024-02-07", "Retry button on the error")):
            ws.add_change("pay", day, "structure", title)
        # The reviews the tests read: the default week, earlier weeks, one owner's.
        reviews = {week: ws.analysis("review", week=week) for week in ("2024-W04", "2024-W05")}
        reviews[None] = ws.analysis("review")
        reviews["identity"] = ws.analysis("review", owner="identity")
    return root, data, reviews


@pytest.fixture(scope="module")
def review(made):
    return made[2][None]


@pytest.fixture()
def ws(made):
    with mj.open(made[0]) as w:
        yield w


def by_moment(result):
    return {r["moment"]: r for r in result.to_dict()["tables"]["moments"]}


def test_the_default_week_is_the_last_one_the_data_covers_to_its_sunday(review):
    assert review.meta["week"] == "2024-W06"
    assert (review.meta["from"], review.meta["to"]) == ("2024-02-05", "2024-02-11")


def test_each_figure_against_statsmodels_and_the_rows(made, review):
    _, data, _ = made
    rows_ = by_moment(review)
    tested = ["reset", "login", "pay", "browse"]  # the moments' table order does not matter
    ps = []
    for m in tested:
        r = rows_[m]
        metric = r["metric"]
        k_now, f_now, n_now = counted(data, m, WEEK6)
        k_before, f_before, n_before = counted(data, m, WEEK6 - 7)
        if metric == "failure_rate":
            k_now, k_before = f_now, f_before
        assert r["finished"] == n_now
        assert r["this_week"] == pytest.approx(k_now / n_now)
        assert r["last_week"] == pytest.approx(k_before / n_before)
        assert r["change"] == pytest.approx(k_now / n_now - k_before / n_before)
        if k_now + k_before in (0, n_now + n_before):  # all or none: nothing can differ
            assert r["change_ci"] is None or r["change"] == 0
            ps.append(1.0)
            continue
        low, high = confint_proportions_2indep(k_now, n_now, k_before, n_before, method="newcomb")
        assert r["change_ci"] == pytest.approx([low, high], abs=1e-9)
        _, p = proportions_ztest([k_now, k_before], [n_now, n_before])
        ps.append(p)
    known = [i for i, p in enumerate(ps) if p == p]
    holm = multipletests([ps[i] for i in known], method="holm")[1]
    for i, q in zip(known, holm, strict=True):
        assert rows_[tested[i]]["p_adjusted"] == pytest.approx(q, rel=1e-9)
    # Pay against its frozen baseline (weeks 1 to 4).
    k_base, _, n_base = counted(data, "pay", 0, 28)
    pay = rows_["pay"]
    assert pay["baseline"] == pytest.approx(k_base / n_base)
    k_now, _, n_now = counted(data, "pay", WEEK6)
    low, high = confint_proportions_2indep(k_now, n_now, k_base, n_base, method="newcomb")
    assert pay["vs_baseline_ci"] == pytest.approx([low, high], abs=1e-9)
    assert pay["baseline_moved"] == "worse"
    assert pay["target"] == 0.9 and rows_["login"]["target_by"] == "2024-01-31"


def test_rag_says_why(made, review):
    rows_ = by_moment(review)
    pay, reset, login, browse = (rows_[m] for m in ("pay", "reset", "login", "browse"))
    assert pay["rag"] == "red" and pay["moved"] == "worse"
    assert "worse than last week beyond chance" in pay["reasons"]
    assert "worse than its baseline beyond chance" in pay["reasons"]
    assert reset["rag"] == "green" and reset["reasons"] == ["on target"] and reset["moved"] is None
    assert login["rag"] == "red" and login["reasons"] == ["off target past its target day"]
    assert browse["rag"] == "grey" and browse["owner"] == "(no owner)"
    # Grouped by owner, the red first within each; no owner last.
    order = [r["moment"] for r in review.to_dict()["tables"]["moments"]]
    assert order == ["login", "reset", "pay", "search", "browse"]
    assert review.meta["rag"] == {"red": 2, "amber": 1, "green": 1, "grey": 1}
    assert review.meta["headline"].startswith("2024-W06: 2 red, 1 amber, 1 green, 1 grey.")
    # A time is shown with its change, never tested: off target is amber, not a move.
    search = rows_["search"]
    assert (search["this_week"], search["last_week"], search["change"]) == (40.0, 10.0, 30.0)
    assert search["moved"] is None and search["p_adjusted"] is None
    assert search["rag"] == "amber" and search["reasons"] == ["off target"]
    # Before its target day, the same miss is amber.
    earlier = by_moment(made[2]["2024-W04"])
    assert earlier["login"]["rag"] == "amber" and earlier["login"]["reasons"] == ["off target"]
    assert earlier["pay"]["moved"] is None


def test_what_grew_what_ran_and_what_shipped(ws, review):
    t = review.to_dict()["tables"]
    top = t["frictions"][0]
    assert (top["moment"], top["kind"], top["new"]) == ("pay", "error_shown", False)
    weeks = [ws.analysis("frictions", moment="pay", since=s, until=u).table("kinds")
             for s, u in (("2024-02-05", "2024-02-12"), ("2024-01-29", "2024-02-05"))]
    lost = [float(k[k.kind == "error_shown"].seconds_lost.iloc[0]) for k in weeks]
    assert top["seconds_now"] == pytest.approx(lost[0]) and top["seconds_before"] == pytest.approx(lost[1])
    assert top["growth"] == pytest.approx(lost[0] - lost[1])
    # The failures of week 6 raised an alert that ran in the week; it names the friction.
    pay_alerts = [a for a in t["alerts"] if a["moment"] == "pay" and a["metric"] == "failure_rate"]
    assert pay_alerts and abs((datetime.fromisoformat(pay_alerts[0]["start"])
                               - datetime(2024, 2, 5)).days) <= 2
    pay = by_moment(review)["pay"]
    assert "a regression alert ran in the week" in pay["reasons"][0] or "alerts ran" in pay["reasons"][0]
    assert pay["friction"] == "error_shown"
    # Changes of the week and the three before, each with its measured effect.
    shipped = {c["title"]: c for c in t["changes"]}
    assert set(shipped) == {"New card form", "Retry button on the error"}
    assert shipped["Retry button on the error"]["this_week"] is True
    assert shipped["New card form"]["this_week"] is False
    assert shipped["New card form"]["verdict"] in ("better", "worse", "inconclusive")
    assert pay["change_title"].startswith("Retry button on the error (2024-02-07, ")


def test_verbatims_and_the_wall(review):
    t = review.to_dict()["tables"]
    said = [v["text"] for v in t["verbatims"]]
    assert len(said) == 4 and "horrible, the worst payment ever" not in said  # last week's
    tones = [v["sentiment"] for v in t["verbatims"]]
    assert tones[0] == min(tones) and tones[-1] == max(tones)  # the most negative half first
    wall = {(w["side"], w["moment"]): w for w in t["wall"]}
    assert set(wall) == {("worst", "login"), ("worst", "pay"), ("worst", "search"), ("best", "reset")}
    assert wall[("worst", "pay")]["quote"] == said[0]
    assert wall[("worst", "login")]["quote"] is None  # no survey asks about logging in


def test_one_owner_and_wrong_requests(made, ws):
    mine = made[2]["identity"]
    assert [r["moment"] for r in mine.to_dict()["tables"]["moments"]] == ["login", "reset"]
    assert mine.to_dict()["tables"]["verbatims"] == []  # pay's survey is not theirs
    nobody = "no moment is owned by 'nobody'; owners: identity, payments, search-team"
    for kwargs, words in (({"owner": "nobody"}, nobody),
                          ({"week": "2024-W60"}, "not an ISO week"),
                          ({"week": "last week"}, "not an ISO week")):
        with pytest.raises(QueryError, match=words):
            ws.analysis("review", **kwargs)
    empty = ws.analysis("review", week="2023-W10")
    assert [w.code for w in empty.warnings][:1] == ["no-attempts"]
    assert {r["rag"] for r in empty.to_dict()["tables"]["moments"]} == {"grey"}


def test_the_documents_escape_what_customers_wrote(review):
    md, page = markdown(review), html(review)
    assert md.startswith("# Weekly review 2024-W06 (5 Feb – 11 Feb 2024)\n")
    assert "\\<script\\>alert(1)\\</script\\>" in md
    assert "declined \\| no reason" in md and "<script>" not in md
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'class="rag rag-red">red</span>' in page and "## payments" in md
    # The same cells as every surface: pay's change as the CLI shows it.
    from microjourney.fmt import cell
    from microjourney.registry.review import MOMENT_COLUMNS
    change = next(c for c in MOMENT_COLUMNS if c.name == "change")
    pay = by_moment(review)["pay"]
    assert cell(change, pay).replace("[", "\\[").replace("]", "\\]") in md


def test_the_cli_prints_each_format(made, tmp_path):
    root = made[0]
    md = run_cli("review", "-w", str(root), "--format", "md", "--week", "2024-W06")
    assert md == markdown(made[2][None])
    said = run_cli("review", "-w", str(root), "--format", "html", "-o", str(tmp_path / "r.html"),
                   "--owner", "identity")
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Wrote" in said and page == html(made[2]["identity"])


def test_an_earlier_week_knows_nothing_of_what_came_after(made):
    r = made[2]["2024-W05"]
    assert r.meta["week"] == "2024-W05"
    assert not [a for a in r.to_dict()["tables"]["alerts"] if a["moment"] == "pay"]
    pay = by_moment(r)["pay"]
    assert pay["moved"] is None and pay["rag"] == "green"  # 92% of 90% before the failures


def test_a_target_on_the_sla_is_tested_over_completed_attempts(make_ws):
    """The SLA met share is over completed attempts with an SLA: 2 of 3 this week, 1 of 1
    the week before (the scorecard's own figure for each week)."""
    spec = PAYMENT_YAML.replace("{metric: completion_rate, value: 0.92}",
                                "{metric: sla_met_rate, value: 0.9}")
    rows = []
    for n, (day, took) in enumerate((("01", 30), ("08", 30), ("09", 200), ("10", 40))):
        who = f"u{n}"
        rows += [ev("10:00:00", "checkout_payment_opened", who), ev(f"10:0{took // 60}:{took % 60:02d}",
                                                                       "payment_succeeded", who)]
        for r in rows[-2:]:
            r["timestamp"] = r["timestamp"].replace("2024-01-01", f"2024-01-{day}")
    ws = make_ws(spec, rows)
    pay = by_moment(ws.analysis("review", week="2024-W02"))["card_payment"]
    card = ws.analysis("scorecard", since="2024-01-08", until="2024-01-15").table().iloc[0]
    assert pay["metric"] == "sla_met_rate" and pay["this_week"] == pytest.approx(2 / 3)
    assert pay["this_week"] == pytest.approx(card.sla_met_rate) and pay["last_week"] == 1.0
    assert pay["status"] == "off target" and pay["moved"] is None  # 2 of 3 against 1 of 1: chance
