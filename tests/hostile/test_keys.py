"""Hostile property keys through every place a key reaches SQL, on a real workspace.

Keys that look like SQL or JSON paths, or hold quotes, backslashes, newlines or
unicode, must select exactly the right rows (a key with a quote can be matched and
broken down by), or be refused with an error naming the key — never a DuckDB parser
error or a traceback. Places: a moment's ``where:``, ``scorecard --by``, friction
settings naming properties, identity keys, ``privacy.scrub_except``, and Spark's
``json_extract_string``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import microjourney as mj
from microjourney.cli import app
from microjourney.engine.backend import json_path

#: Keys real data uses (XES, CSV headers) and keys built to break SQL or JSON paths.
KEYS = [
    "org:resource", "case:concept:name", "lifecycle:transition", "Accepted-Wait - User",
    "it's", 'say "hi"', "back\\slash", "semi;colon", "two--dashes", "$dollar", "paren)",
    "new\nline", "ünïcødé ✓", "$.a[0]", "*", "a/b~c", "device') ; DROP TABLE events; --",
    "\\\"'", "",
]

T0 = "2024-01-01T10:00:{:02d}+00:00"


def event(i: int, t: int, name: str, user: str, props: dict | None = None, **extra: object) -> dict:
    row = {"event_id": f"e{i}", "timestamp": T0.format(t), "event": name, "user_id": user,
           "channel": "web", **extra}
    if props is not None:
        row["properties"] = props
    return row


def workspace(root: Path, spec: dict, rows: list[dict]) -> mj.Workspace:
    """A workspace from a spec (written as JSON, which is YAML) and JSON Lines rows."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "microjourney.yaml").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    path = root / "events.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ws = mj.open(root)
    result = ws.ingest(path)
    assert result.accepted == len(rows), result
    return ws


def moment(name: str, step: dict) -> dict:
    return {"name": name, "start": {"event": "a"}, "steps": [step], "complete": {"event": "c"}}


def test_json_path_names_every_key_on_duckdb():
    import duckdb

    con = duckdb.connect()
    for key in KEYS:
        doc = json.dumps({key: "v", "other": "w"})
        got = con.execute("SELECT json_extract_string(CAST(? AS JSON), ?)", [doc, json_path(key)])
        assert got.fetchall() == [("v",)], key


def test_where_matches_keys_with_quotes_and_sql(tmp_path):
    # One moment per key; the step matches when the key holds "yes". Person u1 has it,
    # u2 has "no" under the same key, u3 has "yes" under a different key ("other").
    moments, rows = [], []
    for i, key in enumerate(KEYS):
        moments.append(moment(f"m{i}", {"event": f"b{i}", "where": {key: "yes"}}))
    moments.append(moment("control", {"event": "b0", "where": {"other": "yes"}}))
    spec = {"journeys": [{"name": "j", "moments": moments}]}
    n = 0
    for user, value in (("u1", "yes"), ("u2", "no"), ("u3", None)):
        rows.append(event(n, 0, "a", user))
        n += 1
        for i, key in enumerate(KEYS):
            props = {key: value} if value else {"other": "yes"}
            rows.append(event(n, 1 + i % 50, f"b{i}", user, props))
            n += 1
        rows.append(event(n, 55, "c", user))
        n += 1
    ws = workspace(tmp_path / "ws", spec, rows)
    for i, key in enumerate(KEYS):
        counts = list(ws.funnel(f"m{i}").to_pandas()["count"])
        assert counts == [3, 1, 1], (key, counts)
    assert list(ws.funnel("control").to_pandas()["count"]) == [3, 1, 1]
    ws.close()


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "microjourney", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_scorecard_by_any_key_on_the_command_line(tmp_path):
    spec = {"journeys": [{"name": "j", "moments": [moment("m", {"event": "b"})]}]}
    rows, n = [], 0
    for user, value in (("u1", "phone"), ("u2", "desk'top"), ("u3", "phone")):
        rows.append(event(n, 0, "a", user, {key: value for key in KEYS}))
        rows.append(event(n + 1, 5, "c", user))
        n += 2
    root = tmp_path / "ws"
    workspace(root, spec, rows).close()
    # The command in-process for every key (no start-up per key), and as a real process for
    # the key built to inject SQL.
    runner = CliRunner()
    for key in KEYS:
        if not key:
            continue  # an empty --by means no breakdown
        out = runner.invoke(app, ["scorecard", "--by", key, "--json", "-w", str(root)])
        assert out.exit_code == 0 and out.exception is None, (key, out.output)
        got = {row[key]: row["attempts"] for row in json.loads(out.stdout)["tables"]["moments"]}
        assert got == {"phone": 2, "desk'top": 1}, (key, got)
    injection = "device') ; DROP TABLE events; --"
    out = run_cli("scorecard", "--by", injection, "--json", "-w", str(root), cwd=tmp_path)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    rows = json.loads(out.stdout)["tables"]["moments"]
    assert {row[injection]: row["attempts"] for row in rows} == {"phone": 2, "desk'top": 1}
    taken = run_cli("scorecard", "--by", "moment", "-w", str(root), cwd=tmp_path)
    assert taken.returncode != 0 and "Traceback" not in taken.stderr
    assert "--by 'moment'" in taken.stdout + taken.stderr


