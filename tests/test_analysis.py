"""Running the analysis plan: selection rules, models and sensitivity analyses (metaanalysis.report.analysis).

Numbers are those of ../shared/domain/thermal-ablation-studies.md (abstract data).
The shipped plan's results are built once per session (``shipped_results``).
"""

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

import metaanalysis as ma
from metaanalysis.report.analysis import analyse, fit, select
from metaanalysis.report.fitting import SingleStudy
from metaanalysis.report.plan import default_plan, load_plan
from metaanalysis.report.selection import representatives

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def studies(shipped_studies):
    return shipped_studies


@pytest.fixture(scope="module")
def plan(shipped_plan):
    return shipped_plan


def _reasons(sel):
    return dict(zip(sel.excluded["study"], sel.excluded["reason"]))


def _analysis(results, outcome, window=None, kind=None, unit=None):
    for a in results.analyses:
        if (a.outcome == outcome and a.window == window and a.kind == kind
                and (unit is None or a.unit == unit)):
            return a
    raise KeyError((outcome, window, kind))


def _sens(a):
    return a.sensitivity.set_index("analysis")


# ------------------------------------------------------------- overlap: one cohort per group

def test_one_representative_per_group_for_every_window(studies, plan, shipped_results):
    op = plan.outcome("pain_vas")
    # the largest member with usable pain data stands for its group in every window:
    # Wang 2022 (82) for Tengzhou; Motaghi 2022 for khan-motaghi (Khan's VAS is a median ± SD)
    assert representatives(studies, plan, op) == {"khan-motaghi": "motaghi2022",
                                                  "tengzhou": "wang2022"}
    for w in plan.windows:
        a = _analysis(shipped_results, "pain_vas", w, "change")
        assert not {"zhang2024", "fan2023", "khan2018"} & set(a.studies), w
    # at about 1 day Wang reports nothing: the group is not represented (Zhang is not swapped in)
    one_day = _analysis(shipped_results, "pain_vas", "about_1_day", "change")
    assert "stands for the group in every analysis" in _reasons(one_day.selection)["zhang2024"]
    assert shipped_results.representatives["morphine_mg_day"] == {"tengzhou": "fan2023"}
    assert shipped_results.representatives["cement_leakage"] == {"tengzhou": "wang2022"}


def test_overlap_sensitivity_rows_say_what_changed(shipped_results):
    a = _analysis(shipped_results, "pain_vas", "about_1_month", "change")
    sens = _sens(a)
    swap = sens.loc["overlap group tengzhou: Zhang 2024 instead of Wang 2022"]
    assert (swap["studies_in"], swap["studies_out"]) == ("Zhang 2024", "Wang 2022")
    every = sens.loc["overlap: all studies of each group"]
    assert set(every["studies_in"].split(", ")) == {"Fan 2023", "Zhang 2024"}
    # Chen 2022's probable Tengzhou membership applied: Chen (91) stands for the group, Wang out
    prob = sens.loc["probable overlap applied"]
    assert (prob["studies_in"], prob["studies_out"]) == ("", "Wang 2022")
    # the 'median ± SD' rule changed alone: Khan 2018 in, Motaghi 2022 out, said so
    msd = sens.loc["'median ± SD' used as mean ± SD"]
    assert (msd["studies_in"], msd["studies_out"]) == ("Khan 2018", "Motaghi 2022")
    assert "‡ Khan 2018" in msd["flags"]
    assert (sens["changed"].str.len() > 0).all()


def test_probable_member_is_separate_in_the_main_analysis(studies, plan):
    sel = select(studies, plan, plan.outcome("cement_leakage"), None, "lesions")
    assert sel.included["study"].tolist() == ["chen2022", "wang2022", "wu2021"]
    p2 = dataclasses.replace(plan, probable_overlap="apply")
    sel2 = select(studies, p2, plan.outcome("cement_leakage"), None, "lesions")
    assert sel2.included["study"].tolist() == ["chen2022", "wu2021"]  # Chen (91) stands for it


# ------------------------------------------------------------- local control

