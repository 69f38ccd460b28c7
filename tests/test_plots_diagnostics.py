"""Baujat, radial, GOSH, influence panel and time-course plots.

Baujat and radial coordinates are checked against R metafor 3.8-1
(tests/data/plots_baujat_bcg.R -> plots_baujat_bcg.json).
"""

import itertools
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import metaanalysis as ma
from metaanalysis.errors import InputError

REF = json.loads((Path(__file__).parent / "data" / "plots_baujat_bcg.json").read_text())


@pytest.fixture(scope="module")
def res():
    return ma.pool(REF["yi"], REF["vi"], method="REML")


def _gid(ax, gid):
    return list({id(a): a for a in ax.get_children() if a.get_gid() == gid}.values())


def test_baujat_matches_metafor(res):
    xy = ma.baujat_coordinates(res)
    # metafor baujat(rma(method="REML")) with tightened tolerances
    assert xy["x"].to_numpy() == pytest.approx(REF["baujat_x"], rel=1e-6)
    assert xy["y"].to_numpy() == pytest.approx(REF["baujat_y"], rel=1e-6)
    ax = ma.baujat(xy)
    (pts,) = _gid(ax, "baujat-points")
    assert np.asarray(pts.get_offsets())[:, 1] == pytest.approx(REF["baujat_y"], rel=1e-6)
    # each label is its study's number, next to that study's point; none overlap
    fig = ax.figure
    r = fig.canvas.get_renderer()
    fig.draw_without_rendering()
    pts_px = ax.transData.transform(np.asarray(pts.get_offsets()))
    for t in ax.texts:
        i = int(t.get_text()) - 1
        bb = t.get_window_extent(r)
        assert abs(bb.x0 - pts_px[i, 0]) < 40 and abs(bb.y0 - pts_px[i, 1]) < 40
    assert len(ax.texts) >= res.k - 2 and ma.layout_problems(fig) == []


def test_radial_matches_metafor(res):
    ax = ma.radial(res)
    (pts,) = _gid(ax, "radial-points")
    off = np.asarray(pts.get_offsets())
    assert off[:, 0] == pytest.approx(REF["radial_x"], rel=1e-6)
    assert off[:, 1] == pytest.approx(REF["radial_y"], rel=1e-6)
    (line,) = _gid(ax, "radial-line")
    slope = np.diff(line.get_ydata())[0] / np.diff(line.get_xdata())[0]
    assert slope == pytest.approx(res.estimate)


def test_gosh_plot_points_and_highlight():
    r = ma.pool([0.1, 0.3, 0.35, 0.9, 0.2], [0.01, 0.02, 0.015, 0.02, 0.03], method="DL")
    g = ma.gosh(r)
    ax = ma.gosh_plot(g, highlight=3)
    (with_, ) = _gid(ax, "gosh-highlight")
    (without, ) = _gid(ax, "gosh-points")
    # 2^5 - 1 = 31 subsets, 16 of which contain study 4
    assert len(with_.get_offsets()) == 16 and len(without.get_offsets()) == 15
    with pytest.raises(InputError, match="highlight"):
        ma.gosh_plot(g, highlight="nobody")
    with pytest.raises(InputError, match="gosh"):
        ma.gosh_plot(pd.DataFrame({"a": [1]}))


def test_influence_panel(res):
    inf = ma.influence(res)
    fig = plt.figure()
    axes = ma.influence_plot(inf, fig=fig)
    assert len(axes) == 8 and all(a.figure is fig for a in axes)
    assert axes[0].get_title(loc="left") == "Studentised residual"
    flagged = _gid(axes[2], "influence-cooks-flagged")
    n_flag = int(inf["inf"].sum())
    assert (len(flagged[0].get_offsets()) if flagged else 0) == n_flag
    (cooks,) = _gid(axes[2], "influence-cooks")
    assert len(cooks.get_offsets()) == res.k - n_flag