def test_friction_settings_naming_any_key(tmp_path):
    # error_shown: an event whose property `key` is false is an error. Each person has
    # it under one key only; the last person under a key the settings do not name.
    spec = {"journeys": [{"name": "j", "moments": [moment("m", {"event": "b"})]}],
            "frictions": {"error_shown": {"invalid": {key: False for key in KEYS}}}}
    rows, n = [], 0
    for i, key in enumerate([*KEYS, "unnamed"]):
        user = f"u{i}"
        rows += [event(n, 0, "a", user), event(n + 1, 2, "b", user, {key: False}),
                 event(n + 2, 4, "c", user)]
        n += 3
    ws = workspace(tmp_path / "ws", spec, rows)
    hit = ws.frictions("m", kind="error_shown").to_pandas()
    persons = set(ws.attempts("m").to_pandas().set_index("attempt_id").loc[hit["attempt_id"], "person"])
    assert persons == {f"u{i}" for i in range(len(KEYS))}
    ws.close()


def test_identity_keys(tmp_path):
    # Any key joins two anonymous visitors sharing a value (quotes, backslashes, SQL...).
    plain = [k for k in KEYS if k]
    spec = {"identity": {"keys": plain},
            "journeys": [{"name": "j", "moments": [moment("m", {"event": "b"})]}]}
    rows = []
    for i, key in enumerate(plain):
        for k, anon in enumerate((f"x{i}", f"y{i}")):
            rows.append({"event_id": f"e{i}_{k}", "timestamp": T0.format(k), "event": "a",
                         "anonymous_id": anon, "channel": "web",
                         "context": {"traits": {key: f"value {i}"}}})
    ws = workspace(tmp_path / "ok", spec, rows)
    people = ws.events().to_pandas().groupby("anonymous_id")["person"].first()
    for i in range(len(plain)):
        assert people[f"x{i}"] == people[f"y{i}"], plain[i]
    assert people.nunique() == len(plain)
    ws.close()


def test_scrub_except_paths_with_any_key(tmp_path):
    # A dot separates the keys of a path; any other character is part of a key.
    keys = [k for k in KEYS if k and "." not in k]
    spec = {"privacy": {"scrub_except": [f"properties.{k}" for k in keys]},
            "journeys": [{"name": "j", "moments": [moment("m", {"event": "b"})]}]}
    props = {**{k: "write to ann@example.com" for k in keys}, "free": "write to ann@example.com"}
    ws = workspace(tmp_path / "ws", spec, [event(0, 0, "a", "u1", props)])
    stored = ws.events().to_pandas()["properties"][0]
    stored = json.loads(stored) if isinstance(stored, str) else stored
    assert stored["free"] == "write to [email]"
    for key in keys:
        assert stored[key] == "write to ann@example.com", key
    ws.close()


@pytest.mark.slow
def test_spark_reads_every_key():
    pytest.importorskip("pyspark", reason="the spark extra is not installed")
    from microjourney.engine.spark import session

    spark = session()
    for key in KEYS:
        doc = json.dumps({key: "v", "other": "w", "n": 1.5})
        row = spark.sql("SELECT json_extract_string(:doc, :path) AS v, "
                        "json_extract_string(:doc, '/n') AS n",
                        args={"doc": doc, "path": json_path(key)}).collect()[0]
        assert (row.v, row.n) == ("v", "1.5"), key
