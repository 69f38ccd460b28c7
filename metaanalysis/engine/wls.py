"""Weighted least squares on a chunk of rows: the quantities every estimator uses.

A :class:`Chunk` holds the rows of a batch in the engine's layout ``(k, n)``
(rows on the last axis; an absent study has ``v = inf``, ``y = 0`` and
presence ``m = 0``) with its design (:mod:`metaanalysis.engine.design`), and
caches the fit at τ² = 0 (Q_E, tr P, Σw), shared by DerSimonian–Laird,
Hunter–Schmidt, I², H² and the Q test.

With ``W = diag(w)``, ``w = 1/(v + τ²)`` and ``P = W − WX(X'WX)⁻¹X'W``:
``Q(τ²) = y'Py`` is the generalised Q (Q_E with moderators), decreasing in τ²,
with ``dQ/dτ² = −y'P²y`` and ``d²Q/dτ² = 2 y'P³y``.

Examples
--------
>>> import numpy as np
>>> from metaanalysis.engine.design import Intercept
>>> c = Chunk(Intercept(), np.array([[0.1], [0.3], [0.35]]), np.array([[0.01], [0.02], [0.015]]))
>>> round(float(c.q0[0]), 4), int(c.k[0])
(2.8846, 3)
"""

from __future__ import annotations

import numpy as np

from metaanalysis.engine.design import colsum, ein

__all__ = ["Chunk", "q_terms", "q_terms_row", "trace_pdpd", "wls"]


def wls(d, y, v, t, resid=True):
    """Weights, X'WX, its inverse, coefficients (in the design's basis) and residuals
    (``None`` with ``resid=False``) at τ² = ``t`` (a number or one value per row)."""
    w = v + t
    np.reciprocal(w, out=w)
    S = d.gram(w)
    A = d.inv(S)
    gam = d.mv(A, d.xtz(w, y))
    r = y - d.xb(gam) if resid else None
    return w, S, A, gam, r


def q_terms(d, y, v, t, order=1):
    """``Q(τ²)``, ``y'P²y`` (= −dQ/dτ²) and, with ``order=2``, ``y'P³y`` (= ½ d²Q/dτ²)."""
    if order >= 2 and d.intercept:  # X = 1: three-operand sums, no temporaries
        w = v + t
        np.reciprocal(w, out=w)
        sw = colsum(w)
        u = y - ein("ij,ij->j", w, y) / sw
        q = ein("ij,ij,ij->j", w, u, u)
        u *= w  # Py
        c = ein("ij,ij->j", w, u)
        return q, ein("ij,ij->j", u, u), ein("ij,ij,ij->j", u, w, u) - c * c / sw
    w, S, A, gam, r = wls(d, y, v, t)
    u = r * w
    q = colsum(u, r)
    a2 = colsum(u, u)
    if order < 2:
        return q, a2
    c = d.xtz(w, u)
    return q, a2, colsum(u * w, u) - d.dot(c, d.mv(A, c))


def q_terms_row(y, v, t):
    """:func:`q_terms` with X = 1 and ``order=2`` for one row on Python floats (``y``,
    ``v`` lists, 0 and inf where absent; ``t`` a float): the same IEEE operations in
    the same order (sums over studies in study order, explicit loops: ``sum()``
    compensates from Python 3.12), so the same bits.  Raises ``ZeroDivisionError``
    where NumPy would return inf or NaN."""
    w = [1.0 / (x + t) for x in v]
    sw = swy = 0.0
    for wi, yi in zip(w, y):
        sw += wi
        swy += wi * yi
    mu = swy / sw
    q = c = a2 = a3 = 0.0
    for wi, yi in zip(w, y):
        u = yi - mu
        q += wi * u * u
        pu = u * wi
        c += wi * pu
        a2 += pu * pu
        a3 += pu * wi * pu
    return q, a2, a3 - c * c / sw


def trace_pdpd(d, w, A, d1=None, d2=None):
    """tr(P D₁ P D₂) for P = W − WXAX'W (A = (X'WX)⁻¹) and diagonal D₁, D₂
    (``None`` = identity; diagonals as (k, n) arrays, 0 where absent):
    Σw²d₁d₂ − 2 tr(A X'W³D₁D₂X) + tr(A X'W²D₁X A X'W²D₂X)."""
    w2 = w * w
    e1 = w2 if d1 is None else w2 * d1  # W²D₁
    e12 = e1 if d2 is None else e1 * d2  # W²D₁D₂
    G1 = d.gram(e1)
    G2 = G1 if d2 is d1 else d.gram(w2 if d2 is None else w2 * d2)
    s12 = G1 if (e12 is e1 and d.intercept) else colsum(e12)  # X = 1: G1 is that sum
    return (s12 - 2 * d.tr(d.mm(A, d.gram(e12, w)))
            + d.tr(d.mm(d.mm(A, G1), d.mm(A, G2))))


