"""Structural tests of forest plots (rows, labels, diamond, axis scale, arrows, PI bar).

Reference numbers come from R metafor 3.8-1 (tests/data/metafor/*.json).
"""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import Polygon
from scipy import stats
from scipy.special import expit

import metaanalysis as ma
from metaanalysis.errors import InputError

DATA = Path(__file__).parent / "data" / "metafor"


def _load(name):
    return json.loads((DATA / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def cement(cement_data):
    d, es = cement_data
    return d, ma.pool(es, method="REML")


@pytest.fixture(scope="module")
def bcg():
    b = _load("bcg_rr")
    data = pd.DataFrame(b["data"])
    es = ma.effect_sizes("RR", data=data, events1="ai", total1=data.ai + data.bi,
                         events2="ci", total2=data.ci + data.di)
    return b, es, ma.pool(es, method="REML")


def _gid(ax, gid, kind=None):
    arts = list({id(a): a for a in ax.get_children() + ax.texts
                 if a.get_gid() == gid}.values())
    return [a for a in arts if kind is None or isinstance(a, kind)]


def _texts(ax, key):
    # drawn text with line breaks as spaces (headers and long lines wrap to the width)
    return [" ".join(t.get_text().split()) for t in ax.texts
            if t.get_gid() == f"forest-text-{key}"]


def _reml(fits):
    return next(f for f in fits if f["method"] == "REML" and f["test"] == "z")


def test_rows_labels_and_text_columns(cement):
    d, res = cement
    ax = ma.forest(res)
    labels = _texts(ax, "label")
    # header + 4 studies + RE model + prediction interval
    for s in ("Chen 2022", "Wang 2022", "Zhang 2024", "Wu 2021"):
        assert s in labels
    assert labels[0] == "Study"
    assert sum(lab in {r["study"] for r in d["data"]} for lab in labels) == 4
    # events/total column from res.data
    assert "42/140" in _texts(ax, "x0") and "10/33" in _texts(ax, "x0")
    # weight column sums to the weights of the model
    w = [t for t in _texts(ax, "w") if t not in ("Weight", "100.0%")]
    assert w == [ma.formatting.pct(x) for x in res.weights]


def test_diamond_matches_metafor_on_natural_scale(cement):
    d, res = cement
    ref = _reml(d["PLO"]["fits"])  # metafor rma(measure="PLO", method="REML")
    ax = ma.forest(res)
    (diamond,) = _gid(ax, "pooled-diamond", Polygon)
    xy = diamond.get_xy()
    assert xy[:, 0].min() == pytest.approx(ref["back"]["ci_lb"], rel=1e-6)
    assert xy[:, 0].max() == pytest.approx(ref["back"]["ci_ub"], rel=1e-6)
    assert xy[1, 0] == pytest.approx(ref["back"]["estimate"], rel=1e-6)
    (pi,) = _gid(ax, "prediction-interval")
    assert pi.get_xdata() == pytest.approx([ref["back"]["pi_lb"], ref["back"]["pi_ub"]],
                                           rel=1e-6)


def test_plo_axis_is_natural_scale_and_percent(cement):
    d, res = cement
    ax = ma.forest(res)
    assert ax.get_xscale() == "linear"
    assert ax.get_xlabel() == "Proportion"
    lo, hi = ax.get_xlim()
    assert 0 <= lo < hi <= 1
    boxes = _gid(ax, "study-boxes")[0].get_offsets()
    # study points are the observed proportions events/total
    obs = [r["xi"] / r["ni"] for r in d["data"]]
    assert np.asarray(boxes)[:, 0] == pytest.approx(obs, rel=1e-12)
    axp = ma.forest(res, percent=True)
    assert axp.get_xlabel() == "Proportion (%)"
    assert np.asarray(_gid(axp, "study-boxes")[0].get_offsets())[:, 0] == pytest.approx(
        [100 * o for o in obs])


def test_exact_study_intervals_for_proportions(cement):
    d, res = cement
    ax = ma.forest(res)
    lines = _gid(ax, "study-ci")
    x, n = 42, 140  # Chen 2022; Clopper & Pearson (1934) limits from beta quantiles
    lb, ub = stats.beta.ppf(0.025, x, n - x + 1), stats.beta.ppf(0.975, x + 1, n - x)
    assert lines[0].get_xdata() == pytest.approx([lb, ub], rel=1e-8)
    # with study_ci="model" the Wald interval on the logit scale is back-transformed
    ax2 = ma.forest(res, study_ci="model")
    yi, vi = d["PLO"]["yi"][0], d["PLO"]["vi"][0]
    z = stats.norm.ppf(0.975)
    assert _gid(ax2, "study-ci")[0].get_xdata() == pytest.approx(
        expit([yi - z * vi ** 0.5, yi + z * vi ** 0.5]), rel=1e-10)


def test_box_area_proportional_to_weight(bcg):
    _, _, res = bcg
    ax = ma.forest(res)
    sizes = _gid(ax, "study-boxes")[0].get_sizes()
    w = np.asarray(res.weights)
    assert sizes / sizes.max() == pytest.approx(w / w.max(), rel=1e-9)


def test_ratio_measure_log_axis_reference_line_and_heterogeneity(bcg):
    b, _, res = bcg
    ref = _reml(b["fits"])
    ax = ma.forest(res)
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "Risk ratio"
    (line,) = _gid(ax, "reference-line")
    assert set(line.get_xdata()) == {1.0}
    (diamond,) = _gid(ax, "pooled-diamond", Polygon)
    assert diamond.get_xy()[1, 0] == pytest.approx(np.exp(ref["estimate"]), rel=1e-6)
    spans = [" ".join(t.get_text().split()) for t in ax.texts
             if t.get_gid() == "forest-text-span"]
    het = next(s for s in spans if s.startswith("Heterogeneity"))
    # metafor: I² = 92.22% [81.92, 97.68], Q = 152.23 on 12 df
    assert "I² = 92.2% [81.9%, 97.7%]" in het and "Q = 152.23, df = 12" in het
    assert "p < 0.0001" in het
    assert any(s.startswith("Test for overall effect: z = -3.97") for s in spans)


def test_arrows_when_clipped(bcg):
    _, _, res = bcg
    ax = ma.forest(res, xlim=(0.1, 3))
    lb = np.exp(np.asarray(res.yi) - 1.959964 * np.sqrt(res.vi))
    ub = np.exp(np.asarray(res.yi) + 1.959964 * np.sqrt(res.vi))
    expected = int(np.sum(lb < 0.1) + np.sum(ub > 3))
    assert expected > 0
    assert len(_gid(ax, "clip-arrow")) == expected
    assert len(_gid(ma.forest(res), "clip-arrow")) == 0


def test_sort_by_weight_and_common_effect(bcg):
    b, _, res = bcg
    ax = ma.forest(res, sort="weight", common=ma.pool(res.yi, res.vi, method="EE"))
    labels = [t for t in _texts(ax, "label")
              if t in {r["study"] for r in b["data"]}]
    order = np.argsort(-np.asarray(res.weights), kind="stable")
    assert labels == [res.labels[i] for i in order]
    (ce,) = _gid(ax, "common-diamond", Polygon)
    ee = next(f for f in b["fits"] if f["method"] == "EE")
    assert ce.get_xy()[1, 0] == pytest.approx(np.exp(ee["estimate"]), rel=1e-8)
    ys = [t.get_position()[1] for t in ax.texts if t.get_text() == "TPT Madras 1980"]
    assert ys == [1.0]  # the heaviest study comes first


def test_subgroups_blocks_and_q_between(bcg):
    b, es, _ = bcg
    sg = ma.subgroups(es, groups="alloc", method="REML")
    ax = ma.forest(sg, measure="RR")
    diamonds = _gid(ax, "pooled-diamond", Polygon)
    assert len(diamonds) == 4  # three subtotals and the overall estimate
    ref = b["subgroups_alloc"]["groups"]
    got = sorted(d.get_xy()[1, 0] for d in diamonds[:3])
    assert got == pytest.approx(sorted(np.exp(g["estimate"]) for g in ref.values()), rel=1e-6)
    spans = [" ".join(t.get_text().split()) for t in ax.texts
             if t.get_gid() == "forest-text-span"]
    # metafor: Q-between = 1.8614 on 2 df, p = 0.3943
    assert "Test for subgroup differences: Q = 1.86, df = 2, p = 0.3943" in spans
    for g in ("alternate", "random", "systematic"):
        assert g in _texts(ax, "label")


def test_leave_one_out_and_cumulative(bcg):
    b, _, res = bcg
    loo = ma.leave_one_out(res)
    ax = ma.forest(loo, measure="RR", overall=res)
    pts = np.asarray(_gid(ax, "study-boxes")[0].get_offsets())
    assert len(pts) == res.k
    assert pts[:, 0] == pytest.approx(np.exp(b["leave1out_reml"]["estimate"]), rel=1e-6)
    assert _texts(ax, "label")[0] == "Omitting"
    assert len(_gid(ax, "pooled-diamond", Polygon)) == 1
    cum = ma.cumulative(res, by=[r["year"] for r in b["data"]])
    axc = ma.forest(cum, measure="RR")
    assert _texts(axc, "label")[0] == "Adding"
    assert _texts(axc, "label")[1] == "+ Aronson 1948"


def test_draws_only_on_given_axes(cement):
    _, res = cement
    _fig, (a1, a2) = plt.subplots(1, 2)
    plt.sca(a1)
    out = ma.forest(res, ax=a2)
    assert out is a2
    assert plt.gca() is a1
    assert not a1.lines and not a1.patches and not a1.texts and not a1.collections
    assert a2.patches


def test_height_grows_with_rows():
    rng = np.random.default_rng(1)
    res60 = ma.pool(rng.normal(0, 0.3, 60), rng.uniform(0.01, 0.1, 60), method="DL")
    res3 = ma.pool([0.1, 0.3, 0.2], [0.01, 0.02, 0.02], method="DL")
    f60, f3 = ma.forest(res60).figure, ma.forest(res3).figure
    # same row pitch: the axes height per drawn row is the same, so height grows with rows
    per_row = []
    for f in (f60, f3):
        ax = f.axes[0]
        rows = abs(ax.get_ylim()[0] - ax.get_ylim()[1])
        per_row.append(ax.get_position().height * f.get_size_inches()[1] / rows)
    assert per_row[0] == pytest.approx(per_row[1], rel=0.02)
    assert f60.get_size_inches()[1] - f3.get_size_inches()[1] == pytest.approx(57 * per_row[0],
                                                                             rel=0.02)


def test_bad_arguments_raise_input_error(cement):
    _, res = cement
    with pytest.raises(InputError, match="sort"):
        ma.forest(res, sort="alphabet")
    with pytest.raises(InputError, match="xlim"):
        ma.forest(res, xlim=(0.5, 0.2))
    with pytest.raises(InputError, match="percent"):
        ma.forest(ma.pool([0.1, 0.2], [0.01, 0.02]), percent=True)
    with pytest.raises(InputError, match="result"):
        ma.forest([1, 2, 3])


def test_footnotes_are_written_under_the_plot(cement):
    _, res = cement
    note = "† mean and SD estimated from the median and range (Luo 2018; Shi 2020)"
    ax = ma.forest(res.with_(labels=tuple(f"{lab} †" for lab in res.labels)), footnotes=[note])
    texts = [" ".join(t.get_text().split()) for t in ax.texts]
    assert note in texts
    assert sum(t.endswith(" †") for t in texts) == res.k  # the marker on every study label
    # the footnote is the last line, under the heterogeneity lines
    ys = {" ".join(t.get_text().split()): t.get_position()[1] for t in ax.texts}
    het = next(v for k, v in ys.items() if k.startswith("Heterogeneity"))
    assert ys[note] > het  # rows grow downwards (inverted y)
    with pytest.raises(InputError, match="footnotes"):
        ma.forest(res, footnotes="† one string")


def test_mean_change_text_columns_from_data():
    # two studies with pre/post means: the reader sees the data behind each effect
    es = ma.effect_sizes("MC", mean_pre=[6.1, 7.4], sd_pre=[1.2, 1.2], mean_post=[3.1, 1.9],
                         sd_post=[1.0, 1.6], n=[91, 17], r=0.5)
    ax = ma.forest(ma.pool(es, method="REML", labels=["Chen 2022", "JVIR 2014"]))
    texts = [" ".join(t.get_text().split()) for t in ax.texts]
    for h in ("Baseline mean (SD)", "Follow-up mean (SD)", "n"):
        assert h in texts
    assert {"6.1 (1.2)", "3.1 (1.0)", "91", "7.4 (1.2)", "1.9 (1.6)", "17"} <= set(texts)
    # effect = pre − post (metafor escalc MC): 6.1 − 3.1 = 3.00
    assert any(t.startswith("3.00 [") for t in texts)
