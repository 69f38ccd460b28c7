"""Structural tests of funnel plots (contours, pseudo-CI, trim and fill, Egger line).

Reference numbers: R metafor 3.8-1, tests/data/metafor/bcg_rr.json.
"""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy import stats

import metaanalysis as ma
from metaanalysis.errors import InputError

BCG = json.loads((Path(__file__).parent / "data" / "metafor" / "bcg_rr.json").read_text())


@pytest.fixture(scope="module")
def res():
    return ma.pool(BCG["yi"], BCG["vi"], method="REML", measure="RR")


def _gid(ax, gid):
    return list({id(a): a for a in ax.get_children() if a.get_gid() == gid}.values())


def test_points_inverted_axis_and_pseudo_ci(res):
    ax = ma.funnel(res)
    (pts,) = _gid(ax, "studies")
    off = np.asarray(pts.get_offsets())
    assert off[:, 0] == pytest.approx(BCG["yi"])
    assert off[:, 1] == pytest.approx(np.sqrt(BCG["vi"]))
    lo, hi = ax.get_ylim()
    assert lo > hi == 0  # standard error increases downwards
    assert ax.get_xlabel() == "Log risk ratio"
    (ci,) = _gid(ax, "pseudo-ci")
    x, y = ci.get_xdata(), ci.get_ydata()
    # left pseudo limit: estimate - z * SE, through the metafor REML estimate at SE = 0
    assert x[0] == pytest.approx(-0.71453234215814, rel=1e-6)
    assert (x[-1] - x[0]) / (y[-1] - y[0]) == pytest.approx(-stats.norm.ppf(0.975))


def test_contours_at_peters_levels(res):
    ax = ma.funnel(res)
    for level in (0.1, 0.05, 0.01):
        assert _gid(ax, f"contour-{level:g}"), level
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"p < 0.01 (around the null)", "0.01 < p < 0.05", "0.05 < p < 0.10",
            "p > 0.10"} <= set(labels)
    assert "Pseudo 95% CI (estimate ± 1.96·SE)" in labels  # every line is named
    # centred on the pooled estimate, wide enough for the pseudo-CI and every study
    lo, hi = ax.get_xlim()
    assert (lo + hi) / 2 == pytest.approx(res.estimate)
    assert lo <= min(res.yi) and hi >= max(res.yi)
    # the contours end at the visible range
    for c in _gid(ax, "contour-0.01"):
        xs = np.concatenate([p.vertices[:, 0] for p in c.get_paths()])
        assert xs.min() >= lo - 1e-9 and xs.max() <= hi + 1e-9
    assert not _gid(ma.funnel(res, contours=False), "contour-0.05")
    with pytest.raises(InputError, match="contours"):
        ma.funnel(res, contours=[1.5])


def test_trim_and_fill_studies_and_egger_line(res):
    tf = ma.trim_and_fill(ma.pool(BCG["yi"], BCG["vi"], method="DL"))
    assert tf.k0 == BCG["trimfill_dl"]["k0"]  # metafor trimfill(): k0 = 1
    eg = ma.egger_test(res)
    ax = ma.funnel(res, trimfill=tf, egger=eg)
    (filled,) = _gid(ax, "filled-studies")
    assert len(filled.get_offsets()) == 1
    (line,) = _gid(ax, "trimfill-line")
    assert line.get_xdata()[0] == pytest.approx(BCG["trimfill_dl"]["estimate"], rel=1e-6)
    (eline,) = _gid(ax, "egger-line")
    # at SE = 0 the regression line meets the limit estimate (metafor regtest: -0.5104)
    assert eline.get_xdata()[0] == pytest.approx(BCG["egger_rma"]["limit_estimate"], rel=1e-5)
    assert any("p = 0.4218" in t.get_text() for t in ax.get_legend().get_texts())
    with pytest.raises(InputError, match="trimfill"):
        ma.funnel(res, trimfill=object())


def test_classic_egger_line_from_the_test_result(res):
    ax = ma.funnel(res, egger=ma.egger_test(res, model="lm"))
    (eline,) = _gid(ax, "egger-line")
    # Egger et al. 1997: regress yi/sei on 1/sei; slope = limit effect, intercept = bias
    se = np.sqrt(BCG["vi"])
    X = np.column_stack([np.ones_like(se), 1 / se])
    (a, b), *_ = np.linalg.lstsq(X, np.asarray(BCG["yi"]) / se, rcond=None)
    assert eline.get_xdata()[0] == pytest.approx(b)
    assert eline.get_xdata()[-1] == pytest.approx(b + a * eline.get_ydata()[-1])
    with pytest.raises(InputError, match="egger"):
        ma.funnel(res, egger=True)  # the plot does not fit regressions


def test_legend_under_the_axis_label(res):
    with ma.use_style("single"):
        ax = ma.funnel(res, width="single", title="BCG")
    fig = ax.figure
    r = fig.canvas.get_renderer()
    fig.draw(r)
    assert ax.get_legend().get_window_extent(r).y1 < ax.xaxis.label.get_window_extent(r).y0
    assert ma.layout_problems(fig, title="BCG") == []


def test_only_given_axes(res):
    _fig, (a1, a2) = plt.subplots(1, 2)
    assert ma.funnel(res, ax=a2) is a2
    assert not a1.collections and not a1.lines
