"""Tests for metaanalysis.models.bayes (pool_bayes, prior_sensitivity) and metaanalysis.models.priors.

The reference is an independent brute-force integration written here: the
joint posterior p(μ, τ | y) ∝ p(τ) Πᵢ N(yᵢ; μ, vᵢ + τ²) evaluated on a dense
2-D (μ, τ) grid, integrated with Simpson's rule, marginal CDFs inverted by a
cubic spline.  It shares no code with the module (no conditional-normal
algebra, no log-τ quadrature).  Data: tests/data/metafor/*.json (yi/vi as
computed by metafor's escalc).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, interpolate, stats

import metaanalysis as ma
from metaanalysis.errors import InputError
from metaanalysis.models import priors as pr

DATA = Path(__file__).parent / "data" / "metafor"


def _load(name):
    return json.loads((DATA / f"{name}.json").read_text())


def _plo_k2():
    d = _load("mwa_complications_k2")["PLO"]  # complications 1/91 and 2/69, logit scale
    return np.array(d["yi"]), np.array(d["vi"])


def _vas():
    d = _load("mwa_vas_about1month")  # VAS mean change (pre - post), r = 0.5, k = 5
    return (np.array(d["MC"]["yi"]), np.array(d["MC"]["vi"]),
            np.array([s["n"] for s in d["data"]], dtype=float))


def _bcg():
    d = _load("bcg_rr")  # BCG vaccine trials, log risk ratios, k = 13
    return np.array(d["yi"]), np.array(d["vi"])


def _simpson_weights(n, h):
    w = np.ones(n)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return w * h / 3.0


def _invert(grid, cdf, p):
    spline = interpolate.CubicSpline(grid, cdf - p)
    roots = spline.roots(extrapolate=False)
    return float(roots[0])


def brute_force(y, v, prior_pdf, tau_max, mu_lo, mu_hi, n_tau=1001, n_mu=1201, mu0=None):
    """Dense-grid 2-D posterior over (μ, τ); returns a dict of summaries."""
    tau = np.linspace(0.0, tau_max, n_tau)
    mu = np.linspace(mu_lo, mu_hi, n_mu)
    with np.errstate(divide="ignore"):
        logp = np.log(prior_pdf(tau))[:, None] + np.zeros((1, n_mu))
    for yi, vi in zip(y, v):
        s2 = vi + tau[:, None] ** 2
        logp += -0.5 * np.log(s2) - 0.5 * (yi - mu[None, :]) ** 2 / s2
    if mu0 is not None:
        logp += stats.norm(*mu0).logpdf(mu)[None, :]
    p = np.exp(logp - logp.max())
    wt, wm = _simpson_weights(n_tau, tau[1] - tau[0]), _simpson_weights(n_mu, mu[1] - mu[0])
    z = wt @ p @ wm
    f_mu = (wt @ p) / z
    f_tau = (p @ wm) / z
    cdf_mu = integrate.cumulative_simpson(f_mu, x=mu, initial=0.0)
    cdf_tau = integrate.cumulative_simpson(f_tau, x=tau, initial=0.0)
    out = {"mu_mean": float(np.sum(wm * mu * f_mu)), "tau_mean": float(np.sum(wt * tau * f_tau)),
           "mu_sd": float(np.sqrt(np.sum(wm * mu**2 * f_mu) - np.sum(wm * mu * f_mu) ** 2))}
    for q in (0.025, 0.5, 0.975):
        out[f"mu_{q}"] = _invert(mu, cdf_mu, q)
        out[f"tau_{q}"] = _invert(tau, cdf_tau, q)
    # posterior mean of each study's theta_i: E[B mu + (1 - B) y_i]
    out["shrink_mean"] = []
    for yi, vi in zip(y, v):
        b = vi / (vi + tau[:, None] ** 2)
        out["shrink_mean"].append(float(wt @ ((b * mu[None, :] + (1 - b) * yi) * p) @ wm / z))

    def pred_cdf(x):  # P(theta_new <= x): theta_new | mu, tau ~ N(mu, tau^2)
        with np.errstate(divide="ignore", invalid="ignore"):
            phi = stats.norm.cdf((x - mu[None, :]) / tau[:, None])
        phi[0] = (mu <= x).astype(float)
        return float(wt @ (phi * p) @ wm / z)

    out["pred_cdf"] = pred_cdf
    return out


CASES = [
    # name, data loader, prior, tau_max, mu range
    ("PLO k=2 HN(0.5)", _plo_k2, stats.halfnorm(scale=0.5), 5.0, (-12.0, 4.0)),
    ("PLO k=2 HN(1.0)", _plo_k2, stats.halfnorm(scale=1.0), 9.0, (-16.0, 8.0)),
    ("VAS k=5 HN(0.85)", lambda: _vas()[:2], stats.halfnorm(scale=0.85), 5.0, (-3.0, 13.0)),
    ("BCG k=13 HN(0.5)", _bcg, stats.halfnorm(scale=0.5), 3.5, (-3.0, 1.5)),
    ("BCG k=13 Turner LN", _bcg, pr.turner_prior(), 4.0, (-3.0, 1.5)),
]


@pytest.mark.parametrize("name,loader,prior,tau_max,mu_range", CASES, ids=[c[0] for c in CASES])
def test_against_dense_grid(name, loader, prior, tau_max, mu_range):
    y, v = loader()
    res = ma.pool_bayes(y, v, tau_prior=prior)
    ref = brute_force(y, v, prior.pdf, tau_max, *mu_range)
    tol = 1e-5  # issue 7 asks for 1e-4; measured agreement is below 1e-6
    assert res.mu.ci_lb == pytest.approx(ref["mu_0.025"], abs=tol)
    assert res.mu.median == pytest.approx(ref["mu_0.5"], abs=tol)
    assert res.mu.ci_ub == pytest.approx(ref["mu_0.975"], abs=tol)
    assert res.tau.ci_lb == pytest.approx(ref["tau_0.025"], abs=tol)
    assert res.tau.median == pytest.approx(ref["tau_0.5"], abs=tol)
    assert res.tau.ci_ub == pytest.approx(ref["tau_0.975"], abs=tol)
    assert res.mu.mean == pytest.approx(ref["mu_mean"], abs=tol)
    assert res.mu.sd == pytest.approx(ref["mu_sd"], abs=tol)
    assert res.tau.mean == pytest.approx(ref["tau_mean"], abs=tol)
    np.testing.assert_allclose(res.shrinkage["mean"], ref["shrink_mean"], atol=tol)
    a = (1 - res.level) / 2
    assert ref["pred_cdf"](res.pi_lb) == pytest.approx(a, abs=tol)
    assert ref["pred_cdf"](res.pi_ub) == pytest.approx(1 - a, abs=tol)


def test_normal_mu_prior_against_dense_grid():
    y, v = _plo_k2()
    mu_prior = stats.norm(-3.0, 1.5)
    res = ma.pool_bayes(y, v, tau_prior=stats.halfnorm(scale=0.5), mu_prior=mu_prior)
    ref = brute_force(y, v, stats.halfnorm(scale=0.5).pdf, 5.0, -12.0, 4.0, mu0=(-3.0, 1.5))
    for q, got in ((0.025, res.mu.ci_lb), (0.5, res.mu.median), (0.975, res.mu.ci_ub)):
        assert got == pytest.approx(ref[f"mu_{q}"], abs=1e-4)
    assert res.tau.median == pytest.approx(ref["tau_0.5"], abs=1e-4)
    assert "normal(mean=-3, sd=1.5)" in res.summary()


@functools.lru_cache(maxsize=1)
def _legendre_600():
    """600-point Gauss–Legendre nodes and weights on [-40, 40] (an eigenproblem of order
    600: computed once, not at every call)."""
    u, wu = np.polynomial.legendre.leggauss(600)
    return 40 * u, 40 * wu


def _quad_tau_cdf(y, v, prior_pdf, x):
    """P(τ ≤ x) by nested adaptive quadrature (independent of the grid in the module)."""
    u, wu = _legendre_600()  # μ = c + scale·u, u in [-40, 40]
    c = float(np.mean(y))

    def lik(t):
        scale = math.sqrt(float(np.mean(v)) + t * t)
        m = c + scale * u
        logl = sum(stats.norm.logpdf(yi, m, math.sqrt(vi + t * t)) for yi, vi in zip(y, v))
        return float(np.sum(wu * np.exp(logl))) * scale

    # integrate in s = log τ (the τ^-3 tail becomes e^-2s), split at x
    def dens(s):
        return prior_pdf(math.exp(s)) * lik(math.exp(s)) * math.exp(s)
    num = integrate.quad(dens, -40, math.log(x), limit=400, epsabs=0, epsrel=1e-11)[0]
    rest = integrate.quad(dens, math.log(x), 40, limit=400, epsabs=0, epsrel=1e-11)[0]
    return num / (num + rest)


def test_half_cauchy_heavy_tail_quantiles_by_quad():
    # k = 2 with a half-Cauchy prior: the posterior of τ has a τ^-3 tail, so E[τ²]
    # and the SD of μ do not exist; quantiles must still be exact.
    y, v = _plo_k2()
    prior = stats.halfcauchy(scale=0.5)
    res = ma.pool_bayes(y, v, tau_prior=prior)
    assert _quad_tau_cdf(y, v, prior.pdf, res.tau.median) == pytest.approx(0.5, abs=1e-6)
    assert _quad_tau_cdf(y, v, prior.pdf, res.tau.ci_ub) == pytest.approx(0.975, abs=1e-6)
    assert math.isinf(res.tau.sd) and math.isinf(res.mu.sd)
    assert math.isfinite(res.tau.mean)


def test_k1_tau_posterior_is_the_prior():
    # with one study and a flat μ prior the likelihood of τ is constant
    prior = stats.halfnorm(scale=0.5)
    res = ma.pool_bayes([0.3], [0.04], tau_prior=prior)
    assert res.tau.median == pytest.approx(prior.median(), abs=1e-8)
    assert res.tau.ci_ub == pytest.approx(prior.ppf(0.975), abs=1e-8)
    assert res.tau.mean == pytest.approx(prior.mean(), abs=1e-8)
    assert res.mu.median == pytest.approx(0.3, abs=1e-10)
    # μ | data is a scale mixture of N(0.3, 0.04 + τ²): check one quantile by quad
    cdf = integrate.quad(lambda t: prior.pdf(t) * stats.norm.cdf(res.mu.ci_ub, 0.3,
                                                                 math.sqrt(0.04 + t * t)),
                         0, np.inf)[0]
    assert cdf == pytest.approx(0.975, abs=1e-8)


def test_tau_near_zero_gives_common_effect():
    # property: a τ prior concentrated at 0 gives the common-effect (EE) answer;
    # reference: metafor rma(method = "EE") in bcg_rr.json
    ee = next(f for f in _load("bcg_rr")["fits"] if f["method"] == "EE")
    y, v = _bcg()
    res = ma.pool_bayes(y, v, tau_prior=stats.halfnorm(scale=1e-6))
    assert res.mu.median == pytest.approx(ee["estimate"], abs=1e-6)
    assert res.mu.sd == pytest.approx(ee["se"], abs=1e-6)
    assert res.mu.ci_lb == pytest.approx(ee["ci_lb"], abs=1e-6)
    assert res.mu.ci_ub == pytest.approx(ee["ci_ub"], abs=1e-6)


def test_shift_and_order_invariance():
    y, v = _bcg()
    prior = stats.halfnorm(scale=0.5)
    base = ma.pool_bayes(y, v, tau_prior=prior)
    shifted = ma.pool_bayes(y + 2.5, v, tau_prior=prior)
    perm = np.random.default_rng(1).permutation(y.size)
    permuted = ma.pool_bayes(y[perm], v[perm], tau_prior=prior)
    assert shifted.mu.median == pytest.approx(base.mu.median + 2.5, abs=1e-9)
    assert shifted.tau.ci_ub == pytest.approx(base.tau.ci_ub, abs=1e-9)
    assert permuted.mu.ci_lb == pytest.approx(base.mu.ci_lb, abs=1e-9)
    again = ma.pool_bayes(y, v, tau_prior=prior)
    assert again.mu.ci_lb == base.mu.ci_lb and again.tau.median == base.tau.median


def test_shortest_intervals():
    y, v = _plo_k2()
    eq = ma.pool_bayes(y, v, tau_prior=stats.halfnorm(scale=0.5))
    sh = ma.pool_bayes(y, v, tau_prior=stats.halfnorm(scale=0.5), shortest=True)
    for which, e, s in (("mu", eq.mu, sh.mu), ("tau", eq.tau, sh.tau)):
        assert s.ci_ub - s.ci_lb <= e.ci_ub - e.ci_lb + 1e-9
        mass = sh.cdf(which, s.ci_ub) - sh.cdf(which, s.ci_lb)
        assert float(mass) == pytest.approx(0.95, abs=1e-7)
    # the half-normal posterior of τ has its mode at 0: shortest interval starts at 0
    assert sh.tau.ci_lb == 0.0
    assert sh.interval == "shortest" and "shortest" in sh.summary()


def test_probabilities_and_back_transform():
    y, v = _plo_k2()
    res = ma.pool_bayes(y, v, tau_prior=stats.halfnorm(scale=0.5), measure="PLO")
    assert res.prob_mu_greater(res.mu.median) == pytest.approx(0.5, abs=1e-9)
    assert res.prob("mu", greater=res.mu.ci_lb, less=res.mu.ci_ub) == pytest.approx(0.95, abs=1e-9)
    assert res.prob("tau", less=res.tau.median) == pytest.approx(0.5, abs=1e-9)
    bt = res.back_transform().iloc[0]
    assert bt["estimate"] == pytest.approx(1 / (1 + math.exp(-res.mu.median)), rel=1e-12)
    assert bt["pi_ub"] == pytest.approx(1 / (1 + math.exp(-res.pi_ub)), rel=1e-12)


def test_density_integrates_to_one():
    y, v = _bcg()
    res = ma.pool_bayes(y, v, tau_prior=stats.halfnorm(scale=0.5))
    for which in ("mu", "tau", "predictive"):
        x = res.grid(which, 4001)
        area = integrate.simpson(res.density(which, x), x=x)
        assert area == pytest.approx(1.0, abs=2e-3)


def test_dataframe_input_mirrors_pool():
    y, v, n = _vas()
    df = pd.DataFrame({"study": ["Khan 2018", "Wang 2022", "Zhang 2024", "Wu 2021", "JVIR 2014"],
                       "yi": y, "vi": v, "ni": n})
    df.attrs["measure"] = "MC"
    res = ma.pool_bayes(df)  # default: HN(UISD/2), UISD from vi and ni
    u = math.sqrt(n.sum() / np.sum(1 / v))
    assert res.measure == "MC" and res.labels[0] == "Khan 2018"
    assert res.prior_text == f"half-normal(scale={u / 2:.6g})"
    assert any("chosen automatically" in note for note in res.notes)
    assert "Khan 2018" in res.summary() and "Prior on τ: half-normal" in res.summary()


def test_display_and_frame():
    y, v = _plo_k2()
    res = ma.pool_bayes(y, v, tau_prior=stats.halfnorm(scale=0.5), labels=["Chen", "Khan"])
    frame = res.to_frame()
    assert list(frame.index) == ["mu", "tau", "predictive"]
    assert frame.loc["mu", "median"] == res.mu.median
    assert frame.attrs["tau_prior"] == "half-normal(scale=0.5)"
    html = res._repr_html_()
    assert html.startswith("<div") and "half-normal(scale=0.5)" in html
    assert repr(res) == res.summary()
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.k = 3  # frozen


def test_prior_sensitivity_table():
    y, v = _bcg()
    tab = ma.prior_sensitivity(y, v, measure="RR")
    assert list(tab.index) == ["half-normal(0.5)", "half-normal(1.0)", "half-Cauchy(0.5)",
                               "log-normal (Turner 2012)"]
    one = ma.pool_bayes(y, v, tau_prior=stats.halfcauchy(scale=0.5))
    assert tab.loc["half-Cauchy(0.5)", "mu_ci_ub"] == pytest.approx(one.mu.ci_ub, abs=1e-12)
    # heavier prior tails, wider τ intervals (BCG is strongly heterogeneous)
    assert tab.loc["half-normal(1.0)", "tau_ci_ub"] > tab.loc["half-normal(0.5)", "tau_ci_ub"]


def test_callable_prior_matches_frozen():
    y, v = _vas()[:2]
    frozen = ma.pool_bayes(y, v, tau_prior=stats.halfnorm(scale=0.8))
    unnorm = ma.pool_bayes(y, v, tau_prior=lambda t: np.exp(-0.5 * (t / 0.8) ** 2))
    assert unnorm.mu.ci_lb == pytest.approx(frozen.mu.ci_lb, abs=1e-9)
    assert unnorm.tau.ci_ub == pytest.approx(frozen.tau.ci_ub, abs=1e-9)
    assert unnorm.prior_text == "user density"


def test_improper_uniform_prior():
    # uniform on τ with a flat μ prior: likelihood ~ τ^-(k-1), so k = 2 is improper
    # and k = 3 is proper (Gelman 2006, Bayesian Anal 1:515)
    def flat(t):
        return np.ones_like(t)
    y, v = _bcg()
    with pytest.raises(InputError, match="improper"):
        ma.pool_bayes(y[:2], v[:2], tau_prior=flat)
    res = ma.pool_bayes(y[:3], v[:3], tau_prior=flat)
    assert res.tau.ci_ub > res.tau.median > 0


@pytest.mark.parametrize("kwargs,match", [
    ({"tau_prior": stats.norm(0, 1)}, "support"),
    ({"tau_prior": "halfnormal"}, "tau_prior"),
    ({"tau_prior": stats.halfnorm(scale=0.5), "mu_prior": stats.t(3)}, "mu_prior"),
    ({"tau_prior": stats.halfnorm(scale=0.5), "level": 1.5}, "level"),
    ({"measure": "MC"}, "ni"),
    ({"measure": None}, "tau_prior"),
])
def test_input_errors(kwargs, match):
    with pytest.raises(InputError, match=match):
        ma.pool_bayes([0.1, 0.4], [0.02, 0.03], **kwargs)


def test_bad_data_errors():
    with pytest.raises(InputError, match="vi"):
        ma.pool_bayes([0.1, 0.4], [0.02, -0.03], tau_prior=stats.halfnorm(scale=0.5))
    with pytest.raises(InputError, match="yi"):
        ma.pool_bayes([0.1, np.nan], [0.02, 0.03], tau_prior=stats.halfnorm(scale=0.5))


def test_priors_helpers():
    # UISD, Röver et al. 2021 Eq. 6: sqrt(sum n / sum 1/v)
    assert pr.uisd([0.04, 0.05], [100, 80]) == pytest.approx(2.0, rel=1e-12)
    # Turner et al. 2012 general setting: tau^2 ~ LN(-2.56, 1.74^2) => median tau = exp(-1.28)
    assert pr.turner_prior().median() == pytest.approx(math.exp(-1.28), rel=1e-12)
    assert pr.turner_prior().ppf(0.975) ** 2 == pytest.approx(
        math.exp(-2.56 + 1.959963984540054 * 1.74), rel=1e-9)
    dist, why = pr.default_tau_prior("OR", [0.1, 0.2])
    assert dist.kwds["scale"] == 0.5 and "Friede" in why


def test_posterior_plot_draws_on_given_axes():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    y, v = _plo_k2()
    res = ma.pool_bayes(y, v, tau_prior=stats.halfnorm(scale=0.5))
    fig = Figure()
    ax = fig.add_subplot()
    out = ma.posterior_plot(res, "tau", ax=ax)
    assert out is ax
    post_line, prior_line = ax.get_lines()[0], ax.get_lines()[-1]
    x, dens = post_line.get_data()
    np.testing.assert_allclose(dens, res.density("tau", x))
    # prior overlaid: the half-normal(0.5) density at the same points
    np.testing.assert_allclose(prior_line.get_ydata(), stats.halfnorm(scale=0.5).pdf(x))
    assert "half-normal(scale=0.5)" in prior_line.get_label()
    ax2 = fig.add_subplot(2, 1, 2)
    ma.posterior_plot(res, "mu", ax=ax2)  # flat prior on μ: posterior, median line only
    assert len(ax2.get_lines()) == 1
    with pytest.raises(InputError, match="which"):
        ma.posterior_plot(res, "sigma", ax=ax2)
