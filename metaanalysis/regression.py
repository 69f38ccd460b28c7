"""Meta-regression (mixed-effects models) and subgroup analysis.

The module holds two layers:

* a small **mixed-effects regression core** (:func:`fit_mixed`) that estimates
  the residual heterogeneity τ² with a design matrix ``X`` and returns the
  weighted least-squares coefficients.  It works on a batch of data sets at
  once (shape ``(B, k)`` outcomes, ``(B, k, p)`` designs), so permutation
  tests are one call.  Estimators: ``EE`` (τ² = 0), ``DL`` (DerSimonian-Laird
  generalised to moderators, Raudenbush 2009), ``HE`` (Hedges' OLS-residual
  moment estimator), ``PM`` (Paule-Mandel generalised: residual Q equal to its
  degrees of freedom), ``ML`` and ``REML`` (Fisher scoring with step halving,
  Viechtbauer 2005; Raudenbush 2009).  τ² is never negative.
* the public analyses :func:`meta_regression` and :func:`subgroups`.  Every
  intercept-only fit (the τ² used for the pseudo-R², the per-subgroup fits,
  Q-between) is done by the package engine (:mod:`metaanalysis.engine`), not
  here.

References
----------
Raudenbush SW (2009). Analyzing effect sizes: random-effects models. In
Cooper, Hedges & Valentine (eds), *The Handbook of Research Synthesis and
Meta-Analysis*, 2nd ed., 295-315.

Viechtbauer W (2005). Bias and efficiency of meta-analytic variance
estimators in the random-effects model. *J Educ Behav Stat* 30:261-293.

Knapp G, Hartung J (2003). Improved tests for a random effects meta-regression
with a single covariate. *Stat Med* 22:2693-2710.

Higgins JPT, Thompson SG (2004). Controlling the risk of spurious findings from
meta-regression. *Stat Med* 23:1663-1682.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .errors import ConvergenceWarning, InputError
from .formatting import ci, num, pct, pval
from .tau2 import scan_interior, score_bound_hi

CORE_METHODS = ("EE", "FE", "DL", "HE", "PM", "ML", "REML")
TESTS = ("z", "knha", "adhoc")

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
    Xorig = X
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
    X = Xorig
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


# ---------------------------------------------------------------------------
# Design matrices
# ---------------------------------------------------------------------------


def design_matrix(mods, k: int, intercept: bool = True) -> pd.DataFrame:
    """Build the design matrix of a meta-regression.

    Numeric columns are used as they are; text, boolean and categorical columns
    are dummy coded with the first level (the first category of a pandas
    ``Categorical``, otherwise the first in sorted order) as reference, named
    ``column[level]``.  An intercept column ``intrcpt`` comes first.

    Examples
    --------
    >>> design_matrix(pd.DataFrame({"x": [1.0, 2, 3], "g": ["a", "b", "a"]}), 3).columns.tolist()
    ['intrcpt', 'x', 'g[b]']
    """
    if isinstance(mods, pd.DataFrame):
        frame = mods.reset_index(drop=True)
    elif isinstance(mods, pd.Series):
        frame = mods.reset_index(drop=True).to_frame(name=mods.name if mods.name is not None else "mod")
    elif isinstance(mods, Mapping):
        frame = pd.DataFrame({str(n): np.asarray(c) for n, c in mods.items()})
    else:
        arr = np.asarray(mods)
        if arr.ndim == 1:
            frame = pd.DataFrame({"mod": arr})
        elif arr.ndim == 2:
            frame = pd.DataFrame(arr, columns=[f"mod{j + 1}" for j in range(arr.shape[1])])
        else:
            raise InputError(f"mods must be 1-D or 2-D, got an array of shape {arr.shape}")
    if len(frame) != k:
        raise InputError(f"mods has {len(frame)} rows but there are {k} studies")
    if frame.shape[1] == 0:
        raise InputError("mods has no columns; use pool() for an intercept-only model")
    cols: dict[str, np.ndarray] = {}
    if intercept:
        cols["intrcpt"] = np.ones(k)
    for name in frame.columns:
        col = frame[name]
        if col.isna().any():
            bad = list(np.flatnonzero(col.isna().to_numpy())[:5])
            raise InputError(f"mods column {name!r} has missing values in rows {bad}; "
                             "remove those studies first")
        if isinstance(col.dtype, pd.CategoricalDtype) or col.dtype == object \
                or pd.api.types.is_bool_dtype(col) or pd.api.types.is_string_dtype(col):
            cat = col.astype("category") if not isinstance(col.dtype, pd.CategoricalDtype) else col
            levels = [lv for lv in cat.cat.categories if (cat == lv).any()]
            if len(levels) < 2:
                raise InputError(f"mods column {name!r} has a single level {levels!r}; "
                                 "a categorical moderator needs at least two")
            for lv in levels[1:]:
                cols[f"{name}[{lv}]"] = (cat == lv).to_numpy(dtype=float)
        else:
            cols[str(name)] = col.to_numpy(dtype=float)
    return pd.DataFrame(cols)


# ---------------------------------------------------------------------------
# Meta-regression
# ---------------------------------------------------------------------------


def _intercept_fit(yi, vi, method: str) -> tuple[float, float]:
    """τ² and H² of the intercept-only model, from the package engine."""
    from . import engine

    out = engine.fit(np.asarray(yi, float)[None, :], np.asarray(vi, float)[None, :],
                     method=method, test="z", qprofile=False)
    return float(np.asarray(out["tau2"])[0]), float(np.asarray(out["h2"])[0])


def _method_label(method: str) -> str:
    return {"EE": "none (common effect)", "DL": "DerSimonian-Laird (Raudenbush 2009)",
            "HE": "Hedges (OLS residuals)", "PM": "Paule-Mandel", "ML": "maximum likelihood",
            "REML": "restricted maximum likelihood"}.get(method, method)


@dataclass(frozen=True)
class MetaRegressionResult:
    """Result of :func:`meta_regression` (immutable).

    ``coef`` is a DataFrame indexed by coefficient name (``intrcpt`` first)
    with columns ``estimate, se, stat, p, ci_lb, ci_ub`` (and ``p_perm`` when
    permutation p-values were requested).  With ``test="knha"``, ``stat`` are
    t statistics on ``qe_df`` degrees of freedom and ``qm`` is an F statistic
    on ``(qm_df, qm_df2)`` degrees of freedom.  ``r2`` is the pseudo-R² in
    percent, ``max(0, (τ²_RE − τ²_ME) / τ²_RE)``, with τ²_RE from the
    intercept-only model using the same estimator (Raudenbush 2009); for the
    common-effect model (``method="EE"``) it is the proportional reduction of
    H² = Q/df instead, as metafor reports it.
    """

    coef: pd.DataFrame
    k: int
    method: str
    test: str
    level: float
    tau2: float
    tau2_re: float
    i2: float
    h2: float
    r2: float
    qm: float
    qm_df: int
    qm_df2: float
    qm_p: float
    qe: float
    qe_df: int
    qe_p: float
    converged: bool
    design: pd.DataFrame
    yi: np.ndarray = field(repr=False)
    vi: np.ndarray = field(repr=False)
    permutations: int | None = None
    qm_p_perm: float | None = None
    seed: Any = None
    notes: tuple[str, ...] = ()

    @property
    def df(self) -> float | None:
        """t degrees of freedom (Knapp-Hartung), ``None`` for z tests."""
        return float(self.qe_df) if self.test != "z" else None

    def to_frame(self) -> pd.DataFrame:
        """The coefficient table (a copy)."""
        return self.coef.copy()

    def summary(self) -> str:
        """Text report with every method choice stated."""
        lvl = f"{100 * self.level:g}%"
        lines = [f"Mixed-effects meta-regression (k = {self.k})",
                 f"τ² estimator: {self.method} — {_method_label(self.method)}",
                 "Tests: " + (f"Knapp-Hartung, t({self.qe_df}) for coefficients, "
                              f"F({self.qm_df}, {self.qe_df}) for the moderators"
                              if self.test != "z" else "z for coefficients, χ² for the moderators"),
                 "",
                 (f"Residual heterogeneity: τ² = {num(self.tau2)}, I² = {pct(self.i2)}, "
                 f"H² = {num(self.h2)}"),
                 (f"Pseudo-R² (heterogeneity accounted for): {pct(self.r2)} "
                 f"(τ² without moderators = {num(self.tau2_re)})"),
                 (f"Test for residual heterogeneity: QE({self.qe_df}) = {num(self.qe)}, "
                 f"p = {pval(self.qe_p)}")]
        if self.test != "z":
            lines.append(f"Test of moderators: F({self.qm_df}, {num(self.qm_df2, 0)}) = "
                         f"{num(self.qm)}, p = {pval(self.qm_p)}")
        else:
            lines.append(f"Test of moderators: QM({self.qm_df}) = {num(self.qm)}, p = {pval(self.qm_p)}")
        if self.permutations:
            lines.append(f"Permutation test ({self.permutations} permutations of the moderators, "
                         f"Higgins & Thompson 2004; seed = {self.seed}): p = {pval(self.qm_p_perm)}")
        lines.append("")
        statname = "t" if self.test != "z" else "z"
        names = [str(n) for n in self.coef.index]
        w = max(8, max(len(n) for n in names))
        head = f"{'':<{w}}  {'estimate':>9}  {'se':>8}  {statname:>8}  {'p':>8}  {lvl + ' CI':>20}"
        if self.permutations:
            head += f"  {'p (perm)':>9}"
        lines.append(head)
        for n, row in zip(names, self.coef.itertuples()):
            line = (f"{n:<{w}}  {num(row.estimate):>9}  {num(row.se):>8}  {num(row.stat):>8}  "
                    f"{pval(row.p):>8}  {ci(row.ci_lb, row.ci_ub):>20}")
            if self.permutations:
                line += f"  {pval(row.p_perm):>9}"
            lines.append(line)
        lines.extend(self.notes)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        try:
            import html

            return (f"<pre>{html.escape(self.summary())}</pre>")
        except Exception:  # noqa: BLE001 - display must not fail
            return "<pre>MetaRegressionResult</pre>"


def _as_yi_vi_mods(yi, vi, mods):
    """Accept arrays, or an effect-size DataFrame with column names for vi/mods."""
    if isinstance(yi, pd.DataFrame):
        data = yi
        if "yi" not in data.columns:
            raise InputError("yi is a DataFrame without a 'yi' column")
        if vi is None:
            if "vi" not in data.columns:
                raise InputError("yi is a DataFrame without a 'vi' column and vi was not given")
            vi = data["vi"]
        if isinstance(mods, str):
            mods = [mods]
        if isinstance(mods, (list, tuple)) and mods and all(isinstance(m, str) for m in mods):
            missing = [m for m in mods if m not in data.columns]
            if missing:
                raise InputError(f"mods names columns {missing} that are not in the DataFrame")
            mods = data[list(mods)]
        yi = data["yi"]
    if vi is None:
        raise InputError("vi is required (sampling variances)")
    y = np.asarray(yi, dtype=float).ravel()
    v = np.asarray(vi, dtype=float).ravel()
    if y.shape != v.shape:
        raise InputError(f"yi has {y.size} values but vi has {v.size}")
    if not np.all(np.isfinite(y)) or not np.all(np.isfinite(v)):
        raise InputError("yi and vi must be finite (remove studies with missing values first)")
    if np.any(v <= 0):
        raise InputError(f"vi must be > 0, got {v[v <= 0][:5].tolist()}")
    return y, v, mods


def meta_regression(yi, vi=None, mods=None, *, method: str = "REML", test: str = "z",
                    level: float = 0.95, permutations: int | None = None,
                    seed=None) -> MetaRegressionResult:
    """Mixed-effects meta-regression ``y_i = x_i'β + u_i + e_i``.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances; ``yi`` may be an ``effect_sizes``
        DataFrame (then ``vi`` defaults to its column and ``mods`` may be column
        names).
    mods : array_like, Series, DataFrame or column names
        Moderators; an intercept is added.  Text/categorical columns are dummy
        coded with the first level as reference.
    method : {"REML", "ML", "DL", "HE", "PM", "EE"}
        Estimator of the residual τ² (Viechtbauer 2005; Raudenbush 2009).
    test : {"z", "knha", "adhoc"}
        z/χ² tests, or Knapp-Hartung t tests and an F test for the moderators
        (Knapp & Hartung 2003).
    level : float
        Confidence level of the coefficient intervals.
    permutations : int, optional
        Number of random permutations of the moderator rows for permutation
        p-values (Higgins & Thompson 2004); τ² is re-estimated for each.  The
        p-value is ``(1 + #{stat_perm ≥ stat_obs}) / (1 + permutations)``.
    seed : int or numpy Generator, optional
        Seed of the permutations.

    Returns
    -------
    MetaRegressionResult

    Examples
    --------
    >>> import metaanalysis as ma
    >>> res = ma.meta_regression([0.1, 0.3, 0.2, 0.5, 0.4], [0.01, 0.02, 0.015, 0.03, 0.02],
    ...                          [1, 2, 3, 4, 5])
    >>> list(res.coef.index)
    ['intrcpt', 'mod']
    """
    if not (0 < level < 1):
        raise InputError(f"level must be between 0 and 1, got {level!r}")
    if mods is None:
        raise InputError("mods is required; use pool() for a model without moderators")
    y, v, mods = _as_yi_vi_mods(yi, vi, mods)
    method = "EE" if method == "FE" else method
    X = design_matrix(mods, y.size)
    out = fit_mixed(y, v, X.to_numpy(), method=method, test=test, level=level)
    notes: list[str] = []
    conv = bool(out["converged"][0])
    if not conv:
        warnings.warn(f"τ² estimator {method} did not converge", ConvergenceWarning, stacklevel=2)
        notes.append(f"Warning: the {method} iterations did not converge.")
    tau2 = float(out["tau2"][0])
    tau2_re, h2_re = _intercept_fit(y, v, method)
    if method == "EE":
        # common-effect model: proportional reduction of H² = Q/df (as metafor reports)
        h2_me = float(out["h2"][0])
        r2 = 0.0 if h2_re <= 0 else 100.0 * max(0.0, (h2_re - h2_me) / h2_re)
    else:
        r2 = 0.0 if tau2_re <= 0 else 100.0 * max(0.0, (tau2_re - tau2) / tau2_re)
    coef = pd.DataFrame({c: out[c][0] for c in ("beta", "se", "stat", "p", "ci_lb", "ci_ub")},
                        index=pd.Index(X.columns, name="term")).rename(columns={"beta": "estimate"})
    qm_p_perm = None
    if permutations is not None:
        if int(permutations) != permutations or permutations < 1:
            raise InputError(f"permutations must be a positive integer, got {permutations!r}")
        permutations = int(permutations)
        pp, qm_p_perm = _permutation_pvalues(y, v, X.to_numpy(), out, method, test, level,
                                             permutations, seed)
        coef["p_perm"] = pp
    return MetaRegressionResult(
        coef=coef, k=int(y.size), method=method, test=test, level=level, tau2=tau2,
        tau2_re=tau2_re, i2=float(out["i2"][0]), h2=float(out["h2"][0]), r2=r2,
        qm=float(out["qm"][0]), qm_df=int(out["qm_df"][0]), qm_df2=float(out["qm_df2"][0]),
        qm_p=float(out["qm_p"][0]), qe=float(out["qe"][0]), qe_df=int(out["qe_df"][0]),
        qe_p=float(out["qe_p"][0]), converged=conv, design=X, yi=y, vi=v,
        permutations=permutations, qm_p_perm=qm_p_perm, seed=seed, notes=tuple(notes))


def _permutation_pvalues(y, v, X, observed, method, test, level, n_perm, seed, chunk=2000):
    """Permutation p-values: rows of the moderators are shuffled relative to
    (yi, vi) and the full model, τ² included, is refitted on the batch."""
    rng = np.random.default_rng(seed)
    k, p = X.shape
    zobs = np.abs(observed["stat"][0])
    qobs = observed["qm"][0]
    count_z = np.zeros(p)
    count_q = 0
    done = 0
    while done < n_perm:
        b = min(chunk, n_perm - done)
        idx = np.argsort(rng.random((b, k)), axis=1)
        Xp = X[idx]  # (b, k, p)
        res = fit_mixed(np.broadcast_to(y, (b, k)), np.broadcast_to(v, (b, k)), Xp,
                        method=method, test=test, level=level)
        count_z += np.sum(np.abs(res["stat"]) >= zobs * (1 - 1e-12), axis=0)
        count_q += int(np.sum(res["qm"] >= qobs * (1 - 1e-12)))
        done += b
    return (count_z + 1) / (n_perm + 1), (count_q + 1) / (n_perm + 1)


# ---------------------------------------------------------------------------
# Subgroups
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SubgroupResult:
    """Result of :func:`subgroups` (immutable).

    ``groups`` maps each level to its :class:`PoolResult`; ``q_between`` is the
    test for subgroup differences on ``q_between_df`` degrees of freedom (an F
    statistic on ``(q_between_df, q_between_df2)`` df when ``tau2="common"`` and
    ``test="knha"``).  ``tau2`` says whether τ² was estimated separately per
    subgroup or once, in common.
    """

    groups: dict
    q_between: float
    q_between_df: int
    q_between_p: float
    tau2: str
    method: str
    test: str
    level: float
    overall: Any = field(repr=False)
    q_between_df2: float | None = None
    tau2_common: float | None = None
    notes: tuple[str, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        """One row per subgroup: k, estimate, se, p, CI, τ², I², Q and its p."""
        rows = {str(g): {"k": r.k, "estimate": r.estimate, "se": r.se, "p": r.p,
                         "ci_lb": r.ci_lb, "ci_ub": r.ci_ub, "tau2": r.tau2, "i2": r.i2,
                         "q": r.q, "q_p": r.q_p} for g, r in self.groups.items()}
        out = pd.DataFrame.from_dict(rows, orient="index")
        out.index.name = "group"
        return out

    def summary(self) -> str:
        lvl = f"{100 * self.level:g}%"
        how = ("τ² estimated separately in each subgroup" if self.tau2 == "separate"
               else f"one τ² common to all subgroups (τ² = {num(self.tau2_common)}, "
                    "from the meta-regression on subgroup)")
        lines = [f"Subgroup analysis ({len(self.groups)} subgroups, k = {self.overall.k})",
                 f"τ² estimator: {self.method}; {how}",
                 f"CI: {'normal (z)' if self.test == 'z' else 'Knapp-Hartung (t)'}", ""]
        w = max(8, max(len(str(g)) for g in self.groups))
        lines.append(f"{'group':<{w}}  {'k':>3}  {'estimate':>9}  {lvl + ' CI':>20}  "
                     f"{'τ²':>8}  {'I²':>6}")
        for g, r in self.groups.items():
            lines.append(f"{g!s:<{w}}  {r.k:>3}  {num(r.estimate):>9}  "
                         f"{ci(r.ci_lb, r.ci_ub):>20}  {num(r.tau2):>8}  {pct(r.i2):>6}")
        lines.append("")
        if self.tau2 == "separate":
            lines.append(f"Test for subgroup differences (Q-between, common-effect fit of the "
                         f"subgroup estimates): Q({self.q_between_df}) = {num(self.q_between)}, "
                         f"p = {pval(self.q_between_p)}")
        elif self.q_between_df2 is not None:
            lines.append(f"Test for subgroup differences (moderator test, common τ²): "
                         f"F({self.q_between_df}, {num(self.q_between_df2, 0)}) = "
                         f"{num(self.q_between)}, p = {pval(self.q_between_p)}")
        else:
            lines.append(f"Test for subgroup differences (moderator test, common τ²): "
                         f"QM({self.q_between_df}) = {num(self.q_between)}, "
                         f"p = {pval(self.q_between_p)}")
        lines.extend(self.notes)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        try:
            import html

            return (f"<pre>{html.escape(self.summary())}</pre>"
                    + self.to_frame().to_html(float_format=lambda x: num(x)))
        except Exception:  # noqa: BLE001 - display must not fail
            return "<pre>SubgroupResult</pre>"


def subgroups(yi, vi=None, groups=None, *, method: str = "REML", test: str = "z",
              level: float = 0.95, tau2: str = "separate", labels=None) -> SubgroupResult:
    """Pool within subgroups and test for differences between them.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances (``yi`` may be an ``effect_sizes``
        DataFrame; then ``groups`` may be a column name).
    groups : array_like or str
        Subgroup of each study.  Subgroups are ordered as a pandas
        ``Categorical`` orders them (sorted, unless the categories are given).
    method, test, level :
        As in :func:`metaanalysis.pool`.
    tau2 : {"separate", "common"}
        ``"separate"`` (default): an independent model per subgroup; Q-between
        is the heterogeneity Q of a common-effect fit of the subgroup estimates
        (with their standard errors), on G − 1 df (Borenstein et al. 2009, ch.
        19).  ``"common"``: one τ² for all subgroups, from the meta-regression
        on subgroup dummies; subgroup estimates and the test of differences
        (QM, or F with Knapp-Hartung) come from that model.

    Returns
    -------
    SubgroupResult

    Examples
    --------
    >>> import metaanalysis as ma
    >>> sg = ma.subgroups([0.1, 0.3, 0.2, 0.6, 0.5], [0.01, 0.02, 0.02, 0.03, 0.02],
    ...                   ["a", "a", "a", "b", "b"], method="DL")
    >>> sorted(sg.groups)
    ['a', 'b']
    """
    from . import engine
    from .pooling import pool

    if tau2 not in ("separate", "common"):
        raise InputError(f"tau2={tau2!r} is not known; expected 'separate' or 'common'")
    if isinstance(yi, pd.DataFrame) and isinstance(groups, str):
        if groups not in yi.columns:
            raise InputError(f"groups={groups!r} is not a column of the DataFrame")
        if labels is None:
            for col in ("study", "label", "id"):
                if col in yi.columns:
                    labels = [str(x) for x in yi[col]]
                    break
        groups = yi[groups]
    if groups is None:
        raise InputError("groups is required (one subgroup label per study)")
    measure = yi.attrs.get("measure") if isinstance(yi, pd.DataFrame) else None
    y, v, _ = _as_yi_vi_mods(yi, vi, None if not isinstance(yi, pd.DataFrame) else [])
    g = pd.Series(groups).reset_index(drop=True)
    if len(g) != y.size:
        raise InputError(f"groups has {len(g)} entries but there are {y.size} studies")
    if g.isna().any():
        raise InputError(f"groups has missing values in rows "
                         f"{list(np.flatnonzero(g.isna().to_numpy())[:5])}")
    cat = g.astype("category") if not isinstance(g.dtype, pd.CategoricalDtype) else g
    levels = [lv for lv in cat.cat.categories if (cat == lv).any()]
    if len(levels) < 2:
        raise InputError(f"groups has a single level {levels!r}; expected at least two subgroups")
    labels = (tuple(str(x) for x in labels) if labels is not None
              else tuple(f"Study {i + 1}" for i in range(y.size)))
    if len(labels) != y.size:
        raise InputError(f"labels has {len(labels)} entries but there are {y.size} studies")
    lab = np.asarray(labels, dtype=object)
    # A DataFrame from effect_sizes travels into every fit, so results keep their
    # measure, ni and study data (forest text columns, back-transforms).
    frame = yi.reset_index(drop=True) if isinstance(yi, pd.DataFrame) else None

    def _fit(mk, labs):
        if frame is None:
            return pool(y[mk], v[mk], method=method, test=test, level=level, labels=labs,
                        measure=measure)
        part = frame.loc[mk].reset_index(drop=True)
        part.attrs = dict(frame.attrs)
        return pool(part, method=method, test=test, level=level, labels=labs)

    overall = _fit(np.ones(y.size, dtype=bool), list(labels))
    notes: list[str] = []
    fitted: dict = {}
    masks = {lv: (cat == lv).to_numpy() for lv in levels}
    if tau2 == "separate":
        for lv in levels:
            mk = masks[lv]
            fitted[lv] = _fit(mk, list(lab[mk]))
        est = np.array([fitted[lv].estimate for lv in levels])
        se = np.array([fitted[lv].se for lv in levels])
        between = engine.fit(est[None, :], (se**2)[None, :], method="EE", test="z",
                             qprofile=False)
        qb = float(between["q"][0])
        qb_df = len(levels) - 1
        qb_p = float(stats.chi2.sf(qb, qb_df))
        qb_df2 = None
        tau2_common = None
        small = [str(lv) for lv in levels if fitted[lv].k < 2]
        if small:
            notes.append(f"Subgroups with a single study (no τ² estimate): {', '.join(small)}.")
    else:
        if method not in CORE_METHODS:
            raise InputError(f"tau2='common' estimates τ² by meta-regression, which does not offer "
                             f"method={method!r}; expected one of "
                             f"{', '.join(m for m in CORE_METHODS if m != 'FE')}")
        reg = meta_regression(y, v, pd.DataFrame({"group": cat}), method=method, test=test,
                              level=level)
        qb, qb_df, qb_p = reg.qm, reg.qm_df, reg.qm_p
        qb_df2 = reg.qm_df2 if test != "z" else None
        tau2_common = reg.tau2
        Xg = np.column_stack([masks[lv].astype(float) for lv in levels])
        cell = fit_mixed(y, v, Xg, method=method, test=test, level=level,
                         tau2=np.array([tau2_common]))
        for j, lv in enumerate(levels):
            mk = masks[lv]
            base = _fit(mk, list(lab[mk]))
            fixed = engine.fit(y[mk][None, :], v[mk][None, :], method=method, test="z",
                               level=level, tau2=np.array([tau2_common]), qprofile=False)
            fitted[lv] = base.with_(
                estimate=float(cell["beta"][0, j]), se=float(cell["se"][0, j]),
                stat=float(cell["stat"][0, j]), p=float(cell["p"][0, j]),
                ci_lb=float(cell["ci_lb"][0, j]), ci_ub=float(cell["ci_ub"][0, j]),
                tau2=tau2_common, i2=float(fixed["i2"][0]), h2=float(fixed["h2"][0]),
                pi_lb=float(fixed["pi_lb"][0]), pi_ub=float(fixed["pi_ub"][0]),
                weights=np.asarray(fixed["weights"][0], float),
                se_tau2=float("nan"), tau2_ci_lb=float("nan"), tau2_ci_ub=float("nan"),
                i2_ci_lb=float("nan"), i2_ci_ub=float("nan"),
                df=float(y.size - len(levels)) if test != "z" else None,
                notes=base.notes + (f"τ² common to all subgroups ({num(tau2_common)}).",))
    return SubgroupResult(groups=fitted, q_between=qb, q_between_df=int(qb_df), q_between_p=qb_p,
                          tau2=tau2, method=method, test=test, level=level, overall=overall,
                          q_between_df2=qb_df2, tau2_common=tau2_common, notes=tuple(notes))
