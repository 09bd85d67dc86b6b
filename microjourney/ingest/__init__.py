"""File ingestion: readers for CSV, JSON Lines, Parquet and XES, one validation path."""
