"""Privacy on the way in: the scrub rule set, scrubbing on ingest and in quarantine, consent."""

from __future__ import annotations

import doctest
import json
import random

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from microjourney.ingest import scrub
from microjourney.ingest.scrub import (
    PREFILTER,
    luhn_ok,
    may_hold_personal_data,
    scrub_emails,
    scrub_json,
    scrub_numbers,
    scrub_text,
    scrub_texts,
    scrub_value,
)
from microjourney.spec.model import Privacy
from microjourney.store.writer import WITHHELD_KEY

from .helpers import PAYMENT_YAML, ev, write_events

EMAILS = ["jane.doe@example.com", "o.hara+tag@mail.example.co.uk", "ann_b-99@sub.example-shop.de",
          "jürgen@müller.de", "john%40example.com", "UPPER@EXAMPLE.ORG", "o'brien@example.ie",
          "o’neill@example.ie"]
PHONES = ["+44 20 7946 0958", "+1 (415) 555-2671", "+4915112345678", "+33 6 12 34 56 78",
          "+44 (0) 20 7946 0958", "+33.1.23.45.67.89", "(415) 555-2671", "415-555-2671", "415.555.2671",
          "020 7946 0958", "06 12 34 56 78", "030 12345678", "01.23.45.67.89", "07700 900123",
          "0044 20 7946 0958", "0033 6 12 34 56 78", "001 415 555 2671", "%2B44 20 7946 0958",
          "%2B4915112345678", "%2B44%2020%207946%200958", "020%207946%200958",
          "06\u00a012\u00a034\u00a056\u00a078", "+33\u202f6\u202f12\u202f34\u202f56\u202f78"]
# Published test card numbers (Visa, Mastercard, Amex, Discover, Diners, JCB), in the usual groupings.
CARDS = ["4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111", "5555 5555 5555 4444",
         "378282246310005", "3782 822463 10005", "6011111111111117", "30569309025904", "3530111333300000",
         "4222222222222", "4111\u00a01111\u00a01111\u00a01111", "4111\u202f1111\u202f1111\u202f1111",
         "4111\u20071111\u20071111\u20071111", "4111\t1111\t1111\t1111", "4111  1111  1111  1111",
         "4111 - 1111 - 1111 - 1111", "5555 -5555- 5555 4444"]
KEPT = [
    "2024-01-01T10:00:05+01:00", "2024-01-01T10:00:05.123456789Z", "2024-01-01 10:00:05",
    "10:00:05.123456789", "2024-01-01", "01-02-2024 10:00", "01.02.2024", "20240101100005",
    "ORD-2024-000123", "ORD-4111111111111111", "order 12345", "INV/2024/4111111111111111",
    "0a772f2c-456c-4f6b-a410-5ea1e410e08e", "12345678-1234-1234-1234-123456789012",
    "1234.56", "1,234,567.89", "€ 1 234 567,89", "4111111111111111.00", "12.50 EUR",
    "5.2.1", "v10.0.19045.3803", "lodash@4.17.21", "192.168.100.200", "10.0.0.1",
    "4111111111111112", "4111 1111 1111 1112", "1704103205", "1704103205000", "1704103205000000",
    "0012345678", "4155552671", "+01:00", "+0100", "@handle", "user@localhost", "a@b.c",
    "12 4111 1111 1111 1111", "05.123456789", "ISBN 978-3-16-148410-0", "#a.help-link", "x=919&y=211",
    "00 44 20 7946 0958", "00.15.30 12.12.2024", "2024\t01\t01", "1\u00a0234\u00a0567,89",
    "4111\t1111\t1111\t1112", "it's 5 o'clock", "'@handle'", "%2B01:00", "100%20off", "p%2F4111111111111111",
]


@pytest.mark.parametrize("text", EMAILS)
def test_email_addresses_are_scrubbed(text):
    assert scrub_text(f"write to {text}, thanks") == "write to [email], thanks"


@pytest.mark.parametrize("text", PHONES)
def test_phone_numbers_are_scrubbed(text):
    assert scrub_text(f"call {text} now") == "call [phone] now"
    assert scrub_text(f"tel:{text}") == "tel:[phone]"


@pytest.mark.parametrize("text", CARDS)
def test_card_numbers_are_scrubbed(text):
    assert scrub_text(f"card {text}.") == "card [card]."


@pytest.mark.parametrize("text", KEPT)
def test_look_alikes_are_kept(text):
    assert scrub_text(text) == text
    assert scrub_text(f"at {text} ok") == f"at {text} ok"


