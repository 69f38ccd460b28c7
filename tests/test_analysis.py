"""Running the analysis plan: selection rules, models and sensitivity analyses (metaanalysis.report.analysis)."""

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

import metaanalysis as ma
from metaanalysis.report.analysis import analyse, fit, run_plan, select
from metaanalysis.report.plan import default_plan, load_plan

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def studies():
    return ma.load_studies(ROOT / "studies")


@pytest.fixture(scope="module")
def plan():
    return load_plan(ROOT / "studies" / "plan.yaml")


def _reasons(sel):
    return dict(zip(sel.excluded["study"], sel.excluded["reason"]))


def test_overlap_keeps_the_largest_study_per_group(studies, plan):
    # cement leakage, lesions: wang2022 (115), zhang2024 (85) and fan2023 (63) share the
    # Tengzhou group; chen2022 belongs to it only probably and is kept apart by default
    sel = select(studies, plan, plan.outcome("cement_leakage"), None, "lesions")
    assert sel.included["study"].tolist() == ["chen2022", "wang2022", "wu2021"]
    assert "overlap group tengzhou: kept wang2022" in _reasons(sel)["zhang2024"]
    alt = select(studies, dataclasses.replace(plan, overlap="all"),
                 plan.outcome("cement_leakage"), None, "lesions")
    assert alt.included["study"].tolist() == ["chen2022", "fan2023", "wang2022", "wu2021",
                                              "zhang2024"]
    assert alt.included["ni"].sum() == 436  # 140 + 63 + 115 + 33 + 85 vertebrae


def test_unit_separation_and_arm_selection(studies, plan):
    sel = select(studies, plan, plan.outcome("cement_leakage"), None, "lesions")
    reasons = sel.excluded.set_index(["study", "arm"])["reason"]
    # liu2023 reports leakage per patient: never pooled with vertebrae
    assert "unit patients" in reasons[("liu2023", "mwa_pvp")]
    # its comparator arm (no ablation) is never pooled
    assert "not the arm pooled" in reasons[("liu2023", "pvp")]


def test_exclusions_named_in_the_plan(studies, plan):
    p2 = dataclasses.replace(plan, exclusions=(("jvir2014", "cementoplasty in 9 of 20 only"),))
    sel = select(studies, p2, plan.outcome("complications_major"), None, "patients")
    assert "jvir2014" not in sel.included["study"].tolist()
    assert _reasons(sel)["jvir2014"] == "excluded by the plan: cementoplasty in 9 of 20 only"


def test_percent_without_denominator_excluded_then_assumed(studies, plan):
    op = plan.outcome("local_control")
    sel = select(studies, plan, op, None, "lesions")
    assert len(sel.included) == 0
    # candidate denominators from checks: 94.8% of at most 140 vertebrae
    assert "58, 77, 96, 97, 115, 116, 134, 135" in _reasons(sel)["chen2022"]
    assumed = select(studies, plan, op, None, "lesions",
                     assumed={("chen2022", "within 6 months"): 135, ("wu2021", "follow-up"): 33})
    got = assumed.included.set_index("study")
    assert (got.loc["chen2022", "events"], got.loc["chen2022", "total"]) == (128, 135)  # 94.8%
    assert (got.loc["wu2021", "events"], got.loc["wu2021", "total"]) == (33, 33)
    assert "assumed denominator 135" in got.loc["chen2022", "assumption"]
    # and the sensitivity table states the assumption
    a = analyse(studies, plan, op, None, "lesions")
    assert not a.pooled and "no study with usable data" in a.model
    names = a.sensitivity["analysis"].tolist()
    # rule: candidates from half of the treated units to all of them; 100% -> all treated
    # (94.8% of <= 140: 77 (73/77) .. 135 (128/135); wu2021 100% of 33 lesions: 33/33)
    assert any("(largest plausible, 50–100% of units treated): Chen 2022 128/135, Wu 2021 33/33"
               in n for n in names)
    assert any("(smallest plausible, 50–100% of units treated): Chen 2022 73/77, Wu 2021 33/33"
               in n for n in names)
    assert not any("wu2021 1" in n.lower() or "/1," in n for n in names)  # no 1/1 study
    smallest = a.sensitivity.set_index("analysis").loc[next(n for n in names if "smallest" in n)]
    assert smallest["k"] == 2 and smallest["n"] == 77 + 33
    assert "¶ Chen 2022, Wu 2021" in smallest["flags"]


