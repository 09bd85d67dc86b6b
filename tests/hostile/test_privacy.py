"""Hostile edges of privacy, with the real commands in subprocesses and the real DuckDB file:

* every file holding events or keys is created 0600 in folders 0700, whatever the umask,
  and a world-readable left-over next to the keys never lends them its mode;
* erasure finds a person's ids however they are padded (spaces, tabs, newlines) and their
  e-mail in any case, in every table of ``ERASABLE``;
* a command waits, bounded, for a store another process holds, then says who holds it.

Every subprocess has a wall-clock bound several times what it needs on a loaded machine.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import httpx
import pytest

import microjourney as mj
from microjourney.store.erasure import ERASABLE

from ..helpers import T0, track

MJ = [sys.executable, "-m", "microjourney"]
#: A command's bound: a few seconds here, far more on a loaded 2-core machine.
COMMAND_S = 120


def run(*args: str, umask: int = 0o022, env: dict[str, str] | None = None,
        ok: bool = True) -> subprocess.CompletedProcess[str]:
    """``microjourney ARGS`` in a subprocess with ``umask``."""
    done = subprocess.run([*MJ, *args], capture_output=True, text=True, timeout=COMMAND_S,
                          umask=umask, env=None if env is None else {**os.environ, **env})
    if ok:
        assert done.returncode == 0, f"microjourney {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def modes(*roots: Path) -> dict[Path, int]:
    """Every file and folder under ``roots`` (the roots too) with its permission bits."""
    found = {}
    for root in roots:
        for path in [root, *root.rglob("*")]:
            found[path] = stat.S_IMODE(path.lstat().st_mode)
    return found


def wider(found: dict[Path, int], *, skip: tuple[Path, ...] = ()) -> dict[str, str]:
    """The paths whose mode is not 0600 (files) or 0700 (folders)."""
    return {str(p): oct(m) for p, m in found.items()
            if p not in skip and m != (0o700 if p.is_dir() else 0o600)}


def serve(root: Path, *args: str, umask: int) -> tuple[subprocess.Popen[str], str]:
    """``microjourney serve`` on 127.0.0.1 (any free port) with ``umask``; its process and URL."""
    proc = subprocess.Popen([*MJ, "serve", "-w", str(root), "--host", "127.0.0.1", "--port", "0",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            umask=umask)
    line = proc.stdout.readline()
    if "listening on " not in line:
        proc.kill()
        pytest.fail(f"the server did not start: {line!r}")
    return proc, line.split()[-1]


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stdout.close()


# -- files created private -------------------------------------------------------------

@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask-022", "umask-000"])
def test_commands_create_every_file_holding_events_or_keys_private(tmp_path, umask):
    root, lake = tmp_path / "ws", tmp_path / "lake"
    run("init", str(root), umask=umask)
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(r) for r in [
        {"event": "a", "timestamp": "2024-01-01T10:00:00Z", "user_id": "u1", "channel": "web"},
        {"event": "b", "timestamp": "2024-01-02T10:00:00Z", "user_id": "u2", "channel": "fax"},
    ]) + "\n", encoding="utf-8")
    run("ingest", str(events), "-w", str(root), umask=umask)
    # A left-over temporary file anyone may read (a crash, another user) beside the keys.
    store_dir = root / ".microjourney"
    planted = store_dir / "keys.json.tmp"
    planted.write_text("{}", encoding="utf-8")
    os.chmod(planted, 0o644)
    first = json.loads(run("keys", "-w", str(root), "--json", umask=umask).stdout)
    rotated = json.loads(run("keys", "rotate", "-w", str(root), "--json", umask=umask).stdout)
    assert rotated != first and json.loads((store_dir / "keys.json").read_bytes()) == rotated
    run("export", "--lake", str(lake), "-w", str(root), umask=umask)

    found = modes(store_dir, lake)
    names = {p.name for p in found}
    assert {"store.duckdb", "keys.json"} <= names and any(n.endswith(".parquet") for n in names)
    assert wider(found, skip=(planted,)) == {}
    assert found[planted] == 0o644  # never used, so never the keys' mode


def test_a_store_and_keys_made_wider_by_an_earlier_version_are_narrowed(tmp_path):
    root = tmp_path / "ws"
    mj.init(root).close()
    mj.workspace.keys(root)
    store_dir = root / ".microjourney"
    for path, mode in ((store_dir, 0o755), (store_dir / "store.duckdb", 0o644),
                       (store_dir / "keys.json", 0o644)):
        os.chmod(path, mode)
    run("keys", "-w", str(root))
    run("check", "-w", str(root))
    assert wider(modes(store_dir)) == {}


@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask-022", "umask-000"])
def test_the_collector_journal_and_lake_appends_are_private(tmp_path, umask):
    """``serve`` journals plain events in the store's folder; ``serve --lake`` appends Parquet
    files to the lake. Both, looked at while the server runs, hold nothing wider."""
    root, lake = tmp_path / "ws", tmp_path / "lake"
    mj.init(root).close()
    write_key = mj.workspace.keys(root).write_key
    headers = {"Authorization": f"Bearer {write_key}"}
    store_dir = root / ".microjourney"
    proc, url = serve(root, umask=umask)
    try:
        answer = httpx.post(f"{url}/v1/batch", json={"batch": [track(i) for i in range(20)]},
                            headers=headers, timeout=30)
        assert answer.status_code == 200 and answer.json()["accepted"] == 20
        found = modes(store_dir)
    finally:
        stop(proc)
    assert any(p.parent.name == "journal" for p in found), sorted(map(str, found))
    # DuckDB makes its write-ahead log again after each checkpoint, with the process's umask,
    # which the server narrows to 077.
    assert wider(found) == {}
    assert wider(modes(store_dir)) == {}  # after the server: no wider log left

    proc, url = serve(root, "--lake", str(lake), umask=umask)
    try:
        batch = [track(i, event_id=f"lake-{i}", timestamp=f"{T0}.{i:03d}Z") for i in range(5)]
        answer = httpx.post(f"{url}/v1/batch", json={"batch": batch}, headers=headers, timeout=30)
        assert answer.status_code == 200 and answer.json()["accepted"] == 5
    finally:
        stop(proc)
    found = modes(lake)
    assert any(p.suffix == ".parquet" for p in found)
    assert wider(found) == {}


# -- erasure finds every spelling of an id ---------------------------------------------

ANN_SPELLINGS = ("u-42", " u-42 ", "\tu-42", "u-42\n", "u-42\t ")


def test_erasure_finds_ids_padded_with_blanks_and_emails_in_any_case(tmp_path):
    root = tmp_path / "ws"
    mj.init(root).close()
    spec = root / "microjourney.yaml"
    spec.write_text(spec.read_text(encoding="utf-8") + "identity:\n  keys: [email]\n", encoding="utf-8")
    rows = [{"event": "login", "timestamp": f"2024-01-01T10:0{i}:00Z", "user_id": uid, "channel": "web"}
            for i, uid in enumerate(ANN_SPELLINGS)]
    rows += [
        {"event": "browse", "timestamp": "2024-01-01T09:00:00Z", "anonymous_id": " a-9\t",
         "channel": "web", "context": {"traits": {"email": " ANN@Example.org"}}},
        {"event": "other", "timestamp": "2024-01-01T11:00:00Z", "user_id": "u-7", "channel": "web"},
        # Quarantined: a padded id in a bad row, and one in a line that is not JSON at all.
        {"event": "bad", "timestamp": "2024-01-01T12:00:00Z", "user_id": "\tu-42 ", "channel": "fax"},
    ]
    lines = [json.dumps(r) for r in rows] + ['{"user_id": "  u-42\\t", "event": broken']
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n", encoding="utf-8")
    at = datetime(2024, 1, 1, 13, tzinfo=UTC)
    with mj.open(root) as ws:
        result = ws.ingest(events)
        assert (result.accepted, result.rejected) == (7, 2)
        ws.write_identities([
            {"call_id": "c1", "kind": "identify", "anonymous_id": "a-9 ", "user_id": "\tu-42",
             "traits": {"email": "ann@EXAMPLE.org\t"}, "timestamp": at},
            {"call_id": "c2", "kind": "alias", "previous_id": " u-old", "user_id": "u-42 ",
             "timestamp": at},
            {"call_id": "c3", "kind": "identify", "anonymous_id": "a-7", "user_id": "u-7",
             "timestamp": at},
        ])
        persons = ws.persons().to_pyarrow().to_pylist()
        assert {r["person"] for r in persons if r["identifier"].strip() in ("u-42", "a-9", "u-old")} \
            == {"u-42"}
    done = run("forget", "u-42", "-w", str(root), "--json")
    assert json.loads(done.stdout)["counts"] == {"events": 6, "identities": 2, "quarantine": 2}

    con = duckdb.connect(str(root / ".microjourney" / "store.duckdb"), read_only=True)
    try:
        for table in ERASABLE:
            text = "\n".join(str(r) for r in con.sql(
                f'SELECT CAST(COLUMNS(*) AS VARCHAR) FROM "{table}"').fetchall()).lower()
            for trace in ("u-42", "a-9", "u-old", "ann@example.org"):
                assert trace not in text, (table, trace)
        assert con.sql("SELECT user_id FROM events").fetchall() == [("u-7",)]
        assert con.sql("SELECT call_id FROM identities").fetchall() == [("c3",)]
    finally:
        con.close()


# -- the workspace lock ------------------------------------------------------------------

HOLD = """
import sys, time
import microjourney as mj
ws = mj.open(sys.argv[1])
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
ws.close()
"""


def hold(root: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process holding the workspace's store for ``seconds``, once it says so."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(root), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "holding"
    return proc


def test_a_command_waits_for_the_store_then_runs(tmp_path):
    root = tmp_path / "ws"
    mj.init(root).close()
    holder = hold(root, 2.0)
    try:
        started = time.monotonic()
        done = run("check", "-w", str(root), env={"MICROJOURNEY_LOCK_WAIT": "60"})
        took = time.monotonic() - started
    finally:
        holder.wait(COMMAND_S)
        holder.stdout.close()
    assert "ok: 0 journeys" in done.stdout
    assert took >= 1.0  # it did wait for the other process
    assert took < 60  # and went on once it was free, before its limit


def test_a_command_gives_up_after_the_wait_naming_the_server_that_holds_the_store(tmp_path):
    root = tmp_path / "ws"
    mj.init(root).close()
    server, _ = serve(root, umask=0o022)
    try:
        started = time.monotonic()
        done = run("check", "-w", str(root), env={"MICROJOURNEY_LOCK_WAIT": "1.5"}, ok=False)
        took = time.monotonic() - started
    finally:
        stop(server)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "error [workspace/locked]" in done.stderr
    message = " ".join(done.stderr.split())
    assert f"held by process {server.pid}" in message and "waited 1.5 s" in message
    assert "it is a server" in message and "HTTP API" in message
    assert 1.5 <= took < 1.5 + COMMAND_S / 2


def test_a_process_that_is_not_a_server_is_named_too_and_a_bad_wait_is_refused(tmp_path):
    root = tmp_path / "ws"
    mj.init(root).close()
    holder = hold(root, 60.0)
    try:
        done = run("check", "-w", str(root), env={"MICROJOURNEY_LOCK_WAIT": "0"}, ok=False)
        bad = run("check", "-w", str(root), env={"MICROJOURNEY_LOCK_WAIT": "soon"}, ok=False)
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    message = " ".join(done.stderr.split())
    assert done.returncode == 2 and f"held by process {holder.pid}" in message
    assert "wait for that command to finish" in message and "Traceback" not in done.stderr
    assert bad.returncode == 2 and "MICROJOURNEY_LOCK_WAIT='soon'" in bad.stderr
