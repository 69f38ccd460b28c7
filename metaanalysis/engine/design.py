"""Design matrices of the engine: the intercept-only model and general ``X``.

Every estimator of :mod:`metaanalysis.engine` is written once against the small
interface below; the intercept-only model is the case p = 1, where every
"p × p matrix" is a number per row and the sums are plain row sums.

Internal layout (the engine's, see :mod:`metaanalysis.engine.batch`): study
arrays have shape ``(k, n)``, the n rows of a batch on the last, contiguous
axis; an absent study has ``v = inf`` (weight exactly 0) and ``y = 0``.  A
p × p matrix per row is an array ``(p, p, n)``, a p-vector ``(p, n)``.

The design's columns are replaced by an orthonormal basis ``Q`` of their span
(``X = Q R``, thin QR, unweighted): τ² estimators, Q_E, fitted values and
every trace below are invariant to a change of basis of the column space, and
an orthonormal basis keeps badly scaled moderators (calendar years next to an
intercept) harmless.  Coefficients are mapped back with ``β = R⁻¹γ`` and
``Var β = R⁻¹ Var γ R⁻ᵀ`` (:meth:`Matrix.to_original`).

Examples
--------
>>> import numpy as np
>>> d = make_design(np.column_stack([np.ones(4), [1.0, 2, 3, 4]]), 4)
>>> d.p, d.gram(np.ones((4, 3))).shape
(2, (2, 2, 3))
"""

from __future__ import annotations

import numpy as np

from metaanalysis.errors import InputError

__all__ = ["Intercept", "Matrix", "colsum", "ein", "einsum_rows", "make_design"]

try:  # np.einsum's C core without its Python dispatch layer (matters for a batch of one)
    from numpy._core.multiarray import c_einsum as einsum_rows
except ImportError:  # pragma: no cover - older numpy
    try:
        from numpy.core.multiarray import c_einsum as einsum_rows
    except ImportError:
        einsum_rows = np.einsum


_ROWED: dict[str, tuple[bool, ...]] = {}


def _pad(a):
    return np.concatenate((a, a), -1)


def ein(spec, *ops):
    """``einsum(spec, *ops)`` whose rounding does not depend on the number of rows.

    Rows are the last axis of the output and of the operands that have them
    (the last operand always does).  NumPy sums a C-contiguous ``(k, n)`` array
    over its first axis in order, one study after the other, for every n ≥ 2;
    with n = 1 the row axis vanishes and the sum runs along a contiguous axis in
    another order (unrolled, pairwise, fused multiply-add), so one row alone
    would round differently from the same row in a batch.  A single row is
    therefore computed as two copies of itself: every row of a batch gets the
    same bits whatever the other rows are (docs/scale.md).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.random((12, 5)), rng.random((12, 5))
    >>> all(ein("ij,ij->j", a[:, [j]], b[:, [j]])[0] == ein("ij,ij->j", a, b)[j]
    ...     for j in range(5))
    True
    """
    if ops[-1].shape[-1] != 1:
        return einsum_rows(spec, *ops)
    rowed = _ROWED.get(spec)
    if rowed is None:
        ins, out = spec.split("->")
        rowed = _ROWED[spec] = tuple(s.endswith(out[-1]) for s in ins.split(","))
    if any(r and a.shape[-1] != 1 for a, r in zip(ops, rowed)):  # broadcast against n rows
        return einsum_rows(spec, *ops)
    return einsum_rows(spec, *(_pad(a) if r else a for a, r in zip(ops, rowed)))[..., :1]


def _rowsum(a, b):
    """Σ over the first axis of the product ``a * b`` (broadcast; rows on the last
    axis), summed in order as :func:`colsum` does: the shared design's products
    without BLAS or einsum, whose order of summation can change with the number
    of rows."""
    return colsum(np.multiply(a, b, order="C"))


def colsum(a, b=None):
    """Σ over studies (axis 0) of ``a`` or of ``a * b`` (no temporary), rows on the
    last axis; the same bits for a row whatever the other rows (:func:`ein`)."""
    if b is None:
        if a.shape[-1] == 1:
            return np.add.reduce(_pad(a), 0)[..., :1]
        return np.add.reduce(a, 0)
    return ein("ij,ij->j", a, b)


