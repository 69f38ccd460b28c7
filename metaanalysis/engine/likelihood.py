"""ML and REML estimation of τ²: the global maximum of the (restricted) likelihood.

The model is ``y = Xβ + u + e``, ``u ~ N(0, τ²I)``, ``e ~ N(0, V)``; β is
profiled out.  With ``W = (V + τ²I)⁻¹`` and ``P = W − WX(X'WX)⁻¹X'W`` write
``A_j = y'Pʲy`` and ``B_j = tr(Pʲ)`` (REML) or ``tr(Wʲ)`` (ML).  The score in τ²
is ``(A₂ − B₁)/2`` (Viechtbauer 2005; Raudenbush 2009) and every ``dA_j/dτ² =
−j A_{j+1}``, ``dB_j/dτ² = −j B_{j+1}``.

**Global maximum.**  The likelihood can have several interior maxima when the
vᵢ differ a lot (two or more clusters of studies at very different precisions),
and a root finder started anywhere can stop at the wrong one.  Let
``h = ln A₂ − ln B₁`` (the score has the sign of h) as a function of
``s = ln(v_min + τ²)``.  The non-zero eigenvalues of P (and those of W) lie in
``[w_min, w_max]``, ``w = 1/(v + τ²)``; writing the ratios ``A_{j+1}/A_j``,
``B_{j+1}/B_j`` as moments of those eigenvalues gives, with
``ρ = (v_min + τ²)/(v_max + τ²)``:

* ``dh/ds ∈ [ρ − 2, 1 − 2ρ]``, so h is strictly decreasing once
  ``τ² ≥ v_max − 2 v_min``: beyond that point there is at most one root;
* ``d²h/ds² ∈ [−3/4, 5/4]`` everywhere (both from E[Λ²] ∈ [E[Λ]², E[Λ]] for
  Λ = (v_min + τ²)·eigenvalue ∈ [ρ, 1]).

With h and dh/ds at a point, the curvature bound certifies an interval on each
side on which h keeps its sign; with slopes at both ends of an interval, it
certifies that h is monotone there.  The search (:func:`tau2_lik`) therefore:

1. finds a root by safeguarded Halley iteration from the DerSimonian–Laird
   value on ``[0, hi]`` (``hi``: :func:`score_bound_hi`, beyond which the score
   is provably negative) when the score at 0 is positive;
2. covers ``[0, min(hi, v_max − 2 v_min)]`` with certified intervals — from the
   points 0, the root and the upper end, subdividing where the bounds do not
   yet decide (down to widths of 10⁻³ in s, below which a missed bump changes
   the log-likelihood by less than ~10⁻¹⁰ (k − p));
3. solves every certified down-crossing of the score (a local maximum), and
   the single root beyond ``v_max − 2 v_min`` if the score is still positive
   there; τ² = 0 is a candidate when the score at 0 is ≤ 0;
4. returns the candidate with the highest (restricted) log-likelihood.

Most rows are certified by steps 1–2 with two extra evaluations; rows whose vᵢ
are within a factor 2 of each other need none (the root is unique).

References: Viechtbauer W (2005). Bias and efficiency of meta-analytic variance
estimators in the random-effects model. J Educ Behav Stat 30:261–293;
Hardy RJ, Thompson SG (1996). A likelihood approach to meta-analysis with
random effects. Stat Med 15:619–629.

Examples
--------
>>> import numpy as np
>>> from metaanalysis.engine.design import Intercept
>>> from metaanalysis.engine.wls import Chunk
>>> y = np.array([[0.26], [-0.90], [0.52], [-15.08]])
>>> v = np.array([[0.040], [0.489], [1.985], [20.87]])
>>> t, ok = tau2_lik(Chunk(Intercept(), y, v), reml=True)
>>> round(float(t[0]), 2)   # the global maximum (a local one sits at 0.54)
25.8
"""

from __future__ import annotations

import math

import numpy as np

from metaanalysis.engine.design import colsum, ein
from metaanalysis.engine.roots import FEW as _FEW
from metaanalysis.engine.roots import FLOAT_STUDIES, columns, count_true, solve_decreasing
from metaanalysis.engine.wls import wls

__all__ = ["lik_terms", "loglik", "score_bound_hi", "tau2_lik"]

_LO, _HI = 0.375, 0.625  # half the bounds on -d²h/ds² and d²h/ds²
_SAFE = 0.999  # shrink certified radii against rounding
_MIN_WIDTH = 1e-3  # stop subdividing below this width in s
_ROUNDS = 40
_MARCH = 8  # evaluations extending the certified regions before subdividing
_PIECES = 2  # parts each interval left open by the march is first cut into
_COVER_FEW = 16  # intervals of the cover handled on Python floats (X = 1)


def lik_terms(d, y, v, t, reml, order=1, want_q=False):
    """``(A₂, B₁)``, with ``order=2`` also ``(A₃, B₂)``, with 3 also ``(A₄, B₃)``.

    ``want_q`` appends ``Q = y'Py`` (the generalised Q_E at τ² = t).
    """
    if d.intercept:
        return _terms1(y, v, t, reml, order, want_q)
    w, S, A, gam, r = wls(d, y, v, t)
    u = r * w
    a2 = colsum(u, u)
    sw = S if d.intercept else colsum(w)
    if reml:
        G2 = d.gram(w, w)
        M = d.mm(A, G2)
        b1 = sw - d.tr(M)
    else:
        b1 = sw
    out = [a2, b1]
    if order >= 2:
        c = d.xtz(w, u)  # X'Wu (X'u = 0)
        Ac = d.mv(A, c)
        a3 = colsum(u * w, u) - d.dot(c, Ac)
        w2 = w * w
        if reml:
            G3 = d.gram(w2, w)
            AG3 = d.mm(A, G3)
            b2 = colsum(w2) - 2 * d.tr(AG3) + d.tr(d.mm(M, M))
        else:
            b2 = colsum(w2)
        out += [a3, b2]
        if order >= 3:
            pu = u - d.xb(Ac)
            pu *= w
            a4 = colsum(pu, pu)
            if reml:
                MM = d.mm(M, M)
                b3 = (colsum(w2, w) - 3 * d.tr(d.mm(A, d.gram(w2, w2)))
                      + 3 * d.tr(d.mm(AG3, M)) - d.tr(d.mm(MM, M)))
            else:
                b3 = colsum(w2, w)
            out += [a4, b3]
    if want_q:
        out.append(colsum(u, r))
    return out


