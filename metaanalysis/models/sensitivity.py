"""Sensitivity analyses: leave-one-out, cumulative, influence and GOSH.

Every analysis here is a batch of *masked* meta-analyses fed to the one
numerical engine (:func:`metaanalysis.engine.batch.fit`): the k study outcomes with
a boolean ``(B, k)`` mask of the studies in each fit.  No estimator is
re-implemented; the τ² estimator, test and level are those of the fitted
:class:`~metaanalysis.results.pool_result.PoolResult` passed in.

References
----------
Viechtbauer W, Cheung MW-L (2010). Outlier and influence diagnostics for
meta-analysis. *Research Synthesis Methods* 1:112-125.

Olkin I, Dahabreh IJ, Trikalinos TA (2012). GOSH - a graphical display of study
heterogeneity. *Research Synthesis Methods* 3:214-223.

Lau J, Antman EM, Jimenez-Silva J, et al. (1992). Cumulative meta-analysis of
therapeutic trials for myocardial infarction. *N Engl J Med* 327:248-254.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from metaanalysis import engine
from metaanalysis.errors import InputError
from metaanalysis.formatting import num, pct

__all__ = ["GoshResult", "cumulative", "gosh", "influence", "leave_one_out"]

# engine keys reported per fit by leave_one_out / cumulative, in column order
_FIT_COLUMNS = ("k", "estimate", "se", "stat", "p", "ci_lb", "ci_ub", "pi_lb", "pi_ub",
                "tau2", "i2", "h2", "q", "q_df", "q_p")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def _study_arrays(res):
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
    test = getattr(res, "test", "z")
    level = getattr(res, "level", 0.95)
    return (f"{analysis}; τ² estimator: {res.method}; test: {test}; "
            f"level: {pct(100 * level, 0)}")


def _fit_masked(res, yi, vi, include, *, qprofile=False, outputs="all"):
    """One engine call on the batch of subsets given by the boolean ``include`` (B, k)."""
    fits = engine.fit(yi, vi, mask=include, method=res.method, test=getattr(res, "test", "z"),
                      level=getattr(res, "level", 0.95), tau2=None, qprofile=qprofile,
                      outputs=outputs)
    # a subset of one study: the engine leaves heterogeneity undefined (NaN); report
    # it as metafor's leave1out/cumul/gosh do: τ² = 0, I² = 0 %, H² = 1
    one = np.asarray(fits["k"]) == 1
    if one.any():
        fits = dict(fits)
        for key, value in (("tau2", 0.0), ("i2", 0.0), ("h2", 1.0)):
            fits[key] = np.where(one, value, fits[key])
    return fits


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
    yi, vi, labels = _study_arrays(res)
    k = yi.size
    if k < 2:
        raise InputError(f"res: leave-one-out needs at least 2 studies; got k = {k}")
    fits = _fit_masked(res, yi, vi, ~np.eye(k, dtype=bool))
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
    yi, vi, labels = _study_arrays(res)
    k = yi.size
    idx = _resolve_order(res, order, by, k)
    # row j includes the studies at positions idx[0..j]
    rank = np.empty(k, dtype=int)
    rank[idx] = np.arange(k)
    include = rank[None, :] <= np.arange(k)[:, None]
    fits = _fit_masked(res, yi, vi, include)
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
    yi, vi, labels = _study_arrays(res)
    k = yi.size
    if k < 3:
        raise InputError(f"res: influence diagnostics need at least 3 studies; got k = {k}")
    p = 1
    full = _fit_masked(res, yi, vi, np.ones((1, k), dtype=bool))
    mu, se, tau2 = float(full["estimate"][0]), float(full["se"][0]), float(full["tau2"][0])
    dl = _fit_masked(res, yi, vi, ~np.eye(k, dtype=bool))
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
# GOSH
# ---------------------------------------------------------------------------

_GOSH_COLUMNS = ("estimate", "tau2", "i2", "h2", "q", "k")


@dataclass(frozen=True)
class GoshResult:
    """Fits to many subsets of the studies (Olkin et al. 2012).

    Attributes
    ----------
    frame : DataFrame
        One row per subset: ``estimate, tau2, i2, h2, q, k``.
    incl : ndarray of bool, shape (n_subsets, k)
        ``incl[s, i]`` is True when study *i* is in subset *s*.
    method, test : str
        Model refitted to every subset (those of the input result).
    exhaustive : bool
        True when every one of the 2^k − 1 non-empty subsets was fitted.
    labels : tuple of str
        Study labels (columns of ``incl``).
    """

    frame: pd.DataFrame
    incl: np.ndarray
    method: str
    test: str
    exhaustive: bool
    labels: tuple = field(default=())

    def __len__(self) -> int:
        return len(self.frame)

    def to_frame(self) -> pd.DataFrame:
        """The per-subset results with one boolean column per study appended."""
        inc = pd.DataFrame(self.incl, columns=list(self.labels), index=self.frame.index)
        return pd.concat([self.frame, inc], axis=1)

    def summary(self) -> str:
        """Short text: what was fitted and the range of the estimates."""
        f = self.frame
        kind = "all" if self.exhaustive else "random"
        k = self.incl.shape[1]
        head = (f"GOSH: {len(f)} {kind} subsets of k = {k} studies; "
                f"τ² estimator: {self.method}; test: {self.test}")
        est = (f"estimate: median {num(np.nanmedian(f['estimate']))}, "
               f"range [{num(np.nanmin(f['estimate']))}, {num(np.nanmax(f['estimate']))}]")
        het = (f"I²: median {pct(np.nanmedian(f['i2']))}, "
               f"range [{pct(np.nanmin(f['i2']))}, {pct(np.nanmax(f['i2']))}]")
        lines = [head, est, het]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


def _subset_masks(ids: np.ndarray, k: int) -> np.ndarray:
    """Boolean (n, k) inclusion matrix of subsets numbered by the bits of ``ids``."""
    # the bytes of each id, least significant first, unpacked into bits
    by = np.ascontiguousarray(ids, dtype="<u8").view(np.uint8).reshape(-1, 8)
    return np.unpackbits(by, axis=1, count=k, bitorder="little").view(bool)


def gosh(res, subsets: int | None = None, *, max_exhaustive: int = 2 ** 20,
         seed=None, chunk: int = 2 ** 13) -> GoshResult:
    """GOSH data: the model refitted to subsets of the studies.

    As metafor's ``gosh()``: subsets of every size 1..k.  When the number of
    non-empty subsets 2^k − 1 is at most ``subsets`` (default
    ``max_exhaustive``), all of them are fitted; otherwise ``subsets`` random
    subsets, each study included with probability 1/2 (empty draws redrawn).
    Subsets are fitted in batches of ``chunk`` rows through the engine with
    the τ² estimator and test of ``res`` (``outputs="core"``: only the
    estimate and heterogeneity statistics are computed).

    Parameters
    ----------
    res : PoolResult
        A fitted model from :func:`metaanalysis.pool`.
    subsets : int, optional
        Number of subsets to fit when not fitting all of them.
    max_exhaustive : int
        Default for ``subsets``: fit all subsets when 2^k − 1 ≤ this.
    seed : int or numpy Generator, optional
        For the random subsets.
    chunk : int
        Rows per engine call (memory: about 40 bytes × k × chunk; the default
        keeps the (chunk, k) arrays of k ≈ 16 within a 2 MB L2 cache).

    Returns
    -------
    GoshResult
        ``.frame`` (estimate, tau2, i2, h2, q, k per subset) and ``.incl``.
        Exhaustive subsets are numbered by the bits of 1..2^k − 1 (study i
        included when bit i is set).

    Examples
    --------
    >>> import metaanalysis as ma
    >>> res = ma.pool([0.1, 0.3, 0.35, 0.2], [0.01, 0.02, 0.015, 0.01], method="DL")
    >>> g = ma.gosh(res)
    >>> len(g), g.incl.shape
    (15, (15, 4))
    """
    yi, vi, labels = _study_arrays(res)
    k = yi.size
    n_limit = max_exhaustive if subsets is None else subsets
    if isinstance(n_limit, bool) or not isinstance(n_limit, (int, np.integer)) or n_limit < 1:
        raise InputError(f"subsets: expected a positive integer; got {n_limit!r}")
    if not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise InputError(f"chunk: expected a positive integer; got {chunk!r}")
    n_limit, chunk = int(n_limit), int(chunk)
    exhaustive = k <= 62 and (2 ** k - 1) <= n_limit
    n = 2 ** k - 1 if exhaustive else n_limit
    rng = None if exhaustive else np.random.default_rng(seed)

    out = {c: np.empty(n, dtype=float) for c in _GOSH_COLUMNS}
    incl = np.empty((n, k), dtype=bool)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        if exhaustive:
            inc = _subset_masks(np.arange(start + 1, stop + 1, dtype=np.int64), k)
        else:
            inc = rng.random((stop - start, k)) < 0.5
            empty = ~inc.any(axis=1)
            while empty.any():
                inc[empty] = rng.random((int(empty.sum()), k)) < 0.5
                empty = ~inc.any(axis=1)
        fits = _fit_masked(res, yi, vi, inc, outputs="core")
        for c in _GOSH_COLUMNS:
            out[c][start:stop] = fits[c]
        incl[start:stop] = inc
    frame = pd.DataFrame(out)
    frame["k"] = frame["k"].astype(int)
    frame.attrs.update(analysis="GOSH", method=res.method, test=getattr(res, "test", "z"))
    return GoshResult(frame=frame, incl=incl, method=res.method,
                      test=getattr(res, "test", "z"), exhaustive=exhaustive,
                      labels=tuple(labels))