def test_local_control_pooled_across_units_with_the_stated_rules(shipped_results):
    a = _analysis(shipped_results, "local_control")
    inc = a.selection.included.set_index("study")
    # Chen 94.8% of the 140 treated vertebrae (nearest count 133, ¶); Wu 100% of 33 (¶);
    # Khan 59/61 survivors; Liu 26/28, the complement of local progression 2/28
    assert inc.loc["chen2022", ["events", "total", "unit"]].tolist() == [133, 140, "lesions"]
    assert inc.loc["wu2021", ["events", "total"]].tolist() == [33, 33]
    assert inc.loc["khan2018", ["events", "total", "unit"]].tolist() == [59, 61, "patients"]
    assert inc.loc["liu2023", ["events", "total"]].tolist() == [26, 28]
    assert "complement of local_progression" in inc.loc["liu2023", "assumption"]
    assert "¶" in inc.loc["chen2022", "flags"] and "¶" in inc.loc["wu2021", "flags"]
    assert a.pooled and a.result.method == "GLMM" and a.k == 4 and a.unit == "mixed"
    assert "Chen 2022 ¶ [lesions]" in a.labels() and "Khan 2018 [patients]" in a.labels()
    s = a.summary()
    assert 0.9 < s["ci_lb"] < s["estimate"] < s["ci_ub"] < 1
    sens = _sens(a)
    names = list(sens.index)
    assert any(n.startswith("assumed denominators (smallest plausible, 50–100% of units "
                            "treated): Chen 2022 73/77, Wu 2021 33/33") for n in names)
    assert any("(largest plausible" in n and "Chen 2022 128/135" in n for n in names)
    assert sens.loc["lesions only", "k"] == 2 and sens.loc["patients only", "k"] == 2
    no_assumed = sens.loc["assumed denominators or counts out (¶)"]
    assert set(no_assumed["studies_out"].split(", ")) == {"Chen 2022", "Wu 2021"}


def test_percent_without_denominator_exclude_rule(studies, plan):
    p2 = dataclasses.replace(plan, percent_without_denominator="exclude")
    sel = select(studies, p2, plan.outcome("local_control"), None, "lesions")
    assert len(sel.included) == 0
    assert "58, 77, 96, 97, 115, 116, 134, 135" in _reasons(sel)["chen2022"]
    got = select(studies, p2, plan.outcome("local_control"), None, "lesions",
                 assumed={("chen2022", "within 6 months"): 135, ("wu2021", "follow-up"): 33})
    g = got.included.set_index("study")
    assert (g.loc["chen2022", "events"], g.loc["chen2022", "total"]) == (128, 135)
    assert (g.loc["wu2021", "events"], g.loc["wu2021", "total"]) == (33, 33)


# ------------------------------------------------------------- absolute values and change

def test_absolute_pain_beside_change_with_relative_reduction(shipped_results):
    base = _analysis(shipped_results, "pain_vas", None, "baseline")
    m1 = _analysis(shipped_results, "pain_vas", "about_1_month", "absolute")
    ch = _analysis(shipped_results, "pain_vas", "about_1_month", "change")
    assert base.measure == m1.measure == "MN" and ch.measure == "MC"
    assert m1.studies == ch.studies  # the same cohorts
    # notes: REML + KH on raw means gives about 6.8 at baseline, 2.0 at about 1 month
    assert base.summary()["estimate"] == pytest.approx(6.82, abs=0.01)
    assert m1.summary()["estimate"] == pytest.approx(2.04, abs=0.01)
    rel = m1.row()["relative_reduction_pct"]
    assert rel == pytest.approx(100 * (1 - 2.0367 / m1.baseline_same_studies), abs=0.05)
    assert 65 < rel < 75  # Matsumoto 2024: 7.97 -> 2.34, about 70%
    # the absolute analysis pools the raw follow-up means (escalc MN): Wang 2022 1.7 ± 1.0, n 82
    i = list(m1.result.labels).index("wang2022")
    assert m1.result.yi[i] == 1.7 and m1.result.vi[i] == pytest.approx(1.0 / 82)


def test_pi_beyond_the_scale_is_flagged(shipped_results):
    a = _analysis(shipped_results, "pain_vas", "about_1_day", "change")
    assert a.bounds == (-10, 10) and a.pi_outside_bounds()
    assert "beyond the scale's bounds (-10 to 10)" in a.sentence()
    ok = _analysis(shipped_results, "pain_vas", "about_1_month", "change")
    assert not ok.pi_outside_bounds() and "beyond" not in ok.sentence()


# ------------------------------------------------------------- models and leave-one-out

