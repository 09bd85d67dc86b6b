"""Engine conformance: every analysis gives the same answer on the workspace's DuckDB
store, on DuckDB over a Parquet lake and on Spark (local mode) over the same lake.

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

from .helpers import (
    EXPERIMENT_YAML,
    REALDATA,
    SURVEY_YAML,
    exposure_rows,
    survey_rows,
    without_freshness,
    write_events,
)

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
