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

import functools
import math
import warnings

import numpy as np
from scipy import special

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


@functools.cache
def _gauss_hermite(m):
    """Gauss–Hermite nodes and the log weights for a standard normal integral.

    ``∫ f(u) φ(u) du ≈ √2 s Σ_j exp(logw_j + log f(u_j) − u_j²/2)`` with
    ``u_j = û + √2 s z_j`` (``logw`` holds ``log w_j + z_j² − log √(2π)``).
    """
    nodes, weights = np.polynomial.hermite.hermgauss(m)
    logw = np.log(weights) + nodes**2 - 0.5 * math.log(2.0 * math.pi)
    nodes.flags.writeable = logw.flags.writeable = False
    return nodes, logw


def _quadrature(x, n, mu, tau, m, start=None, derivatives=False):
    """Adaptive Gauss–Hermite log-likelihood of a batch of parameter points.

    ``log ∫ Bin(x_i | n_i, expit(mu + tau u)) φ(u) du`` per study, by quadrature
    centred at the mode ``û_i`` of each integrand with its curvature as scale ``s_i``
    (Liu & Pierce 1994, Biometrika 81:624; Pinheiro & Bates 1995, J Comput Graph
    Stat 4:12), summed over the studies, at every ``(mu[g], tau[g])`` (``tau >= 0``).

    With ``derivatives``, also the exact gradient of this sum in ``(mu, tau)`` and an
    approximate Hessian.  The gradient differentiates the quadrature as it stands:
    with the nodes held, posterior moments over the nodes of the binomial score
    ``r = x − n p`` (``E[r]``, ``E[r u]``), plus the terms from the nodes moving with
    ``û`` and ``s`` (implicit differentiation of the mode equation
    ``tau r(mu + tau û) = û``); those terms vanish as the quadrature becomes exact.
    The Hessian holds the nodes (``E[(r² − n p (1 − p)) u²] − E[r u]²`` and kin).

    Returns ``(ll, u)`` — totals of shape ``(G,)`` and the modes, a warm start for
    the next call — or ``(ll, u, grad, hess)`` with shapes ``(G, 2)``, ``(G, 2, 2)``.
    """
    nodes, logw = _gauss_hermite(m)
    mu_, tau_ = mu[:, None], tau[:, None]
    u, sd = _modes(x, n, mu_, tau_, start)
    pts = u[..., None] + math.sqrt(2.0) * sd[..., None] * nodes
    eta = mu_[..., None] + tau_[..., None] * pts
    a = _binom_loglik(x[:, None], n[:, None], eta) - 0.5 * pts**2 + logw
    lse = _logsumexp_last(a)
    const = _log_binom_coef(x, n)
    ll = const + np.log(math.sqrt(2.0) * sd) + lse
    # tau = 0: the closed form (the quadrature is exact there up to rounding)
    ll = np.where(tau_ > 0.0, ll, const + _binom_loglik(x, n, mu_))
    total = ll.sum(axis=1)
    if not derivatives:
        return total, u
    w = np.exp(a - lse[..., None])  # posterior weights of the nodes
    p = special.expit(eta)
    r = x[:, None] - n[:, None] * p
    c = r * r - n[:, None] * p * (1.0 - p)
    er, eru = (w * r).sum(-1), (w * r * pts).sum(-1)
    ec, ecu, ecuu = (w * c).sum(-1), (w * c * pts).sum(-1), (w * c * pts * pts).sum(-1)
    # the nodes move with the mode and the scale: d/dtheta of log(s) + LSE(a(u_j)) through
    # u_j = û + √2 s z_j adds E[g'(u_j) (dû + √2 z_j ds)] + ds / s, g' = tau r − u
    ph = special.expit(mu_ + tau_ * u)
    vh = n * ph * (1.0 - ph)
    dv = vh * (1.0 - 2.0 * ph)  # dv/deta at the mode
    s2 = sd * sd
    du = (-tau_ * vh * s2, s2 * (x - n * ph - tau_ * vh * u))  # implicit: dû/dmu, dû/dtau
    dcurv = (tau_ * tau_ * dv * (1.0 + tau_ * du[0]),
             2.0 * tau_ * vh + tau_ * tau_ * dv * (u + tau_ * du[1]))  # d(tau² v)
    gu = tau_[..., None] * r - pts
    egu, eguz = (w * gu).sum(-1), (w * gu * nodes).sum(-1)
    move = [-0.5 * s2 * dc * (1.0 + math.sqrt(2.0) * sd * eguz) + egu * d
            for dc, d in zip(dcurv, du)]  # ds/s = -s² d(tau² v)/2
    grad = np.stack([(er + move[0]).sum(1), (eru + move[1]).sum(1)], axis=-1)
    hmm, hmt, htt = (ec - er * er).sum(1), (ecu - er * eru).sum(1), (ecuu - eru * eru).sum(1)
    hess = np.stack([np.stack([hmm, hmt], -1), np.stack([hmt, htt], -1)], -2)
    return total, u, grad, hess


