"""Inference at the estimated τ²: coefficients, tests, heterogeneity, SE of τ², predictions.

Conventions are metafor's (``rma.uni``, ``predict.rma``, Viechtbauer 2010, J Stat
Softw 36(3)); with w = 1/(v + τ̂²), P = W − WX(X'WX)⁻¹X'W and p coefficients:

* β̂ = (X'WX)⁻¹X'Wy, Var β̂ = (X'WX)⁻¹;
* ``test="knha"``: Knapp & Hartung (2003, Stat Med 22:2693): Var β̂ times
  s² = Q_E(τ̂²)/(k − p) (0 when Q_E(τ̂²) = 0), t(k − p) tests and an F(m, k − p)
  test of the moderators; ``"adhoc"``: s² at least 1 (Röver, Knapp & Friede
  2015, BMC Med Res Methodol 15:99);
* Q_M: Wald χ²(m) = β̂_b'(Var β̂_b)⁻¹β̂_b over the tested coefficients b (F = Q_M/m
  with knha);
* Q_E = y'P₀y at τ² = 0 (Cochran's Q without moderators), χ²(k − p);
* I² and H²: from Q_E for ``EE`` (I² = (Q_E − df)/Q_E, H² = Q_E/df), from τ² otherwise
  (I² = τ²/(τ² + s²), H² = (τ² + s²)/s², s² = (k − p)/tr P₀, the "typical"
  within-study variance of Higgins & Thompson 2002, Stat Med 21:1539);
* SE of τ²: metafor's for each estimator (variance of the estimating equation
  for DL, HS, HSk, HE, SJ; inverse information for ML, REML; √(2k²/(k − p))/Σw for
  EB, PM, PMM), at τ̂²;
* prediction interval x'β̂ ± c √(x'Var β̂ x + τ̂²) with c the normal or t(k − p)
  quantile (Higgins, Thompson & Spiegelhalter 2009, J R Stat Soc A 172:137);
* k ≤ p (e.g. one study without moderators): τ² = 0, Q_E = 0 with p-value 1,
  I² = 0, H² = 1, normal-theory tests (metafor).

Examples
--------
>>> import numpy as np
>>> b, V = np.array([[0.5, 0.1]]), np.array([[[0.04, 0.0], [0.0, 0.01]]])
>>> out = predict(b, V, np.array([0.2]), np.array([[1.0, 2.0]]))
>>> round(float(out["pred"][0, 0]), 3), round(float(out["se"][0, 0]), 3)
(0.7, 0.283)
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from metaanalysis.engine.design import colsum
from metaanalysis.engine.roots import count_true
from metaanalysis.engine.wls import trace_pdpd, wls

__all__ = ["chi2_sf", "critical", "predict", "se_tau2"]

_EPS = np.finfo(float).eps


_CLOSED_DF = 60  # closed forms for integer df up to this ...
_CLOSED_X = 600.0  # ... and x below this (e^{-x/2} far from underflow)


def chi2_sf(df, x):
    """Upper tail P(χ²_df > x), exact for integer df (as ``special.chdtrc``).

    For integer df ≤ 60 and x < 600 the closed forms are several times faster
    than the incomplete-gamma routine: for even df, e^{−x/2} Σ_{j<df/2}
    (x/2)^j/j!; for odd df, 2Φ(−√x) + e^{−x/2} Σ_{j=1}^{(df−1)/2}
    x^{j−1/2}/(1·3·…·(2j−1)) √(2/π) (Abramowitz & Stegun 26.4.4–26.4.5).  All
    terms are positive, so there is no cancellation.  Other values go to
    ``special.chdtrc``.  The choice is made per value, never from the size of
    the batch, so a row gets the same bits in any batch.

    Examples
    --------
    >>> import numpy as np
    >>> p = chi2_sf(np.array([1, 4, 4, 7.5]), np.array([3.84, 2.0, 900.0, 7.5]))
    >>> bool(np.allclose(p, special.chdtrc([1, 4, 4, 7.5], [3.84, 2.0, 900.0, 7.5])))
    True
    """
    df = np.asarray(df, dtype=float)
    x = np.asarray(x, dtype=float)
    if df.shape != x.shape:
        df, x = np.broadcast_arrays(df, x)
    if x.size == 0:
        return np.empty(x.shape)
    lo, hi = df.min(), df.max()
    if lo == hi:  # one df for every value (a single analysis; a batch of equal k)
        if not (1 <= lo <= _CLOSED_DF and lo == int(lo)):
            return special.chdtrc(df, x)
        closed = x < _CLOSED_X
        out = _chi2_sf_closed(int(lo), x)
        if count_true(closed) != closed.size:  # x ≥ 600 or NaN: the incomplete gamma
            np.copyto(out, special.chdtrc(df, x), where=~closed)
        return out
    closed = (df >= 1) & (df <= _CLOSED_DF) & (df == np.floor(df)) & (x < _CLOSED_X)
    out = np.empty(x.shape) if count_true(closed) == closed.size else special.chdtrc(df, x)
    for dv in np.unique(df[closed]):
        sel = closed & (df == dv)
        out[sel] = _chi2_sf_closed(int(dv), x[sel])
    return out


def _chi2_sf_closed(n, xs):
    """The closed form of P(χ²_n > x) for integer n ≥ 1 (1 where x < 0)."""
    if xs.ndim == 1 and xs.size <= _FEW_VALUES:
        return _chi2_sf_closed_few(n, xs)
    h = 0.5 * xs
    e = np.exp(-h)
    if n % 2 == 0:
        term = np.ones_like(xs)
        acc = term.copy()
        for j in range(1, n // 2):
            term *= h / j
            acc += term
        res = e * acc
    else:
        rx = np.sqrt(xs)
        res = 2.0 * special.ndtr(-rx)
        if n > 1:
            term = rx * np.sqrt(2.0 / np.pi)
            acc = term.copy()
            for j in range(2, (n + 1) // 2):
                term *= xs / (2 * j - 1)
                acc += term
            res += e * acc
    return np.where(xs >= 0, res, 1.0)


_FEW_VALUES = 8


def _chi2_sf_closed_few(n, xs):
    """:func:`_chi2_sf_closed` for a few values: the same IEEE operations on Python
    floats (e^{−x/2} and Φ stay NumPy/SciPy calls), so the same bits without NumPy's
    per-call overhead in the loop over terms."""
    xl = xs.tolist()
    es = np.exp(-(0.5 * xs)).tolist()
    out = []
    for x, e in zip(xl, es):
        if not x >= 0:  # x < 0 or NaN: 1, as np.where(xs >= 0, res, 1.0)
            out.append(1.0)
            continue
        if n % 2 == 0:
            h = 0.5 * x
            term = acc = 1.0
            for j in range(1, n // 2):
                term *= h / j
                acc += term
            res = e * acc
        else:
            rx = math.sqrt(x)
            res = 2.0 * float(special.ndtr(-rx))
            if n > 1:
                term = rx * math.sqrt(2.0 / math.pi)
                acc = term
                for j in range(2, (n + 1) // 2):
                    term *= x / (2 * j - 1)
                    acc += term
                res += e * acc
        out.append(res)
    return np.array(out)


def critical(test, level, df):
    """Critical value per row: normal for ``z`` (or df < 1), else t(df)."""
    z = special.ndtri(0.5 + 0.5 * level)
    if test == "z":
        return z
    with np.errstate(invalid="ignore"):
        c = special.stdtrit(np.maximum(df, 1), 0.5 + 0.5 * level)
    return np.where(df >= 1, c, z)


def pvalue(test, stat, df):
    """Two-sided p-value of z or t(df) statistics (normal where df < 1)."""
    zp = 2 * special.ndtr(-np.abs(stat))
    if test == "z":
        return zp
    with np.errstate(invalid="ignore"):
        tp = 2 * special.stdtr(np.maximum(df, 1), -np.abs(stat))
    return np.where(df >= 1, tp, zp)


def scale_factor(test, q_t, df):
    """The Knapp–Hartung factor s² = Q_E(τ̂²)/(k − p) (0 when Q_E(τ̂²) ≤ ε; at least 1
    for ``adhoc``; 1 for ``z`` and where df < 1)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = np.where(q_t <= _EPS, 0.0, q_t / df)
    if test == "adhoc":
        s2 = np.maximum(s2, 1.0)
    return np.where(df >= 1, s2, 1.0)