def test_timecourse_band_and_studies():
    pooled = pd.DataFrame({"days": [0, 30, 180], "estimate": [7.1, 2.9, 2.1],
                           "ci_lb": [6.6, 2.2, 1.6], "ci_ub": [7.6, 3.6, 2.6], "k": [3, 3, 2]})
    studies = pd.DataFrame({"study": ["a", "a", "a", "b", "b", "c", "c", "c"],
                            "days": [0, 30, 180, 0, 30, 0, 30, 180],
                            "yi": [7, 3, 2, 7.5, 2.5, 6.8, 3.2, 2.2]})
    ax = ma.timecourse(pd.concat([pooled, studies]), ylabel="Pain (VAS)")
    assert len(_gid(ax, "study-line")) == 3
    (line,) = _gid(ax, "pooled-line")
    assert list(line.get_xdata()) == [0, 30, 180]
    assert list(line.get_ydata()) == [7.1, 2.9, 2.1]
    assert _gid(ax, "ci-band")
    # k in one row under the tick labels (number-at-risk style), headed "k"
    assert [t.get_text() for t in ax.texts] == ["3", "3", "2", "k"]
    ax_above = ma.timecourse(pooled, k_position="above")
    assert [t.get_text() for t in ax_above.texts] == ["k = 3", "k = 3", "k = 2"]
    ax2 = ma.timecourse(pooled.assign(estimate=[0.0, -1.0, -2.0], ci_lb=[-0.5, -1.5, -2.5],
                                      ci_ub=[0.5, -0.5, -1.5]), measure="PLO", percent=True)
    assert list(_gid(ax2, "pooled-line")[0].get_ydata()) == pytest.approx(
        [50.0, 26.894142, 11.920292])
    with pytest.raises(InputError, match="missing column"):
        ma.timecourse(pooled.drop(columns="days"))


def test_timecourse_k_row_and_study_labels_never_overlap():
    # days 1 and 7 (the two early windows that used to collide), sqrt axis, named ticks
    pooled = pd.DataFrame({"days": [1.2, 7.0, 29.0, 90.0, 180.0],
                           "estimate": [4.1, 4.4, 4.8, 4.7, 5.0], "ci_lb": [1.4, 1.8, 3.4, 2.9, 3.4],
                           "ci_ub": [6.9, 7.0, 6.2, 6.5, 6.6], "k": [5, 4, 5, 4, 5]})
    studies = pd.DataFrame({"study": ["a", "a", "b", "b", "c", "c"],
                            "days": [1, 180, 1, 180, 7, 180], "yi": [5.0, 5.0, 5.05, 5.1, 3, 5.02]})
    ticks = {1: "1 d", 7: "1 wk", 30: "1 mo", 90: "3 mo", 180: "6 mo"}
    ax = ma.timecourse(pooled, studies, xscale="sqrt", xticks=ticks,
                       study_labels={"a": "Chen 2022", "b": "Khan 2018", "c": "Wu 2021"})
    fig = ax.figure
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    ks = [t for t in ax.texts if t.get_gid() == "k-label"]
    assert [t.get_text() for t in ks] == ["5", "4", "5", "4", "5"]
    boxes = [t.get_window_extent(r) for t in ks]
    assert all(not b1.overlaps(b2) for b1, b2 in itertools.pairwise(boxes))
    # the k row sits under the tick labels, above the x label
    tick_bottom = min(t.get_window_extent(r).y0 for t in ax.get_xticklabels() if t.get_text())
    assert max(b.y1 for b in boxes) < tick_bottom
    assert ax.xaxis.label.get_window_extent(r).y1 < min(b.y0 for b in boxes)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(ticks.values())
    # sqrt axis: day 7 is sqrt(7) / sqrt(180) of the way, not 7/180
    x0, x1 = ax.transData.transform([(1, 0), (7, 0)])[:, 0]
    assert x1 - x0 > 20  # pixels apart at 100 dpi
    labels = [t for t in ax.texts if t.get_gid() == "study-label"]
    assert sorted(t.get_text() for t in labels) == ["Chen 2022", "Khan 2018", "Wu 2021"]
    lb = [t.get_window_extent(r) for t in labels]
    assert all(not a.overlaps(b) for i, a in enumerate(lb) for b in lb[i + 1:])
    # each label has its line's colour
    lines = {tuple(map(float, ln.get_ydata()))[-1]: ln.get_color() for ln in _gid(ax, "study-line")}
    assert {t.get_color() for t in labels} == set(lines.values())
    with pytest.raises(InputError, match="k_position"):
        ma.timecourse(pooled, k_position="top")
    with pytest.raises(InputError, match="xscale"):
        ma.timecourse(pooled, xscale="log2")
    import matplotlib.pyplot as plt
    plt.close("all")


