"""Single proportions near 0 and 1: the binomial-normal GLMM, exact study intervals, guidance.

Two-step pooling of proportions (transform, weight by inverse variance, pool)
misleads when studies are small and proportions sit near 0 or 1: the
within-study variances depend on the estimates, continuity corrections are
arbitrary, and the Freeman–Tukey back-transformation can be badly off
(Schwarzer et al. 2019, Res Synth Methods 10:476; Lin & Chu 2020,
Epidemiology 31:713).  This module holds

* :func:`pool_glmm` — the one-step binomial-normal random-intercept model on the
  logit scale (Hamza, van Houwelingen & Stijnen 2008, J Clin Epidemiol 61:41;
  Stijnen, Hamza & Özdemir 2010, Stat Med 29:3046), fitted by maximum likelihood
  with adaptive Gauss–Hermite quadrature;
* :func:`proportion_ci` — Clopper–Pearson and Wilson intervals for each study;
* :func:`proportion_notes` — the guidance printed with two-step proportion results.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import optimize, special, stats

from metaanalysis import engine
from metaanalysis.effects.study_data import as_numbers, check_labels
from metaanalysis.effects.transforms import PROPORTION_MEASURES as _PROPORTION_MEASURES
from metaanalysis.engine.batch import check_level
from metaanalysis.errors import ConvergenceWarning, InputError

__all__ = ["FEW_EVENTS", "pool_glmm", "pool_proportions", "proportion_ci", "proportion_notes"]

#: Total events (or non-events) below which the GLMM is recommended.  Two-step
#: pooling rests on within-study normality, which needs roughly ten events per
#: study; with fewer than ten events in *total*, the logit variances are driven
#: by a handful of counts (Stijnen et al. 2010; Lin & Chu 2020).
FEW_EVENTS = 10

#: largest count accepted: whole numbers are exact in double precision up to 2**53
MAX_COUNT = 2.0**53

_NODES_START = 15
_NODES_MAX = 201
_LL_TOL = 1e-9


# --------------------------------------------------------------------------- input


def _counts(events, total) -> tuple[np.ndarray, np.ndarray]:
    """Validate events/total and return them as float arrays."""
    x = as_numbers(events, "events", ndim=None)
    n = as_numbers(total, "total", ndim=None)
    x, n = np.atleast_1d(x), np.atleast_1d(n)
    if x.ndim != 1 or n.ndim != 1 or x.shape != n.shape:
        raise InputError(
            f"events/total: got shapes {x.shape} and {n.shape}; expected two 1-D arrays of equal length"
        )
    if x.size == 0:
        raise InputError("events: got no studies; expected at least one")
    for name, arr in (("events", x), ("total", n)):
        _first_bad(name, arr, ~np.isfinite(arr), "expected finite counts (no NaN)")
        _first_bad(name, arr, (arr != np.round(arr)) | (arr < 0),
                   "expected non-negative whole numbers")
        _first_bad(name, arr, arr > MAX_COUNT,
                   f"expected counts up to {MAX_COUNT:g} (exact whole numbers in double precision)")
    _first_bad("total", n, n < 1, "expected every total to be at least 1")
    if np.any(x > n):
        i = int(np.flatnonzero(x > n)[0])
        raise InputError(f"events: got {x[i]:g} at index {i} with total {n[i]:g}; expected "
                         "0 <= events <= total")
    return x, n


def _first_bad(name, arr, bad, expected):
    if np.count_nonzero(bad):
        idx = np.flatnonzero(bad)
        more = f" (and {idx.size - 1} more)" if idx.size > 1 else ""
        raise InputError(f"{name}: got {float(arr[idx[0]])!r} at index {int(idx[0])}{more}; "
                         f"{expected}")


# --------------------------------------------------------------------------- GLMM likelihood


def _display_logits(x, n):
    """Study logits and variances as escalc's PLO (0.5 added to the cells of 0/n and n/n studies)."""
    ext = (x == 0) | (x == n)
    xa = np.where(ext, x + 0.5, x)
    na = np.where(ext, n + 1.0, n)
    return np.log(xa / (na - xa)), 1.0 / xa + 1.0 / (na - xa)


def _log_binom_coef(x, n):
    return special.gammaln(n + 1) - special.gammaln(x + 1) - special.gammaln(n - x + 1)


