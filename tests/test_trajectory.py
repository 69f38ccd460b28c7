"""The report's model-based time course (report/trajectory.py) on the shipped studies."""

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import metaanalysis as ma
from metaanalysis.errors import PlanError
from metaanalysis.report.analysis import run_plan
from metaanalysis.report.trajectory import (
    SETTINGS,
    fit_trajectories,
    trajectory,
    trajectory_figure,
    trajectory_table,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def results():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_plan(ma.load_studies(ROOT / "studies"), ma.load_plan(ROOT / "studies" / "plan.yaml"),
                        with_sensitivity=False)


@pytest.fixture(scope="module")
def trajs(results):
    return {t.outcome: t for t in fit_trajectories(results)}


def test_one_model_over_every_window(results, trajs):
    t = trajs["pain_vas"]
    assert t.fitted and t.unit == "patients"
    per_window = [a for a in results.analyses if a.outcome == "pain_vas" and a.window
                  and a.kind in (None, "change")]  # the changes, not the absolute values
    assert t.result.k == sum(len(a.selection.included) for a in per_window)
    studies = set().union(*(set(a.selection.included["study"]) for a in per_window))
    assert t.result.n_studies == len(studies)
    assert list(t.curve["window"]) == list(results.plan.outcome("pain_vas").windows)
    # the plan's model: CAR over time, sampling correlation 0.5, REML, t tests
    assert t.result.struct == "CAR" and t.result.method == "REML" and t.result.test == "t"
    assert "rho = 0.50" in t.result.sampling
    assert (t.curve["pi_lb"] < t.curve["ci_lb"]).all() and (t.curve["ci_ub"] < t.curve["pi_ub"]).all()


def test_model_is_the_package_function(trajs):
    t = trajs["pain_vas"]
    d = t.data
    direct = ma.pool_mv(d["yi"], d["vi"], study=d["study"], time=d["time"] / 30.4375,
                        struct="CAR", rho=0.5, mods=pd.DataFrame({"window": d["window"]}),
                        intercept=False, test="t")
    np.testing.assert_allclose(t.curve["estimate"], direct.coef["estimate"], rtol=1e-10)
    np.testing.assert_allclose(t.result.loglik, direct.loglik, rtol=1e-12)


def test_change_over_time_and_sensitivity(trajs):
    t = trajs["pain_vas"]
    b = t.result.coef["estimate"]
    model = t.tests[t.tests["inference"] == "model"]
    change = model[model["kind"] == "contrast"].iloc[0]
    assert change["test"] == "about 1 month to about 6 months"
    assert change["estimate"] == pytest.approx(b["window[about_6_months]"] - b["window[about_1_month]"])
    joint = model[model["kind"] == "joint"].iloc[0]
    assert joint["stat_text"].startswith(f"F(4, {t.result.k - 5})")
    cr2 = t.tests[t.tests["inference"] == "CR2"]
    text = t.sentence()
    if t.result.n_studies > len(t.result.coef):
        assert len(cr2) == 2 and cr2["estimate"].dropna().iloc[0] == pytest.approx(change["estimate"])
        assert "[CR2:" in text
    else:  # one study per overlap group leaves 5 studies for 5 window means: no CR2, said why
        assert len(cr2) == 0
        assert "more clusters than coefficients" in " ".join(t.sensitivity["note"].dropna())
    assert list(t.sensitivity["analysis"])[:2] == ["sampling correlation 0.2",
                                                   "sampling correlation 0.8"]
    assert "Change about 1 month to about 6 months" in text
    assert (f"one model over all time points ({t.result.k} estimates from "
            f"{t.result.n_studies} studies") in text
    table = trajectory_table(tuple(trajs.values()))
    assert set(table["part"]) == {"curve", "test", "sensitivity"}


def _only(results, outcome, keep):
    """``results`` with the analyses of ``outcome`` restricted to the studies ``keep``."""
    out = []
    for a in results.analyses:
        if a.outcome == outcome:
            inc = a.selection.included
            sel = dataclasses.replace(a.selection,
                                      included=inc[inc["study"].isin(keep)].reset_index(drop=True))
            a = dataclasses.replace(a, selection=sel)
        out.append(a)
    return dataclasses.replace(results, analyses=tuple(out))


def test_two_studies_no_robust_inference(results, trajs):
    keep = sorted(set(trajs["pain_vas"].data["study"]))[:2]
    t = trajectory(_only(results, "pain_vas", keep), results.plan.outcome("pain_vas"), "patients")
    assert t.fitted and t.result.n_studies == 2
    assert (t.tests["inference"] == "model").all()
    assert "CR2 not computed: cluster: 2 clusters for 5 coefficients" in " ".join(
        t.sensitivity["note"].dropna())


def test_not_fitted_with_one_window(results):
    op = results.plan.outcome("pain_vas")
    one = dataclasses.replace(results, analyses=tuple(
        a for a in results.analyses if a.outcome != "pain_vas" or a.window == "about_1_month"))
    t = trajectory(one, op, "patients")
    assert not t.fitted and "1 windows" in t.reason and "not fitted" in t.sentence()


def test_figure_draws_the_model(trajs):
    import matplotlib

    matplotlib.use("Agg")
    from metaanalysis.plots.timecourse import timecourse

    model = trajectory_figure(tuple(trajs.values()), "pain_vas", "patients")
    assert trajectory_figure(tuple(trajs.values()), "pain_vas", "lesions") is None
    ax = timecourse(None, model["studies"], trajectory=model["trajectory"])
    line = [ln for ln in ax.lines if ln.get_gid() == "trajectory-line"]
    assert len(line) == 1
    np.testing.assert_allclose(line[0].get_ydata(), trajs["pain_vas"].curve["estimate"])
    assert len([ln for ln in ax.lines if ln.get_gid() == "study-line"]) == trajs["pain_vas"].result.n_studies
    # the k row under the model's time axis, with "k*" where the study set changes
    ax = timecourse(None, model["studies"], trajectory=model["trajectory"],
                    counts=model["counts"])
    d = trajs["pain_vas"].data
    sets = [frozenset(d.loc[d["window"] == w, "study"]) for w in d["window"].cat.categories]
    want = [str(len(s)) + ("*" if i and s != sets[i - 1] else "") for i, s in enumerate(sets)]
    assert [t.get_text() for t in ax.texts if t.get_gid() == "k-label"] == want
    assert any(w.endswith("*") for w in want)  # the shipped pain series changes its studies
    assert "k*: other studies than at the previous time" in [
        t.get_text() for t in ax.get_legend().get_texts()]


def _plan(tmp_path, block):
    p = tmp_path / "plan.yaml"
    p.write_text("windows: {a: [0, 3], b: [20, 40]}\n" + block
                 + "outcomes: [{name: pain_vas, measure: MC, windows: [a, b], timecourse: true}]\n")
    return p


def test_plan_keys_are_checked(tmp_path):
    plan = ma.load_plan(_plan(tmp_path, ""))
    assert plan.timecourse_model == SETTINGS
    plan = ma.load_plan(_plan(tmp_path, "timecourse_model: {struct: HCS, contrast: [a, b]}\n"))
    assert plan.timecourse_model["struct"] == "HCS" and plan.timecourse_model["contrast"] == ("a", "b")
    with pytest.raises(PlanError, match="timecourse_model/struct: got 'AR2'"):
        ma.load_plan(_plan(tmp_path, "timecourse_model: {struct: AR2}\n"))
    with pytest.raises(PlanError, match="timecourse_model/contrast"):
        ma.load_plan(_plan(tmp_path, "timecourse_model: {contrast: [a, c]}\n"))
    with pytest.raises(PlanError, match="timecourse_model/sampling_rho"):
        ma.load_plan(_plan(tmp_path, "timecourse_model: {sampling_rho: 1.5}\n"))
    with pytest.raises(PlanError, match="did you mean"):
        ma.load_plan(_plan(tmp_path, "timecourse_model: {structure: CS}\n"))


def test_log_time_trend(results):
    plan = dataclasses.replace(results.plan, timecourse_model={
        **results.plan.timecourse_model, "trend": "log_time", "struct": "CS", "robust": "CR1"})
    t = trajectory(dataclasses.replace(results, plan=plan), plan.outcome("pain_vas"), "patients")
    assert t.fitted and list(t.result.coef.index) == ["intrcpt", "log1p_days"]
    assert len(t.curve) == 40 and t.curve["time"].is_monotonic_increasing
    slope = t.tests[(t.tests["kind"] == "contrast") & (t.tests["inference"] == "model")].iloc[0]
    assert slope["estimate"] == pytest.approx(t.result.coef.loc["log1p_days", "estimate"])
    assert set(t.tests["inference"]) == {"model", "CR1"}
    b = t.result.coef["estimate"]
    np.testing.assert_allclose(t.curve["estimate"], b["intrcpt"] + b["log1p_days"] * np.log1p(t.curve["time"]))



@pytest.fixture(scope="module")
def figure_payloads(results, trajs):
    """The report's time-course figure jobs (model path), keyed by outcome."""
    from metaanalysis.report.run import figure_jobs

    return {j[1]: j[2] for j in figure_jobs(results, tuple(trajs.values()))
            if j[0] == "timecourse"}


@pytest.mark.parametrize(("key", "width"), [("timecourse:pain_vas", "single"),
                                            ("timecourse:pain_vas", "double"),
                                            ("timecourse:morphine_mg_day", "double")])
def test_report_time_course_figures_fit(figure_payloads, key, width):
    """The shipped outcomes' time courses as the report draws them (the model's curve and
    k row in panel A, the absolute values in B; tests/test_plots_layout.py has the other
    data sets), measured at 89 and 183 mm; at 89 mm the change panel alone too."""
    import matplotlib

    matplotlib.use("Agg")
    d = figure_payloads[key]
    assert set(d["panels"]) == {"change", "absolute"}
    common = {"xscale": "sqrt", "study_labels": d["labels"], "width": width}
    with ma.use_style(width):
        a, _ = ma.timecourse_panels(d["panels"]["change"], d["panels"]["absolute"],
                                    title=d["title"], **common)
    mm = {"single": 89.0, "double": 183.0}[width]
    assert a.figure.get_size_inches()[0] * 25.4 == pytest.approx(mm)
    assert ma.layout_problems(a.figure, title=d["title"]) == []
    assert [t for t in a.texts if t.get_gid() == "k-label"]  # model path: k row
    if width == "single":
        with ma.use_style(width):
            ax = ma.timecourse(**d["panels"]["change"], **common)
        assert ma.layout_problems(ax.figure) == []