def test_timecourse_trajectory_line_and_bands():
    # a model's fitted course (e.g. from a multivariate fit), alone or over the pooled points
    traj = pd.DataFrame({"time": [0, 7, 30, 90, 180], "estimate": [7.0, 4.0, 3.0, 2.5, 2.2],
                         "ci_lb": [6.5, 3.4, 2.5, 2.0, 1.6], "ci_ub": [7.5, 4.6, 3.5, 3.0, 2.8],
                         "pi_lb": [5.5, 2.4, 1.5, 1.0, 0.6], "pi_ub": [8.5, 5.6, 4.5, 4.0, 3.8]})
    ax = ma.timecourse(trajectory=traj, interval="CrI")
    (line,) = _gid(ax, "trajectory-line")
    assert list(line.get_ydata()) == [7.0, 4.0, 3.0, 2.5, 2.2]
    assert _gid(ax, "trajectory-ci") and _gid(ax, "trajectory-pi")
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "Model: 95% CrI" in legend and "Model: 95% prediction interval" in legend
    pooled = pd.DataFrame({"days": [0, 30, 180], "estimate": [7.1, 2.9, 2.1],
                           "ci_lb": [6.6, 2.2, 1.6], "ci_ub": [7.6, 3.6, 2.6], "k": [3, 3, 2]})
    ax2 = ma.timecourse(pooled, trajectory=traj.drop(columns=["pi_lb", "pi_ub"]),
                        xscale="sqrt")
    assert _gid(ax2, "pooled-line") and _gid(ax2, "trajectory-line")
    assert not _gid(ax2, "trajectory-pi")
    with pytest.raises(InputError, match="trajectory"):
        ma.timecourse(trajectory=traj.drop(columns="ci_ub"))
    with pytest.raises(InputError, match="interval"):
        ma.timecourse(pooled, interval="HDI")


def test_timecourse_bands_are_cut_at_the_scale_ends_and_marked():
    # absolute pain on a 0-10 VAS whose pooled CI at 1 day and 1 week runs below 0 (the
    # shipped report's panel B): the band stops at 0 and a triangle on 0 says it goes on
    pooled = pd.DataFrame({"days": [0, 1, 7, 30], "estimate": [6.8, 2.8, 2.5, 2.0],
                           "ci_lb": [5.9, -0.1, -0.8, 1.5], "ci_ub": [7.7, 5.7, 5.9, 10.4],
                           "k": [5, 4, 3, 5]})
    ax = ma.timecourse(pooled, bounds=(0, 10), ylabel="Pain (VAS 0-10)")
    (band,) = _gid(ax, "ci-band")
    ys = band.get_paths()[0].vertices[:, 1]
    assert ys.min() == 0.0 and ys.max() == 10.0
    cuts = _gid(ax, "band-cut")
    assert len(cuts) == 2  # one below (▼ at 1 d and 1 wk), one above (▲ at 1 month)
    down = next(c for c in cuts if c.get_marker() == "v")
    assert list(down.get_xdata()) == [1.0, 7.0] and list(down.get_ydata()) == [0.0, 0.0]
    up = next(c for c in cuts if c.get_marker() == "^")
    assert list(up.get_xdata()) == [30.0] and list(up.get_ydata()) == [10.0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend.count("95% CI cut at the scale's end") == 1
    # nothing cut, nothing marked; a trajectory's bands are cut too
    ax2 = ma.timecourse(pooled.assign(ci_lb=[5.9, 0.5, 0.4, 1.5], ci_ub=[7.7, 5.7, 5.9, 2.5]),
                        bounds=(0, 10))
    assert not _gid(ax2, "band-cut")
    traj = pd.DataFrame({"time": [0, 30, 180], "estimate": [6.0, 1.0, 0.8],
                         "ci_lb": [5.0, -0.5, -0.9], "ci_ub": [7.0, 2.5, 2.5],
                         "pi_lb": [3.0, -2.0, -2.5], "pi_ub": [9.0, 4.0, 4.1]})
    ax3 = ma.timecourse(trajectory=traj, bounds=(0, None))
    for gid in ("trajectory-ci", "trajectory-pi"):
        assert _gid(ax3, gid)[0].get_paths()[0].vertices[:, 1].min() == 0.0
    for bad in ((10, 0), (0,), ("a", 1), (0, float("inf"))):
        with pytest.raises(InputError, match="bounds"):
            ma.timecourse(pooled, bounds=bad)
    plt.close("all")
