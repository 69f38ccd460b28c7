"""Tests for metaanalysis.models.proportions: GLMM, study intervals, guidance, two-step pooling.

Reference values:
* tests/data/metafor/{pritz1997_proportions,mwa_cement_leakage,mwa_complications_k2}.json,
  key ``GLMM_PLO`` = metafor 3.8-1 ``rma.glmm(measure = "PLO")`` (lme4, nAGQ = 7);
* tests/data/proportions_glmm.json, made by tests/data/proportions_glmm.R (same R and
  metafor; adds Wald/LRT heterogeneity tests, I², H², prediction intervals, cases with
  0/n and n/n studies, and a near-exact nAGQ = 25 fit).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import special, stats

from metaanalysis.errors import InputError
from metaanalysis.models.proportions import (
    FEW_EVENTS,
    pool_glmm,
    pool_proportions,
    proportion_ci,
    proportion_notes,
)

DATA = Path(__file__).parent / "data"
METAFOR = DATA / "metafor"
FILES = ("pritz1997_proportions", "mwa_cement_leakage", "mwa_complications_k2")
EXTRA = json.loads((DATA / "proportions_glmm.json").read_text())
EXTRA_CASES = [name for name in EXTRA if name != "generator"]


@functools.cache
def _glmm(xi: tuple, ni: tuple):
    return pool_glmm(list(xi), list(ni))


def _load(case):
    ref = json.loads((METAFOR / f"{case}.json").read_text())
    xi = tuple(row["xi"] for row in ref["data"])
    ni = tuple(row["ni"] for row in ref["data"])
    return ref, xi, ni


# ----------------------------------------------------------------------------- GLMM vs metafor


@pytest.mark.parametrize("case", FILES)
def test_glmm_matches_metafor_reference_files(case):
    # GLMM_PLO blocks of the shared metafor reference files; tolerance 1e-4 (lme4's
    # nAGQ = 7 quadrature and optimiser stop there; see shared/reference/README.md)
    ref, xi, ni = _load(case)
    g = ref["GLMM_PLO"]
    res = _glmm(xi, ni)
    for key in ("estimate", "se", "ci_lb", "ci_ub", "tau2"):
        assert getattr(res, key) == pytest.approx(g[key], abs=1e-4), key
    back = res.back_transform().iloc[0]
    for key in ("estimate", "ci_lb", "ci_ub"):
        assert back[key] == pytest.approx(g["back"][key], abs=1e-4), key
    assert res.measure == "PLO" and res.method == "GLMM" and res.test == "z"
    assert res.tau2 >= 0


@pytest.mark.parametrize("case", EXTRA_CASES)
def test_glmm_matches_metafor_extra_cases(case):
    # tests/data/proportions_glmm.json (rma.glmm defaults, nAGQ = 7). Cases with tau2 > 0
    # and all-event studies differ from nAGQ = 7 by up to ~5e-4 because 7 nodes are not
    # enough there (see the nAGQ = 25 test below), so 1e-3 here.
    c = EXTRA[case]
    res = _glmm(tuple(c["xi"]), tuple(c["ni"]))
    tol = 1e-4 if c["tau2"] == 0 else 1e-3
    for key in ("estimate", "se", "ci_lb", "ci_ub", "pi_lb", "pi_ub", "tau2"):
        assert getattr(res, key) == pytest.approx(c[key], abs=tol), key
    assert res.p == pytest.approx(c["p"], rel=1e-2)
    # I² in percent: follows tau2, hence 0.02 points where tau2 > 0
    assert res.i2 == pytest.approx(c["i2"], abs=1e-6 if c["tau2"] == 0 else 0.02)
    assert res.h2 == pytest.approx(c["h2"], rel=1e-6 if c["tau2"] == 0 else 1e-3)
    # heterogeneity tests depend on the data only: Wald-type Q (glm's finite
    # approximation of the 0/n limit in R, hence 1e-5) and the likelihood ratio test
    assert res.q == pytest.approx(c["q_wald"], rel=1e-5)
    assert res.q_p == pytest.approx(c["q_wald_p"], rel=1e-5)
    assert res.q_df == c["q_df"]
    lrt = [n for n in res.notes if "likelihood ratio" in n]
    assert lrt and f"likelihood ratio = {c['q_lrt']:.2f}" in lrt[0]


@pytest.mark.parametrize("case", EXTRA_CASES)
def test_glmm_matches_near_exact_quadrature(case):
    # nAGQ = 25 (lme4's maximum) in tests/data/proportions_glmm.json: our quadrature is
    # refined until the log-likelihood settles, so agreement is at lme4's optimiser level
    c = EXTRA[case]
    res = _glmm(tuple(c["xi"]), tuple(c["ni"]))
    ref = c["nAGQ25"]
    assert res.estimate == pytest.approx(ref["estimate"], abs=3e-5)
    assert res.se == pytest.approx(ref["se"], abs=3e-5)
    assert res.tau2 == pytest.approx(ref["tau2"], abs=3e-5)


def _marginal_loglik(xi, ni, mu, tau):
    """Binomial-normal log-likelihood at arrays of (mu, tau), integrated independently of
    pool_glmm's adaptive quadrature: the trapezoid rule on u in [-10, 10] (2001 points;
    spectrally accurate for these smooth, fast-decaying integrands)."""
    x, n = np.asarray(xi, float)[:, None], np.asarray(ni, float)[:, None]
    u = np.linspace(-10.0, 10.0, 2001)
    mu = np.asarray(mu, float).reshape(-1, 1, 1)
    tau = np.asarray(tau, float).reshape(-1, 1, 1)
    eta = mu + tau * u
    logf = x * eta - n * np.logaddexp(0.0, eta) + stats.norm.logpdf(u)
    coef = special.gammaln(n + 1) - special.gammaln(x + 1) - special.gammaln(n - x + 1)
    return np.sum(coef[:, 0] + special.logsumexp(logf, axis=2) + np.log(u[1] - u[0]), axis=1)


@pytest.mark.parametrize("case", ["cement_leakage", "zero_and_hetero", "complications_zero"])
def test_glmm_fit_is_the_likelihood_maximum(case):
    # the fitted (mu, tau) maximises the likelihood integrated by another rule (trapezoid):
    # no point of a grid around it (and along tau >= 0 down to the boundary) is higher,
    # and the central-difference gradient there is ~0 (at tau = 0: the mu component, and
    # a tau step away lowers the likelihood)
    c = EXTRA[case]
    res = _glmm(tuple(c["xi"]), tuple(c["ni"]))
    mu, tau = res.estimate, float(np.sqrt(res.tau2))
    best = _marginal_loglik(c["xi"], c["ni"], mu, tau)[0]
    mus = mu + np.linspace(-0.3, 0.3, 13)
    taus = np.unique(np.r_[np.linspace(0.0, 2.0 * tau + 0.5, 13), tau + np.linspace(-0.01, 0.01, 5)])
    mg, tg = np.meshgrid(mus, taus[taus >= 0.0])
    assert _marginal_loglik(c["xi"], c["ni"], mg, tg).max() <= best + 1e-9
    h = 1e-4
    pts = _marginal_loglik(c["xi"], c["ni"], [mu + h, mu - h, mu, mu], [tau, tau, tau + h, abs(tau - h)])
    assert abs(pts[0] - pts[1]) / (2 * h) < 1e-6  # ~1e-8 at the fit; 3e-6 to 5e-5 if mu is 1e-6 off
    if tau > 0:
        assert abs(pts[2] - pts[3]) / (2 * h) < 1e-6
    else:
        assert pts[2] < best and res.tau2 == 0.0


def test_glmm_tau_at_search_bound_warns_once():
    # 0/10 and 10/10: the likelihood rises with tau without bound on the estimate
    from metaanalysis.errors import ConvergenceWarning

    with pytest.warns(ConvergenceWarning, match="search bound") as record:
        res = pool_glmm([0, 10], [10, 10])
    assert sum(issubclass(w.category, ConvergenceWarning) for w in record) == 1
    assert res.tau2 > 100 and np.isfinite(res.se)


def test_glmm_boundary_is_common_effect_logistic():
    # complications 1/91 and 2/69: tau2 = 0 in metafor; the ML estimate is then the
    # logit of the pooled proportion 3/160 and the SE 1/sqrt(sum n p (1 - p))
    res = _glmm((1, 2), (91, 69))
    p = 3 / 160
    assert res.tau2 == 0.0 and res.i2 == 0.0 and res.h2 == 1.0
    assert res.estimate == pytest.approx(special.logit(p), abs=1e-9)
    assert res.se == pytest.approx(1 / np.sqrt(160 * p * (1 - p)), rel=1e-9)
    assert any("boundary" in n for n in res.notes)


def test_glmm_zero_and_all_event_studies_need_no_correction():
    # a 0/17 study (jvir2014) pools without error and matches metafor (proportions_glmm.json);
    # the displayed yi/vi add 0.5 to its cells, the fit does not use them
    c = EXTRA["complications_zero"]
    res = _glmm(tuple(c["xi"]), tuple(c["ni"]))
    assert res.estimate == pytest.approx(c["estimate"], abs=1e-6)
    assert np.all(np.isfinite(res.yi)) and res.vi[2] == pytest.approx(1 / 0.5 + 1 / 17.5)
    assert np.all(np.isnan(res.weights))


def test_glmm_input_errors():
    with pytest.raises(InputError, match="events"):
        pool_glmm([0, 0], [10, 12])  # MLE at -infinity
    with pytest.raises(InputError, match="events"):
        pool_glmm([12, 3], [10, 12])
    with pytest.raises(InputError, match="total"):
        pool_glmm([1, 2], [0, 12])
    with pytest.raises(InputError, match="events/total"):
        pool_glmm([1, 2], [10])
    with pytest.raises(InputError, match="level"):
        pool_glmm([1, 2], [10, 12], level=95)
    with pytest.raises(InputError, match="level: got 'high'; expected a number between 0 and 1"):
        proportion_ci([1, 2], [10, 12], level="high")  # engine.check_level, shared with pool()
    with pytest.raises(InputError, match="labels"):
        pool_glmm([1, 2], [10, 12], labels=["a"])


def test_glmm_order_invariant_and_unit_printed():
    a = pool_glmm([42, 32, 37, 10], [140, 115, 85, 33], unit="lesions")
    b = pool_glmm([10, 37, 32, 42], [33, 85, 115, 140])
    assert a.estimate == pytest.approx(b.estimate, abs=1e-8)
    assert a.tau2 == pytest.approx(b.tau2, abs=1e-8)
    assert a.unit == "lesions" and "unit: lesions" in a.summary()
    assert "GLMM" in a.summary() and "quadrature" in a.summary()


# ----------------------------------------------------------------------------- study intervals


def test_clopper_pearson_against_beta_quantiles():
    # Clopper & Pearson (1934): lb = Beta(a/2; x, n - x + 1), ub = Beta(1 - a/2; x + 1, n - x),
    # computed here directly from scipy.stats.beta for 1/91 (chen2022 complications)
    lb, ub = proportion_ci([1, 0, 59], [91, 17, 61])
    assert lb[0] == pytest.approx(stats.beta.ppf(0.025, 1, 91), rel=1e-10)
    assert ub[0] == pytest.approx(stats.beta.ppf(0.975, 2, 90), rel=1e-10)
    # 0/17: lb = 0, ub = 1 - 0.025^(1/17)
    assert lb[1] == 0.0 and ub[1] == pytest.approx(1 - 0.025 ** (1 / 17), rel=1e-10)
    # 59/61
    assert lb[2] == pytest.approx(stats.beta.ppf(0.025, 59, 3), rel=1e-10)
    assert ub[2] == pytest.approx(stats.beta.ppf(0.975, 60, 2), rel=1e-10)


def test_wilson_against_formula():
    # Wilson (1927): (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)
    x, n = np.array([1.0, 59.0, 10.0]), np.array([91.0, 61.0, 10.0])
    z = stats.norm.isf(0.05)
    p = x / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    lb, ub = proportion_ci(x, n, method="wilson", level=0.90)
    assert np.allclose(lb, centre - half, rtol=1e-10)
    assert np.allclose(ub[:2], (centre + half)[:2], rtol=1e-10) and ub[2] == 1.0


def test_proportion_ci_errors():
    with pytest.raises(InputError, match="method"):
        proportion_ci([1], [10], method="wald")
    with pytest.raises(InputError, match="events"):
        proportion_ci([11], [10])


# ----------------------------------------------------------------------------- guidance


def test_notes_rules():
    # PFT caveat (Schwarzer et al. 2019) always for PFT; none for other measures here
    assert any(
        "Miller" in n and "Schwarzer" in n for n in proportion_notes([42, 32], [140, 115], "PFT")
    )
    assert proportion_notes([42, 32], [140, 115], "PLO") == ()
    assert proportion_notes([0, 3], [20, 25], "SMD") == ()
    # 0/n or n/n named, GLMM recommended
    notes = proportion_notes([59, 10], [61, 10], "PLO", labels=["khan2018", "x"])
    assert any("x (10/10)" in n and "GLMM" in n for n in notes)
    # few events: 1 + 2 = 3 < FEW_EVENTS
    assert FEW_EVENTS == 10
    assert any(n.startswith("Few events") for n in proportion_notes([1, 2], [91, 69], "PR"))
    # few non-events: 2 + 2 = 4
    assert any(n.startswith("Few non-events") for n in proportion_notes([59, 26], [61, 28], "PAS"))


# ----------------------------------------------------------------------------- two-step pooling


@pytest.mark.parametrize("measure", ["PR", "PLO", "PAS", "PFT"])
@pytest.mark.parametrize("method", ["EE", "DL", "REML"])
def test_two_step_reproduces_metafor_back(measure, method):
    # cement leakage, shared reference file, fits[method]["back"]
    ref, xi, ni = _load("mwa_cement_leakage")
    fit = next(f for f in ref[measure]["fits"] if f["method"] == method)
    res = pool_proportions(xi, ni, measure=measure, method=method)
    back = res.back_transform().iloc[0]
    for key in ("estimate", "ci_lb", "ci_ub"):
        assert back[key] == pytest.approx(fit["back"][key], abs=1e-7), key
    if method != "EE":
        assert back["pi_lb"] == pytest.approx(fit["back"]["pi_lb"], abs=1e-7)


@pytest.mark.parametrize("measure", ["PR", "PLO", "PAS", "PFT"])
@pytest.mark.parametrize("method", ["EE", "DL", "REML"])
def test_zero_and_all_events_pool_under_every_method(measure, method):
    # 0/17 and 10/10 alongside ordinary studies: finite results, back-transform inside
    # [0, 1] for the bounded scales, and the GLMM recommended in the notes
    xi, ni = [59, 26, 0, 10], [61, 28, 17, 10]
    res = pool_proportions(xi, ni, measure=measure, method=method, unit="patients")
    assert np.isfinite(res.estimate) and np.isfinite(res.se) and res.tau2 >= 0
    back = res.back_transform().iloc[0]
    if measure != "PR":
        assert 0.0 <= back["ci_lb"] <= back["estimate"] <= back["ci_ub"] <= 1.0
    assert any("GLMM" in n and "0/17" in n and "10/10" in n for n in res.notes)
    assert res.unit == "patients"


def test_glmm_via_pool_proportions():
    c = EXTRA["local_control"]
    res = pool_proportions(c["xi"], c["ni"], method="GLMM")
    assert res.estimate == pytest.approx(c["estimate"], abs=1e-6)
    with pytest.raises(InputError, match="measure"):
        pool_proportions(c["xi"], c["ni"], measure="PFT", method="GLMM")


def test_pool_proportions_prints_each_guidance_note_once():
    # pool() already adds proportion_notes for a frame with events/total; the wrapper
    # must not add them a second time (found by the doctest of pool_proportions).
    res = pool_proportions([0, 3, 5], [20, 25, 30], measure="PFT", method="DL")
    heads = [n.split(":")[0] for n in res.notes]
    assert heads.count("Freeman-Tukey double arcsine") == 1
    assert heads.count("Studies with 0 or all events") == 1
