"""Estimators of the between-study variance τ², all on batches of meta-analyses.

Every estimator takes arrays ``yi``, ``vi`` of shape ``(B, k)`` and a boolean
``mask`` of the same shape (``True`` = study present) and returns
``(tau2, converged)``, two arrays of length ``B``.  τ² is never negative:
estimators whose formula can go below zero are truncated at 0, as metafor does.

The iterative estimators (ML, REML, EB, PM, PMM) find the root of a score or
estimating equation with :func:`solve_decreasing`, a vectorised safeguarded
Newton iteration that keeps a bracket ``[lo, hi]`` around the
root and bisects whenever the Newton step leaves the bracket or does not
shrink the residual fast enough (the ``rtsafe`` scheme of Press et al.,
Numerical Recipes, 3rd ed., §9.4).  ML, REML and the generalised-Q roots
(PM, PMM, EB, Q-profile limits) pass Halley's slope g' − g g''/(2g') with
analytic second derivatives, so two or three evaluations usually suffice.  It converges on every row that has a
bracket: k = 2, τ² on the boundary 0, identical effects and variances from
1e-8 to 1e4 included.

Formulas follow Veroniki et al. (2016), Res Synth Methods 7:55–79, and the
original papers cited per estimator.

Examples
--------
>>> import numpy as np
>>> from metaanalysis.engine.tau2 import ESTIMATORS
>>> y = np.array([[0.1, 0.3, 0.35, -0.2]]); v = np.array([[0.01, 0.02, 0.015, 0.03]])
>>> t2, ok = ESTIMATORS["DL"](y, v, np.isfinite(y))
>>> float(t2[0]) > 0, bool(ok[0])
(True, True)
"""

from __future__ import annotations

import numpy as np
from scipy import special

from metaanalysis.engine.design import Intercept
from metaanalysis.engine.likelihood import score_bound_hi, tau2_lik
from metaanalysis.engine.roots import MAXITER, TOL, solve_decreasing

__all__ = [
    "ESTIMATORS",
    "clean",
    "dl_from_sums",
    "q_stat",
    "score_bound_hi",
    "solve_decreasing",
    "tau2_dl",
    "tau2_eb",
    "tau2_he",
    "tau2_hs",
    "tau2_hsk",
    "tau2_ml",
    "tau2_pm",
    "tau2_pmm",
    "tau2_reml",
    "tau2_sj",
]

__all__ += ["MAXITER", "TOL"]

# np.einsum's and np.count_nonzero's C cores without their Python dispatch
# layers (~1.5 and ~0.15 µs per call saved; a single pool() makes ~50 and ~30)
try:
    from numpy._core.multiarray import c_einsum as _einsum
    from numpy._core.multiarray import count_nonzero as _count
except ImportError:  # pragma: no cover - older numpy
    try:
        from numpy.core.multiarray import c_einsum as _einsum
        from numpy.core.multiarray import count_nonzero as _count
    except ImportError:
        _einsum, _count = np.einsum, np.count_nonzero


def _rs(a):
    """Row sums of a (B, k) array (einsum: faster than .sum(axis=1) for short rows)."""
    return _einsum("ij->i", a)


def _filled(shape, value, dtype=float):
    """``np.full`` without its Python-level overhead (it matters for a batch of one)."""
    a = np.empty(shape, dtype)
    a.fill(value)
    return a


def clean(yi, vi, mask):
    """Return ``(y, v, m, k)``: absent entries set to y = 0, v = 1, m = 0.0."""
    m = np.asarray(mask, dtype=bool)
    if _count(m) == m.size:  # nothing absent: no copies needed
        yi = np.asarray(yi, dtype=float)
        return yi, np.asarray(vi, dtype=float), _filled(m.shape, 1.0), _filled(m.shape[0], m.shape[1], int)
    y = np.where(m, yi, 0.0)
    v = np.where(m, vi, 1.0)
    return y, v, m.astype(float), np.count_nonzero(m, axis=1)


def _wmean(y, w):
    sw = _rs(w)
    return _rs(w * y) / sw, sw


def q_stat(y, v, m, tau2=0.0):
    """Generalised Q, ``sum w (y - mu_w)^2`` with ``w = m / (v + tau2)``.

    Also returns ``sum w^2 (y - mu_w)^2`` (minus the derivative of Q in τ²).
    """
    q, dq, _ = _q_parts(y, v, m, tau2, False)
    return q, dq


