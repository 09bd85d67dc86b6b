"""The judging SQL: one pass that types and checks every raw row of a batch.

:func:`checked_sql` turns a relation of raw rows (see :mod:`microjourney.ingest.schema`) into
rows with the typed fields, the field at fault (``field``, NULL for a good row) and, where it
is needed, the reason. Every file format and the collector's calls go through it, so they
reject the same things with the same reasons. Column names from files are quoted
identifiers; values (time zone, channel, the timestamp range, the values ``--value`` maps)
are bound parameters (:func:`judging_params`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from ..ingest.schema import (
    CHANNELS,
    EARLIEST,
    FIELDS,
    FUTURE_TOLERANCE,
    MAX_OFFSET_MINUTES,
    ROW,
    VALUE_FIELDS,
    span_text,
)
from ..vocabulary import quote_ident as quote_ident  # the store's modules import it from here

TEXT_FIELDS = ("event_id", "event", "anonymous_id", "user_id", "channel", "session_id")
# A date-time written with its offset ends in Z or ±hh[:mm] (looking at the end only is
# much cheaper than matching the whole text); a bare date is not a date-time.
_ZONED = r"([Zz]|[+-]\d\d(:?\d\d)?)$"
_OFFSET = r"[+-](\d\d):?(\d\d)?$"
#: The advice in the reason for a timestamp without an offset, in file ingest.
NAIVE_HINT = "give one, or ingest with --timezone"


def judging_params(*, timezone: str | None, channel: str, naive_hint: str = NAIVE_HINT,
                   arrival: datetime | None = None, future_tolerance: float = FUTURE_TOLERANCE,
                   values: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, object]:
    """The parameters :func:`checked_sql` binds: the time zone of times without an offset, the
    default channel, the range a timestamp must lie in (docs/workspace.md, "Timestamps"):
    from :data:`EARLIEST` to ``arrival`` (now) plus ``future_tolerance`` seconds
    (``ingest.future_tolerance``), and the values ``values`` maps (as given to
    :func:`checked_sql`)."""
    latest = (arrival or datetime.now(UTC)) + timedelta(seconds=future_tolerance)
    earliest = datetime.fromisoformat(EARLIEST)
    params: dict[str, object] = {
        "tz": timezone, "channel": channel, "naive_hint": naive_hint,
        "earliest": earliest, "latest": latest, "max_offset": MAX_OFFSET_MINUTES,
        "range": f"the accepted range is {EARLIEST} to its arrival plus {span_text(future_tolerance)} "
                 f"({latest.strftime('%Y-%m-%dT%H:%M:%SZ')})",
        "offsets": f"±{MAX_OFFSET_MINUTES // 60:02d}:{MAX_OFFSET_MINUTES % 60:02d}"}
    for i, (_, source, target) in enumerate(_pairs(values)):
        params[f"from{i}"], params[f"to{i}"] = source, target
    return params


def _pairs(values: Mapping[str, Mapping[str, str]] | None) -> list[tuple[str, str, str]]:
    """(field, from, to) of ``values``, numbered by their place here (``$from<i>``, ``$to<i>``)."""
    return [(name, *pair) for name in VALUE_FIELDS for pair in (values or {}).get(name, {}).items()]


def _recoded(text: str, name: str, values: Mapping[str, Mapping[str, str]] | None) -> str:
    """SQL: the text ``text`` of field ``name`` with the values ``values`` maps replaced
    (bound as :func:`_pairs` numbers them); a value mapped to the empty text is missing."""
    whens = " ".join(f"WHEN $from{i} THEN $to{i}" for i, (field, _, _) in enumerate(_pairs(values))
                     if field == name)
    return f"NULLIF(CASE {text} {whens} ELSE {text} END, '')" if whens else text


def _text(schema: pa.Schema, name: str) -> str:
    # Empty text is missing; text is otherwise kept as given (trimming copies every value).
    if name not in schema.names:
        return "NULL::VARCHAR"
    return f"NULLIF(CAST(r.{quote_ident(name)} AS VARCHAR), '')"


def normal_json(col: str) -> str:
    """SQL: the JSON text ``col`` (valid JSON, any layout, or NULL) in DuckDB's normal form
    (the text ``json_extract`` gives), JSON ``null`` as NULL."""
    return f"nullif(CAST(json({col}) AS VARCHAR), 'null')"


def field_json(schema: pa.Schema, name: str, *, given: bool = False) -> str:
    """SQL: the field ``name`` of the raw row ``r`` as JSON text. ``given``: the column holds
    valid JSON texts (the collector's calls); a JSON string stands for the text it holds, as
    a file's cell does (:mod:`microjourney.store.consent`), anything else is put in normal form."""
    if name not in schema.names:
        return "NULL::VARCHAR"
    typ = schema.field(name).type
    col = f"r.{quote_ident(name)}"
    if pa.types.is_struct(typ) or pa.types.is_map(typ):
        return f"CAST(to_json({col}) AS VARCHAR)"
    if given:
        return f"CASE WHEN json_type({col}) = 'VARCHAR' THEN {col} ->> '$' ELSE {normal_json(col)} END"
    return f"NULLIF(CAST({col} AS VARCHAR), '')"


def _timestamp(schema: pa.Schema) -> tuple[str, str, str, str]:
    """SQL for (text form, parsed TIMESTAMPTZ, has-no-zone flag, offset in minutes) of the
    timestamp field."""
    if "timestamp" not in schema.names:
        return "NULL::VARCHAR", "NULL::TIMESTAMPTZ", "false", "NULL::INTEGER"
    col = f"r.{quote_ident('timestamp')}"
    typ = schema.field("timestamp").type
    if pa.types.is_timestamp(typ) and typ.tz is not None:
        return f"CAST({col} AS VARCHAR)", f"CAST({col} AS TIMESTAMPTZ)", "false", "NULL::INTEGER"
    if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
        text = f"CAST({col} AS VARCHAR)"
        return text, f"timezone($tz, CAST({col} AS TIMESTAMP))", f"{col} IS NOT NULL", "NULL::INTEGER"
    text = f"NULLIF(trim(CAST({col} AS VARCHAR)), '')"
    zoned = f"(length({text}) > 10 AND regexp_matches(right({text}, 6), '{_ZONED}'))"
    parsed = (
        f"CASE WHEN {zoned} THEN TRY_CAST({text} AS TIMESTAMPTZ) "
        f"ELSE timezone($tz, TRY_CAST({text} AS TIMESTAMP)) END"
    )
    # DuckDB takes any two-digit hour as an offset (+99:00 shifts the time by 99 hours).
    parts = f"regexp_extract(right({text}, 6), '{_OFFSET}', ['h', 'm'])"
    offset = (f"CASE WHEN {zoned} AND right({text}, 1) NOT IN ('Z', 'z') THEN TRY_CAST({parts}.h AS "
              f"INTEGER) * 60 + coalesce(TRY_CAST(nullif({parts}.m, '') AS INTEGER), 0) END")
    return text, parsed, f"NOT {zoned}", offset


def _extras(schema: pa.Schema) -> tuple[str, list[str]]:
    """Columns that are not event fields are kept as properties (file name as key)."""
    extra = [n for n in schema.names if n not in FIELDS and n != ROW]
    if not extra:
        return "", []
    pairs = ", ".join(f"$k{i}, r.{quote_ident(n)}" for i, n in enumerate(extra))
    return f"json_object({pairs})", extra


def _is_object(col: str) -> str:
    return f"({col} IS NULL OR (json_valid({col}) AND starts_with(ltrim({col}), '{{')))"


def checked_sql(schema: pa.Schema, *, derive_ids: bool = True, rel: str = "raw",
                given_json: bool = False,
                values: Mapping[str, Mapping[str, str]] | None = None) -> tuple[str, list[str]]:
    """SQL typing and judging every raw row of ``rel``; ``id`` is the event id to store,
    ``field`` the field at fault and ``reason`` why. Also returns the names of the columns
    that become properties (bound as ``$k0``, ``$k1``...).

    ``derive_ids=False`` (every row has an ``event_id``) skips the content hashing;
    ``given_json``: ``properties`` and ``context`` hold valid JSON texts (:func:`field_json`);
    ``values``: by field, the values to replace before judging (``--value FIELD:FROM=TO``;
    give the same to :func:`judging_params`).
    """
    ts_text, ts, naive, offset = _timestamp(schema)
    extras, extra_names = _extras(schema)
    cols = ",\n      ".join(f"{_recoded(_text(schema, f), f, values)} AS {f}" for f in TEXT_FIELDS)
    channels = ", ".join(f"'{c}'" for c in CHANNELS)  # constants of the product, not user values
    props_ok = _is_object("properties")
    merged = (f"CASE WHEN {props_ok} THEN CAST(json_merge_patch(coalesce(properties, '{{}}'), extras) "
              "AS VARCHAR) ELSE properties END") if extras else "properties"
    reason = f"""CASE field
        WHEN 'event' THEN 'missing event name'
        WHEN 'timestamp' THEN CASE
          WHEN ts_text IS NULL THEN 'missing timestamp'
          WHEN ts_naive AND TRY_CAST(ts_text AS TIMESTAMP) IS NOT NULL THEN 'timestamp ' || ts_text
            || ' has no time zone offset (' || $naive_hint || ')'
          WHEN ts IS NULL THEN 'timestamp ' || ts_text || ' is not an ISO 8601 date-time'
          WHEN ts_offset > $max_offset THEN 'timestamp ' || ts_text
            || ' has a UTC offset beyond ' || $offsets
          ELSE 'timestamp ' || ts_text || ' is out of range: ' || $range END
        WHEN 'user_id' THEN 'neither anonymous_id nor user_id is given'
        WHEN 'channel' THEN 'unknown channel ' || channel || '; allowed: {", ".join(CHANNELS)}'
        WHEN 'properties' THEN 'properties is not a JSON object'
        WHEN 'context' THEN 'context is not a JSON object'
      END"""
    content = """md5(concat_ws(chr(31), CAST(epoch_us(ts) AS VARCHAR), event, coalesce(anonymous_id, ''),
        coalesce(user_id, ''), channel, coalesce(session_id, ''), coalesce(properties, ''),
        coalesce(context, '')))"""
    judged = f"""
      SELECT *,
        CASE
          WHEN event IS NULL THEN 'event'
          WHEN ts_text IS NULL THEN 'timestamp'
          WHEN ts_naive AND $tz IS NULL THEN 'timestamp'
          WHEN ts IS NULL THEN 'timestamp'
          WHEN ts < $earliest OR ts > $latest OR ts_offset > $max_offset THEN 'timestamp'
          WHEN anonymous_id IS NULL AND user_id IS NULL THEN 'user_id'
          WHEN channel NOT IN ({channels}) THEN 'channel'
          WHEN NOT {props_ok} THEN 'properties'
          WHEN NOT {_is_object("context")} THEN 'context'
        END AS field
      FROM (
        SELECT row, event_id, event, anonymous_id, user_id, coalesce(channel, $channel) AS channel,
          session_id, ts_text, ts, ts_naive, ts_offset, {merged} AS properties, context
        FROM (
          SELECT r.{quote_ident(ROW)} AS row,
          {cols},
          {ts_text} AS ts_text, {ts} AS ts, {naive} AS ts_naive, {offset} AS ts_offset,
          {field_json(schema, "properties", given=given_json)} AS properties,
          {field_json(schema, "context", given=given_json)} AS context
          {", " + extras + " AS extras" if extras else ""}
          FROM {rel} r
        )
      )
    """
    if not derive_ids:
        return f"SELECT *, {reason} AS reason, event_id AS id FROM ({judged})", extra_names
    sql = f"""
    WITH judged AS MATERIALIZED ({judged})
    -- Rows with an id keep it; a row without one gets the hash of its content and of
    -- its occurrence among identical rows (so two identical rows stay two events).
    SELECT *, {reason} AS reason, event_id AS id FROM judged
    WHERE event_id IS NOT NULL OR field IS NOT NULL
    UNION ALL
    SELECT * EXCLUDE (content), NULL AS reason,
      'mj-' || md5(content || ':' || row_number() OVER (PARTITION BY content ORDER BY row)) AS id
    FROM (SELECT *, {content} AS content FROM judged WHERE event_id IS NULL AND field IS NULL)
    """
    return sql, extra_names
