"""The dashboard in Chromium (Debian's, installed by the test set-up; never downloaded):
every page loads without console errors and draws its charts and process map, filters
change the numbers and survive a reload, axe-core finds no serious or critical violation,
the keyboard reaches every control; screenshots of each page for review."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from . import dashboard_site as site

pytestmark = pytest.mark.slow


CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots"


def test_in_chromium_every_page_loads_without_errors_and_the_chart_draws(site_served):
    """Signed in through the form, as a person would: the portfolio, then a moment page whose
    chart Vega draws under the page's content security policy (no eval, no inline script);
    the owner's markup shows as text. A screenshot of each page is written for review."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); browsers are never downloaded")
    sync_api = pytest.importorskip("playwright.sync_api")
    server, keys = site_served
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            page.on("console", lambda m: m.type in ("error", "warning") and problems.append(m.text))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(server.url + "/")
            assert page.url.startswith(server.url + "/sign-in")
            page.fill("#key", keys["viewer_key"])
            page.keyboard.press("Enter")
            page.wait_for_selector("table.portfolio")
            assert page.locator("tr[data-moment]").first.get_attribute("data-moment") == "pay"
            assert site.OWNER in page.inner_text("table.portfolio")  # as text, not as markup
            page.screenshot(path=str(SCREENSHOTS / "portfolio.png"), full_page=True)
            page.click("a[href^='/moments/pay']")
            page.wait_for_selector("#chart-series[data-rendered=true] svg", timeout=15000)
            marks = page.locator("#chart-series svg path").count()
            assert marks >= 2  # the band and the line at least
            page.wait_for_selector("#chart-daily[data-rendered=true] svg")
            # The process map, laid out by dagre: a node per step reached, the designed path
            # (open -> ok) outlined, every text as text.
            page.wait_for_selector("#graph-process-map[data-rendered=true] svg")
            names = page.locator("#graph-process-map g.node text.name").evaluate_all(
                "els => els.map(e => e.textContent)")
            assert sorted(names) == sorted(["open", "ok", "failed"])
            assert page.locator("#graph-process-map g.node.designed").count() == 2
            assert page.locator("#graph-process-map g.edge.designed").count() == 1
            page.screenshot(path=str(SCREENSHOTS / "moment.png"), full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})  # a phone: tables scroll inside
            page.reload()
            page.wait_for_selector("#chart-series[data-rendered=true]")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, width
            page.screenshot(path=str(SCREENSHOTS / "moment-phone.png"), full_page=True)
            for path, name in (("/", "portfolio"), ("/moments/pay/attempts", "attempts")):
                page.goto(server.url + path)
                page.wait_for_selector("main")
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, (path, width)
                page.screenshot(path=str(SCREENSHOTS / f"{name}-phone.png"), full_page=True)
            assert problems == []
        finally:
            browser.close()


def test_in_chromium_each_filter_changes_the_numbers_and_survives_a_reload(site_served):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); browsers are never downloaded")
    sync_api = pytest.importorskip("playwright.sync_api")
    server, keys = site_served
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(server.url + "/sign-in")
            page.fill("#key", keys["viewer_key"])
            page.keyboard.press("Enter")
            page.wait_for_selector("table.portfolio")

            def completion() -> str:
                return page.inner_text("tr[data-moment=pay] td[data-column=completion_rate]")

            assert completion().startswith("60.0%")
            page.select_option("select[name=channel]", "app")  # the app: 1 of 5 completes
            page.click("form.filters button[type=submit]")
            page.wait_for_url("**/?*channel=app*")
            assert completion().startswith("20.0%")
            page.reload()
            assert page.input_value("select[name=channel]") == "app" and completion().startswith("20.0%")
            page.fill("input[name=until]", "2026-11-02")  # before any attempt: none left
            page.click("form.filters button[type=submit]")
            page.wait_for_url("**until=2026-11-02*")
            assert completion() == "—"
            assert page.inner_text("tr[data-moment=pay] td[data-column=attempts]") == "0"
            page.fill("input[name=until]", "")
            page.fill("input[name=where]", "nothing=here")  # no start event has it
            page.click("form.filters button[type=submit]")
            page.wait_for_url("**where=nothing*")
            assert page.input_value("input[name=where]") == "nothing=here"
            page.fill("input[name=where]", "")
            page.click("form.filters button[type=submit]")
            page.wait_for_selector("tr[data-moment=pay]")
            # The filters go along to a moment page and stay in its form and its numbers.
            page.click("tr[data-moment=pay] a")
            page.wait_for_url("**/moments/pay?*channel=app*")
            assert page.input_value("select[name=channel]") == "app"
            steps = page.locator("[data-analysis=funnel][data-view=steps] td[data-column=count]")
            assert steps.all_inner_texts() == ["5", "1"]
            page.reload()
            assert page.locator("[data-analysis=funnel][data-view=steps] td[data-column=count]"
                                ).all_inner_texts() == ["5", "1"]
        finally:
            browser.close()


AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"


def test_in_chromium_every_page_is_accessible_and_reachable_by_keyboard(site_served):
    """Every page: no console error, no serious or critical axe-core violation (WCAG 2 A and
    AA rules), a screenshot; on the portfolio, Tab reaches the filters, each moment's link
    and the sign-out button."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); browsers are never downloaded")
    sync_api = pytest.importorskip("playwright.sync_api")
    server, keys = site_served
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    axe = AXE.read_text(encoding="utf-8")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            # axe is injected by the test (bypassing the page's CSP for that alone).
            context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
            page = context.new_page()
            problems: list[str] = []
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.goto(server.url + "/sign-in")
            page.fill("#key", keys["viewer_key"])
            page.click("button[type=submit]")
            page.wait_for_selector("table.portfolio")
            # Keyboard: Tab through the page, noting what takes the focus.
            reached = set()
            for _ in range(40):
                page.keyboard.press("Tab")
                reached.add(page.evaluate("document.activeElement.name || (document.activeElement"
                                          ".textContent || '').trim() || document.activeElement.tagName"))
            assert {"Apply", "Sign out", "pay", "chat", "channel"} <= reached, reached
            failed = page.evaluate("() => fetch('/moments/pay/attempts?outcome=failed').then(r => r.text())")
            first = re.findall(r'href="(/attempts/[^"]+)"', failed)[0]
            pages = (("portfolio", "/"), ("journeys", "/journeys"), ("data-quality", "/data-quality"),
                     ("intents", "/intents"), ("experiments", "/experiments"),
                     ("review", "/review?week=2026-W45"),
                     ("moment", "/moments/pay"), ("attempts", "/moments/pay/attempts?outcome=failed"),
                     ("attempt", first), ("sign-in", "/sign-in"))
            for name, path in pages:
                page.goto(server.url + path)
                page.wait_for_load_state("networkidle")
                page.evaluate(axe)
                found = page.evaluate("() => axe.run(document, {runOnly: ['wcag2a', 'wcag2aa']})"
                                      ".then(r => r.violations.filter(v => ['serious', 'critical']"
                                      ".includes(v.impact)).map(v => v.id + ': ' + v.nodes.length))")
                assert found == [], (path, found)
                page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
            assert problems == []
        finally:
            browser.close()
