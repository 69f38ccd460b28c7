"""Meta-regression: mixed-effects models with moderators.

:func:`meta_regression` builds the design matrix (:func:`design_matrix`: numeric
columns as they are, categorical ones dummy coded), fits it with the package's
one engine (:func:`metaanalysis.engine.fit` with ``X``) and returns a
:class:`MetaRegressionResult`; permutation p-values (Higgins & Thompson 2004)
refit the permuted designs as one batch (one design per row).  Every τ²
estimator and test of :func:`metaanalysis.pool` is available, with metafor's
``rma.uni(mods = ...)`` conventions.  Subgroup analysis lives in
:mod:`metaanalysis.models.subgroups`.

References
----------
Raudenbush SW (2009). Analyzing effect sizes: random-effects models. In
Cooper, Hedges & Valentine (eds), *The Handbook of Research Synthesis and
Meta-Analysis*, 2nd ed., 295-315.

Knapp G, Hartung J (2003). Improved tests for a random effects meta-regression
with a single covariate. *Stat Med* 22:2693-2710.

Higgins JPT, Thompson SG (2004). Controlling the risk of spurious findings from
meta-regression. *Stat Med* 23:1663-1682.

Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package.
*J Stat Softw* 36(3):1-48.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from metaanalysis import engine
from metaanalysis.effects.study_data import study_data
from metaanalysis.errors import ConvergenceWarning, InputError
from metaanalysis.formatting import (
    ci,
    inference_text,
    level_text,
    method_text,
    num,
    p_text,
    pct,
    pval,
    stat_text,
)
from metaanalysis.frozen import FrameField, freeze_arrays, readonly
from metaanalysis.results.display import Display, Displayed, Lines, Table

__all__ = ["BatchRegressionResult", "MetaRegressionResult", "design_matrix", "meta_regression",
           "pool_many_regression"]


def design_matrix(mods, k: int, intercept: bool = True) -> pd.DataFrame:
    """Build the design matrix of a meta-regression.

    Numeric columns are used as they are; text, boolean and categorical columns
    are dummy coded with the first level (the first category of a pandas
    ``Categorical``, otherwise the first in sorted order) as reference, named
    ``column[level]``.  An intercept column ``intrcpt`` comes first.
    ``df.attrs["coding"]`` records, per moderator, its levels (categorical) or
    ``None`` (numeric), so new moderator values can be coded the same way.

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
    coding: dict[str, list | None] = {}
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
            cat, levels = factor_levels(col)
            if len(levels) < 2:
                raise InputError(f"mods column {name!r} has a single level {levels!r}; "
                                 "a categorical moderator needs at least two")
            for lv in levels[1:]:
                cols[f"{name}[{lv}]"] = (cat == lv).to_numpy(dtype=float)
            coding[str(name)] = list(levels)
        else:
            cols[str(name)] = col.to_numpy(dtype=float)
            coding[str(name)] = None
    out = pd.DataFrame(cols)
    out.attrs["coding"] = coding
    out.attrs["intercept"] = intercept
    return out


def factor_levels(col: pd.Series) -> tuple[pd.Series, list]:
    """``col`` as a categorical and the levels that occur in it, in category order
    (given categories first, otherwise sorted)."""
    cat = col if isinstance(col.dtype, pd.CategoricalDtype) else col.astype("category")
    return cat, [lv for lv in cat.cat.categories if (cat == lv).any()]


def as_yi_vi_mods(yi, vi, mods):
    """Accept arrays, or an effect-size DataFrame with column names for vi/mods.

    The numbers go through the package's one normaliser
    (:func:`metaanalysis.effects.study_data.study_data`): text, NaN, infinite or
    out-of-range values raise :class:`InputError` naming the argument, the index and
    the value, as in :func:`metaanalysis.pool`.
    """
    if isinstance(yi, pd.DataFrame):
        data = yi
        if isinstance(mods, str):
            mods = [mods]
        if isinstance(mods, (list, tuple)) and mods and all(isinstance(m, str) for m in mods):
            missing = [m for m in mods if m not in data.columns]
            if missing:
                raise InputError(f"mods: names columns {missing} that are not in the DataFrame; "
                                 f"expected some of {', '.join(map(str, data.columns))}")
            mods = data[list(mods)]
        if vi is not None:  # an explicit vi overrides the frame's column
            if "yi" not in data.columns:
                raise InputError("yi: the DataFrame has no column 'yi'; expected the output "
                                 "of effect_sizes()")
            yi = data["yi"]
    d = study_data(yi, vi)
    return d.yi, d.vi, mods


