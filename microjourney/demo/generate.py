"""Generate the demo workspace: a workspace file, event files and support texts.

>>> import tempfile
>>> files = generate(tempfile.mkdtemp(), persons=300)
>>> files.workspace_yaml.name, [p.name for p in files.event_files]  # doctest: +NORMALIZE_WHITESPACE
('microjourney.yaml', ['digital.parquet', 'contact_centre_live.jsonl', 'notifications.jsonl',
                       'sms_gateway_replay.jsonl'])
>>> files.live == files.event_files[1], files.export.name
(True, 'contact_centre.csv')

Events come the ways a real company has them: web and app analytics as Parquet,
email/SMS delivery logs as JSON Lines, and the contact centre's chat, voice and agent
events twice: as the track calls its platform sends live to the collector
(``contact_centre_live.jsonl``, UTC; ``microjourney demo`` sends them with the Python
client) and as its nightly export (``contact_centre.csv``, the same events and ids in
the centre's local time, Central European, with the summer-time change on 25 October).
Ingesting the export after the live events adds nothing: the ids are the same.
After an outage the SMS gateway replays deliveries (``sms_gateway_replay.jsonl``): the same
ids again, which add nothing, and the lines its bad night wrote, which the quarantine
keeps with their reasons. The same seed gives byte-identical files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..vocabulary import FIELDS
from . import access, bank, commerce, contact, surveys
from .changes import shipped
from .moments import write_workspace
from .texts import compose
from .world import HOUR, SECOND, People, World, unique_hex

#: The contact centre's events as its platform sends them to the collector (UTC).
LIVE = "contact_centre_live.jsonl"
#: (file name, channels) of every event, once, in the demo's order.
FILES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("digital.parquet", ("web", "app")),
    (LIVE, ("chat", "voice", "agent")),
    ("notifications.jsonl", ("email", "sms")),
)
#: The SMS gateway's replay after an outage: 40 deliveries sent again, and the broken lines
#: of its bad night (:data:`BROKEN`); ingested last.
REPLAY = "sms_gateway_replay.jsonl"
#: The broken lines of the replay, as (why, how a delivery line is spoiled).
BROKEN: tuple[tuple[str, str], ...] = (
    ("a name in Latin-1, not UTF-8", "latin1"),
    ("a line cut by the crash", "cut"),
    ("a device clock reset to 1969", "1969-12-31T23:59:59.000+00:00"),
    ("an offset of 99 hours", "2026-10-01T08:00:00.000+99:00"),
    ("a clock 73 years ahead", "2099-10-01T08:00:00.000+00:00"),
)
#: The same events as the contact centre's export, in its local time (CET/CEST).
EXPORT = "contact_centre.csv"
MAX_TEXTS = 5_000
#: The phone system's post-call survey export (imported with ``microjourney responses``).
IVR = "ivr_survey.csv"


@dataclass(frozen=True)
class DemoFiles:
    """What :func:`generate` wrote."""

    workspace_yaml: Path          # <dir>/microjourney.yaml
    replay: Path                  # <dir>/data/sms_gateway_replay.jsonl, the last event file
    event_files: tuple[Path, ...]  # every event once, in order (each file can be ingested)
    live: Path                    # the one of event_files the demo sends through the collector
    export: Path                  # <dir>/data/contact_centre.csv: the live events again, local time
    texts: Path                   # <dir>/data/support_texts.csv
    ivr: Path                     # <dir>/data/ivr_survey.csv: post-call survey answers
    persons: int
    events: int
    changes: tuple[dict, ...] = ()  # the changes shipped in the period (demo/changes.py)
    #: The period each moment's baseline is frozen over: the four weeks before the first
    #: change shipped after the start (``since``, ``until``; days, YYYY-MM-DD).
    baseline: tuple[str, str] | None = None


def generate(directory: str | os.PathLike[str], *, persons: int = 20_000, seed: int = 7,
             start: str = "2026-09-01", days: int = 56) -> DemoFiles:
    """Simulate ``persons`` customers over ``days`` days from ``start`` and write the files."""
    root = Path(directory)
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    begin = datetime.fromisoformat(start).replace(tzinfo=UTC)
    w = World(rng, People.create(rng, persons), int(begin.timestamp() * 1000), days,
              survey_seed=seed + 1)
    access.run(w)
    commerce.run(w)
    bank.run(w)
    said = contact.run(w)

    raw = w.log.columns()
    keep = (raw["t"] >= w.start) & (raw["t"] < w.end)  # the export window cuts attempts
    order: np.ndarray = np.flatnonzero(keep)[np.argsort(raw["t"][keep], kind="stable")]
    cols: dict[str, np.ndarray] = {k: v[order] for k, v in raw.items()}
    cols["user_id"] = w.people.user_id[cols["pid"]]
    cols["user_id"][~cols["user"]] = None  # not known yet: anonymous before login
    cols["event_id"] = np.array(_uuids(unique_hex(rng, len(order), 32)), dtype=object)
    paths = []
    for name, channels in FILES:
        rows = np.isin(cols["channel"], channels)
        part = {k: v[rows] for k, v in cols.items()}
        paths.append(_write(_table(part), data / name))
        if name == LIVE:
            export = _write(_table(part, local=True), data / EXPORT)
    paths.append(_replay(paths[-1], data / REPLAY))
    texts = _texts(w, said, data / "support_texts.csv")
    ivr = surveys.write_ivr(w, data / IVR, _iso)
    surveys.write_nps(w, cols, data / surveys.NPS_EXPORT, _iso)
    return DemoFiles(workspace_yaml=write_workspace(root / "microjourney.yaml"), replay=paths[-1],
                     event_files=tuple(paths), live=data / LIVE, export=export, texts=texts,
                     ivr=ivr, persons=persons, events=len(order),
                     changes=tuple(shipped(begin.date(), days)),
                     baseline=(begin.date().isoformat(),
                               (begin.date() + timedelta(days=min(28, days // 2))).isoformat()))


def _table(part: dict[str, np.ndarray], *, local: bool = False) -> pa.Table:
    """Events as text columns; timestamps in UTC, or in the contact centre's local time."""
    return pa.table({
        "event_id": part["event_id"], "timestamp": _iso(part["t"], local=local),
        "event": part["event"], "anonymous_id": part["anon"], "user_id": part["user_id"],
        "channel": part["channel"], "session_id": part["session"],
        "properties": part["props"], "context": part["ctx"]},
        schema=pa.schema([(f, pa.string()) for f in FIELDS]))


