"""The store: DuckDB schema and migrations, the validating idempotent writer, the Parquet lake."""

from .db import connect, get_meta, set_meta
from .lake import ExportResult, TableExport, append, events_glob, export, read_events
from .writer import BatchResult, write_batch, write_parquet, write_rejects

__all__ = [
    "BatchResult",
    "ExportResult",
    "TableExport",
    "append",
    "connect",
    "events_glob",
    "export",
    "get_meta",
    "read_events",
    "set_meta",
    "write_batch",
    "write_parquet",
    "write_rejects",
]
