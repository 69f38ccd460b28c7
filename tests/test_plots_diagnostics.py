"""Baujat, radial, GOSH, influence panel and time-course plots.

Baujat and radial coordinates are checked against R metafor 3.8-1
(tests/data/plots_baujat_bcg.R -> plots_baujat_bcg.json).
"""

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
from metaanalysis.plots.diagnostics import baujat_coordinates

REF = json.loads((Path(__file__).parent / "data" / "plots_baujat_bcg.json").read_text())


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def res():
    return ma.pool(REF["yi"], REF["vi"], method="REML")


def _gid(ax, gid):
    return list({id(a): a for a in ax.get_children() if a.get_gid() == gid}.values())


def test_baujat_matches_metafor(res):
    xy = baujat_coordinates(res)
    # metafor baujat(rma(method="REML")) with tightened tolerances
    assert xy["x"].to_numpy() == pytest.approx(REF["baujat_x"], rel=1e-6)
    assert xy["y"].to_numpy() == pytest.approx(REF["baujat_y"], rel=1e-6)
    ax = ma.baujat(res)
    (pts,) = _gid(ax, "baujat-points")
    assert np.asarray(pts.get_offsets())[:, 1] == pytest.approx(REF["baujat_y"], rel=1e-6)
    assert [t.get_text() for t in ax.texts][:3] == ["1", "2", "3"]


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
    axes = ma.influence_plot(res, fig=fig)
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
    assert [t.get_text() for t in ax.texts] == ["k = 3", "k = 3", "k = 2"]
    ax2 = ma.timecourse(pooled.assign(estimate=[0.0, -1.0, -2.0], ci_lb=[-0.5, -1.5, -2.5],
                                      ci_ub=[0.5, -0.5, -1.5]), measure="PLO", percent=True)
    assert list(_gid(ax2, "pooled-line")[0].get_ydata()) == pytest.approx(
        [50.0, 26.894142, 11.920292])
    with pytest.raises(InputError, match="missing column"):
        ma.timecourse(pooled.drop(columns="days"))