def _uuids(hexes: np.ndarray) -> list[str]:
    """Random ids shaped like UUID version 4, as tracking SDKs send them."""
    return [f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:32]}"
            for h in hexes]


def _cet_offset(t: np.ndarray) -> np.ndarray:
    """UTC offset in hours of Central European Time: +2 in summer, +1 in winter.

    Summer time runs from the last Sunday of March to the last Sunday of October,
    switching at 01:00 UTC.
    """
    offset = np.ones(len(t), dtype=np.int64)
    years = np.unique(t.astype("datetime64[ms]").astype("datetime64[Y]").astype(int) + 1970)
    for year in years.tolist():
        bounds = []
        for month in (3, 10):
            last = datetime(year, month, 31, 1, tzinfo=UTC)
            last -= timedelta(days=(last.weekday() + 1) % 7)  # back to Sunday
            bounds.append(int(last.timestamp() * 1000))
        offset[(t >= bounds[0]) & (t < bounds[1])] = 2
    return offset


def _iso(t: np.ndarray, *, local: bool = False) -> np.ndarray:
    """ISO 8601 text with milliseconds and an explicit offset (UTC or local CET)."""
    hours = _cet_offset(t) if local else np.zeros(len(t), dtype=np.int64)
    text = np.datetime_as_string((t + hours * HOUR).astype("datetime64[ms]"), unit="ms")
    suffix = np.where(hours == 2, "+02:00", np.where(hours == 1, "+01:00", "+00:00"))
    return np.char.add(text, suffix).astype(object)