class Intercept:
    """The intercept-only model: X = 1, so X'DX = Σd and Xβ = β."""

    p = 1
    shared = True
    intercept = True

    def gram(self, a, b=None):
        """X' diag(a∘b) X per row."""
        return colsum(a, b)

    xtz = gram  # X'(a∘b): the same sum when X = 1

    def xb(self, beta):
        """Fitted values Xβ, broadcastable against (k, n)."""
        return beta

    # p × p algebra, here on numbers
    @staticmethod
    def inv(S):
        return 1.0 / S

    @staticmethod
    def mv(A, c):
        return A * c

    @staticmethod
    def dot(a, c):
        return a * c

    @staticmethod
    def mm(A, B):
        return A * B

    @staticmethod
    def tr(A):
        return A

    @staticmethod
    def logdet(S):
        return np.log(S)

    @staticmethod
    def diag(A):
        return A[None]

    def arrays(self):
        """Per-row arrays to carry through row selections (none here)."""
        return ()

    def with_arrays(self, arrays):
        return self

    def take(self, idx):
        return self

    def full_rank(self, m):
        """Rows whose present studies identify every coefficient (k ≥ 1 here)."""
        return colsum(m) > 0


class Matrix:
    """A design with p ≥ 1 columns, shared by every row (``Q`` of shape (k, p)) or
    one per row (``Q`` of shape (k, p, n)); ``R`` maps back to the original columns."""

    shared: bool
    intercept = False

    def __init__(self, Q, R):
        self.Q = Q
        self.R = R
        self.p = Q.shape[1]
        p = self.p
        iu = np.triu_indices(p)
        self._pairs = iu
        full = np.empty((p, p), dtype=np.intp)
        full[iu] = np.arange(iu[0].size)
        full[iu[1], iu[0]] = np.arange(iu[0].size)
        self._full = full
        self.shared = Q.ndim == 2
        if self.shared:  # (npairs, k), (p, k) and (p, k, 1), broadcast over the rows
            self._QQ = (Q[:, iu[0]] * Q[:, iu[1]]).T.copy()
            self._Qc = Q.T.copy()
            self._Qt = Q.T[:, :, None].copy()
        else:
            self._QQ = np.ascontiguousarray(Q[:, iu[0], :] * Q[:, iu[1], :])  # (k, npairs, n)

    # -- X'DX, X'z, Xβ
    def gram(self, a, b=None):
        z = a if b is None else a * b
        if self.shared:
            G = ein("qi,in->qn", self._QQ, z)  # not BLAS: its order of summation
            # depends on a row's place in the batch
        else:
            G = ein("iqn,in->qn", self._QQ, z)
        return G[self._full]

    def xtz(self, a, b=None):
        z = a if b is None else a * b
        if self.shared:
            return ein("ai,in->an", self._Qc, z)
        return ein("ian,in->an", self.Q, z)

    def xb(self, beta):
        if self.shared:
            return _rowsum(beta[:, None, :], self._Qt)
        return ein("ian,an->in", self.Q, beta)

    # -- p × p algebra on (p, p, n) stacks
    def inv(self, S):
        if self.p == 1:
            return 1.0 / S
        if self.p == 2:
            a, b, d = S[0, 0], S[0, 1], S[1, 1]
            det = a * d - b * b
            out = np.empty_like(S)
            out[0, 0] = d / det
            out[1, 1] = a / det
            out[0, 1] = out[1, 0] = -b / det
            return out
        with np.errstate(all="ignore"):
            try:
                return np.ascontiguousarray(np.linalg.inv(S.transpose(2, 0, 1)).transpose(1, 2, 0))
            except np.linalg.LinAlgError:  # a singular row: invert row by row
                out = np.full_like(S, np.nan)
                for j in range(S.shape[2]):
                    try:
                        out[:, :, j] = np.linalg.inv(S[:, :, j])
                    except np.linalg.LinAlgError:
                        pass
                return out

    @staticmethod
    def mv(A, c):
        return ein("abn,bn->an", A, c)

    @staticmethod
    def dot(a, c):
        return ein("an,an->n", a, c)

    @staticmethod
    def mm(A, B):
        return ein("abn,bcn->acn", A, B)

    @staticmethod
    def tr(A):
        return ein("aan->n", A)

    @staticmethod
    def logdet(S):
        with np.errstate(all="ignore"):
            return np.linalg.slogdet(S.transpose(2, 0, 1))[1]

    @staticmethod
    def diag(A):
        return einsum_rows("aan->an", A)

    # -- rows
    def arrays(self):
        return () if self.shared else (self.Q, self.R)

    def with_arrays(self, arrays):
        if self.shared:
            return self
        return Matrix(*arrays)

    def take(self, idx):
        if self.shared:
            return self
        if isinstance(idx, slice):
            return Matrix(np.ascontiguousarray(self.Q[..., idx]),
                          np.ascontiguousarray(self.R[..., idx]))
        return Matrix(self.Q.take(idx, -1), self.R.take(idx, -1))  # C order (not [..., idx])

    def full_rank(self, m, tol=1e-10):
        """Rows whose present studies (``m`` (k, n), 1 = present) identify every
        coefficient: the smallest eigenvalue of Q'MQ above ``tol`` (Q orthonormal
        over all k studies, so 1 is the largest possible)."""
        G = self.gram(m)
        if self.p == 1:
            return G[0, 0] > tol
        ev = np.linalg.eigvalsh(G.transpose(2, 0, 1))
        return ev[:, 0] > tol

    def to_original(self, gamma, V=None):
        """Coefficients (and their covariance) in the original columns of X."""
        Rinv = np.linalg.inv(self.R if self.shared else self.R.transpose(2, 0, 1))
        if self.shared:  # Σ over b (and c) in order: the same bits for any batch
            beta = _rowsum(gamma[:, None, :], Rinv.T[:, :, None])
            if V is None:
                return beta, None
            T = _rowsum(V[:, None], Rinv.T[:, :, None, None])  # T[a, c] = Σ_b R⁻¹[a, b] V[b, c]
            return beta, _rowsum(T.transpose(1, 0, 2)[:, :, None], Rinv.T[:, None, :, None])
        Rt = Rinv.transpose(2, 1, 0)  # Rt[b, a, n] = R⁻¹[a, b] of row n
        beta = _rowsum(gamma[:, None, :], Rt)
        if V is None:
            return beta, None
        T = _rowsum(V[:, None], Rt[:, :, None, :])  # T[a, c] = Σ_b R⁻¹[a, b] V[b, c]
        return beta, _rowsum(T.transpose(1, 0, 2)[:, :, None], Rt[:, None])


