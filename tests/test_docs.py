"""Executed docs: the CLI reference matches the CLI; docstring examples run; every YAML key is documented."""

from __future__ import annotations

import doctest
import importlib.util
from pathlib import Path

import pytest

import microjourney.analysis.stats
import microjourney.analysis.surveys
import microjourney.analysis.week_on_week
import microjourney.registry.process_map
import microjourney.spec.duration
from microjourney.spec.model import Matcher, Moment, Target, Workspace
from microjourney.spec.surveys import Display, Question, Survey, Trigger, When

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_is_current():
    spec = importlib.util.spec_from_file_location("generate_cli", ROOT / "docs" / "generate_cli.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == module.render(), (
        "docs/cli.md is stale: run `python docs/generate_cli.py`")


@pytest.mark.parametrize("module", [microjourney.spec.duration, microjourney.analysis.stats,
                                    microjourney.registry.process_map, microjourney.analysis.week_on_week,
                                    microjourney.analysis.surveys])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_every_workspace_key_is_documented():
    text = (ROOT / "docs" / "workspace.md").read_text(encoding="utf-8")
    from microjourney.spec.alerts import Alerts, Webhook
    from microjourney.spec.interventions import Cap, Intervention
    from microjourney.spec.interventions import When as Signal
    from microjourney.spec.peak_end import IntensityWeights, PeakEnd
    from microjourney.spec.review import Review
    from microjourney.spec.value import Value

    for model in (Workspace, Moment, Matcher, Target, Survey, Question, Trigger, Display, When,
                  Alerts, Webhook, PeakEnd, IntensityWeights, Value, Review, Intervention, Signal, Cap):
        for key in model.model_fields:
            assert f"`{key}`" in text, f"docs/workspace.md does not describe `{key}`"


def test_every_friction_detector_and_setting_is_documented():
    from microjourney.engine.frictions import DETECTORS
    from microjourney.spec.frictions import Frictions

    text = (ROOT / "docs" / "frictions.md").read_text(encoding="utf-8")
    for detector in DETECTORS:
        assert f"| `{detector.KIND}` |" in text, f"docs/frictions.md lacks the {detector.KIND} row"
        assert detector.VERSION == 1 or f"`{detector.KIND}` (v{detector.VERSION})" in text, \
            "a new detector version needs its definition in docs/frictions.md"
        assert detector.__doc__.startswith(f"{detector.KIND} (v{detector.VERSION})")
        settings = Frictions.model_fields[detector.KIND].annotation.model_fields
        for key in settings:
            assert f"`{key}`" in text, f"docs/frictions.md does not name {detector.KIND}.{key}"


def test_readme_has_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text
