"""Cluster-robust (sandwich) inference for multilevel / multivariate models.

* ``CR1`` is metafor's ``robust(x, cluster)`` (``adjust=TRUE``): the sandwich
  ``B (Σ_j X_j'W_j e_j e_j'W_j X_j) B`` with ``B = (X'WX)⁻¹``, multiplied by
  ``n / (n − p)`` for ``n`` clusters; t tests on ``n − p`` df and an F test
  on ``(m, n − p)`` df.
* ``CR2`` is the bias-reduced linearisation of Bell & McCaffrey (2002) as
  clubSandwich computes it for ``rma.mv`` fits (working model = the fitted
  marginal covariance ``M``, inverse-variance weights): adjustment matrices
  ``A_j = U_j' (U_j (M_j − X_j B X_j') U_j')^{-1/2} U_j`` with ``U_j'U_j = M_j``
  (Cholesky), t tests with Satterthwaite degrees of freedom and the
  Hotelling's T² "HTZ" Wald test with approximate degrees of freedom
  (Pustejovsky & Tipton 2018; Tipton & Pustejovsky 2015).

References
----------
Bell RM, McCaffrey DF (2002). Bias reduction in standard errors for linear
regression with multi-stage samples. *Survey Methodology* 28:169-181.

Tipton E, Pustejovsky JE (2015). Small-sample adjustments for tests of
moderators and model fit using robust variance estimation in
meta-regression. *J Educ Behav Stat* 40:604-634.

Pustejovsky JE, Tipton E (2018). Small-sample methods for cluster-robust
variance estimation and hypothesis testing in fixed effects models.
*J Bus Econ Stat* 36:672-683.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["ClusterPieces", "cr1", "cr2", "htz_test", "satterthwaite_df"]


@dataclass(frozen=True)
class ClusterPieces:
    """Per-cluster design ``X``, residuals ``e`` and marginal covariance ``M``
    (lists over clusters), with the model-based ``vb = (X'M⁻¹X)⁻¹``."""

    X: list
    e: list
    M: list
    vb: np.ndarray

    @property
    def n(self) -> int:
        return len(self.X)


def _power(S, power, tol=1e-12):
    """Symmetric matrix power by eigen-decomposition; eigenvalues at or below
    ``tol`` are set to zero (clubSandwich's ``matrix_power``)."""
    w, U = np.linalg.eigh(S)
    wp = np.where(w > tol, np.abs(w) ** power, 0.0)
    return (U * wp) @ U.T


def cr1(pc: ClusterPieces):
    """metafor's CR1 sandwich: ``(vcov, df)`` with ``df = n − p``."""
    p = pc.vb.shape[0]
    meat = np.zeros((p, p))
    for X, e, M in zip(pc.X, pc.e, pc.M):
        u = X.T @ np.linalg.solve(M, e)
        meat += np.outer(u, u)
    n = pc.n
    return n / (n - p) * pc.vb @ meat @ pc.vb, float(n - p)


def cr2(pc: ClusterPieces):
    """CR2 sandwich as clubSandwich: ``(vcov, Gs, H)``.

    ``Gs[j] = B E_j L_j`` (``L_j`` the lower Cholesky factor of ``M_j``) and
    ``H[j] = B E_j X_j L_B`` (``L_B L_B' = B``) are the pieces of the
    Satterthwaite and HTZ degrees of freedom (clubSandwich's ``get_GH``).
    """
    B = pc.vb
    LB = np.linalg.cholesky(B)
    meat_parts, Gs, H = [], [], []
    for X, e, M in zip(pc.X, pc.e, pc.M):
        L = np.linalg.cholesky(M)  # M = L L' = U'U with U = L'
        G = L.T @ (M - X @ B @ X.T) @ L
        A = L @ _power(0.5 * (G + G.T), -0.5) @ L.T
        E = np.linalg.solve(M, X).T @ A  # X' W A
        meat_parts.append(E @ e)
        ME = B @ E
        Gs.append(ME @ L)
        H.append(ME @ X @ LB)
    c = np.stack(meat_parts, axis=1)
    return B @ (c @ c.T) @ B, Gs, np.stack(H)


def _p_array(C, Gs, H):
    """clubSandwich's P array for the rows of ``C``: ``(q, q, J, J)``."""
    h = np.einsum("ip,jpu->jiu", C, H)  # (J, q, u)
    P = -np.einsum("aiu,bju->ijab", h, h)
    g = [C @ G for G in Gs]
    diag = np.stack([gj @ gj.T for gj in g])  # (J, q, q)
    J = len(Gs)
    P[:, :, np.arange(J), np.arange(J)] += np.moveaxis(diag, 0, -1)
    return P


def satterthwaite_df(C, Gs, H) -> np.ndarray:
    """Satterthwaite degrees of freedom of each row of ``C`` (coef_test, CR2)."""
    C = np.atleast_2d(C)
    out = np.empty(C.shape[0])
    for i, c in enumerate(C):
        P = _p_array(c[None], Gs, H)[0, 0]
        out[i] = np.trace(P) ** 2 / np.sum(P * P)
    return out


def htz_test(C, beta, vcov, Gs, H) -> dict:
    """Hotelling's T² test of ``Cβ = 0`` with the HTZ degrees of freedom
    (clubSandwich ``Wald_test(..., test="HTZ")``)."""
    C = np.atleast_2d(np.asarray(C, float))
    q = C.shape[0]
    P = _p_array(C, Gs, H)
    Omega = np.einsum("ijaa->ij", P)
    On = _power(Omega, -0.5)
    Bm = np.einsum("is,stab,tj->ijab", On, P, On)
    var = np.einsum("stab,tsab->st", Bm, Bm) + np.einsum("ssab,ttab->st", Bm, Bm)
    nu = q * (q + 1) / np.sum(var)
    cb = C @ beta
    Q = float(cb @ np.linalg.solve(C @ vcov @ C.T, cb))
    delta = max((nu - q + 1) / nu, 0.0)
    df2 = nu - q + 1
    F = delta * Q / q
    p = float(stats.f.sf(F, q, df2)) if df2 > 0 else float("nan")
    return {"stat": F, "df_num": float(q), "df_denom": float(df2), "p": p, "delta": delta,
            "Q": Q, "test": "HTZ"}
