"""The analysis registry: every registered analysis is on every surface (CLI, Python,
HTTP with OpenAPI, report, conformance suite, docs) and the same label is the same
number on each; results are frozen, validated and encoded once."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shutil
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import microjourney as mj
from microjourney import workspace as ws_api
from microjourney.cli import app
from microjourney.demo.generate import generate
from microjourney.errors import QueryError, WorkspaceError
from microjourney.fmt import pct
from microjourney.jsonable import dumps, jsonable, records
from microjourney.registry import REGISTRY, Result, get
from microjourney.registry.filters import Filters
from microjourney.report import build_report
from microjourney.report.build import BESPOKE
from microjourney.server.app import create_app

from .helpers import ev, without_freshness
from .live_server import LiveServer, run_cli
from .test_attempts import SPEC

ROOT = Path(__file__).resolve().parents[1]


def test_every_analysis_is_on_every_surface(tmp_path):
    commands = {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands}
    commands |= {g.name for g in app.registered_groups}  # `experiment analyze NAME`
    mj.init(tmp_path / "ws").close()
    paths = create_app(tmp_path / "ws").openapi()["paths"]
    docs = (ROOT / "docs" / "analyses.md").read_text(encoding="utf-8")
    for a in REGISTRY:
        assert a.name in commands, f"{a.name}: no CLI command"
        route = paths.get(f"/v1/analyses/{a.name}", {}).get("get")
        assert route is not None, f"{a.name}: no HTTP route"
        public = {f.alias or k for k, f in a.params.model_fields.items()}
        assert {p["name"] for p in route.get("parameters", [])} == public, a.name
        assert f"## {a.name}\n" in docs, f"{a.name}: not in docs/analyses.md"
        for view in a.views:
            for column in view.columns:
                if column.kind == "rate":
                    assert "÷" in column.doc, f"{a.name}.{column.name}: a rate names its denominator"
    # The engines compare all but what reads the workspace's own store (tests/test_engines.py).
    assert {a.name for a in REGISTRY if not a.engines} == {"quarantine", "data-quality"}
    assert {a.name for a in REGISTRY if a.report} >= set(BESPOKE)


def test_docs_page_of_the_analyses_is_current():
    spec = importlib.util.spec_from_file_location("generate_analyses",
                                                  ROOT / "docs" / "generate_analyses.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    render = module.render
    assert (ROOT / "docs" / "analyses.md").read_text(encoding="utf-8") == render(), (
        "docs/analyses.md is stale: run `python docs/generate_analyses.py`")


def test_parameters_are_validated_with_the_option_named():
    with pytest.raises(QueryError, match="unknown funnel order 'sideways'; allowed: ordered, strict"):
        get("funnel").validate({"moment": "m", "order": "sideways"})
    with pytest.raises(QueryError, match="--since: 'last week' is not a date"):
        get("scorecard").validate({"since": "last week"})
    with pytest.raises(QueryError, match="--where: 'device' is not KEY=VALUE"):
        get("scorecard").validate({"where": ["device"]})
    with pytest.raises(QueryError, match="unknown channel 'fax'; channels: web"):
        get("scorecard").validate({"channel": "fax"})
    with pytest.raises(QueryError, match="scorecard has no parameter --colour"):
        get("scorecard").validate({"colour": "red"})
    with pytest.raises(QueryError, match="funnel needs --moment"):
        get("funnel").validate({})
    with pytest.raises(QueryError, match="week-on-week: --days: Input should be less than or equal to 91"):
        get("week-on-week").validate({"days": 365})
    with pytest.raises(QueryError, match="exactly one of --from STEP or --to STEP"):
        get("paths").validate({})
    with pytest.raises(QueryError, match="no analysis 'nope'; analyses: scorecard, funnel"):
        get("nope")
    assert get("paths").validate({"from": "a"}).model_dump(by_alias=True)["from"] == "a"


def test_one_json_encoding_for_every_engine_type():
    when = pd.Timestamp("2026-09-01 10:00", tz="UTC")
    got = jsonable({"d": Decimal("0.125"), "n": Decimal("12"), "i": np.int32(3),
                    "f": np.float64(0.5), "nan": np.nan, "nat": pd.NaT, "na": pd.NA,
                    "t": when, "arr": np.array([1, 2]), "inf": float("inf"),
                    "b": np.bool_(True), "nested": [(1, np.float32(0.25))]})
    assert got == {"d": 0.125, "n": 12, "i": 3, "f": 0.5, "nan": None, "nat": None, "na": None,
                   "t": "2026-09-01T10:00:00+00:00", "arr": [1, 2], "inf": None, "b": True,
                   "nested": [[1, 0.25]]}
    assert json.loads(dumps(got)) == got
    # A table is encoded column by column, with the values jsonable gives each one.
    df = pd.DataFrame({"i": np.array([1, 2, 3]), "f": [0.5, np.nan, np.inf], "b": [True, False, True],
                       "t": pd.to_datetime(["2026-01-01T10:00Z", None, "2026-01-02T00:00Z"], utc=True),
                       "o": [Decimal("1.5"), None, [1, np.int64(2)]], "s": ["a", None, "c"],
                       "ni": pd.array([1, None, 3], dtype="Int64"),
                       "nf": pd.array([1.5, None, 2.0], dtype="Float64"),
                       "ci": [[0.1, 0.2], None, np.array([0.3, np.nan])]})
    rows = records(df)
    assert rows == [jsonable(r) for r in df.to_dict("records")]
    assert rows[1] == {"i": 2, "f": None, "b": False, "t": None, "o": None, "s": None, "ni": None,
                       "nf": None, "ci": None}
    assert type(rows[2]["ci"][0]) is float and rows[2]["t"] == "2026-01-02T00:00:00+00:00"
    with pytest.raises(TypeError, match="no JSON form for a object"):
        jsonable(object())


def _hand_worked(make_ws):
    card = {"valid": True}
    mobile = {"device": "mobile"}
    return make_ws(SPEC, [
        # a (web, mobile): completes.  b (web, desktop): fails.  c (app, mobile): fails.
        ev("10:00:00", "open", "a", properties=mobile), ev("10:00:05", "loaded", "a"),
        ev("10:00:09", "card", "a", properties=card), ev("10:00:12", "ok", "a"),
        ev("10:00:00", "open", "b", properties={"device": "desktop"}),
        ev("10:00:09", "failed", "b"),
        ev("11:00:00", "open", "c", channel="app", properties=mobile),
        ev("11:00:05", "loaded", "c", channel="app"), ev("11:00:09", "failed", "c", channel="app"),
    ])


def test_common_filters_on_every_analysis_over_attempts(make_ws):
    ws = _hand_worked(make_ws)
    card = ws.analysis("scorecard", where=["device=mobile"]).table()
    assert (card.attempts[0], card.completed[0], card.failed[0]) == (2, 1, 1)
    web = ws.analysis("scorecard", channel="web", by="device").table()
    assert dict(zip(web.device, web.attempts, strict=True)) == {"desktop": 1, "mobile": 1}
    funnel = ws.analysis("funnel", moment="pay", where=["device=mobile"]).table()
    assert funnel["count"].tolist() == [2, 2, 1, 1]
    late = ws.analysis("series", moment="pay", since="2024-01-01T10:30:00").table()
    assert late.attempts.tolist() == [1] and late.failed.tolist() == [1]
    conf = ws.analysis("conformance", where=["device=desktop"])
    assert conf.table("moments").attempts.tolist() == [1]
    att = ws.analysis("attempts", moment="pay", channel="app").table()
    assert att.person.tolist() == ["c"]
    v = ws.analysis("variants", moment="pay", channel="app").table()
    assert v.variant.tolist() == ["open → loaded → failed"]
    # A moment's steps carry no properties: where keeps the attempts by their start event.
    v = ws.analysis("variants", moment="pay", where=["device=desktop"]).table()
    assert v.variant.tolist() == ["open → failed"]
    p = ws.analysis("paths", moment="pay", where=["device=mobile"], **{"from": "open"}).table()
    assert p.cases.sum() == 2
    pm = ws.analysis("process-map", where=["device=mobile"]).table("nodes")
    assert set(pm.name) == {"open"}  # all events: the events that have the value
    r = ws.analysis("scorecard", where=["device=mobile"], since="2024-01-01")
    assert r.meta["filters"] == {"since": "2024-01-01", "where": {"device": "mobile"}}
    assert r.meta["engine"] == "duckdb" and r.meta["as_of"].startswith("2024-01-01T11:00:09")
    assert r.warnings[0].code == "few-units" and "2 finished attempts" in r.warnings[0].message


def test_weekly_series_and_breakdown(make_ws):
    rows = []
    for day, who, outcome in (("2024-01-01", "a", "ok"), ("2024-01-03", "b", "failed"),
                              ("2024-01-08", "c", "ok"), ("2024-01-09", "d", "ok")):
        rows += [ev("10:00:00", "open", who, timestamp=f"{day}T10:00:00Z"),
                 ev("10:00:05", outcome, who, timestamp=f"{day}T10:00:05Z")]
    ws = make_ws(SPEC, rows)
    week = ws.analysis("series", moment="pay", every="week").table()
    # 2024-01-01 is a Monday: two ISO weeks.
    assert week.period.tolist() == ["2024-01-01", "2024-01-08"]
    assert week.attempts.tolist() == [2, 2] and week.completion_rate.tolist() == [0.5, 1.0]
    by = ws.analysis("series", moment="pay", every="week", by="outcome").table()
    assert set(zip(by.period, by.outcome, by.attempts, strict=True)) == {
        ("2024-01-01", "completed", 1), ("2024-01-01", "failed", 1),
        ("2024-01-08", "completed", 2)}


def test_a_result_round_trips_through_its_json(make_ws):
    ws = _hand_worked(make_ws)
    r = ws.analysis("frictions", examples=3)
    back = Result.from_dict(json.loads(dumps(r.to_dict())))
    assert back.analysis == "frictions" and list(back.tables) == list(r.tables)
    assert back.meta == json.loads(dumps(r.to_dict()))["meta"]
    for name, df in r.tables.items():
        assert list(back.tables[name].columns) == list(df.columns), name
        assert len(back.tables[name]) == len(df)
    with pytest.raises(Exception, match="cannot assign"):
        r.analysis = "x"  # type: ignore[misc]


def test_friction_examples_show_their_evidence_events_as_read(make_ws):
    rows = [ev("10:00:00", "open", "a"), ev("10:00:05", "loaded", "a"), ev("10:00:09", "failed", "a"),
            ev("10:01:00", "open", "a"), ev("10:01:40", "loaded", "a", channel="app"),
            ev("10:01:50", "failed", "a", channel="app")]
    ws = make_ws(SPEC, rows)
    examples = ws.analysis("frictions", moment="pay", examples=10).table("examples")
    assert len(examples) > 0
    events = ws.events().to_pandas().set_index("event_id")
    for r in examples.to_dict("records"):
        assert len(r["evidence_events"]) == len(r["evidence"]) > 0
        expected = sorted(r["evidence"], key=lambda i: (events.loc[i, "timestamp"], i))
        for shown, ident in zip(r["evidence_events"], expected, strict=True):
            e = events.loc[ident]
            stamp = e["timestamp"].tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S")
            assert shown == f"{e['event']} ({e['channel']}, {stamp})"
    shown = [x for r in examples.to_dict("records") for x in r["evidence_events"]]
    assert any("(app, 2024-01-01 10:01:" in x for x in shown), shown


def test_the_cli_fits_100_characters_and_wide_shows_all(make_ws):
    ws = _hand_worked(make_ws)
    root = ws.root
    ws.close()
    runner = CliRunner()
    narrow = runner.invoke(app, ["scorecard", "-w", str(root)], env={"COLUMNS": "200"}).output
    assert max(len(line) for line in narrow.splitlines()) <= 100
    assert "columns hidden to fit 100 characters" in narrow and "--wide shows all" in narrow
    wide = runner.invoke(app, ["scorecard", "--wide", "-w", str(root)], env={"COLUMNS": "200"})
    assert wide.exit_code == 0
    for label in ("repeat contact rate", "self-service rate", "p90 time", "SLA met"):
        assert label in wide.output
    assert "hidden" not in wide.output
    # The value is the same as the JSON's, formatted once.
    data = json.loads(runner.invoke(app, ["scorecard", "--json", "-w", str(root)]).output)
    row = data["tables"]["moments"][0]
    assert pct(row["failure_rate"]) in wide.output and row["failure_rate"] == 2 / 3


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's workspace and events, small: 1,500 persons; its derived tables built once
    (frictions too), so that each test's copy starts from them."""
    root = tmp_path_factory.mktemp("demo")
    files = generate(root, persons=1500)
    with mj.open(root) as ws:
        for f in files.event_files:
            ws.ingest(f)
        ws.refresh(frictions=True)
    return root


