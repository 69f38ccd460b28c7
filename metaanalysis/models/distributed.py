"""Batch pooling on Dask arrays: :func:`metaanalysis.pool_many` past one machine.

``pool_many`` hands its work here when ``yi``/``vi`` are ``dask.array`` arrays or
when ``chunks=``/``client=``/``scheduler=`` is given.  The arrays are split into
blocks of rows (all k studies of a row in one block) and the one engine,
:func:`metaanalysis.engine.fit`, is mapped over the blocks with
``dask.array.map_blocks``: no home-made pool, no second implementation.  Any
Dask scheduler runs the graph — ``"sync"`` (in this process), ``"threads"``,
``"processes"`` or a ``dask.distributed.Client`` (a ``LocalCluster`` or a real
cluster); only the per-row results travel back to the caller.

Every block is fitted by the same function, and the engine gives a row the
same bits whatever the other rows of its batch, so the numbers are identical
to the last bit to one unchunked in-process call, for any chunking and any
scheduler (docs/scale.md, tests/test_batch_invariance.py).  Batch
meta-regression takes the same route (:mod:`.distributed_regression`).

Dask is an optional dependency (``pip install "metaanalysis[dask]"``); this
module imports it only when it is used, so ``import metaanalysis`` never does.

Examples
--------
>>> import numpy as np, metaanalysis as ma
>>> rng = np.random.default_rng(1)
>>> y, v = rng.normal(size=(30_000, 5)), np.full((30_000, 5), 0.5)
>>> lazy = ma.pool_many(y, v, method="DL", chunks=10_000, compute=False)
>>> lazy.nblocks, type(lazy.tau2).__name__
(3, 'Array')
>>> res = lazy.compute(scheduler="sync")
>>> bool(np.array_equal(res.tau2, ma.pool_many(y, v, method="DL").tau2))
True
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields

import numpy as np

from metaanalysis import engine
from metaanalysis.engine.batch import check_names
from metaanalysis.errors import InputError, MetaAnalysisError, PerformanceWarning
from metaanalysis.formatting import inference_text, method_text
from metaanalysis.results.display import Display, Displayed, Lines
from metaanalysis.results.pool_result import BatchResult

__all__ = [
    "DaskBatchResult",
    "MissingExtraError",
    "RECOMMENDED_VALUES",
    "dask_inputs",
    "is_dask_array",
    "pool_many_dask",
    "recommended_rows",
    "require_dask",
]

#: per-block target: about this many (row, study) values, i.e. 8 MB per input array
RECOMMENDED_VALUES = 1_000_000
#: blocks with fewer rows spend more time in the scheduler (~1 ms per task) than fitting
MIN_ROWS = 10_000
#: blocks above this many bytes per input array need ~30× that in engine temporaries
MAX_BYTES = 2**27

SCHEDULERS = ("sync", "synchronous", "threads", "threading", "processes", "multiprocessing")

# per-row outputs of the engine, in the column order of a packed block
_ROW_KEYS = tuple(f.name for f in fields(BatchResult)
                  if f.name not in ("method", "test", "level", "weights", "yi", "vi", "qprofile",
                                    "omitted"))


class MissingExtraError(MetaAnalysisError, ImportError):
    """An optional dependency is needed (the message names the ``pip install`` extra)."""


def require_dask(what: str = "this call"):
    """Import and return ``dask.array``, or raise :class:`MissingExtraError`."""
    try:
        import dask.array as da
    except ImportError:
        raise MissingExtraError(
            f"{what} needs Dask, an optional dependency: pip install \"metaanalysis[dask]\""
        ) from None
    return da


def is_dask_array(x) -> bool:
    """True for a ``dask.array.Array`` (checked without importing Dask)."""
    return type(x).__module__.split(".")[0] == "dask" and hasattr(x, "chunks")


def recommended_rows(k: int) -> int:
    """Rows per block: about :data:`RECOMMENDED_VALUES` values, at least 10,000 rows.

    Examples
    --------
    >>> recommended_rows(10), recommended_rows(400)
    (100000, 10000)
    """
    return max(MIN_ROWS, RECOMMENDED_VALUES // max(int(k), 1))


def _check_chunks(row_chunks, k: int) -> None:
    """Warn (:class:`PerformanceWarning`) when blocks are far from the recommended size."""
    n = sum(row_chunks)
    big = max(row_chunks)
    rec = recommended_rows(k)
    if big < MIN_ROWS and n > big:
        warnings.warn(
            f"chunks: blocks of {big} rows are too small: the scheduler's overhead per block "
            f"(about 1 ms) exceeds the time to fit it; use about {rec} rows per block "
            f"(chunks={rec}, ~{RECOMMENDED_VALUES:,} values)", PerformanceWarning, stacklevel=5)
    elif big * k * 8 > MAX_BYTES:
        warnings.warn(
            f"chunks: blocks of {big} rows × {k} studies ({big * k * 8 / 2**20:.0f} MB per input "
            f"array) are too large: the engine needs about 30 times that in temporaries per "
            f"block; use about {rec} rows per block (chunks={rec})", PerformanceWarning,
            stacklevel=5)


def _fit_block(yb, vb, method, test, level, qprofile):
    """Engine on one block of rows; the outputs packed column-wise into one float array."""
    out = engine.fit(yb, vb, method=method, test=test, level=level, qprofile=qprofile)
    packed = np.empty((yb.shape[0], len(_ROW_KEYS) + yb.shape[1]))
    for j, key in enumerate(_ROW_KEYS):
        packed[:, j] = out[key]  # k (int) and converged (bool) are exact as floats
    packed[:, len(_ROW_KEYS):] = out["weights"]
    return packed


def _as_dask(x, name, da, rows):
    """``x`` as a float Dask array of shape (B, k) chunked by ``rows`` rows (or its own chunks)."""
    if not is_dask_array(x):
        try:
            x = np.asarray(x, dtype=float)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{name}: could not read as numbers ({exc}); "
                             "expected a (batch, k) array") from None
        if x.ndim != 2:
            raise InputError(f"{name}: got shape {x.shape}; expected a 2-D array (batch, k)")
        return da.from_array(x, chunks=(rows or recommended_rows(x.shape[1]), -1))
    if x.ndim != 2:
        raise InputError(f"{name}: got a Dask array of shape {x.shape}; "
                         "expected a 2-D array (batch, k)")
    if any(np.isnan(c) for c in x.chunks[0]):
        raise InputError(f"{name}: the Dask array has unknown chunk sizes; call "
                         "x.compute_chunk_sizes() first")
    x = x.astype(float)
    if rows is not None:
        return x.rechunk((rows, -1))
    return x.rechunk({1: -1}) if x.numblocks[1] > 1 else x


def _check_rows(chunks):
    if chunks is None:
        return None
    if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks < 1:
        raise InputError(f"chunks: got {chunks!r}; expected a positive number of rows per block")
    return int(chunks)


def dask_inputs(yi, vi, method, test, level, chunks, client, scheduler):
    """Checked arguments of the Dask path: ``yi``, ``vi`` as float Dask arrays (batch, k)
    with the same row chunks, all k studies of a row in one block (warns when the
    blocks are far from the recommended size)."""
    da = require_dask("pool_many with Dask arrays, chunks=, client= or scheduler=")
    check_names(method, test, level)
    if client is not None and scheduler is not None:
        raise InputError("client, scheduler: give one of them, not both")
    if scheduler is not None and scheduler not in SCHEDULERS:
        raise InputError(f"scheduler: got {scheduler!r}; expected one of "
                         f"{', '.join(SCHEDULERS)} (or client=Client(...))")
    rows = _check_rows(chunks)
    y = _as_dask(yi, "yi", da, rows)
    v = _as_dask(vi, "vi", da, rows)
    if y.shape != v.shape:
        raise InputError(f"yi, vi: shapes {y.shape} and {v.shape} differ; expected equal shapes")
    if v.chunks != y.chunks:
        v = v.rechunk(y.chunks)
    _check_chunks(y.chunks[0], y.shape[1])
    return y, v


def pool_many_dask(yi, vi, *, method="REML", test="z", level=0.95, qprofile=False,
                   chunks=None, client=None, scheduler=None, compute=None):
    """:func:`metaanalysis.pool_many` on blocks of rows through Dask.

    Parameters
    ----------
    yi, vi : dask.array.Array or array_like, shape (batch, k)
        As in ``pool_many``.  NumPy inputs are split into blocks of ``chunks``
        rows; Dask inputs keep their row chunks unless ``chunks`` is given (a
        block always holds whole rows).
    method, test, level, qprofile
        As in ``pool_many``.
    chunks : int, optional
        Rows per block (default for NumPy inputs: :func:`recommended_rows`).
        Blocks far from the recommended size give a :class:`PerformanceWarning`.
    client : dask.distributed.Client, optional
        Run on this cluster (default: Dask's default scheduler, which is the
        active ``Client`` if there is one, else threads).
    scheduler : str, optional
        ``"sync"``, ``"threads"`` or ``"processes"`` (instead of ``client``).
    compute : bool, optional
        Return a computed :class:`BatchResult` (default for NumPy inputs) or a
        lazy :class:`DaskBatchResult` (default for Dask inputs).

    Returns
    -------
    DaskBatchResult or BatchResult
    """
    da = require_dask("pool_many with Dask arrays, chunks=, client= or scheduler=")
    lazy_in = is_dask_array(yi) or is_dask_array(vi)
    y, v = dask_inputs(yi, vi, method, test, level, chunks, client, scheduler)
    k = y.shape[1]
    packed = da.map_blocks(
        _fit_block, y, v, method=method, test=test, level=float(level), qprofile=bool(qprofile),
        dtype=float, chunks=(y.chunks[0], (len(_ROW_KEYS) + k,)), meta=np.empty((0, 0)),
    )
    cols = {key: packed[:, j] for j, key in enumerate(_ROW_KEYS)}
    cols["k"] = cols["k"].astype(np.intp)
    cols["converged"] = cols["converged"].astype(bool)
    cols["weights"] = packed[:, len(_ROW_KEYS):]
    lazy = DaskBatchResult(method=method, test=test, level=float(level), qprofile=bool(qprofile),
                           arrays=cols, yi=y, vi=v, client=client, scheduler=scheduler)
    if compute if compute is not None else not lazy_in:
        return lazy.compute()
    return lazy


@dataclass(frozen=True, repr=False)
class DaskBatchResult(Displayed):
    """The lazy result of ``pool_many`` on Dask arrays.

    Every :class:`BatchResult` array (``estimate``, ``tau2``, ``weights``, ...)
    is an attribute holding a ``dask.array.Array`` with the row chunks of the
    input; nothing is computed until :meth:`compute` (or :meth:`persist`).

    Attributes
    ----------
    method, test, level, qprofile
        The model fitted to every row.
    arrays : dict of dask.array.Array
        The per-row results by name.
    yi, vi : dask.array.Array
        The inputs (never fetched).
    client, scheduler
        Where :meth:`compute` runs (None: Dask's default).
    """

    method: str
    test: str
    level: float
    qprofile: bool
    arrays: dict
    yi: object
    vi: object
    client: object = field(default=None, repr=False)
    scheduler: str | None = None

    def __getattr__(self, name):
        arrays = self.__dict__.get("arrays", {})
        if name in arrays:
            return arrays[name]
        raise AttributeError(f"'DaskBatchResult' object has no attribute {name!r}")

    def __len__(self) -> int:
        return int(self.yi.shape[0])

    @property
    def nblocks(self) -> int:
        """Number of row blocks (Dask tasks fitting the engine)."""
        return int(self.yi.numblocks[0])

    def _run(self, method, arrays, scheduler):
        import dask

        client = self.client
        if client is not None and scheduler is None:
            futures = getattr(client, method)(list(arrays))
            return client.gather(futures) if method == "compute" else futures
        sched = scheduler or self.scheduler
        kw = {"scheduler": sched} if sched is not None else {}
        return list(getattr(dask, method)(*arrays, **kw))

    def compute(self, *, weights: bool = True, scheduler: str | None = None) -> BatchResult:
        """Compute every row's results and return a :class:`BatchResult`.

        One graph: each block is fitted once, whichever arrays are asked for.
        Only the results travel to the caller (``yi`` and ``vi`` stay Dask
        arrays in the returned result).

        Parameters
        ----------
        weights : bool
            Also fetch the (batch, k) study weights (else ``weights`` is None).
        scheduler : str, optional
            Override the scheduler for this call (``"sync"``, ``"threads"``, ...).
        """
        keys = [key for key in self.arrays if weights or key != "weights"]
        values = self._run("compute", [self.arrays[key] for key in keys], scheduler)
        out = dict(zip(keys, (np.asarray(x) for x in values)))
        if not weights:
            out["weights"] = None
        return BatchResult(method=self.method, test=self.test, level=self.level, yi=self.yi,
                           vi=self.vi, qprofile=self.qprofile, **out)

    def persist(self) -> DaskBatchResult:
        """Compute the results and keep them where they were computed (workers' memory)."""
        keys = list(self.arrays)
        values = self._run("persist", [self.arrays[key] for key in keys], None)
        return DaskBatchResult(method=self.method, test=self.test, level=self.level,
                               qprofile=self.qprofile, arrays=dict(zip(keys, values)),
                               yi=self.yi, vi=self.vi, client=self.client,
                               scheduler=self.scheduler)

    def _frame(self):
        return self.compute(weights=False)._frame()

    def to_frame(self):
        """Compute the results (without weights) and return one row per meta-analysis."""
        return super().to_frame()

    def _display(self) -> Display:
        """What will be fitted, and where (nothing is computed)."""
        if self.client is not None:
            address = getattr(getattr(self.client, "scheduler", None), "address", "")
            where = f"client {address}".strip()
        else:
            where = self.scheduler or "Dask default"
        kind = "Common-effect" if self.method == "EE" else "Random-effects"
        methods = (("τ² estimator", method_text(self.method)),
                   ("CI and tests", inference_text(self.test, None if self.test == "z"
                                                   else "t(k − 1) in each row")),
                   ("Scheduler", where))
        return Display(f"{kind} models (lazy, Dask arrays): {len(self)} meta-analyses of up to "
                       f"{self.yi.shape[1]} studies in {self.nblocks} blocks", methods,
                       (Lines((("Results", "not computed yet; call .compute()"),)),))
