"""The value at stake in a moment, with bootstrap intervals over persons (docs/value.md).

From the engine's person patterns (:func:`microjourney.engine.value.person_patterns`: per
moment, each distinct tally of a person and how many persons have it) and the moment's
costs:

* **failure value** = attempts × failure rate × failure cost, the failure rate being
  failed ÷ finished attempts (attempts still in progress fail at the same rate);
* **deflection value** = avoidable assisted contacts × contact cost;
* **retention value** = (share of persons who came back after a completed first attempt
  − share after a failed one) × persons whose first finished attempt failed × lifetime
  value; an observational difference, not an effect (docs/value.md, "Retention");
* **total** = the sum of the parts that have their cost.

Intervals: a nonparametric bootstrap over persons. Persons with the same tallies are
interchangeable, so drawing N persons with replacement is drawing how many of each pattern
from a multinomial with the patterns' shares: exact, and cheap however many persons there
are. Every part of one moment is computed on the same resamples, so the total's interval
holds their dependence. Percentile intervals, :data:`RESAMPLES` resamples, seeded by the
moment's name: the same data give the same interval on every engine.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: Bootstrap resamples per moment, and the seed they start from.
RESAMPLES = 1_000
SEED = 23
#: Persons needed in each group (failed first, completed first, with their retention
#: window over) before a retention difference is computed.
MIN_PERSONS = 20
#: The sums a resample needs, in the order of the matrix columns.
SUMS = ("persons", "attempts", "finished", "failed", "avoidable", "affected", "first_done",
        "failed_watched", "failed_back", "completed_watched", "completed_back")
#: Most cells (resamples × patterns) drawn at once.
CELLS = 4_000_000


@dataclass(frozen=True)
class Costs:
    """A moment's costs (None: not set anywhere, and the part it prices is not computed)."""

    failure_cost: float | None = None
    contact_cost: float | None = None
    lifetime_value: float | None = None


@dataclass(frozen=True)
class Estimate:
    """A value and its bootstrap interval (NaN ends when it cannot be had)."""

    value: float
    low: float
    high: float

    @property
    def ci(self) -> list[float] | None:
        return None if math.isnan(self.low) or math.isnan(self.high) else [self.low, self.high]

    def covers(self, x: float) -> bool:
        return not math.isnan(self.low) and self.low <= x <= self.high


@dataclass(frozen=True)
class Retention:
    """Who came back, by how the person's first finished attempt ended."""

    #: Persons whose first finished attempt completed / failed and whose retention window
    #: is over, and how many of them came back in it.
    completed: int
    completed_back: int
    failed: int
    failed_back: int
    #: Persons whose first finished attempt failed, window over or not (the persons affected).
    affected: int
    #: Persons whose first finished attempt completed or failed within the retention window
    #: of the end of the data: not yet known, left out of the difference.
    open: int
    #: Returned share after completing − after failing; None with too few persons.
    difference: Estimate | None

    @property
    def completed_rate(self) -> float:
        return self.completed_back / self.completed if self.completed else math.nan

    @property
    def failed_rate(self) -> float:
        return self.failed_back / self.failed if self.failed else math.nan


@dataclass(frozen=True)
class MomentValue:
    """A moment's value at stake: its volumes, the parts with intervals (None: not
    computed, for want of a cost or of persons) and coded notes ``(code, message)``."""

    persons: int
    attempts: int
    finished: int
    failed: int
    avoidable: int
    failure_rate: Estimate | None
    failure_value: Estimate | None
    deflection_value: Estimate | None
    retention_value: Estimate | None
    total: Estimate | None
    retention: Retention
    notes: tuple[tuple[str, str], ...] = field(default=())


def _matrix(patterns: pd.DataFrame) -> np.ndarray:
    """One row per pattern, the columns of :data:`SUMS` (each a person's share of the sum),
    in a fixed order of the patterns, whatever order the engine gave them in."""
    first = patterns["first"].astype(object).where(patterns["first"].notna(), "")
    back = patterns["returned"].astype(object).map(
        lambda v: -1 if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA
        else int(bool(v)))
    df = pd.DataFrame({
        "attempts": patterns["attempts"].astype("int64"),
        "finished": patterns["finished"].astype("int64"),
        "failed": patterns["failed"].astype("int64"),
        "avoidable": patterns["avoidable"].astype("int64"),
        "first": first.astype(str), "back": back.astype("int64"),
        "n": patterns["persons"].astype("int64"),
    }).sort_values(["attempts", "finished", "failed", "avoidable", "first", "back"], kind="stable")
    df = df[df["n"] > 0]
    failed_first, completed_first = df["first"] == "failed", df["first"] == "completed"
    watched = df["back"] >= 0
    came = df["back"] == 1
    cols = [np.ones(len(df)), df["attempts"], df["finished"], df["failed"], df["avoidable"],
            failed_first, failed_first | completed_first, failed_first & watched,
            failed_first & came,
            completed_first & watched, completed_first & came]
    return np.column_stack([np.asarray(c, dtype="float64") for c in cols] +
                           [np.asarray(df["n"], dtype="float64")])


