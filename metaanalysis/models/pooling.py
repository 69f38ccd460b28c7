"""Public pooling functions: :func:`pool` (one meta-analysis) and
:func:`pool_many` (a batch).  Both call the same engine, :func:`metaanalysis.engine.batch.fit`.

Examples
--------
>>> import metaanalysis as ma
>>> res = ma.pool([0.1, 0.3, 0.35, -0.2], [0.01, 0.02, 0.015, 0.03])
>>> res.method, res.k
('REML', 4)
"""

from __future__ import annotations

import math

import numpy as np

from metaanalysis import engine
from metaanalysis.effects.study_data import (
    NAN_POLICIES,
    check_batch,
    overflow_error,
    study_data,
)
from metaanalysis.effects.transforms import PROPORTION_MEASURES
from metaanalysis.errors import InputError
from metaanalysis.formatting import num
from metaanalysis.frozen import FrameField, readonly
from metaanalysis.models import distributed
from metaanalysis.results.pool_result import BatchResult, PoolResult

__all__ = ["pool", "pool_many"]


#: results that are finite for every usable input with k ≥ 1 (and k ≥ 2): a non-finite one
#: means the computation overflowed, which is reported, never returned.  (The test statistic
#: and its p-value are not here: with test="knha" and identical effects, se = 0 and the
#: statistic is infinite, as in metafor.)
_FINITE_K1 = ("estimate", "se", "ci_lb", "ci_ub")
_FINITE_K2 = ("tau2", "q", "q_p", "i2", "h2")
_FINITE_K2_RE = ("se_tau2", "pi_lb", "pi_ub")
_FINITE_QPROFILE = ("tau2_ci_lb", "tau2_ci_ub", "i2_ci_lb", "i2_ci_ub")


_BATCH_KEYS = tuple(BatchResult.__dataclass_fields__)
#: the numbers of a BatchResult that pool_many(outputs=...) can leave out
_BATCH_NUMBERS = tuple(key for key in _BATCH_KEYS if key in engine.KEYS + ("weights",))


def _batch_outputs(outputs):
    """``None`` for "all", else the set of engine keys to compute (InputError otherwise)."""
    if isinstance(outputs, str):
        if outputs == "all":
            return None
        raise InputError(f"outputs: got {outputs!r}; expected 'all' or a collection of "
                         f"names among {', '.join(_BATCH_NUMBERS)}")
    try:
        want = set(outputs)
    except TypeError:
        raise InputError(f"outputs: got {outputs!r}; expected 'all' or a collection of "
                         "attribute names") from None
    unknown = want - set(_BATCH_NUMBERS)
    if unknown:
        raise InputError(f"outputs: unknown names {sorted(map(str, unknown))}; expected names "
                         f"among {', '.join(_BATCH_NUMBERS)}")
    return want | {"k", "converged"}


