"""Figures measured as a figure editor would: requested width, nothing cut, no overlaps,
no text below 6 pt, the title shown — on every plot kind, on five data sets, at 89 and
183 mm (``ma.layout_problems`` measures the drawn artists' extents).

Data sets: BCG (metafor's dat.bcg, RR), the shipped cement-leakage series (PLO), k = 2,
k = 40 with long labels, and a subgroup analysis (BCG by allocation).
"""

import json
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import metaanalysis as ma
from metaanalysis.errors import InputError

DATA = Path(__file__).parent / "data" / "metafor"
WIDTHS = {"single": 89.0, "double": 183.0}


@pytest.fixture(scope="session")
def datasets(cement_data):
    b = json.loads((DATA / "bcg_rr.json").read_text())
    data = pd.DataFrame(b["data"])
    bes = ma.effect_sizes("RR", data=data, events1="ai", total1=data.ai + data.bi,
                          events2="ci", total2=data.ci + data.di)
    _, ces = cement_data
    k2 = ma.effect_sizes("PLO", events=[1, 2], total=[91, 69])
    rng = np.random.default_rng(7)
    n = 40
    long = [f"Investigators of the multicentre trial number {i + 1} ({2000 + i % 20})"
            for i in range(n)]
    md = ma.effect_sizes("MD", mean1=rng.normal(5, 1, n), sd1=rng.uniform(1, 2, n),
                         n1=rng.integers(20, 200, n), mean2=rng.normal(4.5, 1, n),
                         sd2=rng.uniform(1, 2, n), n2=rng.integers(20, 200, n))
    return {
        "bcg": ma.pool(bes, method="REML"),
        "cement": ma.pool(ces, method="REML"),
        "k2": ma.pool(k2, method="REML", labels=["Chen 2022", "Wang 2022"]),
        "k40": ma.pool(md, method="REML", labels=long),
        "subgroups": ma.subgroups(bes, groups="alloc", method="REML"),
    }


def _check(fig, mm, title=None):
    assert fig.get_size_inches()[0] * 25.4 == pytest.approx(mm, abs=1e-6)
    return ma.layout_problems(fig, title=title)


@pytest.mark.parametrize("width", ["single", "double"])
@pytest.mark.parametrize("name", ["bcg", "cement", "k2", "k40", "subgroups"])
def test_forest_fits_any_width(datasets, name, width):
    res = datasets[name]
    title = f"Forest plot of the {name} data at {width} width, with a long title that wraps"
    kw = {"percent": True} if name in ("cement", "k2") else {}
    with ma.use_style(width), warnings.catch_warnings():
        warnings.simplefilter("ignore", ma.LayoutWarning)  # dropped columns are allowed
        ax = ma.forest(res, width=width, title=title, **kw)
    assert _check(ax.figure, WIDTHS[width], title) == []


