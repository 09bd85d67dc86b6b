"""Friction signals, as the browser SDK and the apps send them, placed inside attempts.

The vocabulary is the SDK's contract:

- ``click``: ``selector``, ``x``, ``y`` (page pixels); ``dead: true`` when the SDK saw
  nothing happen after it. A burst of quick clicks on one spot is a rage click.
- ``field_edited`` when a field loses focus: ``field`` (its name, never its value),
  ``edits`` (changes while focused) and ``dwell_ms`` (time in the field).
- ``error_shown``: ``message``, ``code`` and, for a form, the ``field``.
- ``help_opened``: ``topic``.

Every helper works on the rows of a :class:`~.world.Batch` selected by ``mask`` (all
rows when it is ``None``), records at each row's clock and moves that clock on, so a
flow calls them between the moment events it emits and the signals fall inside the
attempt they belong to. Array arguments are full-length, as in :meth:`Log.where`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .world import SECOND, Batch, World, props

#: Where a control sits on the page per device (desktop, mobile, tablet), in pixels.
SPOTS: dict[str, tuple[tuple[int, int], ...]] = {
    "#pay-button": ((1010, 690), (195, 770), (610, 930)),
    "#login-button": ((760, 520), (195, 600), (512, 700)),
    "#save-password": ((760, 610), (195, 680), (512, 760)),
    "#confirm-block": ((720, 560), (195, 720), (512, 820)),
    "#create-login": ((880, 640), (195, 700), (600, 780)),
    "#continue": ((880, 860), (195, 820), (600, 980)),
    "#accept-terms": ((880, 900), (195, 840), (600, 1010)),
}
#: How far the same control moves between sessions (scrolling, window sizes), px (x, y).
LAYOUT = (24.0, 40.0)
#: How long, at least, a dead click leaves the page silent (ms; the detector waits 2.5 s).
SILENT = int(2.6 * SECOND)


def _rows(b: Batch, mask: np.ndarray | None) -> np.ndarray:
    return np.ones(len(b), dtype=bool) if mask is None else mask


def _pick(value: Any, mask: np.ndarray) -> Any:
    return value[mask] if isinstance(value, np.ndarray) else value


def _at(b: Batch, mask: np.ndarray) -> Batch:
    sub = b.take(mask)
    sub.t = sub.t.copy()
    return sub


def spot(w: World, b: Batch, selector: str) -> np.ndarray:
    """Where each row's customer sees ``selector``: an (n, 2) array of page pixels."""
    base = np.asarray(SPOTS[selector], dtype=float)[b.device]
    return np.round(base + w.rng.normal(0.0, 1.0, (len(b), 2)) * LAYOUT)


def _click_props(xy: np.ndarray, selector: str, **extra: Any) -> np.ndarray:
    return props(len(xy), selector=selector, x=xy[:, 0].astype(np.int64),
                 y=xy[:, 1].astype(np.int64), **extra)


def click(w: World, b: Batch, selector: str, mask: np.ndarray | None = None, *,
          dead: bool = False) -> None:
    """One click at the rows' clocks; ``dead`` marks it as the SDK does (nothing happened).

    The clock does not move: the caller decides what follows and when.
    """
    sub = _at(b, _rows(b, mask))
    extra = {"dead": True} if dead else {}
    w.log.emit(sub, "click", _click_props(spot(w, sub, selector), selector, **extra))


def press(w: World, b: Batch, selector: str, mask: np.ndarray | None = None) -> None:
    """Move to a control, click it, and leave the clock where the page responds."""
    m = _rows(b, mask)
    k = int(m.sum())
    b.t[m] += w.rng.integers(400, 2_500, k)
    click(w, b, selector, m)
    b.t[m] += w.rng.integers(80, 700, k)


