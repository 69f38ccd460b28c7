"""Small-study-effect tests against R metafor 3.8-1.

Reference values: tests/data/metafor/*.json (``egger_rma`` = regtest(model="rma")
on the REML fit, ``egger_lm`` = regtest(model="lm"), ``begg`` = ranktest,
``trimfill_dl``/``trimfill_ee`` = trimfill (L0) on a DL / common-effect fit,
``fsn_rosenthal`` = fsn) and tests/data/bias_regression_extra.json (made by
tests/data/bias_regression_extra.R: other models, PEESE, R0, Orwin).
Tolerance 1e-6.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import metaanalysis as ma
from metaanalysis.errors import InputError, StatisticalWarning

DATA = Path(__file__).parent / "data"
REF = DATA / "metafor"
EXTRA = json.loads((DATA / "bias_regression_extra.json").read_text())
TOL = {"rtol": 1e-6, "atol": 1e-6}
CASES = sorted(p.stem for p in REF.glob("*.json") if "egger_rma" in json.loads(p.read_text()))


def _load(name):
    return json.loads((REF / f"{name}.json").read_text())


def _pool(ref, method="REML", test="z"):
    return ma.pool(ref["yi"], ref["vi"], method=method, test=test)


def _quiet(f, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        return f(*args, **kwargs)


def test_reference_cases_present():
    assert CASES == ["bcg_rr", "egger2001_or", "hine1989_rd", "molloy2014_zcor",
                     "raudenbush1985_smd"]


@pytest.mark.parametrize("case", CASES)
def test_egger_rma(case):
    # metafor: regtest(rma(yi, vi, method = "REML"), model = "rma", predictor = "sei")
    ref = _load(case)
    eg = _quiet(ma.egger_test, _pool(ref), model="rma")
    blk = ref["egger_rma"]
    np.testing.assert_allclose(eg.stat, blk["stat"], **TOL)
    np.testing.assert_allclose(eg.p, blk["p"], **TOL)
    np.testing.assert_allclose(eg.limit_estimate, blk["limit_estimate"], **TOL)
    assert eg.df is None and eg.method == "REML"


@pytest.mark.parametrize("case", CASES)
def test_egger_lm(case):
    # metafor: regtest(..., model = "lm"): weighted regression of yi on sei, t(k - 2)
    ref = _load(case)
    eg = _quiet(ma.egger_test, _pool(ref), model="lm")
    blk = ref["egger_lm"]
    np.testing.assert_allclose(eg.stat, blk["stat"], **TOL)
    np.testing.assert_allclose(eg.p, blk["p"], **TOL)
    assert eg.df == blk["df"]


def test_egger_lm_equals_classic_egger_regression():
    # Egger et al. (1997): OLS of the standard normal deviate yi/sei on precision 1/sei;
    # the intercept's t statistic equals the slope test of the weighted regression.
    ref = _load("egger2001_or")
    y, s = np.array(ref["yi"]), np.sqrt(ref["vi"])
    X = np.column_stack([np.ones_like(s), 1 / s])
    snd = y / s
    beta, rss = np.linalg.lstsq(X, snd, rcond=None)[:2]
    cov = rss[0] / (y.size - 2) * np.linalg.inv(X.T @ X)
    eg = ma.egger_test(_pool(ref), model="lm")
    np.testing.assert_allclose(eg.stat, beta[0] / np.sqrt(cov[0, 0]), rtol=1e-9)
    np.testing.assert_allclose(eg.limit_estimate, beta[1], rtol=1e-9)


@pytest.mark.parametrize("method", ["DL", "EE"])
@pytest.mark.parametrize("test", ["z", "knha"])
def test_egger_rma_uses_model_of_result(method, test):
    # metafor: regtest(rma(yi, vi, method, test)) on dat.bcg (bias_regression_extra.json)
    b = EXTRA["bcg"]
    blk = EXTRA[f"egger_rma_{method}_{test}"]
    eg = ma.egger_test(ma.pool(b["yi"], b["vi"], method=method, test=test))
    np.testing.assert_allclose([eg.stat, eg.p, eg.limit_estimate],
                               [blk["stat"], blk["p"], blk["limit_estimate"]], **TOL)
    assert eg.df == blk["df"]


def test_peese():
    # metafor: regtest(fit, model = "lm" / "rma", predictor = "vi") on dat.bcg (PEESE,
    # Stanley & Doucouliagos 2014)
    b = EXTRA["bcg"]
    res = ma.pool(b["yi"], b["vi"])
    pe = ma.peese(res)
    blk = EXTRA["peese_lm"]
    np.testing.assert_allclose([pe.stat, pe.p, pe.limit_estimate, pe.limit_ci_lb, pe.limit_ci_ub],
                               [blk["stat"], blk["p"], blk["limit_estimate"], blk["limit_ci_lb"],
                                blk["limit_ci_ub"]], **TOL)
    assert pe.df == 11 and pe.predictor == "vi"
    pr = ma.peese(res, model="rma")
    blk = EXTRA["peese_rma"]
    np.testing.assert_allclose([pr.stat, pr.p, pr.limit_estimate],
                               [blk["stat"], blk["p"], blk["limit_estimate"]], **TOL)
    assert "PEESE" in pe.summary() and "variance" in pe.summary()


@pytest.mark.parametrize("case", CASES)
def test_begg(case):
    # metafor: ranktest(res); exact p without ties, tie-corrected normal otherwise
    ref = _load(case)
    bt = _quiet(ma.begg_test, _pool(ref))
    np.testing.assert_allclose(bt.tau, ref["begg"]["tau"], **TOL)
    np.testing.assert_allclose(bt.p, ref["begg"]["p"], **TOL)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("method", ["DL", "EE"])
def test_trim_and_fill(case, method):
    # metafor: trimfill(rma(yi, vi, method = "DL" / "EE")), estimator L0
    ref = _load(case)
    blk = ref[f"trimfill_{method.lower()}"]
    tf = _quiet(ma.trim_and_fill, _pool(ref, method=method))
    assert tf.k0 == blk["k0"] and tf.side == blk["side"] and tf.estimator == "L0"
    np.testing.assert_allclose(tf.pooled.estimate, blk["estimate"], **TOL)
    np.testing.assert_allclose(tf.pooled.se, blk["se"], **TOL)
    if "tau2" in blk:
        np.testing.assert_allclose(tf.pooled.tau2, blk["tau2"], **TOL)
        np.testing.assert_allclose([tf.pooled.ci_lb, tf.pooled.ci_ub], [blk["ci_lb"], blk["ci_ub"]], **TOL)
    assert tf.pooled.k == len(ref["yi"]) + blk["k0"]
    assert len(tf.filled) == blk["k0"] and tf.pooled.method == method
    # filled studies mirror the k0 most extreme studies of the other side about one centre
    k0 = blk["k0"]
    if k0:
        y = np.array(ref["yi"])
        order = np.argsort(y, kind="stable")
        partner = order[-k0:] if blk["side"] == "left" else order[:k0][::-1]
        sums = tf.filled["yi"].to_numpy() + y[partner]
        np.testing.assert_allclose(sums, sums[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(tf.filled["vi"], np.array(ref["vi"])[partner], rtol=1e-12)
        centre = sums[0] / 2
        side = -1 if blk["side"] == "left" else 1
        assert np.all(side * (tf.filled["yi"].to_numpy() - centre) >= 0)


@pytest.mark.parametrize("method", ["DL", "EE"])
def test_trim_and_fill_r0_and_given_side(method):
    # metafor: trimfill(fit, estimator = "R0") and trimfill(fit, side = "left") on dat.bcg
    b = EXTRA["bcg"]
    res = ma.pool(b["yi"], b["vi"], method=method)
    for key, kwargs in ((f"trimfill_r0_{method}", {"estimator": "R0"}),
                        (f"trimfill_left_{method}", {"side": "left"})):
        blk = EXTRA[key]
        tf = ma.trim_and_fill(res, **kwargs)
        assert (tf.k0, tf.side) == (blk["k0"], blk["side"]), key
        np.testing.assert_allclose([tf.pooled.estimate, tf.pooled.se, tf.pooled.tau2],
                                   [blk["estimate"], blk["se"], blk["tau2"]], err_msg=key, **TOL)


@pytest.mark.parametrize("case", CASES)
def test_fail_safe_n_rosenthal(case):
    # metafor: fsn(yi, vi) (Rosenthal 1979, one-tailed alpha = .05)
    ref = _load(case)
    n = _quiet(ma.fail_safe_n, _pool(ref))
    assert n == ref["fsn_rosenthal"] and n.n == ref["fsn_rosenthal"] and n.method == "rosenthal"


def test_fail_safe_n_variants():
    # metafor: fsn(yi, vi, alpha = .01); fsn(yi, type = "Orwin", target = ...) on dat.bcg
    b = EXTRA["bcg"]
    res = ma.pool(b["yi"], b["vi"])
    assert ma.fail_safe_n(res, alpha=0.01) == EXTRA["fsn_rosenthal_a01"]
    assert ma.fail_safe_n(res, method="orwin") == EXTRA["fsn_orwin"]
    assert ma.fail_safe_n(res, method="orwin", target=np.log(0.95)) == EXTRA["fsn_orwin_target"]
    assert ma.fail_safe_n(res, method="orwin", target=np.log(0.95), weighted=True) \
        == EXTRA["fsn_orwin_weighted"]
    assert "Orwin" in ma.fail_safe_n(res, method="orwin").summary()


def test_small_k_warns():
    ref = _load("hine1989_rd")  # k = 6
    res = _pool(ref)
    for f in (ma.egger_test, ma.begg_test, ma.trim_and_fill, ma.fail_safe_n, ma.peese):
        with pytest.warns(StatisticalWarning, match="k = 6"):
            f(res)


def test_no_warning_for_k_at_least_10():
    ref = _load("egger2001_or")  # k = 16
    with warnings.catch_warnings():
        warnings.simplefilter("error", StatisticalWarning)
        ma.egger_test(_pool(ref))
        ma.begg_test(_pool(ref))


def test_input_errors():
    res = _pool(_load("bcg_rr"))
    with pytest.raises(InputError, match="model"):
        ma.egger_test(res, model="glm")
    with pytest.raises(InputError, match="predictor"):
        ma.egger_test(res, predictor="n")
    with pytest.raises(InputError, match="estimator"):
        ma.trim_and_fill(res, estimator="Q1")
    with pytest.raises(InputError, match="side"):
        ma.trim_and_fill(res, side="up")
    with pytest.raises(InputError, match="method"):
        ma.fail_safe_n(res, method="rosenberg2")
    with pytest.raises(InputError, match="PoolResult"):
        ma.begg_test([0.1, 0.2])


def test_summaries_state_method_choices():
    res = _pool(_load("bcg_rr"), method="DL")
    assert "τ² estimator: DL (DerSimonian–Laird)" in ma.egger_test(res).summary()
    assert "exact" in ma.begg_test(res).summary()
    text = ma.trim_and_fill(res).summary()
    assert "L0" in text and "right" in text and "Egger" in text
    assert "one-tailed" in ma.fail_safe_n(res).summary()


def test_egger_result_carries_its_fitted_line():
    # the funnel plot draws the test's line from the result: intercept, slope, their
    # SEs and the predictor per study; for model="lm" the line is the weighted
    # least-squares fit of yi on sei with weights 1/vi (numpy.linalg.lstsq here)
    ref = _load("bcg_rr")
    res = _pool(ref)
    eg = ma.egger_test(res, model="lm")
    y, v = np.array(ref["yi"]), np.array(ref["vi"])
    np.testing.assert_allclose(eg.x, np.sqrt(v))
    np.testing.assert_allclose(eg.yi, y)
    sw = 1 / np.sqrt(v)
    coef = np.linalg.lstsq(np.column_stack([sw, np.ones_like(y)]), y * sw, rcond=None)[0]
    assert eg.intercept == pytest.approx(coef[0], rel=1e-10)
    assert eg.slope == pytest.approx(coef[1], rel=1e-10)
    assert eg.intercept_se == eg.limit_se and eg.intercept_se > 0
    np.testing.assert_allclose(eg.fitted(eg.x), coef[0] + coef[1] * np.sqrt(v))
    pe = ma.peese(res)
    np.testing.assert_allclose(pe.x, v)
