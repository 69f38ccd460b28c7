"""Sensitivity analyses: leave-one-out, cumulative and influence (GOSH: :mod:`.gosh`).

Every analysis here is a batch of *masked* meta-analyses fed to the one
numerical engine (:func:`metaanalysis.engine.batch.fit`): the k study outcomes with
a boolean ``(B, k)`` mask of the studies in each fit.  No estimator is
re-implemented; the τ² estimator, test and level are those of the fitted
:class:`~metaanalysis.results.pool_result.PoolResult` passed in.

References
----------
Viechtbauer W, Cheung MW-L (2010). Outlier and influence diagnostics for
meta-analysis. *Research Synthesis Methods* 1:112-125.

Lau J, Antman EM, Jimenez-Silva J, et al. (1992). Cumulative meta-analysis of
therapeutic trials for myocardial infarction. *N Engl J Med* 327:248-254.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from metaanalysis import engine
from metaanalysis.errors import InputError
from metaanalysis.formatting import inference_text, level_text, method_text

__all__ = ["baujat_coordinates", "cumulative", "fit_masked", "influence", "leave_one_out",
           "study_arrays"]

# engine keys reported per fit by leave_one_out / cumulative, in column order
_FIT_COLUMNS = ("k", "estimate", "se", "stat", "p", "ci_lb", "ci_ub", "pi_lb", "pi_ub",
                "tau2", "i2", "h2", "q", "q_df", "q_p")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def study_arrays(res):
    """Return ``(yi, vi, labels)`` of a fitted result, checked for the engine."""
    for name in ("yi", "vi", "method"):
        if not hasattr(res, name):
            raise InputError(f"res: expected a PoolResult from ma.pool (with yi, vi and method); "
                             f"got {type(res).__name__}")
    if res.method not in engine.METHODS:
        raise InputError(f"res.method: {res.method!r} is not refitted by the engine; "
                         f"expected one of {', '.join(engine.METHODS)}")
    yi = np.asarray(res.yi, dtype=float).ravel()
    vi = np.asarray(res.vi, dtype=float).ravel()
    labels = getattr(res, "labels", None)
    if labels is None:
        labels = [str(i + 1) for i in range(yi.size)]
    labels = [str(x) for x in labels]
    return yi, vi, labels


def _describe(res, analysis: str) -> str:
    """The analysis and the model choices of ``res`` in words (one name per method, as
    every result prints them)."""
    test = getattr(res, "test", "z")
    level = getattr(res, "level", 0.95)
    ci = inference_text(test, None if test == "z" else "t(k − 1) in each fit")
    return (f"{analysis}; τ² estimator: {method_text(res.method)}; CI and tests: {ci}; "
            f"level: {level_text(level)}")


def fit_masked(res, yi, vi, include, *, qprofile=False, outputs="all"):
    """One engine call on the batch of subsets given by the boolean ``include`` (B, k)."""
    # a subset of one study: τ² = 0, I² = 0 %, H² = 1, Q = 0 (p = 1), as metafor's
    # leave1out/cumul/gosh (the engine's k = 1 conventions)
    return engine.fit(yi, vi, mask=include, method=res.method, test=getattr(res, "test", "z"),
                      level=getattr(res, "level", 0.95), tau2=None, qprofile=qprofile,
                      outputs=outputs)


def _tag(df, res, analysis):
    """Record the analysis and the model choices of ``res`` in ``df.attrs``."""
    df.attrs.update(analysis=analysis, method=res.method, test=getattr(res, "test", "z"),
                    level=getattr(res, "level", 0.95), description=_describe(res, analysis))
    return df


def _frame(fits, index, res, analysis):
    df = pd.DataFrame({c: np.asarray(fits[c], dtype=float) for c in _FIT_COLUMNS if c in fits},
                      index=pd.Index(index, name="study"))
    if "k" in df:
        df["k"] = df["k"].astype(int)
    return _tag(df, res, analysis)


# ---------------------------------------------------------------------------
# leave-one-out and cumulative
# ---------------------------------------------------------------------------

def leave_one_out(res) -> pd.DataFrame:
    """Refit the model k times, each time without one study.

    The k fits are one batch through the engine (study *i* masked out in row
    *i*), with the τ² estimator, test and level of ``res``.

    Parameters
    ----------
    res : PoolResult
        A fitted model from :func:`metaanalysis.pool` with k ≥ 2.

    Returns
    -------
    pandas.DataFrame
        One row per omitted study (index = its label), columns ``k, estimate,
        se, stat, p, ci_lb, ci_ub, pi_lb, pi_ub, tau2, i2, h2, q, q_df, q_p``;
        ``df.attrs["description"]`` states the method.  Matches metafor's
        ``leave1out()``.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> res = ma.pool([0.1, 0.3, 0.35, 0.2], [0.01, 0.02, 0.015, 0.01], method="DL",
    ...               labels=["A", "B", "C", "D"])
    >>> loo = ma.leave_one_out(res)
    >>> list(loo.index), list(loo["k"])
    (['A', 'B', 'C', 'D'], [3, 3, 3, 3])
    """
    yi, vi, labels = study_arrays(res)
    k = yi.size
    if k < 2:
        raise InputError(f"res: leave-one-out needs at least 2 studies; got k = {k}")
    fits = fit_masked(res, yi, vi, ~np.eye(k, dtype=bool))
    return _frame(fits, labels, res, "Leave-one-out analysis")


def _resolve_order(res, order, by, k):
    if order is not None and by is not None:
        raise InputError("order, by: give one of them, not both")
    if isinstance(order, str):
        order, by = None, order
    if by is not None:
        if isinstance(by, str):
            data = getattr(res, "data", None)
            if data is None or by not in getattr(data, "columns", ()):
                raise InputError(f"by: column {by!r} not found in res.data; pass the sort "
                                 f"keys themselves (a sequence of length k = {k})")
            keys = np.asarray(data[by])
        else:
            keys = np.asarray(by)
        if keys.shape != (k,):
            raise InputError(f"by: expected {k} sort keys (one per study); got shape {keys.shape}")
        try:
            return np.argsort(keys, kind="stable")
        except TypeError as exc:
            raise InputError(f"by: sort keys cannot be ordered ({exc})") from None
    if order is None:
        return np.arange(k)
    idx = np.asarray(order)
    if idx.shape != (k,):
        raise InputError(f"order: expected {k} values (one per study); got shape {idx.shape}")
    if np.issubdtype(idx.dtype, np.integer):
        if np.array_equal(np.sort(idx), np.arange(k)):
            return idx.astype(int)
        if np.array_equal(np.sort(idx), np.arange(1, k + 1)):
            raise InputError("order: looks like 1-based indices (a permutation of 1..k); pass "
                             "0-based indices (order - 1), or by=keys to sort by a variable")
    # anything else (years, dates, floats, strings) is a sort key, as in metafor's cumul()
    try:
        return np.argsort(idx, kind="stable")
    except TypeError as exc:
        raise InputError(f"order: values cannot be ordered ({exc})") from None


def cumulative(res, order=None, *, by=None) -> pd.DataFrame:
    """Cumulative meta-analysis: add the studies one at a time and refit.

    Row *j* is the model fitted to the first *j + 1* studies in the chosen
    order (Lau et al. 1992).  All k fits are one masked batch through the
    engine, with the τ² estimator, test and level of ``res``.

    Parameters
    ----------
    res : PoolResult
        A fitted model from :func:`metaanalysis.pool`.
    order : sequence of int, sequence of keys, or str, optional
        Either a permutation of ``0..k-1`` (the study indices in the order to
        add them), or sort keys of length k such as publication years (studies
        are then added in stable ascending order of the keys, as metafor's
        ``cumul(res, order=year)``), or the name of a column of ``res.data``.
        Default: the order of the data.
    by : sequence or str, optional
        Sort keys (or a column name), always treated as keys, never as indices.

    Returns
    -------
    pandas.DataFrame
        Index = label of the study added at that step; columns as
        :func:`leave_one_out`.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> res = ma.pool([0.1, 0.3, 0.35], [0.01, 0.02, 0.015], method="DL",
    ...               labels=["A", "B", "C"])
    >>> cum = ma.cumulative(res, by=[2001, 1999, 2005])
    >>> list(cum.index), list(cum["k"])
    (['B', 'A', 'C'], [1, 2, 3])
    """
    yi, vi, labels = study_arrays(res)
    k = yi.size
    idx = _resolve_order(res, order, by, k)
    # row j includes the studies at positions idx[0..j]
    rank = np.empty(k, dtype=int)
    rank[idx] = np.arange(k)
    include = rank[None, :] <= np.arange(k)[:, None]
    fits = fit_masked(res, yi, vi, include)
    df = _frame(fits, [labels[i] for i in idx], res, "Cumulative meta-analysis")
    df.attrs["order"] = idx.tolist()
    return df


# ---------------------------------------------------------------------------
# influence diagnostics
# ---------------------------------------------------------------------------

def influence(res) -> pd.DataFrame:
    """Outlier and influence diagnostics of Viechtbauer & Cheung (2010).

    The deleted-study quantities come from one leave-one-out batch through
    the engine; with p = 1 model coefficient (the pooled effect):

    * ``rstudent`` - externally studentized residual
      (yᵢ − μ̂₍₋ᵢ₎) / √(s²₍₋ᵢ₎ (vᵢ + τ̂²₍₋ᵢ₎) + SE(μ̂₍₋ᵢ₎)²), where s²₍₋ᵢ₎ is the
      Knapp-Hartung factor of the fit without study i (1 for ``test="z"``);
    * ``dffits`` - (μ̂ − μ̂₍₋ᵢ₎) / √(s²₍₋ᵢ₎ hᵢ (vᵢ + τ̂²₍₋ᵢ₎));
    * ``cooks`` - Cook's distance (μ̂ − μ̂₍₋ᵢ₎)² / Var(μ̂);
    * ``cov_r`` - covariance ratio Var(μ̂₍₋ᵢ₎) / Var(μ̂);
    * ``tau2_del``, ``q_del`` - τ² and Cochran's Q without study i;
    * ``hat`` - hat value hᵢ = wᵢ / Σw; ``weight`` - 100 hᵢ (percent);
    * ``dfbetas`` - (μ̂ − μ̂₍₋ᵢ₎) / √(s²₍₋ᵢ₎ / Σⱼ 1/(vⱼ + τ̂²₍₋ᵢ₎)), the sum over
      all k studies, s²₍₋ᵢ₎ the Knapp-Hartung factor of the deleted fit (1 for z);
    * ``inf`` - True when a study is influential by metafor's rule: |dffits| >
      3√(p/(k−p)), or the χ²(p) lower tail at ``cooks`` > 0.5, or hat >
      3p/k, or |dfbetas| > 1.

    Parameters
    ----------
    res : PoolResult
        A fitted model from :func:`metaanalysis.pool` with k ≥ 3.

    Returns
    -------
    pandas.DataFrame
        One row per study (index = label) with the columns above.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> res = ma.pool([0.1, 0.3, 0.35, 1.2], [0.01, 0.02, 0.015, 0.01], method="REML")
    >>> inf = ma.influence(res)
    >>> inf["inf"].tolist()
    [False, False, False, True]
    """
    yi, vi, labels = study_arrays(res)
    k = yi.size
    if k < 3:
        raise InputError(f"res: influence diagnostics need at least 3 studies; got k = {k}")
    p = 1
    full = fit_masked(res, yi, vi, np.ones((1, k), dtype=bool))
    mu, se, tau2 = float(full["estimate"][0]), float(full["se"][0]), float(full["tau2"][0])
    dl = fit_masked(res, yi, vi, ~np.eye(k, dtype=bool))
    mu_d = np.asarray(dl["estimate"], float)
    se_d = np.asarray(dl["se"], float)
    tau2_d = np.asarray(dl["tau2"], float)
    q_d = np.asarray(dl["q"], float)

    w = 1.0 / (vi + tau2)
    hat = w / w.sum()
    vb = se ** 2
    delta = mu - mu_d
    # Knapp-Hartung/ad hoc scale factor of each deleted fit (1 for test="z")
    w_d = 1.0 / (vi[None, :] + tau2_d[:, None])
    sw_all = w_d.sum(axis=1)
    s2w_d = se_d ** 2 * (sw_all - np.diag(w_d))
    rstudent = (yi - mu_d) / np.sqrt(s2w_d * (vi + tau2_d) + se_d ** 2)
    dffits = delta / np.sqrt(s2w_d * hat * (vi + tau2_d))
    cooks = delta ** 2 / vb
    cov_r = se_d ** 2 / vb
    # DFBETAS: Var(μ̂) recomputed over all k studies with weights 1/(v_j + τ̂²₍₋ᵢ₎),
    # times the deleted fit's scale factor
    dfbetas = delta / np.sqrt(s2w_d / sw_all)

    inf = ((np.abs(dffits) > 3 * np.sqrt(p / (k - p)))
           | (stats.chi2.cdf(cooks, p) > 0.5)
           | (hat > 3 * p / k)
           | (np.abs(dfbetas) > 1))
    df = pd.DataFrame({"rstudent": rstudent, "dffits": dffits, "cooks": cooks,
                       "cov_r": cov_r, "tau2_del": tau2_d, "q_del": q_d, "hat": hat,
                       "weight": 100 * hat, "dfbetas": dfbetas, "inf": inf},
                      index=pd.Index(labels, name="study"))
    return _tag(df, res, "Influence diagnostics (Viechtbauer & Cheung 2010)")


# ---------------------------------------------------------------------------
# Baujat plot coordinates
# ---------------------------------------------------------------------------

def baujat_coordinates(res) -> pd.DataFrame:
    """Coordinates of the Baujat plot (Baujat, Mahé, Pignon & Hill 2002, Stat Med 21:2641).

    ``x``: each study's contribution to the heterogeneity statistic, the
    squared Pearson residual ``(yᵢ − μ̂)² / (vᵢ + τ̂²)``; ``y``: its influence on
    the pooled estimate, ``(μ̂ − μ̂₍₋ᵢ₎)² / SE(μ̂₍₋ᵢ₎)²``, with the leave-one-out
    fits of :func:`leave_one_out` (one engine batch).  Equal to metafor's
    ``baujat()``.  Draw them with :func:`metaanalysis.baujat`.

    Parameters
    ----------
    res : PoolResult
        A fitted model from :func:`metaanalysis.pool` with k ≥ 2.

    Returns
    -------
    pandas.DataFrame
        Columns ``x`` and ``y``, one row per study (index = its label);
        ``df.attrs["description"]`` states the method.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> res = ma.pool([0.1, 0.3, 0.35, 0.6], [0.01, 0.02, 0.015, 0.02], method="DL")
    >>> xy = ma.baujat_coordinates(res)
    >>> list(xy.columns), len(xy)
    (['x', 'y'], 4)
    """
    yi, vi, labels = study_arrays(res)
    mu = float(res.estimate)
    tau2 = 0.0 if res.method == "EE" else float(res.tau2)
    loo = leave_one_out(res)
    x = (yi - mu) ** 2 / (vi + tau2)
    y = (mu - loo["estimate"].to_numpy(float)) ** 2 / loo["se"].to_numpy(float) ** 2
    df = pd.DataFrame({"x": x, "y": y}, index=pd.Index(labels, name="study"))
    return _tag(df, res, "Baujat plot coordinates (Baujat et al. 2002)")