def rage(w: World, b: Batch, selector: str, clicks: np.ndarray,
         mask: np.ndarray | None = None) -> None:
    """Bursts of ``clicks`` (3 or more) clicks on one spot, 150-600 ms apart, a few px
    from each other; the clock moves to each row's last click."""
    m = _rows(b, mask)
    if not m.any():
        return
    sub = _at(b, m)
    count = _pick(clicks, m)
    idx = np.repeat(np.arange(len(sub)), count)
    first = np.concatenate([[0], np.cumsum(count)[:-1]])
    gaps = w.rng.integers(150, 601, len(idx))
    gaps[first] = 0
    run = np.cumsum(gaps)
    offset = run - np.repeat(run[first], count)
    xy = spot(w, sub, selector)[idx] + w.rng.integers(-4, 5, (len(idx), 2))
    burst = sub.take(idx)
    burst.t = sub.t[idx] + offset
    w.log.emit(burst, "click", _click_props(xy, selector))
    b.t[m] = burst.t[np.cumsum(count) - 1]


def edit(w: World, b: Batch, field: str | np.ndarray, dwell_s: float | np.ndarray,
         mask: np.ndarray | None = None, *, edits: float = 0.3, fumble: float = 0.0,
         hunt: float = 0.0, pause_s: float = 1.2) -> np.ndarray:
    """The customer fills ``field``: a pause, the time in the field, then ``field_edited``.

    ``dwell_s`` is the median time in the field on a desktop (phones take half as long
    again); ``edits`` the mean number of corrections; ``fumble`` the share who fight the
    field (five edits or more, more often on phones) and ``hunt`` the share who stop to
    look something up (a card, a tax number): half a minute or more in the field.
    Returns the rows that struggled (five edits or more, or half a minute or more).
    """
    m = _rows(b, mask)
    sub = _at(b, m)
    n = len(sub)
    phone = sub.mobile
    dwell = w.wait(n, _pick(dwell_s, m), 0.5) * np.where(phone, 1.5, 1.0)
    count = 1 + w.rng.poisson(np.where(phone, 2 * edits, edits), n)
    fights = w.chance(n, np.where(phone, 1.5 * fumble, fumble))
    count = np.where(fights, count + w.rng.integers(4, 9, n), count)
    looks = w.chance(n, hunt)
    dwell = dwell + np.where(fights, dwell, 0) + np.where(looks, w.wait(n, 45, 0.4), 0)
    sub.t = sub.t + w.wait(n, pause_s, 0.5) + dwell.astype(np.int64)
    w.log.emit(sub, "field_edited", props(n, field=_pick(field, m), edits=count.astype(np.int64),
                                          dwell_ms=dwell.astype(np.int64)))
    b.t[m] = sub.t
    hard = np.zeros(len(b), dtype=bool)
    hard[m] = (count >= 5) | (dwell >= 30 * SECOND)
    return hard


def error(w: World, b: Batch, code: str | np.ndarray, message: str | np.ndarray,
          mask: np.ndarray | None = None, *, field: str | np.ndarray | None = None,
          after: tuple[int, int] = (30, 250)) -> None:
    """An error message shown ``after`` ms (a range) from the rows' clocks."""
    m = _rows(b, mask)
    b.t[m] += w.rng.integers(after[0], after[1], int(m.sum()))
    sub = _at(b, m)
    values: dict[str, Any] = {"message": _pick(message, m), "code": _pick(code, m)}
    if field is not None:
        values["field"] = _pick(field, m)
    w.log.emit(sub, "error_shown", props(len(sub), **values))


def help_opened(w: World, b: Batch, topic: str | np.ndarray, mask: np.ndarray | None = None,
                *, read_s: float = 25.0) -> None:
    """Help opened mid-task; the clock moves on by the time spent reading it."""
    m = _rows(b, mask)
    k = int(m.sum())
    b.t[m] += w.wait(k, 3, 0.5)
    w.log.emit(_at(b, m), "help_opened", props(k, topic=_pick(topic, m)))
    b.t[m] += w.wait(k, read_s, 0.6)


def later(w: World, b: Batch, median_s: float | np.ndarray, mask: np.ndarray,
          sigma: float = 0.6) -> None:
    """Move the clocks of the rows in ``mask`` on by a long-tailed wait."""
    b.t[mask] += w.wait(int(mask.sum()), _pick(median_s, mask), sigma)