def _binom_loglik(x, n, eta):
    """log Binomial(x | n, expit(eta)) without the binomial coefficient, stable in eta."""
    # x*eta - n*log(1 + e^eta), with log1p(e^eta) = logaddexp(0, eta)
    return x * eta - n * np.logaddexp(0.0, eta)


def _modes(x, n, mu, tau, start=None):
    """Mode and scale of the integrand in the standardised random effect, per study.

    With ``b = mu + tau u`` and ``u ~ N(0, 1)``, the log integrand
    ``log f(x | mu + tau u) - u^2/2`` is strictly concave in ``u``; its derivative
    ``tau (x - n expit(mu + tau u)) - u`` decreases and has its root in
    ``[-tau (n - x), tau x]``.  Newton steps safeguarded by bisection in that bracket.
    Working in ``u`` keeps the quadrature exact to rounding as ``tau -> 0``.
    """
    lo = -tau * (n - x)
    hi = tau * x
    u = np.clip(np.zeros_like(x) if start is None else start, lo, hi)
    for _ in range(200):
        p = special.expit(mu + tau * u)
        grad = tau * (x - n * p) - u
        curv = tau * tau * n * p * (1.0 - p) + 1.0
        lo = np.where(grad > 0, u, lo)
        hi = np.where(grad < 0, u, hi)
        new = u + grad / curv
        outside = (new < lo) | (new > hi)
        new = np.where(outside, 0.5 * (lo + hi), new)
        done = np.all(np.abs(new - u) <= 1e-14 * (1.0 + np.abs(u)))
        u = new
        if done:
            break
    p = special.expit(mu + tau * u)
    sd = 1.0 / np.sqrt(tau * tau * n * p * (1.0 - p) + 1.0)
    return u, sd


def _study_loglik(x, n, mu, tau, nodes, weights, cache=None):
    """Marginal log-likelihood of each study (binomial coefficient included).

    ``log ∫ Bin(x | n, expit(mu + tau u)) φ(u) du`` by adaptive Gauss–Hermite
    quadrature centred at the mode of the integrand with its curvature as scale
    (Liu & Pierce 1994, Biometrika 81:624; Pinheiro & Bates 1995, J Comput Graph Stat 4:12).
    """
    const = _log_binom_coef(x, n)
    if tau <= 0.0:
        return const + _binom_loglik(x, n, mu)
    u, sd = _modes(x, n, mu, tau, None if cache is None else cache.get("u"))
    if cache is not None:
        cache["u"] = u
    pts = u[:, None] + math.sqrt(2.0) * sd[:, None] * nodes[None, :]
    logf = _binom_loglik(x[:, None], n[:, None], mu + tau * pts) - 0.5 * pts**2
    logw = np.log(weights) + nodes**2 - 0.5 * math.log(2.0 * math.pi)
    return const + np.log(math.sqrt(2.0) * sd) + _logsumexp_rows(logf + logw[None, :])


def _logsumexp_rows(a):
    """``scipy.special.logsumexp(a, axis=1)`` for finite real ``a``, bit for bit (the same
    steps: maxima split out, ``log1p`` of the rest), without its generic-array overhead,
    which dominated the time of a GLMM fit."""
    a_max = np.max(a, axis=1, keepdims=True)
    top = a == a_max
    m = top.sum(axis=1, keepdims=True, dtype=a.dtype)
    s = np.exp(np.where(top, -np.inf, a) - a_max).sum(axis=1, keepdims=True, dtype=a.dtype)
    s = np.where(s == 0, s, s / m)
    return (np.log1p(s) + np.log(m) + a_max)[:, 0]


class _Likelihood:
    """Total log-likelihood with a fixed number of quadrature nodes."""

    def __init__(self, x, n, m):
        self.x, self.n, self.m = x, n, m
        self.nodes, self.weights = np.polynomial.hermite.hermgauss(m)
        self.cache: dict = {}  # last modes, a warm start for the next evaluation

    def __call__(self, mu, tau):
        ll = _study_loglik(self.x, self.n, mu, tau, self.nodes, self.weights, self.cache)
        return float(np.sum(ll))

    def profile_mu(self, tau, start):
        """Maximise over mu for fixed tau (the marginal likelihood is log-concave in mu)."""
        def f(m):
            return -self(m, tau)
        br = (start - 1.0, start + 1.0)
        res = optimize.minimize_scalar(f, bracket=br, method="brent", tol=1e-10)
        return float(res.x), -float(res.fun)


