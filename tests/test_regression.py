"""Meta-regression and subgroup analysis against R metafor 3.8-1.

Reference values: tests/data/metafor/*.json (entries ``metareg_*`` and
``subgroups_*``, see the README of the shared reference) and
tests/data/bias_regression_extra.json (made by tests/data/bias_regression_extra.R:
other τ² estimators, a categorical moderator, subgroups with a common τ²).
Tolerance 1e-6 (relative, absolute near 0): the references were iterated to 1e-12.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import metaanalysis as ma
from metaanalysis import engine
from metaanalysis.errors import InputError
from metaanalysis.models.regression import design_matrix

DATA = Path(__file__).parent / "data"
REF = DATA / "metafor"
EXTRA = json.loads((DATA / "bias_regression_extra.json").read_text())
TOL = {"rtol": 1e-6, "atol": 1e-6}


def _load(name):
    return json.loads((REF / f"{name}.json").read_text())


def _metareg_cases():
    for path in sorted(REF.glob("*.json")):
        ref = json.loads(path.read_text())
        for key in ref:
            if key.startswith("metareg_"):
                yield pytest.param(path.stem, key, id=f"{path.stem}-{key}")


@pytest.mark.parametrize("case,key", list(_metareg_cases()))
def test_metareg_reference_z_and_knha(case, key):
    # metafor: rma(yi, vi, mods = ..., method = "REML") and test = "knha" (reference JSON).
    ref = _load(case)
    blk = ref[key]
    mods = pd.DataFrame(ref["data"])[blk["mods"][1:]]
    res = ma.meta_regression(ref["yi"], ref["vi"], mods, method="REML")
    assert list(res.coef.index) == blk["mods"]
    np.testing.assert_allclose(res.coef["estimate"], blk["beta"], **TOL)
    np.testing.assert_allclose(res.coef["se"], blk["se"], **TOL)
    np.testing.assert_allclose(res.coef["p"], blk["p"], **TOL)
    for name in ("tau2", "qm", "qm_p", "qe", "qe_p", "r2", "i2"):
        np.testing.assert_allclose(getattr(res, name), blk[name], err_msg=name, **TOL)
    kn = ma.meta_regression(ref["yi"], ref["vi"], mods, method="REML", test="knha")
    np.testing.assert_allclose(kn.coef["se"], blk["knha"]["se"], **TOL)
    np.testing.assert_allclose(kn.coef["p"], blk["knha"]["p"], **TOL)
    np.testing.assert_allclose(kn.coef["ci_lb"], blk["knha"]["ci_lb"], **TOL)
    np.testing.assert_allclose(kn.coef["ci_ub"], blk["knha"]["ci_ub"], **TOL)
    np.testing.assert_allclose(kn.qm, blk["knha"]["f"], **TOL)
    np.testing.assert_allclose(kn.qm_p, blk["knha"]["f_p"], **TOL)
    assert kn.qm_df == len(blk["mods"]) - 1 and kn.qm_df2 == len(ref["yi"]) - len(blk["mods"])
    assert kn.df == len(ref["yi"]) - len(blk["mods"])


def _bcg():
    b = EXTRA["bcg"]
    return np.array(b["yi"]), np.array(b["vi"]), pd.DataFrame({k: b[k] for k in ("ablat", "year", "alloc")})


@pytest.mark.parametrize("method", ["REML", "ML", "DL", "HE", "PM", "EE"])
@pytest.mark.parametrize("test", ["z", "knha"])
def test_metareg_estimators(method, test):
    # metafor: rma(yi, vi, mods = ~ ablat, method, test) on dat.bcg (bias_regression_extra.json).
    y, v, df = _bcg()
    blk = EXTRA[f"metareg_ablat_{method}_{test}"]
    res = ma.meta_regression(y, v, df["ablat"], method=method, test=test)
    for col, key in (("estimate", "beta"), ("se", "se"), ("stat", "stat"), ("p", "p"),
                     ("ci_lb", "ci_lb"), ("ci_ub", "ci_ub")):
        np.testing.assert_allclose(res.coef[col], blk[key], err_msg=col, **TOL)
    for name in ("tau2", "qm", "qm_p", "qe", "qe_p", "i2", "h2"):
        np.testing.assert_allclose(getattr(res, name), blk[name], err_msg=name, **TOL)
    if blk["r2"] is not None:
        np.testing.assert_allclose(res.r2, blk["r2"], **TOL)
    assert res.tau2 >= 0


@pytest.mark.parametrize("test", ["z", "knha"])
def test_metareg_categorical_moderator(test):
    # metafor: rma(yi, vi, mods = ~ ablat + factor(alloc)) — first level "alternate" is the reference.
    y, v, df = _bcg()
    blk = EXTRA[f"metareg_ablat_alloc_{test}"]
    res = ma.meta_regression(y, v, df[["ablat", "alloc"]], test=test)
    assert list(res.coef.index) == ["intrcpt", "ablat", "alloc[random]", "alloc[systematic]"]
    np.testing.assert_allclose(res.coef["estimate"], blk["beta"], **TOL)
    np.testing.assert_allclose(res.coef["se"], blk["se"], **TOL)
    np.testing.assert_allclose(res.coef["p"], blk["p"], **TOL)
    for name in ("tau2", "qm", "qm_p", "qe", "r2"):
        np.testing.assert_allclose(getattr(res, name), blk[name], err_msg=name, **TOL)
    assert res.qm_df == 3


def test_metareg_accepts_effect_size_frame_with_column_names():
    y, v, df = _bcg()
    frame = df.assign(yi=y, vi=v)
    a = ma.meta_regression(frame, mods=["ablat"])
    b = ma.meta_regression(y, v, df["ablat"])
    np.testing.assert_allclose(a.coef.to_numpy(), b.coef.to_numpy(), rtol=1e-12)
    assert "REML" in a.summary() and "ablat" in a.summary()


def test_metareg_invariances():
    # Shifting every yi by c shifts the intercept by c; the study order does not matter.
    y, v, df = _bcg()
    base = ma.meta_regression(y, v, df["ablat"])
    shifted = ma.meta_regression(y + 2.5, v, df["ablat"])
    np.testing.assert_allclose(shifted.coef["estimate"], base.coef["estimate"] + [2.5, 0], rtol=1e-8)
    np.testing.assert_allclose(shifted.tau2, base.tau2, rtol=1e-8)
    perm = np.random.default_rng(3).permutation(y.size)
    reordered = ma.meta_regression(y[perm], v[perm], df["ablat"].to_numpy()[perm])
    np.testing.assert_allclose(reordered.coef["estimate"], base.coef["estimate"], rtol=1e-9)


def test_r2_is_zero_when_moderator_adds_heterogeneity():
    # τ²_ME > τ²_RE is possible; pseudo-R² is truncated at 0 as in metafor.
    y = np.array([0.1, 0.5, 0.2, 0.45, 0.15, 0.4, 0.3, 0.35])
    v = np.full(8, 0.01)
    mod = np.array([1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0])
    res = ma.meta_regression(y, v, mod, method="REML")
    assert res.tau2 > res.tau2_re > 0
    assert res.r2 == 0.0


def test_batch_fit_equals_single_fits():
    # The vectorised core gives the same answer row by row (used for permutations).
    y, v, df = _bcg()
    X = design_matrix(df[["ablat", "year"]], y.size).to_numpy()
    rng = np.random.default_rng(0)
    idx = np.argsort(rng.random((4, y.size)), axis=1)
    batch = engine.fit(np.broadcast_to(y, (4, y.size)), np.broadcast_to(v, (4, y.size)),
                       X=X[idx])
    for b in range(4):
        one = engine.fit(y, v, X=X[idx[b]])
        np.testing.assert_allclose(batch["coef"][b], one["coef"][0], rtol=1e-9)
        np.testing.assert_allclose(batch["tau2"][b], one["tau2"][0], rtol=1e-9, atol=1e-14)


def test_permutation_pvalues():
    # Higgins & Thompson (2004): latitude explains the BCG effects; its permutation
    # p-value is small, the permutation p-values are valid probabilities and a seed
    # makes them reproducible.
    y, v, df = _bcg()
    res = ma.meta_regression(y, v, df["ablat"], permutations=999, seed=1)
    again = ma.meta_regression(y, v, df["ablat"], permutations=999, seed=1)
    assert res.coef["p_perm"].tolist() == again.coef["p_perm"].tolist()
    assert 1 / 1000 <= res.coef.loc["ablat", "p_perm"] < 0.01
    assert res.qm_p_perm == pytest.approx(res.coef.loc["ablat", "p_perm"])
    noise = np.random.default_rng(7).normal(size=y.size)
    null = ma.meta_regression(y, v, noise, permutations=199, seed=2)
    assert null.qm_p_perm > 0.05
    assert "permutations" in res.summary()


@pytest.mark.parametrize("bad,match", [
    ({"mods": np.r_[np.nan, np.arange(12.0)]}, "missing"),
    ({"mods": np.arange(12.0)}, "rows"),
    ({"mods": np.column_stack([np.arange(13.0), 2 * np.arange(13.0)])}, "collinear"),
    ({"mods": np.arange(13.0), "method": "XX"}, "method"),
    ({"mods": np.arange(13.0), "test": "t"}, "test"),
    ({"mods": np.arange(13.0), "permutations": 0}, "permutations"),
])
def test_metareg_input_errors(bad, match):
    y, v, _ = _bcg()
    kwargs = dict(bad)
    mods = kwargs.pop("mods")
    with pytest.raises(InputError, match=match):
        ma.meta_regression(y, v, mods, **kwargs)


def test_subgroups_reference():
    # metafor: one REML fit per subgroup; Q-between from rma(est, sei = se, method = "EE").
    ref = _load("bcg_rr")
    blk = ref["subgroups_alloc"]
    groups = pd.DataFrame(ref["data"])["alloc"]
    sg = ma.subgroups(ref["yi"], ref["vi"], groups, method="REML")
    assert sorted(sg.groups) == sorted(blk["groups"])
    for name, g in blk["groups"].items():
        r = sg.groups[name]
        assert r.k == g["k"]
        for key in ("estimate", "se", "tau2", "i2"):
            np.testing.assert_allclose(getattr(r, key), g[key], err_msg=f"{name} {key}", **TOL)
    np.testing.assert_allclose(sg.q_between, blk["q_between"], **TOL)
    np.testing.assert_allclose(sg.q_between_p, blk["q_between_p"], **TOL)
    assert sg.q_between_df == blk["q_between_df"]
    frame = sg.to_frame()
    np.testing.assert_allclose(frame.loc["random", "estimate"], blk["groups"]["random"]["estimate"], **TOL)
    assert "separately" in sg.summary()


@pytest.mark.parametrize("test", ["z", "knha"])
def test_subgroups_common_tau2(test):
    # metafor: rma(yi, vi, mods = ~ factor(alloc) - 1) for the cell estimates and
    # ~ factor(alloc) for the test of differences (bias_regression_extra.json).
    y, v, df = _bcg()
    blk = EXTRA[f"subgroups_common_{test}"]
    sg = ma.subgroups(y, v, df["alloc"], test=test, tau2="common")
    levels = ["alternate", "random", "systematic"]
    for key in ("estimate", "se", "ci_lb", "ci_ub"):
        np.testing.assert_allclose([getattr(sg.groups[g], key) for g in levels], blk[key],
                                   err_msg=key, **TOL)
    np.testing.assert_allclose(sg.tau2_common, blk["tau2"], **TOL)
    assert all(sg.groups[g].tau2 == sg.tau2_common for g in levels)
    np.testing.assert_allclose(sg.q_between, blk["q_between"], **TOL)
    np.testing.assert_allclose(sg.q_between_p, blk["q_between_p"], **TOL)
    assert sg.q_between_df == blk["q_between_df"]
    assert "common" in sg.summary()


def test_subgroups_input_errors():
    y, v, df = _bcg()
    with pytest.raises(InputError, match="tau2"):
        ma.subgroups(y, v, df["alloc"], tau2="pooled")
    with pytest.raises(InputError, match="single level"):
        ma.subgroups(y, v, ["a"] * y.size)
    with pytest.raises(InputError, match="entries"):
        ma.subgroups(y, v, ["a", "b"])


@pytest.mark.parametrize("method", engine.METHODS)
def test_design_of_ones_matches_intercept_only(method):
    # X = 1 is the intercept-only model inside the same functions: the same τ² and
    # estimate on random data sets across scales of vi
    rng = np.random.default_rng(1)
    for scale in (1e-6, 1.0, 1e3):
        v = rng.uniform(0.01, 1, (100, 8)) * scale
        y = rng.normal(0, 1, (100, 8)) * np.sqrt(scale) * rng.uniform(0.2, 3, (100, 1))
        core = engine.fit(y, v, X=np.ones((8, 1)), method=method, qprofile=False)
        ref = engine.fit(y, v, method=method, qprofile=False)
        assert core["converged"].all() and np.all(core["tau2"] >= 0)
        np.testing.assert_allclose(core["tau2"], ref["tau2"], rtol=1e-7, atol=1e-9 * scale)
        np.testing.assert_allclose(core["coef"][:, 0], ref["estimate"], rtol=1e-7,
                                   atol=1e-7 * np.sqrt(scale))