@pytest.fixture(scope="session")
def others(datasets):
    """Everything the non-forest plots draw, fitted once per data set.

    The subgroup analysis enters these plots as one of its subgroups (BCG trials with
    random allocation, k = 7): a funnel, Baujat, radial, influence, posterior or GOSH
    plot shows one model, not a comparison of groups.  Egger's test and the influence
    diagnostics need k >= 3: the k = 2 funnel is drawn without the Egger line and the
    k = 2 influence plot is replaced by the smallest data set they are defined for
    (k = 3 proportions, the nearest meaningful one).  GOSH fits 2^k - 1 subsets: 500
    random subsets beyond k = 9 (metafor's ``subsets=``).
    """
    k3 = ma.pool(ma.effect_sizes("PLO", events=[1, 2, 5], total=[91, 69, 40]),
                 labels=["Chen 2022", "Wang 2022", "Li 2023"])
    out = {}
    for name, res in datasets.items():
        if name == "subgroups":
            res = res.groups["random"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Egger with k < 10: low power
            out[name] = {
                "res": res, "egger": ma.egger_test(res) if res.k >= 3 else None,
                "loo": ma.leave_one_out(res),
                "influence": ma.influence(res if res.k >= 3 else k3),
                "baujat": ma.baujat_coordinates(res),
                "bayes": ma.pool_bayes(res.yi, res.vi, tau_prior=stats.halfnorm(scale=0.5),
                                       labels=res.labels),
                "gosh": ma.gosh(res, subsets=500 if res.k > 9 else None, seed=1)}
    return out


_POSTERIOR = {"bcg": "mu", "cement": "tau", "k2": "predictive", "k40": "tau",
              "subgroups": "mu"}


def _draw_other(kind, o, name, width):
    res = o["res"]
    if kind == "funnel":
        return ma.funnel(res, width=width, egger=o["egger"], title="Funnel")
    if kind == "baujat":
        return ma.baujat(o["baujat"], width=width)
    if kind == "radial":
        return ma.radial(res, width=width)
    if kind == "loo":
        return ma.forest(o["loo"], overall=res, width=width, title="Funnel")
    if kind == "influence":
        return ma.influence_plot(o["influence"], width=width)[0]
    if kind == "posterior":
        return ma.posterior_plot(o["bayes"], _POSTERIOR[name], width=width)
    return ma.gosh_plot(o["gosh"], highlight=0, width=width)


# Every kind on every data set at 89 mm (7 pt: the tightest preset); at 183 mm (8 pt,
# more than twice the room) on the two extremes, k = 2 and k = 40 with long labels, where
# the wide layouts choose other panel arrangements and label caps.
_OTHER_CASES = [(kind, name, width)
                for kind in ("funnel", "baujat", "radial", "loo", "influence", "posterior", "gosh")
                for name in ("bcg", "cement", "k2", "k40", "subgroups")
                for width in ("single", "double")
                if width == "single" or name in ("k2", "k40")]


@pytest.mark.parametrize("kind, name, width", _OTHER_CASES)
def test_other_plots_fit(others, kind, name, width):
    with ma.use_style(width), warnings.catch_warnings():
        warnings.simplefilter("ignore", ma.LayoutWarning)
        fig = _draw_other(kind, others[name], name, width).figure
    title = "Funnel" if kind in ("funnel", "loo") else None
    assert _check(fig, WIDTHS[width], title) == []


_TC = pd.DataFrame({"days": [1.2, 7.0, 29.0, 90.0, 180.0], "estimate": [4.1, 4.4, 4.8, 4.7, 5.0],
                    "ci_lb": [1.4, 1.8, 3.4, 2.9, 3.4], "ci_ub": [6.9, 7.0, 6.2, 6.5, 6.6],
                    "k": [3, 3, 3, 2, 2],
                    "studies": [("a", "b", "c"), ("a", "b", "c"), ("a", "b", "d"), ("a", "d"),
                                ("a", "d")]})
_TC_STUDIES = pd.DataFrame({"study": ["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"] * 3,
                            "days": [1, 7, 30, 90, 180, 1, 7, 30, 1, 7, 30, 90, 180],
                            "yi": [3.5, 4.9, 5.3, 5.6, 5.7, 3.6, 4.9, 4.6, 6.1, 5.8, 4.6, 4.9,
                                   5.0]})


def test_influence_plot_draws_only_in_the_given_axes(others):
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(183 / 25.4, 3))
    axes = ma.influence_plot(others["bcg"]["influence"], ax=a2)
    assert len(axes) == 8 and not a1.lines and not a1.collections
    box = a2.get_position()
    for ax in axes:
        p = ax.get_position()
        assert box.x0 - 1e-9 <= p.x0 and p.x1 <= box.x1 + 1e-9


