"""Engine conformance: every analysis gives the same answer on the workspace's DuckDB
store, on DuckDB over a Parquet lake and on Spark (local mode) over the same lake. Every
test that runs Spark lives here: one test process then starts Spark once.

Seeded synthetic events (the benchmark generator) and one real log (helpdesk). Counts
must be identical; rates, times and seconds agree within 1e-9 (relative).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import microjourney as mj
from microjourney.errors import WorkspaceError
from microjourney.jsonable import dumps
from microjourney.registry import REGISTRY
from microjourney.store import export

from .conftest_funnel import Ev, run_funnel_within, write_workspace
from .funnel_reference import ORDERS, ref_counts
from .helpers import (
    EXPERIMENT_YAML,
    REALDATA,
    SURVEY_YAML,
    exposure_rows,
    survey_rows,
    without_freshness,
    write_events,
)
from .test_identity import _erasure_ws, alias, person_map, persons_of_events

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["my card was declined", "card payment declined again", "payment failed at checkout",
         "forgot my password", "password reset email never came", "cannot reset my password",
         "where is my parcel", "tracking shows nothing", "parcel not delivered yet"]
pytestmark = [
    pytest.mark.slow,
    # PySpark's conversion to pandas still passes `copy=`, which pandas 3 deprecates.
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

pyspark = pytest.importorskip("pyspark", reason="the spark extra is not installed")
if shutil.which("java") is None:  # `make test` installs Java; a bare run may lack it
    pytest.skip("Java is not installed", allow_module_level=True)


def _frame(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in one order, lists as tuples, decimals as floats: comparable across engines."""
    df = df.copy()
    for c in df.columns:
        if df[c].map(lambda v: isinstance(v, list | np.ndarray)).any():
            df[c] = df[c].map(lambda v: tuple(v) if v is not None else None)
        elif df[c].dtype == object and df[c].map(lambda v: hasattr(v, "as_integer_ratio")
                                                 and not isinstance(v, int | float)).any():
            df[c] = df[c].astype(float)
    return df.sort_values(list(df.columns), kind="stable").reset_index(drop=True)


def same(a: pd.DataFrame, b: pd.DataFrame, what: str) -> None:
    a, b = _frame(a), _frame(b)
    assert list(a.columns) == list(b.columns), what
    assert len(a) == len(b), f"{what}: {len(a)} rows on one engine, {len(b)} on the other"
    for c in a.columns:
        x, y = a[c], b[c]
        if pd.api.types.is_float_dtype(x) or pd.api.types.is_float_dtype(y):
            np.testing.assert_allclose(x.astype(float), y.astype(float), rtol=1e-9, atol=1e-9,
                                       err_msg=f"{what}.{c}")
        elif pd.api.types.is_datetime64_any_dtype(x):
            assert (pd.to_datetime(x, utc=True) == pd.to_datetime(y, utc=True)).all(), f"{what}.{c}"
        else:
            xs = x.astype(object).where(x.notna(), None).tolist()
            ys = y.astype(object).where(y.notna(), None).tolist()
            # The first difference only: a diff of two long lists takes pytest minutes.
            bad = next((i for i, (u, v) in enumerate(zip(xs, ys, strict=True)) if u != v), None)
            assert bad is None, f"{what}.{c}, row {bad}: {xs[bad]!r} != {ys[bad]!r}"


def analyses(ws: mj.Workspace) -> dict[str, pd.DataFrame]:
    """Every registered analysis the engines share (the registry's ``engines``), with each
    of its example parameters, table by table; plus the attempts and friction rows."""
    out = {"attempts": ws.attempts().drop("properties", "context").to_pandas(),
           "friction rows": ws.frictions().to_pandas()}
    for analysis in REGISTRY:
        if not analysis.engines:
            continue
        for params in analysis.examples(ws):
            result = ws.analysis(analysis.name, **params)
            for table, df in result.tables.items():
                out[f"{analysis.name} {params} {table}"] = df
            data = result.to_dict()
            data["meta"].pop("engine")
            out[f"{analysis.name} {params} --json"] = dumps(data)  # what the CLI and API print
    return out


