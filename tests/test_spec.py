"""Workspace definitions: the contract shape loads; every mistake names file:line."""

from __future__ import annotations

import pytest

from microjourney.errors import SpecError
from microjourney.spec import load_workspace, parse_duration, parse_workspace

from .helpers import PAYMENT_YAML


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_workspace(text, file="ws.yaml")
    return [str(p) for p in info.value.problems]


def test_contract_shape_loads():
    ws = parse_workspace(PAYMENT_YAML)
    m = ws.moments["card_payment"]
    assert [s.label for s in m.funnel] == [
        "checkout_payment_opened", "payment_gateway_loaded", "card_details_entered",
        "payment_succeeded"]
    assert m.timeout == 1800 and m.sla == 90 and m.intent == "act"
    assert m.steps[1].where[0].key == "valid" and m.steps[1].where[0].value is True
    assert m.escalate.channel == ("chat", "voice", "agent")
    assert m.target.metric == "completion_rate" and m.target.value == 0.92
    assert ws.journey_of("card_payment") == "payment"


@pytest.mark.parametrize(("change", "expected"), [
    (("intent: act", "intent: buy"), "ws.yaml:5:17: intent: Input should be 'learn', 'decide' or 'act'"),
    (("sla: 90s", "sla: fast"), "ws.yaml:14:14: 'fast' is not a duration"),
    (("owner:", "ownr:"), "ws.yaml:15:9: unknown key 'ownr'; allowed keys: name, title"),
    (("channel: [chat", "channel: [phone"), "ws.yaml:12:44: unknown channel 'phone'; allowed: web"),
    (("{event: payment_failed}", "{}"), "ws.yaml:11:9: missing required key 'event'"),
    (("where: {valid: true}", "where: {valid: {like: x}}"), "ws.yaml:9:43: property 'valid': unknown "
                                                            "operator 'like'; allowed: eq, ne, in"),
    (("value: 0.92", "value: high"), "ws.yaml:16:50: Input should be a valid number"),
    (("timeout: 30m", "timeout: -5"), "ws.yaml:13:18: a duration must be positive"),
])
def test_errors_point_at_file_line_column(change, expected):
    found = problems(PAYMENT_YAML.replace(*change))
    assert len(found) == 1, found
    assert found[0].startswith(expected), found[0]


def test_all_problems_reported_at_once_in_line_order():
    text = PAYMENT_YAML.replace("intent: act", "intent: buy").replace("sla: 90s", "sla: fast")
    found = problems(text)
    assert [f.split(":")[1] for f in found] == ["5", "14"]


def test_duplicate_moment_and_duplicate_key():
    twice = PAYMENT_YAML + PAYMENT_YAML.split("moments:\n", 1)[1]
    assert any("moment 'card_payment' is defined twice (first at line 4)" in p for p in problems(twice))
    dup_key = PAYMENT_YAML.replace("        sla: 90s\n", "        sla: 90s\n        sla: 60s\n")
    assert any("key 'sla' is given twice" in p for p in problems(dup_key))


def test_bad_yaml_and_bad_names():
    assert problems("journeys: [\n")[0].startswith("ws.yaml:2:1: not valid YAML")
    bad = PAYMENT_YAML.replace("name: card_payment", "name: card payment")
    assert "moment name 'card payment' must start with a letter" in problems(bad)[0]


def test_missing_start_and_complete():
    found = problems("journeys:\n  - name: j\n    moments:\n      - name: m\n")
    assert any("ws.yaml:4:9: missing required key 'start'" in p for p in found)
    assert any("missing required key 'complete'" in p for p in found)


def test_durations():
    assert parse_duration("90s") == 90 and parse_duration("1h30m") == 5400
    assert parse_duration("7d") == 7 * 86400 and parse_duration(2.5) == 2.5
    for bad in ("soon", "", "5 parsecs", True, 0):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_load_from_file(tmp_path):
    path = tmp_path / "microjourney.yaml"
    path.write_text(PAYMENT_YAML.replace("sla: 90s", "sla: x"))
    with pytest.raises(SpecError) as info:
        load_workspace(path)
    assert info.value.problems[0].file == str(path)
    assert info.value.problems[0].line == 14
    assert info.value.code == "spec/invalid"


# --- a step's own conversion window (`within`) ------------------------------------------

GATEWAY = "{event: payment_gateway_loaded}"


def test_within_on_a_step_and_on_complete_is_a_duration():
    text = (PAYMENT_YAML.replace(GATEWAY, "{event: payment_gateway_loaded, within: 2m}")
            .replace("{event: payment_succeeded}", "{event: payment_succeeded, within: 1m30s}"))
    m = parse_workspace(text).moments["card_payment"]
    # start, gateway, card details, complete: seconds, None where not given.
    assert [s.within for s in m.funnel] == [None, 120.0, None, 90.0]


@pytest.mark.parametrize(("change", "expected"), [
    (("start: {event: checkout_payment_opened}", "start: {event: checkout_payment_opened, within: 5m}"),
     "ws.yaml:6:9: 'within' belongs on a step or on complete; the start has no funnel step"),
    (("fail: {event: payment_failed}", "fail: {event: payment_failed, within: 5m}"),
     "ws.yaml:11:9: 'within' belongs on a step or on complete; fail is not a funnel step"),
    ((GATEWAY, "{event: payment_gateway_loaded, within: 0}"),
     "ws.yaml:8:53: a duration must be positive, got 0"),
    ((GATEWAY, "{event: payment_gateway_loaded, within: soon}"),
     "ws.yaml:8:53: 'soon' is not a duration"),
])
def test_within_mistakes_point_at_file_line_column(change, expected):
    found = problems(PAYMENT_YAML.replace(*change))
    assert len(found) == 1, found
    assert found[0].startswith(expected), found[0]