def _fit_ml(x, n, m):
    """ML fit of (mu, tau) with ``m`` nodes; tau's boundary at 0 compared explicitly."""
    lik = _Likelihood(x, n, m)
    # common-effect (tau = 0) fit is closed form: logit of the pooled proportion
    mu0 = float(special.logit(x.sum() / n.sum()))
    ll0 = lik(mu0, 0.0)
    # empirical-logit spread as a scale for the search interval
    y = np.log((x + 0.5) / (n - x + 0.5))
    tau_max = max(10.0, 5.0 * float(np.std(y)) if x.size > 1 else 10.0)

    state = {"mu": mu0}

    def neg_profile(tau):
        mu, ll = lik.profile_mu(tau, state["mu"])
        state["mu"] = mu
        return -ll

    best = (mu0, 0.0, ll0)
    if x.size > 1:
        res = optimize.minimize_scalar(
            neg_profile, bounds=(0.0, tau_max), method="bounded", options={"xatol": 1e-10}
        )
        tau = float(res.x)
        mu, ll = lik.profile_mu(tau, state["mu"])
        if ll > ll0 + 1e-10:
            best = (mu, tau, ll)
        if tau > 0.999 * tau_max:
            warnings.warn(
                f"pool_glmm: tau reached the search bound {tau_max:g}; the between-study "
                "variance is not estimable from these counts",
                ConvergenceWarning,
                stacklevel=3,
            )
    return best, lik


def _hessian(lik, mu, tau, h=1e-4):
    """Observed information from central differences of the log-likelihood in (mu, tau)."""
    f = lik
    if tau <= 0.0:
        d2 = (f(mu + h, 0.0) - 2.0 * f(mu, 0.0) + f(mu - h, 0.0)) / h**2
        return np.array([[d2]])
    ht = min(h, 0.5 * tau)
    f0 = f(mu, tau)
    dmm = (f(mu + h, tau) - 2.0 * f0 + f(mu - h, tau)) / h**2
    dtt = (f(mu, tau + ht) - 2.0 * f0 + f(mu, tau - ht)) / ht**2
    dmt = (
        f(mu + h, tau + ht) - f(mu + h, tau - ht) - f(mu - h, tau + ht) + f(mu - h, tau - ht)
    ) / (4.0 * h * ht)
    return np.array([[dmm, dmt], [dmt, dtt]])


