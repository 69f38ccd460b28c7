"""Rank test, fail-safe N and the GLMM's heterogeneity tests against R metafor.

Reference values: tests/data/bias_reference.json, made by tests/data/bias_reference.R
(R 4.2.2, metafor 3.8-1): ``ranktest`` on dat.landenberger2005 (k = 58, no ties:
exact distribution), dat.bcg and dat.molloy2014 (ties: normal approximation);
``fsn(type = "Rosenthal" | "Orwin" | "Rosenberg")``; ``rma.glmm(measure = "PLO")``'s
``QE.Wld``/``QE.LRT`` on dat.pritz1997 and the cement-leakage counts.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import metaanalysis as ma
from metaanalysis.errors import StatisticalWarning

REF = json.loads((Path(__file__).parent / "data" / "bias_reference.json").read_text())
SETS = ("landenberger", "bcg", "molloy")


def _res(name):
    d = REF[name]
    return ma.pool(d["yi"], d["vi"], method="REML")


@pytest.mark.parametrize("name", SETS)
def test_rank_test_as_metafor(name):
    ref = REF[name]["ranktest"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        out = ma.begg_test(_res(name))
    assert out.tau == pytest.approx(ref["tau"], rel=1e-10)
    assert out.p == pytest.approx(ref["p"], rel=1e-9)
    # exact for any k without ties (landenberger: k = 58), normal approximation with ties
    assert out.exact == (name != "molloy")


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("method", ["rosenthal", "orwin", "rosenberg"])
def test_fail_safe_n_as_metafor(name, method):
    ref = REF[name][f"fsn_{method}"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        n = ma.fail_safe_n(_res(name), method=method)
    assert int(n) == ref["n"]
    if ref["p"] is not None:
        assert n.p == pytest.approx(ref["p"], rel=1e-9)
    if ref["mean"] is not None:
        assert abs(n.mean) == pytest.approx(abs(ref["mean"]), rel=1e-10)
    assert method.capitalize() in n.summary()


@pytest.mark.parametrize("name", ["glmm_pritz", "glmm_cement"])
def test_glmm_heterogeneity_tests_are_attributes(name):
    ref = REF[name]
    res = ma.pool_glmm(ref["xi"], ref["ni"])
    # lme4-based references: 1e-4 (adaptive quadrature with its own stopping rules)
    assert res.q == pytest.approx(ref["q_wald"], rel=1e-4)
    assert res.q_p == pytest.approx(ref["q_wald_p"], rel=1e-4)
    assert res.q_lrt == pytest.approx(ref["q_lrt"], rel=1e-4)
    assert res.q_lrt_p == pytest.approx(ref["q_lrt_p"], rel=1e-4)
    assert res.tau2 == pytest.approx(ref["tau2"], rel=1e-3)


def test_trim_and_fill_r0_identical_studies_fill_none():
    res = ma.pool(np.full(12, 0.3), np.full(12, 0.02), method="REML")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        for est in ("R0", "L0"):
            tf = ma.trim_and_fill(res, estimator=est)
            assert tf.k0 == 0 and tf.pooled.k == 12


def test_trim_and_fill_side_uses_the_fits_estimator():
    # the side comes from rma(yi, vi, mods = sqrt(vi), method = <the fit's>), for every
    # estimator (PMM included; it used to fall back to REML)
    d = REF["bcg"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        for method in ("PMM", "SJ", "HSk", "EB"):
            tf = ma.trim_and_fill(ma.pool(d["yi"], d["vi"], method=method))
            slope = ma.meta_regression(d["yi"], d["vi"], np.sqrt(d["vi"]),
                                       method=method).coef["estimate"].iloc[1]
            assert tf.side == ("right" if slope < 0 else "left")
            assert f"({slope:.4f})" in tf.side_chosen or "slope" in tf.side_chosen


@pytest.mark.parametrize("method", ["SJ", "HS", "HSk", "EB", "PMM"])
def test_egger_rma_on_every_estimator(method):
    # egger_test(model="rma") refits with the result's own estimator (all 11 now)
    d = REF["bcg"]
    res = ma.pool(d["yi"], d["vi"], method=method, test="knha")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        eg = ma.egger_test(res)
    reg = ma.meta_regression(d["yi"], d["vi"], np.sqrt(d["vi"]), method=method, test="knha")
    assert eg.slope == pytest.approx(reg.coef["estimate"].iloc[1], rel=1e-12)
    assert eg.p == pytest.approx(reg.coef["p"].iloc[1], rel=1e-12)
    assert eg.df == len(d["yi"]) - 2
