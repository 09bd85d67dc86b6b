"""The dashboard over the real server: sign-in with the viewer or secret key (never the
write key), a strict session cookie, forms other sites cannot post, and the portfolio
ranked by attempts short of target with the API's numbers for the same filters."""

from __future__ import annotations

import html
import json
import re
import time

import httpx
import pytest

import microjourney as mj
from microjourney import fmt
from microjourney.registry.scorecard import COLUMNS

from . import dashboard_site as site
from .live_server import LiveServer, make_workspace, run_cli


def test_pages_need_a_session_and_the_write_key_cannot_sign_in(site_served):
    server, keys = site_served
    with site.browser(server) as c:
        first = c.get("/?channel=web")
        assert first.status_code == 303
        assert first.headers["location"] == "/sign-in?next=%2F%3Fchannel%3Dweb"
        write = site.sign_in(c, keys["write_key"])
        assert write.status_code == 403 and "write key cannot sign in" in write.text
        wrong = site.sign_in(c, "mjv_not-this-one")
        assert wrong.status_code == 401 and "mj_session" not in c.cookies
        assert c.get("/").status_code == 303  # still signed out
        # A form without its token (another site's page posting it) is refused.
        forged = c.post("/sign-in", data={"key": keys["viewer_key"], "next": "/"})
        assert forged.status_code == 403 and "mj_session" not in c.cookies


def test_signing_in_gives_a_strict_http_only_session_that_signing_out_ends(site_served):
    server, keys = site_served
    with site.browser(server) as c:
        done = site.sign_in(c, keys["viewer_key"], next_="/?channel=web")
        assert done.status_code == 303 and done.headers["location"] == "/?channel=web"
        cookie = done.headers["set-cookie"].lower()
        assert "mj_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        page = c.get("/")
        assert page.status_code == 200 and "viewer" in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        # Signing out needs the page's own form token.
        assert c.post("/sign-out", data={"csrf": "forged"}).status_code == 403
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        out = c.post("/sign-out", data={"csrf": token})
        assert out.status_code == 303 and out.headers["location"] == "/sign-in"
        assert c.get("/").status_code == 303
    with site.browser(server) as c:  # the secret key signs in too; a foreign next goes home
        assert site.sign_in(c, keys["secret_key"], next_="//evil.test/x").headers["location"] == "/"


def test_a_changed_or_rotated_session_is_no_session(site_served):
    server, keys = site_served
    with site.browser(server) as c:
        site.sign_in(c, keys["viewer_key"])
        _, ends, nonce, mac = c.cookies["mj_session"].split(".")
    with httpx.Client(base_url=server.url, cookies={"mj_session": f"secret.{ends}.{nonce}.{mac}"}) as forged:
        assert forged.get("/").status_code == 303  # the role is signed with the rest
    # Rotating the keys ends every session (on a server of its own: the module's is shared).
    root = server.root.parent / "rotating"
    other = make_workspace(root, journeys=site.JOURNEYS)
    with LiveServer(root) as own, site.browser(own) as c:
        assert site.sign_in(c, other["viewer_key"]).status_code == 303
        assert c.get("/").status_code == 200
        mj.workspace.keys(root, rotate=True)
        time.sleep(1.2)  # the server looks at the key file at most once a second
        assert c.get("/").status_code == 303


def test_the_portfolio_ranks_moments_by_attempts_short_with_the_apis_numbers(site_served):
    server, keys = site_served
    with site.browser(server) as c, server.client(keys["secret_key"]) as api:
        site.sign_in(c, keys["viewer_key"])
        for query in ("", "?channel=web"):
            page = c.get("/" + query)
            assert page.status_code == 200
            cells = site.cells(page.text)
            answer = api.get("/v1/analyses/scorecard" + query).json()
            rows = {r["moment"]: r for r in answer["tables"]["moments"]}
            for moment, shown in cells.items():
                for column in COLUMNS:
                    if column.name in shown:
                        assert shown[column.name] == fmt.cell(column, rows[moment]), (query, moment, column)
        everyone = site.cells(c.get("/").text)
        assert list(everyone) == ["pay", "chat"]  # 3 attempts short first, on target after
        assert everyone["pay"]["attempts_short"] == "3" and everyone["chat"]["attempts_short"] == "0"
        assert everyone["pay"]["completion_rate"].startswith("60.0%")
        web = site.cells(c.get("/?channel=web").text)
        assert web["pay"]["completion_rate"].startswith("100.0%")  # the filter changes the numbers
        page = c.get("/").text
        assert site.OWNER not in page and html.escape(site.OWNER) in page  # rendered as text
        assert "off target" in page and "on target" in page


