"""Small-study effects and publication bias.

Regression tests (Egger, PET and PEESE), the rank correlation test (Begg),
trim and fill and fail-safe N.  Each takes a fitted
:class:`~metaanalysis.results.pool_result.PoolResult` and re-uses its data and its method
choices (τ² estimator, test, level).  Every test warns
(:class:`~metaanalysis.errors.StatisticalWarning`) when there are fewer than 10
studies, where these tests have too little power to mean anything (Sterne et
al. 2011, BMJ 343:d4002).

References
----------
Egger M, Davey Smith G, Schneider M, Minder C (1997). Bias in meta-analysis
detected by a simple, graphical test. *BMJ* 315:629-634.

Sterne JAC, Egger M (2005). Regression methods to detect publication and other
bias in meta-analysis. In Rothstein, Sutton & Borenstein (eds), *Publication
Bias in Meta-Analysis*, 99-110 (the mixed-effects version, "rma").

Stanley TD, Doucouliagos H (2014). Meta-regression approximations to reduce
publication selection bias. *Res Synth Methods* 5:60-78.

Begg CB, Mazumdar M (1994). Operating characteristics of a rank correlation
test for publication bias. *Biometrics* 50:1088-1101.

Duval S, Tweedie R (2000). Trim and fill: a simple funnel-plot-based method of
testing and adjusting for publication bias in meta-analysis. *Biometrics*
56:455-463; and A nonparametric "trim and fill" method of accounting for
publication bias in meta-analysis. *JASA* 95:89-98.

Rosenthal R (1979). The "file drawer problem" and tolerance for null results.
*Psychol Bull* 86:638-641.

Orwin RG (1983). A fail-safe N for effect size in meta-analysis. *J Educ Stat*
8:157-159.

Rosenberg MS (2005). The file-drawer problem revisited: a general weighted method
for calculating fail-safe numbers in meta-analysis. *Evolution* 59:464-468.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from metaanalysis import engine
from metaanalysis.errors import InputError, StatisticalWarning
from metaanalysis.formatting import (
    ci,
    inference_text,
    level_text,
    method_text,
    num,
    p_text,
    pval,
    stat_text,
)
from metaanalysis.frozen import FrameField, freeze_arrays
from metaanalysis.results.display import Display, Displayed, Lines

MIN_K = 10

_PREDICTORS = {
    "sei": "standard error",
    "vi": "sampling variance",
    "ni": "sample size",
    "ninv": "inverse sample size",
}


def _data(res, what: str):
    """Observed yi, vi (finite only) of a pooled result."""
    try:
        y = np.asarray(res.yi, dtype=float)
        v = np.asarray(res.vi, dtype=float)
    except AttributeError:
        raise InputError(f"{what} expects a pooled result (PoolResult from ma.pool), "
                         f"got {type(res).__name__}") from None
    keep = np.isfinite(y) & np.isfinite(v)
    return y[keep], v[keep], keep


def _warn_small_k(k: int, what: str) -> list[str]:
    """Warn when k < MIN_K; return the notes of the result (the caution, or none)."""
    if k < MIN_K:
        msg = (f"{what} with k = {k} studies (< {MIN_K}): the test has too little power "
               "to rule small-study effects in or out")
        warnings.warn(msg, StatisticalWarning, stacklevel=3)
        return ["Caution: " + msg + "."]
    return []


# ---------------------------------------------------------------------------
# Regression tests: Egger (rma / lm), PET, PEESE
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class RegressionTestResult(Displayed):
    """Result of :func:`egger_test` or :func:`peese` (immutable).

    ``stat`` and ``p`` test the slope on the predictor (z, or t on ``df``
    degrees of freedom); ``limit_estimate`` is the intercept, i.e. the effect
    predicted for a study with predictor 0 (infinite precision: PET for
    ``predictor="sei"``, PEESE for ``predictor="vi"``), with its ``limit_ci_lb,
    limit_ci_ub`` interval.

    The fitted line is part of the result, so a funnel plot draws it without
    refitting: ``fitted(x) = intercept + slope · x`` with ``intercept`` (=
    ``limit_estimate``), ``intercept_se`` (= ``limit_se``), ``slope``,
    ``slope_se``, and ``x`` the predictor value of each study (``yi`` its
    effect), in the order of the pooled result's studies (read-only arrays).

    Examples
    --------
    >>> import metaanalysis as ma
    >>> res = ma.pool([0.1, 0.3, 0.35, 0.2, 0.6, 0.4, 0.1, 0.5, 0.2, 0.3],
    ...               [0.01, 0.02, 0.015, 0.03, 0.08, 0.05, 0.01, 0.06, 0.02, 0.04])
    >>> eg = ma.egger_test(res, model="lm")
    >>> bool(eg.fitted(0.0) == eg.intercept), eg.x.shape
    (True, (10,))
    >>> print(eg.summary().splitlines()[0])
    Egger's regression test (k = 10)
    """

    name: str
    model: str
    predictor: str
    method: str
    test: str
    level: float
    k: int
    stat: float
    p: float
    df: float | None
    slope: float
    slope_se: float
    limit_estimate: float
    limit_se: float
    limit_ci_lb: float
    limit_ci_ub: float
    tau2: float
    notes: tuple[str, ...] = ()
    x: np.ndarray = field(default=None, repr=False, compare=False)
    yi: np.ndarray = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        freeze_arrays(self)

    @property
    def intercept(self) -> float:
        """Intercept of the fitted line (the limit estimate)."""
        return self.limit_estimate

    @property
    def intercept_se(self) -> float:
        """Standard error of the intercept."""
        return self.limit_se

    def fitted(self, x):
        """The fitted line ``intercept + slope · x`` at predictor values ``x``."""
        return self.limit_estimate + self.slope * np.asarray(x, dtype=float)

    def _display(self) -> Display:
        if self.model == "lm":
            methods = [("Model", "weighted linear regression with a multiplicative residual "
                                 "variance (Egger et al. 1997)"),
                       ("Tests", f"t({num(self.df, 0)})")]
        else:
            methods = [("Model", "mixed-effects meta-regression (Sterne & Egger 2005)"),
                       ("τ² estimator", method_text(self.method)),
                       ("CI and tests", inference_text(self.test, self.df))]
        methods.insert(1, ("Predictor", f"{_PREDICTORS.get(self.predictor, self.predictor)} "
                                        f"({self.predictor})"))
        rows = [("Test for funnel plot asymmetry",
                 f"{stat_text(self.stat, self.df)}, {p_text(self.p)}"),
                ("Slope", f"{num(self.slope)} (SE {num(self.slope_se)})"),
                ("Limit estimate (predictor → 0)",
                 f"{num(self.limit_estimate)} (SE {num(self.limit_se)}), "
                 f"{level_text(self.level)} CI {ci(self.limit_ci_lb, self.limit_ci_ub)}")]
        if self.model != "lm" and self.method != "EE":
            rows.append(("Residual heterogeneity", f"τ² = {num(self.tau2)}"))
        return Display(f"{self.name} (k = {self.k})", tuple(methods), (Lines(tuple(rows)),),
                       self.notes)

    def _frame(self) -> pd.DataFrame:
        keys = ("model", "predictor", "k", "stat", "p", "df", "slope", "slope_se",
                "limit_estimate", "limit_se", "limit_ci_lb", "limit_ci_ub")
        return pd.DataFrame([{k: getattr(self, k) for k in keys}], index=[self.name])

    def to_frame(self) -> pd.DataFrame:
        """One-row DataFrame of the numbers (``attrs["description"]``: the method choices)."""
        return super().to_frame()


def _predictor_values(res, predictor: str, v: np.ndarray, keep: np.ndarray) -> np.ndarray:
    if predictor == "sei":
        return np.sqrt(v)
    if predictor == "vi":
        return v
    if predictor in ("ni", "ninv"):
        ni = getattr(res, "ni", None)
        if ni is None:
            raise InputError(f"predictor={predictor!r} needs sample sizes, but the result has "
                             "no ni (pool an effect_sizes DataFrame with an 'ni' column)")
        ni = np.asarray(ni, dtype=float)[keep]
        return ni if predictor == "ni" else 1.0 / ni
    raise InputError(f"predictor={predictor!r} is not known; expected one of "
                     f"{', '.join(_PREDICTORS)}")


def _regression_test(res, model: str, predictor: str, name: str) -> RegressionTestResult:
    if model not in ("rma", "lm"):
        raise InputError(f"model={model!r} is not known; expected 'rma' (mixed-effects "
                         "meta-regression) or 'lm' (weighted regression)")
    y, v, keep = _data(res, name)
    k = y.size
    if k < 3:
        raise InputError(f"{name} needs at least 3 studies, got k = {k}")
    notes = _warn_small_k(k, name)
    x = _predictor_values(res, predictor, v, keep)
    X = np.column_stack([np.ones(k), x])
    level = float(getattr(res, "level", 0.95))
    if model == "lm":
        # Weighted least squares with an estimated multiplicative dispersion:
        # exactly a common-effect meta-regression with a Knapp-Hartung factor.
        method, test = "lm", "t"
        out = engine.fit(y, v, X=X, method="EE", test="knha", level=level, qprofile=False)
        df: float | None = float(k - 2)
    else:
        method = getattr(res, "method", "REML")
        method = "EE" if method == "FE" else method
        if method not in engine.METHODS:
            raise InputError(f"{name} with model='rma' refits the model with the τ² estimator of "
                             f"the result ({method!r}), which the engine does not offer; "
                             f"pool with one of {', '.join(engine.METHODS)} or use model='lm'")
        test = getattr(res, "test", "z")
        out = engine.fit(y, v, X=X, method=method, test=test, level=level, qprofile=False)
        df = float(k - 2) if test != "z" else None
    return RegressionTestResult(
        name=name, model=model, predictor=predictor, method=method, test=test, level=level,
        k=k, stat=float(out["coef_stat"][0, 1]), p=float(out["coef_p"][0, 1]), df=df,
        slope=float(out["coef"][0, 1]), slope_se=float(out["coef_se"][0, 1]),
        limit_estimate=float(out["coef"][0, 0]), limit_se=float(out["coef_se"][0, 0]),
        limit_ci_lb=float(out["coef_ci_lb"][0, 0]), limit_ci_ub=float(out["coef_ci_ub"][0, 0]),
        tau2=float(out["tau2"][0]), notes=tuple(notes), x=x, yi=y)


def egger_test(res, model: str = "rma", predictor: str = "sei") -> RegressionTestResult:
    """Regression test for funnel plot asymmetry (Egger et al. 1997).

    Parameters
    ----------
    res : PoolResult
        A pooled result; its studies, τ² estimator, test and level are re-used.
    model : {"rma", "lm"}
        ``"rma"``: mixed-effects meta-regression with the predictor as moderator,
        using the τ² estimator and test of ``res`` (Sterne & Egger 2005; metafor's
        ``regtest`` default).  ``"lm"``: the classic weighted regression of
        ``yi`` on the standard error with weights ``1/vi`` and a multiplicative
        residual variance, t test on k − 2 df (Egger et al. 1997; identical to
        regressing the standard normal deviate on precision).
    predictor : {"sei", "vi", "ni", "ninv"}
        Moderator: standard error (Egger/PET), variance (PEESE), sample size or
        its inverse.

    Returns
    -------
    RegressionTestResult
        ``.stat, .p, .df`` (None for z), ``.limit_estimate`` (the intercept:
        PET estimate for ``predictor="sei"``).

    Examples
    --------
    >>> import metaanalysis as ma
    >>> res = ma.pool([0.1, 0.3, 0.35, 0.2, 0.6], [0.01, 0.02, 0.015, 0.03, 0.08])
    >>> eg = ma.egger_test(res, model="lm")  # doctest: +SKIP
    >>> eg.df  # doctest: +SKIP
    3.0
    """
    label = "Egger's regression test" if predictor == "sei" else "Regression test"
    return _regression_test(res, model, predictor, label)


def peese(res, model: str = "lm") -> RegressionTestResult:
    """PEESE: precision-effect estimate with standard error (Stanley & Doucouliagos 2014).

    Meta-regression of the effect sizes on their sampling variances; the
    intercept (``limit_estimate``) is the effect corrected for small-study
    effects.  Stanley & Doucouliagos fit it by weighted least squares with a
    multiplicative error (``model="lm"``, the default); ``model="rma"`` uses the
    mixed-effects model with the τ² estimator of ``res``.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> res = ma.pool([0.1, 0.3, 0.35, 0.2, 0.6], [0.01, 0.02, 0.015, 0.03, 0.08])
    >>> ma.peese(res).limit_estimate  # doctest: +SKIP
    """
    return _regression_test(res, model, "vi", "PEESE")


# ---------------------------------------------------------------------------
# Begg and Mazumdar's rank correlation test
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class RankTestResult(Displayed):
    """Result of :func:`begg_test`: Kendall's ``tau`` (τ-b) and its ``p``-value."""

    k: int
    tau: float
    p: float
    exact: bool
    notes: tuple[str, ...] = ()

    def _display(self) -> Display:
        how = ("exact null distribution of Kendall's statistic" if self.exact
               else "normal approximation with the tie-corrected variance")
        methods = (("Statistic", "Kendall's τ-b between the standardized deviates (from the "
                                 "common-effect estimate) and the sampling variances"),
                   ("p-value", how))
        rows = (("Rank correlation", f"τ = {num(self.tau)}, {p_text(self.p)}"),)
        return Display(f"Begg & Mazumdar rank correlation test (k = {self.k})", methods,
                       (Lines(rows),), self.notes)

    def _frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"k": self.k, "tau": self.tau, "p": self.p, "exact": self.exact}])


