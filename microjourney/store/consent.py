"""Consent: whether an event or call may be stored (docs/privacy.md, "Consent").

One rule for every ingest path (files of every format, the collector's track, page, identify
and alias calls): a call may be stored when its context grants analytics consent, that is
when ``context.consent.analytics`` is the JSON value ``true``. The rule reads the JSON as
every common parser does (the browser's ``JSON.parse``, orjson, which file ingest and the
collector use), so a context gets one verdict whichever way it came in:

* of a key given twice, the **last** one counts (``{"analytics": false, "analytics": true}``
  grants consent; DuckDB's own JSON functions would take the first, hence the lookup below);
* a ``context`` that is a JSON *string* stands for the JSON text it holds, once, as a CSV
  cell does (tools that export JSON columns as text write them so); anything else that is
  not an object, or text that is not JSON, grants nothing.
"""

from __future__ import annotations


def _last(doc: str, key: str) -> str:
    """SQL: the value of the last ``key`` of the JSON object ``doc`` (NULL when there is none
    or ``doc`` is not an object). ``key`` is a constant of this module, never user text."""
    keys = f"json_keys({doc})"
    return (f"list_extract(json_extract({doc}, '$.*'), "
            f"len({keys}) + 1 - list_position(list_reverse({keys}), '{key}'))")


def consent_sql(context: str) -> str:
    """SQL: the JSON text ``context`` (an expression) grants analytics consent: it holds
    ``consent.analytics: true`` by the rule of this module; the one rule every ingest path uses."""
    given = f"CASE WHEN json_valid({context}) THEN CASE WHEN json_type({context}) = 'VARCHAR' " \
            f"THEN {context} ->> '$' ELSE {context} END END"
    analytics = _last(_last(f"({given})", "consent"), "analytics")
    return f"coalesce(CASE WHEN json_valid({given}) THEN CAST({analytics} AS VARCHAR) = 'true' END, false)"


__all__ = ["consent_sql"]
