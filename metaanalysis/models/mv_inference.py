"""Inference on a fitted multilevel model: tests of the coefficients,
predictions with prediction intervals, contrasts, Wald tests and the
cluster-robust (CR1, CR2) variants of all of them.

Conventions are metafor's (``rma.mv``, ``predict.rma``, ``robust.rma.mv``):
prediction intervals add ``Σσ² + τ²_level`` to the variance of the
prediction and use the same critical value as the confidence interval;
with more than one τ² they need the time point (``tau2_levels``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from metaanalysis.errors import InputError
from metaanalysis.models import mv_robust
from metaanalysis.models.mv_design import apply_coding

__all__ = ["coef_table", "contrast", "contrast_matrix", "predict", "robust", "wald_test"]


def coef_table(names, beta, vb, df, level) -> pd.DataFrame:
    """Coefficient table; ``df`` is ``None`` (z), a number or one per coefficient (t)."""
    se = np.sqrt(np.diag(vb))
    stat = beta / se
    if df is None:
        p = 2 * stats.norm.sf(np.abs(stat))
        crit = stats.norm.isf((1 - level) / 2)
        dfs = np.full(beta.size, np.nan)
    else:
        dfs = np.broadcast_to(np.asarray(df, float), beta.shape)
        p = 2 * stats.t.sf(np.abs(stat), dfs)
        crit = stats.t.isf((1 - level) / 2, dfs)
    return pd.DataFrame({"estimate": beta, "se": se, "stat": stat, "p": p,
                         "ci_lb": beta - crit * se, "ci_ub": beta + crit * se, "df": dfs},
                        index=pd.Index(list(names), name="term"))


def contrast_matrix(res, C) -> np.ndarray:
    """Rows of weights on the coefficients: an array ``(q, p)``, a mapping
    ``{term: weight}`` or a list of such mappings."""
    names = list(res.coef.index)
    if isinstance(C, Mapping):
        C = [C]
    if isinstance(C, (list, tuple)) and C and all(isinstance(c, Mapping) for c in C):
        out = np.zeros((len(C), len(names)))
        for i, row in enumerate(C):
            for term, w in row.items():
                if term not in names:
                    raise InputError(f"contrast: {term!r} is not a coefficient; expected one of "
                                     f"{names}")
                out[i, names.index(term)] = float(w)
        return out
    out = np.atleast_2d(np.asarray(C, dtype=float))
    if out.shape[1] != len(names):
        raise InputError(f"contrast: got {out.shape[1]} weights; the model has {len(names)} "
                         f"coefficients {names}")
    return out


def _row_df(res, C) -> np.ndarray | None:
    """Degrees of freedom of linear combinations ``C β`` (None: normal)."""
    if res.robust_type == "CR2":
        return mv_robust.satterthwaite_df(C, *res.cr2_terms)
    if res.robust_type == "CR1" or res.test == "t":
        return np.full(C.shape[0], float(res.df))
    return None


def contrast(res, C) -> pd.DataFrame:
    """Estimate, SE, test and CI of each row of ``C`` (a linear combination
    of the coefficients), with the model's inference (model-based, CR1 or
    CR2 with Satterthwaite df as clubSandwich ``linear_contrast``)."""
    C = contrast_matrix(res, C)
    beta = res.coef["estimate"].to_numpy()
    vb = res.vcov.to_numpy()
    est = C @ beta
    se = np.sqrt(np.einsum("ip,pq,iq->i", C, vb, C))
    df = _row_df(res, C)
    names = [" ".join(f"{w:+g}·{n}" for w, n in zip(row, res.coef.index) if w != 0) for row in C]
    t = coef_table(names, est, np.diag(se**2), df, res.level)
    return t.rename_axis("contrast")


def wald_test(res, C) -> dict:
    """Joint test of ``C β = 0``: χ² (z), F (t, CR1) or Hotelling's T² with
    HTZ degrees of freedom (CR2)."""
    C = contrast_matrix(res, C)
    beta = res.coef["estimate"].to_numpy()
    vb = res.vcov.to_numpy()
    q = C.shape[0]
    if res.robust_type == "CR2":
        out = mv_robust.htz_test(C, beta, vb, *res.cr2_terms)
        out["test"] = "Hotelling T² (HTZ, CR2)"
        return out
    cb = C @ beta
    Q = float(cb @ np.linalg.solve(C @ vb @ C.T, cb))
    if res.robust_type == "CR1" or res.test == "t":
        df2 = float(res.df)
        return {"stat": Q / q, "df_num": float(q), "df_denom": df2,
                "p": float(stats.f.sf(Q / q, q, df2)), "Q": Q, "test": "F"}
    return {"stat": Q, "df_num": float(q), "df_denom": None, "p": float(stats.chi2.sf(Q, q)),
            "Q": Q, "test": "chi-square"}


def _tau2_index(res, tau2_levels, n):
    levels = list(res.levels)
    vals = np.atleast_1d(np.asarray(tau2_levels, dtype=object))
    if vals.size == 1:
        vals = np.repeat(vals, n)
    if vals.size != n:
        raise InputError(f"tau2_levels: got {vals.size} values for {n} predictions")
    out = []
    for v in vals:
        v = v.item() if isinstance(v, np.generic) else v
        if v not in levels:
            raise InputError(f"tau2_levels: {v!r} is not a level of time; expected one of {levels}")
        out.append(levels.index(v))
    return np.array(out, dtype=int)


def predict(res, newmods=None, tau2_levels=None) -> pd.DataFrame:
    """Predicted mean, CI and prediction interval (metafor ``predict.rma``)."""
    m = res.fitted_model
    multi = res.tau2.size > 1
    idx = None
    if newmods is None:
        if res.intercept_only:
            if multi and tau2_levels is None:
                tau2_levels = list(res.levels)
            n = 1 if tau2_levels is None else np.atleast_1d(np.asarray(tau2_levels, object)).size
            Xn = np.ones((n, 1))
        else:
            Xn = res.design.to_numpy(dtype=float)
            if res.tau2.size:
                idx = m.codes.copy()
            tau2_levels = None
    else:
        if res.intercept_only:
            raise InputError("newmods: the model has no moderators")
        Xn = apply_coding(m.coding, newmods)
    n = Xn.shape[0]
    if tau2_levels is not None and res.tau2.size:
        idx = _tau2_index(res, tau2_levels, n)
    beta = res.coef["estimate"].to_numpy()
    vb = res.vcov.to_numpy()
    pred = Xn @ beta
    se = np.sqrt(np.einsum("ip,pq,iq->i", Xn, vb, Xn))
    df = _row_df(res, Xn)
    crit = (stats.norm.isf((1 - res.level) / 2) if df is None
            else stats.t.isf((1 - res.level) / 2, df))
    extra = float(np.sum(res.sigma2))
    if res.tau2.size == 0:
        add = np.full(n, extra)
    elif not multi:
        add = np.full(n, extra + res.tau2[0])
    elif idx is None:
        add = np.full(n, np.nan)
    else:
        add = extra + res.tau2[idx]
    half = crit * np.sqrt(se**2 + add)
    out = pd.DataFrame({"pred": pred, "se": se, "ci_lb": pred - crit * se,
                        "ci_ub": pred + crit * se, "pi_lb": pred - half, "pi_ub": pred + half})
    if df is not None:
        out["df"] = df
    if multi or (idx is not None and res.tau2.size):
        out["tau2_level"] = [res.levels[i] for i in idx] if idx is not None else None
    return out


def _cluster_pieces(res, cluster):
    m = res.fitted_model
    rows = m.rows
    k = res.k
    if cluster is None:
        groups_of = np.arange(len(rows))
    else:
        c = pd.Series(np.asarray(cluster, dtype=object).ravel())
        if len(c) != k:
            raise InputError(f"cluster: got {len(c)} values for {k} estimates")
        if c.isna().any():
            raise InputError("cluster: has missing values")
        codes, _ = pd.factorize(c)
        groups_of = np.empty(len(rows), int)
        for j, r in enumerate(rows):
            u = np.unique(codes[r])
            if u.size > 1:
                raise InputError(f"cluster: the estimates of study {res.study[r[0]]!r} fall in "
                                 "several clusters; the random effects must be nested in "
                                 "the clusters")
            groups_of[j] = u[0]
    blocks = m.marginal_blocks()
    e = res.yi - res.design.to_numpy(dtype=float) @ res.coef["estimate"].to_numpy()
    X = res.design.to_numpy(dtype=float)
    Xs, es, Ms = [], [], []
    for g in pd.unique(groups_of):
        members = np.flatnonzero(groups_of == g)
        idx = np.concatenate([rows[j] for j in members])
        M = np.zeros((idx.size, idx.size))
        at = 0
        for j in members:
            s = rows[j].size
            M[at:at + s, at:at + s] = blocks[j]
            at += s
        Xs.append(X[idx])
        es.append(e[idx])
        Ms.append(M)
    return mv_robust.ClusterPieces(Xs, es, Ms, res.vcov_model)


def robust(res, cluster=None, type="CR2"):
    """Cluster-robust copy of ``res`` (coefficients, tests, predictions)."""
    if type not in ("CR1", "CR2"):
        raise InputError(f"type: got {type!r}; expected 'CR1' (metafor robust) or 'CR2' "
                         "(clubSandwich)")
    pc = _cluster_pieces(res, cluster)
    n, p = pc.n, res.p
    if n <= p:
        raise InputError(f"cluster: {n} clusters for {p} coefficients; robust inference needs "
                         "more clusters than coefficients")
    beta = res.coef["estimate"].to_numpy()
    names = list(res.coef.index)
    if type == "CR1":
        vb, df = mv_robust.cr1(pc)
        cr2 = None
        dfs = df
    else:
        vb, Gs, H = mv_robust.cr2(pc)
        cr2 = (Gs, H)
        dfs = mv_robust.satterthwaite_df(np.eye(p), Gs, H)
        df = None
    new = dataclasses.replace(
        res, coef=coef_table(names, beta, vb, dfs, res.level),
        vcov=pd.DataFrame(vb, index=names, columns=names), robust_type=type,
        n_clusters=n, df=df, cr2_terms=cr2)
    C = np.eye(p)[[names.index(t) for t in res.btt]]
    w = wald_test(new, C)
    return dataclasses.replace(new, q_m=w["stat"], q_m_df=(w["df_num"], w["df_denom"]),
                               q_m_p=w["p"])
