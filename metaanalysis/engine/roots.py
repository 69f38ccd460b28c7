"""Vectorised safeguarded root finding on batches (the iterations of every
iterative estimator, the likelihood maxima and the Q-profile limits).

Iterations loop; rows never do.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = ["FEW", "FLOAT_STUDIES", "MAXITER", "TOL", "columns", "solve_decreasing"]

TOL = 1e-12
MAXITER = 200
FEW = 8  # batches of up to this many rows take the per-row control flow of _solve_few
# rows × studies up to which evaluating rows on Python floats (g.few) beats NumPy's
# per-call overhead (one evaluation: ~0.6 µs per study on floats, ~40 µs on arrays)
FLOAT_STUDIES = 96

try:  # np.count_nonzero's C core without its Python dispatch layer
    from numpy._core.multiarray import count_nonzero as count_true
except ImportError:  # pragma: no cover - older numpy
    try:
        from numpy.core.multiarray import count_nonzero as count_true
    except ImportError:
        count_true = np.count_nonzero


def columns(fn, cols):
    """``ev(i, x) = fn(*cols[i], x)``: a per-row evaluator on Python floats for
    :func:`solve_decreasing` (``g.few``), computed once for rows whose data equal an
    earlier row's (a batch of one is fitted as two copies of itself; the Q-profile
    solves each row twice) and remembered for the last ``x`` of each such row.

    ``cols[i]`` is a tuple of lists (row i's data).
    """
    canon = list(range(len(cols)))
    for i in range(1, len(cols)):
        for j in range(i):
            if canon[j] == j and cols[j] == cols[i]:
                canon[i] = j
                break
    memo: dict = {}

    def ev(i, x):
        c = canon[i]
        got = memo.get(c)
        if got is not None and got[0] == x:
            return got[1]
        r = fn(*cols[c], x)
        memo[c] = (x, r)
        return r

    ev.canon = canon
    # worth it only for small rows (else the array code evaluates, with the same bits)
    ev.cheap = sum(c == i for i, c in enumerate(canon)) * len(cols[0][0]) <= FLOAT_STUDIES
    return ev


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
    last: bool = False,
):
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

    ``g`` may carry ``g.few(data) -> ev``, a per-row evaluator on Python floats
    (:func:`columns`; ``ev(i, x)`` returns row i's values as a tuple of floats and
    raises ``ZeroDivisionError`` where NumPy would return inf or NaN): batches of
    up to :data:`FEW` rows then call it instead of ``g`` (the same IEEE operations,
    the same bits, without NumPy's per-call overhead).

    Returns ``(x, converged)``; with ``last=True``, ``g`` returns a third array
    (anything per row, e.g. the exact derivative) and the result is
    ``(x, converged, (x_eval, value, aux))``: the point of each row's last
    evaluation, g there and that third array.
    """
    L = np.array(lo, dtype=float)
    H = np.array(hi, dtype=float)
    X = np.minimum(np.maximum(np.asarray(x0, dtype=float), L), H)
    n = X.shape[0]
    if n <= FEW:
        return _solve_few(g, data, L, H, X, tol, scale, maxiter, quadratic, last)
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
    if last:
        XE, VE, AE = np.zeros(n), np.zeros(n), np.zeros(n)
        xe_out, ve_out, ae_out = np.zeros(n), np.zeros(n), np.zeros(n)
    # Every pass costs a fixed number of array calls, so the loop body keeps
    # their count low (it dominates a batch of one): count_nonzero rather than
    # .any(), in-place updates, no np.clip.
    with np.errstate(all="ignore"):
        for _ in range(maxiter):
            if last:
                val, slope, aux = g(X, *data)
                np.copyto(XE, X, where=~fin)
                np.copyto(VE, val, where=~fin)
                np.copyto(AE, aux, where=~fin)
            else:
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
            nbad = count_true(bad)
            if quadratic:
                if nbad:
                    np.copyto(ast, 0.0, where=bad)
                NEWT = ast
                newt = nbad < bad.size
            if nbad:
                # midpoint; geometric when the bracket spans orders of magnitude
                mid = np.where((L > 0) & (H > 16 * L), np.sqrt(L * H), 0.5 * (L + H))
                np.copyto(xn, mid, where=bad)
            if count_true(small):
                np.copyto(xn, np.minimum(np.maximum(xn, L), H), where=small)
            if nfin:
                np.copyto(xn, X, where=fin)
            DX = DX1
            DX1 = np.abs(xn - X)
            sc = np.abs(xn) + S  # carried to the next pass (X = xn there)
            tolx = tol * sc
            fin |= small | (DX1 <= tolx) | (H - L <= tolx)
            X = xn
            nfin = count_true(fin)
            if nfin == fin.size:
                break
            if nfin * 4 > fin.size >= 64:  # compact: drop finished rows (small batches: freeze them)
                if rows is None:
                    rows = np.arange(n)
                    x_out = np.empty(n)
                    conv = np.zeros(n, dtype=bool)
                x_out[rows[fin]] = X[fin]
                conv[rows[fin]] = True
                if last:
                    xe_out[rows[fin]], ve_out[rows[fin]], ae_out[rows[fin]] = XE[fin], VE[fin], AE[fin]
                    XE, VE, AE = XE[~fin], VE[~fin], AE[~fin]
                keep = ~fin
                rows, X, L, H, S = rows[keep], X[keep], L[keep], H[keep], S[keep]
                sc, tolx = sc[keep], tolx[keep]
                DX, DX1, NEWT = DX[keep], DX1[keep], NEWT[keep]
                data = tuple(d[keep] if row_axis == 0 else d.compress(keep, -1) for d in data)
                fin = fin[keep]
                nfin = 0
    if rows is None:
        return (X, fin, (XE, VE, AE)) if last else (X, fin)
    x_out[rows] = X
    conv[rows] = fin
    if last:
        xe_out[rows], ve_out[rows], ae_out[rows] = XE, VE, AE
        return x_out, conv, (xe_out, ve_out, ae_out)
    return x_out, conv




def _solve_few(g, data, L, H, X, tol, scale, maxiter, quadratic, last):
    """:func:`solve_decreasing` for a handful of rows: the same iteration, its control
    flow on Python floats instead of arrays (a batch of one pays NumPy's per-call
    overhead for every bracket update).  Only ``g`` sees arrays.  Every operation is
    the same IEEE operation as in the array code (+, −, ×, /, √, comparisons), so a
    row gets the same bits either way (tests/test_batch_invariance.py)."""
    n = X.shape[0]
    Lr, Hr, Xr = L.tolist(), H.tolist(), X.tolist()
    if scale is None:
        Sr = [0.0] * n
    else:
        scale = np.asarray(scale, dtype=float)
        Sr = (scale if scale.shape == (n,) else np.broadcast_to(scale, (n,))).tolist()
    DX = [h - lo for h, lo in zip(Hr, Lr)]
    DX1 = list(DX)
    NEWT = [0.0] * n
    fin = [False] * n
    XE, VE, AE = [0.0] * n, [0.0] * n, [0.0] * n
    sc = [abs(x) + s for x, s in zip(Xr, Sr)]
    tolx = [tol * c for c in sc]
    Xa = X
    few = getattr(g, "few", None)
    ev = few(data) if few is not None else None
    # a row with the data, bracket, start and scale of an earlier row follows its
    # iteration to the last bit: solve it once (a batch of one is two copies of itself)
    alias = {}
    if ev is not None:
        for i, c in enumerate(ev.canon):
            if c != i and (Lr[i], Hr[i], Xr[i], Sr[i]) == (Lr[c], Hr[c], Xr[c], Sr[c]):
                alias[i] = c
                fin[i] = True
        if not ev.cheap:
            ev = None
    with np.errstate(all="ignore"):
        for _ in range(maxiter):
            if ev is not None:
                try:
                    got = [None if fin[i] else ev(i, Xr[i]) for i in range(n)]
                except (ZeroDivisionError, OverflowError, ValueError):
                    ev = None  # this pass and the next on arrays
                    Xa = np.array(Xr)
            if ev is None:
                if last:
                    val, slope, aux = g(Xa, *data)
                    got = list(zip(val.tolist(), slope.tolist(), aux.tolist()))
                else:
                    val, slope = g(Xa, *data)
                    got = list(zip(val.tolist(), slope.tolist()))
            for i in range(n):
                if fin[i]:  # frozen: nothing of it is used any more
                    continue
                x, lo, hi = Xr[i], Lr[i], Hr[i]
                gi = got[i]
                v, sl = gi[0], gi[1]
                if last:
                    XE[i], VE[i], AE[i] = x, v, gi[2]
                if v > 0:
                    Lr[i] = lo = x
                else:
                    Hr[i] = hi = x
                try:
                    step = v / sl
                except ZeroDivisionError:
                    step = _div0(v, sl)
                xn = x - step
                ast = abs(step)
                small = ast <= tolx[i]
                if not small and NEWT[i] <= 0.1 * sc[i]:
                    small = ast * ast * ast <= tolx[i] * NEWT[i] * NEWT[i]
                bad = not ((lo < xn < hi and ast <= 0.5 * DX[i]) or small)
                if quadratic:
                    NEWT[i] = 0.0 if bad else ast
                if bad:
                    xn = math.sqrt(lo * hi) if (lo > 0 and hi > 16 * lo) else 0.5 * (lo + hi)
                if small:  # clip into the bracket, NaN-propagating as np.maximum/minimum
                    if xn != xn or lo != lo or hi != hi:
                        xn = math.nan
                    else:
                        xn = xn if xn >= lo else lo
                        xn = xn if xn <= hi else hi
                DX[i] = DX1[i]
                DX1[i] = d1 = abs(xn - x)
                sc[i] = abs(xn) + Sr[i]
                tolx[i] = t = tol * sc[i]
                fin[i] = small or d1 <= t or hi - lo <= t
                Xr[i] = xn
            if ev is None:
                Xa = np.array(Xr)
            if all(fin):
                break
    for i, c in alias.items():
        Xr[i], fin[i], XE[i], VE[i], AE[i] = Xr[c], fin[c], XE[c], VE[c], AE[c]
    Xa = np.array(Xr)
    conv = np.array(fin)
    if last:
        return Xa, conv, (np.array(XE), np.array(VE), np.array(AE))
    return Xa, conv


def _div0(a, b):
    """a / 0.0 as NumPy computes it (±inf, NaN for 0/0)."""
    if a != a or a == 0:
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)