@pytest.fixture(scope="module")
def weeks(tmp_path_factory):
    """Four weeks: pay completes 27 of 30 attempts a week, then 12 of 30 in the last week;
    chat completes 20 of 25 every week."""
    root = tmp_path_factory.mktemp("weeks") / "ws"
    keys = make_workspace(root, journeys=site.JOURNEYS)
    rows, n = [], 0
    for week in range(4):
        for i in range(30):
            day = f"2026-10-{5 + 7 * week + i % 5:02d}T10:{i:02d}:00Z"
            ok = i < (27 if week < 3 else 12)
            who = f"p{week}-{i}"
            rows += [{"event_id": f"w{n}a", "timestamp": day, "event": "open", "anonymous_id": who},
                     {"event_id": f"w{n}b", "timestamp": day.replace(":00Z", ":30Z"),
                      "event": "ok" if ok else "failed", "anonymous_id": who}]
            if i < 25:
                rows += [{"event_id": f"w{n}c", "timestamp": day, "event": "chat_opened",
                          "anonymous_id": f"c{week}-{i}", "channel": "chat"}]
                if i < 20:
                    rows += [{"event_id": f"w{n}d", "timestamp": day.replace(":00Z", ":40Z"),
                              "event": "resolved", "anonymous_id": f"c{week}-{i}", "channel": "chat"}]
            n += 1
    events = root.parent / "events.jsonl"
    events.write_text("\n".join(json.dumps({"channel": "web", **e}) for e in rows) + "\n", encoding="utf-8")
    run_cli("ingest", str(events), "-w", str(root))
    with LiveServer(root) as server:
        yield server, keys


def test_the_portfolio_says_what_moved_most_with_weekly_sparklines(weeks):
    from microjourney.registry import get

    server, keys = weeks
    change = next(c for c in get("week-on-week").views[0].columns if c.name == "change")
    with site.browser(server) as c, server.client(keys["secret_key"]) as api:
        site.sign_in(c, keys["viewer_key"])
        page = c.get("/").text
        answer = api.get("/v1/analyses/week-on-week").json()
        # The headline is the analysis's: pay fell from 90% to 40% of 30 finished attempts.
        headline = html.unescape(re.search(r'<span id="headline">([^<]*)<', page).group(1))
        assert headline == answer["meta"]["headline"]
        assert headline.startswith("pay: completion down 50.0 points week on week (90.0% → 40.0%")
        rows = {r["moment"]: r for r in answer["tables"]["moments"]}
        cells = site.cells(page)
        assert cells["pay"]["change"] == "▼ " + fmt.cell(change, rows["pay"])
        assert cells["chat"]["change"] == fmt.cell(change, rows["chat"]) and rows["chat"]["moved"] is None
        # A sparkline of the four weeks, its words naming the first and the last.
        spark = re.search(r'<tr data-moment="pay">.*?<svg class="spark"[^>]*aria-label="([^"]+)".*?'
                          r'points="([^"]+)"', page, re.S)
        assert len(spark.group(2).split()) == 4
        assert html.unescape(spark.group(1)) == ("Completion by week, 4 weeks from 2026-10-05: 90.0% to "
                                                 "40.0% (lowest 40.0%, highest 90.0%)")
        ys = [float(xy.split(",")[1]) for xy in spark.group(2).split()]
        assert ys[0] == ys[1] == ys[2] < ys[3]  # flat, then down (SVG y grows downwards)
        # Ending the period before the fall: nothing moved.
        before = c.get("/?until=2026-10-26").text
        assert "No moment&#39;s completion moved beyond chance" in before