def _write(table: pa.Table, path: Path) -> Path:
    if path.suffix == ".parquet":
        pq.write_table(table, path, compression="zstd")
    elif path.suffix == ".csv":
        pacsv.write_csv(table, path)
    else:  # JSON Lines: properties and context as nested objects, as delivery logs have
        with path.open("w", encoding="utf-8") as out:
            for row in table.to_pylist():
                props, ctx = row.pop("properties"), row.pop("context")
                head = json.dumps(row, separators=(",", ":"))[:-1]
                out.write(f'{head},"properties":{props},"context":{ctx}}}\n')
    return path


def _replay(deliveries: Path, path: Path, resent: int = 40) -> Path:
    """``resent`` lines of ``deliveries`` (evenly spread) again, with the :data:`BROKEN` lines
    (deliveries with new ids, spoiled) spread among them."""
    lines = deliveries.read_bytes().splitlines()
    out = lines[:: max(1, len(lines) // resent)][:resent]
    for k in reversed(range(len(BROKEN))):
        at = (k + 1) * len(out) // (len(BROKEN) + 1)
        out.insert(at, _spoil(out[at], k))
    path.write_bytes(b"\n".join(out) + b"\n")
    return path


def _spoil(line: bytes, k: int) -> bytes:
    """Delivery ``line`` with a new id, spoiled as :data:`BROKEN` ``k`` says."""
    row = json.loads(line)
    row["event_id"] = f"replay-broken-{k + 1}"
    how = BROKEN[k][1]
    if how == "latin1":
        row["properties"] = {**row["properties"], "recipient_name": "Müller"}
        return json.dumps(row, ensure_ascii=False).encode("latin-1")
    if how == "cut":
        return json.dumps(row).encode()[:60]
    row["timestamp"] = how
    return json.dumps(row).encode()


def _texts(w: World, said: contact.Texts, path: Path) -> Path:
    """Support texts from contacts plus help-centre searches after self-service trouble."""
    pid = list(said.pid)
    t = [x + w.wait(len(x), 20, 0.5) for x in said.t]
    channel, topic, known = list(said.channel), list(said.topic), list(said.user)
    for b, name in w.troubles:  # some people search the help centre instead of calling
        m = w.chance(len(b), 0.12)
        pid.append(b.pid[m])
        known.append(b.user[m])
        t.append(b.t[m] + w.wait(int(m.sum()), 40, 0.6))
        channel.append(np.full(int(m.sum()), "web", dtype=object))
        topic.append(np.full(int(m.sum()), name, dtype=object))
    all_t = np.concatenate(t)
    rows = np.flatnonzero((all_t >= w.start) & (all_t < w.end))
    if len(rows) > MAX_TEXTS:
        rows = np.sort(w.rng.choice(rows, MAX_TEXTS, replace=False))
    all_pid, all_channel, all_topic, all_known = (
        np.concatenate(x)[rows] for x in (pid, channel, topic, known))
    all_t = all_t[rows]
    order = np.argsort(all_t, kind="stable")
    user = np.where(all_known, w.people.user_id[all_pid], None)
    text = [compose(all_topic[i], all_channel[i], w.rng) for i in order]
    kind = {"web": "helpcentre", "chat": "chat", "voice": "agent_note", "agent": "agent_note"}
    table = pa.table({
        "text_id": [f"txt-{i + 1:06d}" for i in range(len(order))],
        "timestamp": _iso(all_t[order] - all_t[order] % SECOND),
        "channel": all_channel[order], "source": [kind.get(c, "other") for c in all_channel[order]],
        "user_id": user[order], "text": text},
        schema=pa.schema([(c, pa.string()) for c in
                          ("text_id", "timestamp", "channel", "source", "user_id", "text")]))
    pacsv.write_csv(table, path)
    return path
