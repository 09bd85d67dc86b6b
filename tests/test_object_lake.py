"""A Parquet lake on S3-compatible object storage (``s3://bucket/prefix``), against a real
S3 server: moto's, on a free 127.0.0.1 port.

Nothing leaves the loopback: every test runs with fake credentials, a region, the
endpoint set to the local server and the instance metadata lookup disabled.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest
from typer.testing import CliRunner

import microjourney as mj
from microjourney.cli import app
from microjourney.engine.runtime import ObjectLake
from microjourney.engine.spark import s3a_config, s3a_url
from microjourney.errors import LakeError, SpecError, WorkspaceError
from microjourney.store import append, export, read_events
from microjourney.store import lake as lake_module
from microjourney.store.lake import has_events, locate

from .helpers import PAYMENT_YAML, T0, rows, store_table, track, without_freshness, write_events

moto_server = pytest.importorskip("moto.server", reason="moto[server] is a test dependency")

ROOT = Path(__file__).resolve().parents[1]
KEY = "testing"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """moto's S3 server, on 127.0.0.1 only."""
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def aws(endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The AWS environment of every test (subprocesses inherit it): fake keys, a region, the
    local endpoint; no metadata lookups, no profiles or files from the machine."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    env = {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": KEY, "AWS_REGION": "us-east-1",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
           "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def s3(endpoint: str) -> pafs.S3FileSystem:
    """A direct client, to look at the bucket without the product's code."""
    return pafs.S3FileSystem(access_key=KEY, secret_key=KEY, region="us-east-1",
                             endpoint_override=endpoint.removeprefix("http://"), scheme="http",
                             allow_bucket_creation=True)


@pytest.fixture
def bucket(endpoint: str) -> str:
    name = f"mj-{uuid.uuid4().hex[:12]}"
    s3(endpoint).create_dir(name)
    return name


def objects(endpoint: str, prefix: str) -> list[str]:
    """The keys under ``prefix`` (bucket/...), relative to it."""
    infos = s3(endpoint).get_file_info(pafs.FileSelector(prefix, recursive=True, allow_not_found=True))
    return sorted(i.path[len(prefix) + 1:] for i in infos if i.type == pafs.FileType.File)


# -- export and reading back ---------------------------------------------------------

@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with seeded synthetic events (the benchmark generator): real frictions."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from generate import generate, workspace_yaml

    root = tmp_path_factory.mktemp("generated")
    (root / "microjourney.yaml").write_text(workspace_yaml(), encoding="utf-8")
    with mj.open(root) as ws:
        ws.ingest(generate(3_000, root / "events.parquet", seed=11))
    return root


def analyses(ws: mj.Workspace) -> dict[str, pd.DataFrame]:
    out = {"scorecard": ws.scorecard().to_pandas(), "frictions": ws.frictions().to_pandas()}
    for m in ws.moments:
        out[f"funnel {m}"] = ws.funnel(m).to_pandas()
    out["friction summary"] = ws.friction_summary()[0].to_pandas()
    return out


def same(a: pd.DataFrame, b: pd.DataFrame, what: str) -> None:
    def norm(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        for c in df.columns:
            if df[c].map(lambda v: isinstance(v, list | np.ndarray)).any():
                df[c] = df[c].map(lambda v: tuple(v) if v is not None else None)
        return df.sort_values(list(df.columns), kind="stable").reset_index(drop=True)

    pd.testing.assert_frame_equal(norm(a), norm(b), check_exact=False, rtol=1e-9, obj=what)


@pytest.mark.slow  # every analysis three times, frictions included (~15 s)
def test_export_to_s3_gives_the_same_analyses_as_the_store_and_a_folder(generated, tmp_path, bucket,
                                                                        endpoint):
    url = f"s3://{bucket}/lake"
    with mj.open(generated) as ws:
        to_s3 = ws.export_lake(url)
        to_folder = ws.export_lake(tmp_path / "lake")
        n = ws.con.execute("SELECT count(*) FROM events").fetchone()[0]
    assert to_s3.lake == url and to_s3["events"].rows == n == to_folder["events"].rows
    assert to_s3["events"].days == to_folder["events"].days > 1
    keys = objects(endpoint, f"{bucket}/lake")
    assert keys and all(k.startswith("events/day=") and "/part-" in k and k.endswith(".parquet")
                        for k in keys), keys  # nothing staged or marked is left

    with mj.open(generated) as store, mj.open(generated, lake=tmp_path / "lake") as folder, \
            mj.open(generated, lake=url) as over_s3:
        a, b, c = analyses(store), analyses(folder), analyses(over_s3)
        assert over_s3.events().count().execute() == n
    assert a["frictions"].shape[0] > 10 and a["scorecard"]["attempts"].sum() > 100  # a real workload
    for name in a:
        same(c[name], b[name], f"{name}: s3 lake vs folder lake")
        same(c[name], a[name], f"{name}: s3 lake vs store")


def test_read_events_over_s3_gives_the_store_rows_and_types(make_ws, bucket):
    ws = make_ws(rows=rows())
    url = f"s3://{bucket}/deep/prefix"
    result = export(ws.con, url)
    assert (result["events"].rows, result["events"].days, result["events"].files) == (4, 2, 2)
    rel = read_events(ws.con, url)
    assert [str(t) for t in rel.types] == [r[1] for r in ws.con.sql("DESCRIBE events").fetchall()]
    assert rel.order("seq").to_arrow_table().equals(store_table(ws.con))
    # Plain pyarrow reads the layout too (the day comes from the folder).
    fs = locate(url).fs
    table = ds.dataset(f"{bucket}/deep/prefix/events", filesystem=fs, partitioning="hive").to_table()
    assert sorted(set(table["day"].to_pylist())) == ["2024-01-01", "2024-01-02"]
    # A path that pathlib folded (s3:// to s3:/) is still the URL.
    assert locate(Path(url)).url == url and has_events(Path(url))


def test_reexport_to_s3_replaces_the_copy_without_doubles(make_ws, bucket, endpoint):
    ws = make_ws(rows=rows())
    url = f"s3://{bucket}/lake"
    export(ws.con, url)
    first = objects(endpoint, f"{bucket}/lake")
    extra = store_table(ws.con).set_column(0, "event_id", pa.array(["x1", "x2", "x3", "x4"]))
    written = append(url, extra)
    assert len(objects(endpoint, f"{bucket}/lake")) == len(first) + len(written) == len(first) + 2
    again = export(ws.con, url)
    assert again["events"].rows == 4
    now = objects(endpoint, f"{bucket}/lake")
    assert len(now) == len(first) and not set(now) & set(first)  # a new generation, the old one gone
    assert read_events(ws.con, url).order("seq").to_arrow_table().equals(store_table(ws.con))

    ws.con.execute("DELETE FROM events WHERE event = 'payment_succeeded'")
    third = export(ws.con, url)
    assert (third["events"].rows, third["events"].days) == (3, 1)
    assert not [k for k in objects(endpoint, f"{bucket}/lake") if "day=2024-01-02" in k]


class _CrashAfterOneCopy:
    """Stands in for the publish's thread pool: one copy done, then the process "dies"."""

    def __init__(self, *args: object) -> None:
        pass

    def __enter__(self) -> _CrashAfterOneCopy:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def map(self, fn, *iterables):  # noqa: ANN001, ANN201
        fn(*[it[0] for it in iterables])
        raise KeyboardInterrupt("crash in the middle of a publish")


def test_a_publish_that_crashed_is_read_whole_then_finished_by_the_next_export(make_ws, bucket, endpoint,
                                                                              monkeypatch):
    ws = make_ws(rows=rows())
    url = f"s3://{bucket}/lake"
    export(ws.con, url)
    ws.con.execute("DELETE FROM events WHERE event = 'payment_failed'")  # the new copy: 3 events
    with monkeypatch.context() as m:
        m.setattr(lake_module, "ThreadPoolExecutor", _CrashAfterOneCopy)
        with pytest.raises(KeyboardInterrupt):
            export(ws.con, url)
    keys = objects(endpoint, f"{bucket}/lake")
    assert ".events.publishing" in keys and any(k.startswith(".events.staging-") for k in keys)
    # Plain readers of events/ see old and new objects together (docs/lake.md says so): the old
    # copy, and the new copy's first object (day 2024-01-01, 2 events) ...
    plain = ds.dataset(f"{bucket}/lake/events", filesystem=locate(url).fs, partitioning="hive")
    assert plain.count_rows() == 4 + 2
    # ... this package's readers follow the marker to the staged copy: the new rows, once.
    assert read_events(ws.con, url).aggregate("count(*)").fetchall() == [(3,)]
    with mj.open(ws.root, lake=url) as over_s3:
        assert over_s3.events().count().execute() == 3
    export(ws.con, url)  # finishes the crashed publish first, then publishes its own copy
    keys = objects(endpoint, f"{bucket}/lake")
    assert all(k.startswith("events/") for k in keys) and len(keys) == 2
    assert read_events(ws.con, url).aggregate("count(*)").fetchall() == [(3,)]


def test_cli_export_and_read_over_s3(make_ws, bucket):
    ws = make_ws(rows=rows())
    ws.close()
    url = f"s3://{bucket}/lake"
    runner = CliRunner()
    res = runner.invoke(app, ["export", "--lake", url, "-w", str(ws.root), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == {"lake": url, "tables": [{"table": "events", "rows": 4, "days": 2,
                                                              "files": 2}]}
    res = runner.invoke(app, ["export", "--lake", url, "-w", str(ws.root)])
    assert f"events: 4 rows, 2 days, 2 files in {url}/events" in res.output
    store = runner.invoke(app, ["scorecard", "--json", "-w", str(ws.root)])
    over_s3 = runner.invoke(app, ["--lake", url, "scorecard", "--json", "-w", str(ws.root)])
    assert over_s3.exit_code == 0, over_s3.output
    assert without_freshness(json.loads(over_s3.output)) == without_freshness(json.loads(store.output))


def test_engine_lake_in_the_workspace_file_may_be_an_s3_url(make_ws, bucket, tmp_path):
    ws = make_ws(rows=rows())
    url = f"s3://{bucket}/lake"
    export(ws.con, url)
    ws.close()
    spec = ws.root / "microjourney.yaml"
    spec.write_text(PAYMENT_YAML + f"engine:\n  lake: {url}\n", encoding="utf-8")
    with mj.open(ws.root) as over_s3:  # not joined to the workspace folder
        assert over_s3.events().count().execute() == 4
    spec.write_text(PAYMENT_YAML + "engine:\n  lake: gs://bucket/lake\n", encoding="utf-8")
    with pytest.raises(SpecError) as exc:
        mj.open(ws.root)
    assert re.search(r"microjourney\.yaml:\d+:\d+: lake: 'gs://bucket/lake' is not", str(exc.value))


# -- the collector appending to s3 ---------------------------------------------------

def serve(root: Path, url: str, cwd: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "microjourney", "serve", "-w", str(root), "--port", "0",
                             "--lake", url], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline()
    if not line:
        proc.wait(60)
        raise AssertionError(f"the server did not start: {proc.stderr.read()}")
    return proc, line.split()[-1]


def stop(proc: subprocess.Popen, *, kill: bool = False) -> None:
    proc.kill() if kill else proc.terminate()
    proc.wait(60)
    proc.stdout.close()
    proc.stderr.close()


def test_serve_lake_on_s3_acknowledges_only_stored_objects_and_finds_retries(tmp_path, bucket, endpoint):
    root = tmp_path / "ws"
    mj.init(root).close()
    k = mj.workspace.keys(root)
    url = f"s3://{bucket}/lake"
    with mj.open(root) as ws:  # the lake starts with the store's (one) event
        ws.ingest(write_events(root / "one.csv", [{"event_id": "e0", "timestamp": f"{T0}Z",
                                                   "event": "payment_gateway_loaded", "user_id": "u0",
                                                   "channel": "web"}]))
        ws.export_lake(url)
    before = objects(endpoint, f"{bucket}/lake")
    first = [track(i) for i in range(1, 31)] + [track(99, channel="fax")]
    proc, base = serve(root, url, tmp_path)
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {k.write_key}"}) as c:
            a = c.post("/v1/batch", json={"batch": first}).json()
            # The answer came: the batch's object is in the bucket, whole, right now.
            new = [key for key in objects(endpoint, f"{bucket}/lake") if key not in before]
            assert len(new) == 1 and new[0].startswith("events/day=2026-11-02/append-"), new
            table = ds.dataset(f"{bucket}/lake/{new[0]}", filesystem=s3(endpoint)).to_table()
            assert sorted(table["event_id"].to_pylist()) == sorted(f"e{i}" for i in range(1, 31))
            admin = {"Authorization": f"Bearer {k.secret_key}"}
            # The API reads the objects appended since the server started.
            assert c.get("/v1/summary", headers=admin).json()["events"] == 31
            # Retries within the same server session are duplicates, not new events.
            b = c.post("/v1/batch", json={"batch": first[:10] + [track(0), track(40)]}).json()
            assert c.get("/v1/summary", headers=admin).json()["events"] == 32
    finally:
        stop(proc, kill=True)  # no graceful stop: what was acknowledged is already stored
    assert (a["accepted"], [r["field"] for r in a["rejected"]]) == (30, ["channel"])
    assert (b["accepted"], b["duplicates"]) == (1, 11)

    proc, base = serve(root, url, tmp_path)  # a new server finds every stored id again
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {k.write_key}"}) as c:
            again = c.post("/v1/batch", json={"batch": first[:30] + [track(41)]}).json()
    finally:
        stop(proc)
    assert (again["accepted"], again["duplicates"]) == (1, 30)
    with mj.open(root, lake=url) as ws:
        events = ws.events().to_pyarrow()
        assert sorted(events["event_id"].to_pylist()) == sorted(f"e{i}" for i in [*range(0, 31), 40, 41])
        assert sorted(events["seq"].to_pylist()) == list(range(1, 34))
        assert ws.con.execute("SELECT count(*) FROM events").fetchone()[0] == 1  # the store: as it was


# -- clear errors ----------------------------------------------------------------------

def test_bad_urls_and_settings_are_clear_errors(monkeypatch):
    for url in ("gs://bucket/lake", "s3://", "s3:///lake", "s3://Bad_Bucket/lake", "s3://bkt//x",
                "s3://bkt/../x", "s3://bkt/x?versionId=1"):
        with pytest.raises(LakeError) as exc:
            locate(url)
        assert exc.value.code == "lake/bad-url" and url in exc.value.message
    monkeypatch.setenv("AWS_ENDPOINT_URL", "127.0.0.1:9000")
    with pytest.raises(LakeError) as exc:
        locate("s3://bkt/lake")
    assert exc.value.code == "lake/bad-url" and "AWS_ENDPOINT_URL" in exc.value.message
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(LakeError) as exc:
        locate("s3://bkt/lake")
    assert exc.value.code == "lake/credentials" and "AWS_SECRET_ACCESS_KEY" in exc.value.message


def test_a_missing_bucket_is_a_clear_error_everywhere(make_ws, tmp_path):
    ws = make_ws(rows=rows())
    url = "s3://no-such-bucket/lake"
    calls = [lambda: export(ws.con, url), lambda: append(url, store_table(ws.con)),
             lambda: read_events(ws.con, url), lambda: has_events(url),
             lambda: mj.open(ws.root, lake=url)]
    for call in calls:
        with pytest.raises(LakeError) as exc:
            call()
        assert exc.value.code == "lake/no-bucket" and "no-such-bucket" in exc.value.message
    ws.close()
    for args in (["export", "--lake", url], ["--lake", url, "scorecard"]):
        done = subprocess.run([sys.executable, "-m", "microjourney", *args, "-w", str(ws.root)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and "[lake/no-bucket]" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "microjourney", "serve", "--port", "0", "--lake", url,
                           "-w", str(ws.root)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2 and "[lake/no-bucket]" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_an_empty_s3_lake_and_an_unreachable_store_are_clear_errors(make_ws, bucket, monkeypatch):
    ws = make_ws(rows=rows())
    url = f"s3://{bucket}/empty"
    with pytest.raises(LakeError) as exc:
        read_events(ws.con, url)
    assert exc.value.code == "lake/no-events"
    with pytest.raises(WorkspaceError) as exc:
        mj.open(ws.root, lake=url)
    assert exc.value.code == "workspace/lake" and "no lake at " + url in exc.value.message
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nobody listens there
    with pytest.raises(LakeError) as exc:
        export(ws.con, url)
    assert exc.value.code == "lake/unreachable" and "AWS_ENDPOINT_URL" in exc.value.message


def test_refused_credentials_are_a_clear_error(make_ws, bucket, endpoint, monkeypatch):
    ws = make_ws(rows=rows())
    url = f"s3://{bucket}/lake"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOTAKNOWNKEY")
    httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"0").raise_for_status()  # moto checks keys
    try:
        for call in (lambda: export(ws.con, url), lambda: append(url, store_table(ws.con)),
                     lambda: read_events(ws.con, url)):
            with pytest.raises(LakeError) as exc:
                call()
            assert exc.value.code == "lake/denied" and "AWS_ACCESS_KEY_ID" in exc.value.message
    finally:
        httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"inf").raise_for_status()


# -- spark over s3a --------------------------------------------------------------------

def test_spark_reads_s3_lakes_through_s3a_with_the_store_settings():
    lake = ObjectLake(url="s3://bkt/lake", events="bkt/lake/events", files=("bkt/lake/events/x",),
                      filesystem=None, s3={"endpoint": "http://127.0.0.1:9000", "region": "eu-west-1",
                                           "access_key": "ak", "secret_key": "sk"})
    assert s3a_url(lake) == "s3a://bkt/lake/events"
    assert s3a_config(lake.s3) == {
        "spark.hadoop.fs.s3a.endpoint": "http://127.0.0.1:9000",
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        "spark.hadoop.fs.s3a.endpoint.region": "eu-west-1",
        "spark.hadoop.fs.s3a.access.key": "ak", "spark.hadoop.fs.s3a.secret.key": "sk",
        "spark.hadoop.fs.s3a.aws.credentials.provider":
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"}
    temporary = s3a_config({"region": "eu-west-1", "access_key": "ak", "secret_key": "sk",
                            "session_token": "tok"})
    assert temporary["spark.hadoop.fs.s3a.session.token"] == "tok"
    provider = temporary["spark.hadoop.fs.s3a.aws.credentials.provider"]
    assert provider == "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider"
    assert "spark.hadoop.fs.s3a.endpoint" not in temporary  # AWS itself: the connector's default


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")
def test_spark_over_s3_without_the_s3a_connector_is_a_clear_error(make_ws, bucket):
    pytest.importorskip("pyspark", reason="the spark extra is not installed")
    if shutil.which("java") is None:
        pytest.skip("Java is not installed")
    ws = make_ws(rows=rows())
    url = f"s3://{bucket}/lake"
    export(ws.con, url)
    with pytest.raises(WorkspaceError) as exc:
        mj.open(ws.root, engine="spark", lake=url)
    assert exc.value.code == "workspace/spark-s3a"
    assert "org.apache.hadoop:hadoop-aws:" in exc.value.message and "spark.jars.packages" in exc.value.message


def test_serve_lake_on_s3_makes_no_local_folder(tmp_path, bucket):
    root = tmp_path / "ws"
    mj.init(root).close()
    proc, _ = serve(root, f"s3://{bucket}/lake", tmp_path)
    stop(proc)
    assert not (tmp_path / "s3:").exists()