def test_luhn_with_published_test_numbers():
    for number in ("4111111111111111", "5555555555554444", "378282246310005", "6011111111111117"):
        assert luhn_ok(number)
    assert not luhn_ok("4111111111111112")
    assert not luhn_ok("1234567812345678")
    # A Luhn-invalid 16-digit number stays; a valid one that starts with 1 (not a card range) too.
    assert scrub_text("1234567812345678") == "1234567812345678"
    assert luhn_ok("1111111111111117") and scrub_text("1111111111111117") == "1111111111111117"


def test_mixed_text_and_doctests():
    text = "Jane <jane@example.com>, +44 20 7946 0958, paid 4111 1111 1111 1111 on 2024-01-01 (ORD-77)"
    assert scrub_text(text) == "Jane <[email]>, [phone], paid [card] on 2024-01-01 (ORD-77)"
    assert scrub_texts(["mail a@b.io", None]) == ["mail [email]", None]
    for module in (scrub, scrub.mail, scrub.number, scrub.prefilter, scrub.text, scrub.walk):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def _rules(text: str) -> str:
    """The rules without the prefilter that scrub_text asks first, to test the prefilter."""
    return scrub_numbers(scrub_emails(text))


#: Pieces of text near the edges of the rules: digits, joiners (raw, percent-encoded), "+",
#: "00", "(", glue before and after, "@" and "%40", quotes.
FRAGMENTS = [*"0123456789" * 8, " ", " ", "  ", "-", " - ", ".", "(", ")", "+", "@", "%40", "a", "x", "e",
             ":", "/", ",", "'", "\t", "\u00a0", "\u202f", "\u2007", "%2B", "%20", "%3A", "00", "0044",
             "4111"]


def _texts(rng: random.Random, count: int) -> list[str]:
    return ["".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(6, 24))) for _ in range(count)]


def test_prefilter_finds_every_text_the_rules_change():
    """The RE2 prefilter the store runs must match every text that a rule changes."""
    rng = random.Random(7)
    alphabet = "0123456789" * 4 + "  --..()+@%4a:/,xe"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(8, 30))) for _ in range(6000)]
    texts += _texts(rng, 6000)
    texts += EMAILS + PHONES + CARDS + [f"{a} {b}" for a, b in zip(KEPT, CARDS * 5, strict=False)]
    changed = [t for t in texts if _rules(t) != t]
    assert len(changed) > 250
    assert [t for t in changed if scrub_text(t) != _rules(t)] == []
    con = duckdb.connect()
    missed = con.execute("SELECT t FROM unnest($t) AS x(t) WHERE NOT regexp_matches(t, $p)",
                         {"t": changed, "p": PREFILTER}).fetchall()
    assert missed == []
    # ... and not the texts that events are usually full of (those are not looked at again)
    common = ["2024-01-01T10:00:05+01:00", "2024-01-01T10:00:05.123Z", "2024-01-01 10:00:05+00",
              "0a772f2c-456c-4f6b-a410-5ea1e410e08e", "5.2.1", "1234.56", "ORD-2024-000123",
              "1704103205000", "192.168.1.20", "https://shop.example/p/123?x=1", '{"ms":873,"x":919}']
    assert con.execute("SELECT count(*) FROM unnest($t) AS x(t) WHERE regexp_matches(t, $p)",
                       {"t": common, "p": PREFILTER}).fetchall()[0][0] == 0


#: The prefilter for JSON as received (any layout): any \u escape may hide a character a rule
#: looks at, so a text with one is looked at too.
RECEIVED = PREFILTER + r"|\\u"


