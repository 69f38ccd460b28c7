"""Hostile analysis plans: every bad plan is exit 2 with a line naming file, entry and value.

The strict plan schema (metaanalysis.report.plan, tables *_SCHEMA) is checked
here: unknown keys at every level with the nearest valid key, types, references
to windows, study sets, studies, outcomes and arms, and measures the data of an
outcome cannot give.
"""

import dataclasses
from pathlib import Path

import pytest

from metaanalysis.cli import main
from metaanalysis.errors import PlanError
from metaanalysis.records.studies import load_studies
from metaanalysis.report import plan as planmod
from metaanalysis.report.plan import check_plan, load_plan

ROOT = Path(__file__).resolve().parents[1]
STUDIES = ROOT / "studies"
SHIPPED = (STUDIES / "plan.yaml").read_text(encoding="utf-8")

MINIMAL = "outcomes:\n  - {name: cement_leakage, measure: PLO, model: GLMM}\n"


@pytest.fixture(scope="module")
def studies():
    return load_studies(STUDIES)


def _lines(tmp_path, text) -> list[str]:
    p = tmp_path / "plan.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(PlanError) as err:
        load_plan(p)
    lines = str(err.value).splitlines()
    assert all(line.startswith(f"{p}: ") for line in lines)
    return [line.removeprefix(f"{p}: ") for line in lines]


@pytest.mark.parametrize("text, expected", [
    ("exclusion: []\n" + MINIMAL, "exclusion: unknown key; did you mean exclusions?"),
    ("defaults: {methd: DL}\n" + MINIMAL, "defaults/methd: unknown key; did you mean method?"),
    ("windows: {m1: [21, 42]}\noutcomes:\n  - {name: pain_vas, measure: MC, windos: [m1]}\n",
     "outcomes/pain_vas/windos: unknown key; did you mean windows?"),
    ("arms: [{study: liu2023, arm: pvp, reasn: x}]\n" + MINIMAL,
     "arms[0]/reasn: unknown key; did you mean reason?"),
    ("outcomes:\n  - {name: cement_leakage, measure: PLO, tau_prior: {halfnormall: 1}}\n",
     "outcomes/cement_leakage/tau_prior: 'halfnormall' is not one of halfnormal, halfcauchy; "
     "did you mean halfnormal?"),
])
def test_unknown_keys_at_every_level_suggest_the_nearest(tmp_path, text, expected):
    assert _lines(tmp_path, text) == [expected]


@pytest.mark.parametrize("text, expected", [
    ("outcomes:\n  - {name: pain_vas, measure: MC, timecourse: \"no\"}\n",
     "outcomes/pain_vas/timecourse: got 'no'; expected true or false (without quotes)"),
    ("exclusions: 5\n" + MINIMAL, "exclusions: got 5; expected a list [...] of a mapping"),
    ("defaults: [REML]\n" + MINIMAL, "defaults: got ['REML']; expected a mapping with keys"),
    ("outcomes:\n  - {name: pain_vas, measure: MN}\n",
     "outcomes/pain_vas/measure: got 'MN'; expected one of PR, PLO, PAS, PFT, MC"),
    ("outcomes:\n  - {name: pain_vas, measure: MC, model: GLMM}\n",
     "outcomes/pain_vas/model: GLMM pools proportions"),
    ("outcomes:\n  - {name: pain_vas, measure: MC, windows: [about_1_mnth]}\n",
     "outcomes/pain_vas/windows[0]: 'about_1_mnth' is not defined under 'windows'"),
    ("windows: {about_1_month: [21, 42]}\n"
     "outcomes:\n  - {name: pain_vas, measure: MC, windows: [about_1_mnth]}\n",
     "did you mean about_1_month?"),
    ("outcomes:\n  - {name: pain_vas, measure: MC, study_sets: [anchor]}\n",
     "outcomes/pain_vas/study_sets[0]: 'anchor' is not defined under 'study_sets'"),
    ("defaults: {level: 95}\n" + MINIMAL, "defaults/level: got 95; expected a number in (0, 1)"),
    ("defaults: {funnel_min_k: 2.5}\n" + MINIMAL, "defaults/funnel_min_k: got 2.5"),
    ("outcomes: []\n", "outcomes: got []; expected a list of at least 1"),
    ("title: [a]\n" + MINIMAL, "title: got ['a']; expected text"),
    ("windows: {m: [0, .inf]}\n" + MINIMAL, "windows/m: got [0, inf]"),
    ("windows: {\"a\\nb\": [0, 1]}\n" + MINIMAL, "expected a name of 1 to 64 characters"),
    ("study_sets: {s: [chen2022, chen2022]}\n" + MINIMAL, "is listed twice"),
    ("outcomes:\n  - {name: \"../../x\", measure: PLO}\n", "expected an outcome name"),
    ("outcomes:\n  - {name: pain_vas, measure: MC, r: 1.0e+400}\n", "outcomes/pain_vas/r: got inf"),
    ("outcomes:\n  - {name: pain_vas, measure: MC, r: " + "9" * 400 + "}\n",
     "a number written with 400 characters"),
    ("a: &x [1]\nb: *x\n" + MINIMAL, "alias *x is not allowed"),
    ("? [a, b]\n: 1\n" + MINIMAL, "a key must be a plain value"),
    ("x: " + "[" * 5000 + "]" * 5000 + "\n" + MINIMAL, "nest"),
    ("- 1\n", "top level is list; expected a mapping"),
    ("outcomes: [\n", "broken YAML at line"),
    ("outcomes:\n  - {name: pain_vas, measure: MC}\noutcomes: []\n", "duplicate key 'outcomes'"),
])
def test_types_and_references_are_checked_at_load_time(tmp_path, text, expected):
    lines = _lines(tmp_path, text)
    assert any(expected in line for line in lines), lines