def test_timecourse_marks_study_set_changes_and_never_hides_points():
    ax = ma.timecourse(_TC, _TC_STUDIES, study_labels=True)
    ks = [t for t in ax.texts if t.get_gid() == "k-label"]
    assert [t.get_text() for t in ks] == ["3", "3", "3*", "2*", "2"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "k*: other studies than at the previous time" in legend
    pooled = next(ln for ln in ax.lines if ln.get_gid() == "pooled-line")
    assert all(ln.get_zorder() > pooled.get_zorder() for ln in ax.lines
               if ln.get_gid() == "study-line")
    # study "b" ends at 1 month: a dotted leader joins its label to its last point
    assert any(t.get_gid() == "study-leader" for t in ax.texts)


def test_user_named_columns_and_exact_intervals():
    df = pd.DataFrame({"trial": ["A 2001", "B 2005"], "ev_trt": [4, 6], "n_trt": [123, 306],
                       "ev_ctl": [11, 29], "n_ctl": [139, 303]})
    es = ma.effect_sizes("RR", data=df, events1="ev_trt", total1="n_trt", events2="ev_ctl",
                         total2="n_ctl")
    table = ma.forest_spec(ma.pool(es, labels=df.trial)).table()
    assert table["Events/Total (1)"].tolist()[:2] == ["4/123", "6/306"]
    assert table["Events/Total (2)"].tolist()[:2] == ["11/139", "29/303"]
    # single proportions under user names keep exact (Clopper-Pearson) study intervals
    dp = pd.DataFrame({"ev": [42, 10], "n": [140, 33]})
    pes = ma.effect_sizes("PLO", data=dp, events="ev", total="n")
    ax = ma.forest(ma.pool(pes))
    line = next(a for a in ax.lines if a.get_gid() == "study-ci")
    lb, ub = stats.beta.ppf(0.025, 42, 99), stats.beta.ppf(0.975, 43, 98)
    assert line.get_xdata() == pytest.approx([lb, ub], rel=1e-8)
    assert ma.forest_spec(ma.pool(pes)).table()["Events/Total"].tolist()[:2] == ["42/140",
                                                                                  "10/33"]


def _spans(ax):
    return [" ".join(t.get_text().split()) for t in ax.texts if t.get_gid() == "forest-text-span"]


def test_no_overall_test_for_single_proportions(datasets):
    spans = _spans(ma.forest(datasets["cement"]))
    assert any(s.startswith("Heterogeneity") for s in spans)
    assert not any("Test for overall effect" in s for s in spans)
    assert any(s.startswith("Test for overall effect: z") for s in _spans(
        ma.forest(datasets["bcg"])))


def test_title_favours_and_axis_label(datasets):
    res = datasets["bcg"]
    with ma.use_style("double"):
        ax = ma.forest(res, width="double", title="Tuberculosis", xlabel="Risk ratio (log scale)",
                       favours=("Favours vaccine", "Favours control"))
    fig = ax.figure
    assert ax.get_title() == "Tuberculosis"
    left = next(t for t in ax.texts if t.get_gid() == "favours-left")
    right = next(t for t in ax.texts if t.get_gid() == "favours-right")
    assert left.get_text() == "← Favours vaccine" and right.get_text() == "Favours control →"
    r = fig.canvas.get_renderer()
    fig.draw(r)
    # left of and right of the reference line (RR = 1), under the tick labels
    x1 = ax.transData.transform([(1.0, 0)])[0, 0]
    assert left.get_window_extent(r).x1 <= x1 <= right.get_window_extent(r).x0
    ticks_bottom = min(t.get_window_extent(r).y0 for t in ax.get_xticklabels() if t.get_text())
    assert left.get_window_extent(r).y1 <= ticks_bottom
    assert ax.xaxis.label.get_window_extent(r).y1 <= left.get_window_extent(r).y0
    assert ma.layout_problems(fig, title="Tuberculosis") == []
    with pytest.raises(InputError, match="favours"):
        ma.forest(res, favours="Favours vaccine")


def test_narrow_ci_drawn_over_its_box():
    # a precise study (CI narrower than its box) and an imprecise one
    res = ma.pool([1.06, 3.5, 4.0], [0.0138, 0.3, 0.4], labels=["Chen", "Wu", "Li"])
    ax = ma.forest(res, width="single")
    inside = [a for a in ax.lines if a.get_gid() == "study-ci-inside"]
    assert len(inside) == 1
    assert inside[0].get_xdata() == pytest.approx([1.06 - 1.959964 * 0.0138 ** 0.5,
                                                   1.06 + 1.959964 * 0.0138 ** 0.5], rel=1e-5)
    assert inside[0].get_zorder() > next(c for c in ax.collections
                                         if c.get_gid() == "study-boxes").get_zorder()


def test_columns_dropped_in_order_with_a_warning():
    es = ma.effect_sizes("MD", mean1=[5.1, 4.8, 6.0], sd1=[1.2, 1.1, 1.5], n1=[40, 52, 61],
                         mean2=[4.0, 4.1, 4.2], sd2=[1.3, 1.0, 1.4], n2=[38, 50, 60])
    res = ma.pool(es, labels=["Alpha 2001", "Beta 2005", "Gamma 2010"])
    with ma.use_style("single"), pytest.warns(ma.LayoutWarning, match="weight"):
        ax = ma.forest(res, width="single")
    headers = [t.get_text() for t in ax.texts if t.get_position()[1] == 0.0]
    assert not any("Weight" in h for h in headers)
    assert _check(ax.figure, 89.0) == []
    with ma.use_style("double"), warnings.catch_warnings():
        warnings.simplefilter("error", ma.LayoutWarning)  # everything fits at 183 mm
        ax = ma.forest(res, width="double")
    assert any("Weight" in t.get_text() for t in ax.texts)
    with pytest.raises(InputError, match="too narrow"):
        ma.forest(res, width=15)


def test_risk_of_bias_column(datasets):
    res = datasets["k2"]
    ax = ma.forest(res, rob={"Chen 2022": "low", "Wang 2022": "Some concerns"})
    assert [c.get_gid() for c in ax.collections if str(c.get_gid()).startswith("rob-")] == [
        "rob-low", "rob-some"]
    assert any(s.startswith("Risk of bias: + low, − some concerns") for s in _spans(ax))
    dom = pd.DataFrame({"Randomisation": ["low", "high"], "Missing data": ["unclear", "low"],
                        "Overall": ["low", "high"]}, index=["Chen 2022", "Wang 2022"])
    table = ma.forest_spec(res, rob=dom).table()
    assert {"D1", "D2", "Overall"} <= set(table.columns)
    legend = " ".join(_spans(ma.forest(res, rob=dom)))
    assert "D1: Randomisation; D2: Missing data" in legend
    with pytest.raises(InputError, match="rob"):
        ma.forest(res, rob={"Chen 2022": "good"})


def test_shared_xlim_for_a_family_and_ax_given(datasets):
    from metaanalysis.plots.forest import shared_xlim

    a = ma.forest_spec(datasets["bcg"])
    b = ma.forest_spec(datasets["subgroups"])
    lim = shared_xlim([a, b])
    ax = ma.forest(datasets["bcg"], xlim=lim)
    assert ax.get_xlim() == pytest.approx(lim)
    # with ax= the whole forest stays inside that Axes' area
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(183 / 25.4, 4))
    box = a2.get_position()
    ma.forest(datasets["k2"], ax=a2, percent=True, fontsize=7)
    r = fig.canvas.get_renderer()
    fig.draw(r)
    fw = fig.bbox.width
    xs = [t.get_window_extent(r) for t in a2.texts]
    assert min(b.x0 for b in xs) >= box.x0 * fw - 1
    assert max(b.x1 for b in xs) <= box.x1 * fw + 1
    assert not a1.texts and not a1.lines


