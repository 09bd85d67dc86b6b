"""The Python API: a workspace folder with its definitions and its store.

>>> import microjourney as mj                       # doctest: +SKIP
>>> ws = mj.open("demo")                            # doctest: +SKIP
>>> ws.scorecard().to_pandas()                      # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import ibis
import pyarrow as pa
from ibis.expr.types import Table

from .engine.derived import erasable
from .engine.runtime import ObjectLake, Runtime, Store
from .engine.runtime import open_runtime as engine_runtime
from .errors import IngestError, QueryError, WorkspaceError
from .identity import key_kind, with_person
from .ingest import readers
from .ingest.advice import Rejections
from .ingest.lines import Limits, Reject
from .spec import Moment, load_workspace
from .spec.model import Workspace as Spec
from .store import batches as store_batches
from .store import connect, write_batch, write_parquet, write_rejects
from .store import keys as store_keys
from .store import quarantine as store_quarantine
from .store.erasure import ErasureResult, erase
from .store.identities import IdentityResult, write_calls
from .store.keys import Keys
from .store.lake import ExportResult, event_objects, locate
from .store.lake import export as export_to_lake
from .workspace_analyses import Analyses
from .workspace_changes import Changes
from .workspace_context import Context
from .workspace_frictions import Frictions
from .workspace_refresh import Refresh, Refreshed
from .workspace_surveys import Surveys

SPEC_FILE = "microjourney.yaml"
STORE_DIR = ".microjourney"
STORE_FILE = "store.duckdb"
TEMPLATE = """\
# microjourney workspace: journeys group moments; a moment is a short, bounded
# interaction measured from its start, through its steps, to its outcome.
# Reference: docs/workspace.md
name: {name}
journeys: []
#  - name: payment
#    moments:
#      - name: card_payment
#        start: {{event: checkout_payment_opened}}
#        steps:
#          - {{event: payment_gateway_loaded}}
#        complete: {{event: payment_succeeded}}
#        fail: {{event: payment_failed}}
#        timeout: 30m
#        sla: 90s
"""


@dataclass(frozen=True)
class IngestResult:
    source: str
    format: str
    accepted: int
    duplicates: int
    rejected: int
    #: Events not stored (nor quarantined) for lack of analytics consent (docs/privacy.md).
    withheld: int = 0
    #: Rows found invalid, whether quarantined now or by an earlier ingest of the file.
    invalid: int = 0
    #: When every row was invalid: how many, the commonest reason and the likeliest fix.
    advice: str | None = None

    @property
    def rows(self) -> int:
        return self.accepted + self.duplicates + self.rejected + self.withheld


def init(directory: str | os.PathLike[str], *, name: str | None = None) -> Workspace:
    """Create a workspace: ``microjourney.yaml`` and ``.microjourney/`` with a store."""
    root = Path(directory)
    spec = root / SPEC_FILE
    if spec.exists():
        raise WorkspaceError(f"{spec} already exists; open it instead", code="workspace/exists")
    root.mkdir(parents=True, exist_ok=True)
    spec.write_text(TEMPLATE.format(name=name or root.resolve().name), encoding="utf-8")
    connect(root / STORE_DIR / STORE_FILE).close()
    return Workspace(root)


def open(directory: str | os.PathLike[str] = ".", *, engine: str | None = None,  # noqa: A001
         lake: str | os.PathLike[str] | None = None) -> Workspace:
    """Open the workspace in ``directory``; analyses run on ``engine`` (duckdb | spark)
    over ``lake`` (a folder or an ``s3://`` URL written by ``export --lake``) when given,
    else as the workspace's ``engine:`` section says (default: DuckDB over the store)."""
    return Workspace(Path(directory), engine=engine, lake=lake)


def spec_file(directory: str | os.PathLike[str]) -> Path:
    """The workspace file in ``directory``; an error when there is none."""
    root = Path(directory)
    if not (root / SPEC_FILE).is_file():
        raise WorkspaceError(f"no workspace at {root.resolve()} (no {SPEC_FILE}); create one with "
                             f"`microjourney init {root}`", code="workspace/missing")
    return root / SPEC_FILE


def keys(directory: str | os.PathLike[str] = ".", *, rotate: bool = False) -> Keys:
    """The write and secret keys of the workspace in ``directory`` (made on first use;
    ``rotate=True`` replaces both). Works while a server holds the store."""
    path = spec_file(directory).parent / STORE_DIR / store_keys.FILE  # store.keys makes the folder
    return store_keys.rotate(path) if rotate else store_keys.keys(path)


def _configured_lake(root: Path, lake: str | None) -> str | Path | None:
    """``engine.lake``: a URL as it is, a folder relative to the workspace."""
    if not lake:
        return None
    return root / lake if locate(lake).local else lake


def _engine_lake(lake: str | os.PathLike[str] | None) -> str | os.PathLike[str] | ObjectLake | None:
    """What the engine reads: a folder as it is; for object storage, the current copy of the
    events as the store lists it (the engine never looks at credentials itself)."""
    if lake is None or (where := locate(lake)).local:
        return lake
    base, files = event_objects(where)
    return ObjectLake(url=where.url, events=base, files=tuple(files), filesystem=where.fs,
                      s3=dict(where.settings))


class Workspace(Refresh, Frictions, Surveys, Changes, Context, Analyses):
    """A workspace: moment definitions, the event store, and the analyses over them."""

    def __init__(self, root: Path, *, engine: str | None = None,
                 lake: str | os.PathLike[str] | None = None) -> None:
        self.root = root
        self.spec_path = spec_file(root)
        self.spec: Spec = load_workspace(self.spec_path)
        self.con: duckdb.DuckDBPyConnection = connect(root / STORE_DIR / STORE_FILE)
        settings = self.spec.engine
        # DuckDB's own default (80% of RAM) leaves too little for what it does not count
        # (Arrow results, Python): a 100M-event refresh was killed at 21.5 GB of 24.
        memory_limit = settings.memory_limit or _memory_limit()
        self.con.execute("SET memory_limit = ?", [memory_limit])
        lake = lake if lake is not None else _configured_lake(root, settings.lake)
        self._runtime_settings = {"memory_limit": memory_limit, "spark": settings.spark.model_dump()}
        try:
            self.run: Runtime = engine_runtime(self.con, engine=engine or settings.name,
                                               lake=_engine_lake(lake), **self._runtime_settings)
        except BaseException:
            self.con.close()
            raise
        self.db = self.run.db
        # The store is written only through this object while it is open (DuckDB lets one
        # process write a file), so once checked, derived tables stay fresh until an ingest
        # or a reload.
        self._as_of: int | None = None
        self._fresh = False

    @property
    def _fresh(self) -> bool:
        """Derived tables checked fresh since the last change (ingest, reload, erasure...)."""
        return self._fresh_state

    @_fresh.setter
    def _fresh(self, value: bool) -> None:
        self._fresh_state = value
        if not value:  # the data changed, or may have: the end of the data is looked up again
            self._as_of = None

    def close(self) -> None:
        self.run.close()
        self.con.close()

    def invalidate(self) -> None:
        """Forget that the derived tables were checked fresh: another connection (the
        server's collector) wrote to the store. The next analysis refreshes them."""
        self._fresh = False

    def close_reader(self) -> None:
        """Close a :meth:`reader` (its own connection; the store stays open)."""
        self.con.close()

    def reader(self) -> Workspace:
        """The same workspace over another connection to its store, that reads the derived
        tables as the last refresh committed them and never refreshes itself: for a
        server that refreshes in the background (``serve``) while it answers. Use it from
        one thread at a time; close it when done."""
        if not isinstance(self.run, Store):
            raise WorkspaceError("only a workspace over its store has a reader",
                                 code="workspace/lake")
        other = object.__new__(type(self))
        other.root, other.spec_path, other.spec = self.root, self.spec_path, self.spec
        other.con = self.con.cursor()
        other._runtime_settings = self._runtime_settings
        other.run = Store(other.con)
        other.db = other.run.db
        other._as_of, other._fresh, other._reading = None, True, True
        return other

    def read_lake(self, lake: str | os.PathLike[str]) -> None:
        """Read the events of ``lake`` as they are now, with the same engine.

        For what appends to a lake while the workspace is open (``microjourney serve
        --lake``): an object-storage lake is listed once per runtime (a folder is listed
        again by every query), and a lake that held no events when the workspace opened
        was not read at all. Derived tables are rebuilt when next needed."""
        run = engine_runtime(self.con, engine=self.run.name, lake=_engine_lake(lake),
                             **self._runtime_settings)
        self.run.close()
        self.run, self.db = run, run.db
        self._fresh = False

    @property
    def engine(self) -> str:
        """The engine the analyses run on: ``duckdb`` or ``spark``."""
        return self.run.name

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- definitions --------------------------------------------------------
    @property
    def moments(self) -> dict[str, Moment]:
        return self.spec.moments

    def moment(self, name: str) -> Moment:
        try:
            return self.spec.moments[name]
        except KeyError:
            known = ", ".join(self.spec.moments) or "none defined yet"
            raise QueryError(f"no moment {name!r}; moments: {known}", code="query/moment") from None

    def reload(self) -> None:
        """Read ``microjourney.yaml`` again (after editing it)."""
        self.spec = load_workspace(self.spec_path)
        self._fresh = False

    # -- ingest -------------------------------------------------------------
    def ingest(
        self,
        path: str | os.PathLike[str],
        *,
        format: str | None = None,  # noqa: A002 - the CLI's word
        mapping: Mapping[str, str] | None = None,
        channel: str = "other",
        timezone: str | None = None,
        progress: Callable[[int], None] | None = None,
        values: Mapping[str, Mapping[str, str]] | None = None,
    ) -> IngestResult:
        """Load events from a file; bad rows go to quarantine, duplicates are skipped.
        ``values``: by field, values replaced before the rows are judged
        (``{"channel": {"desktop": "web"}}``, the CLI's ``--value channel:desktop=web``)."""
        return self._ingest(path, format=format, mapping=mapping, channel=channel,
                            timezone=timezone, progress=progress, values=values)

    def _ingest(
        self,
        path: str | os.PathLike[str],
        *,
        format: str | None = None,  # noqa: A002 - the CLI's word
        mapping: Mapping[str, str] | None = None,
        channel: str = "other",
        timezone: str | None = None,
        progress: Callable[[int], None] | None = None,
        values: Mapping[str, Mapping[str, str]] | None = None,
        rows: Callable[[pa.Table], tuple[pa.Table, list[Reject]]] | None = None,
    ) -> IngestResult:
        """:meth:`ingest`; ``rows`` turns each batch a reader gives (CSV, JSON Lines) into
        the raw event rows to store and the rows it rejects (survey answers, for one)."""
        if not isinstance(self.run, Store):
            raise WorkspaceError("this workspace is open over a lake: ingest into its store (open it "
                                 "without a lake), then `microjourney export --lake` again",
                                 code="workspace/lake")
        fmt = format or readers.detect_format(path)
        source = Path(path).name
        self._fresh = False
        started, stopped = datetime.now().astimezone(), None
        after_seq = store_batches.last_seq(self.con)  # the events accepted now come after it
        privacy = self.spec.privacy  # consent and scrubbing (docs/privacy.md)
        private = {"consent_required": privacy.consent_required, "scrub": privacy.scrub}
        judging = {"future_tolerance": self.spec.ingest.future_tolerance, "values": values}
        rejections = Rejections()
        if fmt == "parquet":  # read by DuckDB itself: parallel, no copy through Python
            columns, schema = readers.parquet_columns(path, mapping)
            rejections.add((), columns=schema.names)
            r = write_parquet(self.con, str(path), columns, schema, source=source, channel=channel,
                              timezone=timezone, progress=progress, **private,
                              scrub_except=privacy.scrub_except, **judging, on_rejects=rejections.add)
            accepted, duplicates, rejected, withheld = r.accepted, r.duplicates, r.rejected, r.withheld
        else:
            accepted = duplicates = rejected = withheld = 0
            limits = Limits(self.spec.ingest.max_line_bytes, self.spec.ingest.max_file_bytes)
            try:
                for batch in readers.read(path, fmt, mapping=mapping, limits=limits):
                    if rows is not None:
                        table, more = rows(batch.table)
                        batch = readers.Batch(table, batch.rejects + more)
                    rejected += write_rejects(self.con, batch.rejects, source=source, **private)
                    rejections.add(batch.rejects, columns=batch.table.column_names)
                    if batch.table.num_rows:
                        r = write_batch(self.con, batch.table, source=source, channel=channel,
                                        timezone=timezone, **private,
                                        scrub_except=privacy.scrub_except, **judging)
                        rejections.add(r.rejects)
                        accepted += r.accepted
                        duplicates += r.duplicates
                        rejected += r.rejected
                        withheld += r.withheld
                    if progress:
                        progress(batch.table.num_rows + len(batch.rejects))
            except IngestError as exc:
                if exc.code != "ingest/too-large":
                    raise
                stopped = exc  # the rows before the limit are stored: logged, then the error
        self.con.execute("INSERT INTO ingests VALUES (?, ?, ?, ?, ?, ?, now())",
                         [source, fmt, accepted, duplicates, rejected, started])
        store_batches.record(self.con, source, started, accepted=accepted, duplicates=duplicates,
                             rejected=rejected, withheld=withheld, after_seq=after_seq,
                             upto_seq=store_batches.last_seq(self.con))
        if stopped:
            raise stopped
        advice = rejections.advice(kept=accepted + duplicates + withheld)
        return IngestResult(source, fmt, accepted, duplicates, rejected, withheld,
                            invalid=rejections.rows, advice=advice)

    def export_lake(self, lake: str | os.PathLike[str]) -> ExportResult:
        """Write the store's events to a Parquet lake, a folder or an ``s3://`` URL
        (docs/lake.md), replacing its copy."""
        return export_to_lake(self.con, lake)

    def keys(self, *, rotate: bool = False) -> Keys:
        """The workspace's write and secret keys for the HTTP API (made on first use);
        ``rotate=True`` replaces both (docs/collector.md)."""
        return keys(self.root, rotate=rotate)

    # -- tables -------------------------------------------------------------
    def events(self) -> Table:
        """All events, with the ``person`` each belongs to (identity stitching:
        docs/identity.md)."""
        return with_person(self.run.events(), self._persons())

    def persons(self) -> Table:
        """Every identifier with its person: ``kind`` (user, anonymous or a shared key's
        name), ``identifier`` (key values normalised) and ``person``."""
        return self._persons()

    def _persons(self) -> Table:
        """The identifier → person map (table ``persons``), brought up to date."""
        self._refresh_timeline()
        return self.db.table("persons").select("kind", "identifier", "person")

    def write_identities(self, calls: list[dict], *, source: str = "api") -> IdentityResult:
        """Store identify/alias calls (see :func:`microjourney.store.identities.write_calls`);
        idempotent by ``call_id``."""
        self._store_only("write identify/alias calls")
        self._fresh = False
        return write_calls(self.con, calls, source=source)

    def forget(self, person: str) -> ErasureResult:
        """Erase a person (a person id, or one of their user ids): every row carrying one of
        their identifiers leaves events, identities and quarantine; derived tables are
        dropped and rebuilt on the next analysis. The erasure log keeps only an id, the
        time and the rows removed per table. An unknown person is a QueryError."""
        self._store_only("forget a person")
        m = self._persons()
        ids = m.filter(m.kind.isin(["user", "anonymous"]))
        found = [r["person"] for r in ids.filter(
            (ids.person == person) | ((ids.identifier == person) & (ids.kind == "user"))
        ).select("person").distinct().to_pyarrow().to_pylist()]
        if len(found) > 1:  # a person id that is also another person's user id: the person
            found = [person]
        if not found:
            raise QueryError(f"no person {person!r}: give a person id (the `person` column of "
                             "attempts) or a user id", code="query/person")
        rows = m.filter(m.person == found[0]).select("kind", "identifier").to_pyarrow().to_pylist()
        identifiers = [("id", r["identifier"], None) if r["kind"] in ("user", "anonymous")
                       else (r["kind"], r["identifier"], key_kind(r["kind"])) for r in rows]
        # The person's rows leave the derived tables now (those holding personal data
        # name the column that says whose rows they are); the rest follows at the next
        # refresh, which resolves who is who again.
        keys = {"person": [found[0]], "component": self._components_of_person(found[0])}
        derived = {table: (key, keys[key]) for table, key in erasable().items()}
        self._fresh = False
        return erase(self.con, identifiers, derived=derived)

    def _components_of_person(self, person: str) -> list[str]:
        p = self.db.table("persons")
        return sorted(set(p.filter(p.person == person).component.to_pyarrow().to_pylist()))

    def _store_only(self, what: str) -> None:
        if not isinstance(self.run, Store):
            raise WorkspaceError(f"this workspace is open over a lake: {what} in its store (open it "
                                 "without a lake), then `microjourney export --lake` again",
                                 code="workspace/lake")

    def quarantine(self) -> Table:
        """Rejected rows, from the workspace's store (whatever engine runs the analyses)."""
        return ibis.duckdb.from_connection(self.con).table("quarantine")

    def clear_quarantine(self, source: str | None = None) -> int:
        """Delete the quarantined rows, all or those of ``source`` (a file name as the
        ``source`` column has it); returns how many were deleted."""
        return store_quarantine.clear(self.con, source)

    def _tagged(self, moment: str) -> Table:
        """The events playing a role in ``moment`` (from the materialised tag table)."""
        self.refresh()
        t = self.db.table("tagged")
        return t.filter(t.moment == moment)

    def _funnel_tries(self, moment: str) -> Table | None:
        """The tries of ``moment``'s own funnel (from the materialised table); None over a
        lake, whose session keeps none."""
        if not isinstance(self.run, Store):
            return None
        self.refresh()
        t = self.db.table("funnel_tries")
        return t.filter(t.moment == moment)

    def _attempted_persons(self) -> Table | None:
        """Per moment, the persons with an attempt (``moment``, ``persons``), as the refresh
        keeps them in ``tag_last``; None over a lake, whose session keeps no such table."""
        if not isinstance(self.run, Store):
            return None
        self.refresh()
        t = self.db.table("tag_last")
        t = t.filter(t.attempted)
        return t.group_by("moment").aggregate(persons=t.count())

    def attempts(self, moment: str | None = None) -> Table:
        """Attempts (one row per person's pass through a moment), all moments or one."""
        if moment is not None:
            self.moment(moment)
        self.refresh()
        t = self.db.table("attempts")
        return t if moment is None else t.filter(t.moment == moment)


def _memory_limit(share: float = 0.6) -> str:
    """``share`` of the machine's memory, as a DuckDB memory limit."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{int(total * share) // 2**20}MiB"


__all__ = ["IngestResult", "Refreshed", "Workspace", "init", "open"]