def test_prefilters_find_every_json_text_the_rules_change():
    """On JSON text the prefilters look at escapes, not the characters they stand for: the
    store's (on DuckDB's normal form) and RECEIVED (on JSON as any client encodes it) must
    still match every JSON value whose strings a rule changes."""
    rng = random.Random(11)
    alphabet = "0123456789" * 4 + "  --..()+@%4a:/,xe" + "\n\t\u00a0\u00e9\u2028\"\\\x01"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(8, 30))) for _ in range(4000)]
    texts += _texts(rng, 4000)
    texts += [f"{sep}{pii}" for sep in ("x\n", "\t", "\u00a0", "\x1f", '"', "\\") for pii in PHONES + CARDS]
    values = [{"k": t} for t in texts] + [{t: 1} for t in texts[:500]] + [[t] for t in EMAILS]
    strings = [[x for x in ([*v, *v.values()] if isinstance(v, dict) else v) if isinstance(x, str)]
               for v in values]
    changed = [v for v, texts in zip(values, strings, strict=True) if any(_rules(t) != t for t in texts)]
    assert len(changed) > 300
    assert [v for v in changed if scrub_value(v) == v] == []
    encoded = [json.dumps(v, ensure_ascii=ascii_only, separators=seps) for v in changed
               for ascii_only in (True, False) for seps in ((",", ":"), (", ", ": "))]
    con = duckdb.connect()
    missed = con.execute("SELECT t FROM unnest($t) AS x(t) "
                         "WHERE NOT regexp_matches(CAST(json(t) AS VARCHAR), $p)",
                         {"t": encoded, "p": PREFILTER}).fetchall()
    assert missed == []
    assert con.execute("SELECT t FROM unnest($t) AS x(t) WHERE NOT regexp_matches(t, $p)",
                       {"t": encoded, "p": RECEIVED}).fetchall() == []
    assert [t for t in encoded if not may_hold_personal_data([b"{}", t.encode()])] == []
    # A number after an escaped line break is scrubbed by the store, as after a space.
    assert con.execute("SELECT regexp_matches(CAST(json($t) AS VARCHAR), $p)",
                       {"t": json.dumps({"k": "x\n06 12 34 56 78"}), "p": PREFILTER}).fetchall() == [(True,)]
    # The properties of plain events have nothing RECEIVED looks at.
    plain = json.dumps({"page": "/pay", "ms": 1704103205000, "v": "5.2.1", "x": 919, "ok": True,
                        "at": "2026-11-01T10:00:05.123+01:00", "id": "0a772f2c-456c-4f6b-a410-5ea1e410e08e"})
    assert con.execute("SELECT regexp_matches($t, $p)", {"t": plain, "p": RECEIVED}).fetchall() == [(False,)]
    assert not may_hold_personal_data([plain.encode(), b"null"])


def test_json_is_scrubbed_at_any_depth_and_kept_paths_stay():
    doc = {"note": "mail jane@example.com", "n": 4111111111111111, "ok": True,
           "items": [{"phone": "+1 415 555 2671"}, "x@y.org", 3],
           "deep": {"deeper": {"card": "5555-5555-5555-4444", "when": "2024-01-01T10:00:05Z"}},
           "traits": {"email": "jane@example.com"}, "a@b.io": "key"}
    out = json.loads(scrub_json(json.dumps(doc), ["traits"]))
    assert out == {"note": "mail [email]", "n": 4111111111111111, "ok": True,
                   "items": [{"phone": "[phone]"}, "[email]", 3],
                   "deep": {"deeper": {"card": "[card]", "when": "2024-01-01T10:00:05Z"}},
                   "traits": {"email": "jane@example.com"}, "[email]": "key"}
    same = '{"when": "2024-01-01T10:00:05Z",  "id": "ORD-1"}'
    assert scrub_json(same) is same  # unchanged text is returned as given
    assert scrub_json("not json, jane@example.com") == "not json, [email]"
    assert json.loads(scrub_json('{"big": 123456789012345678901234567890, "e": "a@b.io"}'))["e"] == "[email]"


PII = {"note": "Jane jane@example.com +44 20 7946 0958", "card": "4111 1111 1111 1111",
       "nested": {"list": ["call (415) 555-2671", {"deep": "5555555555554444"}]},
       "order": "ORD-2024-000123", "when": "2024-01-01T10:00:05+01:00", "amount": "1234.56",
       "uuid": "0a772f2c-456c-4f6b-a410-5ea1e410e08e", "version": "5.2.1", "n": 4111111111111111}
SCRUBBED = {"note": "Jane [email] [phone]", "card": "[card]",
            "nested": {"list": ["call [phone]", {"deep": "[card]"}]},
            "order": "ORD-2024-000123", "when": "2024-01-01T10:00:05+01:00", "amount": "1234.56",
            "uuid": "0a772f2c-456c-4f6b-a410-5ea1e410e08e", "version": "5.2.1", "n": 4111111111111111}
CONTEXT = {"traits": {"email": "jane@example.com", "phone": "+44 20 7946 0958"},
           "page": {"url": "https://shop.example/reset?email=jane@example.com"}, "locale": "en-GB"}
CONTEXT_SCRUBBED = {**CONTEXT, "page": {"url": "https://shop.example/reset?email=[email]"}}


def _stored(ws):
    return [(e, json.loads(p) if p else None, json.loads(c) if c else None) for e, p, c in ws.con.execute(
        "SELECT event, properties, context FROM events ORDER BY seq").fetchall()]