def test_bayes_forest_fits_and_says_cri():
    es = ma.effect_sizes("PLO", events=[1, 2], total=[91, 69])
    b = ma.pool_bayes(es, tau_prior=stats.halfnorm(scale=0.5))
    with ma.use_style("single"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ma.LayoutWarning)
        ax = ma.forest(b, width="single", percent=True, title="Bayesian")
    heads = [" ".join(t.get_text().split()) for t in ax.texts if t.get_position()[1] == 0.0]
    assert "○ Posterior [95% CrI]" in heads
    assert not any("Weight" in h for h in heads)
    assert _check(ax.figure, 89.0, "Bayesian") == []


def test_timecourse_counts_mark_changes_without_pooled_rows():
    traj = pd.DataFrame({"time": [1.0, 7.0, 30.0], "estimate": [4.0, 4.5, 5.0],
                         "ci_lb": [3.0, 3.6, 4.1], "ci_ub": [5.0, 5.4, 5.9]})
    counts = pd.DataFrame({"days": [1.0, 7.0, 30.0], "k": [3, 3, 2],
                           "studies": [("a", "b", "c"), ("a", "b", "d"), ("a", "d")]})
    ax = ma.timecourse(trajectory=traj, counts=counts)
    assert [t.get_text() for t in ax.texts if t.get_gid() == "k-label"] == ["3", "3*", "2*"]
    with pytest.raises(InputError, match="counts: missing column"):
        ma.timecourse(trajectory=traj, counts=counts.drop(columns="k"))


