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

import numpy as np
import pandas as pd

from metaanalysis import engine
from metaanalysis.errors import InputError
from metaanalysis.formatting import num
from metaanalysis.models import distributed
from metaanalysis.results.pool_result import BatchResult, PoolResult

__all__ = ["pool", "pool_many"]

_LABEL_COLUMNS = ("study", "label", "id")


def _vector(x, name) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name}: got {x!r}; expected a sequence of numbers") from None
    if a.ndim == 0:
        a = a[None]
    if a.ndim != 1:
        raise InputError(f"{name}: got an array of shape {a.shape}; expected one value per study")
    return a


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
    yi : array_like or DataFrame
        Effect sizes, or the DataFrame returned by
        :func:`metaanalysis.effects.effect_sizes` (then ``vi``, ``measure``, ``ni`` and
        ``labels`` are taken from it).
    vi : array_like
        Sampling variances (> 0).
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

    Examples
    --------
    >>> import metaanalysis as ma
    >>> res = ma.pool([0.1, 0.3, 0.35, -0.2], [0.01, 0.02, 0.015, 0.03],
    ...               method="DL", test="knha")
    >>> print(res.summary().splitlines()[0])
    Random-effects model (k = 4); τ² estimator: DL; CI: Knapp–Hartung, t(3)
    """
    data = None
    if isinstance(yi, pd.DataFrame):
        data = yi
        for col in ("yi", "vi"):
            if col not in data.columns:
                raise InputError(
                    f"yi: the DataFrame has no column {col!r}; expected the output of effect_sizes()"
                )
        if vi is not None:
            raise InputError(
                "vi: got a value although yi is a DataFrame; expected vi=None (taken from the 'vi' column)"
            )
        vi = data["vi"].to_numpy(dtype=float)
        if measure is None:
            measure = data.attrs.get("measure")
        if ni is None and "ni" in data.columns:
            ni = data["ni"].to_numpy(dtype=float)
        if labels is None:
            for col in _LABEL_COLUMNS:
                if col in data.columns:
                    labels = [str(x) for x in data[col]]
                    break
        yi = data["yi"].to_numpy(dtype=float)
    if vi is None:
        raise InputError(
            "vi: missing; expected the sampling variances (or pass an effect_sizes DataFrame as yi)"
        )
    y = _vector(yi, "yi")
    v = _vector(vi, "vi")
    if y.size != v.size:
        raise InputError(
            f"yi, vi: lengths {y.size} and {v.size} differ; expected one variance per effect size"
        )
    if y.size == 0:
        raise InputError("yi: got no studies; expected at least one")
    for name, a in (("yi", y), ("vi", v)):
        if np.count_nonzero(np.isfinite(a)) != a.size:  # one cheap test; details only on error
            bad = np.flatnonzero(~np.isfinite(a))
            raise InputError(
                f"{name}: got {float(a[bad[0]])!r} for study {bad[0] + 1}; expected finite numbers (drop the study instead)"
            )
    if np.count_nonzero(v <= 0):
        bad = np.flatnonzero(v <= 0)
        raise InputError(
            f"vi: got {float(v[bad[0]])!r} for study {bad[0] + 1}; expected sampling variances > 0"
        )
    if labels is None:
        labels = tuple([f"Study {i}" for i in range(1, y.size + 1)])
    else:
        labels = tuple([str(x) for x in labels])
    if len(labels) != y.size:
        raise InputError(
            f"labels: got {len(labels)} labels for {y.size} studies; expected one per study"
        )
    if ni is not None:
        ni = _vector(ni, "ni")
        if ni.size != y.size:
            raise InputError(
                f"ni: got {ni.size} sample sizes for {y.size} studies; expected one per study"
            )

    out = engine.fit(y[None, :], v[None, :], method=method, test=test, level=level, qprofile=True)
    r = {key: out[key].item(0) for key in engine.KEYS}  # Python scalars
    k = int(r["k"])
    notes = []
    if k == 1:
        notes.append(
            "k = 1: the pooled estimate is the single study; heterogeneity (τ², I², H², Q test) is undefined"
        )
        if test != "z":
            notes.append(f"test={test!r} needs k ≥ 2; the normal (Wald-type) interval is used")
    if out["tau2_ci_capped"].item(0):
        notes.append(
            f"the upper Q-profile limit for τ² lies beyond the search bound and is shown as that bound "
            f"({num(r['tau2_ci_ub'])} = max(100, 10 τ̂²), as metafor)"
        )
    if not bool(r["converged"]):
        notes.append(f"the {method} iteration did not converge; the numbers are the last iterate")
    if measure in ("PR", "PLO", "PAS", "PFT") and data is not None and {"events", "total"} <= set(data.columns):
        from metaanalysis.models.proportions import (
            proportion_notes,  # guidance: PFT caveat, when to prefer the GLMM
        )

        notes.extend(proportion_notes(data["events"], data["total"], measure, labels))
    if method == "EB":
        notes.append(
            "the empirical Bayes estimator equals Paule–Mandel (both solve Q(τ²) = k − 1)"
        )
    return PoolResult.from_fit(
        r, method=method, test=test, level=level, weights=out["weights"][0], yi=y, vi=v,
        labels=labels, measure=measure, ni=ni, unit=unit, notes=tuple(notes), data=data,
    )  # fmt: skip


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
) -> BatchResult:
    """Pool many independent meta-analyses at once (one vectorised engine call).

    Parameters
    ----------
    yi, vi : array_like, shape (batch, k)
        NaN marks an absent study, so rows may have different k.
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

    Returns
    -------
    BatchResult (or DaskBatchResult)

    Examples
    --------
    >>> import numpy as np, metaanalysis as ma
    >>> rng = np.random.default_rng(1)
    >>> b = ma.pool_many(rng.normal(size=(1000, 10)), np.full((1000, 10), 0.5))
    >>> b.estimate.shape
    (1000,)
    """
    if (chunks is not None or client is not None or scheduler is not None
            or distributed.is_dask_array(yi) or distributed.is_dask_array(vi)):
        return distributed.pool_many_dask(
            yi, vi, method=method, test=test, level=level, qprofile=qprofile, chunks=chunks,
            client=client, scheduler=scheduler, compute=compute)
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    if y.ndim != 2 or v.ndim != 2:
        raise InputError(
            f"yi, vi: got shapes {y.shape} and {v.shape}; expected 2-D arrays (batch, k)"
        )
    out = engine.fit(y, v, method=method, test=test, level=level, qprofile=qprofile)
    keys = [f.name for f in BatchResult.__dataclass_fields__.values()]
    vals = {key: out[key] for key in keys if key in out}
    return BatchResult(
        method=method, test=test, level=float(level), yi=y, vi=v, qprofile=qprofile, **vals
    )
