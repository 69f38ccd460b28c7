"""Meta-regression: mixed-effects models with moderators.

:func:`meta_regression` builds the design matrix (:func:`design_matrix`: numeric
columns as they are, categorical ones dummy coded), fits it with the batched
core :func:`metaanalysis.engine.mixed.fit_mixed` and returns a
:class:`MetaRegressionResult`; permutation p-values (Higgins & Thompson 2004)
refit the permuted designs as one batch.  The intercept-only fit used for the
pseudo-R² is done by the package engine (:mod:`metaanalysis.engine.batch`).
Subgroup analysis lives in :mod:`metaanalysis.models.subgroups` and is
re-exported here.

References
----------
Raudenbush SW (2009). Analyzing effect sizes: random-effects models. In
Cooper, Hedges & Valentine (eds), *The Handbook of Research Synthesis and
Meta-Analysis*, 2nd ed., 295-315.

Knapp G, Hartung J (2003). Improved tests for a random effects meta-regression
with a single covariate. *Stat Med* 22:2693-2710.

Higgins JPT, Thompson SG (2004). Controlling the risk of spurious findings from
meta-regression. *Stat Med* 23:1663-1682.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from metaanalysis.engine.mixed import CORE_METHODS, TESTS, _loglik, fit_mixed  # noqa: F401 - re-exported
from metaanalysis.errors import ConvergenceWarning, InputError
from metaanalysis.formatting import ci, num, pct, pval
from metaanalysis.results.display import TextDisplay


def design_matrix(mods, k: int, intercept: bool = True) -> pd.DataFrame:
    """Build the design matrix of a meta-regression.

    Numeric columns are used as they are; text, boolean and categorical columns
    are dummy coded with the first level (the first category of a pandas
    ``Categorical``, otherwise the first in sorted order) as reference, named
    ``column[level]``.  An intercept column ``intrcpt`` comes first.

    Examples
    --------
    >>> design_matrix(pd.DataFrame({"x": [1.0, 2, 3], "g": ["a", "b", "a"]}), 3).columns.tolist()
    ['intrcpt', 'x', 'g[b]']
    """
    if isinstance(mods, pd.DataFrame):
        frame = mods.reset_index(drop=True)
    elif isinstance(mods, pd.Series):
        frame = mods.reset_index(drop=True).to_frame(name=mods.name if mods.name is not None else "mod")
    elif isinstance(mods, Mapping):
        frame = pd.DataFrame({str(n): np.asarray(c) for n, c in mods.items()})
    else:
        arr = np.asarray(mods)
        if arr.ndim == 1:
            frame = pd.DataFrame({"mod": arr})
        elif arr.ndim == 2:
            frame = pd.DataFrame(arr, columns=[f"mod{j + 1}" for j in range(arr.shape[1])])
        else:
            raise InputError(f"mods must be 1-D or 2-D, got an array of shape {arr.shape}")
    if len(frame) != k:
        raise InputError(f"mods has {len(frame)} rows but there are {k} studies")
    if frame.shape[1] == 0:
        raise InputError("mods has no columns; use pool() for an intercept-only model")
    cols: dict[str, np.ndarray] = {}
    if intercept:
        cols["intrcpt"] = np.ones(k)
    for name in frame.columns:
        col = frame[name]
        if col.isna().any():
            bad = list(np.flatnonzero(col.isna().to_numpy())[:5])
            raise InputError(f"mods column {name!r} has missing values in rows {bad}; "
                             "remove those studies first")
        if isinstance(col.dtype, pd.CategoricalDtype) or col.dtype == object \
                or pd.api.types.is_bool_dtype(col) or pd.api.types.is_string_dtype(col):
            cat, levels = _levels(col)
            if len(levels) < 2:
                raise InputError(f"mods column {name!r} has a single level {levels!r}; "
                                 "a categorical moderator needs at least two")
            for lv in levels[1:]:
                cols[f"{name}[{lv}]"] = (cat == lv).to_numpy(dtype=float)
        else:
            cols[str(name)] = col.to_numpy(dtype=float)
    return pd.DataFrame(cols)


def _levels(col: pd.Series) -> tuple[pd.Series, list]:
    """``col`` as a categorical and the levels that occur in it, in category order
    (given categories first, otherwise sorted)."""
    cat = col if isinstance(col.dtype, pd.CategoricalDtype) else col.astype("category")
    return cat, [lv for lv in cat.cat.categories if (cat == lv).any()]


def _intercept_fit(yi, vi, method: str) -> tuple[float, float]:
    """τ² and H² of the intercept-only model, from the package engine."""
    from metaanalysis import engine

    out = engine.fit(np.asarray(yi, float)[None, :], np.asarray(vi, float)[None, :],
                     method=method, test="z", qprofile=False)
    return float(np.asarray(out["tau2"])[0]), float(np.asarray(out["h2"])[0])


def _method_label(method: str) -> str:
    return {"EE": "none (common effect)", "DL": "DerSimonian-Laird (Raudenbush 2009)",
            "HE": "Hedges (OLS residuals)", "PM": "Paule-Mandel", "ML": "maximum likelihood",
            "REML": "restricted maximum likelihood"}.get(method, method)


@dataclass(frozen=True, repr=False)
class MetaRegressionResult(TextDisplay):
    """Result of :func:`meta_regression` (immutable).

    ``coef`` is a DataFrame indexed by coefficient name (``intrcpt`` first)
    with columns ``estimate, se, stat, p, ci_lb, ci_ub`` (and ``p_perm`` when
    permutation p-values were requested).  With ``test="knha"``, ``stat`` are
    t statistics on ``qe_df`` degrees of freedom and ``qm`` is an F statistic
    on ``(qm_df, qm_df2)`` degrees of freedom.  ``r2`` is the pseudo-R² in
    percent, ``max(0, (τ²_RE − τ²_ME) / τ²_RE)``, with τ²_RE from the
    intercept-only model using the same estimator (Raudenbush 2009); for the
    common-effect model (``method="EE"``) it is the proportional reduction of
    H² = Q/df instead, as metafor reports it.
    """

    coef: pd.DataFrame
    k: int
    method: str
    test: str
    level: float
    tau2: float
    tau2_re: float
    i2: float
    h2: float
    r2: float
    qm: float
    qm_df: int
    qm_df2: float
    qm_p: float
    qe: float
    qe_df: int
    qe_p: float
    converged: bool
    design: pd.DataFrame
    yi: np.ndarray = field(repr=False)
    vi: np.ndarray = field(repr=False)
    permutations: int | None = None
    qm_p_perm: float | None = None
    seed: Any = None
    notes: tuple[str, ...] = ()

    @property
    def df(self) -> float | None:
        """t degrees of freedom (Knapp-Hartung), ``None`` for z tests."""
        return float(self.qe_df) if self.test != "z" else None

    def to_frame(self) -> pd.DataFrame:
        """The coefficient table (a copy)."""
        return self.coef.copy()

    def summary(self) -> str:
        """Text report with every method choice stated."""
        lvl = f"{100 * self.level:g}%"
        lines = [f"Mixed-effects meta-regression (k = {self.k})",
                 f"τ² estimator: {self.method} — {_method_label(self.method)}",
                 "Tests: " + (f"Knapp-Hartung, t({self.qe_df}) for coefficients, "
                              f"F({self.qm_df}, {self.qe_df}) for the moderators"
                              if self.test != "z" else "z for coefficients, χ² for the moderators"),
                 "",
                 (f"Residual heterogeneity: τ² = {num(self.tau2)}, I² = {pct(self.i2)}, "
                 f"H² = {num(self.h2)}"),
                 (f"Pseudo-R² (heterogeneity accounted for): {pct(self.r2)} "
                 f"(τ² without moderators = {num(self.tau2_re)})"),
                 (f"Test for residual heterogeneity: QE({self.qe_df}) = {num(self.qe)}, "
                 f"p = {pval(self.qe_p)}")]
        if self.test != "z":
            lines.append(f"Test of moderators: F({self.qm_df}, {num(self.qm_df2, 0)}) = "
                         f"{num(self.qm)}, p = {pval(self.qm_p)}")
        else:
            lines.append(f"Test of moderators: QM({self.qm_df}) = {num(self.qm)}, p = {pval(self.qm_p)}")
        if self.permutations:
            lines.append(f"Permutation test ({self.permutations} permutations of the moderators, "
                         f"Higgins & Thompson 2004; seed = {self.seed}): p = {pval(self.qm_p_perm)}")
        lines.append("")
        statname = "t" if self.test != "z" else "z"
        names = [str(n) for n in self.coef.index]
        w = max(8, max(len(n) for n in names))
        head = f"{'':<{w}}  {'estimate':>9}  {'se':>8}  {statname:>8}  {'p':>8}  {lvl + ' CI':>20}"
        if self.permutations:
            head += f"  {'p (perm)':>9}"
        lines.append(head)
        for n, row in zip(names, self.coef.itertuples()):
            line = (f"{n:<{w}}  {num(row.estimate):>9}  {num(row.se):>8}  {num(row.stat):>8}  "
                    f"{pval(row.p):>8}  {ci(row.ci_lb, row.ci_ub):>20}")
            if self.permutations:
                line += f"  {pval(row.p_perm):>9}"
            lines.append(line)
        lines.extend(self.notes)
        return "\n".join(lines)


def _as_yi_vi_mods(yi, vi, mods):
    """Accept arrays, or an effect-size DataFrame with column names for vi/mods."""
    if isinstance(yi, pd.DataFrame):
        data = yi
        if "yi" not in data.columns:
            raise InputError("yi is a DataFrame without a 'yi' column")
        if vi is None:
            if "vi" not in data.columns:
                raise InputError("yi is a DataFrame without a 'vi' column and vi was not given")
            vi = data["vi"]
        if isinstance(mods, str):
            mods = [mods]
        if isinstance(mods, (list, tuple)) and mods and all(isinstance(m, str) for m in mods):
            missing = [m for m in mods if m not in data.columns]
            if missing:
                raise InputError(f"mods names columns {missing} that are not in the DataFrame")
            mods = data[list(mods)]
        yi = data["yi"]
    if vi is None:
        raise InputError("vi is required (sampling variances)")
    y = np.asarray(yi, dtype=float).ravel()
    v = np.asarray(vi, dtype=float).ravel()
    if y.shape != v.shape:
        raise InputError(f"yi has {y.size} values but vi has {v.size}")
    if not np.all(np.isfinite(y)) or not np.all(np.isfinite(v)):
        raise InputError("yi and vi must be finite (remove studies with missing values first)")
    if np.any(v <= 0):
        raise InputError(f"vi must be > 0, got {v[v <= 0][:5].tolist()}")
    return y, v, mods


def meta_regression(yi, vi=None, mods=None, *, method: str = "REML", test: str = "z",
                    level: float = 0.95, permutations: int | None = None,
                    seed=None) -> MetaRegressionResult:
    """Mixed-effects meta-regression ``y_i = x_i'β + u_i + e_i``.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances; ``yi`` may be an ``effect_sizes``
        DataFrame (then ``vi`` defaults to its column and ``mods`` may be column
        names).
    mods : array_like, Series, DataFrame or column names
        Moderators; an intercept is added.  Text/categorical columns are dummy
        coded with the first level as reference.
    method : {"REML", "ML", "DL", "HE", "PM", "EE"}
        Estimator of the residual τ² (Viechtbauer 2005; Raudenbush 2009).
    test : {"z", "knha", "adhoc"}
        z/χ² tests, or Knapp-Hartung t tests and an F test for the moderators
        (Knapp & Hartung 2003).
    level : float
        Confidence level of the coefficient intervals.
    permutations : int, optional
        Number of random permutations of the moderator rows for permutation
        p-values (Higgins & Thompson 2004); τ² is re-estimated for each.  The
        p-value is ``(1 + #{stat_perm ≥ stat_obs}) / (1 + permutations)``.
    seed : int or numpy Generator, optional
        Seed of the permutations.

    Returns
    -------
    MetaRegressionResult

    Examples
    --------
    >>> import metaanalysis as ma
    >>> res = ma.meta_regression([0.1, 0.3, 0.2, 0.5, 0.4], [0.01, 0.02, 0.015, 0.03, 0.02],
    ...                          [1, 2, 3, 4, 5])
    >>> list(res.coef.index)
    ['intrcpt', 'mod']
    """
    if not (0 < level < 1):
        raise InputError(f"level must be between 0 and 1, got {level!r}")
    if mods is None:
        raise InputError("mods is required; use pool() for a model without moderators")
    y, v, mods = _as_yi_vi_mods(yi, vi, mods)
    method = "EE" if method == "FE" else method
    X = design_matrix(mods, y.size)
    Xa = X.to_numpy()
    out = fit_mixed(y, v, Xa, method=method, test=test, level=level)
    notes: list[str] = []
    conv = bool(out["converged"][0])
    if not conv:
        warnings.warn(f"τ² estimator {method} did not converge", ConvergenceWarning, stacklevel=2)
        notes.append(f"Warning: the {method} iterations did not converge.")
    tau2 = float(out["tau2"][0])
    tau2_re, h2_re = _intercept_fit(y, v, method)
    if method == "EE":
        # common-effect model: proportional reduction of H² = Q/df (as metafor reports)
        h2_me = float(out["h2"][0])
        r2 = 0.0 if h2_re <= 0 else 100.0 * max(0.0, (h2_re - h2_me) / h2_re)
    else:
        r2 = 0.0 if tau2_re <= 0 else 100.0 * max(0.0, (tau2_re - tau2) / tau2_re)
    coef = pd.DataFrame({c: out[c][0] for c in ("beta", "se", "stat", "p", "ci_lb", "ci_ub")},
                        index=pd.Index(X.columns, name="term")).rename(columns={"beta": "estimate"})
    qm_p_perm = None
    if permutations is not None:
        if int(permutations) != permutations or permutations < 1:
            raise InputError(f"permutations must be a positive integer, got {permutations!r}")
        permutations = int(permutations)
        pp, qm_p_perm = _permutation_pvalues(y, v, Xa, out, method, test, level,
                                             permutations, seed)
        coef["p_perm"] = pp
    return MetaRegressionResult(
        coef=coef, k=int(y.size), method=method, test=test, level=level, tau2=tau2,
        tau2_re=tau2_re, i2=float(out["i2"][0]), h2=float(out["h2"][0]), r2=r2,
        qm=float(out["qm"][0]), qm_df=int(out["qm_df"][0]), qm_df2=float(out["qm_df2"][0]),
        qm_p=float(out["qm_p"][0]), qe=float(out["qe"][0]), qe_df=int(out["qe_df"][0]),
        qe_p=float(out["qe_p"][0]), converged=conv, design=X, yi=y, vi=v,
        permutations=permutations, qm_p_perm=qm_p_perm, seed=seed, notes=tuple(notes))


def _permutation_pvalues(y, v, X, observed, method, test, level, n_perm, seed, chunk=2000):
    """Permutation p-values: rows of the moderators are shuffled relative to
    (yi, vi) and the full model, τ² included, is refitted on the batch."""
    rng = np.random.default_rng(seed)
    k, p = X.shape
    zobs = np.abs(observed["stat"][0])
    qobs = observed["qm"][0]
    count_z = np.zeros(p)
    count_q = 0
    done = 0
    while done < n_perm:
        b = min(chunk, n_perm - done)
        idx = np.argsort(rng.random((b, k)), axis=1)
        Xp = X[idx]  # (b, k, p)
        res = fit_mixed(np.broadcast_to(y, (b, k)), np.broadcast_to(v, (b, k)), Xp,
                        method=method, test=test, level=level)
        count_z += np.sum(np.abs(res["stat"]) >= zobs * (1 - 1e-12), axis=0)
        count_q += int(np.sum(res["qm"] >= qobs * (1 - 1e-12)))
        done += b
    return (count_z + 1) / (n_perm + 1), (count_q + 1) / (n_perm + 1)