def _q_parts(y, v, m, tau2, second):
    """Q(τ²), −dQ/dτ² and (when ``second``) d²Q/dτ² on a (B, k) batch.

    With w = 1/(v + τ²), r = y − μ_w: dQ/dτ² = −Σw²r² (∂Q/∂μ = 0) and, as
    dμ_w/dτ² = −Σw²r/Σw, d²Q/dτ² = 2Σw³r² − 2(Σw²r)²/Σw.
    """
    t = np.asarray(tau2, dtype=float)
    w = m / (v + (t[:, None] if t.ndim else t))
    sw = _einsum("ij->i", w)
    r = y - (_einsum("ij,ij->i", w, y) / sw)[:, None]
    wr = w * r
    q = _einsum("ij,ij->i", wr, r)
    dq = _einsum("ij,ij->i", wr, wr)
    if not second:
        return q, dq, None
    w2r = _einsum("ij,ij->i", wr, w)
    return q, dq, 2.0 * (_einsum("ij,ij,ij->i", wr, wr, w) - w2r * w2r / sw)


# ------------------------------------------------------------ closed-form estimators
def tau2_dl(yi, vi, mask):
    """DerSimonian–Laird method-of-moments estimator.

    DerSimonian R, Laird N (1986). Meta-analysis in clinical trials.
    Control Clin Trials 7:177–188.  τ² = max(0, (Q − (k − 1)) / (Σw − Σw²/Σw)).
    """
    y, v, m, k = clean(yi, vi, mask)
    q, _ = q_stat(y, v, m)
    return _dl(q, v, m, k), _filled(len(k), True, bool)


def _dl(q, v, m, k):
    """DL τ² on cleaned arrays, given Q at τ² = 0."""
    w = m / v
    return dl_from_sums(q, k, _rs(w), _einsum("ij,ij->i", w, w))