def _finite_keys(method: str, qprofile: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(keys finite for k ≥ 1, keys finite for k ≥ 2) of an engine fit."""
    k2 = _FINITE_K2
    if method != "EE":
        k2 = k2 + _FINITE_K2_RE + (_FINITE_QPROFILE if qprofile else ())
    return _FINITE_K1, k2


def pool(
    yi,
    vi=None,
    *,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
    labels=None,
    measure: str | None = None,
    ni=None,
    unit: str | None = None,
) -> PoolResult:
    """Pool study effect sizes with a common- or random-effects model.

    Parameters
    ----------
    yi : array_like, DataFrame or StudyData
        Effect sizes, or the DataFrame returned by
        :func:`metaanalysis.effects.effect_sizes` (then ``vi``, ``measure``, ``ni`` and
        ``labels`` are taken from it), or a :class:`~metaanalysis.effects.study_data.StudyData`.
        Finite, with ``|yi| <= 1e30``.
    vi : array_like
        Sampling variances, between 1e-60 and 1e60 (so > 0).
    method : str
        ``"EE"`` (common effect) or a τ² estimator: ``"DL"``, ``"HE"``, ``"HS"``,
        ``"HSk"``, ``"SJ"``, ``"ML"``, ``"REML"`` (default), ``"EB"``, ``"PM"``, ``"PMM"``.
    test : str
        ``"z"`` (normal), ``"knha"`` (Knapp–Hartung, t(k − 1)) or ``"adhoc"``
        (Knapp–Hartung with variance factor at least 1).
    level : float
        Confidence level for the CI, the prediction interval and the Q-profile
        intervals of τ² and I².
    labels : sequence of str, optional
        Study labels (default ``"Study 1"``, ...).
    measure : str, optional
        Effect-size measure code (used by :meth:`PoolResult.back_transform`).
    ni : array_like, optional
        Per-study sample sizes (needed to back-transform PFT).
    unit : str, optional
        Unit of analysis (``"patients"``, ``"lesions"``), printed with the result.

    Returns
    -------
    PoolResult

    Raises
    ------
    InputError
        For input that cannot be pooled, naming the argument, the index (and
        study) and the value: text or other non-numbers, NaN, infinite or
        out-of-range values, lengths that differ; also when the numbers overflow
        double precision inside the computation.  Never a silent NaN.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> res = ma.pool([0.1, 0.3, 0.35, -0.2], [0.01, 0.02, 0.015, 0.03],
    ...               method="DL", test="knha")
    >>> print(res.method_line())
    Random-effects model (k = 4); τ² estimator: DL (DerSimonian–Laird); CI and tests: Knapp–Hartung, t(3); τ², I², H² intervals: Q-profile (Viechtbauer 2007)
    """
    d = study_data(yi, vi, labels=labels, measure=measure, ni=ni, unit=unit)
    y, v = d.yi, d.vi
    with np.errstate(over="ignore"):  # overflow is reported below, as an InputError
        out = engine.fit(y[None, :], v[None, :], method=method, test=test, level=level,
                         qprofile=True)
    r = {key: out[key].item(0) for key in engine.KEYS}  # Python scalars
    k = int(r["k"])
    k1, k2 = _finite_keys(method, qprofile=True)
    bad = [key for key in k1 + (k2 if k > 1 else ()) if not math.isfinite(r[key])]
    if bad:
        raise overflow_error(y, v, ", ".join(bad))
    notes = []
    if k == 1:
        notes.append(
            "k = 1: the pooled estimate is the single study; heterogeneity cannot be estimated "
            "(τ² = 0, I² = 0, H² = 1, Q = 0 with p = 1, as metafor reports)"
        )
    if out["tau2_ci_capped"].item(0):
        notes.append(
            f"the upper Q-profile limit for τ² lies beyond the search bound and is shown as that bound "
            f"({num(r['tau2_ci_ub'])} = max(100, 10 τ̂²), as metafor)"
        )
    if not bool(r["converged"]):
        notes.append(f"the {method} iteration did not converge; the numbers are the last iterate")
    data = FrameField.peek(d, "frame")
    if d.measure in PROPORTION_MEASURES and data is not None and {"events", "total"} <= set(data.columns):
        from metaanalysis.models.proportions import (
            proportion_notes,  # guidance: PFT caveat, when to prefer the GLMM
        )

        notes.extend(proportion_notes(data["events"], data["total"], d.measure, d.labels))
    if method == "EB":
        notes.append(
            "the empirical Bayes estimator equals Paule–Mandel (both solve Q(τ²) = k − 1)"
        )
    return PoolResult.from_fit(
        r, method=method, test=test, level=level, weights=readonly(out["weights"][0], owned=True),
        yi=y, vi=v, labels=d.labels, measure=d.measure, ni=d.ni, unit=d.unit, notes=tuple(notes),
        data=data,
    )  # fmt: skip


def _dask_checks(yi, vi, nan_policy):
    if nan_policy != "raise":
        raise InputError("nan_policy: 'omit' is not available on the Dask path; expected "
                         "'raise' there (or pool_many without chunks=/client=/scheduler=)")
    if not (distributed.is_dask_array(yi) or distributed.is_dask_array(vi)):
        check_batch(yi, vi, nan_policy="raise")  # NumPy input: the same checks up front


def pool_many(
    yi,
    vi,
    *,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
    qprofile: bool = False,
    chunks: int | None = None,
    client=None,
    scheduler: str | None = None,
    compute: bool | None = None,
    nan_policy: str = "raise",
    mods=None,
    btt=None,
    outputs="all",
):
    """Pool many independent meta-analyses at once (one vectorised engine call).

    With ``mods``, fit many meta-regressions at once instead (the same engine
    with a design matrix; PyMARE's core use case): one design shared by every
    row, or one per row.

    Parameters
    ----------
    yi, vi : array_like, shape (batch, k)
        NaN in both ``yi`` and ``vi`` marks an absent study, so rows may have
        different k.
    method, test, level
        As in :func:`pool`.
    qprofile : bool, default False
        Also compute Q-profile intervals for τ² and I² (about doubles the
        time); NaN otherwise.  :func:`pool` always computes them.
    chunks, client, scheduler, compute
        Run through Dask (optional extra ``metaanalysis[dask]``): blocks of
        ``chunks`` rows mapped over the engine on ``client`` (a
        ``dask.distributed.Client``) or ``scheduler`` (``"sync"``,
        ``"threads"``, ``"processes"``).  ``yi``/``vi`` may also be
        ``dask.array`` arrays chunked by rows; the result is then lazy (a
        :class:`~metaanalysis.models.distributed.DaskBatchResult` of Dask
        arrays, ``.compute()`` gives the ``BatchResult``) unless
        ``compute=True``.  See :mod:`metaanalysis.models.distributed` and
        docs/scale.md.
    nan_policy : {"raise", "omit"}, default "raise"
        What to do with a study that is neither present nor absent: an
        infinite value, NaN in only one of ``yi`` and ``vi``, ``vi <= 0``, or a
        value beyond the range double precision can pool (``|yi| > 1e30``,
        ``vi`` outside 1e-60 to 1e60).  ``"raise"``: :class:`InputError` naming
        the first such cell (row, column, value) and the rows that have them.
        ``"omit"``: such studies are dropped (treated as absent) and
        ``BatchResult.omitted`` counts them per row; the summary says how many.
        As in scipy, where ``nan_policy`` has the same two meanings.

    mods : array_like or DataFrame, optional
        Moderators: ``(k,)`` or ``(k, q)`` (or a DataFrame of k rows, categorical
        columns dummy coded as :func:`metaanalysis.meta_regression` does) shared
        by every row, or ``(batch, k, q)``, one design per row (on the Dask
        path also a ``dask.array``, chunked with the rows).  An intercept is
        added.
    btt : sequence of int, optional
        With ``mods``: coefficients in the omnibus test Q_M (default: all but
        the intercept).
    outputs : "all" or a collection of attribute names, default "all"
        Compute only these numbers of the :class:`BatchResult` (``k`` and
        ``converged`` always come), e.g. ``("tau2", "estimate", "se")`` — what
        PyMARE's estimators return — for simulation studies that need nothing
        else; the others are None.  A closed-form τ² estimator (DL, HE, HS, HSk)
        with these three outputs is a few reductions over the studies, no
        iteration, no prediction interval, p-value or I².  Without ``mods`` and
        Dask only.

    Returns
    -------
    BatchResult (or DaskBatchResult); with ``mods`` a
    :class:`~metaanalysis.models.regression.BatchRegressionResult` (or a lazy
    :class:`~metaanalysis.models.distributed_regression.DaskBatchRegressionResult`).

    Raises
    ------
    InputError
        For unusable studies (``nan_policy="raise"``), non-numeric input, or a
        row whose result overflows double precision.

    Examples
    --------
    >>> import numpy as np, metaanalysis as ma
    >>> rng = np.random.default_rng(1)
    >>> b = ma.pool_many(rng.normal(size=(1000, 10)), np.full((1000, 10), 0.5))
    >>> b.estimate.shape
    (1000,)
    >>> y = np.array([[0.1, 0.3, np.inf], [0.2, 0.4, 0.1]])
    >>> ma.pool_many(y, np.full((2, 3), 0.02), nan_policy="omit").omitted.tolist()
    [1, 0]
    >>> x = np.arange(10.0)
    >>> reg = ma.pool_many(rng.normal(size=(500, 10)) + 0.1 * x, np.full((500, 10), 0.5),
    ...                    mods=x, method="DL")
    >>> reg.coef.shape, reg.names
    ((500, 2), ('intrcpt', 'mod'))
    >>> fast = ma.pool_many(rng.normal(size=(1000, 10)), np.full((1000, 10), 0.5), method="DL",
    ...                     outputs=("tau2", "estimate", "se"))
    >>> fast.tau2.shape, fast.p is None
    ((1000,), True)
    """
    if nan_policy not in NAN_POLICIES:
        raise InputError(f"nan_policy: got {nan_policy!r}; expected 'raise' or 'omit'")
    dask = (chunks is not None or client is not None or scheduler is not None
            or distributed.is_dask_array(yi) or distributed.is_dask_array(vi))
    want = _batch_outputs(outputs)
    if want is not None and (dask or mods is not None):
        raise InputError(f"outputs: got {outputs!r} with {'mods' if mods is not None else 'Dask'}; "
                         "expected 'all' there (outputs= is for pool_many without mods and Dask)")
    if mods is not None:
        if dask:
            from metaanalysis.models.distributed_regression import pool_many_regression_dask

            _dask_checks(yi, vi, nan_policy)
            return pool_many_regression_dask(
                yi, vi, mods, method=method, test=test, level=level, qprofile=qprofile,
                btt=btt, chunks=chunks, client=client, scheduler=scheduler, compute=compute)
        from metaanalysis.models.regression import pool_many_regression

        data = check_batch(yi, vi, nan_policy=nan_policy)
        return pool_many_regression(data.yi, data.vi, mods, method=method, test=test,
                                    level=level, qprofile=qprofile, btt=btt,
                                    omitted=data.omitted)
    if dask:
        _dask_checks(yi, vi, nan_policy)
        return distributed.pool_many_dask(
            yi, vi, method=method, test=test, level=level, qprofile=qprofile, chunks=chunks,
            client=client, scheduler=scheduler, compute=compute)
    data = check_batch(yi, vi, nan_policy=nan_policy)
    y, v = data.yi, data.vi
    with np.errstate(over="ignore"):  # overflow is reported below, as an InputError
        out = engine.fit(y, v, method=method, test=test, level=level, qprofile=qprofile,
                         outputs="all" if want is None else want)
    k1, k2 = _finite_keys(method, qprofile)
    for key in k1 + k2:
        if key not in out:
            continue
        bad = (out["k"] > (key in k2)) & ~np.isfinite(out[key])
        if np.count_nonzero(bad):
            row = int(np.flatnonzero(bad)[0])
            raise overflow_error(y[row], v[row], f"{key} of row {row}")
    if want is None:
        vals = {key: readonly(out[key], owned=True) for key in _BATCH_KEYS if key in out}
    else:
        vals = {key: readonly(out[key], owned=True) if key in out else None
                for key in _BATCH_NUMBERS}
    return BatchResult(
        method=method, test=test, level=float(level), yi=y, vi=v, qprofile=qprofile,
        omitted=data.omitted, **vals,
    )  # fmt: skip