def test_a_bad_filter_is_shown_on_the_page(site_served):
    server, keys = site_served
    with site.browser(server) as c:
        site.sign_in(c, keys["viewer_key"])
        page = c.get("/?since=yesterday-ish")
        assert page.status_code == 400 and "since" in page.text and 'role="alert"' in page.text


def test_the_moment_page_shows_each_panel_with_the_apis_numbers(site_served):
    from microjourney.server.dashboard import MOMENT_PANELS, panel

    server, keys = site_served
    with site.browser(server) as c, server.client(keys["secret_key"]) as api:
        site.sign_in(c, keys["viewer_key"])
        page = c.get("/moments/pay?channel=app")
        assert page.status_code == 200 and "off target" in page.text
        shown = 0
        for analysis, extra, views, limit in MOMENT_PANELS:
            answer = api.get(f"/v1/analyses/{analysis}",
                             params={**extra, "moment": "pay", "channel": "app"}).json()
            for view in views:
                expected = panel(answer, analysis, view, limit)
                cells = site.panel_cells(page.text, analysis, view)
                assert cells == [cell for row in expected["rows"] for cell in row], (analysis, view)
                shown += len(cells)
        assert shown > 20
        # The funnel of the app's five attempts: all start, one completes.
        steps = re.search(r'data-analysis="funnel" data-view="steps">(.*?)</section>', page.text, re.S)
        assert re.findall(r'data-column="count">([^<]*)<', steps.group(1)) == ["5", "1"]
        # The survey asked in the app, by outcome: 5 after the completion, 2, 1, 2 after
        # the failures.
        scores = site.panel_cells(page.text, "survey-scores", "scores")
        assert scores[:5] == ["pay_csat", "completed", "ease", "csat", "1"]
        assert scores[12:17] == ["pay_csat", "failed", "ease", "csat", "3"]
        assert 'data-analysis="survey-scores"' not in c.get("/moments/chat").text  # none asks there
        assert c.get("/moments/nope").status_code == 404
        hostile = c.get("/moments/pay", params={"where": "<script>alert(1)</script>=1"})
        assert "<script>alert(1)" not in hostile.text and "&lt;script&gt;" in hostile.text


def test_the_journeys_and_data_quality_pages(site_served):
    from microjourney.server.dashboard import panel

    server, keys = site_served
    with site.browser(server) as c, server.client(keys["secret_key"]) as api:
        assert c.get("/journeys").status_code == 303 and c.get("/data-quality").status_code == 303
        site.sign_in(c, keys["viewer_key"])
        page = c.get("/journeys?channel=app").text
        # Each journey with its moments in the workspace's order, linked, filters carried.
        assert re.findall(r'data-journey="([^"]+)"', page) == ["payment", "help"]
        assert '/moments/pay?channel=app' in page
        answer = api.get("/v1/analyses/scorecard?channel=app").json()
        card = {r["moment"]: r for r in answer["tables"]["moments"]}
        completion = {c_.name: c_ for c_ in COLUMNS}["completion_rate"]
        shown = re.search(r'data-moment="pay">.*?data-column="completion_rate">([^<]*)<', page, re.S).group(1)
        assert html.unescape(shown) == fmt.cell(completion, card["pay"])
        experiments = c.get("/experiments")
        assert experiments.status_code == 200
        answer = api.get("/v1/analyses/experiment", params={"experiment": "copy"}).json()
        cells = site.panel_cells(experiments.text, "experiment", "metrics")
        assert cells == [cell for row in panel(answer, "experiment", "metrics", 60)["rows"] for cell in row]
        # The verdict first: b completes 2 of 5 against a's 4 of 5, too few to tell.
        assert "copy: b inconclusive on completion_rate (-50.0% [" in html.unescape(experiments.text)
        intents = c.get("/intents")
        assert intents.status_code == 200
        answer = api.get("/v1/analyses/intents").json()
        cells = site.panel_cells(intents.text, "intents", "intents")
        assert cells == [cell for row in panel(answer, "intents", "intents", 60)["rows"] for cell in row]
        assert "pay" in cells and "declined" in " ".join(cells)  # the declined texts map to pay
        quality = c.get("/data-quality")
        assert quality.status_code == 200
        answer = api.get("/v1/analyses/data-quality").json()
        cells = site.panel_cells(quality.text, "data-quality", "days")
        assert cells == [cell for row in panel(answer, "data-quality", "days", 30)["rows"] for cell in row]
        assert cells  # the ingest's arrivals are there


