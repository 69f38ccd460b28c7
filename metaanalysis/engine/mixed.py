"""Batched mixed-effects regression core: ``y = Xβ + u + e`` on many data sets.

:func:`fit_mixed` estimates the residual heterogeneity τ² with a design matrix
``X`` and returns the weighted least-squares coefficients and their tests.  It
works on a batch of data sets at once (shape ``(B, k)`` outcomes, ``(B, k, p)``
designs), so permutation tests are one call.  Estimators: ``EE`` (τ² = 0),
``DL`` (DerSimonian-Laird generalised to moderators, Raudenbush 2009), ``HE``
(Hedges' OLS-residual moment estimator), ``PM`` (Paule-Mandel generalised:
residual Q equal to its degrees of freedom), ``ML`` and ``REML`` (the global likelihood
maximum, :mod:`metaanalysis.engine.likelihood`).  τ² is never
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
from metaanalysis.engine.design import Matrix
from metaanalysis.engine.likelihood import tau2_lik
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


def _tau2_lik(y, v, X, reml: bool):
    """ML / REML τ²: the global maximum of the (restricted) likelihood, by the
    engine's search (:func:`metaanalysis.engine.likelihood.tau2_lik`)."""
    B, k, p = X.shape
    d = Matrix(np.ascontiguousarray(X.transpose(1, 2, 0)),
               np.broadcast_to(np.eye(p)[:, :, None], (p, p, B)).copy())
    yT = np.ascontiguousarray(y.T)
    return tau2_lik(d, yT, np.ascontiguousarray(v.T), np.ones_like(yT), np.full(B, k), reml)


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
        t2, converged = _tau2_lik(y, v, X, reml=(method == "REML"))

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
