"""Estimators of the between-study variance τ² (residual τ² with moderators).

Every estimator takes a :class:`~metaanalysis.engine.wls.Chunk` — rows of a
batch with their design ``X`` (the intercept-only model is X = 1) — and
returns ``(tau2, converged)``, two arrays with one value per row.  τ² is never
negative: estimators whose formula can go below zero are truncated at 0, as
metafor does.  With moderators each is generalised as metafor's
``rma.uni(mods = ...)`` does (Viechtbauer 2010, J Stat Softw 36(3); formulas in
Raudenbush 2009 and Veroniki et al. 2016, Res Synth Methods 7:55–79); with
``W = diag(1/vᵢ)``, ``P = W − WX(X'WX)⁻¹X'W``, Q_E = y'Py and p columns:

* DL: (Q_E − (k − p)) / tr P;
* HE: (RSS − tr((I − H)V)) / (k − p), RSS and H of the unweighted fit;
* HS: (Q_E − k) / Σw;  HSk: (Q_E k/(k − p) − k) / Σw;
* SJ: τ₀² Q_E(τ₀²)/(k − p), τ₀² = Σ(y − ȳ)²/k (unweighted mean, no moderators);
* ML, REML: the global maximum of the (restricted) likelihood
  (:mod:`metaanalysis.engine.likelihood`);
* PM: Q_E(τ²) = k − p;  PMM: Q_E(τ²) = χ²₀.₅(k − p);  EB: the fixed point of
  Morris's iteration, which is the PM root (k/(k − p) Q_E = k).

The public functions (``tau2_dl(yi, vi, mask, X=None)``, ...) take ``(B, k)``
arrays; :data:`ESTIMATORS` maps each method code to one of them.

Examples
--------
>>> import numpy as np
>>> y = np.array([[0.1, 0.3, 0.35, -0.2]]); v = np.array([[0.01, 0.02, 0.015, 0.03]])
>>> t2, ok = ESTIMATORS["DL"](y, v, np.isfinite(y))
>>> float(t2[0]) > 0, bool(ok[0])
(True, True)
"""

from __future__ import annotations

import numpy as np
from scipy import special

from metaanalysis.engine.design import colsum, make_design
from metaanalysis.engine.likelihood import score_bound_hi, tau2_lik
from metaanalysis.engine.qprofile import q_root
from metaanalysis.engine.roots import MAXITER, TOL, solve_decreasing
from metaanalysis.engine.wls import Chunk, q_terms

__all__ = [
    "CHUNK_ESTIMATORS", "ESTIMATORS", "MAXITER", "TOL", "as_chunk", "q_stat",
    "score_bound_hi", "solve_decreasing", "tau2_dl", "tau2_eb", "tau2_he", "tau2_hs",
    "tau2_hsk", "tau2_ml", "tau2_pm", "tau2_pmm", "tau2_reml", "tau2_sj",
]  # fmt: skip


def _ones(n):
    return np.ones(n, dtype=bool)


def _trunc(t):
    """t where 0 < t < inf, else 0 (NaN, ±inf and negative values)."""
    return np.where((t > 0) & (t < np.inf), t, 0.0)


def dl(c: Chunk):
    """DerSimonian–Laird (1986, Control Clin Trials 7:177): (Q_E − (k − p)) / tr P
    (Raudenbush 2009 with moderators)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _trunc((c.q0 - (c.k - c.p)) / c.trp0), _ones(c.n)


def he(c: Chunk):
    """Hedges (1983, Psychol Bull 93:388), method of moments on the unweighted
    (ordinary least squares) residuals: (RSS − tr((I − H)V)) / (k − p)."""
    d = c.d
    A, rss = c.ols()
    vz = c.vz
    # X'MVX: Σ 1·vᵢ = Σ vᵢ (the same bits) when X = 1 and every study is present
    sv = colsum(vz)
    trpv = sv - d.tr(d.mm(A, sv if c.full and d.intercept else d.gram(c.m, vz)))
    with np.errstate(divide="ignore", invalid="ignore"):
        return _trunc((rss - trpv) / (c.k - c.p)), _ones(c.n)


def hs(c: Chunk):
    """Hunter & Schmidt (2004, *Methods of Meta-Analysis*): (Q_E − k) / Σw, w = 1/v."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _trunc((c.q0 - c.k) / c.sw0), _ones(c.n)


def hsk(c: Chunk):
    """Hunter–Schmidt with the small-sample factor k/(k − p) on Q_E (Brannick et
    al. 2019, Organ Res Methods 22:490): (Q_E k/(k − p) − k) / Σw."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _trunc((c.q0 * c.k / (c.k - c.p) - c.k) / c.sw0), _ones(c.n)


def sj_start(c: Chunk):
    """τ₀² of Sidik–Jonkman: Σ(y − ȳ)²/k around the unweighted mean (no moderators)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ybar = colsum(c.y, c.m) / c.k
        r = (c.y - ybar) * c.m
        return colsum(r, r) / c.k