def _logsumexp_last(a):
    """``scipy.special.logsumexp(a, axis=-1)`` for finite real ``a``, bit for bit (the same
    steps: maxima split out, ``log1p`` of the rest), without its generic-array overhead,
    which dominated the time of a GLMM fit."""
    a_max = np.max(a, axis=-1, keepdims=True)
    top = a == a_max
    m = top.sum(axis=-1, keepdims=True, dtype=a.dtype)
    s = np.exp(np.where(top, -np.inf, a) - a_max).sum(axis=-1, keepdims=True, dtype=a.dtype)
    s = np.where(s == 0, s, s / m)
    return (np.log1p(s) + np.log(m) + a_max)[..., 0]


def _ascent_direction(grad, hess):
    """Newton direction where the Hessian is negative definite; elsewhere the Newton
    direction of the Hessian shifted by ``lambda I`` until its largest eigenvalue is -1
    (an ascent direction, Levenberg-style)."""
    a, b, c = hess[:, 0, 0], hess[:, 0, 1], hess[:, 1, 1]
    negdef = (a < 0.0) & (a * c - b * b > 0.0)
    lmax = 0.5 * (a + c) + np.hypot(0.5 * (a - c), b)
    lam = np.where(negdef, 0.0, lmax + 1.0)
    a, c = a - lam, c - lam
    det = a * c - b * b
    g0, g1 = grad[:, 0], grad[:, 1]
    return np.stack([-(c * g0 - b * g1) / det, -(a * g1 - b * g0) / det], axis=-1)


def _ascend(x, n, m, mu, tau, tau_max, max_iter=200):
    """Maximise the log-likelihood from a batch of starts by damped Newton steps.

    Steps use the exact gradient of the quadrature and its node-held Hessian
    (:func:`_quadrature`), so they converge to where the gradient vanishes, i.e. to the
    maximum of the very function the node count was checked on.  The likelihood is even
    in ``tau`` (``u -> -u``), so a step to ``tau < 0`` is reflected to ``|tau|``:
    ``tau = 0`` is then an ordinary stationary point, reached quadratically when the
    common-effect model is the maximum.  ``tau`` is capped at ``tau_max`` (with the
    gradient pushing past it, only ``mu`` moves).  Each step is halved until the
    log-likelihood does not decrease; a start stops when its step is below 1e-10
    (relative to ``1 + |parameter|``) or when no halving ascends.

    Returns ``(mu, tau, ll)`` for every start.
    """
    mu, tau = mu.astype(float), np.minimum(np.abs(tau.astype(float)), tau_max)
    ll, u, grad, hess = _quadrature(x, n, mu, tau, m, None, True)
    active = np.ones(mu.size, dtype=bool)
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        d = _ascent_direction(grad[idx], hess[idx])
        bound = (tau[idx] >= tau_max) & (grad[idx, 1] > 0.0)
        if bound.any():  # at the cap: a Newton (or gradient) step in mu alone
            hm, gm = hess[idx, 0, 0], grad[idx, 0]
            d[:, 0] = np.where(bound, gm / np.where(hm < 0.0, -hm, 1.0), d[:, 0])
            d[:, 1] = np.where(bound, 0.0, d[:, 1])
        d /= np.maximum(1.0, np.max(np.abs(d), axis=1) / 2.0)[:, None]  # steps of at most 2
        step = np.ones(idx.size)
        moved = np.zeros(idx.size, dtype=bool)
        pending = np.arange(idx.size)
        for _ in range(40):
            j = idx[pending]
            mt = mu[j] + step[pending] * d[pending, 0]
            tt = np.minimum(np.abs(tau[j] + step[pending] * d[pending, 1]), tau_max)
            change = np.maximum(np.abs(mt - mu[j]) / (1.0 + np.abs(mu[j])),
                                np.abs(tt - tau[j]) / (1.0 + tau[j]))
            l2, u2, g2, h2 = _quadrature(x, n, mt, tt, m, u[j], True)
            # no decrease beyond rounding; a step too small to matter ends the search
            ok = (l2 >= ll[j] - 1e-13 * (1.0 + np.abs(ll[j]))) | (change <= 1e-10)
            acc, keep = j[ok], pending[ok]
            mu[acc], tau[acc], ll[acc], u[acc], grad[acc], hess[acc] = (
                mt[ok], tt[ok], l2[ok], u2[ok], g2[ok], h2[ok])
            moved[keep] = change[ok] > 1e-10
            pending = pending[~ok]
            if not pending.size:
                break
            step[pending] *= 0.5
        active[idx[~moved]] = False
        if not active.any():
            break
    return mu, tau, ll