def _glmm_core(x, n, level):
    """Fit the binomial-normal model; return a dict of plain floats (no display)."""
    k = x.size
    if np.all(x == 0) or np.all(x == n):
        which = "no events" if np.all(x == 0) else "only events"
        raise InputError(
            f"events: every study has {which} ({[int(v) for v in x]} of {[int(v) for v in n]}); "
            "the maximum-likelihood logit is infinite, so no GLMM estimate exists. "
            "Report the exact (Clopper-Pearson) interval of the pooled counts instead."
        )
    # increase the number of quadrature nodes until the maximised log-likelihood settles
    m = _NODES_START
    (mu, tau, ll), lik = _fit_ml(x, n, m)
    while True:
        m2 = 2 * m + 1
        if m2 > _NODES_MAX:
            break
        lik2 = _Likelihood(x, n, m2)
        if abs(lik2(mu, tau) - ll) <= _LL_TOL * (1.0 + abs(ll)):
            break
        m = m2
        (mu, tau, ll), lik = _fit_ml(x, n, m)
    if tau == 0.0:
        # boundary: tau is not a free parameter there; the information for mu is the
        # common-effect logistic one, sum n p (1 - p), in closed form
        p0 = special.expit(mu)
        info = np.array([[float(np.sum(n * p0 * (1.0 - p0)))]])
    else:
        info = -_hessian(lik, mu, tau)
    try:
        cov = np.linalg.inv(info)
        se = float(math.sqrt(cov[0, 0]))
    except (np.linalg.LinAlgError, ValueError):
        se = float("nan")
    if not np.isfinite(se) or se <= 0:
        # fall back to the information for mu alone (tau held at its estimate)
        se = float(1.0 / math.sqrt(info[0, 0])) if info[0, 0] > 0 else float("nan")
    z = stats.norm.isf((1.0 - level) / 2.0)
    stat = mu / se
    tau2 = tau * tau
    # heterogeneity tests against the common-effect logistic model (df = k - 1):
    # likelihood ratio vs the saturated model, and the Wald test of equal study logits
    # (studies with 0 or all events contribute nothing to the Wald statistic, their
    # weight n p (1 - p) being 0 in the limit).
    p_fe = x.sum() / n.sum()
    ll_fe = float(
        np.sum(_log_binom_coef(x, n) + special.xlogy(x, p_fe) + special.xlog1py(n - x, -p_fe))
    )
    phat = x / n
    ll_sat = float(
        np.sum(_log_binom_coef(x, n) + special.xlogy(x, phat) + special.xlog1py(n - x, -phat))
    )
    q_lrt = max(0.0, 2.0 * (ll_sat - ll_fe))
    inner = (x > 0) & (x < n)
    if inner.sum() >= 1:  # Cochran's Q of the study logits, weights n p (1 - p): the engine's
        yi = np.log(x[inner] / (n[inner] - x[inner]))
        wi = n[inner] * phat[inner] * (1.0 - phat[inner])
        q_wald = float(engine.fit(yi, 1.0 / wi, method="EE", qprofile=False,
                                  outputs=("q",))["q"][0])
    else:
        q_wald = 0.0
    df = k - 1
    # I^2 and H^2 as metafor reports them for rma.glmm: tau^2 against the "typical"
    # within-study variance (Higgins & Thompson 2002) of the escalc logits (0.5 added
    # to the cells of studies with 0 or all events) -- the engine's, at this tau^2
    if k > 1:
        het = engine.fit(*_display_logits(x, n), method="ML", tau2=[tau2], qprofile=False,
                         outputs=("i2", "h2"))
        i2, h2 = float(het["i2"][0]), float(het["h2"][0])
    else:
        i2, h2 = float("nan"), float("nan")
    pred = engine.predict([[mu]], [[[se * se]]], [tau2], [[1.0]], level=level)
    half_pi = float(pred["pi_ub"][0, 0]) - mu
    return {
        "k": k,
        "estimate": float(mu),
        "se": se,
        "stat": stat,
        "p": float(2.0 * stats.norm.sf(abs(stat))),
        "ci_lb": mu - z * se,
        "ci_ub": mu + z * se,
        "pi_lb": mu - half_pi,
        "pi_ub": mu + half_pi,
        "tau2": tau2,
        "i2": float(i2),
        "h2": float(h2),
        "q_wald": q_wald if df > 0 else float("nan"),
        "q_wald_p": float(stats.chi2.sf(q_wald, df)) if df > 0 else float("nan"),
        "q_lrt": q_lrt if df > 0 else float("nan"),
        "q_lrt_p": float(stats.chi2.sf(q_lrt, df)) if df > 0 else float("nan"),
        "q_df": df,
        "loglik": ll,
        "nodes": m,
        "tau_at_boundary": tau == 0.0,
    }


# --------------------------------------------------------------------------- study intervals

_CI_METHODS = {"exact": "beta", "clopper-pearson": "beta", "wilson": "wilson"}


def proportion_ci(events, total, method: str = "exact", level: float = 0.95):
    """Confidence interval for each study's proportion, for display (forest plots, tables).

    Parameters
    ----------
    events, total : array_like
        Event counts and totals per study (0 and all events allowed).
    method : {"exact", "wilson"}
        ``"exact"``: Clopper & Pearson (1934, Biometrika 26:404), from beta quantiles;
        never shorter than nominal.  ``"wilson"``: Wilson (1927, JASA 22:209) score
        interval.  Both stay inside [0, 1] and are defined for 0/n and n/n, unlike a
        back-transformed Wald interval.  Computed with statsmodels'
        ``proportion_confint`` (``"beta"`` and ``"wilson"``).
    level : float
        Confidence level.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Lower and upper limits.

    Examples
    --------
    >>> lb, ub = proportion_ci([1], [91])
    >>> round(float(lb[0]), 5), round(float(ub[0]), 5)
    (0.00028, 0.05971)
    """
    from statsmodels.stats.proportion import proportion_confint

    x, n = _counts(events, total)
    level = check_level(level)
    key = str(method).lower()
    if key not in _CI_METHODS:
        raise InputError(f"method: got {method!r}; expected 'exact' (Clopper-Pearson) or 'wilson'")
    lb, ub = proportion_confint(x, n, alpha=1.0 - level, method=_CI_METHODS[key])
    lb = np.where(x == 0, 0.0, np.asarray(lb, dtype=float))
    ub = np.where(x == n, 1.0, np.asarray(ub, dtype=float))
    return np.clip(lb, 0.0, 1.0), np.clip(ub, 0.0, 1.0)