def test_windows_pick_one_record_per_study_and_need_a_baseline(studies, plan):
    op = plan.outcome("pain_vas")
    sel = select(studies, plan, op, "about_1_month", "patients")
    got = sel.included.set_index("study")
    # 21-42 days: zhang2024's "4 weeks" dropped for overlap, khan2018's "2-4 weeks" for its baseline
    assert sorted(got.index) == ["chen2022", "jvir2014", "motaghi2022", "wang2022", "wu2021"]
    assert got.loc["wu2021", "time"] == "4 weeks" and got.loc["chen2022", "time"] == "1 month"
    assert "median ± SD" in _reasons(sel)["khan2018"]
    # with the median used as the mean, khan2018 (n 69) replaces motaghi2022 (n 28)
    sel2 = select(studies, dataclasses.replace(plan, median_sd="as_mean"), op,
                  "about_1_month", "patients")
    assert "khan2018" in sel2.included["study"].tolist()
    assert "kept khan2018" in _reasons(sel2)["motaghi2022"]


def test_mean_change_matches_escalc_and_smaller_n(studies, plan):
    # wang2022 at 1 month: MC = 6.3 - 1.7; vi = (2.0^2 + 1.0^2 - 2 r 2.0 1.0) / n (escalc "MC")
    op = plan.outcome("pain_vas")
    sel = select(studies, plan, op, "about_1_month", "patients")
    res, model = fit(sel, op, plan)
    i = list(res.labels).index("wang2022")
    assert res.yi[i] == pytest.approx(4.6, abs=1e-12)
    assert res.vi[i] == pytest.approx((4 + 1 - 2 * 0.5 * 2.0) / 82, rel=1e-12)
    assert model == "REML + Knapp–Hartung (MC)" and res.test == "knha"
    # khan2018 at 20-24 weeks: the enrolled 69, as for every study (the n analysed is not reported)
    sel6 = select(studies, dataclasses.replace(plan, median_sd="as_mean", overlap="all"),
                  op, "about_6_months", "patients")
    assert sel6.included.set_index("study").loc["khan2018", "n"] == 69


def test_few_studies_use_the_bayesian_model_with_the_plan_prior(studies, plan):
    p2 = dataclasses.replace(plan, exclusions=(("fan2023", "test: two studies"),))
    a = analyse(studies, p2, plan.outcome("morphine_mg_day"), "about_1_month", "patients")
    assert a.result.k == 2 and "half-normal(scale=15)" in a.model
    sens = a.sensitivity.set_index("analysis")
    # Knapp-Hartung with k = 2 uses t(1): far wider than the Bayesian interval
    kh = sens.loc["model: REML + Knapp–Hartung"]
    assert kh["ci_ub"] - kh["ci_lb"] > 3 * (a.row()["ci_ub"] - a.row()["ci_lb"])
    assert {"r = 0.3", "r = 0.7"} <= set(sens.index)


def test_glmm_main_and_alternative_proportion_models(studies, plan):
    a = analyse(studies, plan, plan.outcome("complications_major"), None, "patients")
    # major: Chen 1/91, Zhang 2/67, jvir 0/17: GLMM, natural scale
    row = a.row()
    assert row["k"] == 3 and row["n"] == 175 and a.result.method == "GLMM"
    assert 0 < row["ci_lb"] < row["estimate"] < row["ci_ub"] < 0.1
    assert row["estimate"] == pytest.approx(3 / 175, rel=0.02)  # τ² = 0: close to the raw pooled rate
    names = set(a.sensitivity["analysis"])
    assert {"model: logit two-step", "model: Freeman–Tukey two-step", "model: Bayesian (logit)",
            "leave out JVIR 2014"} <= names
    loo = a.sensitivity.set_index("analysis").loc["leave out JVIR 2014"]
    assert loo["k"] == 2