def sj(c: Chunk):
    """Sidik & Jonkman (2005, J R Stat Soc C 54:367): τ₀² Q_E(τ₀²)/(k − p)."""
    t0 = np.nan_to_num(sj_start(c))
    with np.errstate(divide="ignore", invalid="ignore"):
        q, _ = q_terms(c.d, c.y, c.v, t0)
        return _trunc(t0 * q / (c.k - c.p)), _ones(c.n)


def ml(c: Chunk, x0=None):
    """Maximum likelihood (Hardy & Thompson 1996, Stat Med 15:619): the global
    maximiser over τ² ≥ 0 (:mod:`metaanalysis.engine.likelihood`)."""
    return tau2_lik(c, False, x0)


def reml(c: Chunk, x0=None):
    """Restricted maximum likelihood (Viechtbauer 2005, J Educ Behav Stat 30:261):
    the global maximiser over τ² ≥ 0 (:mod:`metaanalysis.engine.likelihood`)."""
    return tau2_lik(c, True, x0)


def pm(c: Chunk, x0=None):
    """Paule & Mandel (1982, J Res Natl Bur Stand 87:377): Q_E(τ²) = k − p;
    0 when Q_E(0) ≤ k − p."""
    t, ok, _ = q_root(c, np.maximum(c.k - c.p, 0).astype(float), _start(c, x0))
    return t, ok


def pmm(c: Chunk, x0=None):
    """Median-unbiased Paule–Mandel (Viechtbauer 2021, metafor "PMM"; the idea of
    Viechtbauer 2007, Stat Med 26:37): Q_E(τ²) = χ²₀.₅(k − p)."""
    df = c.k - c.p
    with np.errstate(invalid="ignore"):
        target = np.where(df > 0, special.chdtri(np.maximum(df, 1), 0.5), 0.0)
    t, ok, _ = q_root(c, target, _start(c, x0))
    return t, ok


def eb(c: Chunk, x0=None):
    """Empirical Bayes (Morris 1983, JASA 78:47; Berkey et al. 1995, Stat Med
    14:395): the fixed point of τ² ← τ² + (Q_E(τ²) k/(k − p) − k)/Σw, i.e. the
    root of Q_E(τ²) = k − p — the Paule–Mandel estimate (Viechtbauer et al.
    2015, Res Synth Methods 6:195)."""
    return pm(c, x0)


def _start(c: Chunk, x0):
    return dl(c)[0] if x0 is None else np.asarray(x0, dtype=float)


CHUNK_ESTIMATORS = {"DL": dl, "HE": he, "HS": hs, "HSk": hsk, "SJ": sj, "ML": ml,
                    "REML": reml, "EB": eb, "PM": pm, "PMM": pmm}


# ------------------------------------------------------------ (B, k) array interface
def as_chunk(yi, vi, mask, X=None) -> Chunk:
    """A :class:`Chunk` from (B, k) arrays and a presence mask (``X``: (k, p) or (B, k, p))."""
    m = np.asarray(mask, dtype=bool)
    mT = np.ascontiguousarray(m.T)
    y = np.where(mT, np.asarray(yi, dtype=float).T, 0.0)
    v = np.where(mT, np.asarray(vi, dtype=float).T, np.inf)
    d = make_design(X, m.shape[1], m.shape[0])
    return Chunk(d, y, v, None if m.all() else mT.astype(float))


def q_stat(y, v, m, tau2=0.0):
    """Generalised Q = Σw(y − μ_w)², w = 1/(v + τ²), on (B, k) arrays, and Σw²(y − μ_w)²
    (minus its derivative in τ²)."""
    c = as_chunk(y, v, np.asarray(m) > 0)
    t = np.broadcast_to(np.asarray(tau2, dtype=float), (c.n,))
    return q_terms(c.d, c.y, c.v, t)


def _public(name):
    f = CHUNK_ESTIMATORS[name]

    def est(yi, vi, mask, X=None, x0=None):
        c = as_chunk(yi, vi, mask, X)
        return f(c, x0) if name in ("ML", "REML", "EB", "PM", "PMM") else f(c)

    est.__name__ = f"tau2_{name.lower()}"
    est.__doc__ = (f.__doc__ or "") + "\n\n    On (B, k) arrays ``yi``, ``vi`` with a presence " \
        "``mask`` and an optional design ``X``; returns ``(tau2, converged)``.\n"
    return est


tau2_dl = _public("DL")
tau2_he = _public("HE")
tau2_hs = _public("HS")
tau2_hsk = _public("HSk")
tau2_sj = _public("SJ")
tau2_ml = _public("ML")
tau2_reml = _public("REML")
tau2_eb = _public("EB")
tau2_pm = _public("PM")
tau2_pmm = _public("PMM")

ESTIMATORS = {"DL": tau2_dl, "HE": tau2_he, "HS": tau2_hs, "HSk": tau2_hsk, "SJ": tau2_sj,
              "ML": tau2_ml, "REML": tau2_reml, "EB": tau2_eb, "PM": tau2_pm, "PMM": tau2_pmm}