# --------------------------------------------------------------------------- guidance


def proportion_notes(events, total, measure: str | None, labels=None) -> tuple[str, ...]:
    """Notes to print with a two-step pooled proportion: caveats and when to use the GLMM.

    Rules
    -----
    * ``PFT``: the Freeman–Tukey double arcsine has no single inverse for a pooled
      value; Miller's (1978) inverse with the harmonic mean of the study sizes is used,
      and can misstate the pooled proportion when study sizes differ (Schwarzer et al.
      2019, Res Synth Methods 10:476).
    * any study with 0 or all events: ``PR`` and ``PLO`` need a continuity correction
      (0.5 added to its cells, as metafor's default), which biases the estimate; the
      GLMM uses the counts as they are (Stijnen, Hamza & Özdemir 2010, Stat Med 29:3046).
    * fewer than :data:`FEW_EVENTS` (10) events, or non-events, in total: the normal
      approximation to each study's transformed proportion is poor, so inverse-variance
      weights are unreliable and the exact binomial likelihood of the GLMM is preferable
      (Stijnen et al. 2010; Lin & Chu 2020, Epidemiology 31:713).

    Parameters
    ----------
    events, total : array_like
        Counts per study.
    measure : str or None
        The two-step measure used (``PR``, ``PLO``, ``PAS``, ``PFT``); other measures
        give no notes.
    labels : sequence of str, optional
        Study names, used to say which studies have 0 or all events.

    Returns
    -------
    tuple of str

    Examples
    --------
    >>> notes = proportion_notes([0, 3], [20, 25], "PLO")
    >>> any("GLMM" in s for s in notes)
    True
    """
    from metaanalysis.formatting import num

    m = None if measure is None else str(measure).upper()
    if m not in _PROPORTION_MEASURES:
        return ()
    x, n = _counts(events, total)
    names = (
        [str(s) for s in labels]
        if labels is not None
        else [f"study {i + 1}" for i in range(x.size)]
    )
    notes: list[str] = []
    if m == "PFT":
        hm = x.size / np.sum(1.0 / n)
        notes.append(
            "Freeman-Tukey double arcsine: the pooled value is back-transformed with "
            f"Miller's (1978) inverse using the harmonic mean of the study sizes (n = {num(hm, 1)}); "
            "when study sizes differ this can misstate the pooled proportion "
            "(Schwarzer et al. 2019, Res Synth Methods 10:476). Check it against the GLMM."
        )
    extreme = [
        f"{names[i]} ({int(x[i])}/{int(n[i])})" for i in range(x.size) if x[i] == 0 or x[i] == n[i]
    ]
    if extreme:
        why = {
            "PR": "its variance p(1 - p)/n is 0, so 0.5 was added to its cells and the "
            "normal approximation at the boundary is poor",
            "PLO": "its logit is infinite, so 0.5 was added to its cells (continuity "
            "correction), which pulls it toward 50%",
            "PAS": "the arcsine variance 1/(4n) ignores that the count sits at the boundary",
            "PFT": "the double-arcsine variance 1/(4n + 2) ignores that the count sits at the boundary",
        }[m]
        notes.append(
            f"Studies with 0 or all events: {', '.join(extreme)}; under {m} {why}. "
            "The binomial-normal GLMM (pool_glmm) uses the counts without corrections and "
            "is recommended here (Stijnen, Hamza & Ozdemir 2010, Stat Med 29:3046)."
        )
    ev, non = float(x.sum()), float((n - x).sum())
    if min(ev, non) < FEW_EVENTS:
        which = "events" if ev <= non else "non-events"
        notes.append(
            f"Few {which} in total ({int(min(ev, non))} < {FEW_EVENTS}): inverse-variance "
            "weights rest on a normal approximation that needs more; the GLMM's exact "
            "binomial likelihood is preferable (Stijnen et al. 2010; Lin & Chu 2020, "
            "Epidemiology 31:713)."
        )
    return tuple(notes)


