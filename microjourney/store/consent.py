"""Consent: whether an event or call may be stored (docs/privacy.md, "Consent").

One rule for every ingest path (files, the collector's track, page, identify and alias
calls): a call may be stored when its context grants analytics consent.
"""

from __future__ import annotations


def consent_sql(context: str) -> str:
    """SQL: the JSON text ``context`` (an expression) grants analytics consent, that is
    holds ``consent.analytics: true`` (a JSON boolean); the one rule every ingest path uses."""
    return (f"coalesce(CASE WHEN json_valid({context}) THEN "
            f"CAST(json_extract({context}, '$.consent.analytics') AS VARCHAR) = 'true' END, false)")


__all__ = ["consent_sql"]