def se_tau2(c, method, t, w=None, A=None):
    """SE of τ̂² per row, metafor's formula for ``method`` (``w``, ``A``: weights and
    (X'WX)⁻¹ at τ̂² when the caller has them)."""
    d = c.d
    df = (c.k - c.p).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method in ("DL", "HS", "HSk"):
            trp = c.trp0
            core = np.sqrt(2 * df + 4 * t * trp + 2 * t * t * trace_pdpd(d, c.w0, c.a0))
            if method == "DL":
                return core / trp
            return core / c.sw0 * (c.k / df if method == "HSk" else 1.0)
        if method == "HE":
            Ao, _ = c.ols()
            vz = c.vz
            trpv = colsum(vz) - d.tr(d.mm(Ao, d.gram(c.m, vz)))
            pvpv = trace_pdpd(d, c.m, Ao, vz, vz)
            return np.sqrt(2 * pvpv + 4 * t * trpv + 2 * t * t * df) / df
        if method == "SJ":
            from metaanalysis.engine.tau2 import sj_start

            t0 = np.nan_to_num(sj_start(c))
            wj, _, Aj, _, _ = wls(d, c.y, c.v, t0)
            vz = c.vz
            s = (2 * trace_pdpd(d, wj, Aj, vz, vz) + 4 * t * trace_pdpd(d, wj, Aj, None, vz)
                 + 2 * t * t * trace_pdpd(d, wj, Aj))
            return t0 * np.sqrt(s) / df
        if w is None:
            w, _, A, _, _ = wls(d, c.y, c.v, t)
        if method == "ML":
            return np.sqrt(2 / colsum(w, w))
        if method == "REML":
            return np.sqrt(2 / trace_pdpd(d, w, A))
        # EB, PM, PMM (Morris 1983)
        return np.sqrt(2 * c.k * c.k / df) / colsum(w)


