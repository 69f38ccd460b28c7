"""Forest plots of Bayesian results (ma.pool_bayes): shrinkage estimates, Bayesian diamond.

The plotted numbers must be those of the BayesResult (posterior median of μ
and its equal-tailed credible interval, posterior predictive interval,
per-study shrinkage medians and intervals), mapped to the natural scale with
the inverse logit for PLO (quantiles commute with monotone transforms).
Data: the cement-leakage series shipped with the metafor reference values
(tests/data/metafor/mwa_cement_leakage.json) and the k = 2 complication
counts of issue 7 (1/91 and 2/69).
"""


import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import Polygon
from scipy import stats
from scipy.special import expit
from test_plots_baseline import check_figure

import metaanalysis as ma
from metaanalysis.errors import InputError

HN05 = stats.halfnorm(scale=0.5)  # Friede et al. (2017) half-normal(0.5) on the log-odds scale


@pytest.fixture(scope="module")
def cement(cement_data):
    d, es = cement_data
    return pd.DataFrame(d["data"]), ma.pool_bayes(es, tau_prior=HN05)


@pytest.fixture(scope="module")
def two():
    es = ma.effect_sizes("PLO", events=[1, 2], total=[91, 69])  # issue 7: complications
    return ma.pool(es, method="REML"), ma.pool_bayes(es, tau_prior=HN05)


def _gid(ax, gid, kind=None):
    arts = list({id(a): a for a in ax.get_children() + ax.texts
                 if a.get_gid() == gid}.values())
    return [a for a in arts if kind is None or isinstance(a, kind)]


def _spans(ax):
    return [" ".join(t.get_text().split()) for t in ax.texts
            if t.get_gid() == "forest-text-span"]


def _texts(ax, key):
    # drawn text with line breaks as spaces (headers and long lines wrap to the width)
    return [" ".join(t.get_text().split()) for t in ax.texts
            if t.get_gid() == f"forest-text-{key}"]


def test_bayes_diamond_and_predictive_interval_on_natural_scale(cement):
    _, b = cement
    ax = ma.forest(b)
    assert ax.get_xlabel() == "Proportion"
    (d,) = _gid(ax, "bayes-diamond", Polygon)
    xy = d.get_xy()
    assert xy[:, 0].min() == pytest.approx(expit(b.mu.ci_lb), rel=1e-10)
    assert xy[:, 0].max() == pytest.approx(expit(b.mu.ci_ub), rel=1e-10)
    assert xy[1, 0] == pytest.approx(expit(b.mu.median), rel=1e-10)
    (pi,) = _gid(ax, "prediction-interval")
    assert pi.get_xdata() == pytest.approx(expit([b.pi_lb, b.pi_ub]), rel=1e-10)
    assert not _gid(ax, "pooled-diamond")  # no frequentist diamond
    assert "Bayesian model" in _texts(ax, "label")
    # the pooled posterior sits in the posterior (CrI) column, not under "Observed [CI]"
    assert _texts(ax, "shrink")[-2].startswith(ma.formatting.num(expit(b.mu.median), 2))
    assert _texts(ax, "shrink")[0] == "○ Posterior [95% CrI]"