def test_the_attempt_explorer_and_one_attempts_timeline(site_served):
    from microjourney.server.dashboard import EXPLORE_ROWS, panel

    server, keys = site_served
    with site.browser(server) as c, server.client(keys["secret_key"]) as api:
        site.sign_in(c, keys["viewer_key"])
        assert 'href="/moments/pay/attempts"' in c.get("/moments/pay").text
        cases = (({"outcome": "failed"}, 4), ({"reached": "1"}, 6),
                 ({"outcome": "failed", "channel": "web"}, 0))
        for query, n in cases:
            page = c.get("/moments/pay/attempts", params=query)
            assert page.status_code == 200
            answer = api.get("/v1/analyses/attempts", params={**query, "moment": "pay",
                                                              "limit": EXPLORE_ROWS}).json()
            expected = panel(answer, "attempts", "attempts", EXPLORE_ROWS)["rows"]
            links = re.findall(r'href="/attempts/([^"]+)"', page.text)
            assert len(links) == len(expected) == n, query
        # One failed attempt, whole: its events with their roles, as the API gives them.
        page = c.get("/moments/pay/attempts", params={"outcome": "failed"})
        first = re.findall(r'href="/attempts/([^"]+)"', page.text)[0]
        one = c.get(f"/attempts/{first}")
        assert one.status_code == 200
        ident = html.unescape(first).replace("%3A", ":")
        answer = api.get("/v1/analyses/attempt", params={"id": ident}).json()
        expected = panel(answer, "attempt", "events", 500)["rows"]
        cells = site.panel_cells(one.text, "attempt", "events")
        section = re.search(r'data-analysis="attempt" data-view="events">(.*?)</section>', one.text, re.S)
        assert cells == [cell for row in expected for cell in row]
        roles = re.findall(r'data-column="role">([^<]*)<', section.group(1))
        assert roles == ["—", "start", "fail"]  # the experiment's exposure, at the same instant
        missing = c.get("/attempts/pay:nope")
        assert missing.status_code == 404 and "no attempt" in missing.text