def test_run_plan_lists_every_outcome(studies, plan):
    res = run_plan(studies, plan, with_sensitivity=False)
    analysed = {a.outcome for a in res.analyses}
    unpooled = {name for name, _ in res.unpooled}
    assert analysed | unpooled == set(studies.outcomes())
    tab = res.results_table()
    leak = tab[tab.outcome == "cement_leakage"].iloc[0]
    assert leak["k"] == 3 and leak["n"] == 288 and leak["unit"] == "lesions"
    assert all(res.results_table()["i2"].dropna() >= 0)
    assert all(res.results_table()["tau2"].dropna() >= 0)
    sentence = next(a for a in res.analyses if a.outcome == "cement_leakage").sentence()
    assert sentence.startswith("Pooled cement leakage was 29.2% (95% CI 24.2–34.7%; 3 studies, 288 lesions")


def test_default_plan_covers_counts_and_changes(studies):
    p = default_plan(studies)
    by = {o.name: o for o in p.outcomes}
    assert by["cement_leakage"].model == "GLMM" and by["pain_vas"].measure == "MC"
    assert "odi" in dict(p.not_pooled)
    assert math.isclose(p.windows["about_1_month"][1], 42.0)
    assert np.isfinite(p.level)


def test_display_labels_from_citation(studies):
    from metaanalysis.report.analysis import display_labels

    lab = display_labels(studies)
    # "Chen et al. 2022, ..." / "Motaghi M et al. 2022, ..." -> first author + year
    assert lab["chen2022"] == "Chen 2022" and lab["motaghi2022"] == "Motaghi 2022"
    assert lab["khan2018"] == "Khan 2018" and lab["wang2022"] == "Wang 2022"
    # citation without an author: the id's letters and year
    assert lab["jvir2014"] == "JVIR 2014"


def test_plausible_denominator_rule():
    from metaanalysis.report.analysis import plausible_denominators

    # issue 2 item 4: 94.8% of at most 140 vertebrae -> 58, 77, ..., 135; half of 140 = 70
    assert plausible_denominators(94.8, 140, [58, 77, 96, 97, 115, 116, 134, 135]) == (77, 135)
    # 100% with no denominator: every count fits; the number treated is used, never 1/1
    assert plausible_denominators(100, 33, range(1, 34)) == (33, 33)
    assert plausible_denominators(50, 10, [2, 4], 0.5) is None


def test_study_sets_in_plan(tmp_path, studies, plan):
    import dataclasses

    from metaanalysis.errors import PlanError
    from metaanalysis.report.plan import load_plan

    assert plan.study_sets == {"anchor_series": ("chen2022", "khan2018")}
    assert plan.sets_for(plan.outcome("complications_major")) == ["anchor_series"]
    text = (Path(plan.path)).read_text()
    bad = tmp_path / "plan.yaml"
    bad.write_text(text.replace("anchor_series: [chen2022, khan2018]", "anchor_series: [chen2022]"))
    with pytest.raises(PlanError, match="at least two different study ids"):
        load_plan(bad)
    per = text.replace("  - name: complications_major\n",
                       "  - name: complications_major\n    study_sets: []\n")
    bad.write_text(per)
    assert load_plan(bad).sets_for(load_plan(bad).outcome("complications_major")) == []
    bad.write_text(text.replace("  - name: complications_major\n",
                                "  - name: complications_major\n    study_sets: [nope]\n"))
    with pytest.raises(PlanError, match="study_sets"):
        load_plan(bad)
    # an unknown study id in a set is a plan error when the plan is run
    p2 = dataclasses.replace(plan, study_sets={"x": ("chen2022", "nobody2020")})
    with pytest.raises(PlanError, match="nobody2020"):
        run_plan(studies, p2, with_sensitivity=False)
    # the set row: the two anchors' pain change at about 1 month, k = 2, Bayesian with its prior
    p3 = dataclasses.replace(plan, median_sd="as_mean")
    a = analyse(studies, p3, plan.outcome("pain_vas"), "about_1_month", "patients")
    row = a.sensitivity[a.sensitivity["study_set"] == "anchor_series"].iloc[0]
    assert row["k"] == 2 and row["n"] == 160 and "half-normal(scale=1)" in row["note"]
