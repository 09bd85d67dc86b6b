"""The verbatims analysis: free-text answers with their sentiment, the score band of the
same display, themes named by their terms, and the attempts they speak of, on a small
hand-made workspace and on the real telecom NPS verbatims (docs/surveys.md, "Verbatims")."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import microjourney as mj
from microjourney.errors import QueryError
from microjourney.spec import KINDS

from .helpers import PAYMENT_YAML, TELECOM, ev, telecom_workspace, workspace_of

OFF = "\n".join(f"  {k}: {{enabled: false}}" for k in KINDS)
YAML = PAYMENT_YAML + f"""\
frictions:
{OFF}
surveys:
  - name: pay_csat
    moment: card_payment
    trigger: {{outcomes: [completed, failed]}}
    questions:
      - {{id: ease, type: csat, text: How easy was paying?}}
      - {{id: why, type: text, text: Why?, required: false}}
  - name: relationship
    questions:
      - {{id: nps, type: nps, text: Would you recommend us?}}
"""

DECLINED = [
    "my card was declined for no reason, very annoying",
    "the card payment was declined again, terrible",
    "card declined even though there is money on my card, ridiculous",
    "why was my card declined twice? frustrating",
    "declined card, I had to use another card, awful",
    "the bank declined my card payment, useless",
]
SLOW = [
    "the page was so slow to load, awful",
    "very slow page, it kept loading forever, terrible",
    "the checkout page loads too slowly, annoying",
    "the page never loaded, so slow, awful",
    "page loading was painfully slow",
    "the payment page was slow and froze, frustrating",
]
PRAISE = [
    "great service, quick and easy, thank you",
    "easy and fast, love it",
    "excellent, very easy to pay",
    "great experience, thanks",
    "wonderful, easy and quick",
    "really good and simple, happy with it",
]
SCRUBBED = "please email me at jane.doe@example.com or call +44 20 7946 0958"
MARKUP = "<script>alert(1)</script> the app is broken"


def answer(t, who, display, question, value, final=False):
    return ev(t, "survey_response", who, event_id=f"{display}-{question}",
              properties={"survey": "pay_csat", "display": display, "question": question,
                          "answer": value, "final": final})


def events():
    """Eighteen attempts, one an hour from 01:00: card declined (failed, ease 1), slow page
    (failed, ease 2), praise (completed, ease 5); one more failed with a scrubbed text and
    no score, and a text with markup from a person with no attempt (linked to nothing)."""
    out = []
    groups = [(DECLINED, "payment_failed", 1), (SLOW, "payment_failed", 2),
              (PRAISE, "payment_succeeded", 5)]
    i = 0
    for texts, end, score in groups:
        for text in texts:
            i += 1
            who, h = f"u{i:02d}", f"{i:02d}"
            out += [ev(f"{h}:00:00", "checkout_payment_opened", who, event_id=f"o{i}"),
                    ev(f"{h}:00:20", end, who, event_id=f"e{i}"),
                    answer(f"{h}:01:00", who, f"d{i}", "ease", score),
                    answer(f"{h}:01:10", who, f"d{i}", "why", text, final=True)]
    out += [ev("20:00:00", "checkout_payment_opened", "u20", event_id="o20"),
            ev("20:00:20", "payment_failed", "u20", event_id="e20"),
            answer("20:01:00", "u20", "d20", "why", SCRUBBED, final=True),
            answer("21:00:00", "u21", "d21", "why", MARKUP, final=True)]
    return out


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    w = workspace_of(tmp_path_factory.mktemp("verbatims"), YAML, events())
    yield w
    w.close()


@pytest.fixture(scope="module")
def result(ws):
    return ws.analysis("verbatims", survey="pay_csat", quotes=50)


def _theme_of(quotes: pd.DataFrame, texts: list[str]) -> set[int]:
    return set(quotes[quotes.text.isin(texts)].theme)


def test_themes_separate_the_two_complaints(result):
    themes, quotes = result.table("themes"), result.table("quotes")
    assert result.meta["texts"] == 20 and themes.texts.sum() == 20
    assert themes.share.sum() == pytest.approx(1.0)
    declined, slow, praise = (_theme_of(quotes, t) for t in (DECLINED, SLOW, PRAISE))
    assert len(declined) == 1 and len(slow) == 1 and not declined & slow
    by_number = themes.set_index("theme")
    card = by_number.loc[declined.pop()]
    page = by_number.loc[slow.pop()]
    assert {"declined", "card"} & set(card.terms) and {"slow", "page"} & set(page.terms)
    assert len(card.examples) == 3 and set(card.examples) <= set(DECLINED)
    # The behaviour of the same attempts: every card complaint follows a failure.
    assert card.outcome == "failed" and card.completed == 0 and card.linked == 6
    assert card.band == "low" and card.band_share == 1 and card.negative > 0.5
    assert praise.isdisjoint(declined | slow)


def test_sentiment_is_negative_for_complaints_and_positive_for_praise(result):
    q = result.table("quotes").set_index("text")
    assert (q.loc[DECLINED + SLOW, "sentiment"] < -0.05).all()
    assert (q.loc[PRAISE, "sentiment"] > 0.3).all()
    themes = result.table("themes")
    assert themes.sentiment.min() < 0 < themes.sentiment.max()


def test_bands_come_from_the_same_displays_score(result):
    q = result.table("quotes").set_index("text")
    assert set(q.loc[DECLINED, "band"]) == {"low"} and set(q.loc[DECLINED, "score"]) == {1}
    assert set(q.loc[SLOW, "band"]) == {"low"} and set(q.loc[SLOW, "score"]) == {2}
    assert set(q.loc[PRAISE, "band"]) == {"high"} and set(q.loc[PRAISE, "score"]) == {5}
    unscored = q[q.index.str.startswith("please email me")]  # no ease in its display
    assert unscored.band.tolist() == ["(none)"] and unscored.score.isna().all()


def test_quotes_are_the_most_recent_and_link_to_their_attempts(ws, result):
    q = result.table("quotes")
    assert q.timestamp.is_monotonic_decreasing and len(q) == 20
    unlinked = q[q.text == MARKUP]
    assert unlinked.attempt_id.isna().all() and unlinked.outcome.isna().all()
    q = q[q.text != MARKUP]
    attempts = ws.attempts("card_payment").to_pandas().set_index("person")
    answers = ws.survey_answers("pay_csat").to_pandas()
    who = answers[answers.question == "why"].set_index("answer").person
    for row in q.itertuples():
        assert row.attempt_id == attempts.loc[who[row.text], "attempt_id"]
        assert row.outcome == attempts.loc[who[row.text], "outcome"]
    assert set(q[q.text.isin(PRAISE)].outcome) == {"completed"}
    three = ws.analysis("verbatims", quotes=3).table("quotes").text.tolist()
    assert three[0] == MARKUP and three[1].startswith("please email me") and three[2] == PRAISE[-1]


def test_the_moment_pages_panel_links_attempts_and_escapes_texts(result):
    from microjourney.server.dashboard import _templates, panel

    shown = panel(result.to_dict(), "verbatims", "quotes", 10)
    page = _templates.get_template("_panel.html").render(p=shown)
    links = re.findall(r'<a href="/attempts/([^"]+)">', page)
    assert len(links) == 9 and all(a.startswith("card_payment") for a in links)  # not the unlinked
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page


def test_personal_data_is_scrubbed_from_the_stored_text(result):
    texts = result.table("quotes").text.tolist()
    scrubbed = next(t for t in texts if t.startswith("please email me"))
    assert "[email]" in scrubbed and "[phone]" in scrubbed
    assert "jane.doe" not in " ".join(texts) and "7946" not in " ".join(texts)


def test_band_and_filters_select_the_answers(ws):
    high = ws.analysis("verbatims", band="high")
    assert set(high.table("quotes").text) == set(PRAISE)
    assert {w.code for w in high.warnings} >= {"few-texts"} and high.table("themes").empty
    early = ws.analysis("verbatims", until="2024-01-01T07:00:00", band="low")
    assert set(early.table("quotes").text) == set(DECLINED)
    none = ws.analysis("verbatims", channel="app")
    assert none.table("quotes").empty and [w.code for w in none.warnings] == ["no-free-text"]
    two = ws.analysis("verbatims", k=2)
    assert len(two.table("themes")) == 2
    # A survey asking no free-text question.
    nothing = ws.analysis("verbatims", survey="relationship")
    assert nothing.table("quotes").empty and [w.code for w in nothing.warnings] == ["no-free-text"]


def test_a_moment_without_surveys_gives_the_no_surveys_notice(tmp_path):
    w = mj.init(tmp_path)
    (tmp_path / "microjourney.yaml").write_text(PAYMENT_YAML)
    w.reload()
    r = w.analysis("verbatims", moment="card_payment")
    assert [x.code for x in r.warnings] == ["no-surveys"] and r.table("themes").empty
    w.close()


def test_wrong_parameters_say_what_is_wrong(ws):
    with pytest.raises(QueryError, match="no survey 'nope'; surveys: pay_csat, relationship"):
        ws.analysis("verbatims", survey="nope")
    with pytest.raises(QueryError, match="'ease' of survey 'pay_csat' is a csat question, not free "
                                         "text; its free-text questions: why"):
        ws.analysis("verbatims", question="ease")
    with pytest.raises(QueryError, match="survey 'pay_csat' has no question 'x'"):
        ws.analysis("verbatims", survey="pay_csat", question="x")
    with pytest.raises(QueryError, match="unknown verbatims band 'bad'; allowed: detractor"):
        ws.analysis("verbatims", band="bad")
    with pytest.raises(QueryError, match="--quotes: Input should be less than or equal to 200"):
        ws.analysis("verbatims", quotes=10_000)
    with pytest.raises(QueryError, match="--k: Input should be greater than or equal to 2"):
        ws.analysis("verbatims", k=1)
    with pytest.raises(QueryError, match="no moment 'nope'"):
        ws.analysis("verbatims", moment="nope")


@pytest.mark.skipif(not TELECOM.exists(), reason=f"real data not found at {TELECOM}")
def test_the_themes_of_telecom_detractors(tmp_path):
    w, _ = telecom_workspace(tmp_path)
    detractors = w.analysis("verbatims", band="detractor", quotes=200)
    themes = detractors.table("themes")
    assert len(themes) >= 2 and themes.texts.sum() > 1_000
    assert all(len(t) >= 3 for t in themes.terms) and all(len(e) == 3 for e in themes.examples)
    assert set(detractors.table("quotes").band) == {"detractor"}
    promoters = w.analysis("verbatims", band="promoter", quotes=0).table("themes")

    def mean(t: pd.DataFrame) -> float:  # over every text: its themes' means by their size
        return float((t.sentiment * t.texts).sum() / t.texts.sum())

    assert mean(themes) < -0.1 < 0.3 < mean(promoters)
    assert np.isnan(themes.completed).all()  # a survey of no moment links to no attempt
    w.close()