def test_the_report_ranks_moments_as_the_portfolio_does(make_ws, tmp_path):
    from microjourney.report import build_report

    # "chat" comes first in the file; "pay", 3 attempts short of target, comes first ranked.
    spec = ("journeys: [{name: help, moments: [{name: chat, start: {event: chat_opened}, "
            "complete: {event: resolved}, timeout: 10m, target: {metric: completion_rate, value: 0.5}}]}, "
            "{name: payment, moments: [{name: pay, start: {event: open}, complete: {event: ok}, "
            "fail: {event: failed}, timeout: 10m, target: {metric: completion_rate, value: 0.9}}]}]\n")
    ws = make_ws(spec, site.site_events())
    page = build_report(ws, tmp_path / "report.html").read_text(encoding="utf-8")
    table = page[page.index("Attempts short of target"):]
    assert table.index('class="sub code">pay<') < table.index('class="sub code">chat<')
    first = page.index('<h2 id="m-1-h">')
    assert page[page.rindex("<code>", 0, first):first].startswith("<code>pay</code>")  # pay's section first
    # Each moment's status in the scorecard's words, as the dashboard shows it.
    card = ws.analysis("scorecard").table()
    for moment, word in zip(card.moment, card.status, strict=True):
        row = re.search(rf'<tr>(?:(?!</tr>).)*class="sub code">{moment}<(?:(?!</tr>).)*</tr>', page, re.S)
        assert f"</span> {word}</span>" in row.group(0), (moment, word)
    assert set(card.status) == {"off target", "on target"}
    # Its process map is the analysis's, drawn as the dashboard draws it.
    from microjourney.registry.process_map import graph

    spec = re.search(r'class="graph-spec" data-target="g-1">(.*?)</script>', page, re.S)
    pm = ws.analysis("process-map", moment="pay").to_dict()
    drawn = json.loads(spec.group(1))
    assert drawn == graph(pm["tables"]["edges"], pm["tables"]["nodes"], pm["meta"]["path"])
    assert [n["id"] for n in drawn["nodes"] if n["designed"]] == ["open", "ok"]
    # The portfolio's headline, as the dashboard states it (here: one day of data).
    moved = ws.analysis("week-on-week").meta["headline"]
    assert f"<strong>What moved most:</strong> {html.escape(moved)}" in page


def test_the_moment_page_breaks_the_scorecard_down_by_channel_or_a_property(site_served):
    from microjourney.server.dashboard import panel

    server, keys = site_served
    with site.browser(server) as c, server.client(keys["secret_key"]) as api:
        site.sign_in(c, keys["viewer_key"])
        for query in ({}, {"by": "outcome"}):
            page = c.get("/moments/pay", params=query)
            assert page.status_code == 200
            answer = api.get("/v1/analyses/scorecard", params={"by": query.get("by", "channel")}).json()
            mine = {**answer, "tables": {"moments": [r for r in answer["tables"]["moments"]
                                                     if r["moment"] == "pay"]}}
            expected = panel(mine, "scorecard", "moments", 50)["rows"]
            cells = site.panel_cells(page.text, "scorecard", "breakdown")
            assert cells == [cell for row in expected for cell in row] and len(expected) >= 2
        by_channel = c.get("/moments/pay").text
        assert re.findall(r'data-column="channel">([^<]*)<', by_channel) == ["app", "web"]
        odd = c.get("/moments/pay", params={"by": "<b>x</b>"})  # a property no event has
        assert odd.status_code == 200 and "<b>x</b>" not in odd.text and "&lt;b&gt;x" in odd.text  # "(none)"


def test_hostile_sign_in_forms_get_an_answer_never_a_crash_or_a_redirect_elsewhere(site_served):
    from microjourney.server.dashboard import _local

    server, keys = site_served
    with site.browser(server) as c:
        big = c.post("/sign-in", content=b"key=" + b"x" * 10_000,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert big.status_code == 400 and "could not be read" in big.text
        garbled = c.post("/sign-in", content=b"\xff\xfe=\xff",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert garbled.status_code in (400, 403) and "<form" in garbled.text
        for target in ("/\t/evil.test", "/\n/evil.test", "//evil.test", "/\\evil.test", "https://evil.test"):
            assert _local(target) == "/", target
            done = site.sign_in(c, keys["viewer_key"], next_=target)
            assert done.status_code == 303 and done.headers["location"] == "/", target
        assert _local("/moments/pay?channel=web") == "/moments/pay?channel=web"


def test_an_event_named_with_markup_shows_as_text_on_its_attempt_page(site_served):
    server, keys = site_served
    with site.browser(server) as c, server.client(keys["secret_key"]) as api:
        site.sign_in(c, keys["viewer_key"])
        listed = api.get("/v1/analyses/attempts", params={"moment": "pay", "limit": 100}).json()
        ident = next(r["attempt_id"] for r in listed["tables"]["attempts"] if r["person"] == "p0")
        page = c.get(f"/attempts/{ident}")
        assert page.status_code == 200
        assert site.EVIL_EVENT not in page.text and html.escape(site.EVIL_EVENT) in page.text