def begg_test(res) -> RankTestResult:
    """Rank correlation test for funnel plot asymmetry (Begg & Mazumdar 1994).

    Kendall's tau between the standardized deviates
    ``(yi - θ) / sqrt(vi - 1/Σw)``, θ the common-effect (inverse-variance)
    estimate and ``1/Σw`` its variance, and the sampling variances ``vi``.  The
    p-value is exact (null distribution of Kendall's statistic) for any k when
    there are no ties; with ties, the normal approximation with the
    tie-corrected variance (Kendall 1970) — as metafor's ``ranktest``, which
    calls R's ``cor.test(..., exact = TRUE)`` (dat.landenberger2005, k = 58:
    p = 0.002408, where the normal approximation gives 0.002596).

    Examples
    --------
    >>> import metaanalysis as ma
    >>> res = ma.pool([0.1, 0.3, 0.35, 0.2, 0.6], [0.01, 0.02, 0.015, 0.03, 0.08])
    >>> ma.begg_test(res).tau  # doctest: +SKIP
    """
    y, v, _ = _data(res, "Begg's test")
    k = y.size
    if k < 3:
        raise InputError(f"Begg's test needs at least 3 studies, got k = {k}")
    notes = _warn_small_k(k, "Begg's test")
    # the common-effect estimate and its variance, from the engine
    ee = engine.fit(y, v, method="EE", qprofile=False, outputs=("estimate", "se"))
    theta, vb = float(ee["estimate"][0]), float(ee["se"][0]) ** 2
    z = (y - theta) / np.sqrt(v - vb)
    exact = np.unique(z).size == k and np.unique(v).size == k
    out = stats.kendalltau(z, v, method="exact" if exact else "asymptotic")
    return RankTestResult(k=k, tau=float(out.statistic), p=float(out.pvalue), exact=exact,
                          notes=tuple(notes))