_ABS = pd.DataFrame({"days": [0.0, 1.2, 7.0, 29.0, 90.0, 180.0],
                     "estimate": [7.4, 3.3, 3.0, 2.6, 2.7, 2.4],
                     "ci_lb": [6.9, 2.1, 1.9, 1.8, 1.6, 1.5],
                     "ci_ub": [7.9, 4.5, 4.1, 3.4, 3.8, 3.3], "k": [4, 3, 3, 3, 2, 2],
                     "studies": [("a", "b", "c", "d"), ("a", "b", "c"), ("a", "b", "c"),
                                 ("a", "b", "d"), ("a", "d"), ("a", "d")]})
_ABS_STUDIES = pd.DataFrame({"study": ["a"] * 6 + ["b"] * 4 + ["c"] * 3 + ["d"] * 4,
                             "days": [0, 1, 7, 30, 90, 180, 0, 1, 7, 30, 0, 1, 7,
                                      0, 30, 90, 180],
                             "yi": [7.1, 3.6, 2.2, 1.8, 1.5, 1.4, 7.5, 3.9, 2.6, 2.9, 7.9, 1.8,
                                    2.1, 7.0, 2.4, 2.1, 2.0]})
_NAMES = {"a": "Wu 2021", "b": "Zhang 2024", "c": "JVIR 2014", "d": "Wang 2022"}


def _k40_timecourse():
    rng = np.random.default_rng(3)
    days = np.repeat([[7.0, 30.0, 180.0]], 40, axis=0).ravel()
    rows = pd.DataFrame({"study": np.repeat([f"s{i}" for i in range(40)], 3), "days": days,
                         "yi": rng.normal(4.5, 1.0, 120)})
    pooled = pd.DataFrame({"days": [7.0, 30.0, 180.0], "estimate": [4.4, 4.6, 4.5],
                           "ci_lb": [4.1, 4.3, 4.2], "ci_ub": [4.7, 4.9, 4.8], "k": [40] * 3})
    names = {f"s{i}": f"Investigators of the multicentre trial number {i + 1} ({2000 + i % 20})"
             for i in range(40)}
    return {"df": pooled, "studies": rows, "study_labels": names}


@pytest.fixture(scope="session")
def timecourses():
    """Time courses on five data sets.  A time course has no BCG or subgroup analog: its
    five are made-up windows with a changing study set (the BCG-like small example),
    k = 2 (two studies at two times), 40 studies with long labels, a model trajectory
    with its k table (the report's model path) and the shipped pain and morphine series
    as the report draws them (tests/test_trajectory.py, which builds the shipped
    analyses once with the other files that read them)."""
    k2 = {"df": pd.DataFrame({"days": [7.0, 90.0], "estimate": [3.1, 4.0],
                              "ci_lb": [2.2, 3.0], "ci_ub": [4.0, 5.0], "k": [2, 2]}),
          "studies": pd.DataFrame({"study": ["Chen 2022", "Chen 2022", "Wang 2022",
                                             "Wang 2022"], "days": [7, 90, 7, 90],
                                   "yi": [2.9, 3.8, 3.3, 4.2]}), "study_labels": True}
    traj = pd.DataFrame({"time": [1.0, 7.0, 30.0, 90.0, 180.0],
                         "estimate": [4.0, 4.5, 4.9, 4.9, 5.1], "ci_lb": [3.0, 3.6, 4.1, 4.0, 4.1],
                         "ci_ub": [5.0, 5.4, 5.7, 5.8, 6.1], "pi_lb": [1.5, 2.0, 2.5, 2.4, 2.5],
                         "pi_ub": [6.5, 7.0, 7.3, 7.4, 7.7]})
    traj.attrs["label"] = "Model (CAR, all time points)"
    model = {"df": None, "trajectory": traj, "studies": _TC_STUDIES, "study_labels": _NAMES,
             "counts": _TC[["days", "k", "studies"]], "xscale": "sqrt"}
    toy = {"df": _TC, "studies": _TC_STUDIES, "xscale": "sqrt", "interval": "CrI",
           "xticks": {1: "1 d", 7: "1 wk", 30: "1 mo", 90: "3 mo", 180: "6 mo"},
           "study_labels": _NAMES, "ylabel": "Pain reduction, VAS 0–10 (baseline − follow-up)"}
    return {"toy": toy, "k2": k2, "k40": _k40_timecourse(), "model": model}


