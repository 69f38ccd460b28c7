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

from collections.abc import Callable

import numpy as np
from scipy import special

__all__ = [
    "ESTIMATORS",
    "clean",
    "dl_from_sums",
    "q_stat",
    "scan_interior",
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

TOL = 1e-12
MAXITER = 200

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


# --------------------------------------------------------------------------- solver
def solve_decreasing(
    g: Callable[..., tuple[np.ndarray, np.ndarray]],
    data: tuple,
    lo: np.ndarray,
    hi: np.ndarray,
    x0: np.ndarray,
    *,
    tol: float = TOL,
    scale: np.ndarray | None = None,
    maxiter: int = MAXITER,
    quadratic: bool = False,
    row_axis: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised safeguarded Newton root finder for ``g(x) = 0`` on ``[lo, hi]``.

    ``g(x, *data)`` returns ``(value, slope)`` for a batch, where ``data`` is a
    tuple of per-row arrays (first axis = rows); the solver drops finished rows
    from ``data`` as it goes.  ``g`` must be positive at ``lo`` and negative at
    ``hi``.  ``slope`` may be the exact derivative or an approximation (minus
    the Fisher information for a score): a step that leaves the bracket or
    fails to halve ``|g|`` is replaced by bisection, so convergence is
    guaranteed (rtsafe, Press et al., Numerical Recipes §9.4).  Iterations
    loop; rows never do.

    ``quadratic=True`` (only when ``slope`` is the exact derivative, or
    Halley's slope ``g' − g g''/(2g')``, which converges faster still) also
    stops a row after a small Newton step whose predicted successor,
    ``|step|³/|previous step|²`` (quadratic convergence), is below the
    tolerance, provided the previous step was below 10% of the scale: that
    saves the last, confirming evaluation.  ``row_axis=-1`` when the arrays
    in ``data`` hold the rows on their last axis.  Batches of fewer than 64
    rows keep finished rows (frozen) instead of compacting.

    Returns ``(x, converged)``.
    """
    L = np.array(lo, dtype=float)
    H = np.array(hi, dtype=float)
    X = np.minimum(np.maximum(np.asarray(x0, dtype=float), L), H)
    n = X.shape[0]
    S = np.zeros(n) if scale is None else np.asarray(scale, dtype=float)
    rows = None  # original row numbers once finished rows have been dropped
    DX = H - L  # the step before the last one (rtsafe's "dxold")
    DX1 = DX  # the last step
    NEWT = np.zeros(n)  # the last step if it was a Newton step, else 0 (quadratic rule)
    fin = np.zeros(n, dtype=bool)
    nfin = 0
    newt = False  # any Newton step last time (else the quadratic rule cannot fire)
    sc = np.abs(X) + S
    tolx = tol * sc
    # Every pass costs a fixed number of array calls, so the loop body keeps
    # their count low (it dominates a batch of one): count_nonzero rather than
    # .any(), in-place updates, no np.clip.
    with np.errstate(all="ignore"):
        for _ in range(maxiter):
            val, slope = g(X, *data)
            pos = val > 0
            np.copyto(L, X, where=pos)
            np.copyto(H, X, where=~pos)
            step = val / slope
            xn = X - step
            # a Newton step below the tolerance means converged (even if
            # rounding puts it a hair outside the bracket)
            ast = np.abs(step)
            small = ast <= tolx
            if newt:
                # Newton step inside the asymptotic regime: the next one would be
                # ~ step³/step_prev² (quadratic convergence); apply it and stop
                # (with NEWT <= 0.1 sc this implies |step| <= 2.2e-5 sc)
                small |= (NEWT <= 0.1 * sc) & (ast * ast * ast <= tolx * NEWT * NEWT)
            # bisect when Newton leaves the bracket or would not halve the
            # step before last (rtsafe), unless already converged
            bad = ~(((xn > L) & (xn < H) & (ast <= 0.5 * DX)) | small)  # NaN steps bisect
            nbad = _count(bad)
            if quadratic:
                if nbad:
                    np.copyto(ast, 0.0, where=bad)
                NEWT = ast
                newt = nbad < bad.size
            if nbad:
                # midpoint; geometric when the bracket spans orders of magnitude
                mid = np.where((L > 0) & (H > 16 * L), np.sqrt(L * H), 0.5 * (L + H))
                np.copyto(xn, mid, where=bad)
            if _count(small):
                np.copyto(xn, np.minimum(np.maximum(xn, L), H), where=small)
            if nfin:
                np.copyto(xn, X, where=fin)
            DX = DX1
            DX1 = np.abs(xn - X)
            sc = np.abs(xn) + S  # carried to the next pass (X = xn there)
            tolx = tol * sc
            fin |= small | (DX1 <= tolx) | (H - L <= tolx)
            X = xn
            nfin = _count(fin)
            if nfin == fin.size:
                break
            if nfin * 4 > fin.size >= 64:  # compact: drop finished rows (small batches: freeze them)
                if rows is None:
                    rows = np.arange(n)
                    x_out = np.empty(n)
                    conv = np.zeros(n, dtype=bool)
                x_out[rows[fin]] = X[fin]
                conv[rows[fin]] = True
                keep = ~fin
                rows, X, L, H, S = rows[keep], X[keep], L[keep], H[keep], S[keep]
                sc, tolx = sc[keep], tolx[keep]
                DX, DX1, NEWT = DX[keep], DX1[keep], NEWT[keep]
                data = tuple(d[keep] if row_axis == 0 else d.compress(keep, -1) for d in data)
                fin = fin[keep]
                nfin = 0
    if rows is None:
        return X, fin
    x_out[rows] = X
    conv[rows] = fin
    return x_out, conv


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


def _lik_parts(yT, vT, t, reml):
    """The (restricted) likelihood equation in τ², as ``1 − tr(P)/y'PPy``, and its slope.

    Arrays in the transposed layout ``(k, B)`` (rows of the batch on the
    contiguous last axis; absent studies have ``v = inf``, weight 0).
    With P = W − ww'/Σw (W = diag w, w = 1/(v + τ²)), r = y − μ̂, the REML
    score (times 2) is y'PPy − tr(P) and the ML score Σw²r² − Σw
    (Viechtbauer 2005); derivatives from dP/dτ² = −PP: d(y'PPy) = −2 y'P³y,
    d tr(P) = −tr(PP), dΣw = −Σw².  The returned function has the score's
    sign (so the same root and bracket) but is nearly linear in τ² — exactly
    linear for equal vi, where tr(P)/y'PPy = (k − 1)(v + τ²)/Σ(y − ȳ)² — so
    Newton steps on it converge in fewer iterations than on the score.
    """
    w = vT + t
    np.reciprocal(w, out=w)
    sw = np.add.reduce(w, 0)
    wr = yT - _einsum("ij,ij->j", w, yT) / sw
    wr *= w  # u = Py = w∘r
    s2 = _einsum("ij,ij->j", w, w)
    ypp = _einsum("ij,ij->j", wr, wr)  # y'PPy = Σw²r²
    c = _einsum("ij,ij->j", wr, w) / sw  # Σwu/Σw
    z = wr - c
    z *= w  # PPy = w∘(u − Σwu/Σw)
    y4 = _einsum("ij,ij->j", z, z)  # y'P⁴y
    wr *= wr
    yppp = _einsum("ij,ij->j", wr, w) - c * c * sw  # y'P³y = Σwu² − (Σwu)²/Σw
    np.multiply(w, w, out=wr)
    s3 = _einsum("ij,ij->j", wr, w)
    if reml:
        # tr(P^j) for P = W − ww'/Σw (expand (W − A)^j, A of rank one)
        s2w = s2 / sw
        s3w = s3 / sw
        sq = s2w * s2w
        trp = sw - s2w
        trpp = s2 - 2 * s3w + sq
        trppp = s3 - 3 * (_einsum("ij,ij->j", wr, wr) / sw) + 3 * (s2w * s3w) - sq * s2w
    else:
        trp, trpp, trppp = sw, s2, s3
    iy = 1.0 / ypp
    ratio = trp * iy
    g = 1.0 - ratio
    g1 = (trpp - 2 * ratio * yppp) * iy
    # g''/2 from d tr(P^j)/dτ² = −j tr(P^{j+1}), d y'P^j y/dτ² = −j y'P^{j+1}y;
    # the slope returned is Halley's, g' − g g''/(2g'): cubic convergence
    g2h = (2 * g1 * yppp - trppp + 3 * ratio * y4) * iy
    return g, g1 - g * g2h / g1


def score_bound_hi(ss, vmin, vmax, c):
    """A τ² beyond which the (RE)ML score is negative for sure.

    With w_i = 1/(v_i + τ²) and weighted residuals r: y'PPy = Σw²r² ≤
    w_max Σw r² ≤ w_max² RSS (RSS of the unweighted least-squares fit), while
    tr(P) ≥ (k − p) w_min (REML; P = W^½(I − H)W^½) and tr(W) ≥ k w_min (ML).
    The score is therefore negative once RSS (v_max + τ²) < c (v_min + τ²)²,
    with c = k − p (REML) or k (ML): the larger root of that quadratic.
    """
    c2 = 2.0 * np.maximum(c, 1)
    disc = np.sqrt(ss * (ss + 2.0 * c2 * (vmax - vmin)))  # both factors >= 0
    return np.maximum((ss - c2 * vmin + disc) / c2, 0.0) * (1 + 1e-9) + 1e-300


def scan_interior(score, loglik, data, lo, hi, ratio=2.0, maxpts=200, value=None, row_axis=0):
    """Look for an interior maximum of the likelihood on rows whose score at 0 is ≤ 0.

    The (restricted) likelihood in τ² can have two maxima, one on the
    boundary 0 and one inside; a root finder started at 0 then stops at the
    boundary.  On each row this scans ``score`` on the log-spaced grid
    ``lo, lo·ratio, lo·ratio², …`` up to ``hi`` (beyond which the score is
    negative, :func:`score_bound_hi`), in batch, dropping rows as soon as the
    score turns positive there; those rows get the down-crossing (a local
    maximum) in ``[τ_j, hi]`` with :func:`solve_decreasing`, kept when its
    likelihood beats the boundary's.  ``score(t, *data)`` returns
    ``(value, slope)``; ``loglik(t, *data)`` the log-likelihood; ``value``
    (optional) the score alone, cheaper, for the scan.  ``row_axis=-1`` when
    the arrays in ``data`` hold the rows on their last axis.

    Returns ``(tau2, better)``: ``better`` marks the rows whose interior
    maximum is the global one (tau2 is 0 elsewhere).
    """
    n = lo.shape[0]
    out = np.zeros(n)
    better = np.zeros(n, dtype=bool)
    found = np.full(n, np.nan)
    rows = np.arange(n)
    t = np.array(lo, dtype=float)
    h = np.asarray(hi, dtype=float)
    d = data
    act = np.ones(n, dtype=bool)
    for _ in range(maxpts):
        act &= t < h
        na = _count(act)
        if na == 0:
            break
        if na < 0.6 * act.size:  # compact now and then, not every step (copies cost)
            d = tuple(x[act] if row_axis == 0 else x.compress(act, -1) for x in d)
            rows, t, h, act = rows[act], t[act], h[act], act[act]
        s = value(t, *d) if value is not None else score(t, *d)[0]
        pos = (s > 0) & act
        if pos.any():
            found[rows[pos]] = t[pos]
            act &= ~pos
        t = t * ratio
    cand = np.flatnonzero(np.isfinite(found))
    if cand.size == 0:
        return out, better
    dc = tuple(x[cand] if row_axis == 0 else x.take(cand, -1) for x in data)
    a = found[cand]
    root, conv = solve_decreasing(score, dc, a, np.asarray(hi, float)[cand], a,
                                  row_axis=row_axis)
    win = conv & (loglik(root, *dc) > loglik(np.zeros(cand.size), *dc))
    out[cand[win]] = root[win]
    better[cand[win]] = True
    return out, better


def _score_only(yT, vT, t, reml):
    """The score of :func:`_lik_parts` without its derivative (fewer passes)."""
    w = vT + t
    np.reciprocal(w, out=w)
    sw = np.add.reduce(w, 0)
    wr = yT - _einsum("ij,ij->j", w, yT) / sw
    wr *= w
    val = _einsum("ij,ij->j", wr, wr) - sw
    return val + _einsum("ij,ij->j", w, w) / sw if reml else val


def _loglik_re(yT, vT, t, reml):
    """(Restricted) log-likelihood of the random-effects model, up to a constant
    (layout of :func:`_lik_parts`)."""
    s = vT + t
    w = 1.0 / s
    sw = np.add.reduce(w, 0)
    r = yT - _einsum("ij,ij->j", w, yT) / sw
    logs = np.log(s, out=np.zeros_like(s), where=np.isfinite(s))
    ll = -0.5 * (logs.sum(0) + _einsum("ij,ij->j", w * r, r))
    return ll - 0.5 * np.log(sw) if reml else ll


def _lik_newton(g, data, ss, vmin, vmax, c, start):
    """Newton root of the likelihood equation on rows with a positive score at 0,
    from ``start`` (used when inside ``[0, score_bound_hi)``, else 0)."""
    hi = score_bound_hi(ss, vmin, vmax, c)
    start = np.where((start >= 0) & (start < hi), start, 0.0)
    return solve_decreasing(g, data, np.zeros(hi.shape[0]), hi, start,
                            scale=vmin * 1e-6, quadratic=True, row_axis=-1)


def _lik_root(yi, vi, mask, reml, x0=None):
    """Global maximiser of the (restricted) likelihood in τ² ≥ 0 on a batch.

    Rows with a positive score at 0: the safeguarded Newton root in
    ``[0, hi]`` (a local maximum; started at DL).  Rows with score ≤ 0 at 0
    (0 is a local maximum): :func:`scan_interior` looks for a higher interior
    maximum, which the likelihood can have when the vi differ a lot.

    The work is done in the transposed layout ``(k, B)``: per-row scalars then
    broadcast along long contiguous inner loops and sums over studies are
    axis-0 reductions, several times faster than on ``(B, k)`` for small k.
    """
    m = np.asarray(mask, dtype=bool)
    full = _count(m) == m.size
    yT = np.array(np.asarray(yi, dtype=float).T, order="C")
    vT = np.array(np.asarray(vi, dtype=float).T, order="C")
    kmax, n = yT.shape
    if full:
        k = _filled(n, kmax, int)
    else:
        mT = m.T
        yT[~mT] = 0.0
        vT[~mT] = np.inf  # weight exactly 0
        k = np.count_nonzero(m, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        # one pass at τ² = 0 gives the score there and the DL start
        w0 = 1.0 / vT
        sw0 = np.add.reduce(w0, 0)
        r0 = yT - _einsum("ij,ij->j", w0, yT) / sw0
        if not full:
            r0[~mT] = 0.0
        wr0 = w0 * r0
        a0 = _einsum("ij,ij->j", wr0, wr0)
        s20w = _einsum("ij,ij->j", w0, w0) / sw0
        s0 = a0 - sw0
        if reml:
            s0 += s20w
        up = s0 > 0
        if x0 is None:  # DerSimonian–Laird
            start = (_einsum("ij,ij->j", wr0, r0) - (k - 1)) / (sw0 - s20w)
        else:
            start = np.asarray(x0, float)
    if not full or kmax < 2:
        many = k > 1
        up &= many
    c = (k - 1) if reml else k

    # per-row scale, bound inputs: cheap axis-0 reductions over the whole batch
    vmin = np.minimum.reduce(vT, 0)
    if full:
        vmax = np.maximum.reduce(vT, 0)
        d = yT - np.add.reduce(yT, 0) / kmax
    else:
        vmax = np.where(mT, vT, -np.inf).max(0)
        d = yT - yT.sum(0) / np.maximum(k, 1)
        d[~mT] = 0.0
    ss = _einsum("ij,ij->j", d, d)

    def g(t, ya, va):
        return _lik_parts(ya, va, t, reml)

    def ll(t, ya, va):
        return _loglik_re(ya, va, t, reml)

    n_up = _count(up)
    if n_up == n:  # every row: no copies
        return _lik_newton(g, (yT, vT), ss, vmin, vmax, c, start)
    out = np.zeros(n)
    conv = np.ones(n, dtype=bool)
    if n_up:
        act = np.flatnonzero(up)
        out[act], conv[act] = _lik_newton(
            g, (yT.take(act, 1), vT.take(act, 1)), ss[act], vmin[act], vmax[act], c[act],
            start[act],
        )
    if full and kmax >= 2:
        many = True
    # boundary rows: is there a higher interior maximum?
    bnd = np.flatnonzero(~up & many)
    if bnd.size:
        hi = score_bound_hi(ss[bnd], vmin[bnd], vmax[bnd], c[bnd])
        lo = vmin[bnd] / 16.0
        scan = np.flatnonzero(hi > lo)
        if scan.size:
            rows = bnd[scan]
            t, better = scan_interior(
                g, ll, (yT.take(rows, 1), vT.take(rows, 1)), lo[scan], hi[scan],
                value=lambda t, ya, va: _score_only(ya, va, t, reml), row_axis=-1,
            )
            out[rows[better]] = t[better]
    return out, conv


def tau2_ml(yi, vi, mask, x0=None):
    """Maximum-likelihood estimator (Hardy & Thompson 1996).

    Hardy RJ, Thompson SG (1996). A likelihood approach to meta-analysis with
    random effects. Stat Med 15:619–629.  Root of the score
    Σw²(y − μ)² − Σw, w = 1/(v + τ²); 0 when the score at 0 is ≤ 0.
    """
    return _lik_root(yi, vi, mask, False, x0)


def tau2_reml(yi, vi, mask, x0=None):
    """Restricted maximum-likelihood estimator (Viechtbauer 2005).

    Viechtbauer W (2005). Bias and efficiency of meta-analytic variance
    estimators in the random-effects model. J Educ Behav Stat 30:261–293.
    Root of y'PPy − tr(P), P = W − ww'/Σw; 0 when that is ≤ 0 at τ² = 0.
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
