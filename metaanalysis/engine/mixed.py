"""Batched mixed-effects regression core: ``y = Xβ + u + e`` on many data sets.

:func:`fit_mixed` estimates the residual heterogeneity τ² with a design matrix
``X`` and returns the weighted least-squares coefficients and their tests.  It
works on a batch of data sets at once (shape ``(B, k)`` outcomes, ``(B, k, p)``
designs), so permutation tests are one call.  Estimators: ``EE`` (τ² = 0),
``DL`` (DerSimonian-Laird generalised to moderators, Raudenbush 2009), ``HE``
(Hedges' OLS-residual moment estimator), ``PM`` (Paule-Mandel generalised:
residual Q equal to its degrees of freedom), ``ML`` and ``REML`` (Fisher
scoring with step halving, Viechtbauer 2005; Raudenbush 2009).  τ² is never
negative.  Used by :mod:`metaanalysis.models.regression`,
:mod:`metaanalysis.models.subgroups` and the regression tests of
:mod:`metaanalysis.models.bias`.

References
----------
Raudenbush SW (2009). Analyzing effect sizes: random-effects models. In
Cooper, Hedges & Valentine (eds), *The Handbook of Research Synthesis and
Meta-Analysis*, 2nd ed., 295-315.

Viechtbauer W (2005). Bias and efficiency of meta-analytic variance
estimators in the random-effects model. *J Educ Behav Stat* 30:261-293.

Knapp G, Hartung J (2003). Improved tests for a random effects meta-regression
with a single covariate. *Stat Med* 22:2693-2710.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from metaanalysis.engine.batch import TESTS
from metaanalysis.engine.tau2 import scan_interior, score_bound_hi
from metaanalysis.errors import InputError

CORE_METHODS = ("EE", "FE", "DL", "HE", "PM", "ML", "REML")

# ---------------------------------------------------------------------------
# Core: weighted least squares with a design matrix, batched
# ---------------------------------------------------------------------------


def _wls(y: np.ndarray, w: np.ndarray, X: np.ndarray):
    """Weighted least squares on a batch.

    Returns ``beta (B,p)``, ``A = (X'WX)^-1 (B,p,p)``, residuals ``r (B,k)``.
    """
    XtWX = np.einsum("bki,bk,bkj->bij", X, w, X)
    A = np.linalg.inv(XtWX)
    XtWy = np.einsum("bki,bk,bk->bi", X, w, y)
    beta = np.einsum("bij,bj->bi", A, XtWy)
    r = y - np.einsum("bki,bi->bk", X, beta)
    return beta, A, r


def _trace_AXtDX(A: np.ndarray, X: np.ndarray, d: np.ndarray) -> np.ndarray:
    """tr(A X' diag(d) X) for a batch."""
    M = np.einsum("bki,bk,bkj->bij", X, d, X)
    return np.einsum("bij,bji->b", A, M)


def _loglik(y, v, X, tau2, reml: bool) -> np.ndarray:
    """(Restricted) log-likelihood up to a constant, for a batch of τ² values."""
    w = 1.0 / (v + tau2[:, None])
    _, A, r = _wls(y, w, X)
    ll = -0.5 * (np.sum(np.log(v + tau2[:, None]), axis=1) + np.sum(w * r * r, axis=1))
    if reml:
        _sign, logdet = np.linalg.slogdet(A)  # log|X'WX| = -log|A|
        ll = ll + 0.5 * logdet
    return ll


def _tau2_dl(y, v, X):
    """DerSimonian-Laird moment estimator generalised to moderators (Raudenbush 2009, eq. 16.?):
    τ² = (Q_E - (k - p)) / (tr W - tr[(X'WX)^-1 X'W²X]), W = diag(1/v)."""
    k, p = X.shape[1], X.shape[2]
    w = 1.0 / v
    _, A, r = _wls(y, w, X)
    qe = np.sum(w * r * r, axis=1)
    trP = np.sum(w, axis=1) - _trace_AXtDX(A, X, w * w)
    return np.maximum(0.0, (qe - (k - p)) / trP)


def _tau2_he(y, v, X):
    """Hedges-type estimator from OLS residuals (Raudenbush 2009):
    τ² = (r'r - tr[(I - H) V]) / (k - p), H the OLS hat matrix."""
    k, p = X.shape[1], X.shape[2]
    ones = np.ones_like(v)
    _, A, r = _wls(y, ones, X)
    rss = np.sum(r * r, axis=1)
    h = np.einsum("bki,bij,bkj->bk", X, A, X)  # OLS leverages
    tr = np.sum((1.0 - h) * v, axis=1)
    return np.maximum(0.0, (rss - tr) / (k - p))


def _tau2_pm(y, v, X, tol=1e-13, maxiter=200):
    """Paule-Mandel generalised to moderators: solve Q_E(τ²) = k - p, where
    Q_E(τ²) = Σ w_i(τ²) r_i² decreases in τ² (Paule & Mandel 1982; Viechtbauer et al.
    2015).  Bisection on a bracket (Q_E is monotone, so it always converges);
    τ² = 0 if Q_E(0) ≤ k - p."""
    k, p = X.shape[1], X.shape[2]
    target = k - p

    def qe(t):
        w = 1.0 / (v + t[:, None])
        _, _, r = _wls(y, w, X)
        return np.sum(w * r * r, axis=1) - target

    B = y.shape[0]
    lo = np.zeros(B)
    flo = qe(lo)
    out = np.zeros(B)
    need = flo > 0
    if not need.any():
        return out, np.ones(B, bool)
    hi = np.maximum(2.0 * _tau2_dl(y, v, X), np.mean(v, axis=1))
    for _ in range(200):
        fhi = qe(hi)
        grow = need & (fhi > 0)
        if not grow.any():
            break
        hi = np.where(grow, hi * 4.0, hi)
    for _ in range(maxiter):
        mid = 0.5 * (lo + hi)
        fm = qe(mid)
        pos = fm > 0
        lo = np.where(pos, mid, lo)
        hi = np.where(pos, hi, mid)
        ok = (hi - lo) <= tol * (hi + np.mean(v, axis=1))
        if np.all(ok[need]):
            break
    out = np.where(need, 0.5 * (lo + hi), 0.0)
    return out, ok | ~need


def _score(y, v, X, tau2, reml: bool):
    """Score (times 2) and expected information (times 2) of the (restricted)
    likelihood in τ²: REML S = y'PPy - tr P, I = tr(PP); ML S = y'PPy - tr W,
    I = tr(W²), with W = diag(1/(v+τ²)), P = W - WX(X'WX)^-1X'W."""
    w = 1.0 / (v + tau2[:, None])
    _, A, r = _wls(y, w, X)
    Py = w * r
    yPPy = np.sum(Py * Py, axis=1)
    w2 = w * w
    if reml:
        trP = np.sum(w, axis=1) - _trace_AXtDX(A, X, w2)
        M2 = np.einsum("bki,bk,bkj->bij", X, w2, X)
        AM2 = np.einsum("bij,bjl->bil", A, M2)
        info = (np.sum(w2, axis=1) - 2.0 * _trace_AXtDX(A, X, w2 * w)
                + np.einsum("bij,bji->b", AM2, AM2))
        return yPPy - trP, info
    return yPPy - np.sum(w, axis=1), np.sum(w2, axis=1)


def _tau2_fisher(y, v, X, reml: bool, tol=1e-12, maxiter=500):
    """ML / REML τ²: root of the score by Fisher scoring kept inside a bracket.

    The score equations are those of Viechtbauer (2005) and Raudenbush (2009)
    (see :func:`_score`).  Each row keeps an interval ``[lo, hi]`` on which the
    score changes sign; a Fisher-scoring step that leaves it is replaced by
    bisection (the safeguard of ``rtsafe``, Press et al., Numerical Recipes
    §9.4), so the iteration converges even where plain Fisher scoring
    oscillates (flat likelihoods, τ² small against the vi).  τ² = 0 when the
    score at 0 is not positive, or when the likelihood at 0 is higher than at the
    interior root (the ML likelihood can have two maxima).
    """
    B = y.shape[0]
    scale = np.mean(v, axis=1)
    zero = np.zeros(B)
    s0, _ = _score(y, v, X, zero, reml)
    interior = s0 > 0
    lo = zero.copy()
    hi = np.maximum(2.0 * _tau2_dl(y, v, X), scale)
    for _ in range(200):  # grow hi until the score is negative there
        s_hi, _ = _score(y, v, X, hi, reml)
        grow = interior & (s_hi > 0)
        if not grow.any():
            break
        lo = np.where(grow, hi, lo)
        hi = np.where(grow, 4.0 * hi, hi)
    t = np.where(interior, 0.5 * (lo + hi), 0.0)
    active = interior.copy()
    converged = ~interior
    width = hi - lo
    for _ in range(maxiter):
        if not active.any():
            break
        s, info = _score(y, v, X, t, reml)
        lo = np.where(active & (s > 0), t, lo)
        hi = np.where(active & (s <= 0), t, hi)
        newton = t + s / info
        # bisect when the step leaves the bracket or the bracket did not halve
        inside = (newton > lo) & (newton < hi) & (hi - lo <= 0.5 * width)
        width = hi - lo
        new = np.where(inside, newton, 0.5 * (lo + hi))
        small = tol * (t + scale)
        done = (np.abs(new - t) <= small) | (hi - lo <= small)
        t = np.where(active, new, t)
        converged |= active & done
        active &= ~done
    if interior.any():
        better0 = _loglik(y, v, X, zero, reml) > _loglik(y, v, X, t, reml)
        t = np.where(interior & better0, 0.0, t)
    # score <= 0 at 0: 0 is a local maximum, but the likelihood can have a
    # higher one inside; scan for it (shared helper of the pooling engine)
    bnd = np.flatnonzero(~interior)
    if bnd.size:
        k, p = X.shape[1], X.shape[2]
        yb, vb, Xb = y[bnd], v[bnd], X[bnd]
        Xty = np.einsum("bki,bk->bi", Xb, yb)  # X has orthonormal columns here
        rss = np.maximum(np.einsum("bk,bk->b", yb, yb) - np.einsum("bi,bi->b", Xty, Xty), 0.0)
        vmin, vmax = vb.min(axis=1), vb.max(axis=1)
        hi_b = score_bound_hi(rss, vmin, vmax, np.full(bnd.size, float(k - p if reml else k)))
        lo_b = vmin / 16.0

        def sc(tt, yy, vv, XX):
            val, info = _score(yy, vv, XX, tt, reml)
            return val, -info

        def ll(tt, yy, vv, XX):
            return _loglik(yy, vv, XX, tt, reml)

        sel = np.flatnonzero(hi_b > lo_b)
        if sel.size:
            tb, better = scan_interior(sc, ll, (yb[sel], vb[sel], Xb[sel]), lo_b[sel], hi_b[sel])
            t[bnd[sel[better]]] = tb[better]
    return np.maximum(t, 0.0), converged


def fit_mixed(yi, vi, X, *, method: str = "REML", test: str = "z",
              tau2: np.ndarray | None = None, btt: Sequence[int] | None = None,
              level: float = 0.95) -> dict[str, np.ndarray]:
    """Fit the mixed-effects meta-regression ``y = Xβ + u + e`` on a batch.

    Parameters
    ----------
    yi, vi : array_like, shape ``(B, k)`` or ``(k,)``
        Outcomes and sampling variances (no missing values).
    X : array_like, shape ``(B, k, p)`` or ``(k, p)``
        Design matrix, intercept included by the caller.
    method : {"EE", "DL", "HE", "PM", "ML", "REML"}
        τ² estimator (see the module docstring for references).
    test : {"z", "knha", "adhoc"}
        Normal tests or Knapp-Hartung t/F tests (Knapp & Hartung 2003; the
        variance factor is not truncated, as in metafor's ``test="knha"``).
    tau2 : array_like, optional
        Fixed τ² per batch row (skips estimation).
    btt : sequence of int, optional
        Coefficients in the omnibus test (default: all but column 0).

    Returns
    -------
    dict of arrays: ``beta, vb, se, stat, p, ci_lb, ci_ub (B,p)``, ``tau2, qm,
    qm_df, qm_df2, qm_p, qe, qe_df, qe_p, i2, h2, s2, converged, k, p (B,)``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.column_stack([np.ones(4), [1.0, 2.0, 3.0, 4.0]])
    >>> out = fit_mixed([0.1, 0.3, 0.2, 0.5], [0.01, 0.02, 0.015, 0.03], X, method="DL")
    >>> out["beta"].shape
    (1, 2)
    """
    method = "EE" if method == "FE" else method
    if method not in CORE_METHODS:
        raise InputError(f"method={method!r} is not available for meta-regression; "
                         f"expected one of {', '.join(m for m in CORE_METHODS if m != 'FE')}")
    if test not in TESTS:
        raise InputError(f"test={test!r} is not available for meta-regression; "
                         "expected 'z', 'knha' or 'adhoc'")
    y = np.atleast_2d(np.asarray(yi, dtype=float))
    v = np.atleast_2d(np.asarray(vi, dtype=float))
    X = np.asarray(X, dtype=float)
    if X.ndim == 2:
        X = np.broadcast_to(X, (y.shape[0],) + X.shape)
    if v.shape != y.shape or X.shape[:2] != y.shape:
        raise InputError(f"yi {y.shape}, vi {v.shape} and X {X.shape} have inconsistent shapes")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v)) and np.all(np.isfinite(X))):
        raise InputError("yi, vi and the moderators must be finite (no NaN) in meta-regression")
    if np.any(v <= 0):
        raise InputError("vi must be > 0 for every study")
    B, k, p = X.shape
    if k <= p:
        raise InputError(f"meta-regression needs more studies than coefficients: k={k}, p={p}")
    # All τ² estimators and Q_E are invariant to a change of basis of the column
    # space of X, so they are computed on an orthonormal basis Q (X = QR): this
    # keeps badly scaled moderators (e.g. calendar years) numerically harmless.
    X, R = np.linalg.qr(X)
    if np.any(np.abs(np.einsum("bii->bi", R)) <= 1e-10 * np.abs(R).max(axis=(1, 2))[:, None]):
        raise InputError("the moderators are collinear (the design matrix is not of full rank)")
    converged = np.ones(B, bool)
    if tau2 is not None:
        t2 = np.broadcast_to(np.asarray(tau2, float), (B,)).copy()
    elif method == "EE":
        t2 = np.zeros(B)
    elif method == "DL":
        t2 = _tau2_dl(y, v, X)
    elif method == "HE":
        t2 = _tau2_he(y, v, X)
    elif method == "PM":
        t2, converged = _tau2_pm(y, v, X)
    else:
        t2, converged = _tau2_fisher(y, v, X, reml=(method == "REML"))

    # Residual heterogeneity test and I² from the fixed-effects weights.
    w0 = 1.0 / v
    _, A0, r0 = _wls(y, w0, X)
    qe = np.sum(w0 * r0 * r0, axis=1)
    trP0 = np.sum(w0, axis=1) - _trace_AXtDX(A0, X, w0 * w0)
    s2 = (k - p) / trP0  # "typical" within-study variance (Higgins & Thompson 2002)
    i2 = 100.0 * t2 / (t2 + s2)
    h2 = (t2 + s2) / s2
    if method == "EE" and tau2 is None:
        # common-effect model: I² and H² from Q_E, as metafor reports them
        i2 = np.maximum(0.0, 100.0 * (qe - (k - p)) / qe)
        h2 = qe / (k - p)

    w = 1.0 / (v + t2[:, None])
    gamma, Ag, r = _wls(y, w, X)
    Rinv = np.linalg.inv(R)  # β = R^-1 γ, Var β = R^-1 Var γ R^-T
    beta = np.einsum("bij,bj->bi", Rinv, gamma)
    A = np.einsum("bij,bjl,bml->bim", Rinv, Ag, Rinv)
    df = k - p
    if test in ("knha", "adhoc"):
        factor = np.sum(w * r * r, axis=1) / df
        if test == "adhoc":  # variance factor at least 1 (Knapp & Hartung 2003, ad hoc rule)
            factor = np.maximum(factor, 1.0)
        vb = A * factor[:, None, None]
    else:
        vb = A
    se = np.sqrt(np.einsum("bii->bi", vb))
    stat = beta / se
    if btt is None:
        btt = list(range(1, p)) if p > 1 else [0]
    btt = list(btt)
    m = len(btt)
    bsub = beta[:, btt]
    vsub = vb[:, btt][:, :, btt]
    qm = np.einsum("bi,bi->b", bsub, np.linalg.solve(vsub, bsub[..., None])[..., 0])
    if test in ("knha", "adhoc"):
        qm = qm / m
        p_coef = 2.0 * stats.t.sf(np.abs(stat), df)
        crit = stats.t.ppf(0.5 + level / 2.0, df)
        qm_p = stats.f.sf(qm, m, df)
        qm_df2 = np.full(B, float(df))
    else:
        p_coef = 2.0 * stats.norm.sf(np.abs(stat))
        crit = stats.norm.ppf(0.5 + level / 2.0)
        qm_p = stats.chi2.sf(qm, m)
        qm_df2 = np.full(B, np.nan)
    return {
        "beta": beta, "vb": vb, "se": se, "stat": stat, "p": p_coef,
        "ci_lb": beta - crit * se, "ci_ub": beta + crit * se,
        "tau2": t2, "qm": qm, "qm_df": np.full(B, float(m)), "qm_df2": qm_df2,
        "qm_p": qm_p, "qe": qe, "qe_df": np.full(B, float(df)),
        "qe_p": stats.chi2.sf(qe, df), "i2": i2, "h2": h2, "s2": s2,
        "converged": converged, "k": np.full(B, k), "p_": np.full(B, p),
    }
