"""Roots of the generalised Q equation: Paule–Mandel estimators and Q-profile intervals.

The generalised Q statistic ``Q(τ²) = y'Py`` (Q_E with moderators; ``Σw(y −
μ_w)²`` without) follows a χ² distribution with k − p degrees of freedom at
the true τ² and is strictly decreasing in τ², so ``Q(τ²) = c`` has at most one
root (:func:`q_root`).  The Q-profile interval (Viechtbauer 2007) is
``{τ² : χ²_{α/2} ≤ Q(τ²) ≤ χ²_{1−α/2}}``:

* lower limit: the root of ``Q(τ²) = χ²_{1−α/2, k−p}``, or 0 when ``Q(0)`` is
  already below it;
* upper limit: the root of ``Q(τ²) = χ²_{α/2, k−p}``, or 0 when ``Q(0)`` is
  below it.

As in metafor's ``confint.rma.uni``, the search is limited to
``[0, max(100, 10 τ̂²)]``; a limit beyond that is reported as the bound itself
(flagged, so results can say so).  The interval therefore does not depend on
the estimator, except through that bound.  I² and H² intervals map the τ²
limits with the same typical within-study variance as I² and H² themselves.

Viechtbauer W (2007). Confidence intervals for the amount of heterogeneity in
meta-analysis. Stat Med 26:37–52.

Examples
--------
>>> import numpy as np
>>> from metaanalysis.engine.design import Intercept
>>> from metaanalysis.engine.wls import Chunk
>>> c = Chunk(Intercept(), np.array([[0.1], [0.5], [0.9], [-0.3]]), np.full((4, 1), 0.02))
>>> lb, ub, ok, capped = tau2_ci(c, np.array([0.2]))
>>> bool(lb[0] < 0.2 < ub[0])
True
"""

from __future__ import annotations

import numpy as np
from scipy import special

from metaanalysis.engine.roots import FEW, FLOAT_STUDIES, columns, count_true, solve_decreasing
from metaanalysis.engine.wls import q_terms, q_terms_row

__all__ = ["TAU2_MAX", "q_root", "tau2_ci"]

TAU2_MAX = 100.0


def _g(d):
    def g(t, y, v, ita, *arrs):
        # 1/Q is close to linear in τ² (exactly so for equal vi and X = 1):
        # Halley's method on f = 1/target − 1/Q(τ²) converges in two or three
        # steps.  f' = Q'/Q² = −a₂/Q², and the Halley slope f' − f f''/(2f')
        # simplifies, with a = a₂/Q, to −(a/Q + f (a − a₃/a₂)).
        q, a2, a3 = q_terms(d.with_arrays(arrs), y, v, t, 2)
        iq = 1.0 / q
        f = ita - iq
        a = a2 * iq
        return f, -(a * iq + f * (a - a3 / a2))

    def row(y, v, ita, t):  # g of one row on floats (roots.columns): the same bits
        q, a2, a3 = q_terms_row(y, v, t)
        iq = 1.0 / q
        f = ita[0] - iq
        a = a2 * iq
        return f, -(a * iq + f * (a - a3 / a2))

    if d.intercept:
        g.few = lambda data: columns(row, list(zip(data[0].T.tolist(), data[1].T.tolist(),
                                                   data[2].reshape(-1, 1).tolist())))
    return g


def _rows(a, n):
    """``a`` as a float array of n values (one per row; a number is repeated)."""
    a = np.asarray(a, dtype=float)
    return a if a.shape == (n,) else np.broadcast_to(a, (n,))


