"""Result of :func:`metaanalysis.pool_mv`: :class:`MVResult` (immutable).

It carries metafor's numbers (coefficients, variance components, QE, QM,
log-likelihood and information criteria), prints every method choice
(random-effects structure, estimator, sampling correlation, tests) and gives
predictions, contrasts, Wald tests and cluster-robust copies of itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from metaanalysis.formatting import ci, level_text, num, p_text, pval, stat_text
from metaanalysis.frozen import FrameField, freeze_arrays
from metaanalysis.models import mv_fit, mv_inference
from metaanalysis.models.mv_structures import STRUCTURE_NAMES
from metaanalysis.results.display import Display, Displayed, Lines, Table

__all__ = ["MVModel", "MVResult", "build_result"]

_EPS = np.finfo(float).eps * 10  # metafor sets variance components below 10·eps to 0


@dataclass(frozen=True)
class MVModel:
    """The fitted model's internals (structure, per-study blocks, θ)."""

    structure: Any
    groups: tuple
    rows: tuple
    k: int
    p: int
    logdet_xtx: float
    theta: np.ndarray
    coding: Any
    v_text: str
    reml: bool

    @property
    def codes(self) -> np.ndarray:
        out = np.zeros(self.k, int)
        for g in self.groups:
            out[g.idx] = g.lev
        return out

    def marginal_blocks(self) -> list:
        """``M_j = V_j + R_j(θ)`` of every study, in the order of ``rows``."""
        where = {}
        for g in self.groups:
            R, _ = self.structure.blocks(self.theta, g.lev)
            M = g.V + R
            for i, first in enumerate(g.idx[:, 0]):
                where[int(first)] = M[i]
        return [where[int(r[0])] for r in self.rows]