def dl_from_sums(q, k, sw, sw2):
    """DerSimonian–Laird τ² from Q (at τ² = 0), k, Σw and Σw² (w = 1/v).

    The one implementation of the DL formula, shared by :func:`tau2_dl` and
    the engine (which has these sums already): τ² = max(0, (Q − (k − 1)) /
    (Σw − Σw²/Σw)); 0 where undefined (k < 2).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (q - (k - 1)) / (sw - sw2 / sw)
    return np.maximum(np.nan_to_num(t, nan=0.0), 0.0)


def tau2_he(yi, vi, mask):
    """Hedges (unweighted method-of-moments, "variance component") estimator.

    Hedges LV (1983). A random effects model for effect sizes. Psychol Bull
    93:388–395.  τ² = max(0, Σ(y − ȳ)²/(k − 1) − Σv/k).
    """
    y, v, m, k = clean(yi, vi, mask)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = _ss_mean(y, m, k) / (k - 1) - _rs(v * m) / k
    return np.maximum(np.nan_to_num(t, nan=0.0), 0.0), _filled(len(k), True, bool)


def tau2_hs(yi, vi, mask):
    """Hunter–Schmidt estimator.

    Hunter JE, Schmidt FL (2004). Methods of Meta-Analysis, 2nd ed. Sage.
    τ² = max(0, (Q − k) / Σw), w = 1/v (Viechtbauer 2005, J Educ Behav Stat 30:261).
    """
    y, v, m, k = clean(yi, vi, mask)
    q, _ = q_stat(y, v, m)
    t = (q - k) / _rs(m / v)
    return np.maximum(t, 0.0), _filled(len(k), True, bool)


def tau2_hsk(yi, vi, mask):
    """Hunter–Schmidt estimator with the small-sample correction k/(k − 1) on Q.

    Brannick MT, Potter SM, Benitez B, Morris SB (2019). Bias and precision of
    alternate estimators in meta-analysis. Organ Res Methods 22:490–514.
    τ² = max(0, (Q k/(k − 1) − k) / Σw), w = 1/v.
    """
    y, v, m, k = clean(yi, vi, mask)
    q, _ = q_stat(y, v, m)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (q * k / (k - 1) - k) / _rs(m / v)
    return np.maximum(np.nan_to_num(t, nan=0.0), 0.0), _filled(len(k), True, bool)


def _ss_mean(y, m, k):
    """Unweighted Σ(y − ȳ)² per row on cleaned arrays (HE; SJ's start τ₀² = this/k)."""
    ybar = _rs(y * m) / k
    return _rs(m * (y - ybar[:, None]) ** 2)


def tau2_sj(yi, vi, mask):
    """Sidik–Jonkman two-step estimator.

    Sidik K, Jonkman JN (2005). Simple heterogeneity variance estimation for
    meta-analysis. J R Stat Soc C 54:367–384.  With τ₀² = Σ(y − ȳ)²/k and
    w = 1/(v + τ₀²): τ² = τ₀² Σw(y − μ_w)²/(k − 1).
    """
    y, v, m, k = clean(yi, vi, mask)
    t0 = _ss_mean(y, m, k) / k
    q, _ = q_stat(y, v, m, t0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = t0 * q / (k - 1)
    return np.maximum(np.nan_to_num(t, nan=0.0), 0.0), _filled(len(k), True, bool)


# ------------------------------------------------------------ iterative estimators
def _q_root(y, v, m, target, x0=None, cap=None, q0=None):
    """Solve generalised Q(τ²) = target (Q decreasing in τ²); 0 when Q(0) <= target.

    With ``cap``, solutions above ``cap`` are returned as ``cap``.  ``q0``:
    Q(0) per row when the caller has it already.
    Returns ``(tau2, converged, hit_cap)``.
    """
    n = y.shape[0]
    target = np.asarray(target, float)
    if target.ndim == 0:
        target = np.full(n, target)
    if q0 is None:
        q0, _ = q_stat(y, v, m)
    # target 0 (k = 1): Q is 0 up to rounding, and no τ² can lower it further
    up = (q0 > target) & (target > 0)
    n_up = _count(up)
    if n_up == 0:
        return np.zeros(n), np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
    every = n_up == n  # all rows active: no copies
    if every:
        ya, va, ma, ta = y, v, m, target
    else:
        act = np.flatnonzero(up)
        ya, va, ma, ta = y[act], v[act], m[act], target[act]
    d = ya - (_einsum("ij,ij->i", ya, ma) / _einsum("ij->i", ma))[:, None]
    d *= d
    hi = _einsum("ij,ij->i", ma, d) / ta * (1 + 1e-9) + 1e-300  # Q(t) <= SS/t < target beyond

    def g(t, ya, va, ma, ita):
        # 1/Q is close to linear in τ² (exactly so for equal vi): Halley's
        # method (Newton with the second derivative) on f = 1/target − 1/Q(τ²)
        # converges in two or three steps.  f' = Q'/Q² = −dq/Q², and the
        # Halley slope f' − f f''/(2f') simplifies, with a = dq/Q, to
        # −(a/Q + f (a − Q''/(2 dq))).
        q, dq, d2q = _q_parts(ya, va, ma, t, True)
        iq = 1.0 / q
        f = ita - iq
        a = dq * iq
        return f, -(a * iq + f * (a - 0.5 * d2q / dq))

    data = (ya, va, ma, 1.0 / ta)
    lo = np.zeros(hi.shape[0])
    beyond = None
    if cap is not None:
        capa = np.asarray(cap, float)
        if not every:
            capa = capa[act]
        if _count(hi > capa):  # else every root lies below the cap
            qc, _ = g(capa, *data)
            beyond = qc >= 0
            lo[beyond] = capa[beyond]  # root beyond the cap: nothing to solve
        hi = np.minimum(hi, capa)
    if x0 is None:
        start = lo
    else:
        start = np.asarray(x0, float)
        if not every:
            start = start[act]
        start = np.where((start >= 0) & (start < hi), start, lo)
    vmin = np.minimum.reduce(np.where(ma > 0, va, np.inf), 1)
    x, c = solve_decreasing(g, data, lo, hi, start, scale=vmin * 1e-6, quadratic=True)
    hit = np.zeros(n, dtype=bool)
    if beyond is not None:
        x = np.where(beyond, hi, x)
        c = c | beyond
        if every:
            hit = beyond
        else:
            hit[act] = beyond
    if every:
        return x, c, hit
    out = np.zeros(n)
    conv = np.ones(n, dtype=bool)
    out[act], conv[act] = x, c
    return out, conv, hit


def tau2_pm(yi, vi, mask, x0=None):
    """Paule–Mandel estimator: the root of Q(τ²) = k − 1.

    Paule RC, Mandel J (1982). Consensus values and weighting factors.
    J Res Natl Bur Stand 87:377–385.  τ² = 0 when Q(0) ≤ k − 1.
    """
    y, v, m, k = clean(yi, vi, mask)
    return _q_root_dl(y, v, m, k, np.maximum(k - 1, 0), x0)


def _q_root_dl(y, v, m, k, target, x0):
    """:func:`_q_root` on cleaned arrays, started at DL when ``x0`` is None."""
    q0, _ = q_stat(y, v, m)
    if x0 is None:
        x0 = _dl(q0, v, m, k)
    t, c, _ = _q_root(y, v, m, target, x0, q0=q0)
    return t, c


def tau2_eb(yi, vi, mask, x0=None):
    """Empirical Bayes estimator (Morris 1983; Berkey et al. 1995).

    Morris CN (1983). Parametric empirical Bayes inference. J Am Stat Assoc
    78:47–55; Berkey CS et al. (1995). Stat Med 14:395–411.  The fixed point
    τ² = Σw[k/(k − 1)(y − μ_w)² − v]/Σw is the root of Q(τ²) = k − 1, so EB
    equals Paule–Mandel (Viechtbauer et al. 2015, Res Synth Methods 6:195).
    """
    return tau2_pm(yi, vi, mask, x0)


def tau2_pmm(yi, vi, mask, x0=None):
    """Median-unbiased Paule–Mandel: the root of Q(τ²) = χ²₀.₅(k − 1).

    Viechtbauer W (2021), metafor "PMM"; the median-unbiased Q-profile idea of
    Viechtbauer W (2007). Confidence intervals for the amount of heterogeneity
    in meta-analysis. Stat Med 26:37–52.
    """
    y, v, m, k = clean(yi, vi, mask)
    # the median of χ²(k − 1); special.chdtri (upper-tail inverse) keeps scipy.stats unimported
    med = np.where(k > 1, special.chdtri(np.maximum(k - 1, 1), 0.5), 0.0)
    return _q_root_dl(y, v, m, k, med, x0)


def _lik_root(yi, vi, mask, reml, x0=None):
    """:func:`metaanalysis.engine.likelihood.tau2_lik` (global maximum) on (B, k) arrays."""
    m = np.asarray(mask, dtype=bool)
    yT = np.where(m, yi, 0.0).T.copy()
    vT = np.where(m, vi, np.inf).T.copy()
    return tau2_lik(Intercept(), yT, vT, m.T.astype(float), np.count_nonzero(m, axis=1),
                    reml, x0)


def tau2_ml(yi, vi, mask, x0=None):
    """Maximum-likelihood estimator (Hardy & Thompson 1996).

    Hardy RJ, Thompson SG (1996). A likelihood approach to meta-analysis with
    random effects. Stat Med 15:619–629.  The global maximiser of the
    likelihood over τ² ≥ 0 (a root of the score Σw²(y − μ)² − Σw, w = 1/(v + τ²),
    or 0), see :mod:`metaanalysis.engine.likelihood`.
    """
    return _lik_root(yi, vi, mask, False, x0)


def tau2_reml(yi, vi, mask, x0=None):
    """Restricted maximum-likelihood estimator (Viechtbauer 2005).

    Viechtbauer W (2005). Bias and efficiency of meta-analytic variance
    estimators in the random-effects model. J Educ Behav Stat 30:261–293.
    The global maximiser of the restricted likelihood over τ² ≥ 0 (a root of
    y'PPy − tr(P), P = W − ww'/Σw, or 0), see :mod:`metaanalysis.engine.likelihood`.
    """
    return _lik_root(yi, vi, mask, True, x0)


ESTIMATORS = {
    "DL": tau2_dl,
    "HE": tau2_he,
    "HS": tau2_hs,
    "HSk": tau2_hsk,
    "SJ": tau2_sj,
    "ML": tau2_ml,
    "REML": tau2_reml,
    "EB": tau2_eb,
    "PM": tau2_pm,
    "PMM": tau2_pmm,
}