# ---------------------------------------------------------------------------
# Trim and fill
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class TrimFillResult(Displayed):
    """Result of :func:`trim_and_fill` (immutable).

    ``k0`` studies estimated missing on ``side``; ``pooled`` is the
    :class:`PoolResult` over observed + filled studies (same τ² estimator and
    test as the input); ``filled`` is a DataFrame (``label, yi, vi, sei``) of
    the imputed studies, for funnel plots (a new copy on every access).
    """

    k0: int
    side: str
    estimator: str
    side_chosen: str
    pooled: object
    filled: pd.DataFrame = FrameField(required=True)
    original: object = field(repr=False)
    iterations: int = 0
    notes: tuple[str, ...] = ()

    def _display(self) -> Display:
        pooled, original = self.pooled, self.original
        lv = level_text(pooled.level)
        methods = (("Estimator of missing studies", self.estimator),
                   ("Side", f"{self.side} ({self.side_chosen})"),
                   ("τ² estimator", method_text(pooled.method)),
                   ("CI and tests", inference_text(pooled.test, pooled.df)))
        rows = [("Estimated missing studies", f"{self.k0}")]
        for label, r in ((f"Observed studies (k = {original.k})", original),
                         (f"Observed + filled (k = {pooled.k})", pooled)):
            rows.append((label, f"estimate {num(r.estimate)}, {lv} CI {ci(r.ci_lb, r.ci_ub)}, "
                                f"τ² = {num(r.tau2)}"))
        from metaanalysis.effects.transforms import NATURAL_MEASURES, natural_label

        if pooled.measure in NATURAL_MEASURES:
            b = pooled.back_transform().iloc[0]
            rows.append((f"{natural_label(pooled.measure)} (observed + filled)",
                         f"{num(b['estimate'])}, {lv} CI {ci(b['ci_lb'], b['ci_ub'])}"))
        return Display(f"Trim and fill (Duval & Tweedie 2000), k = {original.k}", methods,
                       (Lines(tuple(rows)),), self.notes)

    def _frame(self) -> pd.DataFrame:
        rows = [{"k": r.k, "estimate": r.estimate, "se": r.se, "ci_lb": r.ci_lb,
                 "ci_ub": r.ci_ub, "tau2": r.tau2} for r in (self.original, self.pooled)]
        return pd.DataFrame(rows, index=["observed", "trim and fill"])

    def to_frame(self) -> pd.DataFrame:
        """Estimates before and after filling, one row each."""
        return super().to_frame()