def q_root(c, target, x0=None, cap=None):
    """Solve ``Q(τ²) = target`` per row of the chunk ``c``; 0 where ``Q(0) ≤ target``.

    ``cap``: solutions above it are returned as ``cap`` (flagged).
    Returns ``(tau2, converged, hit_cap)``.
    """
    n = c.n
    target = _rows(target, n)
    q0 = c.q0
    # target 0 (no residual df): Q is 0 up to rounding, and no τ² can lower it further
    up = (q0 > target) & (target > 0)
    n_up = count_true(up)
    out, conv, hit = np.zeros(n), np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
    if n_up == 0:
        return out, conv, hit
    every = n_up == n
    cc = c if every else c.take(np.flatnonzero(up))
    act = None if every else np.flatnonzero(up)
    ta = target if every else target[act]
    # Q(τ²) ≤ RSS_ols/(v_min + τ²) < target beyond RSS_ols/target
    hi = cc.rss_ols / ta * (1 + 1e-9) + 1e-300
    d = cc.d
    data = (cc.y, cc.v, 1.0 / ta) + d.arrays()
    g = _g(d)
    lo = np.zeros(hi.shape[0])
    beyond = None
    if cap is not None:
        capa = _rows(cap, n)
        capa = capa if every else capa[act]
        if count_true(hi > capa):  # else every root lies below the cap
            qc, _ = g(capa, *data)
            beyond = (qc >= 0) & (hi > capa)  # per row: never decided by the other rows
            lo[beyond] = capa[beyond]  # root beyond the cap: nothing to solve
        hi = np.minimum(hi, capa)
    if x0 is None:
        start = lo
    else:
        start = _rows(x0, n)
        start = start if every else start[act]
        start = np.where((start >= 0) & (start < hi), start, lo)
    vmin = cc.vmin
    x, ok = solve_decreasing(g, data, lo, hi, start, scale=vmin * 1e-6, quadratic=True,
                             row_axis=-1)
    h = np.zeros(x.shape[0], dtype=bool)
    if beyond is not None:
        x = np.where(beyond, hi, x)
        ok = ok | beyond
        h = beyond
    if every:
        return x, ok, h
    out[act], conv[act], hit[act] = x, ok, h
    return out, conv, hit


def chi2_quantiles(df, level):
    """χ² quantiles (upper α/2, lower α/2) per row: the Q-profile targets."""
    alpha = 1.0 - level
    d = np.maximum(df, 1).astype(float)
    return special.chdtri(d, 0.5 * alpha), special.chdtri(d, 1.0 - 0.5 * alpha)


def tau2_ci(c, tau2, level: float = 0.95, *, q_hat=None):
    """Q-profile limits for τ² on the rows of the chunk ``c``.

    Parameters
    ----------
    c : :class:`~metaanalysis.engine.wls.Chunk`
    tau2 : ndarray (n,)
        The point estimate (for the search bound ``max(100, 10 τ̂²)`` and the start).
    level : float
    q_hat : ndarray (n,), optional
        Q(τ̂²) when the caller has it.

    Returns
    -------
    lb, ub : ndarray (n,)
        NaN where k − p < 1.
    converged, capped : ndarray of bool (n,)
        ``capped``: the upper limit is the search bound.

    Notes
    -----
    1/Q(τ²) is nearly linear in τ², so each search starts where the secant of
    1/Q through τ² = 0 and τ̂² reaches its target (the tangent at 0 when τ̂² = 0).
    """
    if (q_hat is not None and c.d.intercept and c.full and c.n <= FEW
            and c.y.shape[0] * c.n <= FLOAT_STUDIES):
        got = _tau2_ci_few(c, tau2, level, q_hat)
        if got is not None:
            return got
    n = c.n
    df = c.k - c.p
    t_lo, t_hi = chi2_quantiles(df, level)  # Q = t_lo -> lower limit of τ²
    t_hat = np.fmax(np.asarray(tau2, dtype=float), 0.0)  # NaN -> 0
    cap = np.maximum(TAU2_MAX, 10.0 * t_hat)
    with np.errstate(divide="ignore", invalid="ignore"):
        q0 = c.q0
        if q_hat is None:
            q_hat, _ = q_terms(c.d, c.y, c.v, t_hat)
        iq0 = 1.0 / q0
        slope = (1.0 / q_hat - iq0) / t_hat
        flat = ~(t_hat > 0)
        if count_true(flat):  # τ̂² = 0: the tangent of 1/Q at 0
            _, dq0 = q_terms(c.d, c.y, c.v, 0.0)
            np.copyto(slope, dq0 * iq0 * iq0, where=flat)
        x0 = np.concatenate([(1.0 / t_lo - iq0) / slope, (1.0 / t_hi - iq0) / slope])
    # both limits in one vectorised solve: the rows stacked twice
    t, conv, hit = q_root(c.tile2(), np.concatenate([t_lo, t_hi]), x0=x0,
                          cap=np.concatenate([cap, cap]))
    return _split_limits(t, conv, hit, n, df)