def test_mean_change_matches_escalc(studies, plan):
    op = plan.outcome("pain_vas")
    sel = select(studies, plan, op, "about_1_month", "patients")
    res, model = fit(sel, op, plan)
    i = list(res.labels).index("wang2022")
    assert res.yi[i] == pytest.approx(4.6, abs=1e-12)  # 6.3 - 1.7
    assert res.vi[i] == pytest.approx((4 + 1 - 2 * 0.5 * 2.0) / 82, rel=1e-12)
    assert model == "REML + Knapp–Hartung (MC)" and res.test == "knha"


def test_leave_one_out_goes_through_the_engine(shipped_results):
    a = _analysis(shipped_results, "pain_vas", "about_1_month", "change")
    loo = ma.leave_one_out(a.result)
    rows = a.sensitivity[a.sensitivity["kind"] == "leave-one-out"].set_index("left_out")
    for sid in a.studies:
        assert rows.loc[sid, "estimate"] == pytest.approx(loo.loc[sid, "estimate"], rel=1e-12)
        assert rows.loc[sid, "ci_lb"] == pytest.approx(loo.loc[sid, "ci_lb"], rel=1e-12)
        assert "engine leave-one-out" in rows.loc[sid, "note"]
    # I² after leaving out the study that lowers it most is named in the row
    assert rows["changed"].str.contains("I² 95.8% →").all()


def test_k3_leave_one_out_follows_the_few_study_rule(shipped_results):
    a = _analysis(shipped_results, "pain_vas", "about_1_week", "change")
    assert a.k == 3
    rows = a.sensitivity[a.sensitivity["kind"] == "leave-one-out"]
    assert len(rows) == 3 and rows["note"].str.startswith("Bayesian").all()
    assert (rows["k"] == 2).all()


def test_few_studies_use_the_bayesian_model_with_the_plan_prior(shipped_results):
    a = _analysis(shipped_results, "complications_any")
    assert a.k == 2 and "half-normal(scale=0.5)" in a.model
    assert "CrI" in a.sentence() and "posterior median" in a.sentence()


def test_glmm_main_and_alternative_proportion_models(shipped_results):
    a = _analysis(shipped_results, "complications_major")
    # major: Chen 1/91 (grade 3), Zhang 2/67 (SIR D), JVIR 0/17 (none at all)
    row = a.row()
    assert row["k"] == 3 and row["n"] == 175 and a.result.method == "GLMM"
    assert row["estimate"] == pytest.approx(3 / 175, rel=0.02)  # τ² = 0: the pooled rate
    names = set(a.sensitivity["analysis"])
    assert {"model: logit two-step", "model: Freeman–Tukey two-step",
            "model: Bayesian (logit)", "leave out JVIR 2014"} <= names


def test_comparative_risk_ratios(shipped_results):
    leak = _analysis(shipped_results, "cement_leakage_rr")
    inc = leak.selection.included.set_index("study")
    assert inc.loc["liu2023", ["events1", "total1", "events2", "total2"]].tolist() == [2, 28, 12, 30]
    assert inc.loc["bmcneurol2020", ["events1", "total1", "events2", "total2"]].tolist() == [3, 47, 16, 78]
    assert leak.k == 2 and leak.model.startswith("Bayesian")  # k = 2: the few-study rule
    s = leak.summary()
    assert s["ci_lb"] < s["estimate"] < 1 < 1.5
    lp = _analysis(shipped_results, "local_progression_rr")
    # Liu 2/28 vs 33.00% of 30 (no whole count: the nearest, 10/30, flagged ¶); one study
    assert isinstance(lp.result, SingleStudy) and lp.k == 1 and not lp.pooled
    assert lp.summary()["estimate"] == pytest.approx((2 / 28) / (10 / 30), rel=1e-12)
    se = math.sqrt(1 / 2 - 1 / 28 + 1 / 10 - 1 / 30)
    assert lp.summary()["ci_lb"] == pytest.approx((2 / 28) / (10 / 30) * math.exp(-1.959964 * se),
                                                  rel=1e-5)
    assert "¶" in lp.selection.included["flags"].iloc[0]
    assert lp.row()["model"] == "one study, not pooled" and not math.isnan(lp.row()["ci_ub"])