# --------------------------------------------------------------------------- public GLMM


def pool_glmm(events, total, *, level: float = 0.95, labels=None, unit: str | None = None):
    """Pool single proportions with the binomial-normal random-intercept model (GLMM).

    Model (Hamza, van Houwelingen & Stijnen 2008, J Clin Epidemiol 61:41; Stijnen,
    Hamza & Özdemir 2010, Stat Med 29:3046): ``events_i ~ Binomial(total_i, p_i)``,
    ``logit(p_i) = mu + b_i``, ``b_i ~ N(0, tau^2)``.  The exact binomial likelihood
    is used, so studies with 0 or all events need no continuity correction.

    Fitted by maximum likelihood.  Each study's marginal likelihood is integrated by
    adaptive Gauss–Hermite quadrature, centred at the mode of its integrand and scaled
    by its curvature (Liu & Pierce 1994; Pinheiro & Bates 1995); the number of nodes is
    doubled until the maximised log-likelihood changes by less than 1e-9.  ``mu`` is
    profiled out for each ``tau`` and the profile is maximised over ``tau >= 0``; the
    boundary ``tau^2 = 0`` (the common-effect logistic model) is compared explicitly.
    The CI and test for ``mu`` are Wald-type, with the standard error from the
    observed information (numerical Hessian in ``(mu, tau)``; at ``tau^2 = 0`` the
    logistic-model information).  The prediction interval is
    ``mu ± z sqrt(SE^2 + tau^2)`` and I², H² use the typical within-study variance of
    the logits, as metafor's ``rma.glmm``.  Heterogeneity is tested against the
    common-effect logistic model with the Wald-type ``Q`` (``q``, ``q_p``) and the
    likelihood-ratio test (``q_lrt``, ``q_lrt_p``; metafor's ``QE.LRT``,
    ``QEp.LRT``), each on ``k - 1`` df.

    Parameters
    ----------
    events, total : array_like
        Events and totals per study (whole numbers, ``0 <= events <= total``).
    level : float
        Confidence level of the CI and prediction interval.
    labels : sequence of str, optional
        Study labels.
    unit : str, optional
        Unit of analysis (``"patients"``, ``"lesions"``), printed with the result.

    Returns
    -------
    PoolResult
        ``measure="PLO"``, ``method="GLMM"``, ``test="z"``; estimate, CI and PI on the
        logit scale (``back_transform()`` gives proportions).  ``yi``/``vi`` are the
        study logits for display (0.5 added to 0/n and n/n studies, which the fit
        itself does not use); ``weights`` are NaN (the model has no inverse-variance
        weights); ``se_tau2`` and the τ²/I² intervals are NaN, as in metafor.

    Examples
    --------
    >>> res = pool_glmm([42, 32, 37, 10], [140, 115, 85, 33], unit="lesions")
    >>> round(res.estimate, 3), round(float(res.back_transform()["estimate"].iloc[0]), 3)
    (-0.725, 0.326)
    """
    import pandas as pd

    from metaanalysis.formatting import num, pval
    from metaanalysis.results.pool_result import PoolResult

    x, n = _counts(events, total)
    level = check_level(level)
    k = x.size
    labels = check_labels(labels, k)
    r = _glmm_core(x, n, level)
    if not all(math.isfinite(r[key]) for key in ("estimate", "se", "tau2")):
        i = int(np.argmax(n))
        raise InputError(f"events, total: the GLMM estimate is not finite for these counts "
                         f"(largest total: {n[i]:g} at index {i}); expected counts the "
                         "binomial likelihood can be evaluated for")

    yi, vi = _display_logits(x, n)
    ext = (x == 0) | (x == n)

    notes = [
        (
            "binomial-normal random-intercept model on the logit scale (Hamza et al. 2008; "
            "Stijnen et al. 2010), maximum likelihood with adaptive Gauss-Hermite quadrature "
            f"({r['nodes']} nodes per study); exact binomial likelihood, no continuity correction; "
            "Wald-type CI from the observed information"
        ),
    ]
    if k == 1:
        notes.append(
            "k = 1: τ² cannot be estimated and is set to 0 (binomial model of the single study)"
        )
    elif r["tau_at_boundary"]:
        notes.append(
            "τ² estimate at its boundary 0: the maximum-likelihood fit is the common-effect "
            "logistic model (the likelihood does not increase for any τ² > 0)"
        )
    if k > 1:
        notes.append(
            f"heterogeneity tests (df = {k - 1}) against the common-effect logistic model: "
            f"Wald-type Q = {num(r['q_wald'], 2)}, p = {pval(r['q_wald_p'])}; "
            f"likelihood ratio = {num(r['q_lrt'], 2)}, p = {pval(r['q_lrt_p'])}".replace(
                "p = <", "p <"
            )
        )
        notes.append(
            "I² and H² compare τ² with the typical within-study variance of the study logits "
            "(Higgins & Thompson 2002), as metafor's rma.glmm"
        )
    if ext.any():
        notes.append(
            "studies with 0 or all events are used as they are; their displayed logits "
            "(yi, vi) add 0.5 to each cell, the fit does not"
        )
    data = pd.DataFrame(
        {"study": list(labels), "events": x, "total": n, "yi": yi, "vi": vi, "ni": n}
    )
    data.attrs["measure"] = "PLO"
    return PoolResult.from_fit(
        r, method="GLMM", test="z", level=level, q=r["q_wald"], q_p=r["q_wald_p"],
        q_df=r["q_df"] if k > 1 else float("nan"), weights=np.full(k, np.nan), yi=yi, vi=vi,
        labels=labels, measure="PLO", ni=n, unit=unit, notes=tuple(notes), data=data,
    )  # fmt: skip