class Chunk:
    """Rows of a batch in the engine's layout, with cached quantities at τ² = 0.

    Parameters
    ----------
    d : design
    y, v : ndarray (k, n)
        Effects (0 where absent) and variances (``inf`` where absent).
    m : ndarray (k, n), optional
        Presence, 1.0 or 0.0 (default: every study present).

    Cached (rows on the last axis, carried over by :meth:`take` and
    :meth:`tile2`): the fit at τ² = 0 — ``w0`` = 1/v, ``a0`` = (X'V⁻¹X)⁻¹, its
    residuals ``r0`` and ``u0`` = w₀r₀, ``g20`` = X'V⁻²X, ``q0`` = Q_E(0),
    ``sw0`` = Σ1/v, ``trp0`` = tr P —; ``a_ols`` and ``rss_ols`` of the
    unweighted least-squares fit; ``vmin``, ``vmax`` per row.
    """

    def __init__(self, d, y, v, m=None):
        self.d = d
        self.y = y
        self.v = v
        self.full = m is None
        self._m = m
        self.k = (np.full(y.shape[1], y.shape[0], dtype=np.intp) if m is None
                  else np.count_nonzero(m, axis=0))
        self.p = d.p
        self._c: dict = {}

    @property
    def n(self) -> int:
        return self.y.shape[1]

    @property
    def m(self):
        """Presence, 1.0 or 0.0 per study (made on first use when every study is present)."""
        if self._m is None:
            self._m = np.ones_like(self.y)
        return self._m

    @property
    def vz(self):
        """Variances with 0 where absent."""
        if "vz" not in self._c:
            self._c["vz"] = self.v if self.full else np.where(self.m > 0, self.v, 0.0)
        return self._c["vz"]

    def _get(self, key):
        if key not in self._c:
            if key in ("a_ols", "rss_ols"):
                d = self.d
                if self.full and d.intercept:  # X'MX = k and X'My = Σy: no all-ones array
                    # (Σ 1·yᵢ in study order is Σ yᵢ, and a sum of k ones is k: the same bits)
                    A = d.inv(np.full(self.n, float(self.y.shape[0])))
                    r = self.y - d.mv(A, colsum(self.y))
                else:
                    A = d.inv(d.gram(self.m))
                    r = self.y - d.xb(d.mv(A, d.xtz(self.m, self.y)))
                if not self.full:
                    r *= self.m
                self._c.update(a_ols=A, rss_ols=colsum(r, r))
            elif key == "u0":
                self._c["u0"] = self.r0 * self.w0
            elif key in ("vmin", "vmax"):
                v = self.v
                self._c.update(vmin=np.minimum.reduce(v, 0),
                               vmax=np.maximum.reduce(v if self.full else self.vz, 0))
            else:
                d = self.d
                w = 1.0 / self.v
                S = d.gram(w)
                A = d.inv(S)
                r = self.y - d.xb(d.mv(A, d.xtz(w, self.y)))
                sw = S if d.intercept else colsum(w)
                g2 = d.gram(w, w)
                # Q_E = Σ (r w) r: the products and sums of colsum(r * w, r), without r * w
                self._c.update(w0=w, a0=A, r0=r, g20=g2, q0=ein("ij,ij,ij->j", r, w, r),
                               sw0=sw, trp0=sw - d.tr(d.mm(A, g2)))
        return self._c[key]

    w0 = property(lambda self: self._get("w0"), doc="1/v (0 where absent)")
    a0 = property(lambda self: self._get("a0"), doc="(X'V⁻¹X)⁻¹, in the design's basis")
    r0 = property(lambda self: self._get("r0"), doc="residuals of the fit at τ² = 0")
    u0 = property(lambda self: self._get("u0"), doc="w₀r₀ (= P₀y)")
    g20 = property(lambda self: self._get("g20"), doc="X'V⁻²X")
    q0 = property(lambda self: self._get("q0"), doc="Q_E at τ² = 0 (Cochran's Q)")
    sw0 = property(lambda self: self._get("sw0"), doc="Σ 1/vᵢ")
    trp0 = property(lambda self: self._get("trp0"), doc="tr P at τ² = 0")
    rss_ols = property(lambda self: self._get("rss_ols"),
                       doc="residual sum of squares of the unweighted fit")
    vmin = property(lambda self: self._get("vmin"), doc="smallest vᵢ of each row")
    vmax = property(lambda self: self._get("vmax"), doc="largest vᵢ of each row")

    def ols(self):
        """(X'MX)⁻¹ and the residual sum of squares of the unweighted fit."""
        return self._get("a_ols"), self._get("rss_ols")

    def take(self, idx):
        """The rows ``idx`` as a new chunk, cached quantities carried over."""
        # .take keeps the (k, n) arrays in C order (x[:, idx] would not): NumPy's sums
        # over studies then round the same way for every batch (design.ein)
        c = Chunk(self.d.take(idx), self.y.take(idx, -1), self.v.take(idx, -1),
                  None if self.full else self.m.take(idx, -1))
        c._c = {key: val.take(idx, -1) for key, val in self._c.items()}
        return c

    def tile2(self):
        """The rows twice (rows 0..n−1, then again), with the cached per-row numbers
        (what the Q-equation roots use: Q(0), the unweighted RSS, v_min, v_max)."""
        def cat(a):
            return np.concatenate([a, a], axis=-1)

        d = self.d
        if not d.shared:
            d = d.with_arrays(tuple(cat(a) for a in d.arrays()))
        c = Chunk(d, cat(self.y), cat(self.v), None if self.full else cat(self.m))
        c._c = {key: cat(self._get(key)) for key in ("q0", "rss_ols", "vmin", "vmax")}
        return c