def test_shrinkage_markers_one_per_study_below_observed(cement):
    data, b = cement
    ax = ma.forest(b, events=data.xi, total=data.ni, percent=True)
    (mk,) = _gid(ax, "shrinkage-markers")
    pts = np.asarray(mk.get_offsets())
    assert len(pts) == b.k == 4
    assert pts[:, 0] == pytest.approx(100 * expit(b.shrinkage["median"]), rel=1e-10)
    lines = _gid(ax, "shrinkage-ci")
    assert len(lines) == b.k
    assert lines[0].get_xdata() == pytest.approx(
        100 * expit(b.shrinkage.loc[0, ["ci_lb", "ci_ub"]].astype(float)), rel=1e-10)
    # observed proportions (boxes) sit just above the shrinkage estimate of the same row
    boxes = np.asarray(_gid(ax, "study-boxes")[0].get_offsets())
    assert boxes[:, 0] == pytest.approx(100 * data.xi / data.ni, rel=1e-12)
    assert np.all(pts[:, 1] > boxes[:, 1]) and np.all(pts[:, 1] - boxes[:, 1] < 0.5)
    # open circles: white face, coloured edge
    assert mk.get_facecolors()[0][:3] == pytest.approx([1, 1, 1])
    # the column headers are the legend of the two markers
    assert "■ Observed [95% CI]" in _texts(ax, "eff")
    assert _texts(ax, "shrink")[0] == "○ Posterior [95% CrI]"
    assert len(_texts(ax, "shrink")) == 1 + b.k + 2  # header, studies, μ and predictive
    assert "42/140" in _texts(ax, "x0")  # Events/Total column from events=, total=
    # sorting moves the shrinkage estimate with its study
    order = np.argsort(b.yi, kind="stable")
    pts = np.asarray(_gid(ma.forest(b, sort="effect"), "shrinkage-markers")[0].get_offsets())
    assert pts[:, 0] == pytest.approx(expit(b.shrinkage["median"].to_numpy()[order]), rel=1e-10)


def test_prior_and_tau_posterior_printed(cement):
    _, b = cement
    spans = _spans(ma.forest(b))
    prior = next(s for s in spans if s.startswith("Bayesian model"))
    assert "τ ~ half-normal(scale=0.5)" in prior and "μ ~ flat" in prior
    assert "95% equal-tailed credible intervals (CrI)" in prior
    tau = next(s for s in spans if s.startswith("Posterior τ"))
    assert "(log odds scale)" in tau
    assert tau.endswith(f"median {ma.formatting.num(b.tau.median, 2)}, 95% CrI "
                        f"{ma.formatting.ci(b.tau.ci_lb, b.tau.ci_ub, 2)}")


def test_pool_result_with_bayes_has_two_diamonds(two):
    res, b = two
    ax = ma.forest(res, bayes=b)
    (freq,) = _gid(ax, "pooled-diamond", Polygon)
    (bay,) = _gid(ax, "bayes-diamond", Polygon)
    assert bay.get_xy()[:, 1].mean() > freq.get_xy()[:, 1].mean()  # drawn below
    assert freq.get_xy()[1, 0] == pytest.approx(expit(res.estimate), rel=1e-10)
    xy = bay.get_xy()
    assert [xy[:, 0].min(), xy[:, 0].max()] == pytest.approx(
        expit([b.mu.ci_lb, b.mu.ci_ub]), rel=1e-10)
    # k = 2: no frequentist prediction interval, but the Bayesian predictive one
    (pi,) = _gid(ax, "prediction-interval")
    assert pi.get_xdata() == pytest.approx(expit([b.pi_lb, b.pi_ub]), rel=1e-10)
    assert not _gid(ax, "shrinkage-markers")  # off by default with bayes=
    spans = _spans(ax)
    assert any(s.startswith("Heterogeneity") for s in spans)
    assert any("τ ~ half-normal(scale=0.5)" in s for s in spans)
    ax2 = ma.forest(res, bayes=b, shrinkage=True)
    assert len(_gid(ax2, "shrinkage-markers")[0].get_offsets()) == 2


def test_bad_bayes_arguments(two, cement):
    res, b = two
    _, bc = cement
    with pytest.raises(InputError, match="bayes"):
        ma.forest(res, bayes=bc)  # other studies
    with pytest.raises(InputError, match="bayes"):
        ma.forest(res, bayes=res)
    with pytest.raises(InputError, match="shrinkage"):
        ma.forest(res, shrinkage=True)
    with pytest.raises(InputError, match="common"):
        ma.forest(b, common=True)


def test_forest_bayes_baseline(two, tmp_path):
    res, b = two
    with ma.use_style():
        ax = ma.forest(res, bayes=b, shrinkage=True, percent=True)
        check_figure(ax.figure, "forest_bayes_k2", tmp_path)
