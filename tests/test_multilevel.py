"""pool_mv against metafor's rma.mv, robust() and clubSandwich.

Reference values: tests/data/rma_mv_reference.json, written by
tests/data/rma_mv_reference.R (R 4.2.2, metafor 3.8-1, clubSandwich 0.5.8) for
dat.konstantopoulos2011 (three-level), dat.ishak2007 (repeated measures, every
structure, V from vcalc with phi^|Δt| and with a constant rho),
dat.berkey1998 (multivariate, given V) and a synthetic pain data set with five
time points (values in the JSON).

Tolerances (the issue's): 1e-5 on coefficients, standard errors, confidence
limits (absolute, plus 1e-6 relative for data on a scale of tens such as
ishak2007); 1e-4 on variance components and correlations (absolute, plus
1e-4 relative); prediction limits, which carry the error of τ², 1e-5
absolute plus 1e-5 relative.  Test statistics, p-values, log-likelihoods
and information criteria are checked to 1e-5 relative.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import metaanalysis as ma

REF = json.loads((Path(__file__).parent / "data" / "rma_mv_reference.json").read_text())
DATA = REF["datasets"]
CASES = REF["cases"]
STUDY = {"konstantopoulos2011": "district", "ishak2007": "study", "berkey1998": "trial",
         "pain5": "study"}

EST = {"atol": 1e-5, "rtol": 1e-6}
VC = {"atol": 1e-4, "rtol": 1e-4}
STAT = {"atol": 1e-8, "rtol": 1e-5}
PI = {"atol": 1e-5, "rtol": 1e-5}


def vec(x):
    return np.atleast_1d(np.array(x, dtype=float))


def call_args(case):
    """(yi, vi, keyword arguments) of pool_mv for a reference case."""
    ds = DATA[case["data"]]
    kw = {"study": ds[STUDY[case["data"]]], "method": case["method"], "test": case["test"],
          "intercept": case["intercept"]}
    if case["time"] is not None:
        kw["time"] = ds[case["time"]]
        kw["struct"] = case["struct"]
    spec = case["V"]
    if spec["kind"] == "phi":
        kw["phi"] = spec["value"]
    elif spec["kind"] == "rho":
        kw["rho"] = spec["value"]
    elif spec["kind"] == "given":
        kw["V"] = np.array(ds["V"])
    mods = case["mods"]
    if mods["kind"] == "factor":
        kw["mods"] = pd.DataFrame({mods["column"]: pd.Categorical(ds[mods["column"]])})
    elif mods["kind"] == "numeric":
        kw["mods"] = pd.DataFrame({c: ds[c] for c in vec_names(mods["columns"])})
    elif mods["kind"] == "matrix":
        kw["mods"] = pd.DataFrame(np.array(case["fit"]["X"]), columns=case["fit"]["X_names"])
    return np.array(ds["yi"]), np.array(ds["vi"]), kw


def vec_names(x):
    return [x] if isinstance(x, str) else list(x)


@pytest.fixture(scope="session")
def fits():
    """Every reference case fitted once."""
    return {name: ma.pool_mv(*call_args(c)[:2], **call_args(c)[2]) for name, c in CASES.items()}


def close(a, b, tol):
    np.testing.assert_allclose(np.asarray(a, float).ravel(), vec(b).ravel(), **tol)


@pytest.mark.parametrize("name", list(CASES))
def test_fit_matches_rma_mv(fits, name):
    res, f = fits[name], CASES[name]["fit"]
    assert res.converged
    assert list(res.design.shape) == list(np.array(f["X"]).shape)
    np.testing.assert_allclose(res.design.to_numpy(), np.array(f["X"]))
    close(res.coef["estimate"], f["estimate"], EST)
    close(res.coef["se"], f["se"], EST)
    close(res.coef["ci_lb"], f["ci_lb"], EST)
    close(res.coef["ci_ub"], f["ci_ub"], EST)
    close(res.coef["stat"], f["stat"], STAT)
    close(res.coef["p"], f["p"], {"atol": 1e-9, "rtol": 1e-4})
    if f["sigma2"] is not None:
        close(res.sigma2, f["sigma2"], VC)
    if f["tau2"] is not None:
        close(res.tau2, f["tau2"], VC)
        close(res.rho, f["rho"], VC)
    close(res.vcov.to_numpy(), np.array(f["vb"]).ravel(), EST)


@pytest.mark.parametrize("name", list(CASES))
def test_tests_and_fit_statistics_match(fits, name):
    res, f = fits[name], CASES[name]["fit"]
    assert (res.k, res.p, res.parms, res.q_e_df) == (f["k"], f["n_coef"], f["parms"], f["QE_df"])
    close(res.q_e, f["QE"], STAT)
    close(res.q_e_p, f["QEp"], {"atol": 1e-12, "rtol": 1e-4})
    close(res.q_m, f["QM"], STAT)
    close(res.q_m_p, f["QMp"], {"atol": 1e-12, "rtol": 1e-4})
    assert res.q_m_df[0] == vec(f["QMdf"])[0]
    if f["ddf"] is not None:
        assert res.df == vec(f["ddf"])[0] and res.q_m_df[1] == vec(f["QMdf"])[1]
    else:
        assert res.df is None and res.q_m_df[1] is None
    for key, ours in (("ll", res.loglik), ("dev", res.deviance), ("AIC", res.aic),
                      ("BIC", res.bic), ("AICc", res.aicc)):
        close(ours, f[key], STAT)
    close(res.fit_stats.loc["ll", "ML"], f["ll_ML"], STAT)
    close(res.fit_stats.loc["ll", "REML"], f["ll_REML"], STAT)


def _predict_args(res, case, block):
    newmods = block["newmods"]
    if newmods is not None:
        newmods = np.array(newmods, float)
    levels = block["tau2_levels"]
    if levels is not None:  # R gives positions (1-based); pool_mv takes the time values
        levels = [res.levels[int(i) - 1] for i in vec(levels)]
    return newmods, levels


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c["predict"]])
def test_predict_matches(fits, name):
    res, case = fits[name], CASES[name]
    for block in case["predict"]:
        newmods, levels = _predict_args(res, case, block)
        out = res.predict(newmods=newmods, tau2_levels=levels)
        for col in ("pred", "se", "ci_lb", "ci_ub"):
            close(out[col], block[col], EST)
        if block["pi_lb"] is None or all(v is None for v in np.atleast_1d(block["pi_lb"])):
            assert out["pi_lb"].isna().all()
        else:  # the PI also carries the error of τ² (1e-4), hence 1e-5 relative
            close(out["pi_lb"], block["pi_lb"], PI)
            close(out["pi_ub"], block["pi_ub"], PI)


ROBUST = [n for n, c in CASES.items() if c["robust"]]


@pytest.mark.parametrize("name", ROBUST)
def test_robust_cr1_matches_metafor(fits, name):
    res, r = fits[name].robust(type="CR1"), CASES[name]["robust"]["cr1"]
    assert res.robust_type == "CR1" and res.n_clusters == r["n"]
    close(res.coef["se"], r["se"], EST)
    close(res.coef["ci_lb"], r["ci_lb"], EST)
    close(res.coef["ci_ub"], r["ci_ub"], EST)
    close(res.coef["p"], r["p"], {"atol": 1e-9, "rtol": 1e-4})
    assert res.df == vec(r["df"])[0]
    close(res.q_m, r["QM"], STAT)
    close(res.q_m_p, r["QMp"], {"atol": 1e-12, "rtol": 1e-4})
    assert res.q_m_df == tuple(vec(r["QMdf"]))


@pytest.mark.parametrize("name", ROBUST)
def test_robust_cr2_matches_clubsandwich(fits, name):
    res, r = fits[name].robust(), CASES[name]["robust"]["cr2"]
    assert res.robust_type == "CR2"
    close(res.vcov.to_numpy(), np.array(r["vb"]).ravel(), EST)
    close(res.coef["se"], r["se"], EST)
    close(res.coef["df"], r["cs_df"], {"atol": 1e-6, "rtol": 1e-5})
    close(res.coef["p"], r["cs_p"], {"atol": 1e-9, "rtol": 1e-4})
    close(res.coef["ci_lb"], r["ci_lb"], EST)
    close(res.coef["ci_ub"], r["ci_ub"], EST)
    close(res.q_m, r["QM"], STAT)
    close(res.q_m_df[1], vec(r["QMdf"])[1], {"atol": 1e-6, "rtol": 1e-5})
    close(res.q_m_p, r["QMp"], {"atol": 1e-12, "rtol": 1e-4})
    for c in r.get("contrasts") or []:
        C = np.array(c["C"], float).reshape(-1, res.p)
        w = res.wald_test(C)
        close(w["stat"], c["Fstat"], STAT)
        close(w["df_denom"], c["df_denom"], {"atol": 1e-6, "rtol": 1e-5})
        close(w["p"], c["p"], {"atol": 1e-12, "rtol": 1e-4})
        if c["linear"] is not None:
            lc = res.contrast(C).iloc[0]
            close(lc["estimate"], c["linear"]["est"], EST)
            close(lc["se"], c["linear"]["se"], EST)
            close(lc["df"], c["linear"]["df"], {"atol": 1e-6, "rtol": 1e-5})
            close(lc["ci_lb"], c["linear"]["ci_lb"], EST)
            close(lc["p"], c["linear"]["p"], {"atol": 1e-9, "rtol": 1e-4})


@pytest.mark.parametrize("name", list(REF["vcalc"]))
def test_vcalc_matches(name):
    spec = REF["vcalc"][name]
    ds = DATA[spec["data"]]
    V = ma.vcalc(ds["vi"], ds[spec["cluster"]], time=ds[spec["time"]],
                 rho=spec.get("rho"), phi=spec.get("phi"))
    from metaanalysis.models.vcalc import study_rows

    cluster = ds[spec["cluster"]]
    rows = study_rows(cluster)
    assert len(rows) == len(spec["blocks"])
    for idx in rows:
        block = np.array(spec["blocks"][str(cluster[idx[0]])], float).reshape(idx.size, idx.size)
        np.testing.assert_allclose(V[np.ix_(idx, idx)], block, rtol=1e-12, atol=1e-15)
    assert np.count_nonzero(V) == sum(r.size ** 2 for r in rows)  # nothing outside the blocks


def test_count_of_reference_values():
    """The conformance tests above compare this many numbers (printed for the report)."""
    n = 0
    for c in CASES.values():
        f = c["fit"]
        n += 4 * len(vec(f["estimate"])) + len(np.array(f["vb"]).ravel())
        n += sum(len(vec(f[key])) for key in ("sigma2", "tau2", "rho") if f[key] is not None)
        n += 13
        for b in c["predict"]:
            n += 6 * len(vec(b["pred"]))
        if c["robust"]:
            n += 2 * (5 * len(vec(f["estimate"])) + 4)
    assert n > 1500
