"""Regression alerts: the runs of days on which a moment's metric was worse than the same
weekdays of the weeks before, beyond its ordinary day-to-day variation (docs/alerts.md).

The baseline. Each day is held against the median of the same weekday's last
``baseline_weeks`` usable days (a rate, mean seconds, attempts): a busy Monday and a quiet
Sunday are each their own normal, and one bad day among four does not move a median. Days
of a regression leave the baselines, which then look further back (up to twice
``baseline_weeks``), so a long incident does not become the new normal; if it outlasts
them, its days go untested (``baseline-exhausted``) and, two weeks on, are the new normal.

The test. A day's value against its baseline as a z score: for rates the binomial, for
volume the Poisson mid-p tail turned into a normal quantile (exact for the few escalations
of a small moment); for means the log of the ratio over its standard error, from the
baseline days' pooled spread (a day's mean keeps some of the long right tail of seconds;
its log is nearly symmetric). Two things widen it. The baseline's own uncertainty: a median
of k days varies more than their mean (1.35 times for 3, 1.19 for 4; π/2 for many). And
overdispersion: days vary more than sampling alone, by a factor read each week from every
usable day of the ``2 × baseline_weeks`` weeks before, each against the median of its
weekday's other days (leaving out the last week once two remain without it, so that an
incident's first days cannot mask it): their robust variance (:func:`_dispersions`), at
least 1. Being an estimate, it is used with Student's t quantiles on its degrees of freedom.

The run rule. A day is regressed when its one-sided p-value in the worse direction (either
for volume: a drop, or a spike of retries or bots) is below ``alpha``. A regression is
``min_days`` consecutive regressed days; it lasts while the next days stay worse at the
looser level :data:`LOOSE` (one quieter day does not split an incident in two), and it
starts where the evidence before it adds up: stepping back over up to a week of days just
before, to where the sum of (z − :data:`ONSET`) back to it is largest, a CUSUM's estimate
of when a shift began. Days with too few units (:data:`MIN_UNITS`, :data:`MIN_COUNT`) are
passed over; a day without a baseline ends a run. Weeks run Monday to Sunday and each draws
only on the days before it, so a day's result never changes as later days arrive: a
regression seen again keeps its start and its :func:`alert_id`.

Size. Over the run's days: the observed value (pooled: bad outcomes over finished
attempts, seconds over attempts measured, attempts per day) minus the baselines of the same
days weighted alike, with a 95% t interval from the days' sampling variance at the observed
level, their extra variation (the overdispersion's, grown with the level, as in a negative
binomial) and the baselines' variance. The p-value is of the whole run against its null
variance (one-sided, and optimistic: the run was picked for being worse).

>>> day0 = date(2024, 1, 1)
>>> daily = pd.DataFrame({"moment": "pay", "metric": "failure_rate",
...                       "day": [day0 + timedelta(days=i) for i in range(40)],
...                       "num": [50.0] * 35 + [120.0] * 3 + [50.0] * 2, "den": 1000.0})
>>> [alert], notices = detect(daily, Alerts())
>>> alert.start, alert.end, alert.days, alert.ongoing, round(alert.size, 3)
(datetime.date(2024, 2, 5), datetime.date(2024, 2, 7), 3, False, 0.07)
>>> [n.code for n in notices]
['too-little-history']
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import special

from ..spec.alerts import Alerts
from .alerts_segments import METRICS, Mover, movers
from .experiments.notices import Notice, unique

__all__ = ["BASELINE_EXHAUSTED", "COLUMNS", "LOOSE", "LOW_VOLUME", "METRICS", "MIN_COUNT", "MIN_UNITS",
           "ONSET", "TOO_LITTLE_HISTORY", "UNKNOWN_METRIC", "Alert", "Mover", "alert_id", "detect",
           "movers"]

#: Each kind's columns of ``daily``, as x (bad outcomes, seconds, attempts), w and q.
COLUMNS: Final[Mapping[str, tuple[str, ...]]] = {
    "rate": ("num", "den"), "mean": ("sum", "n", "sum2"), "count": ("count",)}

#: A day with fewer finished attempts (rates) or attempts measured (means) is neither tested
#: nor used in a baseline: at 30, a rate's 95% interval is still ±18 points wide.
MIN_UNITS = 30
#: Volume is not tested where the baseline is below this many attempts a day.
MIN_COUNT = 10
#: The looser level a regression's days stay worse at, before and after its ``alpha`` days.
LOOSE = 0.1
#: A regression's start steps back over the days before it while their z scores exceed this
#: on balance, up to a week: a CUSUM's reference value, half the shift of about 3 standard
#: errors that a daily test at alpha 0.001 is built to see.
ONSET, ONSET_DAYS = 1.5, 7
#: The pooled score of a stretch of days is held to ``alpha`` × this: every stretch is
#: read at every length, so its level is kept far below a single day's.
POOLED = 0.01
#: Residuals needed to read a week's overdispersion; with fewer the last reading stands.
MIN_RESIDUALS = 7

#: Notice codes: days without two weeks of baseline; a regression too long to keep a
#: baseline; days with too few units; a metric this module does not know.
TOO_LITTLE_HISTORY = "too-little-history"
BASELINE_EXHAUSTED = "baseline-exhausted"
LOW_VOLUME = "low-volume"
UNKNOWN_METRIC = "unknown-metric"

_TESTED, _LOW, _NO_HISTORY, _EXHAUSTED = range(4)


@dataclass(frozen=True)
class Alert:
    """A regression: the run of days ``start`` to ``end`` (the last day examined while it is
    ``ongoing``), the metric over the run's days against its baseline over the same days,
    ``size`` (observed − baseline: rate points as a fraction, seconds, attempts per day) with
    its 95% interval, the run's p-value, ``days`` (its tested days) and ``alert_id``, the
    same for the same regression however many days later it is seen again.
    ``baseline_days``: the days its baselines were drawn from (for the same tallies by
    segment, :func:`movers`)."""

    moment: str
    metric: str
    start: date
    end: date
    baseline: float
    observed: float
    size: float
    ci: tuple[float, float]
    p_value: float
    days: int
    ongoing: bool
    alert_id: str
    baseline_days: tuple[date, ...] = field(default=(), compare=False)


def alert_id(moment: str, metric: str, start: date) -> str:
    """A regression's stable id: a hash of its moment, metric and first day.

    >>> alert_id("pay", "failure_rate", date(2024, 3, 1))
    'd54afbf876b35880'
    """
    key = f"{moment}\x1f{metric}\x1f{start.isoformat()}".encode()
    return hashlib.sha256(key).hexdigest()[:16]


#: How much more a median of k days varies than their mean, by k (for normal days; from 9
#: days on, π/2, its large-k value, which overstates it a little).
_MEDIAN = np.array([1.0, 1.0, 1.0, 1.35, 1.19, 1.44, 1.29, 1.48, 1.35] + [math.pi / 2] * 44)
#: The overdispersion's residuals are winsorised at this many of their scales.
_CLIP = 2.5
#: E[min(Z², c²)] for a standard normal Z: the winsorised mean square of unit residuals.
_KAPPA = float(2 * special.ndtr(_CLIP) - 1 - 2 * _CLIP * math.exp(-_CLIP**2 / 2) / math.sqrt(2 * math.pi)
               + 2 * _CLIP**2 * special.ndtr(-_CLIP))
Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


def _dispersions(r: Floats, week: Ints, group: Ints, weeks: int) -> tuple[Floats, Floats]:
    """Each week's overdispersion factor from its residuals ``r`` (unit variance under
    sampling alone; ``week`` and weekday ``group`` of each) and its degrees of freedom (one
    lost to each weekday's median); NaN for a week with fewer than :data:`MIN_RESIDUALS`.

    The factor is the residuals' variance, robustly, at least 1: from the median absolute
    residual, then three steps of the mean square with each residual winsorised at 2.5 of
    the scale so far. A few bad days cannot move it much, and it is nearly as precise as
    the plain variance (the median absolute residual alone, over a few dozen days, varies
    about twice as much, and a factor read too low is a false alarm)."""
    count = np.bincount(week, minlength=weeks)
    size = np.append(np.abs(r)[np.lexsort((np.abs(r), week))], 0.0)  # each week's in order
    start = np.cumsum(count) - count
    lo, hi = (np.where(count > 0, start + middle, len(r)) for middle in ((count - 1) // 2, count // 2))
    v = np.maximum((1.4826 * 0.5 * (size[lo] + size[hi])) ** 2, 1e-6)
    for _ in range(3):
        v = np.bincount(week, np.minimum(r**2, _CLIP**2 * v[week]), minlength=weeks)
        v = v / np.maximum(count, 1) / _KAPPA
    groups = np.bincount(np.unique(group) // 7, minlength=weeks)
    enough = count >= MIN_RESIDUALS
    return (np.where(enough, np.maximum(v, 1.0), math.nan),
            np.where(enough, count - groups, math.nan).astype(np.float64))


def _mid_z(kind: str, x: Floats, w: Floats, base: Floats) -> Floats:
    """z of each count ``x`` by its mid-p tail: Binomial(``w``, ``base``) or Poisson(``base``),
    from the smaller tail (the precise one)."""
    k = np.round(x).astype(np.int64)  # bdtr and pdtr take whole counts
    j = np.maximum(k - 1, 0)
    if kind == "rate":
        n = np.round(w).astype(np.int64)
        below, upto = special.bdtr(j, n, base), special.bdtr(k, n, base)
        above, from_ = special.bdtrc(k, n, base), special.bdtrc(j, n, base)
    else:
        below, upto = special.pdtr(j, base), special.pdtr(k, base)
        above, from_ = special.pdtrc(k, base), special.pdtrc(j, base)
    low = 0.5 * (np.where(k >= 1, below, 0.0) + upto)
    up = 0.5 * (above + np.where(k >= 1, from_, 1.0))
    z = np.where(up < low, -special.ndtri(up), special.ndtri(low))
    return np.asarray(np.clip(z, -40.0, 40.0), dtype=np.float64)


class _Series:
    """One moment's metric over consecutive days: ``x`` (bad outcomes, seconds, attempts),
    ``w`` (finished attempts, attempts measured; 1 for volume) and ``q`` (means: the sum of
    squares); per day also its value ``y``, 1/w and the squared deviations within it."""

    def __init__(self, kind: str, x: Floats, w: Floats, q: Floats) -> None:
        self.kind, self.x, self.w = kind, x, w
        safe = np.where(w > 0, w, 1.0)
        self.y = x if kind == "count" else x / safe
        self.inv = 1 / safe
        self.within = q - x**2 / safe
        self.valid = np.ones(len(x), dtype=bool) if kind == "count" else w >= MIN_UNITS

    def baselines(self, idx: Ints) -> tuple[Floats, Floats, Floats, Ints]:
        """For each row of day indices (−1: none; at least one day): the baseline, the median
        of the days' values; one unit's variance under it; the mean of 1/w; the days."""
        ok = idx >= 0
        k = ok.sum(axis=1)
        at = np.where(ok, idx, 0)
        values = np.sort(np.where(ok, self.y[at], np.inf), axis=1)
        base = 0.5 * (np.take_along_axis(values, ((k - 1) // 2)[:, None], axis=1)[:, 0]
                      + np.take_along_axis(values, (k // 2)[:, None], axis=1)[:, 0])
        if self.kind == "count":
            return base, np.maximum(base, 0.5), np.ones(len(k)), k
        inv = np.where(ok, self.inv[at], 0.0).sum(axis=1) / k
        if self.kind == "rate":
            # A baseline of 0 (or 1) would make one failure infinitely surprising: half a
            # failure over the baseline's attempts is as low as it is taken to be.
            half = 0.5 / np.where(ok, self.w[at], 0.0).sum(axis=1)
            base = np.clip(base, half, 1 - half)
            return base, base * (1 - base), inv, k
        within = (np.where(ok, self.within[at], 0.0).sum(axis=1)
                  / np.where(ok, self.w[at] - 1, 0.0).sum(axis=1))
        return base, np.maximum(within, 1e-12), inv, k

    def raw_z(self, days: Ints, base: Floats, unit: Floats) -> Floats:
        """Each day's z against its baseline, before the baseline's and overdispersion's share."""
        x, w = self.x[days], self.w[days]
        if self.kind == "mean":
            # On the log scale (the difference as base × log(y / base), its delta-method
            # equal): seconds have a long right tail, which a day's mean keeps in part;
            # its logarithm is nearly symmetric, so a long day is not taken for a regression.
            y = x / w
            with np.errstate(divide="ignore", invalid="ignore"):
                gap = np.where((base > 0) & (y > 0), base * np.log(y / base), y - base)
            return np.asarray(np.clip(gap / np.sqrt(unit / w), -40.0, 40.0), dtype=np.float64)
        return _mid_z(self.kind, x, w, base)


@dataclass
class _Scan:
    """Per day: status, z, baseline, one unit's null variance, the baseline's variance, the
    week's overdispersion and its degrees of freedom, the baseline's days (−1: none); and
    the runs (days, direction, ongoing)."""

    status: Ints
    z: Floats
    base: Floats
    unit: Floats
    vbase: Floats
    phi: Floats
    df: Floats
    group: Ints
    runs: list[tuple[list[int], int, bool]] = field(default_factory=list)


def _compact(keep: npt.NDArray[np.bool_], days: Ints) -> Ints:
    """Per row, the ``days`` that ``keep`` holds, in order, then −1s."""
    order = np.argsort(~keep, axis=1, kind="stable")
    return np.where(np.take_along_axis(keep, order, axis=1), np.take_along_axis(days, order, axis=1), -1)


def _weeks(s: _Series, mondays: Ints, usable: npt.NDArray[np.bool_], weeks: int,
           out: _Scan) -> tuple[Floats, Floats]:
    """Test the days of the weeks from ``mondays`` (indices, the first perhaps before the
    first day), each against the median of its weekday's last ``weeks`` usable days: fill
    ``out`` for them (z before the overdispersion). Returns each week's overdispersion and
    degrees of freedom, from every usable day of the ``2 × weeks`` weeks before it (but the
    last, where 2 weeks remain without it: an incident's first days do not mask it), each
    against the median of the other days of its weekday."""
    n, span, nweeks = len(usable), 2 * weeks, len(mondays)
    virtual = (mondays[:, None] + np.arange(7)).reshape(-1)  # every weekday of every week
    back = virtual[:, None] - 7 * np.arange(1, span + 2)
    at = np.maximum(back, 0)
    use = (back >= 0) & usable[at]
    near, lagged = _compact(use[:, :span], back[:, :span]), _compact(use[:, 1:], back[:, 1:])
    size_near, size_lag = (near >= 0).sum(axis=1), (lagged >= 0).sum(axis=1)
    lag = np.repeat((size_lag * (size_lag >= 2)).reshape(nweeks, 7).sum(axis=1) >= 14, 7)
    groups = np.where(lag[:, None], lagged, near)
    size = np.where(lag, size_lag, size_near)
    # Leave-one-out: each day of a weekday with 2 days or more against the others.
    owner = np.flatnonzero(size >= 2)
    loo = np.repeat(groups[owner][:, None, :], span, axis=1)
    loo[:, np.arange(span), np.arange(span)] = -1
    who, group = groups[owner].reshape(-1), np.repeat(owner, span)
    loo, group, who = loo.reshape(-1, span)[who >= 0], group[who >= 0], who[who >= 0]
    # The days to test, and why the others are not.
    real = (virtual >= 0) & (virtual < n)
    days, own = virtual[real], near[real]
    valid, short = s.valid[days], size_near[real] < 2
    known = ((back[real, :span] >= 0) & s.valid[at[real, :span]]).sum(axis=1)
    out.status[days] = np.where(valid & short, np.where(known >= 2, _EXHAUSTED, _NO_HISTORY), _LOW)
    tested = valid & ~short
    days, own = days[tested], own[tested]
    own[:, weeks:] = -1
    idx = np.concatenate([who, days])
    base, unit, inv, k = s.baselines(np.concatenate([loo, own]))
    share = _MEDIAN[k] * s.w[idx] * inv / k  # the baseline's variance over the day's
    r = s.raw_z(idx, base, unit) / np.sqrt(1 + share)
    keep = base >= MIN_COUNT if s.kind == "count" else np.ones(len(idx), dtype=bool)
    m = len(who)
    test = keep[m:]
    days, own = days[test], own[test]
    out.status[days] = _TESTED
    out.group[days] = own[:, :weeks]
    for column, values in ((out.base, base), (out.unit, unit), (out.z, r)):
        column[days] = values[m:][test]
    out.vbase[days] = (_MEDIAN[k] * unit * inv / k)[m:][test]
    res = keep[:m]
    return _dispersions(r[:m][res], group[res] // 7, group[res], nweeks)


def _scan(s: _Series, first: date, settings: Alerts, sign: int) -> _Scan:
    """Test every day, a week (Monday to Sunday) at a time: a week's baselines and its
    overdispersion come from the days before it, so a day's result never depends on later
    days, and a regression seen again with more days keeps its start. The weeks are computed
    together, again from the next week on whenever a day leaves the baselines."""
    n, weeks = len(s.x), settings.baseline_weeks
    z, base, unit, vbase, phis, dfs = np.full((6, n), math.nan)
    out = _Scan(np.full(n, _LOW), z, base, unit, vbase, phis, dfs, np.full((n, weeks), -1))
    usable = np.array(s.valid, dtype=bool)
    mondays = np.arange(-first.weekday(), n, 7)
    z_alpha = float(-special.ndtri(settings.alpha))
    z_loose = float(-special.ndtri(LOOSE))
    z_pooled = float(-special.ndtri(settings.alpha * POOLED))
    phi, dof = 1.0, math.inf
    stale, since = True, 0
    week_phi, week_df = np.empty(0), np.empty(0)
    run: list[int] = []
    direction, consecutive, confirmed, floor, pooled = 0, 0, False, -1, 0.0

    def close(ongoing: bool = False) -> None:
        nonlocal run, consecutive, confirmed, floor, pooled
        if confirmed:
            out.runs.append((run, direction, ongoing))
            floor = run[-1]
        run, consecutive, confirmed, pooled = [], 0, False, 0.0

    def onset() -> list[int]:
        """The tested days just before the run that join it: those after which the sum of
        (z − ONSET) back to the run is largest (none if it never rises above 0)."""
        best, total, days, joined = 0.0, 0.0, list[int](), list[int]()
        t = run[0] - 1
        while t > floor and len(days) < ONSET_DAYS and out.status[t] in (_TESTED, _LOW):
            if out.status[t] == _TESTED:
                total += direction * float(out.z[t]) - ONSET
                days.append(t)
                if total > best:
                    best, joined = total, days[:]
            t -= 1
        return joined[::-1]

    for w, monday in enumerate(mondays.tolist()):
        if stale:
            week_phi, week_df = _weeks(s, mondays[w:], usable, weeks, out)
            stale, since = False, w
        if not math.isnan(week_phi[w - since]):
            phi, dof = float(week_phi[w - since]), float(week_df[w - since])
            # The factor is an estimate: Student's t quantiles with its degrees of freedom
            # keep a rough one (a few weeks of history) from raising alarms.
            z_alpha = float(special.stdtrit(dof, 1 - settings.alpha))
            z_loose = float(special.stdtrit(dof, 1 - LOOSE))
            z_pooled = float(special.stdtrit(dof, 1 - settings.alpha * POOLED))
        # The run rule, day by day.
        for t in range(max(monday, 0), min(monday + 7, n)):
            if out.status[t] == _LOW:
                continue
            if out.status[t] != _TESTED:
                close()
                continue
            out.z[t] /= math.sqrt(phi)
            out.phi[t], out.df[t] = phi, dof
            zt = float(out.z[t])
            towards = sign or (1 if zt >= 0 else -1)
            v = towards * zt
            if not v > z_loose:  # NaN too (impossible tallies, such as more failures than attempts)
                close()
                continue
            if run and towards != direction:
                close()
            if not run:
                direction = towards
            run.append(t)
            consecutive = consecutive + 1 if v > z_alpha else 0
            pooled += v
            # Either min_days days each beyond alpha, or a stretch of at least min_days days,
            # each worse at the looser level, whose pooled (Stouffer) score is beyond alpha:
            # a step that doubles on one platform moves each day of the whole moment too
            # little to pass alpha alone, but days in a row add up.
            if not confirmed and (consecutive >= settings.min_days or (
                    len(run) >= settings.min_days and pooled / math.sqrt(len(run)) > z_pooled)):
                confirmed, run = True, onset() + run
            # Regressed days leave the baselines (and the weeks after are computed again).
            for d in (run if confirmed else [t] if v > z_alpha else []):
                stale = stale or bool(usable[d])
                usable[d] = False
    close(ongoing=True)
    return out


def _alert(moment: str, metric: str, s: _Series, scan: _Scan, run: list[int], direction: int,
           ongoing: bool, first: date, last: date) -> Alert:
    """The alert of one run: the observed value and the baseline over its days, the size
    with its interval, and the p-value of the whole run."""
    x, w, base, unit, vbase, phi, df = (v[run] for v in (s.x, s.w, scan.base, scan.unit, scan.vbase,
                                                         scan.phi, scan.df))
    a = w if s.kind != "count" else np.ones(len(run))  # each day's weight in the run's value
    total = float(a.sum())
    observed = float(x.sum() / total)
    baseline = float((a * base).sum() / total)
    if s.kind == "rate":
        spread = observed * (1 - observed) / w
        # The rarer side's rate sets how much days vary beyond sampling.
        level = np.maximum(observed / base, (1 - observed) / (1 - base))
    else:
        within = max(float(s.within[run].sum() / (w - 1).sum()), 0.0) if s.kind == "mean" else observed
        spread = np.full(len(run), within) / w
        level = observed / np.where(base > 0, base, math.inf)
    # Days vary beyond sampling by a share of their level (as in a negative binomial): the
    # run's days by as much more as its level is higher, never less than the baseline's.
    extra = (phi - 1) * unit / w * np.maximum(level, 1.0) ** 2
    se = math.sqrt(float((a**2 * (spread + extra + phi * vbase)).sum())) / total
    null = math.sqrt(float((a**2 * phi * (unit / w + vbase)).sum())) / total
    size = observed - baseline
    dof = float(df.min())
    p = float(special.stdtr(dof, -direction * size / null)) if null > 0 else math.nan
    half = float(special.stdtrit(dof, 0.975)) * se
    start = first + timedelta(days=run[0])
    base_days = sorted({int(d) for d in scan.group[run].reshape(-1) if d >= 0})
    return Alert(moment, metric, start, last if ongoing else first + timedelta(days=run[-1]),
                 baseline, observed, size, (size - half, size + half), p, len(run),
                 ongoing, alert_id(moment, metric, start),
                 tuple(first + timedelta(days=d) for d in base_days))


def _span(first: date, days: list[int]) -> str:
    """``14 days from 2024-01-01 to 2024-01-14`` (or ``1 day, 2024-01-01``)."""
    one, last = first + timedelta(days=days[0]), first + timedelta(days=days[-1])
    return f"1 day, {one}" if len(days) == 1 else f"{len(days)} days from {one} to {last}"


def _notices(name: str, first: date, status: Ints, lo: int, kind: str,
             weeks: int) -> list[Notice]:
    out = []
    for code, what, message in (
            (_NO_HISTORY, TOO_LITTLE_HISTORY, "have fewer than 2 weeks of history; not tested"),
            (_EXHAUSTED, BASELINE_EXHAUSTED,
             f"regressed so long that fewer than 2 of the {2 * weeks} weeks before were normal; "
             "not tested, and the new normal once 2 weeks of them are seen"),
            (_LOW, LOW_VOLUME, "had too few attempts to test (under "
             + (f"{MIN_COUNT} a day in the baseline)" if kind == "count" else f"{MIN_UNITS})"))):
        days = [d for d in range(lo, len(status)) if status[d] == code]
        if days:
            out.append(Notice(what, f"{name}: {_span(first, days)} {message}"))
    return out


def detect(daily: pd.DataFrame, settings: Alerts, *, since: date | None = None,
           until: date | None = None) -> tuple[list[Alert], tuple[Notice, ...]]:
    """The regressions of each moment's metrics, by start, and notices of what went untested.

    ``daily``: columns moment, metric, day (a date), and num/den (rates), n/sum/sum2 (means)
    or count (volume), NaN elsewhere; repeated rows of a day add up. Days after ``until``
    (default: the last day of ``daily``) are not read; a moment's volume is 0 on its days
    without a row up to it. Every earlier day is read for baselines and runs; ``since``
    keeps the alerts that reach it and the notices about days from it.
    """
    frame = daily.copy()
    frame["day"] = pd.to_datetime(frame["day"]).dt.date
    last = until if until is not None else max(frame["day"], default=None)
    alerts: list[Alert] = []
    notices: list[Notice] = []
    if last is None:
        return alerts, ()
    frame = frame[frame["day"] <= last]
    for (moment, metric), rows in frame.groupby(["moment", "metric"], sort=True):
        moment, metric = str(moment), str(metric)
        if metric not in METRICS:
            notices.append(Notice(UNKNOWN_METRIC, f"{moment}: no regression test for {metric!r}"))
            continue
        kind, sign = METRICS[metric]
        missing = [c for c in COLUMNS[kind] if c not in rows.columns]
        if missing:
            raise ValueError(f"{metric} needs the columns {', '.join(missing)}")
        sums = rows.groupby("day")[list(COLUMNS[kind])].sum(min_count=1).fillna(0.0)
        first = min(sums.index)
        at = np.array([(d - first).days for d in sums.index])
        cols = {c: np.zeros((last - first).days + 1) for c in ("x", "w", "q")}
        for name, column in zip(("x", "w", "q"), COLUMNS[kind], strict=False):
            cols[name][at] = sums[column].to_numpy(dtype=np.float64)
        if kind == "count":
            cols["w"][:] = 1.0
        series = _Series(kind, cols["x"], cols["w"], cols["q"])
        scan = _scan(series, first, settings, sign)
        lo = max(0, (since - first).days) if since is not None else 0
        for run, direction, ongoing in scan.runs:
            if ongoing or run[-1] >= lo:
                alerts.append(_alert(moment, metric, series, scan, run, direction, ongoing, first, last))
        notices += _notices(f"{moment} {metric}", first, scan.status, lo, kind, settings.baseline_weeks)
    alerts.sort(key=lambda a: (a.start, a.moment, a.metric))
    return alerts, unique(notices)