def test_csv_ingest_scrubs_properties_and_context_but_not_traits(make_ws, tmp_path):
    ws = make_ws()
    rows = [ev("10:00:00", "a", properties=PII, context=CONTEXT), ev("10:00:01", "b", properties={"x": 1})]
    path = write_events(tmp_path / "e.csv", rows)
    r = ws.ingest(path)
    assert (r.accepted, r.rejected, r.withheld) == (2, 0, 0)
    assert _stored(ws) == [("a", SCRUBBED, CONTEXT_SCRUBBED), ("b", {"x": 1}, None)]
    # Ids derive from the content as given: a second ingest adds nothing.
    again = ws.ingest(path)
    assert (again.accepted, again.duplicates) == (0, 2)


def test_jsonl_ingest_scrubs_extra_keys_and_nested_values(make_ws, tmp_path):
    ws = make_ws()
    lines = [
        {"event_id": "e1", "timestamp": "2024-01-01T10:00:00Z", "event": "a", "user_id": "u1",
         "properties": PII, "context": CONTEXT, "comment": "reach me at +33 6 12 34 56 78"},
        {"event_id": "e2", "timestamp": "2024-01-01T10:00:01Z", "event": "b", "user_id": "u1",
         "properties": {"order": "ORD-4111111111111111", "at": "2024-01-01 10:00:05"}},
    ]
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n{not json jane@example.com\n")
    r = ws.ingest(path)
    assert (r.accepted, r.rejected) == (2, 1)
    (a, props_a, ctx_a), (b, props_b, _) = _stored(ws)
    assert props_a == {**SCRUBBED, "comment": "reach me at [phone]"} and ctx_a == CONTEXT_SCRUBBED
    assert props_b == {"order": "ORD-4111111111111111", "at": "2024-01-01 10:00:05"}
    # The line that could not be read is quarantined scrubbed too.
    (raw,) = ws.con.execute("SELECT raw FROM quarantine").fetchall()[0]
    assert "jane" not in raw and "[email]" in raw


def test_parquet_ingest_scrubs_text_and_struct_columns(make_ws, tmp_path):
    ws = make_ws()
    table = pa.table({
        "event_id": ["p1", "p2"], "timestamp": ["2024-01-01T10:00:00Z", "2024-01-01T10:00:01Z"],
        "event": ["a", "b"], "user_id": ["u1", "u1"],
        "properties": [json.dumps(PII), None],
        "context": pa.array([{"traits": {"email": "a@b.io"}, "note": "x@y.org"}, None],
                            pa.struct([("traits", pa.struct([("email", pa.string())])),
                                       ("note", pa.string())])),
    })
    pq.write_table(table, tmp_path / "e.parquet")
    assert ws.ingest(tmp_path / "e.parquet").accepted == 2
    (_, props, ctx), _ = _stored(ws)
    assert props == SCRUBBED and ctx == {"traits": {"email": "a@b.io"}, "note": "[email]"}


def test_quarantined_rows_are_scrubbed(make_ws, tmp_path):
    ws = make_ws()
    rows = [ev("10:00:00", "a", who="jane@example.com", channel="phone", properties=PII, context=CONTEXT),
            {"timestamp": "bad", "event": "b", "user_id": "u1", "properties": {"note": "+44 20 7946 0958"}}]
    path = write_events(tmp_path / "e.csv", rows)
    assert ws.ingest(path).rejected == 2
    raws = [r[0] for r in ws.con.execute("SELECT raw FROM quarantine ORDER BY row").fetchall()]
    for raw in raws:  # everything in a quarantined row is scrubbed: identifiers and traits too
        assert "jane" not in raw and "7946" not in raw and "4111" not in raw and "555" not in raw
    assert json.loads(raws[0])["user_id"] == "[email]" and "[card]" in raws[0]
    assert json.loads(raws[1])["timestamp"] == "bad"
    # quarantined once: the scrubbed row is what a second ingest compares with
    assert ws.ingest(path).rejected == 0
    assert ws.con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0] == 2


