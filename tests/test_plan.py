"""The analysis plan: the shipped plan parses; every bad entry is named."""

from pathlib import Path

import pytest

from metaanalysis.errors import PlanError
from metaanalysis.report.plan import load_plan

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_plan_parses_with_its_stated_choices():
    plan = load_plan(ROOT / "studies" / "plan.yaml")
    assert plan.method == "REML" and plan.test == "knha"
    assert plan.windows["about_1_month"] == (21.0, 42.0)
    names = [o.name for o in plan.outcomes]
    assert names[:4] == ["pain_vas", "morphine_mg_day", "local_control", "cement_leakage"]
    assert {"complications_major", "complications_any"} <= set(names)
    pain = plan.outcomes[0]
    assert pain.measure == "MC" and pain.r == 0.5 and pain.r_sensitivity == (0.3, 0.7)
    assert any("Knapp–Hartung" in line for line in plan.describe())


def _write(tmp_path, text):
    p = tmp_path / "plan.yaml"
    p.write_text(text)
    return p


def test_every_bad_entry_is_reported_with_file_entry_and_value(tmp_path):
    p = _write(
        tmp_path,
        """
defaults: {method: FOO, test: knha, level: 95}
windows: {m1: [42, 21]}
outcomes:
  - {name: pain, measure: XYZ, windows: [m1], r: 2}
""",
    )
    with pytest.raises(PlanError) as info:
        load_plan(p)
    lines = str(info.value).splitlines()
    assert any("defaults/method: got 'FOO'; expected one of" in line for line in lines)
    assert any("defaults/level: got 95" in line for line in lines)
    assert any("windows/m1" in line for line in lines)
    assert any("outcomes/pain/measure: got 'XYZ'" in line for line in lines)
    assert any("outcomes/pain/r: got 2" in line for line in lines)
    assert len(lines) == 5
    assert all(line.startswith(str(p)) for line in lines)


def test_unreadable_plan_is_one_clear_problem(tmp_path):
    p = tmp_path / "plan.yaml"
    p.write_bytes(b"\x00\xff\xfe garbage: [")
    with pytest.raises(PlanError) as info:
        load_plan(p)
    assert "not a text file" in str(info.value)
    with pytest.raises(PlanError, match="no such file"):
        load_plan(tmp_path / "missing.yaml")


def test_default_plan_has_the_settings_of_a_plan_file_without_defaults(tmp_path):
    from metaanalysis.records.studies import load_studies
    from metaanalysis.report.plan import default_plan

    settings = ("method", "test", "level", "few_studies", "overlap",
                "percent_without_denominator", "median_conversion", "median_sd",
                "funnel_min_k", "assumed_denominator_min_fraction")
    written = load_plan(_write(tmp_path, "outcomes:\n  - {name: pain_vas, measure: MC}\n"))
    built_in = default_plan(load_studies(ROOT / "studies"))
    assert {k: getattr(built_in, k) for k in settings} == {k: getattr(written, k) for k in settings}
    assert built_in.level == 0.95 and built_in.funnel_min_k == 10


def test_plan_choices_are_the_engine_and_conversion_names():
    from metaanalysis import engine
    from metaanalysis.effects import conversions
    from metaanalysis.report import plan

    assert plan.METHODS == engine.METHODS and plan.TESTS == engine.TESTS
    assert plan.MEDIAN_CONVERSIONS == conversions.METHODS