def test_the_shipped_plan_and_its_typo_free_variants_load(studies):
    plan = load_plan(STUDIES / "plan.yaml")
    check_plan(plan, studies)
    assert plan.outcome("pain_vas").timecourse is True


@pytest.mark.parametrize("old, new, expected", [
    ("exclusions: []", "exclusions: [{study: chen2023, reason: x}]",
     "exclusions[0]/study: 'chen2023' is not a study id; did you mean chen2022?"),
    ("arm: mwa_pvp,", "arm: mwa_pv,", "arms[0]/arm: 'mwa_pv' is not an arm of liu2023; "
     "did you mean mwa_pvp?"),
    ("anchor_series: [chen2022, khan2018]", "anchor_series: [chen2022, khan2019]",
     "study_sets/anchor_series: 'khan2019' is not a study id; did you mean khan2018?"),
    ("{outcome: odi,", "{outcome: odl,", "not_pooled[2]/outcome: 'odl' is not an outcome"),
    ("  - name: cement_leakage", "  - name: cement_leak",
     "outcomes/cement_leak/name: 'cement_leak' is not an outcome of the study records; did you "
     "mean cement_leakage?"),
    ("    measure: PLO\n    model: GLMM\n    unit: lesions",
     "    measure: MC\n    unit: lesions",
     "outcomes/cement_leakage/measure: MC pools mean changes, but no record of cement_leakage "
     "gives a mean or median; its records give counts"),
    ("    measure: MC            # raw mean change, pre minus post\n    absolute: true         "
     "# also the absolute score (MN) at baseline and each window",
     "    measure: PLO", "outcomes/pain_vas/measure: PLO pools proportions, but no record"),
])
def test_references_to_the_study_records_are_checked(tmp_path, studies, old, new, expected):
    assert old in SHIPPED
    p = tmp_path / "plan.yaml"
    p.write_text(SHIPPED.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(PlanError) as err:
        check_plan(load_plan(p), studies)
    assert [f"{p}: {expected}" in line for line in str(err.value).splitlines()] == [True]


def test_cli_exit_2_one_line_per_problem_no_traceback(tmp_path, capsys):
    p = tmp_path / "plan.yaml"
    p.write_text(SHIPPED.replace("exclusions: []", "exclusion: []")
                 .replace("    timecourse: true", "    timecourse: \"no\"", 1), encoding="utf-8")
    out = tmp_path / "out"
    assert main(["report", str(STUDIES), "--plan", str(p), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith(str(p))]
    assert len(lines) == 2 and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_every_schema_key_is_a_field_of_the_plan_objects():
    plan_fields = {f.name for f in dataclasses.fields(planmod.Plan)}
    outcome_fields = {f.name for f in dataclasses.fields(planmod.OutcomePlan)}
    assert set(planmod.DEFAULTS_SCHEMA) <= plan_fields
    assert set(planmod.OUTCOME_SCHEMA) <= outcome_fields
    assert set(planmod.PLAN_SCHEMA) - {"defaults"} <= plan_fields
