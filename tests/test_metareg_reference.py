"""Meta-regression with every τ² estimator and test against R metafor.

Reference values: tests/data/metareg_reference.json, made by
tests/data/metareg_reference.R (R 4.2.2, metafor 3.8-1, ``rma.uni(mods = ...)``
with ``threshold = tol = 1e-12``; ``predict`` at new moderator values;
``confint`` for the Q-profile intervals).  Five cases: dat.bcg with ablat, with
ablat + year (p = 3) and with the categorical alloc; dat.raudenbush1985 with
weeks; dat.molloy2014 with meanage — 11 methods × 3 tests each.

Tolerances: 1e-8 relative for closed-form estimators, 1e-6 for iterative ones
and the Q-profile limits (absolute 1e-9 near 0).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import metaanalysis as ma
from metaanalysis import engine

REF = json.loads((Path(__file__).parent / "data" / "metareg_reference.json").read_text())
ITERATIVE = {"ML", "REML", "EB", "PM", "PMM"}
# engine key <- metafor key, per coefficient / per row
COEF = {"coef": "beta", "coef_se": "se", "coef_stat": "stat", "coef_p": "pval",
        "coef_ci_lb": "ci_lb", "coef_ci_ub": "ci_ub"}
ROW = {"tau2": "tau2", "se_tau2": "se_tau2", "q": "qe", "q_p": "qe_p", "qm": "qm",
       "qm_p": "qm_p", "qm_df": "qm_df", "qm_df2": "qm_df2", "i2": "i2", "h2": "h2",
       "tau2_ci_lb": "tau2_ci_lb", "tau2_ci_ub": "tau2_ci_ub", "i2_ci_lb": "i2_ci_lb",
       "i2_ci_ub": "i2_ci_ub", "h2_ci_lb": "h2_ci_lb", "h2_ci_ub": "h2_ci_ub"}
PROFILE = {"tau2_ci_lb", "tau2_ci_ub", "i2_ci_lb", "i2_ci_ub", "h2_ci_lb", "h2_ci_ub"}


def _cases():
    for case in REF["cases"]:
        for f in case["fits"]:
            yield pytest.param(case, f, id=f"{case['name']}-{f['method']}-{f['test']}")


ALL = list(_cases())


def _exp(x):
    return np.nan if x is None else np.asarray(x, dtype=float)


def _close(got, exp, tol, what):
    got = np.asarray(got, dtype=float)
    exp = np.asarray(exp, dtype=float)
    nan = np.isnan(exp)
    assert np.array_equal(np.isnan(got), nan), (what, got, exp)
    np.testing.assert_allclose(got[~nan], exp[~nan], rtol=tol, atol=tol * 1e-3, err_msg=what)


@pytest.fixture(scope="module")
def fits():
    """One engine call per (case, method, test), shared by the tests below."""
    out = {}
    for case in REF["cases"]:
        X = np.array(case["X"])
        for f in case["fits"]:
            out[case["name"], f["method"], f["test"]] = engine.fit(
                case["yi"], case["vi"], X=X, method=f["method"], test=f["test"])
    return out


@pytest.mark.parametrize("case, ref", ALL)
def test_engine_matches_metafor(case, ref, fits):
    out = fits[case["name"], ref["method"], ref["test"]]
    assert out["converged"][0]
    tol = 1e-6 if ref["method"] in ITERATIVE else 1e-8
    for key, rkey in COEF.items():
        _close(out[key][0], _exp(ref[rkey]), tol, key)
    _close(out["vcov"][0].ravel(order="F"), _exp(ref["vb"]), tol, "vcov")
    for key, rkey in ROW.items():
        if rkey not in ref:  # no Q-profile interval for EE
            assert ref["method"] == "EE" and np.isnan(out[key][0]), key
            continue
        _close(out[key][0], _exp(ref[rkey]), 1e-6 if key in PROFILE else tol, key)
    if ref["test"] == "z":
        assert np.isnan(out["df"][0])
    else:
        assert out["df"][0] == ref["k"] - ref["p"]


@pytest.mark.parametrize("case, ref", ALL)
def test_predictions_match_metafor(case, ref, fits):
    out = fits[case["name"], ref["method"], ref["test"]]
    newmods = np.array(case["newmods"])
    Xn = np.column_stack([np.ones(len(newmods)), newmods])
    pr = engine.predict(out["coef"], out["vcov"], out["tau2"], Xn, test=ref["test"],
                        df=out["df"])
    tol = 1e-6 if ref["method"] in ITERATIVE else 1e-8
    for key in ("pred", "se", "ci_lb", "ci_ub"):
        _close(pr[key][0], _exp(ref["pred"][key]), tol, key)
    if ref["method"] != "EE":
        for key in ("pi_lb", "pi_ub"):
            _close(pr[key][0], _exp(ref["pred"][key]), tol, key)


def test_every_case_collected():
    assert len(ALL) == 5 * 11 * 3
    assert not any(f.get("error") for _, f in (p.values for p in ALL))


def test_intercept_only_is_the_p1_case():
    # X = a column of ones gives the numbers of the intercept-only model
    case = REF["cases"][0]
    y, v = np.array(case["yi"]), np.array(case["vi"])
    for method in engine.METHODS:
        a = engine.fit(y, v, method=method, test="knha")
        b = engine.fit(y, v, X=np.ones((y.size, 1)), method=method, test="knha")
        for ka, kb in (("estimate", "coef"), ("se", "coef_se"), ("ci_lb", "coef_ci_lb")):
            assert b[kb][0, 0] == pytest.approx(a[ka][0], rel=1e-10), (method, ka)
        for key in ("tau2", "se_tau2", "q", "q_p", "i2", "h2", "tau2_ci_lb", "tau2_ci_ub"):
            assert b[key][0] == pytest.approx(a[key][0], rel=1e-9, nan_ok=True), (method, key)


def test_batch_of_designs_equals_separate_fits():
    # one design per row (B, k, p) = the same fits one at a time; a shared design with
    # NaN-absent studies = the fits of the present studies
    case = REF["cases"][1]
    y, v, X = np.array(case["yi"]), np.array(case["vi"]), np.array(case["X"])
    rng = np.random.default_rng(4)
    perms = [rng.permutation(y.size) for _ in range(4)]
    Xb = np.stack([X[p] for p in perms])
    out = engine.fit(np.tile(y, (4, 1)), np.tile(v, (4, 1)), X=Xb, method="REML", test="knha")
    for i, p in enumerate(perms):
        one = engine.fit(y, v, X=X[p], method="REML", test="knha")
        for key in ("coef", "coef_se", "tau2", "qm", "qm_p", "tau2_ci_ub"):
            np.testing.assert_allclose(out[key][i], one[key][0], rtol=1e-9, err_msg=key)
    Y = np.tile(y, (2, 1))
    Y[1, [0, 5]] = np.nan
    out = engine.fit(Y, np.tile(v, (2, 1)), X=X, method="PM")
    keep = np.isfinite(Y[1])
    one = engine.fit(y[keep], v[keep], X=X[keep], method="PM")
    for key in ("coef", "coef_se", "tau2", "q", "qm", "i2", "se_tau2"):
        np.testing.assert_allclose(out[key][1], one[key][0], rtol=1e-9, err_msg=key)


def test_rank_deficient_rows_are_nan():
    # a subset that leaves a category empty cannot identify its coefficient
    case = REF["cases"][2]
    y, v, X = np.array(case["yi"]), np.array(case["vi"]), np.array(case["X"])
    mask = np.ones((2, y.size), dtype=bool)
    mask[1, X[:, 2] == 1] = False  # drop every "systematic" study
    out = engine.fit(y, v, X=X, mask=mask, method="REML")
    assert np.isfinite(out["coef"][0]).all() and np.isnan(out["coef"][1]).all()
    assert np.isnan(out["tau2"][1])


def test_meta_regression_public_api_uses_the_engine():
    case = REF["cases"][0]
    ref = next(f for f in case["fits"] if f["method"] == "SJ" and f["test"] == "adhoc")
    res = ma.meta_regression(case["yi"], case["vi"], np.array(case["X"])[:, 1],
                             method="SJ", test="adhoc")
    np.testing.assert_allclose(res.coef["estimate"], ref["beta"], rtol=1e-8)
    assert res.se_tau2 == pytest.approx(ref["se_tau2"], rel=1e-8)
    assert res.r2 == pytest.approx(ref["r2"], rel=1e-8)


def test_pool_many_with_mods_is_batch_meta_regression():
    # pool_many(mods=...) equals meta_regression row by row: a shared design (with
    # absent studies) and one design per row; metafor's numbers on the reference row
    case = REF["cases"][0]
    y, v, x = np.array(case["yi"]), np.array(case["vi"]), np.array(case["X"])[:, 1]
    rng = np.random.default_rng(8)
    Y = y + rng.normal(0, 0.3, (5, y.size))
    Y[0] = y
    Y[3, 2] = np.nan
    V = np.tile(v, (5, 1))
    V[3, 2] = np.nan
    b = ma.pool_many(Y, V, mods=x, method="REML", test="knha", qprofile=True)
    ref = next(f for f in case["fits"] if f["method"] == "REML" and f["test"] == "knha")
    np.testing.assert_allclose(b.coef[0], ref["beta"], rtol=1e-6)
    assert b.tau2_ci_ub[0] == pytest.approx(ref["tau2_ci_ub"], rel=1e-6)
    for i in range(5):
        keep = np.isfinite(Y[i])
        one = ma.meta_regression(Y[i, keep], V[i, keep], x[keep], method="REML", test="knha")
        np.testing.assert_allclose(b.coef[i], one.coef["estimate"], rtol=1e-8)
        np.testing.assert_allclose(b.coef_p[i], one.coef["p"], rtol=1e-8)
        assert b.qm[i] == pytest.approx(one.qm, rel=1e-8)
        assert b.se_tau2[i] == pytest.approx(one.se_tau2, rel=1e-8)
    assert b.names == ("intrcpt", "mod") and len(b.to_frame()) == 5
    per_row = ma.pool_many(Y[:2], V[:2], mods=np.stack([x[:, None], x[::-1, None]]),
                           method="DL")
    one = ma.meta_regression(Y[1], V[1], x[::-1], method="DL")
    np.testing.assert_allclose(per_row.coef[1], one.coef["estimate"], rtol=1e-9)
    pr = b.predict(np.array([[1.0, 30.0]]))
    assert pr["pred"][0, 0] == pytest.approx(b.coef[0, 0] + 30 * b.coef[0, 1], rel=1e-12)