def _terms1(y, v, t, reml, order, want_q):
    """:func:`lik_terms` for X = 1, in as few passes as possible (Σ over studies of
    products by three-operand einsum, no temporaries)."""
    w = v + t
    np.reciprocal(w, out=w)
    sw = colsum(w)
    u = y - ein("ij,ij->j", w, y) / sw  # residuals ...
    q = ein("ij,ij,ij->j", w, u, u) if want_q else None
    u *= w  # ... times w: Py
    a2 = ein("ij,ij->j", u, u)
    s2 = ein("ij,ij->j", w, w)
    iw = 1.0 / sw
    m2 = s2 * iw
    b1 = sw - m2 if reml else sw
    out = [a2, b1]
    if order >= 2:
        c = ein("ij,ij->j", w, u)
        a3 = ein("ij,ij,ij->j", u, w, u) - c * c * iw
        s3 = ein("ij,ij,ij->j", w, w, w)
        b2 = s2 - 2 * s3 * iw + m2 * m2 if reml else s2
        out += [a3, b2]
        if order >= 3:
            pu = u - c * iw
            pu *= w
            a4 = ein("ij,ij->j", pu, pu)
            np.multiply(w, w, out=pu)
            s4 = ein("ij,ij->j", pu, pu)
            b3 = s3 - 3 * s4 * iw + 3 * (s3 * iw) * m2 - m2 * m2 * m2 if reml else s3
            out += [a4, b3]
    if want_q:
        out.append(q)
    return out


def terms_row(y, v, t, reml, order):
    """:func:`_terms1` for one row on Python floats: ``y``, ``v`` lists (0 and inf where
    absent), ``t`` a float; ``(A₂, B₁, A₃, B₂)`` (``order=3``: also ``(A₄, B₃)``).

    The same IEEE operations in the same order as the array code (every sum over
    studies accumulated in study order, as :func:`~metaanalysis.engine.design.ein`
    does; explicit loops, not ``sum()``, which compensates from Python 3.12), so the
    same bits (tests/test_batch_invariance.py).  Raises ``ZeroDivisionError`` where
    NumPy would return inf or NaN.
    """
    w = [1.0 / (x + t) for x in v]
    sw = swy = s2 = s3 = 0.0
    for wi, yi in zip(w, y):
        sw += wi
        swy += wi * yi
        ww = wi * wi
        s2 += ww
        s3 += ww * wi
    mu = swy / sw
    a2 = c = a3 = 0.0
    pus = []
    for wi, yi in zip(w, y):
        pu = (yi - mu) * wi
        pus.append(pu)
        a2 += pu * pu
        c += wi * pu
        a3 += pu * wi * pu
    iw = 1.0 / sw
    m2 = s2 * iw
    a3 = a3 - c * c * iw
    if reml:
        b1 = sw - m2
        b2 = s2 - 2 * s3 * iw + m2 * m2
    else:
        b1, b2 = sw, s2
    if order < 3:
        return a2, b1, a3, b2
    ciw = c * iw
    a4 = s4 = 0.0
    for wi, pu in zip(w, pus):
        z = (pu - ciw) * wi
        a4 += z * z
        ww = wi * wi
        s4 += ww * ww
    b3 = s3 - 3 * s4 * iw + 3 * (s3 * iw) * m2 - m2 * m2 * m2 if reml else s3
    return a2, b1, a3, b2, a4, b3


def loglik(d, y, v, t, reml, parts=False):
    """(Restricted) log-likelihood in τ² up to a constant per row:
    ½ Σ log wᵢ − ½ Q(τ²) (− ½ log|X'WX| for REML), w = 1/(v + τ²).

    ``parts=True`` also returns X'WX and the WLS coefficients (for X = 1: Σw and
    the weighted mean), e.g. to add a normal prior on the coefficients."""
    w, S, A, gam, r = wls(d, y, v, t)
    pos = w > 0
    lw = np.log(w, out=np.zeros_like(w), where=pos)
    ll = 0.5 * colsum(lw) - 0.5 * colsum(w * r, r)
    if reml:
        ll = ll - 0.5 * d.logdet(S)
    return (ll, S, gam) if parts else ll


def score_bound_hi(ss, vmin, vmax, c):
    """A τ² beyond which the (RE)ML score is negative for sure.

    With w_i = 1/(v_i + τ²): y'PPy ≤ w_max y'Py ≤ w_max² RSS (RSS of the
    unweighted least-squares fit), while tr(P) ≥ (k − p) w_min (REML) and
    tr(W) ≥ k w_min (ML).  The score is therefore negative once
    RSS (v_max + τ²) < c (v_min + τ²)², with c = k − p (REML) or k (ML): the
    larger root of that quadratic.
    """
    c2 = 2.0 * np.maximum(c, 1)
    disc = np.sqrt(ss * (ss + 2.0 * c2 * (vmax - vmin)))  # both factors >= 0
    return np.maximum((ss - c2 * vmin + disc) / c2, 0.0) * (1 + 1e-9) + 1e-300