def _k0_estimate(centered: np.ndarray, estimator: str) -> float:
    """L0 or R0 of Duval & Tweedie (2000) from deviations from the current centre,
    missing studies assumed on the left (the side with negative deviations)."""
    k = centered.size
    ranks = np.empty(k)
    ranks[np.argsort(np.abs(centered), kind="stable")] = np.arange(1, k + 1)
    signed = np.sign(centered) * ranks
    if estimator == "L0":
        sr = signed[signed > 0].sum()  # Wilcoxon statistic T_n
        k0 = (4.0 * sr - k * (k + 1)) / (2.0 * k - 1.0)
    else:  # R0: length of the rightmost run of positive ranks, minus one
        if not np.any(signed > 0):  # no study right of the centre (e.g. all identical)
            return 0.0
        neg = -signed[signed < 0]
        k0 = (k - (neg.max() if neg.size else 0)) - 1.0
    return max(0.0, float(k0))


def trim_and_fill(res, estimator: str = "L0", side: str | None = None,
                  maxiter: int = 100) -> TrimFillResult:
    """Trim and fill analysis (Duval & Tweedie 2000).

    Studies are sorted so that the suspected missing ones lie on the left; the
    ``k0`` most extreme studies on the other side are trimmed, the centre is
    re-estimated with the same model as ``res`` and ``k0`` re-estimated (L0 or
    R0) until it no longer changes.  The trimmed studies are then mirrored
    about the centre and the model is refitted on observed + filled studies.

    Parameters
    ----------
    res : PoolResult
        The model whose τ² estimator and test are used throughout.
    estimator : {"L0", "R0"}
        Estimator of the number of missing studies.
    side : {"left", "right"}, optional
        Side on which studies are missing.  By default chosen as metafor does:
        from the sign of the slope of the Egger-type regression of ``yi`` on the
        standard errors with the τ² estimator of ``res`` (negative slope →
        missing on the right, otherwise left).
    maxiter : int
        Maximum number of trim-and-fill iterations.

    Returns
    -------
    TrimFillResult
        ``.k0, .side, .pooled`` (PoolResult over observed + filled), ``.filled``.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> res = ma.pool([0.1, 0.3, 0.35, 0.2, 0.6], [0.01, 0.02, 0.015, 0.03, 0.08], method="DL")
    >>> ma.trim_and_fill(res).k0  # doctest: +SKIP
    """
    from metaanalysis.models.pooling import pool

    if estimator not in ("L0", "R0"):
        raise InputError(f"estimator={estimator!r} is not known; expected 'L0' or 'R0'")
    if side not in (None, "left", "right"):
        raise InputError(f"side={side!r} is not known; expected 'left', 'right' or None")
    y, v, keep = _data(res, "Trim and fill")
    k = y.size
    if k < 3:
        raise InputError(f"trim and fill needs at least 3 studies, got k = {k}")
    notes = _warn_small_k(k, "Trim and fill")
    method = getattr(res, "method", "REML")
    test = getattr(res, "test", "z")
    level = float(getattr(res, "level", 0.95))
    if side is None:
        # metafor: the sign of the slope of rma(yi, vi, mods = sqrt(vi)) with the fit's
        # own τ² estimator
        m = "EE" if method == "FE" else method
        if np.ptp(v) == 0:  # equal variances: no slope to estimate
            side = "left"
            side_chosen = "left: every study has the same variance, so there is no Egger slope"
        else:
            slope = engine.fit(y, v, X=np.column_stack([np.ones(k), np.sqrt(v)]), method=m,
                               qprofile=False, outputs=("coef",))["coef"][0, 1]
            side = "right" if slope < 0 else "left"
            side_chosen = f"chosen from the sign of the Egger regression slope ({num(slope)})"
    else:
        side_chosen = "given"
    labels_all = getattr(res, "labels", None)
    labels = (np.asarray(labels_all, dtype=object)[keep] if labels_all is not None
              else np.array([f"study {i + 1}" for i in range(k)], dtype=object))

    flip = -1.0 if side == "right" else 1.0
    yf = flip * y
    order = np.argsort(yf, kind="stable")
    ys, vs, ls = yf[order], v[order], labels[order]

    k0, iterations = 0, 0
    centre = np.nan
    for iterations in range(1, maxiter + 1):  # noqa: B007 -- the count is reported
        kept = k - k0
        fit = engine.fit(ys[None, :kept], vs[None, :kept], method=method, test=test,
                         level=level, qprofile=False)
        centre = float(np.asarray(fit["estimate"])[0])
        new = round(_k0_estimate(ys - centre, estimator))
        new = min(new, k - 1)
        if new == k0:
            break
        k0 = new
    else:
        notes.append(f"Trim and fill stopped after {maxiter} iterations without a stable k0.")

    if k0 > 0:
        fy = flip * (2.0 * centre - ys[k - k0:])
        fv = vs[k - k0:]
        fl = [f"filled {i + 1} (mirror of {lab})" for i, lab in enumerate(ls[k - k0:])]
    else:
        fy, fv, fl = np.empty(0), np.empty(0), []
    filled = pd.DataFrame({"label": fl, "yi": fy, "vi": fv, "sei": np.sqrt(fv)})
    all_labels = [str(x) for x in labels] + list(fl)
    pooled = pool(np.concatenate([y, fy]), np.concatenate([v, fv]), method=method, test=test,
                  level=level, labels=all_labels, measure=getattr(res, "measure", None))
    return TrimFillResult(k0=k0, side=side, estimator=estimator, side_chosen=side_chosen,
                          pooled=pooled, filled=filled, original=res, iterations=iterations,
                          notes=tuple(notes))