@pytest.mark.parametrize("width", ["single", "double"])
@pytest.mark.parametrize("name", ["toy", "k2", "k40", "model"])
def test_timecourse_fits(timecourses, name, width):
    with ma.use_style(width), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ma.LayoutWarning)
        ax = ma.timecourse(**timecourses[name], width=width)
        ax.set_title(f"Time course ({name})")
    assert _check(ax.figure, WIDTHS[width], f"Time course ({name})") == []
    labels = [t for t in ax.texts if t.get_gid() == "study-label"]
    if name == "k40" and width == "single":  # 40 labels do not fit 50 mm: left out, warned
        assert not labels
        assert any("labels left out" in str(w.message) for w in caught)
    else:
        assert labels and not caught
        assert all(len(t.get_text()) <= 40 for t in labels)  # long names end in "…"
    # no study point outside the axes (lines are drawn with a sideways offset transform)
    lo, hi = ax.get_ylim()
    for ln in (ln for ln in ax.lines if ln.get_gid() == "study-line"):
        assert lo <= np.nanmin(ln.get_ydata()) and np.nanmax(ln.get_ydata()) <= hi



@pytest.mark.parametrize("width", ["single", "double"])
def test_timecourse_panels_change_beside_absolute(width):
    title = "Pain: change from baseline (A) and absolute values (B), patients"
    with ma.use_style(width):
        a, b = ma.timecourse_panels(
            {"df": _TC, "studies": _TC_STUDIES,
             "ylabel": "Pain reduction, VAS 0–10 (baseline − follow-up)"},
            {"df": _ABS, "studies": _ABS_STUDIES, "ylabel": "Pain, VAS 0–10",
             "xticks": {0: "pre", 1: "1 d", 7: "1 wk", 30: "1 mo", 90: "3 mo", 180: "6 mo"}},
            xscale="sqrt", study_labels=_NAMES, width=width, title=title,
            xticks={1: "1 d", 7: "1 wk", 30: "1 mo", 90: "3 mo", 180: "6 mo"})
    fig = a.figure
    assert _check(fig, WIDTHS[width], title) == []
    pa, pb = a.get_position(), b.get_position()
    if width == "double":  # side by side
        assert pa.x1 < pb.x0 and pa.y0 == pytest.approx(pb.y0)
    else:  # 89 mm cannot hold two readable panels: stacked, change above
        assert pa.y0 > pb.y1 and pa.x0 == pytest.approx(pb.x0, abs=0.05)
    assert a.get_xlim() == pytest.approx(b.get_xlim())  # one time axis
    assert (a.get_title(loc="left"), b.get_title(loc="left")) == ("A", "B")
    assert "VAS 0–10" in " ".join(a.get_ylabel().split()) and b.get_ylabel() == "Pain, VAS 0–10"
    # one legend for both panels, each entry once
    assert a.get_legend() is None and b.get_legend() is None and len(fig.legends) == 1
    entries = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(entries) == len(set(entries)) and "Pooled" in entries
    assert "k*: other studies than at the previous time" in entries
    # a study has one colour in both panels

    def colours(ax):
        return {t.get_text(): t.get_color() for t in ax.texts if t.get_gid() == "study-label"}

    ca, cb = colours(a), colours(b)
    assert set(ca) == set(cb) == set(_NAMES.values())
    assert ca == cb and len(set(ca.values())) == 4