def _fit_ml(x, n, m, starts=None):
    """ML fit of (mu, tau) with ``m`` nodes; tau's boundary at 0 compared explicitly.

    Damped Newton ascent (:func:`_ascend`) from ``starts`` (pairs ``(mu, tau)``),
    by default the common-effect logit with ``tau`` on a grid from 0.1 to 5, so a
    second maximum of the profile likelihood in that range is not missed.  ``tau`` is
    searched up to ``tau_max = max(10, 5 SD(empirical logits))``.  Returns
    ``(mu, tau, ll, tau_max)``.
    """
    # common-effect (tau = 0) fit is closed form: logit of the pooled proportion
    mu0 = float(special.logit(x.sum() / n.sum()))
    ll0 = float(np.sum(_log_binom_coef(x, n) + _binom_loglik(x, n, mu0)))
    best = (mu0, 0.0, ll0)
    if x.size == 1:
        return best + (math.inf,)
    # empirical-logit spread as a scale for the search interval
    y = np.log((x + 0.5) / (n - x + 0.5))
    tau_max = max(10.0, 5.0 * float(np.std(y)))
    if starts is None:
        taus = np.array([0.1, 0.3, 0.6, 1.2, 2.5, 5.0])
        starts = np.stack([np.full(taus.size, mu0), taus], axis=-1)
    starts = np.asarray(starts, dtype=float)
    mu, tau, ll = _ascend(x, n, m, starts[:, 0], starts[:, 1], tau_max)
    i = int(np.argmax(ll))
    if ll[i] > ll0 + 1e-10 and tau[i] > 0.0:
        best = (float(mu[i]), float(tau[i]), float(ll[i]))
    return best + (tau_max,)


def _hessian(x, n, m, mu, tau, h=1e-5):
    """Observed information in (mu, tau) (``tau > 0``): central differences of the exact
    gradient of the quadrature (:func:`_quadrature`), symmetrised, the four gradients in
    one batch.  Differencing the gradient rather than the log-likelihood keeps rounding
    at ``eps / h`` instead of ``eps / h²``."""
    ht = min(h, 0.5 * tau)
    dm = np.array([h, -h, 0.0, 0.0])
    dt = np.array([0.0, 0.0, ht, -ht])
    g = _quadrature(x, n, mu + dm, tau + dt, m, None, True)[2]
    hess = np.stack([(g[0] - g[1]) / (2.0 * h), (g[2] - g[3]) / (2.0 * ht)])
    return 0.5 * (hess + hess.T)


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
    mu, tau, ll, tau_max = _fit_ml(x, n, m)
    while True:
        m2 = 2 * m + 1
        if m2 > _NODES_MAX:
            break
        ll2 = float(_quadrature(x, n, np.array([mu]), np.array([tau]), m2)[0][0])
        if abs(ll2 - ll) <= _LL_TOL * (1.0 + abs(ll)):
            break
        m = m2
        mu, tau, ll, tau_max = _fit_ml(x, n, m, starts=[[mu, max(tau, 0.1)]])
    if tau > 0.999 * tau_max:
        warnings.warn(
            f"pool_glmm: tau reached the search bound {tau_max:g}; the between-study "
            "variance is not estimable from these counts",
            ConvergenceWarning,
            stacklevel=3,
        )
    if tau == 0.0:
        # boundary: tau is not a free parameter there; the information for mu is the
        # common-effect logistic one, sum n p (1 - p), in closed form
        p0 = special.expit(mu)
        info = np.array([[float(np.sum(n * p0 * (1.0 - p0)))]])
    else:
        info = -_hessian(x, n, m, mu, tau)
    try:
        cov = np.linalg.inv(info)
        se = float(math.sqrt(cov[0, 0]))
    except (np.linalg.LinAlgError, ValueError):
        se = float("nan")
    if not np.isfinite(se) or se <= 0:
        # fall back to the information for mu alone (tau held at its estimate)
        se = float(1.0 / math.sqrt(info[0, 0])) if info[0, 0] > 0 else float("nan")
    z = -special.ndtri((1.0 - level) / 2.0)  # stats.norm.isf, without its argument checks
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
        "p": float(2.0 * special.ndtr(-abs(stat))),
        "ci_lb": mu - z * se,
        "ci_ub": mu + z * se,
        "pi_lb": mu - half_pi,
        "pi_ub": mu + half_pi,
        "tau2": tau2,
        "i2": float(i2),
        "h2": float(h2),
        "q_wald": q_wald if df > 0 else float("nan"),
        "q_wald_p": float(special.chdtrc(df, q_wald)) if df > 0 else float("nan"),
        "q_lrt": q_lrt if df > 0 else float("nan"),
        "q_lrt_p": float(special.chdtrc(df, q_lrt)) if df > 0 else float("nan"),
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
    doubled until the maximised log-likelihood changes by less than 1e-9.  The
    likelihood is maximised over ``(mu, tau)`` by damped Newton steps with the exact
    gradient of the quadrature (and its node-held Hessian), from the common-effect logit
    with six values of ``tau`` between 0.1 and 5 at once; the likelihood is even in
    ``tau``, so ``tau = 0`` is an ordinary stationary point, and the boundary
    ``tau^2 = 0`` (the common-effect logistic model, in closed form) is compared
    explicitly.  The CI and test for ``mu`` are Wald-type, with the standard error from
    the observed information (central differences of that gradient in ``(mu, tau)``;
    at ``tau^2 = 0`` the logistic-model information).  The prediction interval is
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