# ---------------------------------------------------------------------------
# Fail-safe N
# ---------------------------------------------------------------------------


@functools.total_ordering
@dataclass(frozen=True, eq=False, repr=False)
class FailSafeN(Displayed):
    """Fail-safe N (immutable): ``n``, the number of studies, with the method choices
    (``method, alpha, target, p, mean, k``).

    It behaves as the integer ``n`` where one is expected: ``int(fsn)``,
    ``fsn == 12``, ``fsn < 20``, ``range(fsn)``.
    """

    n: int
    method: str
    alpha: float
    target: float | None
    p: float | None
    mean: float | None
    k: int
    weighted: bool = False
    missing_mean: float = 0.0
    notes: tuple[str, ...] = ()

    def __int__(self) -> int:
        return self.n

    __index__ = __int__

    def __eq__(self, other):
        if isinstance(other, FailSafeN):
            return (self.n, self.method) == (other.n, other.method)
        if isinstance(other, (int, np.integer)) and not isinstance(other, bool):
            return self.n == int(other)
        return NotImplemented

    def __lt__(self, other):
        if isinstance(other, (FailSafeN, int, np.integer)):
            return self.n < int(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.n)

    def _display(self) -> Display:
        if self.method == "rosenthal":
            title = f"Fail-safe N (Rosenthal 1979): {self.n}"
            methods = (("Method", "Stouffer combination of the study z values; missing studies "
                                  "with z = 0"),
                       ("Significance", f"one-tailed alpha = {num(self.alpha, 2)}"))
            rows = ((f"Combined one-tailed p of the {self.k} observed studies", pval(self.p)),)
        elif self.method == "rosenberg":
            title = f"Fail-safe N (Rosenberg 2005): {self.n}"
            methods = (("Method", "weighted common-effect mean; missing studies with mean 0"),
                       ("Significance", f"two-tailed alpha = {num(self.alpha, 2)}"))
            rows = ((f"Weighted mean effect of the {self.k} observed studies",
                     f"{num(self.mean)}, {p_text(self.p)}"),)
        else:
            title = f"Fail-safe N (Orwin 1983): {self.n}"
            methods = (("Method", f"{'weighted' if self.weighted else 'unweighted'} mean"),
                       ("Target", f"{num(self.target)}; missing studies averaging "
                                  f"{num(self.missing_mean)}"))
            rows = ((f"Observed mean effect of the {self.k} studies", num(self.mean)),)
        return Display(title, methods, (Lines(rows),), self.notes)

    def _frame(self) -> pd.DataFrame:
        keys = ("n", "method", "alpha", "target", "p", "mean", "k", "weighted", "missing_mean")
        return pd.DataFrame([{key: getattr(self, key) for key in keys}])