def _resampled(m: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """The sums of :data:`SUMS` in each of ``resamples`` bootstrap resamples of the persons
    (``resamples`` × sums): pattern counts drawn from the multinomial of their shares."""
    values, n = m[:, :-1], m[:, -1].astype("int64")
    total = int(n.sum())
    shares = n / total
    block = max(1, min(resamples, CELLS // max(1, len(n))))
    out = []
    for start in range(0, resamples, block):
        draws = rng.multinomial(total, shares, size=min(block, resamples - start))
        out.append(draws.astype("float64") @ values)
    return np.vstack(out)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _parts(s: np.ndarray, costs: Costs, retention: bool) -> dict[str, np.ndarray]:
    """Each part of the value from sums ``s`` (rows: the observed sums, or resamples)."""
    col = {name: s[:, i] for i, name in enumerate(SUMS)}
    rate = _ratio(col["failed"], col["finished"])
    out = {"failure_rate": rate}
    if costs.failure_cost is not None:
        out["failure_value"] = col["attempts"] * rate * costs.failure_cost
    if costs.contact_cost is not None:
        out["deflection_value"] = col["avoidable"] * costs.contact_cost
    if retention:
        diff = (_ratio(col["completed_back"], col["completed_watched"])
                - _ratio(col["failed_back"], col["failed_watched"]))
        out["retention_difference"] = diff
        if costs.lifetime_value is not None:
            out["retention_value"] = diff * col["affected"] * costs.lifetime_value
    money = [out[k] for k in ("failure_value", "deflection_value", "retention_value") if k in out]
    if money:
        out["total"] = np.sum(money, axis=0)
    return out


def _estimate(point: np.ndarray, draws: np.ndarray, confidence: float) -> Estimate:
    value = float(point[0])
    finite = draws[np.isfinite(draws)]
    if math.isnan(value) or len(finite) < 0.9 * len(draws) or not len(finite):
        return Estimate(value, math.nan, math.nan)
    low, high = np.quantile(finite, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Estimate(value, float(low), float(high))


def value_at_stake(name: str, patterns: pd.DataFrame, costs: Costs, *,
                   resamples: int = RESAMPLES, seed: int = SEED, confidence: float = 0.95,
                   min_persons: int = MIN_PERSONS) -> MomentValue:
    """The value at stake in moment ``name`` from its person ``patterns`` (columns
    ``attempts``, ``finished``, ``failed``, ``avoidable``, ``first``, ``returned``,
    ``persons``), with bootstrap intervals over persons."""
    m = _matrix(patterns)
    observed = (m[:, :-1] * m[:, -1:]).sum(axis=0)
    count = {k: int(round(observed[i])) for i, k in enumerate(SUMS)}
    notes: list[tuple[str, str]] = []
    watched = count["failed_watched"], count["completed_watched"]
    enough = min(watched) >= min_persons
    if count["persons"] == 0:
        retention = Retention(0, 0, 0, 0, 0, 0, None)
        return MomentValue(0, 0, 0, 0, 0, None, None, None, None, None, retention, ())
    rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
    draws = _parts(_resampled(m, resamples, rng), costs, enough)
    point = _parts(observed[None, :], costs, enough)
    est = {k: _estimate(point[k], draws[k], confidence) for k in point}

    difference = est.get("retention_difference")
    retention = Retention(count["completed_watched"], count["completed_back"],
                          count["failed_watched"], count["failed_back"], count["affected"],
                          count["first_done"] - count["completed_watched"] - count["failed_watched"],
                          difference)
    if not enough:
        notes.append(("too-few-persons", f"{name}: {watched[0]} persons whose first finished "
                      f"attempt failed and {watched[1]} whose first completed have their retention "
                      f"window over (under {min_persons} in a group): the retention difference and "
                      "value are not computed"))
    elif difference is not None and difference.covers(0.0):
        notes.append(("retention-not-significant", f"{name}: the retention difference, "
                      f"{_pts(difference.value)} [{_pts(difference.low)}, {_pts(difference.high)}], "
                      "is within chance (its 95% interval holds 0); the retention value is shown "
                      "as measured, and may be nothing"))
    elif difference is not None and difference.high < 0:
        notes.append(("retention-reversed", f"{name}: persons whose first attempt failed came "
                      f"back more than those whose attempt completed ({_pts(difference.value)}): "
                      "read it as who fails (and retries or calls), not as what failing does; "
                      "the retention value is negative (docs/value.md, \"Retention\")"))
    return MomentValue(
        persons=count["persons"], attempts=count["attempts"], finished=count["finished"],
        failed=count["failed"], avoidable=count["avoidable"],
        failure_rate=est["failure_rate"] if count["finished"] else None,
        failure_value=est.get("failure_value"), deflection_value=est.get("deflection_value"),
        retention_value=est.get("retention_value"), total=est.get("total"),
        retention=retention, notes=tuple(notes))


def _pts(x: float) -> str:
    return f"{x * 100:+.1f} pts"


def rank(values: Mapping[str, MomentValue]) -> list[str]:
    """Moment names by total value at stake, highest first; those without a total last
    (by attempts, then name)."""
    def key(name: str) -> tuple[Any, ...]:
        v = values[name]
        total = v.total.value if v.total is not None and not math.isnan(v.total.value) else None
        return (total is None, -(total or 0.0), -v.attempts, name)

    return sorted(values, key=key)


def missing(costs: Mapping[str, Costs]) -> list[tuple[str, str, dict[str, Any]]]:
    """A ``missing-parameter`` note ``(code, message, where)`` per cost that some moments
    lack, naming them and the part of the value that is not computed for them."""
    parts = {"failure_cost": "failure value", "contact_cost": "deflection value",
             "lifetime_value": "retention value"}
    out = []
    for key, part in parts.items():
        lacking = [m for m, c in costs.items() if getattr(c, key) is None]
        if lacking:
            shown = ", ".join(lacking[:10]) + (f" and {len(lacking) - 10} more" if len(lacking) > 10
                                                else "")
            out.append(("missing-parameter", f"{key} is set neither in the moment's value: nor in "
                        f"the workspace's for {shown}: their {part} is not computed, and their "
                        "total leaves it out", {"parameter": key, "moments": lacking}))
    return out


__all__ = ["CELLS", "MIN_PERSONS", "RESAMPLES", "SEED", "SUMS", "Costs", "Estimate", "MomentValue",
           "Retention", "missing", "rank", "value_at_stake"]