def covered() -> set[str]:
    """The analyses this suite compares (a test checks none is left out)."""
    return {a.name for a in REGISTRY if a.engines}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from generate import generate, workspace_yaml

    root = tmp_path_factory.mktemp("seeded")
    text = workspace_yaml()
    (root / "microjourney.yaml").write_text(text, encoding="utf-8")
    data = generate(20_000, root / "events.parquet", seed=7)
    with mj.open(root) as ws:
        ws.ingest(data)
        # Survey answers linked to the generated attempts, for the survey analyses.
        moment = next(iter(ws.moments))
        (root / "microjourney.yaml").write_text(text + SURVEY_YAML.format(moment=moment)
                                                + EXPERIMENT_YAML.format(moment=moment))
        ws.reload()
        attempts = ws.attempts(moment).to_pandas()
        ws.ingest(write_events(root / "surveys.csv", survey_rows(attempts)))
        # Exposures to an experiment of the moment, for the experiment analysis.
        ws.ingest(write_events(root / "exposures.csv",
                               exposure_rows(attempts, ws.spec.experiments[0])))
        # Customer texts, for the intents.
        (root / "texts.csv").write_text("id,at,said\n" + "".join(
            f"t{i},2026-10-{1 + i % 28:02d}T10:00:00+00:00,{said}\n"
            for i, said in enumerate(TEXTS * 4)), encoding="utf-8")
        ws.ingest_texts(root / "texts.csv", text="said", time="at", ident="id", source="chat")
        export(ws.con, root / "lake")
    return root, root / "lake"


@pytest.fixture(scope="module")
def on_store(seeded) -> dict:
    """The analyses on the workspace's own store, which both engines are held to."""
    root, _ = seeded
    with mj.open(root) as store:
        return analyses(store)


def test_duckdb_over_the_lake_matches_the_store(seeded, on_store):
    root, lake = seeded
    with mj.open(root, lake=lake) as over_lake:
        assert over_lake.engine == "duckdb"
        a, b = on_store, analyses(over_lake)
    assert a["friction rows"].shape[0] > 100 and a["attempts"].shape[0] > 500  # a real workload
    for name in a:
        if isinstance(a[name], pd.DataFrame):
            same(a[name], b[name], name)
        else:
            _same_json(_canonical(a[name]), _canonical(b[name]), name)


@pytest.fixture(scope="module")
def on_both(seeded, on_store) -> tuple[dict, dict]:
    root, lake = seeded
    with mj.open(root, engine="spark", lake=lake) as spark:
        assert spark.engine == "spark"
        return on_store, analyses(spark)


def test_spark_matches_duckdb(on_both):
    a, b = on_both
    assert set(a) == set(b)
    for name in a:
        if isinstance(a[name], pd.DataFrame):
            same(a[name], b[name], name)


def test_every_registered_analysis_runs_on_both_engines(on_both):
    a, _ = on_both
    names = {key.split(" ", 1)[0] for key in a}
    assert covered() <= names, f"not compared across engines: {covered() - names}"
    assert {"quarantine", "data-quality"} == {x.name for x in REGISTRY} - covered()  # the store's


def test_json_is_the_same_on_spark_as_on_duckdb(on_both):
    """The --json text of every analysis and example (the API's answer) on Spark equals
    DuckDB's, once rows are in one order and the engine's name is set aside: decimals, NaN
    and times are encoded alike."""
    a, b = on_both
    texts = [name for name in a if name.endswith("--json")]
    assert {name.split(" ", 1)[0] for name in texts} == covered()
    for name in texts:
        _same_json(_canonical(a[name]), _canonical(b[name]), name)
        assert "Decimal" not in b[name]


def _canonical(text: str) -> dict:
    """The JSON with each table's rows sorted (ties may come in any order on an engine),
    without when each engine refreshed its tables."""
    import json

    data = without_freshness(json.loads(text))
    data["tables"] = {k: sorted(rows, key=lambda r: json.dumps(_rounded(r), sort_keys=True))
                      for k, rows in data["tables"].items()}
    return data


def _rounded(v):
    if isinstance(v, float):
        return float(f"{v:.6g}")
    if isinstance(v, list):
        return [_rounded(x) for x in v]
    if isinstance(v, dict):
        return {k: _rounded(x) for k, x in v.items()}
    return v


def _same_json(a, b, where="") -> None:
    """Equal values; floats within 1e-9 (relative), as the frames above."""
    if isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, int | float) and isinstance(b, int | float), where
        assert np.isclose(a, b, rtol=1e-9, atol=1e-9), f"{where}: {a!r} != {b!r}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _same_json(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same_json(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.skipif(not REALDATA.is_dir(), reason=f"real data folder {REALDATA} is absent")
