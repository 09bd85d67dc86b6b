"""The dashboard's test site: a small workspace served by the real server (two moments, a
markup-named owner and event), and helpers to sign in and read a page's cells."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx

from .live_server import LiveServer, make_workspace, run_cli

OWNER = "<script>alert(1)</script> payments"
EVIL_EVENT = "<img src=x onerror=alert(2)>"
JOURNEYS = ("[{name: payment, moments: [{name: pay, start: {event: open}, complete: {event: ok}, "
            "fail: {event: failed}, timeout: 10m, owner: '" + OWNER + "', "
            "phrases: [my card payment was declined], "
            "target: {metric: completion_rate, value: 0.9}}]}, "
            "{name: help, moments: [{name: chat, start: {event: chat_opened}, "
            "complete: {event: resolved}, timeout: 10m, owner: care, "
            "target: {metric: completion_rate, value: 0.5}}]}]")

#: Customer texts: card payments declined (pay's intent) and chat waits (no phrases).
TEXTS = ["my card was declined", "card payment declined again", "why is my card declined",
         "the shop declined my card", "card declined at checkout", "declined card payment",
         "waiting for a chat agent", "nobody answers the chat", "chat queue is too long",
         "still waiting in the chat", "chat agent never joined", "long wait for chat"]
SURVEYS = ("surveys: [{name: pay_csat, moment: pay, control: 10, questions: "
           "[{id: ease, type: csat, text: How easy was paying?}]}]\n"
           "experiments: [{name: copy, moment: pay, variants: [{name: a}, {name: b}]}]\n")


def site_events() -> list[dict]:
    rows, n = [], 0

    def add(person: str, event: str, second: int, channel: str, properties: dict | None = None) -> None:
        nonlocal n
        n += 1
        rows.append({"event_id": f"e{n}", "timestamp": f"2026-11-02T10:{second // 60:02d}:{second % 60:02d}Z",
                     "event": event, "anonymous_id": person, "channel": channel,
                     **({"properties": properties} if properties else {})})

    # pay: 5 on the web all complete; 5 in the app, 1 completes and 4 fail: 60% of 10
    # against 90% -> 3 attempts short. chat: 3 of 4 resolved, 75% against 50%: on target.
    for i in range(10):
        channel = "web" if i < 5 else "app"
        # An experiment on pay: p0-p2, p5 and p6 see variant a (4 of 5 complete), the
        # others b (2 of 5).
        add(f"p{i}", "experiment_exposure", i, channel,
            {"experiment": "copy", "variant": "a" if i in (0, 1, 2, 5, 6) else "b"})
        add(f"p{i}", "open", i, channel)
        if i == 0:  # an event whose name is markup, inside p0's attempt
            add("p0", EVIL_EVENT, 10, channel)
        add(f"p{i}", "ok" if i < 6 else "failed", i + 20, channel)
    # pay's survey: asked after p5's completion (5) and p6-p9's failures (2, 1, 2; p9
    # closes it): satisfied 1 of 4 answers in the app.
    for i, score in ((5, 5), (6, 2), (7, 1), (8, 2), (9, None)):
        display = {"survey": "pay_csat", "display": f"d{i}"}
        add(f"p{i}", "survey_shown", i + 22, "app", display)
        if score is None:
            add(f"p{i}", "survey_dismissed", i + 25, "app", display)
        else:
            add(f"p{i}", "survey_response", i + 25, "app",
                {**display, "question": "ease", "answer": score, "final": True})
    for i in range(4):
        add(f"c{i}", "chat_opened", 100 + i, "chat")
        if i < 3:
            add(f"c{i}", "resolved", 130 + i, "chat")
    return rows


def serve(tmp_path_factory: Any) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    """The site's workspace, ingested and served: (server, keys)."""
    root = tmp_path_factory.mktemp("dash") / "ws"
    keys = make_workspace(root, journeys=JOURNEYS)
    with (root / "microjourney.yaml").open("a", encoding="utf-8") as fh:
        fh.write(SURVEYS)
    events = root.parent / "events.jsonl"
    events.write_text("\n".join(json.dumps(e) for e in site_events()) + "\n", encoding="utf-8")
    run_cli("ingest", str(events), "-w", str(root))
    texts = root.parent / "texts.csv"
    texts.write_text("said\n" + "\n".join(TEXTS) + "\n", encoding="utf-8")
    run_cli("intents", str(texts), "--text", "said", "-w", str(root))
    with LiveServer(root) as server:
        yield server, keys


def browser(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30, follow_redirects=False)


def sign_in(c: httpx.Client, key: str, next_: str = "/") -> httpx.Response:
    form = c.get("/sign-in", params={"next": next_})
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None and form.status_code == 200
    return c.post("/sign-in", data={"csrf": token.group(1), "key": key, "next": next_})


def cells(page: str) -> dict[str, dict[str, str]]:
    """The portfolio's cells by moment and column, unescaped, in page order."""
    out: dict[str, dict[str, str]] = {}
    for moment, row in re.findall(r'<tr data-moment="([^"]+)">(.*?)</tr>', page, re.S):
        out[moment] = {c: html.unescape(v) for c, v in re.findall(r'data-column="([^"]+)">([^<]*)<', row)}
    return out


def panel_cells(page: str, analysis: str, view: str) -> list[str]:
    """The cells of one panel of a page (a view of a registered analysis), unescaped."""
    section = re.search(rf'data-analysis="{analysis}" data-view="{view}">(.*?)</section>', page, re.S)
    assert section is not None, (analysis, view)
    cells = re.findall(r'data-column="[^"]+">(.*?)</td>', section.group(1), re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", x)) for x in cells]  # a link's text is its cell