def test_single_proportion_shows_exact_ci(studies, plan):
    p2 = dataclasses.replace(plan, exclusions=(("chen2022", "x"), ("wu2021", "x"), ("liu2023", "x")))
    a = analyse(studies, p2, plan.outcome("local_control"), None, "mixed", with_sensitivity=False)
    from scipy import stats

    s = a.summary()
    assert a.k == 1 and s["estimate"] == pytest.approx(59 / 61)
    assert s["ci_lb"] == pytest.approx(stats.beta.ppf(0.025, 59, 3), rel=1e-10)
    assert "Clopper–Pearson" in a.sentence()


def test_modality_subgroups_with_between_group_test(shipped_results):
    a = _analysis(shipped_results, "cement_leakage")
    sg = a.subgroups
    assert sorted(sg.groups) == ["MWA", "RFA"] and sg.groups["RFA"].k == 1
    assert 0 <= sg.q_between_p <= 1 and sg.q_between_df == 1
    tab = shipped_results.subgroup_table()
    rfa = tab[(tab.outcome == "cement_leakage") & (tab.modality == "RFA")].iloc[0]
    assert rfa["estimate"] == pytest.approx(3 / 47, rel=1e-6)  # BMC Neurol 2020, one study


# ------------------------------------------------------------- plans

def test_run_plan_lists_every_outcome(studies, shipped_results):
    analysed = {r for a in shipped_results.analyses
                for r in shipped_results.plan.outcome(a.outcome).all_records}
    unpooled = {name for name, _ in shipped_results.unpooled}
    assert analysed | unpooled >= set(studies.outcomes())
    tab = shipped_results.results_table()
    leak = tab[tab.outcome == "cement_leakage"].iloc[0]
    assert leak["k"] == 3 and leak["n"] == 288 and leak["unit"] == "lesions"
    assert all(tab["i2"].dropna() >= 0) and all(tab["tau2"].dropna() >= 0)
    sentence = _analysis(shipped_results, "cement_leakage").sentence()
    assert sentence.startswith("Cement leakage: 29.2% (95% CI 24.2–34.7%; 95% PI 24.2–34.7%; "
                               "τ = 0.00, I² = 0.0%; 3 studies, 288 lesions")


def test_default_plan_covers_counts_and_changes(studies):
    p = default_plan(studies)
    by = {o.name: o for o in p.outcomes}
    assert by["cement_leakage"].model == "GLMM" and by["pain_vas"].measure == "MC"
    assert "odi" in dict(p.not_pooled)
    assert math.isclose(p.windows["about_1_month"][1], 42.0)
    assert np.isfinite(p.level)


def test_display_labels_from_citation_or_label(studies):
    from metaanalysis.report.analysis import display_labels

    lab = display_labels(studies)
    assert lab["chen2022"] == "Chen 2022" and lab["motaghi2022"] == "Motaghi 2022"
    assert lab["jvir2014"] == "JVIR 2014" and lab["bmcneurol2020"] == "BMC Neurol 2020"
    assert lab["wallace2015"] == "Wallace 2015" and lab["levy2020"] == "Levy 2020"


def test_plausible_denominator_rule():
    from metaanalysis.report.analysis import plausible_denominators

    assert plausible_denominators(94.8, 140, [58, 77, 96, 97, 115, 116, 134, 135]) == (77, 135)
    assert plausible_denominators(100, 33, range(1, 34)) == (33, 33)
    assert plausible_denominators(50, 10, [2, 4], 0.5) is None


def test_study_sets_in_plan(tmp_path, studies, plan, shipped_results):
    from metaanalysis.errors import PlanError
    from metaanalysis.report.analysis import run_plan

    assert plan.study_sets == {"anchor_series": ("chen2022", "khan2018")}
    text = Path(plan.path).read_text()
    bad = tmp_path / "plan.yaml"
    bad.write_text(text.replace("anchor_series: [chen2022, khan2018]", "anchor_series: [chen2022]"))
    with pytest.raises(PlanError, match="at least two"):
        load_plan(bad)
    p2 = dataclasses.replace(plan, study_sets={"x": ("chen2022", "nobody2020")})
    with pytest.raises(PlanError, match="nobody2020"):
        run_plan(studies, p2, with_sensitivity=False)
    # the set row for local control: Chen 133/140 (¶) and Khan 59/61, k = 2, Bayesian
    a = _analysis(shipped_results, "local_control")
    row = a.sensitivity[a.sensitivity["study_set"] == "anchor_series"].iloc[0]
    assert row["k"] == 2 and row["n"] == 140 + 61 and "half-normal(scale=0.5)" in row["note"]
