"""The Peak-End rule: how a customer will remember a journey, from the attempts they lived
through. People do not remember an experience as the average of its moments: a remembered
rating follows the most intense moment (the **peak**) and the last one (the **end**), and
barely the length (duration neglect; Fredrickson and Kahneman, 1993).

- **Intensity** (:func:`intensity`): each finished attempt gets a value in [−1, 1], a weighted
  mean of its outcome (completed +1, escalated −0.3, abandoned −0.6, failed −1), the time it
  lost to frictions (−seconds/``friction_scale``, at most −1) and, when the customer answered
  a survey about it, the score (rescaled from [0, 1] to [−1, 1]). Without a score its weight is
  shared by the other two (:class:`Weights`). An attempt still in progress has no intensity
  (NaN): it is not yet part of the experience.
- **Episode** (:func:`episode`, :func:`episodes`): one person's attempts of one journey inside
  the journey window (:func:`cut`: 30 days from their first attempt), in time order. Its
  **negative peak** is the lowest intensity below 0, the **positive peak** the highest above 0,
  the **peak** the most intense (by absolute value; a tie goes to the negative), the **end** the
  last attempt's, and the **peak-end score** ``(peak + end) / 2``, against the plain **mean**.
- **Per moment** (:func:`remembered`): how often its attempt is the episode's negative peak and
  its end, and its **share** of the remembered experience (the peak counts 1/2 and the end 1/2
  of each episode's score) beside its share of the mean; **per journey** (:func:`journeys`): the
  mean peak-end score against the mean of the means, with a paired interval.

Whether the rule holds for a product's customers is checked against journey-level ratings in
:mod:`microjourney.analysis.peak_end_validation`.

Redelmeier and Kahneman's (1996) colonoscopy patients, pain 0–10 each minute read as ``−pain/10``:
both peak at 8; A stops at 7 after 8 minutes, B ends at 1 after 24. B suffered more in all,
and remembers it as less bad.

>>> a = episode([-.2, -.4, -.5, -.8, -.6, -.7, -.8, -.7], range(0, 480, 60), range(60, 540, 60))
>>> b = episode([-.2, -.4, -.6, -.8, -.5, -.6, -.5, -.4] + [-.3] * 8 + [-.2] * 7 + [-.1],
...             range(0, 1440, 60), range(60, 1500, 60))
>>> round(a.peak_end, 2), round(b.peak_end, 2), round(a.mean * a.count, 1), round(b.mean * b.count, 1)
(-0.75, -0.45, -4.7, -7.9)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt
import pandas as pd

from . import stats

__all__ = [
    "FRICTION_SCALE_S", "IN_PROGRESS", "OUTCOME_VALUES", "WINDOW_S", "Episode", "Weights", "cut", "episode",
    "episodes", "intensities", "intensity", "journeys", "mark", "remembered",
]

FloatArray = npt.NDArray[np.float64]

#: An outcome's value. Failed is the worst an attempt can end: the customer asked and was
#: refused. Abandoned is less bad: it mostly follows friction, but a timeout cannot tell it from
#: a change of mind. Escalated is mildly negative: needing a person is effort and shows the
#: self-service path did not hold, yet the person often resolves the matter.
OUTCOME_VALUES: Mapping[str, float] = MappingProxyType(
    {"completed": 1.0, "escalated": -0.3, "abandoned": -0.6, "failed": -1.0})
#: The engine's outcome of an attempt not finished at the end of the data: no intensity yet.
IN_PROGRESS = "in_progress"
#: Seconds lost to frictions that make the worst friction value (−1): two minutes is far beyond
#: a good flow's pause, and the cap keeps one stuck attempt from outweighing its outcome.
FRICTION_SCALE_S = 120.0
#: The journey window: an episode holds a person's attempts of a journey that start within
#: this many seconds of its first attempt (30 days).
WINDOW_S = 30 * 86400.0


@dataclass(frozen=True)
class Weights:
    """The weight of each component of an attempt's intensity (any non-negative numbers; they
    are divided by the sum of those present, so a missing survey score shares its weight).

    >>> Weights(outcome=2, friction=1, survey=1).outcome
    2
    """

    outcome: float = 0.5
    friction: float = 0.25
    survey: float = 0.25

    def __post_init__(self) -> None:
        parts = (self.outcome, self.friction, self.survey)
        if not all(math.isfinite(w) and w >= 0 for w in parts) or sum(parts) <= 0:
            raise ValueError(f"weights must be finite, at least 0 and not all 0, got {parts}")


def intensity(outcome: str, friction_seconds: float, score: float | None, weights: Weights = Weights(),
              *, friction_scale: float = FRICTION_SCALE_S,
              values: Mapping[str, float] = OUTCOME_VALUES) -> float:
    """One attempt's intensity in [−1, 1] (see the module's docstring); ``score`` is the survey
    answer already rescaled to [0, 1], ``(answer − lowest) / (highest − lowest)``, or None.

    >>> intensity("completed", 0, 1.0)  # 0.5·1 + 0.25·0 + 0.25·1
    0.75
    >>> round(intensity("completed", 0, None), 4)  # (0.5·1 + 0.25·0) / 0.75
    0.6667
    >>> intensity("failed", 60, 0.0), intensity("abandoned", 600, None)  # friction capped at −1
    (-0.875, -0.7333333333333334)
    >>> intensity("in_progress", 0, None)
    nan
    """
    return float(intensities([outcome], [friction_seconds], [score], weights,
                             friction_scale=friction_scale, values=values)[0])


def intensities(outcomes: Sequence[str] | pd.Series, friction_seconds: Sequence[float] | FloatArray,
                scores: Sequence[float | None] | FloatArray, weights: Weights = Weights(), *,
                friction_scale: float = FRICTION_SCALE_S,
                values: Mapping[str, float] = OUTCOME_VALUES) -> FloatArray:
    """:func:`intensity` for many attempts at once (NaN friction counts as none, NaN or None
    score as no answer).

    Raises ValueError for a call that cannot be meant: lengths that differ, an outcome that
    is neither in ``values`` nor ``in_progress``, negative seconds, a score outside [0, 1], a
    ``friction_scale`` not above 0.
    """
    o = pd.Series(np.asarray(outcomes, dtype=object))
    f = np.nan_to_num(np.asarray(friction_seconds, dtype=float), nan=0.0)
    s = np.asarray(scores, dtype=float)
    if not len(o) == len(f) == len(s):
        raise ValueError("outcomes, friction_seconds and scores must have the same length")
    if not friction_scale > 0:
        raise ValueError(f"friction_scale must be above 0, got {friction_scale}")
    ov = o.map(dict(values)).to_numpy(dtype=float)
    unknown = np.isnan(ov) & (o != IN_PROGRESS).to_numpy()
    if unknown.any():
        raise ValueError(f"unknown outcomes {sorted(set(map(str, o[unknown])))}; "
                         f"known: {sorted(values)} and {IN_PROGRESS!r}")
    if (f < 0).any():
        raise ValueError("friction seconds must be at least 0")
    answered = np.isfinite(s)
    if ((s[answered] < 0) | (s[answered] > 1)).any():
        raise ValueError("scores must be rescaled to [0, 1]")
    fv = -np.minimum(1.0, f / friction_scale)
    sv = np.where(answered, 2 * s - 1, 0.0)
    total = weights.outcome + weights.friction + weights.survey * answered
    with np.errstate(invalid="ignore", divide="ignore"):
        # A weight of 0 for all present components (survey weight only, no answer): no value.
        x = (weights.outcome * ov + weights.friction * fv + weights.survey * sv) / total
    return np.where(total > 0, x, np.nan)


@dataclass(frozen=True)
class Episode:
    """One episode's statistics (see the module's docstring). The ``*_index`` fields give the
    position of that attempt in the sequences given (the ``order`` value in :func:`episodes`);
    a tie for a peak goes to the earliest attempt. ``neg_peak`` is NaN (its index −1) when no
    attempt is below 0, ``pos_peak`` when none is above. ``count`` is the number of finished
    attempts and ``duration_s`` from the first's start to the last's end; all NaN (indexes −1)
    when no attempt has an intensity."""

    neg_peak: float
    neg_peak_index: int
    pos_peak: float
    pos_peak_index: int
    peak: float
    peak_index: int
    end: float
    end_index: int
    peak_end: float
    mean: float
    count: int
    duration_s: float


def episode(intensities: Sequence[float], starts: Sequence[float], ends: Sequence[float]) -> Episode:
    """The :class:`Episode` of one person's attempts of a journey, in the order they happened
    (their intensities, and their starts and ends in seconds); NaN intensities (attempts in
    progress) are left out."""
    if not len(intensities) == len(starts) == len(ends):
        raise ValueError("intensities, starts and ends must have the same length")
    frame = pd.DataFrame({"episode": 0, "order": np.arange(len(intensities)),
                          "intensity": np.asarray(intensities, dtype=float),
                          "start": np.asarray(starts, dtype=float), "end": np.asarray(ends, dtype=float)})
    t = episodes(frame)
    if t.empty:
        nan = math.nan
        return Episode(nan, -1, nan, -1, nan, -1, nan, -1, nan, nan, 0, nan)
    # Column by column: a row of mixed nullable columns would turn NaN into <NA>.
    def value(name: str) -> float:
        v = t[name].iloc[0]
        return math.nan if pd.isna(v) else float(v)

    def index(name: str) -> int:
        v = value(name)
        return -1 if math.isnan(v) else int(v)

    return Episode(
        value("neg_peak"), index("neg_peak_index"), value("pos_peak"), index("pos_peak_index"), value("peak"),
        index("peak_index"), value("end"), index("end_index"), value("peak_end"), value("mean"),
        int(value("count")), value("duration_s"))


_MARKS = ("is_neg_peak", "is_pos_peak", "is_peak", "is_end")


def _keys(by: str | Sequence[str]) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def mark(frame: pd.DataFrame, by: str | Sequence[str] = "episode", order: str = "order") -> pd.DataFrame:
    """The attempts of many episodes (rows with the ``by`` columns naming the episode, ``order``,
    ``intensity``, ``start`` and ``end``), each marked: ``is_neg_peak``, ``is_pos_peak``,
    ``is_peak`` and ``is_end`` (all False for an attempt with no intensity). Rows keep their
    order, index and every other column."""
    keys = _keys(by)
    missing = [c for c in (*keys, order, "intensity", "start", "end") if c not in frame.columns]
    if missing:
        raise ValueError(f"the frame lacks the columns {missing}")
    out = frame.reset_index(drop=True).drop(columns=list(_MARKS), errors="ignore")
    live = out[np.isfinite(out["intensity"].to_numpy(dtype=float))].sort_values([*keys, order], kind="stable")
    g = live.groupby(keys, sort=False, dropna=False)["intensity"]
    # idxmin/idxmax give the first row of the extreme within each group: the earliest attempt.
    low = live.index.isin(g.idxmin()) if len(live) else np.zeros(0, dtype=bool)
    high = live.index.isin(g.idxmax()) if len(live) else np.zeros(0, dtype=bool)
    x = live["intensity"].to_numpy(dtype=float)
    # The lowest when |lowest| ≥ |highest|: a tie goes to the negative, and an episode of
    # zeros peaks at its first attempt (a peak always exists; a negative or positive one may not).
    negative_wins = (g.transform("min").abs() >= g.transform("max").abs()).to_numpy()
    marks = pd.DataFrame({"is_neg_peak": low & (x < 0), "is_pos_peak": high & (x > 0),
                          "is_peak": np.where(negative_wins, low, high),
                          "is_end": (g.cumcount(ascending=False) == 0).to_numpy()}, index=live.index)
    out = out.join(marks.reindex(out.index, fill_value=False).astype(bool))
    # Positions while marking (the caller's index may repeat); the caller's index back after.
    out.index = frame.index
    return out


def episodes(frame: pd.DataFrame, by: str | Sequence[str] = "episode", order: str = "order") -> pd.DataFrame:
    """One row per episode (the ``by`` columns, then the :class:`Episode` fields) from its
    attempts' rows as :func:`mark` reads them; an episode with no finished attempt has no row.

    >>> t = episodes(pd.DataFrame({"episode": ["x", "x", "x", "y"], "order": [1, 2, 3, 1],
    ...                            "intensity": [0.6, -0.8, 0.4, 0.75], "start": [0, 100, 500, 0],
    ...                            "end": [60, 160, 530, 30]}))
    >>> t[["episode", "peak", "peak_index", "end", "peak_end", "count", "duration_s"]].to_dict("records")[0]
    {'episode': 'x', 'peak': -0.8, 'peak_index': 2, 'end': 0.4, 'peak_end': -0.2, 'count': 3, \
'duration_s': 530.0}
    """
    keys = _keys(by)
    m = mark(frame, keys, order)
    live = m[np.isfinite(m["intensity"].to_numpy(dtype=float))]
    table = live.groupby(keys, sort=True, dropna=False).agg(
        mean=("intensity", "mean"), count=("intensity", "size"), first=("start", "min"), last=("end", "max"))
    for name in ("neg_peak", "pos_peak", "peak", "end"):
        at = live[live[f"is_{name}"]].set_index(keys)
        table[name] = at["intensity"]
        index = at[order].reindex(table.index)
        # Integer orders stay integers, with <NA> where an episode has no such peak.
        table[f"{name}_index"] = index.astype("Int64") if pd.api.types.is_integer_dtype(at[order]) else index
    table["peak_end"] = (table["peak"] + table["end"]) / 2
    table["duration_s"] = (table["last"] - table["first"]).astype(float)
    columns = [f for f in Episode.__dataclass_fields__]
    out: pd.DataFrame = table[columns].reset_index()
    return out


def cut(frame: pd.DataFrame, by: str | Sequence[str] = ("person", "journey"), start: str = "start",
        window_s: float = WINDOW_S) -> pd.Series:
    """Each attempt's episode within its person and journey (the ``by`` columns): 0 for the
    attempts starting within ``window_s`` of their first attempt, then 1 from the first attempt
    after that window, and so on; −1 for an attempt without a start. A Series aligned with
    ``frame`` (whose index must not repeat).

    >>> day = 86400
    >>> cut(pd.DataFrame({"person": ["p"] * 4 + ["q"], "journey": "pay",
    ...                   "start": [0, 29 * day, 31 * day, 45 * day, 40 * day]})).tolist()
    [0, 0, 1, 1, 0]
    """
    keys = _keys(by)
    if not window_s > 0:
        raise ValueError(f"window_s must be above 0, got {window_s}")
    s = frame[start].astype(float)
    known = np.isfinite(s.to_numpy())
    out = pd.Series(-1, index=frame.index, name="episode", dtype="int64")
    # One round per episode: each round takes, in every person-journey at once, the attempts
    # within the window of the earliest attempt not yet placed (rounds are few, rows many).
    k = 0
    while (open_ := (out < 0).to_numpy() & known).any():
        first = s[open_].groupby([frame.loc[open_, c] for c in keys], dropna=False).transform("min")
        out.loc[first.index[(s[open_] < first + window_s).to_numpy()]] = k
        k += 1
    return out


def remembered(frame: pd.DataFrame, by: str | Sequence[str] = "episode", moment: str = "moment",
               confidence: float = 0.95) -> pd.DataFrame:
    """Per moment, from marked attempts (:func:`mark`; rows with the ``by`` columns, ``moment``,
    ``intensity``, ``is_neg_peak``, ``is_peak`` and ``is_end``): ``episodes`` it appears in, its
    ``attempts``, their mean ``intensity``; ``neg_peak`` and ``end``, how often it is the
    negative peak (the worst attempt, and below 0) and the end ÷ the episodes it appears in,
    with Wilson intervals; ``share``,
    its weight in the peak-end score summed over episodes ÷ all episodes (the peak counts 1/2,
    the end 1/2), and ``mean_share``, its weight in the mean so counted (its attempts ÷ the
    episode's); the shares of all moments each sum to 1. Largest share first.

    >>> t = remembered(mark(pd.DataFrame({"episode": [1, 1, 2], "order": [1, 2, 1], "start": [0, 60, 0],
    ...     "end": [30, 90, 30], "moment": ["pay", "card", "pay"], "intensity": [-0.9, 0.5, 0.7]})))
    >>> t[["moment", "episodes", "neg_peak", "end", "share", "mean_share"]].to_dict("records")
    [{'moment': 'pay', 'episodes': 2, 'neg_peak': 0.5, 'end': 0.5, 'share': 0.75, 'mean_share': 0.75}, \
{'moment': 'card', 'episodes': 1, 'neg_peak': 0.0, 'end': 1.0, 'share': 0.25, 'mean_share': 0.25}]
    """
    keys = _keys(by)
    missing = [c for c in (*keys, moment, "intensity", *_MARKS) if c not in frame.columns]
    if missing:
        raise ValueError(f"the frame lacks the columns {missing} (mark() adds the marks)")
    live = frame[np.isfinite(frame["intensity"].to_numpy(dtype=float))].copy()
    live["_count"] = live.groupby(keys, dropna=False)["intensity"].transform("size")
    live["_weight"] = 0.5 * live["is_peak"] + 0.5 * live["is_end"]
    live["_mean_weight"] = 1 / live["_count"]
    per = live.groupby([*keys, moment], dropna=False).agg(
        attempts=("intensity", "size"), total=("intensity", "sum"), neg_peak=("is_neg_peak", "any"),
        end=("is_end", "any"), share=("_weight", "sum"), mean_share=("_mean_weight", "sum"))
    t = per.groupby(moment, dropna=False).agg(
        episodes=("attempts", "size"), attempts=("attempts", "sum"), total=("total", "sum"),
        neg_peak_episodes=("neg_peak", "sum"), end_episodes=("end", "sum"), share=("share", "sum"),
        mean_share=("mean_share", "sum")).reset_index()
    n = len(live.drop_duplicates(keys))
    t["intensity"] = t["total"] / t["attempts"]
    for name in ("neg_peak", "end"):
        k = t[f"{name}_episodes"].astype(int)
        t[name] = k / t["episodes"]
        cis = [list(stats.wilson_interval(a, b, confidence)) for a, b in zip(k, t["episodes"], strict=True)]
        t[f"{name}_ci"] = pd.Series(cis, index=t.index, dtype=object)
    t["share"] /= n
    t["mean_share"] /= n
    t = t.sort_values(["share", moment], ascending=[False, True], kind="stable").reset_index(drop=True)
    out: pd.DataFrame = t[[moment, "episodes", "attempts", "intensity", "neg_peak", "neg_peak_ci", "end",
                           "end_ci", "share", "mean_share"]]
    return out


def journeys(table: pd.DataFrame, journey: str = "journey", confidence: float = 0.95) -> pd.DataFrame:
    """Per journey, from episodes (:func:`episodes` rows with a ``journey`` column): its
    ``episodes``, the mean ``peak_end`` score and the mean of the episodes' ``mean``, their
    ``difference`` (peak-end − mean, paired by episode: below 0, the journey is remembered worse
    than it was lived on average), its t interval ``difference_ci`` and two-sided ``p_value``
    (None and NaN with fewer than 2 episodes or no spread).

    >>> t = journeys(pd.DataFrame({"journey": "pay", "peak_end": [-0.5, 0.2, -0.1],
    ...                            "mean": [-0.2, 0.3, 0.1]}))
    >>> round(float(t.difference[0]), 4), [round(x, 4) for x in t.difference_ci[0]]
    (-0.2, [-0.4484, 0.0484])
    """
    rows: list[dict[str, object]] = []
    from scipy import stats as sps  # scipy.stats: imported when first needed
    for name, g in table.groupby(journey, sort=True, dropna=False):
        d = (g["peak_end"] - g["mean"]).to_numpy(dtype=float)
        d = d[np.isfinite(d)]
        n = len(d)
        diff = float(d.mean()) if n else math.nan
        sd = float(d.std(ddof=1)) if n > 1 else 0.0
        ci: list[float] | None = None
        p = math.nan
        if n > 1 and sd > 0:
            se = sd / math.sqrt(n)
            half = float(sps.t.ppf(0.5 + confidence / 2, n - 1)) * se
            ci = [diff - half, diff + half]
            p = float(2 * sps.t.sf(abs(diff) / se, n - 1))
        rows.append({journey: name, "episodes": n, "peak_end": float(g["peak_end"].mean()),
                     "mean": float(g["mean"].mean()), "difference": diff, "difference_ci": ci, "p_value": p})
    columns = [journey, "episodes", "peak_end", "mean", "difference", "difference_ci", "p_value"]
    return pd.DataFrame(rows, columns=columns)
