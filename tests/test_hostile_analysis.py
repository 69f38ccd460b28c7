"""One degenerate analysis never sinks the report.

An outcome where every study is at 0% or 100%, k = 0 or 1, or a model that
fails, is "not pooled: <reason>" in its row; the rest is pooled and written,
and the command exits 0 with the reason on stderr.  The built-in default plan
(no plan.yaml) works on any valid folder.
"""

import pandas as pd
import pytest
from hostile_cases import LEAK_PLAN, leak, pain, study, three_leak_studies, write_studies

from metaanalysis.cli import main
from metaanalysis.records.studies import load_studies
from metaanalysis.report.analysis import run_plan
from metaanalysis.report.plan import default_plan, load_plan


def _success(e, t):
    return {"outcome": "success", "time": "procedure", "unit": "lesions", "events": e,
            "total": t}


@pytest.mark.parametrize("counts, reason", [
    (((30, 30), (40, 40), (25, 25)), "model failed: events: every study has only events"),
    (((0, 30), (0, 40), (0, 25)), "model failed: events: every study has no events"),
])
def test_all_100_or_0_percent_is_not_pooled_and_the_rest_is(tmp_path, counts, reason):
    folder = write_studies(tmp_path / "s", [
        study(f"s{i}2020", [leak(3 + i, 40), _success(e, t)]) for i, (e, t) in enumerate(counts)])
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(LEAK_PLAN + "  - {name: success, measure: PLO, model: GLMM, unit: lesions}\n")
    res = run_plan(load_studies(folder), load_plan(plan_file))
    rows = res.results_table().set_index("outcome")
    assert rows.loc["leak", "model"].startswith("REML") and rows.loc["leak", "k"] == 3
    assert rows.loc["success", "model"] == "not pooled"
    assert rows.loc["success", "note"].startswith(reason)
    assert pd.isna(rows.loc["success", "estimate"])
    sens = res.sensitivity_table()
    assert set(sens["outcome"]) == {"leak", "success"}


def test_k_0_and_1_are_not_pooled_with_the_reason(tmp_path):
    folder = write_studies(tmp_path / "s", [
        study("a2020", [leak(3, 40), {"outcome": "rare", "time": "procedure",
                                      "unit": "lesions", "events": 1, "total": 40}]),
        study("b2021", [leak(4, 30), {"outcome": "rare", "time": "procedure",
                                      "unit": "lesions", "percent": 2.5}])])
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(LEAK_PLAN.replace("unit: lesions}", "unit: patients}")
                         + "  - {name: rare, measure: PLO, unit: lesions}\n")
    rows = run_plan(load_studies(folder), load_plan(plan_file)).results_table()
    notes = dict(zip(rows["outcome"], rows["note"]))
    assert notes["leak"] == "no study with usable data"
    # one study is not pooled, but its own estimate and exact interval are reported
    assert notes["rare"].startswith("one study (A 2020): its own estimate, Clopper–Pearson")
    rare = rows.set_index("outcome").loc["rare"]
    assert rare["estimate"] == 1 / 40 and rare["ci_lb"] < rare["estimate"] < rare["ci_ub"]


def test_default_plan_on_a_degenerate_folder_exits_0_with_the_reason_on_stderr(tmp_path, capsys):
    folder = write_studies(tmp_path / "s", [study(f"s{i}2020", [_success(n, n)])
                                            for i, n in enumerate((30, 40, 25))])
    out = tmp_path / "out"
    assert main(["report", str(folder), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "success any time (lesions): not pooled (model failed: events: every study" in err
    rows = pd.read_csv(out / "results.csv")
    assert rows["model"].tolist() == ["not pooled"]
    assert "not pooled — model failed" in (out / "report.md").read_text()


def test_default_plan_is_valid_for_the_folder_it_is_made_from(tmp_path):
    from metaanalysis.report.plan import check_plan

    folder = three_leak_studies(tmp_path / "s")
    studies = load_studies(folder)
    plan = default_plan(studies)
    check_plan(plan, studies)
    assert [o.name for o in plan.outcomes] == ["leak"]


def test_glmm_leave_one_out_is_bounded(tmp_path, monkeypatch):
    import metaanalysis.report.analysis as analysis

    monkeypatch.setattr(analysis, "MAX_GLMM_LEAVE_ONE_OUT", 3)
    folder = write_studies(tmp_path / "s", [study(f"s{i}2020", [leak(3 + i, 40)])
                                            for i in range(4)])
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(LEAK_PLAN.replace("unit: lesions}", "unit: lesions, model: GLMM}"))
    sens = run_plan(load_studies(folder), load_plan(plan_file)).sensitivity_table()
    assert not sens["analysis"].str.startswith("leave out").any()
    row = sens.set_index("analysis").loc["leave-one-out: not run"]
    assert row["note"] == "k = 4: leave-one-out with the GLMM is run for k ≤ 3 (one fit per study)"


def test_effect_size_tables_split_one_computation_per_outcome(tmp_path):
    from metaanalysis.report.run import effect_size_table, effect_size_tables
    from metaanalysis.report.tables import to_csv_text

    folder = write_studies(tmp_path / "s", [
        study("a2020", [leak(3, 40), pain("baseline", 7.0), pain("1 week", 4.0),
                        {"outcome": "pain_vas", "time": "1 month", "unit": "patients", "n": 30,
                         "median": 3, "min": 1, "max": 6},
                        {"outcome": "leak", "time": "1 week", "unit": "lesions", "percent": 10}]),
        study("b2021", [leak(5, 50), pain("baseline", 7.2), pain("day 7", 3.8),
                        {"outcome": "leak", "time": "1 week", "unit": "patients",
                         "events": 2, "total": 30}])])
    studies = load_studies(folder)
    tables = effect_size_tables(studies)
    assert [(n, t, u) for n, t, u, _ in tables] == [
        ("leak", "procedure", "lesions"), ("leak", "1 week", "lesions"),
        ("leak", "1 week", "patients"), ("pain_vas", "baseline", "patients"),
        ("pain_vas", "1 week", "patients"), ("pain_vas", "1 month", "patients")]
    for name, time, unit, df in tables:  # the same as one table per time point and unit
        rows = studies.outcome(name)
        rows = rows[(rows["time"].isin({time, "day 7"} if time == "1 week" else {time}))
                    & (rows["unit"] == unit)]
        assert to_csv_text(df) == to_csv_text(effect_size_table(rows))  # the same bytes
