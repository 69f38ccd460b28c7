"""Image comparison of the main figures against committed baselines (tests/baseline/).

Regenerate after an intended change with::

    METAANALYSIS_UPDATE_BASELINES=1 python -m pytest tests/test_plots_baseline.py

Baselines are drawn with the shipped style (DejaVu Sans, which ships with
matplotlib) at 80 dpi and compared with a small RMS tolerance, so freetype
differences between machines do not fail the test but a moved diamond does.
"""

import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.testing.compare import compare_images

import metaanalysis as ma

HERE = Path(__file__).parent
BASELINE = HERE / "baseline"
DATA = HERE / "data" / "metafor"
TOL = 6.0  # RMS of 0-255 pixel values


def check_figure(fig, name, tmp_path, tol=TOL):
    """Compare ``fig`` with tests/baseline/<name>.png, or rewrite it when asked to."""
    actual = tmp_path / f"{name}.png"
    fig.savefig(actual, dpi=80, metadata={"Software": None})
    plt.close(fig)
    expected = BASELINE / f"{name}.png"
    if os.environ.get("METAANALYSIS_UPDATE_BASELINES") == "1":
        BASELINE.mkdir(exist_ok=True)
        expected.write_bytes(actual.read_bytes())
        return
    assert expected.exists(), (f"no baseline {expected}; run with "
                               "METAANALYSIS_UPDATE_BASELINES=1 to create it")
    err = compare_images(str(expected), str(actual), tol=tol)
    assert err is None, err


def _cement():
    d = json.loads((DATA / "mwa_cement_leakage.json").read_text())
    es = ma.effect_sizes("PLO", data=pd.DataFrame(d["data"]), events="xi", total="ni")
    return ma.pool(es, method="REML")


def _bcg():
    b = json.loads((DATA / "bcg_rr.json").read_text())
    data = pd.DataFrame(b["data"])
    es = ma.effect_sizes("RR", data=data, events1="ai", total1=data.ai + data.bi,
                         events2="ci", total2=data.ci + data.di)
    return es, ma.pool(es, method="REML")


def test_forest_proportions(tmp_path):
    with ma.use_style():
        ax = ma.forest(_cement(), percent=True)
        check_figure(ax.figure, "forest_cement_plo", tmp_path)


def test_forest_ratio_clipped_sorted(tmp_path):
    _, res = _bcg()
    with ma.use_style():
        ax = ma.forest(res, sort="weight", common=ma.pool(res.yi, res.vi, method="EE"),
                       xlim=(0.1, 3))
        check_figure(ax.figure, "forest_bcg_rr", tmp_path)


def test_forest_subgroups(tmp_path):
    es, _ = _bcg()
    with ma.use_style():
        ax = ma.forest(ma.subgroups(es, groups="alloc"), measure="RR")
        check_figure(ax.figure, "forest_bcg_subgroups", tmp_path)


def test_funnel_contours_trimfill(tmp_path):
    _, res = _bcg()
    with ma.use_style():
        ax = ma.funnel(res, trimfill=ma.trim_and_fill(res), egger=ma.egger_test(res))
        check_figure(ax.figure, "funnel_bcg", tmp_path)


def test_baujat_and_radial(tmp_path):
    _, res = _bcg()
    with ma.use_style():
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(6, 3), layout="constrained")
        ma.baujat(ma.baujat_coordinates(res), ax=a1)
        ma.radial(res, ax=a2)
        check_figure(fig, "diagnostics_bcg", tmp_path)
