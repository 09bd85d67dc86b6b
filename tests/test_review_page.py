"""The weekly review page (``/review``) over the real server: signed in like every page,
its headline and RAG counts first, then each view of the ``review`` analysis with the API's
cells for the same week and owner, the moments grouped by owner with their colour marked,
and a wrong week or owner said on the page (docs/dashboard.md, "Weekly review")."""

from __future__ import annotations

import html
import json
import re

import pytest

import microjourney as mj
from microjourney import fmt
from microjourney.analysis.review import RAGS
from microjourney.registry import get
from microjourney.server.dashboard import panel
from microjourney.server.dashboard_review import RAGS as PAGE_RAGS
from microjourney.server.dashboard_review import ROWS

from . import dashboard_site as site
from .live_server import LiveServer

QUOTE = "<script>alert(3)</script> the card page is awful"
SURVEYS = ("surveys: [{name: pay_csat, moment: pay, questions: [{id: ease, type: csat, text: How easy?}, "
           "{id: why, type: text, text: Why?, required: false}]}]\n")
VIEWS = [v.table for v in get("review").views]


def review_events() -> list[dict]:
    """Two ISO weeks, 2026-W43 (Oct 19-25) and 2026-W44 (Oct 26-Nov 1): pay (owned by the
    site's markup-named owner, target 90%) completes 27 of 30 attempts, then 12 of 30, with
    an error shown in 3 attempts, then 10; chat (owned by care, target 50%) 20 of 25, then
    20 of 24, with an error shown in 5 a week. Three free-text answers about pay in the last
    week, one holding markup."""
    rows: list[dict] = []

    def add(ts: str, event: str, who: str, channel: str = "web", **props: object) -> None:
        rows.append({"event_id": f"e{len(rows)}", "timestamp": ts, "event": event, "anonymous_id": who,
                     "channel": channel, **({"properties": props} if props else {})})

    for week, monday in enumerate((19, 26)):
        for i in range(30):
            day = monday + i % 7
            ts = (f"2026-10-{day:02d}" if day <= 31 else f"2026-11-{day - 31:02d}") + f"T10:{i:02d}:00Z"
            who = f"p{week}-{i}"
            add(ts, "open", who)
            if i % (10 if week == 0 else 3) == 0:
                add(ts.replace(":00Z", ":10Z"), "error_shown", who)
            add(ts.replace(":00Z", ":30Z"), "ok" if i < (27 if week == 0 else 12) else "failed", who)
            if i < 25:
                add(ts, "chat_opened", f"c{week}-{i}", "chat")
                if i % 5 == 0:
                    add(ts.replace(":00Z", ":20Z"), "error_shown", f"c{week}-{i}", "chat")
                if i < 20:
                    add(ts.replace(":00Z", ":40Z"), "resolved", f"c{week}-{i}", "chat")
            if week == 1 and i in (2, 20, 21):
                display = {"survey": "pay_csat", "display": f"d{i}"}
                text = {2: "great and easy, thanks", 20: QUOTE, 21: "slow and broken"}[i]
                add(ts.replace(":00Z", ":45Z"), "survey_shown", who, **display)
                add(ts.replace(":00Z", ":50Z"), "survey_response", who, **display, question="ease",
                    answer=5 if i == 2 else 1)
                add(ts.replace(":00Z", ":55Z"), "survey_response", who, **display, question="why",
                    answer=text, final=True)
    return rows


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The review's workspace, made and ingested in this process (a command would start
    Python again), then served: (server, a signed-in viewer's browser, the API)."""
    root = tmp_path_factory.mktemp("review") / "ws"
    mj.init(root).close()
    spec = root / "microjourney.yaml"
    text = spec.read_text(encoding="utf-8").replace("journeys: []\n", f"journeys: {site.JOURNEYS}\n")
    spec.write_text(text + SURVEYS, encoding="utf-8")
    keys = mj.workspace.keys(root)
    events = root.parent / "events.jsonl"
    events.write_text("\n".join(json.dumps(e) for e in review_events()) + "\n", encoding="utf-8")
    with mj.Workspace(root) as ws:
        assert ws.ingest(events).accepted == len(review_events())
    with LiveServer(root) as server, site.browser(server) as page, \
            server.client(keys.secret_key) as api:
        assert page.get("/review").status_code == 303  # before signing in
        site.sign_in(page, keys.viewer_key)
        yield server, page, api


def same_cells_as_the_api(page: str, answer: dict) -> int:
    """Every panel's cells equal the API answer's, formatted as every surface does."""
    shown = 0
    for view in VIEWS:
        expected = panel(answer, "review", view, ROWS)
        assert site.panel_cells(page, "review", view) == [c for row in expected["rows"] for c in row], view
        shown += len(expected["rows"])
    return shown


def test_the_review_needs_a_session_and_is_in_the_navigation(served):
    server, c, _ = served
    with site.browser(server) as stranger:
        away = stranger.get("/review?week=2026-W43")
        assert away.status_code == 303
        assert away.headers["location"] == "/sign-in?next=%2Freview%3Fweek%3D2026-W43"
    page = c.get("/review")
    assert page.status_code == 200 and "viewer" in page.text
    assert '<a href="/review" aria-current="page">Weekly review</a>' in page.text
    assert '<a href="/review">Weekly review</a>' in c.get("/alerts").text  # beside the other pages


def test_the_review_shows_its_headline_colours_and_the_apis_cells(served):
    _, c, api = served
    assert PAGE_RAGS == RAGS
    page = c.get("/review").text
    answer = api.get("/v1/analyses/review").json()
    meta = answer["meta"]
    assert meta["week"] == "2026-W44"  # the last whole week of the data
    headline = html.unescape(re.search(r'<p class="headline" id="headline">([^<]*)<', page).group(1))
    assert headline == meta["headline"] and headline.startswith("2026-W44: 1 red, 1 green. pay is red")
    counts = {k: int(v) for k, v in re.findall(r'data-rag="(\w+)">(\d+)<', page)}
    assert counts == meta["rag"] == {"red": 1, "amber": 0, "green": 1, "grey": 0}
    assert page.index('id="headline"') < page.index('data-view="moments"')  # the headline first
    assert 'name="week" value="2026-W44"' in page  # the week shown, in the form
    assert same_cells_as_the_api(page, answer) >= 6
    # The moments' cells by column, each the API's value formatted by fmt.cell.
    columns = {col.name: col for col in get("review").views[0].columns}
    section = re.search(r'data-view="moments">(.*?)</section>', page, re.S).group(1)
    rows = [dict(re.findall(r'data-column="([^"]+)">([^<]*)<', r)) for r in
            re.findall(r"<tr>(<td.*?)</tr>", section, re.S)]
    assert [r["moment"] for r in rows] == ["pay", "chat"]
    for shown, raw in zip(rows, answer["tables"]["moments"], strict=True):
        for name, cell in shown.items():
            assert html.unescape(cell) == fmt.cell(columns[name], raw), name
    assert rows[0]["this_week"].startswith("40.0%") and rows[1]["rag"] == "green"
    # Each colour marked on its cell, the word kept; the owners head their moments.
    assert '<td class="text rag rag-red" data-column="rag">red</td>' in section
    assert '<td class="text rag rag-green" data-column="rag">green</td>' in section
    owners = re.findall(r'<th scope="rowgroup" colspan="\d+">([^<]*)</th>', section)
    assert [html.unescape(o) for o in owners] == [site.OWNER, "care"]
    assert "<code>no-baseline</code>" in section  # the analysis's notices under the moments
    # The page's select offers every owner, and every owner.
    assert re.findall(r'<option value="([^"]*)"', page) == ["", html.escape(site.OWNER), "care"]


def test_the_week_and_the_owner_change_the_review(served):
    _, c, api = served
    page = c.get("/review", params={"week": "2026-W43"})
    answer = api.get("/v1/analyses/review", params={"week": "2026-W43"}).json()
    assert page.status_code == 200 and answer["meta"]["headline"] == "2026-W43: 2 green."
    assert 'name="week" value="2026-W43"' in page.text and "2026-W43: 2 green." in page.text
    same_cells_as_the_api(page.text, answer)
    cared = c.get("/review", params={"owner": "care"})
    answer = api.get("/v1/analyses/review", params={"owner": "care"}).json()
    assert [r["moment"] for r in answer["tables"]["moments"]] == ["chat"]
    same_cells_as_the_api(cared.text, answer)
    assert '<option value="care" selected>care</option>' in cared.text
    moments = site.panel_cells(cared.text, "review", "moments")
    assert "chat" in moments and "pay" not in moments


def test_a_wrong_week_or_owner_is_said_on_the_page(served):
    _, c, _ = served
    for week in ("2026-W99", "nonsense", "<script>alert(4)</script>"):
        page = c.get("/review", params={"week": week})
        assert page.status_code == 400, week
        assert 'role="alert"' in page.text and "is not an ISO week (write e.g. 2026-W43)" in page.text
        assert f'name="week" value="{html.escape(week)}"' in page.text  # kept to correct
        assert "<script>alert(4)" not in page.text
    nobody = c.get("/review", params={"owner": "nobody"})
    assert nobody.status_code == 400 and "no moment is owned by" in html.unescape(nobody.text)


def test_user_text_on_the_review_is_shown_as_text(served):
    _, c, _ = served
    page = c.get("/review").text
    assert site.OWNER not in page and html.escape(site.OWNER) in page
    assert QUOTE not in page and html.escape(QUOTE) in page
    assert QUOTE in site.panel_cells(page, "review", "verbatims")


def test_a_week_without_data_is_a_review_of_nothing(served):
    _, c, _ = served
    page = c.get("/review", params={"week": "2020-W01"})
    assert page.status_code == 200
    assert "2020-W01: 2 grey." in page.text and "<code>no-attempts</code>" in page.text