# --------------------------------------------------------------------------- two-step wrapper


def pool_proportions(
    events,
    total,
    *,
    measure: str = "PLO",
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
    labels=None,
    unit: str | None = None,
):
    """Pool single proportions, two-step (``PR``, ``PLO``, ``PAS``, ``PFT``) or by GLMM.

    The two-step route computes the effect sizes with :func:`metaanalysis.effects.effect_sizes`
    (metafor's ``escalc`` conventions, 0.5 added to 0/n and n/n studies for PR and PLO)
    and pools them with :func:`metaanalysis.pool`; the notes of
    :func:`proportion_notes` (Freeman–Tukey caveat, when to prefer the GLMM) are added
    to the result.  ``method="GLMM"`` calls :func:`pool_glmm` instead (``measure`` must
    then be ``"PLO"``).

    Parameters
    ----------
    events, total : array_like
        Counts per study.
    measure : {"PR", "PLO", "PAS", "PFT"}
        Scale of the two-step analysis.
    method : str
        ``"GLMM"`` or any τ² estimator of :func:`metaanalysis.pool` (``"EE"``, ``"DL"``,
        ``"REML"``, ...).
    test, level, labels, unit
        As in :func:`metaanalysis.pool`.

    Returns
    -------
    PoolResult

    Examples
    --------
    >>> res = pool_proportions([0, 3, 5], [20, 25, 30], measure="PFT", method="DL")
    >>> [n.split(":")[0] for n in res.notes if n.startswith(("Freeman", "Studies"))]
    ['Freeman-Tukey double arcsine', 'Studies with 0 or all events']
    """
    m = str(measure).upper()
    if m not in _PROPORTION_MEASURES:
        raise InputError(
            f"measure: got {measure!r}; expected one of {', '.join(_PROPORTION_MEASURES)}"
        )
    x, n = _counts(events, total)
    if str(method).upper() == "GLMM":
        if m != "PLO":
            raise InputError(
                f"measure: got {measure!r} with method='GLMM'; the GLMM is on the logit scale (measure='PLO')"
            )
        if test != "z":
            raise InputError(
                f"test: got {test!r} with method='GLMM'; expected 'z' (Wald-type, as metafor's rma.glmm)"
            )
        return pool_glmm(x, n, level=level, labels=labels, unit=unit)
    from metaanalysis.effects.effect_sizes import effect_sizes
    from metaanalysis.models.pooling import pool

    es = effect_sizes(m, events=x, total=n)
    # pool() adds the proportion_notes guidance itself (the frame carries events and total)
    return pool(es, method=method, test=test, level=level, labels=labels, unit=unit)