def test_spark_matches_duckdb_on_a_real_log(tmp_path):
    root = tmp_path / "helpdesk"
    mj.init(root)
    with mj.open(root) as ws:
        ws.ingest(REALDATA / "eventlogs" / "helpdesk.xes.gz")
        export(ws.con, root / "lake")
        a = {name: dumps(ws.analysis(name, top=1_000_000).to_dict()["tables"])
             for name in ("variants",)}
        a["process-map"] = dumps(ws.analysis("process-map").to_dict()["tables"])
    with mj.open(root, engine="spark", lake=root / "lake") as spark:
        b = {name: dumps(spark.analysis(name, top=1_000_000).to_dict()["tables"])
             for name in ("variants",)}
        b["process-map"] = dumps(spark.analysis("process-map").to_dict()["tables"])
    for name in a:
        _same_json(_canonical(f'{{"tables": {a[name]}}}'), _canonical(f'{{"tables": {b[name]}}}'),
                   name)


def test_spark_needs_a_lake_and_a_lake_needs_events(tmp_path):
    mj.init(tmp_path / "ws")
    with pytest.raises(WorkspaceError, match="reads a lake"):
        mj.open(tmp_path / "ws", engine="spark")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WorkspaceError, match="no lake at"):
        mj.open(tmp_path / "ws", lake=tmp_path / "empty")
    with pytest.raises(WorkspaceError, match="unknown engine"):
        mj.open(tmp_path / "ws", engine="trino")


# -- further cases on Spark: in this file, so that one test process starts Spark once ------


def test_spark_agrees_with_duckdb_on_step_windows(tmp_path):
    # B within 2 s, D within 1.5 s: on time; B late; D late after a non-step event; a
    # late try then one on time; ties on the boundary; an unordered-only sequence.
    funnel_ = ["A", {"event": "B", "within": "2s"}, "C", {"event": "D", "within": "1500ms"}]
    triples = [("p1", 0, "A"), ("p1", 1, "B"), ("p1", 2, "C"), ("p1", 3, "D"),
               ("p2", 0, "A"), ("p2", 3, "B"), ("p2", 4, "C"), ("p2", 5, "D"),
               ("p3", 0, "A"), ("p3", 1, "B"), ("p3", 2, "C"), ("p3", 2.5, "X"), ("p3", 4, "D"),
               ("p4", 0, "A"), ("p4", 1, "A"), ("p4", 2.5, "B"), ("p4", 3, "C"), ("p4", 4, "D"),
               ("p5", 0, "A"), ("p5", 0, "B"), ("p5", 0, "C"), ("p5", 1.5, "D"),
               ("p6", 0, "D"), ("p6", 1, "C"), ("p6", 1.2, "A"), ("p6", 2, "B")]
    runs = [(o, "person") for o in ORDERS] + [("unordered", "attempt")]
    with write_workspace(tmp_path, funnel_, [Ev(t, e, user=p) for p, t, e in triples]) as ws:
        export(ws.con, tmp_path / "lake")
        duck = {r: run_funnel_within(ws, order=r[0], per=r[1]) for r in runs}
    for (o, p), d in duck.items():
        assert (d.counts, d.medians_s) == ref_counts(
            triples, list("ABCD"), o, per=p, within_s=(None, 2, None, 1.5)), (o, p)
    # Ordered: p1 4 steps, p2 1 (B late), p3 3 (D late), p4 4 (its try from A at 1 s), p5 4,
    # p6 2 (A B, no C after). Strict: the same (p4's try from A at 0 s meets A, not B).
    # Unordered: p2 3 (B C D from B), p3 3, p6 4 (D C A B, B 0.8 s after A).
    assert [duck[o, "person"].counts for o in ORDERS] == [
        [6, 5, 4, 3], [6, 5, 4, 3], [6, 6, 6, 4]]
    # Ordered, step 2: 1, 1, 1.5, 0, 0.8 s; step 3: 1, 1, 0.5, 0; step 4: 1, 1, 1.5.
    assert duck["ordered", "person"].medians_s == [None, 1.0, 0.75, 1.0]
    with mj.open(tmp_path, engine="spark", lake=tmp_path / "lake") as spark:
        for (o, p), d in duck.items():
            s = run_funnel_within(spark, order=o, per=p)
            assert (s.counts, s.medians_s) == (d.counts, d.medians_s), (o, p)


def test_persons_agree_on_spark_and_duckdb_over_a_lake(make_ws, tmp_path):
    ws = _erasure_ws(make_ws)
    ws.write_identities([alias("x", "12:00:00", "user-bob", "user-ann")])
    ws.export_lake(tmp_path / "lake")
    expected = (person_map(ws), persons_of_events(ws), ws.attempts().count().execute())
    assert expected[0][("phone", "4477009001")] == expected[0][("user", "user-bob")] == "user-ann"
    for engine in ("duckdb", "spark"):
        with mj.open(ws.root, engine=engine, lake=tmp_path / "lake") as other:
            got = (person_map(other), persons_of_events(other), other.attempts().count().execute())
        assert got == expected, engine