def _halley(d, reml, last=False):
    """``g(t, y, v, *design) -> (value, Halley slope)`` for g = 1 − B₁/A₂.

    g has the score's sign and is nearly linear in τ² (exactly so for equal vᵢ
    and X = 1); g'' from the derivatives of A_j and B_j gives Halley's slope
    g' − g g''/(2g') (cubic convergence).  ``last=True``: also returns g'.
    """

    def g(t, y, v, *arrs):
        dd = d.with_arrays(arrs)
        a2, b1, a3, b2, a4, b3 = lik_terms(dd, y, v, t, reml, 3)
        iy = 1.0 / a2
        ratio = b1 * iy
        val = 1.0 - ratio
        g1 = (b2 - 2 * ratio * a3) * iy
        g2h = (2 * g1 * a3 - b3 + 3 * ratio * a4) * iy
        if last:
            return val, g1 - val * g2h / g1, g1
        return val, g1 - val * g2h / g1

    def row(y, v, t):  # g of one row on floats (roots.columns): the same bits
        a2, b1, a3, b2, a4, b3 = terms_row(y, v, t, reml, 3)
        iy = 1.0 / a2
        ratio = b1 * iy
        val = 1.0 - ratio
        g1 = (b2 - 2 * ratio * a3) * iy
        g2h = (2 * g1 * a3 - b3 + 3 * ratio * a4) * iy
        return val, g1 - val * g2h / g1, g1

    if d.intercept:
        g.few = lambda data: columns(row, list(zip(data[0].T.tolist(), data[1].T.tolist())))
    return g


