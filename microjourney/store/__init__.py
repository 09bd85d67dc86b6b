"""The store: DuckDB schema and migrations, the validating idempotent writer."""

from .db import connect, get_meta, set_meta
from .writer import BatchResult, write_batch, write_parquet, write_rejects

__all__ = ["BatchResult", "connect", "get_meta", "set_meta", "write_batch", "write_parquet", "write_rejects"]