def wald(beta, V, btt):
    """Wald statistic β_b'(V_bb)⁻¹β_b per row; ``beta`` (p, n), ``V`` (p, p, n)."""
    b = beta[btt]
    Vb = V[np.ix_(btt, btt)]
    if len(btt) == 1:
        return b[0] * b[0] / Vb[0, 0]
    M, rhs = Vb.transpose(2, 0, 1), b.T[..., None]
    with np.errstate(all="ignore"):
        try:
            sol = np.linalg.solve(M, rhs)[..., 0]
        except np.linalg.LinAlgError:  # a singular row: NaN there, the others as usual
            sol = np.full(b.T.shape, np.nan)
            for j in range(sol.shape[0]):
                try:
                    sol[j] = np.linalg.solve(M[j:j + 1], rhs[j:j + 1])[0, :, 0]
                except np.linalg.LinAlgError:
                    pass
    out = sol[:, 0] * b[0]  # Σ over coefficients in order: the same bits for any batch
    for a in range(1, len(btt)):
        out += sol[:, a] * b[a]
    return out


def predict(coef, vcov, tau2, Xnew, *, test="z", level=0.95, df=None):
    """Predicted values of a fitted model at new moderator values, per row.

    Parameters
    ----------
    coef : array (B, p)
    vcov : array (B, p, p)
        Covariance of the coefficients (Knapp–Hartung-scaled with ``knha``).
    tau2 : array (B,)
    Xnew : array (m, p)
        Rows of the design at which to predict.
    test, level, df :
        ``df`` (B,): t degrees of freedom (k − p) for ``knha``/``adhoc``.

    Returns
    -------
    dict of arrays (B, m): ``pred, se, ci_lb, ci_ub, pi_lb, pi_ub``.
    """
    coef = np.atleast_2d(np.asarray(coef, dtype=float))
    vcov = np.asarray(vcov, dtype=float).reshape(coef.shape[0], coef.shape[1], coef.shape[1])
    Xn = np.atleast_2d(np.asarray(Xnew, dtype=float))
    pred = coef @ Xn.T
    var = np.einsum("mi,bij,mj->bm", Xn, vcov, Xn)
    se = np.sqrt(var)
    dfa = np.full(coef.shape[0], np.inf) if df is None else np.asarray(df, dtype=float)
    crit = critical(test, level, dfa)
    crit = np.broadcast_to(crit, (coef.shape[0],))[:, None]
    ps = np.sqrt(var + np.asarray(tau2, dtype=float).reshape(-1, 1))
    return {"pred": pred, "se": se, "ci_lb": pred - crit * se, "ci_ub": pred + crit * se,
            "pi_lb": pred - crit * ps, "pi_ub": pred + crit * ps}