def _hg(d, y, v, t, vmin, reml):
    """h = ln(A₂/B₁) and dh/ds (s = ln(v_min + τ²)) at τ² = t."""
    a2, b1, a3, b2 = lik_terms(d, y, v, t, reml, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.log(a2) - np.log(b1)
        g = (vmin + t) * (b2 / b1 - 2.0 * a3 / a2)
    return h, g


def _radius(pos, h, g, sg):
    """Width in s of the region next to a point on which h keeps the sign ``pos``
    (``sg`` = +g going up, −g going down) by the curvature bounds, shrunk by _SAFE."""
    with np.errstate(invalid="ignore"):
        r = np.where(pos, (sg + np.sqrt(np.maximum(g * g + 4 * _LO * h, 0.0))) * (1 / (2 * _LO)),
                     (np.sqrt(np.maximum(g * g - 4 * _HI * h, 0.0)) - sg) * (1 / (2 * _HI)))
    r *= _SAFE
    return np.where(r > 0, r, 0.0)  # NaN -> 0


def _up(h, g):
    """Sign (True = positive) of h just above a point and the width in s on which
    the curvature bounds keep it."""
    pos = (h > 0) | ((h == 0) & (g > 0))
    return pos, _radius(pos, h, g, g)


def _down(h, g):
    """As :func:`_up`, just below a point."""
    pos = (h > 0) | ((h == 0) & (g < 0))
    return pos, _radius(pos, h, g, -g)


def _monotone(ga, gb, L):
    """(certainly decreasing, certainly increasing) on an interval of width L in s
    with slopes ga, gb at its ends (d²h/ds² ∈ [−2 _LO, 2 _HI])."""
    lo2, hi2 = 2 * _LO, 2 * _HI
    # upper bound of the slope: min(ga + hi2 x, gb + lo2 (L − x)), largest at the crossing
    x = np.minimum(np.maximum((gb - ga + lo2 * L) / (hi2 + lo2), 0.0), L)
    dec = np.minimum(ga + hi2 * x, gb + lo2 * (L - x)) < 0
    # lower bound: max(ga − lo2 x, gb − hi2 (L − x)), smallest at the crossing
    x = np.minimum(np.maximum((ga - gb + hi2 * L) / (hi2 + lo2), 0.0), L)
    inc = np.maximum(ga - lo2 * x, gb - hi2 * (L - x)) > 0
    return dec, inc


def _cover(d, y, v, vmin, reml, row, sa, ha, ga, sb, hb, gb, s0):
    """Certify the intervals [sa, sb] (rows ``row`` of the subset), subdividing where
    needed.  Returns the rows and s-brackets of the down-crossings of h (local maxima
    of the likelihood) and whether every interval was decided by the bounds."""
    out_row, out_a, out_b = [], [], []
    exact = True
    cols: dict = {}
    for it in range(_ROUNDS):
        if row.size == 0:
            break
        if d.intercept and row.size <= _COVER_FEW:  # the rest on floats: the same decisions
            exact = _cover_rest(d, y, v, vmin, reml, row, sa, ha, ga, sb, hb, gb, s0,
                                _ROUNDS - it, cols, out_row, out_a, out_b, exact)
            break
        L = sb - sa
        pa, ra = _up(ha, ga)
        pb, rb = _down(hb, gb)
        dec, inc = _monotone(ga, gb, L)
        same = pa == pb
        done = (same & ((ra + rb >= L) | dec | inc)) | (~same & np.where(pa, dec, inc))
        small = ~done & (L < _MIN_WIDTH)
        if small.any():
            exact = False
        done |= small
        down = done & pa & ~pb
        if down.any():
            out_row.append(row[down])
            out_a.append(sa[down])
            out_b.append(sb[down])
        keep = ~done
        if not keep.any():
            break
        row, sa, ha, ga, sb, hb, gb, ra, rb, same = (
            a[keep] for a in (row, sa, ha, ga, sb, hb, gb, ra, rb, same))
        # split into four: three points spread over what the two ends leave uncovered
        # (same sign), else evenly (fewer rounds, each a fixed number of array calls)
        L = sb - sa
        u0 = np.where(same, np.minimum(np.maximum(ra, 0.05 * L), 0.95 * L), 0.0)
        u1 = np.where(same, np.maximum(np.minimum(L - rb, 0.95 * L), u0), L)
        pts = [np.where(same, sa + u0 + (u1 - u0) * f, sa + L * e)
               for f, e in ((1 / 6, 0.25), (1 / 2, 0.5), (5 / 6, 0.75))]
        sm = np.concatenate(pts)
        r3 = np.concatenate([row, row, row])
        vm = vmin[r3]
        tm = vm * np.expm1(sm - s0[r3])
        hm, gm = _hg_at(d, y, v, r3, tm, vm, reml, cols)
        n = row.size
        s1, s2, s3 = sm[:n], sm[n:2 * n], sm[2 * n:]
        h1, h2, h3 = hm[:n], hm[n:2 * n], hm[2 * n:]
        g1, g2, g3 = gm[:n], gm[n:2 * n], gm[2 * n:]
        row = np.concatenate([row, row, row, row])
        sa, ha, ga = (np.concatenate(x) for x in ((sa, s1, s2, s3), (ha, h1, h2, h3),
                                                   (ga, g1, g2, g3)))
        sb, hb, gb = (np.concatenate(x) for x in ((s1, s2, s3, sb), (h1, h2, h3, hb),
                                                   (g1, g2, g3, gb)))
    else:
        exact = False
    if not out_row:
        e = np.empty(0)
        return e.astype(np.intp), e, e, exact
    return np.concatenate(out_row), np.concatenate(out_a), np.concatenate(out_b), exact


def _fmax(a, b):
    """np.maximum on floats (NaN propagates)."""
    return a if (a != a or a >= b) else b


def _fmin(a, b):
    """np.minimum on floats (NaN propagates)."""
    return a if (a != a or a <= b) else b


def _down1(h, g):
    """:func:`_down` for one point, on floats: :func:`_up1` of ``−g`` (negation is exact and
    every later operation uses ``−g``, so the same bits)."""
    return _up1(h, -g)


def _monotone1(ga, gb, L):
    """:func:`_monotone` for one interval, on floats."""
    lo2, hi2 = 2 * _LO, 2 * _HI
    x = _fmin(_fmax((gb - ga + lo2 * L) / (hi2 + lo2), 0.0), L)
    dec = _fmin(ga + hi2 * x, gb + lo2 * (L - x)) < 0
    x = _fmin(_fmax((ga - gb + hi2 * L) / (hi2 + lo2), 0.0), L)
    inc = _fmax(ga - lo2 * x, gb - hi2 * (L - x)) > 0
    return dec, inc


def _cover_rest(d, y, v, vmin, reml, row, sa, ha, ga, sb, hb, gb, s0, rounds, cols,
                out_row, out_a, out_b, exact):
    """The last ``rounds`` rounds of :func:`_cover` on its few intervals, the
    per-interval arithmetic on Python floats (:func:`_up1`, :func:`_down1`,
    :func:`_monotone1`, :func:`_hg_rows`): the same numbers, decisions and order of
    the intervals found as the array code.  Appends to ``out_*``; returns ``exact``."""
    iv = list(zip(row.tolist(), sa.tolist(), ha.tolist(), ga.tolist(), sb.tolist(),
                  hb.tolist(), gb.tolist()))
    for _ in range(rounds):
        if not iv:
            return exact
        keep, down = [], []
        for r, a, h_a, g_a, b, h_b, g_b in iv:
            L = b - a
            pa, ra = _up1(h_a, g_a)
            pb, rb = _down1(h_b, g_b)
            dec, inc = _monotone1(g_a, g_b, L)
            same = pa == pb
            done = (same and (ra + rb >= L or dec or inc)) or (not same and (dec if pa else inc))
            if not done and L < _MIN_WIDTH:
                exact = False
                done = True
            if done:
                if pa and not pb:
                    down.append((r, a, b))
            else:
                keep.append((r, a, h_a, g_a, b, h_b, g_b, ra, rb, same))
        if down:
            out_row.append(np.array([x[0] for x in down], dtype=np.intp))
            out_a.append(np.array([x[1] for x in down]))
            out_b.append(np.array([x[2] for x in down]))
        if not keep:
            return exact
        pts = ([], [], [])
        for x in keep:
            a, b, ra, rb, same = x[1], x[4], x[7], x[8], x[9]
            L = b - a
            if same:
                u0 = _fmin(_fmax(ra, 0.05 * L), 0.95 * L)
                u1 = _fmax(_fmin(L - rb, 0.95 * L), u0)
                for q, f in zip(pts, (1 / 6, 1 / 2, 5 / 6)):
                    q.append(a + u0 + (u1 - u0) * f)
            else:
                for q, e in zip(pts, (0.25, 0.5, 0.75)):
                    q.append(a + L * e)
        n = len(keep)
        sm = pts[0] + pts[1] + pts[2]
        r3 = np.array([x[0] for x in keep] * 3, dtype=np.intp)
        vm = vmin[r3]
        tm = vm * np.expm1(np.array(sm) - s0[r3])
        hg = _hg_rows(d, y, v, r3, tm, vm, reml, cols)
        if hg is None:
            h, g = _hg(d.take(r3), y.take(r3, -1), v.take(r3, -1), tm, vm, reml)
            hg = h.tolist(), g.tolist()
        hm, gm = hg
        # the array code's layout: first pieces of every interval, then second, ...
        new = [(x[0], x[1], x[2], x[3], sm[j], hm[j], gm[j]) for j, x in enumerate(keep)]
        for p in (1, 2):
            new += [(x[0], sm[(p - 1) * n + j], hm[(p - 1) * n + j], gm[(p - 1) * n + j],
                     sm[p * n + j], hm[p * n + j], gm[p * n + j]) for j, x in enumerate(keep)]
        new += [(x[0], sm[2 * n + j], hm[2 * n + j], gm[2 * n + j], x[4], x[5], x[6])
                for j, x in enumerate(keep)]
        iv = new
    return False if iv else exact


def _refine(d, y, v, vmin, reml, row, sa, ha, ga, sb, hb, gb, s0, pieces):
    """Split each interval into ``pieces`` equal parts, evaluating every new point in
    one call; returns the new intervals (same layout as the inputs)."""
    if pieces < 2 or row.size == 0:
        return row, sa, ha, ga, sb, hb, gb
    f = np.arange(1, pieces) / pieces  # interior fractions
    L = sb - sa
    sm = (sa[None, :] + L[None, :] * f[:, None]).ravel()  # (pieces - 1) × intervals
    rm = np.tile(row, pieces - 1)
    vr = vmin[rm]
    hm, gm = _hg_at(d, y, v, rm, vr * np.expm1(sm - s0[rm]), vr, reml, {})
    n = row.size
    S = np.vstack([sa, sm.reshape(-1, n), sb])  # (pieces + 1, n) points per interval
    H = np.vstack([ha, hm.reshape(-1, n), hb])
    G = np.vstack([ga, gm.reshape(-1, n), gb])
    rr = np.tile(row, pieces)
    return (rr, S[:-1].ravel(), H[:-1].ravel(), G[:-1].ravel(), S[1:].ravel(),
            H[1:].ravel(), G[1:].ravel())


def _solve(d, y, v, vmin, reml, rows, lo, hi, start, last=False, increasing=False):
    """Halley roots of the score on the brackets [lo, hi] (score > 0 at lo, < 0 at hi);
    ``increasing``: ``rows`` are distinct and in order (then all of them means every row)."""
    if increasing and rows.size == y.shape[-1]:  # every row, in order
        dd, data, vr = d, (y, v) + d.arrays(), vmin
    else:
        dd = d.take(rows)
        data = (y.take(rows, -1), v.take(rows, -1)) + dd.arrays()
        vr = vmin[rows]
    return solve_decreasing(_halley(dd, reml, last), data,
                            lo, hi, start, scale=vr * 1e-6, quadratic=True,
                            row_axis=-1, last=last)


def _zero_terms(c, reml):
    """(A₂, B₁, A₃, B₂) at τ² = 0 from the chunk's cached fit at 0."""
    d = c.d
    w, A, u, g2 = c.w0, c.a0, c.u0, c.g20
    a2 = colsum(u, u)
    cc = d.xtz(w, u)
    a3 = colsum(u * w, u) - d.dot(cc, d.mv(A, cc))
    w2 = w * w
    if reml:
        M = d.mm(A, g2)
        b2 = (g2 if d.intercept else colsum(w2)) - 2 * d.tr(d.mm(A, d.gram(w2, w))) \
            + d.tr(d.mm(M, M))
        return a2, c.trp0, a3, b2
    return a2, c.sw0, a3, (g2 if d.intercept else colsum(w2))


def tau2_lik(c, reml, x0=None):
    """ML (``reml=False``) or REML τ² on a batch: the global maximiser over τ² ≥ 0.

    Parameters
    ----------
    c : :class:`~metaanalysis.engine.wls.Chunk`
        The rows, in the engine's layout, with their design.
    x0 : ndarray (n,), optional
        Start of the first root search (default: DerSimonian–Laird).

    Returns
    -------
    tau2, converged : ndarray (n,)
    """
    d, y, v = c.d, c.y, c.v
    n = c.n
    p = d.p
    kf = c.k.astype(float)
    cc = kf - p if reml else kf
    out = np.zeros(n)
    conv = np.ones(n, dtype=bool)
    few = _zero_few(c, reml) if x0 is None and d.intercept and c.full and n <= _FEW else None
    if few is not None:  # the same numbers on floats
        a2, b1, a3, b2, hi, start = few
        vmin, vmax = c.vmin, c.vmax
        ok = (kf > p) & (a2 > 0) & (b1 > 0)
        up = ok & (a2 > b1)
        if not count_true(ok):
            return out, conv
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            a2, b1, a3, b2 = _zero_terms(c, reml)
            ok = (kf > p) & (a2 > 0) & (b1 > 0)
            up = ok & (a2 > b1)  # score > 0 at τ² = 0
            if not count_true(ok):
                return out, conv
            vmin, vmax = c.vmin, c.vmax
            # the bound hi from the unweighted least-squares residual sum of squares
            hi = score_bound_hi(c.rss_ols, vmin, vmax, cc)
            if x0 is None:  # DerSimonian–Laird (generalised): (Q_E − (k − p)) / tr P at τ² = 0
                start = (c.q0 - (kf - p)) / c.trp0
            else:
                start = np.asarray(x0, dtype=float)
        start = np.where((start >= 0) & (start < hi), start, 0.0)

    # 1. a root by Halley iteration where the score at 0 is positive
    rows = up.nonzero()[0]
    g1 = np.zeros(n)  # an upper bound of dh/ds at the root found (see _certify)
    if rows.size:
        out[rows], conv[rows], (xe, ve, de) = _solve(d, y, v, vmin, reml, rows,
                                                     np.zeros(rows.size), hi[rows],
                                                     start[rows], last=True, increasing=True)
        # h = −ln(1 − g), so dh/ds = (v_min + τ²) g'/(1 − g) at the last evaluation;
        # |d²h/ds²| ≤ 5/4 bounds the change of the slope from there to the root
        with np.errstate(divide="ignore", invalid="ignore"):
            vr = vmin[rows]
            se_, s1_ = np.log(vr + xe), np.log(vr + out[rows])
            g1[rows] = (vr + xe) * de / (1.0 - ve) + 2 * _HI * np.abs(s1_ - se_)
    # 2.-4. certify [0, T], T = min(hi, v_max − 2 v_min); beyond T the root is unique
    T = np.minimum(vmax - 2 * vmin, hi)
    cert = (ok & (T > 0)).nonzero()[0]
    if cert.size == 0:
        return out, conv
    with np.errstate(divide="ignore", invalid="ignore"):
        args = (d, y, v, reml, cert, out, conv, vmin, hi, T, a2, b1, a3, b2, up, g1)
        if cert.size > _FEW or not _march_few(*args):
            _certify(*args)
    return out, conv


def _zero_few(c, reml):
    """For a few rows without moderators and without absent studies: ``(A₂, B₁, A₃, B₂)``
    at τ² = 0 (:func:`_zero_terms`), the bound ``hi`` (:func:`score_bound_hi`) and the
    DerSimonian–Laird start clipped to [0, hi), computed per row on Python floats with
    the array code's operations in its order (the same bits); the chunk's cached Q_E,
    tr P, Σw, unweighted RSS, v_min and v_max are filled with the same numbers.  Rows
    equal to an earlier row (a batch of one is two copies) are computed once.  None
    when a row divides by zero or the rows are too large for floats to pay."""
    y, v = c.y, c.v
    k = y.shape[0]
    if k * c.n > FLOAT_STUDIES:
        return None
    seen: dict = {}
    rows = []
    try:
        for yl, vl in zip(y.T.tolist(), v.T.tolist()):
            key = (tuple(yl), tuple(vl))
            got = seen.get(key)
            if got is None:
                got = seen[key] = _zero_row(yl, vl, k, reml)
            rows.append(got)
    except (ZeroDivisionError, ValueError):
        return None
    cols = [np.array(x) for x in zip(*rows)]
    a2, b1, a3, b2, hi, start, q0, trp0, sw, rss, vmin, vmax = cols
    c._c.update(q0=q0, trp0=trp0, sw0=sw, rss_ols=rss, vmin=vmin, vmax=vmax)
    return a2, b1, a3, b2, hi, start


def _zero_row(y, v, k, reml):
    """One row of :func:`_zero_few` (X = 1, every study present)."""
    w = [1.0 / x for x in v]
    S = swy = g2 = s3 = sy = 0.0
    for wi, yi in zip(w, y):
        S += wi
        swy += wi * yi
        g2 += wi * wi
        s3 += wi * wi * wi
        sy += 1.0 * yi
    A = 1.0 / S
    gam = A * swy
    q0 = a2 = cc = a3 = 0.0
    for wi, yi in zip(w, y):
        r = yi - gam
        q0 += r * wi * r
        u = r * wi
        a2 += u * u
        cc += wi * u
        a3 += u * wi * u
    a3 = a3 - cc * (A * cc)
    trp0 = S - A * g2
    if reml:
        M = A * g2
        b1, b2 = trp0, g2 - 2 * (A * s3) + M * M
    else:
        b1, b2 = S, g2
    go = (1.0 / k) * sy
    rss = 0.0
    for yi in y:
        r = yi - go
        rss += r * r
    vmin, vmax = min(v), max(v)
    kp = float(k) - 1
    cnt = kp if reml else float(k)
    c2 = 2.0 * (cnt if cnt >= 1 else 1)
    disc = math.sqrt(rss * (rss + 2.0 * c2 * (vmax - vmin)))
    hi = (rss - c2 * vmin + disc) / c2
    hi = (hi if (hi != hi or hi >= 0.0) else 0.0) * (1 + 1e-9) + 1e-300  # np.maximum
    start = (q0 - kp) / trp0
    start = start if (start >= 0 and start < hi) else 0.0
    return a2, b1, a3, b2, hi, start, q0, trp0, S, rss, vmin, vmax


def _up1(h, g):
    """:func:`_up` for one point, on floats (the same IEEE operations: the same bits)."""
    pos = h > 0 or (h == 0 and g > 0)
    if pos:
        x = g * g + 4 * _LO * h
        x = x if (x != x or x > 0) else 0.0  # np.maximum(x, 0.0), NaN kept
        r = (g + math.sqrt(x)) * (1 / (2 * _LO))
    else:
        x = g * g - 4 * _HI * h
        x = x if (x != x or x > 0) else 0.0
        r = (math.sqrt(x) - g) * (1 / (2 * _HI))
    r *= _SAFE
    return pos, (r if r > 0 else 0.0)


def _hg_rows(d, y, v, cw, tw, vw, reml, cols):
    """:func:`_hg` at τ² = ``tw[j]`` for row ``cw[j]`` of ``y``, ``v`` (X = 1), the terms on
    Python floats (:func:`terms_row`; the logarithms one NumPy call): the same bits.
    Returns lists (h, g), or None where a term divides by zero or the rows are too many
    for floats to pay (rows × studies above ``FLOAT_STUDIES``; then use :func:`_hg`).
    ``cols`` caches each row's data as lists (and the terms of rows equal to an
    earlier one: evaluated once)."""
    if cw.size * y.shape[0] > FLOAT_STUDIES:
        return None
    ts, vs = tw.tolist(), vw.tolist()
    terms = []
    try:
        memo = cols.setdefault("memo", {})
        for c, t in zip(cw.tolist(), ts):
            if c not in cols:
                data = (y[:, c].tolist(), v[:, c].tolist())
                # a row equal to one seen before (a batch of one is two copies of
                # itself) shares its evaluations
                same = [j for j, val in cols.items() if j != "memo" and val[1] == data]
                cols[c] = (cols[same[0]][0] if same else c, data)
            key = (cols[c][0], t)
            got = memo.get(key)
            if got is None:
                got = memo[key] = terms_row(*cols[c][1], t, reml, 2)
            terms.append(got)
        g = [(vm + t) * (b2 / b1 - 2.0 * a3 / a2) for vm, t, (a2, b1, a3, b2) in zip(vs, ts, terms)]
    except ZeroDivisionError:
        return None
    m = len(terms)
    lg = np.log(np.array([x[0] for x in terms] + [x[1] for x in terms])).tolist()
    return [lg[j] - lg[m + j] for j in range(m)], g


def _hg_at(d, y, v, rows, t, vmin, reml, cols):
    """:func:`_hg` for the rows ``rows`` of ``y``, ``v`` at τ² = ``t``: on Python floats
    (:func:`_hg_rows`) for a few rows without moderators, else on arrays; the same bits."""
    if d.intercept:
        hg = _hg_rows(d, y, v, rows, t, vmin, reml, cols)
        if hg is not None:
            return np.array(hg[0]), np.array(hg[1])
    return _hg(d.take(rows), y.take(rows, -1), v.take(rows, -1), t, vmin, reml)


def _march_few(d, y, v, reml, cert, out, conv, vmin, hi, T, a2, b1, a3, b2, up, g1):
    """Steps 2–4 of :func:`tau2_lik` for a few rows when the march alone certifies every
    one of them (the usual case): then nothing changes (the candidate of each row is the
    one it has) and True is returned; False leaves everything to :func:`_certify`.

    The same numbers and decisions as the march of :func:`_certify`, with the per-row
    arithmetic on Python floats (a batch of one would otherwise pay NumPy's per-call
    overhead ~100 times); logarithms and exponentials stay NumPy calls (bit-identical
    to the array code).
    """
    m = cert.size
    vm = vmin[cert]
    Tc = T[cert]
    lg = np.log(np.concatenate([vm, a2[cert], b1[cert]])).tolist()
    t1 = out[cert]
    l1 = np.log1p(np.concatenate([Tc / vm, t1 / vm])).tolist()
    vmr, Tr, t1r = vm.tolist(), Tc.tolist(), t1.tolist()
    a2r, b1r, a3r, b2r = (x[cert].tolist() for x in (a2, b1, a3, b2))
    upr, g1r = up[cert].tolist(), g1[cert].tolist()
    s0 = lg[:m]
    gap_row, gap_a, gap_b, gap_pos = [], [], [], []
    for i in range(m):
        s0i = s0[i]
        sT = s0i + l1[i]
        h0 = lg[m + i] - lg[2 * m + i]
        g0 = vmr[i] * (b2r[i] / b1r[i] - 2.0 * a3r[i] / a2r[i]) if b1r[i] and a2r[i] else None
        if g0 is None:  # a division by zero: leave the row to the array code
            return False
        upc = upr[i]
        mid = upc and t1r[i] < Tr[i]
        g1c = g1r[i]
        g1c = g1c if (g1c != g1c or g1c < 0.0) else 0.0  # np.minimum(g1, 0.0)
        s1 = s0i + l1[m + i]
        r0 = _up1(h0, g0)[1]
        lo1 = s1 + g1c / _LO * _SAFE if mid else sT
        gap_row.append(i), gap_a.append(s0i + r0), gap_b.append(lo1), gap_pos.append(upc)
        if mid:
            gap_row.append(i), gap_a.append(s1 - g1c / _HI * _SAFE), gap_b.append(sT)
            gap_pos.append(False)
    open_ = [a < b for a, b in zip(gap_a, gap_b)]
    cols: dict = {}
    for _ in range(_MARCH):
        w = [j for j, o in enumerate(open_) if o]
        if not w:
            return True
        rw = [gap_row[j] for j in w]
        vw = vm[rw]
        tw = vw * np.expm1(np.array([gap_a[j] - s0[gap_row[j]] for j in w]))
        cw = cert[rw]
        hg = _hg_rows(d, y, v, cw, tw, vw, reml, cols) if d.intercept else None
        if hg is None:
            h, g = _hg(d.take(cw), y.take(cw, -1), v.take(cw, -1), tw, vw, reml)
            hg = h.tolist(), g.tolist()
        for j, hj, gj in zip(w, *hg):
            same, r = _up1(hj, gj)
            if same == gap_pos[j] and r > 0.02:
                gap_a[j] += r
                open_[j] = gap_a[j] < gap_b[j]
            else:
                return False  # left to the subdivision
    return not any(a < b for a, b in zip(gap_a, gap_b))


def _march_rest(d, y, v, reml, cert, g_row, g_a, g_b, g_pos, open_, vm, s0, rounds, cols):
    """The last ``rounds`` rounds of the march of :func:`_certify` on its few open gaps,
    the per-gap arithmetic on Python floats (:func:`_up1`, :func:`_hg_rows`): the same
    numbers and decisions as the array code; updates ``g_a`` and ``open_``."""
    w = np.flatnonzero(open_)
    ga, gb = g_a[w].tolist(), g_b[w].tolist()
    pos = g_pos[w].tolist()
    wl = list(range(w.size))
    for _ in range(rounds):
        if not wl:
            break
        idx = w[wl]
        rw = g_row[idx]
        vw = vm[rw]
        tw = vw * np.expm1(np.array([ga[j] for j in wl]) - s0[rw])
        cw = cert[rw]
        hg = _hg_rows(d, y, v, cw, tw, vw, reml, cols)
        if hg is None:
            h, g = _hg(d.take(cw), y.take(cw, -1), v.take(cw, -1), tw, vw, reml)
            hg = h.tolist(), g.tolist()
        keep = []
        for j, hj, gj in zip(wl, *hg):
            same, r = _up1(hj, gj)
            if same == pos[j] and r > 0.02:
                ga[j] += r
                if ga[j] < gb[j]:
                    keep.append(j)
        wl = keep
    g_a[w] = ga
    open_[w] = False
    open_[w[wl]] = True


def _certify(d, y, v, reml, cert, out, conv, vmin, hi, T, a2, b1, a3, b2, up, g1):
    """Steps 2–4 of :func:`tau2_lik` on the rows ``cert``; updates ``out``, ``conv``."""
    vm = vmin[cert]
    Tc = T[cert]
    s0 = np.log(vm)
    sT = s0 + np.log1p(Tc / vm)
    h0 = np.log(a2[cert]) - np.log(b1[cert])
    g0 = vm * (b2[cert] / b1[cert] - 2.0 * a3[cert] / a2[cert])
    t1 = out[cert]
    upc = up[cert]
    mid = upc & (t1 < Tc)  # the root found lies inside [0, T]
    far = upc & ~mid  # ... beyond T: then it is the only root there
    g1 = np.minimum(g1[cert], 0.0)
    s1 = s0 + np.log1p(t1 / vm)
    _, r0 = _up(h0, g0)
    # certified so far: [s0, s0 + r0] and, around a root inside [0, T],
    # [s1 - r1d, s1 + r1u]; the gaps left (at most two per row) are closed by
    # marching: evaluate where a certified region ends and extend it by that point's
    # radius.  A gap's sign is that of the region it continues: positive above 0
    # when the score there is positive (below a root), negative otherwise.
    lo1 = np.where(mid, s1 + g1 / _LO * _SAFE, sT)  # lower end of the root's region
    hi1 = np.where(mid, s1 - g1 / _HI * _SAFE, sT)  # its upper end
    idx = np.arange(cert.size)
    g_row = np.concatenate([idx, idx[mid]])
    g_a = np.concatenate([s0 + r0, hi1[mid]])
    g_b = np.concatenate([lo1, sT[mid]])
    g_pos = np.concatenate([upc, np.zeros(int(mid.sum()), dtype=bool)])
    open_ = g_a < g_b
    cols: dict = {}
    for it in range(_MARCH):
        w = np.flatnonzero(open_)
        if w.size == 0:
            break
        if w.size <= _FEW and d.intercept:  # the last rounds on floats: the same decisions
            _march_rest(d, y, v, reml, cert, g_row, g_a, g_b, g_pos, open_, vm, s0,
                        _MARCH - it, cols)
            break
        rw = g_row[w]
        vw = vm[rw]
        tw = vw * np.expm1(g_a[w] - s0[rw])
        cw = cert[rw]
        h, g = _hg(d.take(cw), y.take(cw, -1), v.take(cw, -1), tw, vw, reml)
        same, r = _up(h, g)
        ok = (same == g_pos[w]) & (r > 0.02)
        g_a[w[ok]] += r[ok]
        open_[w[~ok]] = False  # left to the subdivision below
        open_[w[ok]] = g_a[w[ok]] < g_b[w[ok]]
    unclosed = g_a < g_b
    done = np.ones(cert.size, dtype=bool)
    done[g_row[unclosed]] = False
    todo = idx[~done]
    cand_r = [idx[done & ~upc], idx[done & upc]]
    cand_t = [np.zeros(int((done & ~upc).sum())), t1[done & upc]]
    if todo.size:
        dc = d.take(cert[todo])
        yc, vc = y.take(cert[todo], -1), v.take(cert[todo], -1)
        vt, s0t = vm[todo], s0[todo]
        hT, gT = _hg_at(d.take(cert[todo]), yc, vc, np.arange(todo.size), Tc[todo], vt, reml, {})
        m_ = mid[todo]
        im = np.flatnonzero(m_)
        rest = np.flatnonzero(~m_)
        z = np.zeros(im.size)
        s1t, g1t = s1[todo][im], g1[todo][im]
        h0t, g0t, sTt = h0[todo], g0[todo], sT[todo]
        row = np.concatenate([rest, im, im])
        sa = np.concatenate([s0t[rest], s0t[im], s1t])
        ha = np.concatenate([h0t[rest], h0t[im], z])
        ga = np.concatenate([g0t[rest], g0t[im], g1t])
        sb = np.concatenate([sTt[rest], s1t, sTt[im]])
        hb = np.concatenate([hT[rest], z, hT[im]])
        gb = np.concatenate([gT[rest], g1t, gT[im]])
        # the same points for a row whatever the other rows (no choice by batch size)
        row, sa, ha, ga, sb, hb, gb = _refine(dc, yc, vc, vt, reml, row, sa, ha, ga, sb, hb,
                                              gb, s0t, _PIECES)
        drow, da, db, _ = _cover(dc, yc, vc, vt, reml, row, sa, ha, ga, sb, hb, gb, s0t)
        ut, t1t = upc[todo], t1[todo]
        cand_r += [todo[~ut], todo[ut]]
        cand_t += [np.zeros(int((~ut).sum())), t1t[ut]]
        if drow.size:  # local maxima inside [0, T]
            ta = vt[drow] * np.expm1(da - s0t[drow])
            tb = vt[drow] * np.expm1(db - s0t[drow])
            tr, ok = _solve(dc, yc, vc, vt, reml, drow, ta, tb, 0.5 * (ta + tb))
            conv[cert[todo[drow]]] &= ok
            cand_r.append(todo[drow])
            cand_t.append(tr)
        # the unique root beyond T, if the score is still positive there and not yet found
        bt = np.flatnonzero((hT > 0) & ~far[todo])
        if bt.size:
            Tb = Tc[todo][bt]
            tb, ok = _solve(dc, yc, vc, vt, reml, bt, Tb, hi[cert][todo][bt], Tb)
            conv[cert[todo[bt]]] &= ok
            cand_r.append(todo[bt])
            cand_t.append(tb)
    cr = np.concatenate(cand_r)
    ct = np.concatenate(cand_t)
    counts = np.bincount(cr, minlength=cert.size)
    single = counts[cr] == 1
    out[cert[cr[single]]] = ct[single]
    multi = ~single
    if multi.any():
        r, t = cr[multi], ct[multi]
        rr = cert[r]
        ll = loglik(d.take(rr), y.take(rr, -1), v.take(rr, -1), t, reml)
        order = np.lexsort((-ll, r))  # by row, best first
        r, t = r[order], t[order]
        first = np.ones(r.size, dtype=bool)
        first[1:] = r[1:] != r[:-1]
        out[cert[r[first]]] = t[first]