def test_same_label_same_number_in_cli_api_and_report(demo, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(demo, root)
    labels = {"completion": "completion_rate", "failure rate": "failure_rate",
              "abandonment rate": "abandonment_rate", "escalation rate": "escalation_rate"}
    cli = json.loads(run_cli("scorecard", "--json", "-w", str(root)))["tables"]["moments"]
    text = run_cli("scorecard", "--wide", "-w", str(root))
    with mj.open(root) as ws:
        page = build_report(ws, tmp_path / "report.html").read_text(encoding="utf-8")
        python = ws.analysis("scorecard").table()
    keys = ws_api.keys(root)
    with LiveServer(root) as server, server.client(keys.secret_key) as http:
        api = http.get("/v1/analyses/scorecard").json()["tables"]["moments"]
        served = json.loads(run_cli("scorecard", "--json", "-w", str(root)))["tables"]["moments"]
    assert api == cli == served
    header = next(line for line in text.splitlines() if "moment" in line and "failure rate" in line)
    for label in labels:
        assert label in header
    for row, py in zip(cli, python.to_dict("records"), strict=True):
        line = next(x for x in text.splitlines() if re.search(rf"\b{row['moment']}\b", x))
        report_row = re.search(rf'<tr>.*?<span class="sub code">{row["moment"]}</span>.*?</tr>',
                               page).group(0)
        for label, col in labels.items():
            value = row[col]
            assert value is None or math.isclose(value, py[col]), (row["moment"], label)
            if value is not None:
                assert pct(value) in line, (row["moment"], label, line)
                assert pct(value) in report_row, (row["moment"], label)
    for label in ("Failure rate", "Abandonment rate", "Escalation rate"):
        assert f">{label}</th>" in page


def test_the_report_shows_each_analysis_it_declares(demo, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(demo, root)
    with mj.open(root) as ws:
        page = build_report(ws, tmp_path / "r.html", channel="web").read_text(encoding="utf-8")
    for a in REGISTRY:
        if a.report and a.name not in BESPOKE:
            assert f'data-analysis="{a.name}"' in page, a.name
    assert "filters: channel web" in page
    # The command line's report takes the same filters, and says what is wrong with one.
    runner = CliRunner()
    done = runner.invoke(app, ["report", "--where", "device=mobile", "-o", str(tmp_path / "m.html"),
                               "-w", str(root)])
    assert done.exit_code == 0, done.output
    assert "filters: device=mobile" in (tmp_path / "m.html").read_text(encoding="utf-8")
    bad = runner.invoke(app, ["report", "--since", "yesterday", "-w", str(root)])
    assert isinstance(bad.exception, QueryError) and "report: --since: 'yesterday'" in str(bad.exception)


def test_analyses_work_while_serving(demo, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(demo, root)
    alone = json.loads(run_cli("funnel", "card_payment", "--json", "-w", str(root)))
    with LiveServer(root):
        assert (root / ".microjourney" / "server.json").is_file()
        served = json.loads(run_cli("funnel", "card_payment", "--json", "-w", str(root)))
        text = run_cli("conformance", "card_payment", "-w", str(root))
        bad = CliRunner().invoke(app, ["funnel", "nope", "-w", str(root)])
        quarantined = json.loads(run_cli("quarantine", "--json", "-w", str(root)))["meta"]["total"]
        cleared = json.loads(run_cli("quarantine", "--clear", "--json", "-w", str(root)))
        served_person = json.loads(run_cli("attempts", "card_payment", "--limit", "1",
                                                    "--json", "-w", str(root)))
        person = served_person["tables"]["attempts"][0]["person"]
        forgotten = json.loads(run_cli("forget", person, "--json", "-w", str(root)))
        refused = CliRunner().invoke(app, ["ingest", str(root / "microjourney.yaml"), "-w", str(root)])
    # The same numbers; only how fresh the tables read were differs (served: the last
    # background refresh's).
    assert without_freshness(served) == without_freshness(alone)
    assert alone["meta"]["stale_s"] == 0 and 0 <= served["meta"]["stale_s"] < 60
    assert quarantined > 0 and cleared == {"removed": quarantined, "source": None}
    assert forgotten["counts"]["events"] > 0
    assert isinstance(refused.exception, WorkspaceError)
    assert refused.exception.code == "workspace/served" and "POST /v1/batch" in str(refused.exception)
    assert "Conformance to the designed step order" in text
    assert bad.exit_code != 0 and "no moment 'nope'" in str(bad.exception or bad.output)
    assert not (root / ".microjourney" / "server.json").exists()


def test_filters_model_is_shared():
    for a in REGISTRY:
        # attempt: one, by id; review: one ISO week of every channel, as the owners meet on it
        if a.name not in ("quarantine", "data-quality", "frictions", "attempt", "review"):
            assert issubclass(a.params, Filters), a.name


def test_no_analysis_request_gets_a_server_error(tmp_path):
    """schemathesis generates requests to every analysis route from the OpenAPI document
    (with the secret key) on a workspace with moments and events: none is answered 5xx, and
    each route answers 200 to some of them."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    root = tmp_path / "ws"
    mj.init(root).close()
    (root / "microjourney.yaml").write_text(SPEC + "experiments: [{name: e, moment: pay, variants: "
                                            "[{name: a}, {name: b}]}]\n", encoding="utf-8")
    with mj.open(root) as ws:
        from .helpers import write_events

        ws.ingest(write_events(tmp_path / "e.csv", [
            ev("10:00:00", "open", "a"), ev("10:00:05", "loaded", "a"), ev("10:00:09", "ok", "a"),
            ev("10:00:00", "open", "b"), ev("10:00:04", "failed", "b")]))
    secret = ws_api.keys(root).secret_key
    with LiveServer(root) as server:
        api = schemathesis.openapi.from_url(server.url + "/openapi.json")
        operations = [r.ok() for r in api.get_all_operations() if "/v1/analyses" in r.ok().path]
        assert len(operations) == len(REGISTRY) + 1
        answered: dict[str, set[int]] = {}

        def check(case) -> None:
            response = case.call(base_url=server.url, headers={"Authorization": f"Bearer {secret}"})
            answered.setdefault(case.operation.path, set()).add(response.status_code)
            assert response.status_code < 500, f"{case.operation.path}: {response.text}"

        budget = settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck),
                          database=None)
        for op in operations:
            budget(given(case=op.as_strategy())(check))()
        with server.client(secret) as http:
            for a in REGISTRY:  # the defaults (a moment where one is needed) answer 200
                need = {k for k, f in a.params.model_fields.items() if f.is_required()}
                query = {"moment": "pay"} if "moment" in need else {}
                if a.name == "paths":
                    query = {"from": "open"}
                if a.name == "experiment":
                    query = {"experiment": "e"}
                if a.name == "attempt":  # one attempt, by an id the attempts analysis gives
                    listed = http.get("/v1/analyses/attempts", params={"moment": "pay"}).json()
                    query = {"id": listed["tables"]["attempts"][0]["attempt_id"]}
                r = http.get(f"/v1/analyses/{a.name}", params=query)
                assert r.status_code == 200, (a.name, r.text)
                answered[f"/v1/analyses/{a.name}"].add(200)
            nope = http.get("/v1/analyses/nope")
            assert nope.status_code == 404 and nope.json()["error"]["code"] == "query/analysis"
            bad = http.get("/v1/analyses/funnel", params={"moment": "nope"})
            assert bad.status_code == 404 and bad.json()["error"]["code"] == "query/moment"
            # A bad value is the error the CLI gives, naming the option.
            order = http.get("/v1/analyses/funnel", params={"moment": "pay", "order": "up"})
            assert order.status_code == 400 and order.json()["error"] == {
                "code": "query/option",
                "message": "unknown funnel order 'up'; allowed: ordered, strict, unordered"}
            extra = http.get("/v1/analyses/scorecard", params={"colour": "red"})
            assert extra.status_code == 400 and "no parameter --colour" in extra.text
            two = http.get("/v1/analyses/scorecard", params=[("where", "device=x"), ("where", "a=b")])
            assert two.status_code == 200 and two.json()["meta"]["filters"]["where"] == {
                "device": "x", "a": "b"}
        with server.client(ws_api.keys(root).write_key) as http:
            assert http.get("/v1/analyses/scorecard").status_code == 403
    assert all(200 in codes for codes in answered.values() if codes), answered


def test_frictions_take_the_common_filters(demo, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(demo, root)
    with mj.open(root) as ws:
        every = ws.analysis("frictions", moment="card_payment", examples=5)
        same = ws.analysis("frictions", moment="card_payment", since="2000-01-01", examples=5)
        web = ws.analysis("frictions", moment="card_payment", channel="web")
        n_web = ws.analysis("scorecard", channel="web").table().set_index("moment")
    # A filter that keeps every attempt counts again from the kept rows: the same numbers.
    for name in ("moments", "kinds", "examples"):
        pd.testing.assert_frame_equal(every.table(name), same.table(name), check_dtype=False)
    assert web.table("moments").attempts[0] == n_web.loc["card_payment", "attempts"]
    assert web.table("moments").attempts[0] < every.table("moments").attempts[0]
    assert web.meta["filters"] == {"channel": "web"}


def test_the_funnel_analysis_honours_a_steps_own_window(make_ws):
    spec = SPEC.replace("          - {event: loaded}\n", "          - {event: loaded, within: 4s}\n")
    ws = make_ws(spec, [
        ev("10:00:00", "open", "a"), ev("10:00:03", "loaded", "a"), ev("10:00:09", "ok", "a"),
        ev("10:00:00", "open", "b"), ev("10:00:05", "loaded", "b"), ev("10:00:09", "ok", "b"),
    ])
    for order in ("ordered", "strict"):
        steps = ws.analysis("funnel", moment="pay", order=order).table()
        # b's step came 5 s after the start: past its own 4 s window.
        assert steps["count"].tolist()[:2] == [2, 1], order
        assert steps["within_s"].tolist()[1] == 4.0
    # Unordered, a try may begin at any step (docs/workspace.md): b's from `loaded` reaches two.
    steps = ws.analysis("funnel", moment="pay", order="unordered").table()
    assert steps["count"].tolist()[:2] == [2, 2]


def test_several_fail_events_keep_their_own_names(make_ws):
    spec = SPEC.replace("        fail: {event: failed}\n",
                        "        fail: {event: [failed, declined]}\n")
    ws = make_ws(spec, [
        ev("10:00:00", "open", "a"), ev("10:00:05", "failed", "a"),
        ev("10:00:00", "open", "b"), ev("10:00:05", "declined", "b"),
    ])
    v = ws.analysis("variants", moment="pay").table()
    assert set(v.variant) == {"open → failed", "open → declined"}
    nodes = set(ws.analysis("process-map", moment="pay").table("nodes").name)
    assert nodes == {"open", "failed", "declined"}
    named = make_ws(spec.replace("{event: [failed, declined]}",
                                 "{event: [failed, declined], name: payment_failed}"),
                    [ev("10:00:00", "open", "c"), ev("10:00:05", "declined", "c")], name="named")
    assert named.analysis("variants", moment="pay").table().variant.tolist() == ["open → payment_failed"]


def test_the_end_of_the_data_follows_an_ingest(make_ws, tmp_path):
    from .helpers import write_events

    ws = make_ws(SPEC, [ev("10:00:00", "open", "a")])
    assert ws.analysis("scorecard").meta["as_of"].startswith("2024-01-01T10:00:00")
    ws.ingest(write_events(tmp_path / "later.csv", [ev("11:30:00", "open", "b")]))
    assert ws.analysis("scorecard").meta["as_of"].startswith("2024-01-01T11:30:00")