def _split_limits(t, conv, hit, n, df):
    """Lower and upper limits of a solve over the rows stacked twice (NaN where df < 1),
    converged where both are, and whether the upper limit hit its cap."""
    lb, ub = t[:n], t[n:]
    bad = df < 1
    if count_true(bad):
        lb = np.where(bad, np.nan, lb)
        ub = np.where(bad, np.nan, ub)
    return lb, ub, conv[:n] & conv[n:], hit[n:] & ~bad


def _tau2_ci_few(c, tau2, level, q_hat):
    """:func:`tau2_ci` (and its :func:`q_root` on the rows stacked twice) for a few rows
    without moderators or absent studies: the set-up per row on Python floats with the
    array code's operations, the roots by the same solver (whose few-row path evaluates
    Q on floats): the same bits.  None (use the array code) when τ̂² = 0 in a row (the
    start then needs Q'(0)) or a row divides by zero."""
    n = c.n
    k = c.y.shape[0]
    df = c.k - c.p
    t_lo, t_hi = chi2_quantiles(df, level)
    th = np.fmax(np.asarray(tau2, dtype=float), 0.0).tolist()
    if not all(t > 0 for t in th):
        return None
    ys, vs = c.y.T.tolist(), c.v.T.tolist()
    q0s, qh = c.q0.tolist(), np.asarray(q_hat, dtype=float).tolist()
    if "rss_ols" not in c._c:  # the unweighted RSS, as Chunk.ols computes it (X = 1, full)
        rss = []
        for yl in ys:
            sy = 0.0
            for yi in yl:
                sy += 1.0 * yi
            go = (1.0 / k) * sy
            r2 = 0.0
            for yi in yl:
                r = yi - go
                r2 += r * r
            rss.append(r2)
        c._c["rss_ols"] = np.array(rss)
    rss = c._c["rss_ols"].tolist()
    vmin = [min(x) for x in vs]
    targets = t_lo.tolist() + t_hi.tolist()
    rows, lo, hi, start, scale, beyond = [], [], [], [], [], []
    try:
        for i, tg in enumerate(targets):
            j = i % n  # rows stacked twice: lower limits, then upper limits
            iq0 = 1.0 / q0s[j]
            slope = (1.0 / qh[j] - iq0) / th[j]
            if not (q0s[j] > tg and tg > 0):
                continue
            cap = 10.0 * th[j]
            cap = cap if (cap != cap or cap >= TAU2_MAX) else TAU2_MAX  # np.maximum
            h = rss[j] / tg * (1 + 1e-9) + 1e-300
            a = 0.0
            out = False
            if h > cap:
                q = q_terms_row(ys[j], vs[j], cap)[0]
                out = (1.0 / tg - 1.0 / q) >= 0
                a = cap if out else 0.0
            h = h if (h != h or h <= cap) else cap  # np.minimum
            x0 = (1.0 / tg - iq0) / slope
            rows.append(i)
            lo.append(a)
            hi.append(h)
            start.append(x0 if (x0 >= 0 and x0 < h) else a)
            scale.append(vmin[j] * 1e-6)
            beyond.append(out)
    except ZeroDivisionError:
        return None
    t = np.zeros(2 * n)
    conv = np.ones(2 * n, dtype=bool)
    hit = np.zeros(2 * n, dtype=bool)
    if rows:
        act = np.array(rows) % n
        data = (c.y.take(act, -1), c.v.take(act, -1), 1.0 / np.array([targets[i] for i in rows]))
        x, ok = solve_decreasing(_g(c.d), data, np.array(lo), np.array(hi), np.array(start),
                                 scale=np.array(scale), quadratic=True, row_axis=-1)
        b = np.array(beyond)
        t[rows] = np.where(b, np.array(hi), x)
        conv[rows] = ok | b
        hit[rows] = b
    return _split_limits(t, conv, hit, n, df)