def test_timecourse_panels_bad_arguments():
    with pytest.raises(InputError, match="change: got DataFrame"):
        ma.timecourse_panels(_TC, {"df": _ABS})
    with pytest.raises(InputError, match="cannot be set per panel"):
        ma.timecourse_panels({"df": _TC, "ax": None}, {"df": _ABS})
    with pytest.raises(InputError, match="arrange"):
        ma.timecourse_panels({"df": _TC}, {"df": _ABS}, arrange="grid")
    with pytest.raises(InputError, match="xscale"):
        ma.timecourse_panels({"df": _TC}, {"df": _ABS}, xscale="log")


def test_inch_canvas_patches_leave_the_data_limits_and_the_drawing_alone(monkeypatch, tmp_path):
    """Risk-of-bias and PRISMA patches are added without growing the data limits (the
    canvas limits are fixed in inches; matplotlib's add_patch would find every curve's
    extremes): the same artists, the same pixels and SVG as with ``ax.add_patch``."""
    from metaanalysis.plots import rob

    t = pd.DataFrame({"Study": ["Alpha 2019", "Beta 2021", "Gamma 2022"],
                      "randomisation": ["Low", "High", "Some concerns"],
                      "deviations": ["Low", "Low", "High"],
                      "missing_data": ["Some concerns", "Low", "Low"],
                      "measurement": ["Low", "Low", "Low"], "reporting": ["Low", "High", "Low"]})

    def draw():
        with ma.use_style("single"):
            ax = ma.rob_traffic_light(t, "rob2", width="single")
        files = ma.save_figure(ax.figure, tmp_path / str(len(list(tmp_path.iterdir()))),
                               ("png", "svg"), dpi=72)
        return ax, [f.read_bytes() for f in files]

    import matplotlib.pyplot as plt

    ax, fast = draw()
    circles = [p for p in ax.patches if type(p).__name__ == "Circle"]
    assert len(circles) >= 3 * 6  # every study x (5 domains + overall), then the key
    assert tuple(ax.get_xlim()) == (0.0, pytest.approx(89 / 25.4))
    plt.close(ax.figure)
    monkeypatch.setattr(rob, "add_patch", lambda ax, p: ax.add_patch(p))
    ax2, slow = draw()
    assert len(ax2.patches) == len(ax.patches)
    assert fast == slow
    plt.close(ax2.figure)


def test_narrower_panel_before_a_data_column_goes():
    # the shipped report's leakage risk ratio (liu2023, bmcneurol2020; Bayesian, k = 2):
    # counts of both arms, observed and posterior estimates and risk of bias at 183 mm,
    # 7 pt. With a panel of 25% of the width it was 1.3 mm short and the counts were left
    # out; the panel now narrows to 20% (>= 0.9 in) before any column is dropped.
    from scipy import stats

    es = ma.effect_sizes("RR", events1=[3, 2], total1=[47, 28], events2=[16, 12],
                         total2=[78, 30])
    labels = ["BMC Neurol 2020 [lesions]", "Liu 2023 §‖ [patients]"]
    b = ma.pool_bayes(es, tau_prior=stats.halfnorm(scale=0.5), labels=labels)
    with ma.use_style("single"), warnings.catch_warnings():
        warnings.simplefilter("error", ma.LayoutWarning)
        ax = ma.forest(b, width="double", rob=dict(zip(labels, ["high", "high"])))
    texts = {t.get_text() for t in ax.texts}
    assert {"3/47", "16/78", "2/28", "12/30"} <= texts
    fig_w = ax.figure.get_size_inches()[0]
    assert fig_w * 25.4 == pytest.approx(183.0)
    panel = ax.get_position().width * fig_w
    assert 0.2 * (fig_w - 2 * 0.03) - 1e-6 <= panel < 0.25 * fig_w
    assert _check(ax.figure, 183.0) == []
    assert any(s.startswith("Risk of bias: + low") for s in _spans(ax))
    # at 89 mm the risk-of-bias column goes (with a warning), and its legend with it
    with ma.use_style("single"), pytest.warns(ma.LayoutWarning, match="risk of bias"):
        ax = ma.forest(b, width="single", rob=dict(zip(labels, ["high", "high"])))
    assert not [c for c in ax.collections if str(c.get_gid()).startswith("rob-")]
    assert not any("Risk of bias" in s for s in _spans(ax))
    matplotlib.pyplot.close("all")
