"""Scrubbing on the way into the store (docs/privacy.md): which texts, and the SQL that does it.

An RE2 prefilter in the writer's SQL picks the few JSON texts that may hold an e-mail
address, a phone or a card number; only those go through the exact rules
(:func:`microjourney.ingest.scrub.scrub_json`), a Python function over Arrow registered in
DuckDB as :data:`UDF`. Paths kept as given (``scrub_except``) are looked past.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from functools import lru_cache

import duckdb
import orjson
import pyarrow as pa

from ..ingest.schema import json_pointer
from ..ingest.scrub import PREFILTER, scrub_json

#: Paths of the stored JSON left unscrubbed by default: identity keys are given as traits.
SCRUB_EXCEPT: tuple[str, ...] = ("context.traits",)
UDF = "mj_scrub"
#: Connections known to have :data:`UDF`.
_WITH_UDF: weakref.WeakSet[duckdb.DuckDBPyConnection] = weakref.WeakSet()


@dataclass(frozen=True)
class Privacy:
    """What the writer does for privacy: withhold rows without consent, scrub the others."""

    consent_required: bool = False
    scrub: bool = True
    scrub_except: tuple[str, ...] = SCRUB_EXCEPT

    def kept(self, root: str) -> list[str]:
        """The paths under ``root`` (``properties``, ``context``) left unscrubbed, relative to it."""
        return [p.partition(".")[2] for p in self.scrub_except if p.partition(".")[0] == root]


@lru_cache(maxsize=64)
def _kept_paths(kept: str) -> frozenset[tuple[str, ...]]:
    return frozenset(tuple(p.split(".")) for p in orjson.loads(kept))


def _scrub_arrow(texts: pa.Array, kept: pa.Array) -> pa.Array:
    """The UDF :data:`UDF` (text, kept paths as a JSON list): :func:`scrub_json` per row."""
    return pa.array([None if t is None else scrub_json(t, _kept_paths(k or "[]"))
                     for t, k in zip(texts.to_pylist(), kept.to_pylist(), strict=True)], pa.string())


def ensure_udf(con: duckdb.DuckDBPyConnection) -> None:
    """Register the scrubbing UDF once per database (every cursor sees it); outside a transaction.
    A connection seen before is not asked again (the collector writes through one, often)."""
    if con in _WITH_UDF:
        return
    try:
        con.create_function(UDF, _scrub_arrow, ["VARCHAR", "VARCHAR"], "VARCHAR", type="arrow",
                            null_handling="special", side_effects=False)
    except (duckdb.CatalogException, duckdb.NotImplementedException) as exc:
        if "already" not in str(exc):  # registered before, by this connection or another cursor
            raise
    _WITH_UDF.add(con)


def scrubbed(col: str, root: str, privacy: Privacy, params: dict[str, object]) -> str:
    """SQL for the JSON text ``col`` scrubbed: the RE2 prefilter (looking past the kept paths)
    picks the few texts that the exact rules (the UDF) look at; the others stay as they are.
    Adds the values it needs to ``params``."""
    if not privacy.scrub:
        return col
    kept = privacy.kept(root)
    params["scrub_pf"] = PREFILTER
    params[f"scrub_{root}"] = orjson.dumps(kept).decode()
    inner = col
    for i, path in enumerate(kept):  # json_remove takes one path at a time
        params[f"scrub_{root}_{i}"] = json_pointer(*path.split("."))  # any key works
        inner = f"json_remove({inner}, CAST($scrub_{root}_{i} AS VARCHAR))"
    past_kept = (f"WHEN NOT regexp_matches(CAST({inner} AS VARCHAR), $scrub_pf) THEN {col} "
                 if kept else "")
    return (f"CASE WHEN {col} IS NULL OR NOT regexp_matches({col}, $scrub_pf) THEN {col} {past_kept}"
            f"ELSE {UDF}({col}, $scrub_{root}) END")