def test_scrubbing_can_be_turned_off_and_paths_kept(make_ws, tmp_path):
    off = make_ws(PAYMENT_YAML + "privacy: {scrub: false}\n", name="off")
    off.ingest(write_events(tmp_path / "e.csv", [ev("10:00:00", "a", properties=PII, context=CONTEXT)]))
    assert _stored(off) == [("a", PII, CONTEXT)]
    keep = make_ws(PAYMENT_YAML + "privacy:\n  scrub_except: [properties.nested.list, context.page]\n",
                   name="keep")
    keep.ingest(write_events(tmp_path / "f.csv", [ev("10:00:00", "a", properties=PII, context=CONTEXT)]))
    (_, props, ctx), = _stored(keep)
    assert props == {**SCRUBBED, "nested": PII["nested"]}
    # context.traits is no longer in the list, so it is scrubbed now; the page is kept
    assert ctx == {"traits": {"email": "[email]", "phone": "[phone]"}, "page": CONTEXT["page"],
                   "locale": "en-GB"}


def test_scrub_except_paths_are_checked():
    assert Privacy().scrub_except == ("context.traits",)
    assert Privacy(scrub_except="properties.note").scrub_except == ("properties.note",)
    for bad in ("traits", "context.", "events.x", "context..a"):
        with pytest.raises(ValidationError, match="scrub_except"):
            Privacy(scrub_except=[bad])


CONSENT_YAML = PAYMENT_YAML + "privacy: {consent: required}\n"


def _consent_rows():
    yes = {"consent": {"analytics": True}}
    return [
        ev("10:00:00", "yes", context=yes),
        ev("10:00:01", "no", context={"consent": {"analytics": False}}),
        ev("10:00:02", "string", context={"consent": {"analytics": "true"}}),
        ev("10:00:03", "missing", context={"locale": "en-GB"}),
        ev("10:00:04", "none"),
        ev("10:00:05", "bad_without", channel="phone"),  # invalid and without consent: withheld
        ev("10:00:06", "bad_with", channel="phone", context=yes),  # invalid with consent: quarantined
        ev("10:00:07", "yes_too", context={**yes, "traits": {"email": "a@b.io"}}),
    ]


def test_consent_required_withholds_events_without_it(make_ws, tmp_path):
    ws = make_ws(CONSENT_YAML)
    path = write_events(tmp_path / "e.csv", _consent_rows())
    r = ws.ingest(path)
    assert (r.accepted, r.duplicates, r.rejected, r.withheld, r.rows) == (2, 0, 1, 5, 8)
    assert [e for e, _, _ in _stored(ws)] == ["yes", "yes_too"]
    q = ws.con.execute("SELECT row, field FROM quarantine").fetchall()
    assert q == [(7, "channel")]
    assert ws.con.execute("SELECT value FROM meta WHERE key = ?", [WITHHELD_KEY]).fetchall() == [("5",)]
    again = ws.ingest(path)  # withheld again (and counted again), the rest are duplicates
    assert (again.accepted, again.duplicates, again.rejected, again.withheld) == (0, 2, 0, 5)
    assert ws.con.execute("SELECT value FROM meta WHERE key = ?", [WITHHELD_KEY]).fetchall() == [("10",)]


def test_consent_required_on_every_path(make_ws, tmp_path):
    ws = make_ws(CONSENT_YAML)
    # Parquet with ids (one pass), JSON Lines without ids (ids derived), an unreadable line.
    rows = [{**r, "event_id": f"p{i}", "context": json.dumps(r["context"]) if "context" in r else None}
            for i, r in enumerate(_consent_rows())]
    pq.write_table(pa.table({k: [r.get(k) for r in rows] for k in rows[0]}), tmp_path / "e.parquet")
    r = ws.ingest(tmp_path / "e.parquet")
    assert (r.accepted, r.rejected, r.withheld) == (2, 1, 5)
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in _consent_rows()) + "\n{broken jane@example.com\n")
    r = ws.ingest(path)
    assert (r.accepted, r.rejected, r.withheld) == (2, 2, 5)
    # the unreadable line has no readable consent: its number and reason only
    assert ws.con.execute("SELECT row, raw FROM quarantine WHERE source = 'e.jsonl' AND field IS NULL"
                          ).fetchall() == [(9, None)]
    # a batch where no row has consent stores nothing
    none = write_events(tmp_path / "none.csv", [ev("10:00:00", "a"), ev("10:00:01", "b")])
    r = ws.ingest(none)
    assert (r.accepted, r.rejected, r.withheld) == (0, 0, 2)


def test_consent_not_required_stores_all(make_ws, tmp_path):
    ws = make_ws()
    r = ws.ingest(write_events(tmp_path / "e.csv", _consent_rows()))
    assert (r.accepted, r.rejected, r.withheld) == (6, 2, 0)
    assert ws.con.execute("SELECT count(*) FROM meta WHERE key = ?", [WITHHELD_KEY]).fetchall()[0][0] == 0