@dataclass(frozen=True, eq=False, repr=False)
class MVResult(Displayed):
    """A multilevel / multivariate model (metafor ``rma.mv``), immutable.

    ``coef`` has columns ``estimate, se, stat, p, ci_lb, ci_ub, df`` (``df``
    NaN for z tests).  ``sigma2`` (three-level: between studies, between
    estimates), ``tau2`` and ``rho`` (UN: lower triangle, column-major) are
    arrays.  ``df`` is the t degrees of freedom (``k − p``; CR1: clusters −
    p; ``None`` for z and for CR2, whose df are per coefficient in ``coef``).
    ``q_m_df`` is ``(df1, df2)`` with ``df2 = None`` for χ².  Arrays are read-only;
    the DataFrames (``coef``, ``vcov``, ``fit_stats``, ``design``) are new copies on
    every access.
    """

    coef: pd.DataFrame = FrameField(required=True)
    vcov: pd.DataFrame = FrameField(required=True)
    k: int
    p: int
    n_studies: int
    struct: str | None
    levels: tuple
    method: str
    test: str
    level: float
    sigma2: np.ndarray
    tau2: np.ndarray
    rho: np.ndarray
    df: float | None
    q_e: float
    q_e_df: int
    q_e_p: float
    q_m: float
    q_m_df: tuple
    q_m_p: float
    btt: tuple
    loglik: float
    deviance: float
    aic: float
    bic: float
    aicc: float
    fit_stats: pd.DataFrame = FrameField(required=True)
    parms: int
    converged: bool
    iterations: int
    sampling: str
    yi: np.ndarray = field(repr=False)
    vi: np.ndarray = field(repr=False)
    study: np.ndarray = field(repr=False)
    time: np.ndarray | None = field(repr=False)
    design: pd.DataFrame = FrameField(required=True)
    vcov_model: np.ndarray = field(repr=False)
    notes: tuple = ()
    robust_type: str | None = None
    n_clusters: int | None = None
    fitted_model: MVModel | None = field(default=None, repr=False, compare=False)
    cr2_terms: tuple | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        freeze_arrays(self)

    # ------------------------------------------------------------------ inference
    @property
    def intercept_only(self) -> bool:
        return list(self.coef.index) == ["intrcpt"]

    def predict(self, newmods=None, tau2_levels=None) -> pd.DataFrame:
        """Predicted means with confidence and prediction intervals.

        Parameters
        ----------
        newmods : DataFrame, dict or array, optional
            New moderator values: columns of ``mods`` (coded like the fit), or
            design values without the intercept column.  ``None``: fitted
            values (or, without moderators, the pooled mean per time point).
        tau2_levels : value or sequence, optional
            Time point(s) whose τ² enters the prediction interval when the
            structure has one τ² per time point (HCS, HAR, UN, DIAG); without
            them the interval is NaN, as in metafor.

        Returns
        -------
        DataFrame
            ``pred, se, ci_lb, ci_ub, pi_lb, pi_ub`` (and ``df`` for t tests,
            ``tau2_level`` when used).
        """
        return mv_inference.predict(self, newmods, tau2_levels)

    def robust(self, cluster=None, type: str = "CR2") -> MVResult:
        """Cluster-robust inference: a copy with sandwich standard errors.

        ``type="CR2"``: bias-reduced sandwich with Satterthwaite t tests and
        the HTZ Wald test (clubSandwich; Pustejovsky & Tipton 2018).
        ``type="CR1"``: metafor ``robust()`` (factor n/(n − p), t on n − p df).
        ``cluster`` defaults to ``study``; studies must be nested in clusters.
        """
        return mv_inference.robust(self, cluster, type)

    def contrast(self, C) -> pd.DataFrame:
        """Linear combinations of the coefficients (rows of ``C``, or
        ``{term: weight}`` mappings), e.g. 6 months minus 1 month."""
        return mv_inference.contrast(self, C)

    def wald_test(self, C) -> dict:
        """Joint test of ``C β = 0``: ``stat, df_num, df_denom, p, test``."""
        return mv_inference.wald_test(self, C)

    @property
    def G(self) -> pd.DataFrame:
        """Covariance matrix of the random effects over the time points."""
        st = self.fitted_model.structure
        if not self.levels:
            return pd.DataFrame()
        G, _ = st.G(self.fitted_model.theta)
        return pd.DataFrame(G, index=list(self.levels), columns=list(self.levels))

    def variance_components(self) -> pd.DataFrame:
        """One row per variance component / correlation: name, estimate, sqrt."""
        st = self.fitted_model.structure
        nat = np.concatenate([self.sigma2, self.tau2]) if self.struct is None else self.tau2
        names = st.names()
        rows = [(n, float(x), math.sqrt(x)) for n, x in zip(names, nat)]
        if self.struct is not None and st.n_cor:
            rows += [(n, float(r), math.nan) for n, r in zip(names[st.n_var:], self.rho)]
        return pd.DataFrame(rows, columns=["component", "estimate", "sqrt"])

    # ------------------------------------------------------------------ display
    def _methods(self) -> list[tuple[str, str]]:
        if self.struct is None:
            random = "~ 1 | study/estimate (three-level: σ² between studies, σ² within studies)"
        else:
            random = (f"~ time | study, struct {self.struct}: {STRUCTURE_NAMES[self.struct]}; "
                      f"{len(self.levels)} time points")
        est = ("REML (restricted log-likelihood incl. ½·log|X'X|, as metafor)" if self.method == "REML"
               else "ML (maximum likelihood)")
        if self.robust_type == "CR2":
            tests = (f"cluster-robust CR2 (clubSandwich), Satterthwaite t, HTZ Wald test; "
                     f"{self.n_clusters} clusters")
        elif self.robust_type == "CR1":
            tests = (f"cluster-robust CR1 (metafor robust), t({num(self.df, 0)}); "
                     f"{self.n_clusters} clusters")
        elif self.test == "t":
            tests = f"t({num(self.df, 0)}) for coefficients, F for moderators"
        else:
            tests = "z for coefficients, χ² for moderators"
        return [("Random effects", random), ("Sampling covariance", self.sampling),
                ("Estimator", est), ("Tests", tests)]

    def _title(self) -> str:
        return (f"Multilevel random-effects model (as metafor rma.mv): k = {self.k} estimates "
                f"in {self.n_studies} studies")

    def method_lines(self) -> list[str]:
        """Every method choice, one line each."""
        return [self._title()] + [f"{label}: {text}" for label, text in self._methods()]

    def _display(self) -> Display:
        lv = level_text(self.level)
        rows = [("Fit", f"logLik = {num(self.loglik)}, deviance = {num(self.deviance)}, "
                        f"AIC = {num(self.aic)}, BIC = {num(self.bic)}, AICc = {num(self.aicc)}"),
                ("Test for residual heterogeneity",
                 f"{stat_text(self.q_e, self.q_e_df, 'QE')}, {p_text(self.q_e_p)}")]
        d1, d2 = self.q_m_df
        dfs = num(d1, 0) if d2 is None else f"{num(d1, 0)}, {num(d2, 2 if d2 % 1 else 0)}"
        rows.append((f"Test of moderators ({', '.join(self.btt)})",
                     f"{'QM' if d2 is None else 'F'}({dfs}) = {num(self.q_m, 2)}, "
                     f"{p_text(self.q_m_p)}"))
        vc = self.variance_components()
        comps = pd.DataFrame(
            {"estimate": vc["estimate"].map(num),
             "sqrt": ["" if math.isnan(x) else num(x) for x in vc["sqrt"]]},
        ).set_axis(pd.Index(vc["component"], name="variance component"))
        coef = FrameField.peek(self, "coef")
        t = not coef["df"].isna().all()
        table = {"estimate": coef["estimate"].map(num), "se": coef["se"].map(num),
                 "t" if t else "z": coef["stat"].map(lambda x: num(x, 2)),
                 "p": coef["p"].map(pval),
                 f"{lv} CI": [ci(a, b) for a, b in zip(coef["ci_lb"], coef["ci_ub"])]}
        if t:
            table["df"] = [num(d, 1 if d % 1 else 0) for d in coef["df"]]
        coefs = pd.DataFrame(table).set_axis(pd.Index([str(n) for n in coef.index],
                                                      name="coefficient"))
        return Display(self._title(), tuple(self._methods()),
                       (Lines(tuple(rows)), Table("", comps), Table("", coefs)),
                       tuple(self.notes))

    def _frame(self) -> pd.DataFrame:
        out = FrameField.peek(self, "coef").copy()
        out.attrs.update({"struct": self.struct, "method": self.method, "test": self.test,
                          "sampling": self.sampling, "robust": self.robust_type})
        return out

    def to_frame(self) -> pd.DataFrame:
        """The coefficient table, with the method choices in ``attrs``."""
        return super().to_frame()