def _whole(n: float) -> int:
    """Round up, unless n is a whole number up to rounding (metafor's rule)."""
    return round(n) if abs(n - round(n)) < 1.5e-8 else math.ceil(n)


def fail_safe_n(res, method: str = "rosenthal", *, alpha: float = 0.05,
                target: float | None = None, missing_mean: float = 0.0,
                weighted: bool = False) -> FailSafeN:
    """Fail-safe N: how many unpublished null studies would overturn the result.

    ``method="rosenthal"`` (Rosenthal 1979): the number of studies with z = 0
    that, added to the observed ones, make Stouffer's combined z
    ``Σ z_i / sqrt(k + N)`` fall to the one-tailed critical value, as in
    Rosenthal's paper (z = 1.645 for α = .05) and metafor's ``fsn``:
    ``N = ceil((Σ z_i)² / z²_{1-α} − k)`` with ``z_i = yi / sqrt(vi)``; N = 0
    when the combined one-tailed p-value is already ≥ α.

    ``method="orwin"`` (Orwin 1983): the number of studies averaging
    ``missing_mean`` that bring the mean effect down to ``target``:
    ``N = ceil(k (ȳ − target) / (target − missing_mean))``; ``ȳ`` is the
    unweighted mean (or the inverse-variance mean with ``weighted=True``) and
    ``target`` defaults to ``ȳ/2`` (an arbitrary choice; set it to an effect
    you would consider negligible).

    ``method="rosenberg"`` (Rosenberg 2005): the number of studies with effect 0
    and the average weight that make the common-effect (inverse-variance) mean
    non-significant at two-sided ``alpha``: ``N = k (z²/z²_{1−α/2} − 1)``, z the
    Wald statistic of the weighted mean, as metafor's ``fsn(type = "Rosenberg")``.

    Returns
    -------
    FailSafeN
        An ``int`` with ``.method, .alpha, .target, .p, .mean`` and ``summary()``.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> res = ma.pool([0.1, 0.3, 0.35, 0.2, 0.6], [0.01, 0.02, 0.015, 0.03, 0.08])
    >>> int(ma.fail_safe_n(res))  # doctest: +SKIP
    """
    method = str(method).lower()
    if method not in ("rosenthal", "orwin", "rosenberg"):
        raise InputError(f"method={method!r} is not known; expected 'rosenthal', 'orwin' or "
                         "'rosenberg'")
    if not (0 < alpha < 1):
        raise InputError(f"alpha must be between 0 and 1, got {alpha!r}")
    y, v, _ = _data(res, "Fail-safe N")
    k = y.size
    notes = _warn_small_k(k, "Fail-safe N")
    if method == "rosenthal":
        zsum = np.sum(y / np.sqrt(v))
        p = float(stats.norm.sf(abs(zsum) / math.sqrt(k)))  # one-tailed, observed direction
        zcrit = stats.norm.ppf(1.0 - alpha)
        n = _whole(max(0.0, zsum * zsum / zcrit**2 - k))
        return FailSafeN(n, method="rosenthal", alpha=alpha, target=None, p=p, mean=None,
                         k=k, weighted=False, missing_mean=0.0, notes=tuple(notes))
    if method == "rosenberg":
        # the common-effect (inverse-variance) mean and its z from the engine; N studies
        # of weight mean(w) and effect 0 bring z to the two-sided critical value:
        # N = k ((Σwy / z_{α/2})² − Σw)/Σw = k (z²/z²_{α/2} − 1)
        ee = engine.fit(y, v, method="EE", qprofile=False, outputs=("estimate", "se"))
        mean, se = float(ee["estimate"][0]), float(ee["se"][0])
        z = mean / se
        p = float(2 * stats.norm.sf(abs(z)))
        zcrit = stats.norm.isf(alpha / 2)
        n = _whole(max(0.0, k * (z * z / zcrit**2 - 1.0)))
        return FailSafeN(n, method="rosenberg", alpha=alpha, target=None, p=p, mean=mean,
                         k=k, weighted=True, missing_mean=0.0, notes=tuple(notes))
    if weighted:  # the inverse-variance mean, from the engine
        mean = float(engine.fit(y, v, method="EE", qprofile=False,
                                outputs=("estimate",))["estimate"][0])
    else:
        mean = float(np.mean(y))
    if target is None:
        target = mean / 2.0
    target = float(target)
    if np.sign(target) != np.sign(mean) and target != 0:
        target = -target  # as Orwin's method is stated for the direction observed
    denom = target - missing_mean
    if denom == 0:
        raise InputError(f"target ({target}) must differ from missing_mean ({missing_mean})")
    n = k * (mean - target) / denom
    n = 0 if not np.isfinite(n) or n <= 0 else _whole(n)
    return FailSafeN(n, method="orwin", alpha=alpha, target=target, p=None, mean=mean, k=k,
                     weighted=weighted, missing_mean=missing_mean, notes=tuple(notes))