def make_design(X, k: int, B: int | None = None):
    """The engine's design for ``X``: ``None`` (intercept only), ``(k, p)`` shared by
    every row, or ``(B, k, p)`` one per row.  Raises :class:`InputError` for a bad
    shape, non-finite entries or collinear columns."""
    if X is None:
        return Intercept()
    try:
        X = np.asarray(X, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"X: could not read as numbers ({exc}); expected a (k, p) "
                         "or (B, k, p) design matrix") from None
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim == 2:
        if X.shape[0] != k:
            raise InputError(f"X: got {X.shape[0]} rows; expected one per study (k = {k})")
    elif X.ndim == 3:
        if X.shape[1] != k or (B is not None and X.shape[0] not in (1, B)):
            raise InputError(f"X: got shape {X.shape}; expected (B, k, p) with B = {B}, k = {k}")
        if X.shape[0] == 1:
            X = X[0]
    else:
        raise InputError(f"X: got an array of shape {X.shape}; expected (k, p) or (B, k, p)")
    if X.shape[-1] == 0:
        raise InputError("X: got no columns; expected at least one (the intercept)")
    if not np.all(np.isfinite(X)):
        raise InputError("X: got non-finite entries; expected finite moderator values")
    if X.ndim == 2:
        Q, R = np.linalg.qr(X)
        d = np.abs(np.diag(R))
        if X.shape[1] > X.shape[0] or d.min() <= 1e-10 * max(d.max(), 1e-300):
            raise InputError(f"X: the {X.shape[1]} columns are collinear (the design is not of "
                             "full column rank); drop redundant moderators")
        return Matrix(Q, R)
    Q, R = np.linalg.qr(X)  # stacked: (B, k, p), (B, p, p)
    d = np.abs(np.diagonal(R, axis1=1, axis2=2))
    if X.shape[2] > X.shape[1] or np.any(d.min(1) <= 1e-10 * np.maximum(d.max(1), 1e-300)):
        bad = int(np.argmax(d.min(1) <= 1e-10 * np.maximum(d.max(1), 1e-300)))
        raise InputError(f"X: the columns of row {bad}'s design are collinear (not of full "
                         "column rank); drop redundant moderators")
    return Matrix(np.ascontiguousarray(Q.transpose(1, 2, 0)),
                  np.ascontiguousarray(R.transpose(1, 2, 0)))