def build_result(model: MVModel, best: dict, *, y, vdiag, study, time, X, method, test,
                 level, notes) -> MVResult:
    """Assemble the :class:`MVResult` from the optimum ``best``."""
    st = model.structure
    k, p = model.k, model.p
    final = mv_fit.evaluate(model.theta, st, model.groups, k, p, model.logdet_xtx,
                            reml=model.reml)
    nat = st.natural(model.theta)
    nv = st.n_var
    nat[:nv] = np.where(nat[:nv] <= _EPS, 0.0, nat[:nv])
    sigma2, tau2, rho = st.split(nat)
    beta, vb = final["beta"], final["vb"]
    names = list(X.columns)
    df = float(k - p) if test == "t" else None
    coef = mv_inference.coef_table(names, beta, vb, df, level)
    intercept = names[0] == "intrcpt"
    btt = names[1:] if (intercept and p > 1) else names
    sel = [names.index(t) for t in btt]
    b = beta[sel]
    Q = float(b @ np.linalg.solve(vb[np.ix_(sel, sel)], b))
    m = len(sel)
    if test == "t":
        q_m, q_m_df, q_m_p = Q / m, (float(m), float(k - p)), float(stats.f.sf(Q / m, m, k - p))
    else:
        q_m, q_m_df, q_m_p = Q, (float(m), None), float(stats.chi2.sf(Q, m))
    _, q_e, logdet_v, _ = mv_fit.fixed_effects(model.groups, p)
    q_e_df = k - p
    q_e_p = float(stats.chi2.sf(q_e, q_e_df)) if q_e_df > 0 else 1.0
    parms = p + st.n_var + st.n_cor
    ll_ml, ll_reml = final["ll_ml"], final["ll_reml"]
    ll_qe = -0.5 * k * mv_fit.LOG2PI - 0.5 * logdet_v
    n_ml, n_reml = k, k - p
    fs = {}
    for col, ll, n, dev in (("ML", ll_ml, n_ml, -2 * (ll_ml - ll_qe)), ("REML", ll_reml, n_reml, -2 * ll_reml)):
        aicc_n = max(n, parms + 2)
        fs[col] = [ll, dev, -2 * ll + 2 * parms, -2 * ll + parms * math.log(n),
                   -2 * ll + 2 * parms * aicc_n / (aicc_n - parms - 1)]
    fit_stats = pd.DataFrame(fs, index=["ll", "dev", "AIC", "BIC", "AICc"])
    col = fit_stats[method]
    return MVResult(
        coef=coef, vcov=pd.DataFrame(vb, index=names, columns=names), k=k, p=p,
        n_studies=len(model.rows), struct=getattr(st, "struct", None),
        levels=tuple(st.levels), method=method, test=test, level=level, sigma2=sigma2,
        tau2=tau2, rho=rho, df=df, q_e=q_e, q_e_df=q_e_df, q_e_p=q_e_p, q_m=q_m,
        q_m_df=q_m_df, q_m_p=q_m_p, btt=tuple(btt), loglik=float(col["ll"]),
        deviance=float(col["dev"]), aic=float(col["AIC"]), bic=float(col["BIC"]),
        aicc=float(col["AICc"]), fit_stats=fit_stats, parms=parms,
        converged=bool(best["converged"]), iterations=int(best["iterations"]),
        sampling=model.v_text, yi=y, vi=np.asarray(vdiag, float), study=study, time=time,
        design=X, vcov_model=vb, notes=notes, fitted_model=model)