@dataclass(frozen=True, eq=False, repr=False)
class MetaRegressionResult(Displayed):
    """Result of :func:`meta_regression` (immutable).

    ``coef`` is a DataFrame indexed by coefficient name (``intrcpt`` first)
    with columns ``estimate, se, stat, p, ci_lb, ci_ub`` (and ``p_perm`` when
    permutation p-values were requested).  With ``test="knha"``/``"adhoc"``,
    ``stat`` are t statistics on ``df`` = k − p degrees of freedom and ``qm``
    is an F statistic on ``(qm_df, qm_df2)`` degrees of freedom; with ``"z"``
    a Wald χ² on ``qm_df``.  ``qe`` is the test for residual heterogeneity
    (χ² on ``qe_df`` = k − p).  ``tau2`` is the residual τ² with ``se_tau2``
    and its Q-profile interval; ``i2``, ``h2`` (and their Q-profile intervals)
    use the typical within-study variance (k − p)/tr P, as metafor.

    ``r2`` is the pseudo-R² in percent, metafor's: ``max(0, (τ²_RE − τ²)/τ²_RE)``
    with τ²_RE from the intercept-only model with the same estimator and test
    (0 when τ²_RE = 0; Raudenbush 2009); for the common-effect model
    (``method="EE"``) the adjusted R² of the weighted least-squares fit,
    ``1 − H²_E/H²_RE`` with H² = Q/df.  ``vcov`` is the covariance of the
    coefficients (DataFrame).  :meth:`predict` evaluates the model at new
    moderator values.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> res = ma.meta_regression([0.1, 0.3, 0.2, 0.5, 0.4], [0.01, 0.02, 0.015, 0.03, 0.02],
    ...                          [1, 2, 3, 4, 5], method="DL")
    >>> res.predict([0, 6])[["pred", "ci_lb"]].round(3).to_numpy().tolist()
    [[0.042, -0.19], [0.52, 0.234]]
    """

    coef: pd.DataFrame = FrameField(required=True)
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
    design: pd.DataFrame = FrameField(required=True)
    yi: np.ndarray = field(repr=False)
    vi: np.ndarray = field(repr=False)
    permutations: int | None = None
    qm_p_perm: float | None = None
    seed: Any = None
    notes: tuple[str, ...] = ()
    se_tau2: float = float("nan")
    tau2_ci_lb: float = float("nan")
    tau2_ci_ub: float = float("nan")
    i2_ci_lb: float = float("nan")
    i2_ci_ub: float = float("nan")
    h2_ci_lb: float = float("nan")
    h2_ci_ub: float = float("nan")
    vcov: pd.DataFrame | None = FrameField()

    def __post_init__(self):
        freeze_arrays(self)

    @property
    def df(self) -> float | None:
        """t degrees of freedom (k − p) with knha/adhoc, ``None`` for z tests."""
        return float(self.qe_df) if self.test != "z" else None

    def design_rows(self, newmods) -> np.ndarray:
        """Design-matrix rows (intercept included) for new moderator values.

        ``newmods``: a DataFrame (or mapping) with the moderator columns of the
        fit (categorical values coded as in the fit), or numbers: one value per
        row for a single column, or an (m, p − 1) array in the order of the
        design's columns after the intercept ((m, p) including it).
        """
        cols = list(self.design.columns)
        p = len(cols)
        has_int = bool(self.design.attrs.get("intercept", cols[0] == "intrcpt"))
        coding = self.design.attrs.get("coding") or {}
        if isinstance(newmods, (pd.DataFrame, Mapping)) and coding:
            frame = pd.DataFrame(dict(newmods)) if isinstance(newmods, Mapping) else newmods
            missing = [c for c in coding if c not in frame.columns]
            if missing:
                raise InputError(f"newmods: columns {missing} are missing; expected the "
                                 f"moderators of the fit: {', '.join(coding)}")
            out = {"intrcpt": np.ones(len(frame))} if has_int else {}
            for name, levels in coding.items():
                col = frame[name]
                if levels is None:
                    out[name] = col.to_numpy(dtype=float)
                    continue
                bad = sorted({str(x) for x in col if x not in levels})
                if bad:
                    raise InputError(f"newmods: column {name!r} has levels {bad} that the fit "
                                     f"did not see; expected one of {levels}")
                for lv in levels[1:]:
                    out[f"{name}[{lv}]"] = (col == lv).to_numpy(dtype=float)
            return np.column_stack([out[c] for c in cols])
        try:
            X = np.asarray(newmods, dtype=float)
        except (TypeError, ValueError):
            raise InputError(f"newmods: got {newmods!r}; expected numbers or a DataFrame of "
                             "the moderators") from None
        q = p - 1 if has_int else p
        if X.ndim <= 1:
            X = X.reshape(-1, 1) if q == 1 else X.reshape(1, -1)
        if X.ndim != 2 or X.shape[1] not in (q, p):
            raise InputError(f"newmods: got shape {X.shape}; expected (m, {q}) moderator values "
                             f"in the order {cols[1:] if has_int else cols}")
        if X.shape[1] == q and has_int:
            X = np.column_stack([np.ones(X.shape[0]), X])
        return X

    def predict(self, newmods) -> pd.DataFrame:
        """Predicted effects at new moderator values (metafor's ``predict.rma``).

        Returns a DataFrame with ``pred, se, ci_lb, ci_ub, pi_lb, pi_ub``: the
        CI of the mean effect and the prediction interval x'β̂ ± c √(SE² + τ²)
        (normal quantile, or t(k − p) with knha/adhoc; no PI for ``EE``).
        """
        X = self.design_rows(newmods)
        out = engine.predict(self.coef["estimate"].to_numpy()[None], self.vcov.to_numpy()[None],
                             np.array([self.tau2]), X, test=self.test, level=self.level,
                             df=np.array([self.qe_df]))
        frame = pd.DataFrame({key: val[0] for key, val in out.items()})
        if self.method == "EE":
            frame["pi_lb"] = frame["pi_ub"] = np.nan
        return frame

    def _display(self) -> Display:
        lv = level_text(self.level)
        p = len(FrameField.peek(self, "coef"))
        title = (f"{'Common-effect' if self.method == 'EE' else 'Mixed-effects'} meta-regression "
                 f"(k = {self.k}, {p} coefficients)")
        methods = [("τ² estimator", method_text(self.method)) if self.method != "EE"
                   else ("Weights", "inverse variance (τ² = 0)"),
                   ("CI and tests", inference_text(self.test, self.df)),
                   ("Test of moderators", f"F({self.qm_df}, {num(self.qm_df2, 0)})"
                    if self.test != "z" else f"Wald χ²({self.qm_df})")]
        if np.isfinite(self.tau2_ci_lb):
            methods.append(("τ², I², H² intervals", "Q-profile (Viechtbauer 2007)"))
        if self.permutations:
            methods.append(("Permutation test", f"{self.permutations} permutations of the "
                            f"moderators (Higgins & Thompson 2004), seed {self.seed}"))
        rows = []
        if self.method != "EE":
            het = f"τ² = {num(self.tau2)}"
            if np.isfinite(self.se_tau2):
                het += f" (SE {num(self.se_tau2)})"
            i2, h2 = f"I² = {pct(self.i2)}", f"H² = {num(self.h2, 2)}"
            if np.isfinite(self.tau2_ci_lb):
                het += f", {lv} CI {ci(self.tau2_ci_lb, self.tau2_ci_ub)}"
                i2 += f" [{pct(self.i2_ci_lb)}, {pct(self.i2_ci_ub)}]"
                h2 += f" [{num(self.h2_ci_lb, 2)}, {num(self.h2_ci_ub, 2)}]"
            rows += [("Residual heterogeneity", het), ("", f"{i2}, {h2}")]
        rows += [("Pseudo-R²", f"{pct(self.r2)} (τ² without moderators = {num(self.tau2_re)})"
                  if self.method != "EE" else f"{pct(self.r2)} (from H² = Q/df)"),
                 ("Test for residual heterogeneity",
                  f"{stat_text(self.qe, self.qe_df, 'QE')}, {p_text(self.qe_p)}"),
                 ("Test of moderators",
                  f"{stat_text(self.qm, (self.qm_df, self.qm_df2), 'F')}, {p_text(self.qm_p)}"
                  if self.test != "z" else
                  f"{stat_text(self.qm, self.qm_df, 'QM')}, {p_text(self.qm_p)}")]
        if self.permutations:
            rows.append(("Permutation p of the moderator test", pval(self.qm_p_perm)))
        coef = FrameField.peek(self, "coef")
        table = {"estimate": coef["estimate"].map(num), "se": coef["se"].map(num),
                 "t" if self.test != "z" else "z": coef["stat"].map(lambda x: num(x, 2)),
                 "p": coef["p"].map(pval),
                 f"{lv} CI": [ci(a, b) for a, b in zip(coef["ci_lb"], coef["ci_ub"])]}
        if self.permutations:
            table["p (perm)"] = coef["p_perm"].map(pval)
        coefs = pd.DataFrame(table).set_axis(pd.Index([str(n) for n in coef.index],
                                                      name="coefficient"))
        return Display(title, tuple(methods), (Lines(tuple(rows)), Table("", coefs)),
                       tuple(self.notes))

    def _frame(self) -> pd.DataFrame:
        return FrameField.peek(self, "coef").copy()

    def to_frame(self) -> pd.DataFrame:
        """The coefficient table (a copy; ``attrs["description"]``: the method choices)."""
        return super().to_frame()


