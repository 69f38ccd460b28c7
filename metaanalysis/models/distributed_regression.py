"""Batch meta-regression on Dask arrays: ``pool_many(yi, vi, mods=...)`` past one machine.

The same route as the intercept-only path (:mod:`metaanalysis.models.distributed`):
the rows are cut into blocks, each block is one call of the engine,
:func:`metaanalysis.engine.fit`, now with the design matrix, and the per-row
results come back as the columns of one packed array per block.  The design
is either shared by every row (``mods`` of shape (k,) or (k, q), or a
DataFrame: it travels with the graph, a few numbers) or one per row (``mods``
of shape (batch, k, q), NumPy or Dask, chunked with the rows so that a block
carries its own designs).  An intercept is added, as in ``pool_many``.

The engine gives every row the same bits whatever the other rows of its batch
(docs/scale.md), so the results are identical to the last bit to one
in-process ``pool_many(yi, vi, mods=...)`` call, for any chunking and
scheduler.

Examples
--------
>>> import numpy as np, metaanalysis as ma
>>> rng = np.random.default_rng(2)
>>> x = np.arange(6.0)
>>> y, v = rng.normal(size=(20_000, 6)) + 0.1 * x, np.full((20_000, 6), 0.5)
>>> lazy = ma.pool_many(y, v, mods=x, method="DL", chunks=10_000, compute=False)
>>> lazy.names, lazy.coef.shape, lazy.nblocks
(('intrcpt', 'mod'), (20000, 2), 2)
>>> res = lazy.compute(scheduler="sync")
>>> bool(np.array_equal(res.coef, ma.pool_many(y, v, mods=x, method="DL").coef))
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metaanalysis import engine
from metaanalysis.engine.batch import check_btt
from metaanalysis.errors import InputError
from metaanalysis.formatting import inference_text, method_text
from metaanalysis.models.distributed import (
    DaskBatchResult,
    dask_inputs,
    is_dask_array,
    require_dask,
)
from metaanalysis.models.regression import BatchRegressionResult, batch_design
from metaanalysis.results.display import Display, Lines

__all__ = ["DaskBatchRegressionResult", "pool_many_regression_dask"]

# per-row outputs: one column each, p columns each, p × p columns (vcov)
_ONE = ("k", "qm", "qm_df", "qm_df2", "qm_p", "tau2", "se_tau2", "tau2_ci_lb", "tau2_ci_ub",
        "i2", "i2_ci_lb", "i2_ci_ub", "h2", "h2_ci_lb", "h2_ci_ub", "q", "q_df", "q_p", "df",
        "converged")  # fmt: skip
_COEF = ("coef", "coef_se", "coef_stat", "coef_p", "coef_ci_lb", "coef_ci_ub")
_INT = ("k", "qm_df", "q_df")  # integer outputs of the engine (exact as floats)


def _width(p: int) -> int:
    return len(_ONE) + len(_COEF) * p + p * p


def _fit_block(yb, vb, Xb=None, *, X=None, method, test, level, qprofile, btt):
    """Engine on one block of rows (design ``Xb`` per row, or ``X`` shared); the
    outputs packed column-wise into one float array."""
    out = engine.fit(yb, vb, X=X if Xb is None else Xb, method=method, test=test, level=level,
                     qprofile=qprofile, btt=btt)
    n, p = out["coef"].shape
    packed = np.empty((n, _width(p)))
    for j, key in enumerate(_ONE):
        packed[:, j] = out[key]
    j = len(_ONE)
    for key in _COEF:
        packed[:, j:j + p] = out[key]
        j += p
    packed[:, j:] = out["vcov"].reshape(n, p * p)
    return packed


def _design(mods, B: int, k: int, y, da):
    """(shared X or None, per-row Dask design or None, names, p)."""
    if is_dask_array(mods):
        if mods.ndim != 3:  # a shared design is small: bring it here
            mods = mods.compute()
        else:
            if mods.shape[:2] != (B, k):
                raise InputError(f"mods: got shape {mods.shape}; expected (batch, k, q) = "
                                 f"({B}, {k}, q)")
            q = mods.shape[2]
            m = mods.astype(float).rechunk((y.chunks[0], k, q))
            ones = da.ones((B, k, 1), chunks=(y.chunks[0], k, 1))
            X = da.concatenate([ones, m], axis=2).rechunk((y.chunks[0], k, q + 1))
            names = batch_design(np.zeros((1, k, q)), 1, k)[1]
            return None, X, names, q + 1
    X, names = batch_design(mods, B, k)
    if X.ndim == 3:
        return None, da.from_array(X, chunks=(y.chunks[0], k, X.shape[2])), names, X.shape[2]
    engine.fit(np.zeros((1, k)), np.ones((1, k)), X=X, method="EE", outputs=("k",))  # collinear?
    return X, None, names, X.shape[1]


def pool_many_regression_dask(yi, vi, mods, *, method="REML", test="z", level=0.95,
                              qprofile=False, btt=None, chunks=None, client=None,
                              scheduler=None, compute=None):
    """:func:`metaanalysis.pool_many` with ``mods`` on blocks of rows through Dask.

    Parameters
    ----------
    yi, vi : dask.array.Array or array_like, shape (batch, k)
    mods : array_like, DataFrame or dask.array.Array
        Shared by every row ((k,), (k, q), DataFrame) or one design per row
        ((batch, k, q), NumPy or Dask, re-chunked with the rows).
    method, test, level, qprofile, btt
        As in ``pool_many``.
    chunks, client, scheduler, compute
        As in :func:`metaanalysis.models.distributed.pool_many_dask`.

    Returns
    -------
    DaskBatchRegressionResult or BatchRegressionResult
    """
    da = require_dask("pool_many with Dask arrays, chunks=, client= or scheduler=")
    lazy_in = is_dask_array(yi) or is_dask_array(vi) or is_dask_array(mods)
    y, v = dask_inputs(yi, vi, method, test, level, chunks, client, scheduler)
    B, k = y.shape
    X, Xd, names, p = _design(mods, B, k, y, da)
    bt = None if btt is None else check_btt(btt, p)
    kw = dict(method=method, test=test, level=float(level), qprofile=bool(qprofile), btt=bt)
    out_chunks = (y.chunks[0], (_width(p),))
    if Xd is None:
        packed = da.map_blocks(_fit_block, y, v, X=X, dtype=float, chunks=out_chunks,
                               meta=np.empty((0, 0)), **kw)
    else:
        packed = da.blockwise(_fit_block, "ic", y, "ij", v, "ij", Xd, "ijq",
                              new_axes={"c": _width(p)}, concatenate=True, dtype=float,
                              meta=np.empty((0, 0)), **kw)
    cols = {}
    for j, key in enumerate(_ONE):
        col = packed[:, j]
        cols[key] = (col.astype(np.int64) if key in _INT
                     else col.astype(bool) if key == "converged" else col)
    j = len(_ONE)
    for key in _COEF:
        cols[key] = packed[:, j:j + p]
        j += p
    cols["vcov"] = packed[:, j:].reshape((B, p, p))
    lazy = DaskBatchRegressionResult(method=method, test=test, level=float(level),
                                     qprofile=bool(qprofile), arrays=cols, yi=y, vi=v,
                                     client=client, scheduler=scheduler, names=names)
    if compute if compute is not None else not lazy_in:
        return lazy.compute()
    return lazy


@dataclass(frozen=True, repr=False)
class DaskBatchRegressionResult(DaskBatchResult):
    """The lazy result of ``pool_many(..., mods=...)`` on Dask arrays.

    Every :class:`~metaanalysis.models.regression.BatchRegressionResult` array
    (``coef`` (batch, p), ``vcov`` (batch, p, p), ``tau2``, ``qm``, ...) is an
    attribute holding a ``dask.array.Array`` chunked by the rows of the input;
    :meth:`compute` gives the ``BatchRegressionResult``.

    Attributes
    ----------
    names : tuple of str
        The coefficients, intercept first.
    """

    names: tuple = ()

    def compute(self, *, scheduler: str | None = None) -> BatchRegressionResult:
        """Compute every row's results (one graph: each block fitted once).

        Parameters
        ----------
        scheduler : str, optional
            Override the scheduler for this call (``"sync"``, ``"threads"``, ...).
        """
        keys = list(self.arrays)
        values = self._run("compute", [self.arrays[key] for key in keys], scheduler)
        out = {key: np.asarray(x) for key, x in zip(keys, values)}
        return BatchRegressionResult(method=self.method, test=self.test, level=self.level,
                                     names=self.names, qprofile=self.qprofile, **out)

    def persist(self) -> DaskBatchRegressionResult:
        """Compute the results and keep them where they were computed (workers' memory)."""
        keys = list(self.arrays)
        values = self._run("persist", [self.arrays[key] for key in keys], None)
        return DaskBatchRegressionResult(
            method=self.method, test=self.test, level=self.level, qprofile=self.qprofile,
            arrays=dict(zip(keys, values)), yi=self.yi, vi=self.vi, client=self.client,
            scheduler=self.scheduler, names=self.names)

    def _frame(self):
        return self.compute()._frame()

    def _display(self) -> Display:
        """What will be fitted, and where (nothing is computed)."""
        base = super()._display()
        methods = (("τ² estimator", method_text(self.method)),
                   ("CI and tests", inference_text(self.test, None if self.test == "z"
                                                   else "t(k − p) in each row")),
                   ("Coefficients", ", ".join(self.names)),
                   base.methods[-1])
        return Display(f"Mixed-effects meta-regressions (lazy, Dask arrays): {len(self)} rows "
                       f"of up to {self.yi.shape[1]} studies in {self.nblocks} blocks", methods,
                       (Lines((("Results", "not computed yet; call .compute()"),)),))