def pseudo_r2(y, v, method, test, tau2, h2) -> tuple[float, float]:
    """(R² in percent, τ²_RE) as metafor: from the intercept-only fit with the same
    estimator and test (the adjusted R² of the weighted fit for ``EE``)."""
    ref = engine.fit(y, v, method=method, test=test, qprofile=False,
                     outputs=("tau2", "h2"))
    tau2_re, h2_re = float(ref["tau2"][0]), float(ref["h2"][0])
    if method == "EE":
        if np.ptp(y) == 0 or not h2_re > 0:
            return 0.0, tau2_re
        return 100.0 * max(0.0, (h2_re - h2) / h2_re), tau2_re
    if tau2_re <= 0:
        return 0.0, tau2_re
    return 100.0 * max(0.0, (tau2_re - tau2) / tau2_re), tau2_re


def meta_regression(yi, vi=None, mods=None, *, method: str = "REML", test: str = "z",
                    level: float = 0.95, permutations: int | None = None,
                    seed=None, btt=None) -> MetaRegressionResult:
    """Mixed-effects meta-regression ``y_i = x_i'β + u_i + e_i``.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances; ``yi`` may be an ``effect_sizes``
        DataFrame (then ``vi`` defaults to its column and ``mods`` may be column
        names).
    mods : array_like, Series, DataFrame or column names
        Moderators; an intercept is added.  Text/categorical columns are dummy
        coded with the first level as reference (metafor's treatment coding).
    method : str
        Estimator of the residual τ²: any of :func:`metaanalysis.pool` (``"EE"``,
        ``"DL"``, ``"HE"``, ``"HS"``, ``"HSk"``, ``"SJ"``, ``"ML"``, ``"REML"``,
        ``"EB"``, ``"PM"``, ``"PMM"``), generalised to moderators as metafor's
        ``rma.uni(mods = ...)`` (see :mod:`metaanalysis.engine.tau2`).
    test : {"z", "knha", "adhoc"}
        z/χ² tests, or Knapp-Hartung t tests and an F test for the moderators
        (Knapp & Hartung 2003; ``adhoc``: variance factor at least 1).
    level : float
        Confidence level of the intervals.
    permutations : int, optional
        Number of random permutations of the moderator rows for permutation
        p-values (Higgins & Thompson 2004); τ² is re-estimated for each.  The
        p-value is ``(1 + #{stat_perm ≥ stat_obs}) / (1 + permutations)``.
    seed : int or numpy Generator, optional
        Seed of the permutations.
    btt : sequence of int, optional
        Coefficients in the omnibus test Q_M (default: all but the intercept).

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
    engine.check_level(level)
    if mods is None:
        raise InputError("mods is required; use pool() for a model without moderators")
    y, v, mods = as_yi_vi_mods(yi, vi, mods)
    method = "EE" if method == "FE" else method
    X = design_matrix(mods, y.size)
    Xa = X.to_numpy()
    out = engine.fit(y, v, X=Xa, method=method, test=test, level=level, btt=btt)
    notes: list[str] = []
    conv = bool(out["converged"][0])
    if not conv:
        warnings.warn(f"τ² estimator {method} did not converge", ConvergenceWarning, stacklevel=2)
        notes.append(f"Warning: the {method} iterations did not converge.")
    r = {key: float(val[0]) for key, val in out.items() if val.ndim == 1}
    r2, tau2_re = pseudo_r2(y, v, method, test, r["tau2"], r["h2"])
    names = pd.Index(X.columns, name="term")
    coef = pd.DataFrame({"estimate": out["coef"][0], "se": out["coef_se"][0],
                         "stat": out["coef_stat"][0], "p": out["coef_p"][0],
                         "ci_lb": out["coef_ci_lb"][0], "ci_ub": out["coef_ci_ub"][0]},
                        index=names)
    qm_p_perm = None
    if permutations is not None:
        if int(permutations) != permutations or permutations < 1:
            raise InputError(f"permutations must be a positive integer, got {permutations!r}")
        permutations = int(permutations)
        pp, qm_p_perm = _permutation_pvalues(y, v, Xa, out, method, test, level,
                                             permutations, seed, btt)
        coef["p_perm"] = pp
    return MetaRegressionResult(
        coef=coef, k=int(y.size), method=method, test=test, level=level, tau2=r["tau2"],
        tau2_re=tau2_re, i2=r["i2"], h2=r["h2"], r2=r2, qm=r["qm"], qm_df=int(r["qm_df"]),
        qm_df2=r["qm_df2"], qm_p=r["qm_p"], qe=r["q"], qe_df=int(r["q_df"]), qe_p=r["q_p"],
        converged=conv, design=X, yi=y, vi=v, permutations=permutations,
        qm_p_perm=qm_p_perm, seed=seed, notes=tuple(notes), se_tau2=r["se_tau2"],
        tau2_ci_lb=r["tau2_ci_lb"], tau2_ci_ub=r["tau2_ci_ub"], i2_ci_lb=r["i2_ci_lb"],
        i2_ci_ub=r["i2_ci_ub"], h2_ci_lb=r["h2_ci_lb"], h2_ci_ub=r["h2_ci_ub"],
        vcov=pd.DataFrame(out["vcov"][0], index=names, columns=names))


def _permutation_pvalues(y, v, X, observed, method, test, level, n_perm, seed, btt,
                         chunk=2000):
    """Permutation p-values: rows of the moderators are shuffled relative to
    (yi, vi) and the full model, τ² included, is refitted — one engine call per
    chunk of permutations, one design per row."""
    rng = np.random.default_rng(seed)
    k, p = X.shape
    zobs = np.abs(observed["coef_stat"][0])
    qobs = observed["qm"][0]
    count_z = np.zeros(p)
    count_q = 0
    done = 0
    while done < n_perm:
        b = min(chunk, n_perm - done)
        idx = np.argsort(rng.random((b, k)), axis=1)
        res = engine.fit(np.broadcast_to(y, (b, k)), np.broadcast_to(v, (b, k)), X=X[idx],
                         method=method, test=test, level=level, btt=btt, qprofile=False,
                         outputs=("coef_stat", "qm"))
        count_z += np.sum(np.abs(res["coef_stat"]) >= zobs * (1 - 1e-12), axis=0)
        count_q += int(np.sum(res["qm"] >= qobs * (1 - 1e-12)))
        done += b
    return (count_z + 1) / (n_perm + 1), (count_q + 1) / (n_perm + 1)


# ---------------------------------------------------------------------------
# many meta-regressions at once (pool_many(mods=...))
# ---------------------------------------------------------------------------

_BATCH_KEYS = ("k", "coef", "coef_se", "coef_stat", "coef_p", "coef_ci_lb", "coef_ci_ub",
               "vcov", "qm", "qm_df", "qm_df2", "qm_p", "tau2", "se_tau2", "tau2_ci_lb",
               "tau2_ci_ub", "i2", "i2_ci_lb", "i2_ci_ub", "h2", "h2_ci_lb", "h2_ci_ub", "q",
               "q_df", "q_p", "df", "converged")  # fmt: skip


@dataclass(frozen=True, eq=False, repr=False)
class BatchRegressionResult(Displayed):
    """Many meta-regressions (from ``pool_many(yi, vi, mods=...)``), immutable.

    Per-coefficient arrays (``coef``, ``coef_se``, ``coef_stat``, ``coef_p``,
    ``coef_ci_lb``, ``coef_ci_ub``) have shape (batch, p) in the order of
    ``names``; ``vcov`` (batch, p, p); everything else (τ², its SE and
    Q-profile interval, I², H², Q_E as ``q``, Q_M as ``qm`` ...) one value per
    row, with the meanings of :class:`MetaRegressionResult`.
    """

    method: str
    test: str
    level: float
    names: tuple
    k: np.ndarray
    coef: np.ndarray
    coef_se: np.ndarray
    coef_stat: np.ndarray
    coef_p: np.ndarray
    coef_ci_lb: np.ndarray
    coef_ci_ub: np.ndarray
    vcov: np.ndarray
    qm: np.ndarray
    qm_df: np.ndarray
    qm_df2: np.ndarray
    qm_p: np.ndarray
    tau2: np.ndarray
    se_tau2: np.ndarray
    tau2_ci_lb: np.ndarray
    tau2_ci_ub: np.ndarray
    i2: np.ndarray
    i2_ci_lb: np.ndarray
    i2_ci_ub: np.ndarray
    h2: np.ndarray
    h2_ci_lb: np.ndarray
    h2_ci_ub: np.ndarray
    q: np.ndarray
    q_df: np.ndarray
    q_p: np.ndarray
    df: np.ndarray
    converged: np.ndarray
    qprofile: bool = False
    omitted: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.k)

    def __post_init__(self):
        freeze_arrays(self)

    def _frame(self) -> pd.DataFrame:
        cols: dict[str, Any] = {"k": self.k}
        for j, name in enumerate(self.names):
            cols[f"estimate[{name}]"] = self.coef[:, j]
            cols[f"se[{name}]"] = self.coef_se[:, j]
            cols[f"p[{name}]"] = self.coef_p[:, j]
        for key in ("tau2", "se_tau2", "tau2_ci_lb", "tau2_ci_ub", "i2", "h2", "q", "q_df",
                    "q_p", "qm", "qm_df", "qm_p", "converged"):
            cols[key] = getattr(self, key)
        if self.omitted is not None:
            cols["omitted"] = self.omitted
        return pd.DataFrame(cols)

    def to_frame(self) -> pd.DataFrame:
        """One row per meta-regression: k, τ², I², H², Q_E, Q_M and each coefficient
        (``estimate[name]``, ``se[name]``, ``p[name]``)."""
        return super().to_frame()

    def predict(self, X) -> dict[str, np.ndarray]:
        """Predictions at design rows ``X`` ((m, p), intercept included): arrays
        (batch, m) ``pred, se, ci_lb, ci_ub, pi_lb, pi_ub``."""
        return engine.predict(self.coef, self.vcov, self.tau2, X, test=self.test,
                              level=self.level, df=self.df)

    def _display(self) -> Display:
        n = len(self)
        methods = (("τ² estimator", method_text(self.method)),
                   ("CI and tests", inference_text(self.test, None if self.test == "z"
                                                   else "t(k − p) in each row")),
                   ("Test of moderators", "F in each row" if self.test != "z" else "Wald χ²"),
                   ("Coefficients", ", ".join(self.names)))
        rows = [("Converged", f"{int(np.count_nonzero(self.converged))} of {n}")]
        if self.omitted is not None:
            om = np.asarray(self.omitted)
            rows.append(("Omitted (nan_policy='omit')",
                         f"{int(om.sum())} studies in {int(np.count_nonzero(om))} of {n} rows"))
        for j, name in enumerate(self.names):
            c = self.coef[:, j]
            rows.append((name, f"median {num(np.nanmedian(c))}, range "
                               f"[{num(np.nanmin(c))}, {num(np.nanmax(c))}]"))
        rows.append(("τ²", f"median {num(np.nanmedian(self.tau2))}"))
        rows.append(("Test of moderators", f"p < 0.05 in {int(np.count_nonzero(self.qm_p < 0.05))} "
                                           f"of {n} rows"))
        return Display(f"Mixed-effects meta-regressions: {n} rows", methods, (Lines(tuple(rows)),))


def batch_design(mods, B: int, k: int):
    """(X, names) for ``pool_many(mods=...)``: an intercept and the moderators,
    shared ((k,), (k, q), DataFrame) or one design per row ((B, k, q))."""
    if isinstance(mods, (pd.DataFrame, pd.Series, Mapping)):
        X = design_matrix(mods, k)
        return X.to_numpy(), tuple(X.columns)
    try:
        a = np.asarray(mods, dtype=float)
    except (TypeError, ValueError):
        raise InputError("mods: could not read as numbers; expected an array of moderators "
                         "or a DataFrame") from None
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim == 2:
        if a.shape[0] != k:
            raise InputError(f"mods: got {a.shape[0]} rows; expected one per study (k = {k}), "
                             "or a (batch, k, q) array for one design per row")
        X = np.column_stack([np.ones(k), a])
    elif a.ndim == 3:
        if a.shape[:2] != (B, k):
            raise InputError(f"mods: got shape {a.shape}; expected (batch, k, q) = ({B}, {k}, q)")
        X = np.concatenate([np.ones((B, k, 1)), a], axis=2)
    else:
        raise InputError(f"mods: got an array of shape {a.shape}; expected (k,), (k, q) or "
                         "(batch, k, q)")
    q = X.shape[-1] - 1
    names = ("intrcpt",) + (("mod",) if q == 1 else tuple(f"mod{j + 1}" for j in range(q)))
    return X, names


def pool_many_regression(y, v, mods, *, method="REML", test="z", level=0.95,
                         qprofile=False, btt=None, omitted=None) -> BatchRegressionResult:
    """Many meta-regressions in one engine call (see :func:`metaanalysis.pool_many`)."""
    B, k = y.shape
    X, names = batch_design(mods, B, k)
    out = engine.fit(y, v, X=X, method=method, test=test, level=level, qprofile=qprofile,
                     btt=btt)
    vals = {key: readonly(out[key], owned=True) for key in _BATCH_KEYS}
    return BatchRegressionResult(method=method, test=test, level=float(level), names=names,
                                 qprofile=qprofile, omitted=omitted, **vals)
