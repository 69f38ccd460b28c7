"""Likelihood, gradient and optimisation of multilevel / multivariate models.

The marginal model is ``y = Xβ + u + e`` with ``Var(e) = V`` (sampling
covariance) and ``Var(u) = R(θ)`` (random effects), both block-diagonal by
study, so every quantity is a sum over studies of small dense blocks.  Studies
with the same number of estimates are stacked and handled as one array
``(m, s, s)``: no ``k × k`` matrix is ever formed or inverted.

For given variance components the fixed effects are profiled out by
generalised least squares; the (restricted) log-likelihood is then maximised
over the unconstrained parameters ``θ`` of the covariance structure
(:mod:`metaanalysis.models.mv_structures`) by damped Fisher scoring ending
in Newton steps, from one or several starting points.  The log-likelihoods are
metafor's (Viechtbauer 2010)::

    ML:   −½ [k log 2π + log|M| + r'M⁻¹r]
    REML: −½ [(k − p) log 2π − log|X'X| + log|M| + log|X'M⁻¹X| + r'M⁻¹r]

with ``M = V + R(θ)`` and ``r = y − Xβ̂``; the REML form includes ½ log|X'X|
(metafor's ``REMLf = TRUE``).  Score and expected information (Harville 1977)::

    ∂ℓ/∂θ_r = −½ tr(P Ṁ_r) + ½ r'M⁻¹ Ṁ_r M⁻¹ r,
    I_rs    = ½ tr(P Ṁ_r P Ṁ_s),

where ``P = M⁻¹`` (ML) or ``M⁻¹ − M⁻¹X(X'M⁻¹X)⁻¹X'M⁻¹`` (REML).

References
----------
Harville DA (1977). Maximum likelihood approaches to variance component
estimation and to related problems. *J Am Stat Assoc* 72:320-338.

Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package.
*J Stat Softw* 36(3):1-48.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Group", "evaluate", "fixed_effects", "make_groups", "maximise"]

LOG2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class Group:
    """The ``m`` studies with ``s`` estimates each: row indices ``idx (m, s)``,
    outcomes ``y (m, s)``, design ``X (m, s, p)``, sampling covariance
    ``V (m, s, s)`` and level codes of the inner variable ``lev (m, s)``."""

    idx: np.ndarray
    y: np.ndarray
    X: np.ndarray
    V: np.ndarray
    lev: np.ndarray


def make_groups(y, X, V_blocks, rows, lev) -> list[Group]:
    """Stack the studies by their number of estimates.

    ``rows`` are the row indices of each study, ``V_blocks`` the matching
    sampling covariance blocks, ``lev`` the level code of every row.
    """
    sizes = np.array([r.size for r in rows])
    out = []
    for s in np.unique(sizes):
        which = np.flatnonzero(sizes == s)
        idx = np.stack([rows[j] for j in which])
        out.append(Group(idx=idx, y=y[idx], X=X[idx], V=np.stack([V_blocks[j] for j in which]),
                         lev=lev[idx]))
    return out


def _chol_inv(M):
    """Inverse and log-determinant of a stack of positive-definite blocks, or
    ``None`` when one block is not positive definite."""
    try:
        C = np.linalg.cholesky(M)
    except np.linalg.LinAlgError:
        return None
    logdet = 2.0 * np.sum(np.log(np.diagonal(C, axis1=-2, axis2=-1)))
    eye = np.broadcast_to(np.eye(M.shape[-1]), M.shape)
    Ci = np.linalg.solve(C, eye)
    return np.swapaxes(Ci, -1, -2) @ Ci, logdet


def fixed_effects(groups, p: int):
    """Fixed-effects GLS fit with the sampling covariance alone: ``(beta, QE,
    log|V|, diag V)`` — the test for residual heterogeneity and the starting
    values use it."""
    XtWX = np.zeros((p, p))
    XtWy = np.zeros(p)
    parts = []
    for g in groups:
        W, ld = _chol_inv(g.V)
        parts.append((W, ld))
        WX = W @ g.X
        XtWX += np.einsum("msp,msq->pq", g.X, WX)
        XtWy += np.einsum("msp,ms->p", WX, g.y)
    beta = np.linalg.solve(XtWX, XtWy)
    qe = 0.0
    logdet = 0.0
    for g, (W, ld) in zip(groups, parts):
        r = g.y - np.einsum("msp,p->ms", g.X, beta)
        qe += float(np.einsum("ms,mst,mt->", r, W, r))
        logdet += ld
    vdiag = np.concatenate([np.diagonal(g.V, axis1=1, axis2=2).ravel() for g in groups])
    return beta, qe, logdet, vdiag


def evaluate(theta, structure, groups, k, p, logdet_xtx, *, reml: bool, free=None,
             order: int = 0) -> dict | None:
    """Profile log-likelihood at ``theta`` (``None`` when ``M`` is not positive definite).

    ``order`` 0: value and GLS quantities; 1: plus the score; 2: plus the
    expected information.  Derivatives are for the ``free`` parameters
    (boolean mask, default all).
    """
    theta = np.asarray(theta, float)
    free = np.ones(theta.size, bool) if free is None else free
    parts = []
    logdet = 0.0
    XtWX = np.zeros((p, p))
    XtWy = np.zeros(p)
    prepared = structure.prepare(theta)
    for g in groups:
        R, dR = structure.blocks(theta, g.lev, prepared)
        inv = _chol_inv(g.V + R)
        if inv is None:
            return None
        W, ld = inv
        logdet += ld
        WX = W @ g.X
        XtWX += np.einsum("msp,msq->pq", g.X, WX)
        XtWy += np.einsum("msp,ms->p", WX, g.y)
        parts.append((W, WX, dR[free] if order else None))
    try:
        cXtWX = np.linalg.cholesky(XtWX)
    except np.linalg.LinAlgError:
        return None
    A = np.linalg.inv(XtWX)
    beta = A @ XtWy
    rss = 0.0
    Wr_all = []
    for g, (W, _WX, _dR) in zip(groups, parts):
        r = g.y - np.einsum("msp,p->ms", g.X, beta)
        Wr = np.einsum("mst,mt->ms", W, r)
        rss += float(np.sum(r * Wr))
        Wr_all.append(Wr)
    logdet_xwx = 2.0 * float(np.sum(np.log(np.diag(cXtWX))))
    ll_ml = -0.5 * (k * LOG2PI + logdet + rss)
    ll_reml = -0.5 * ((k - p) * LOG2PI - logdet_xtx + logdet + logdet_xwx + rss)
    out = {"ll": ll_reml if reml else ll_ml, "ll_ml": ll_ml, "ll_reml": ll_reml,
           "beta": beta, "vb": A, "rss": rss}
    if order == 0:
        return out
    nf = int(np.sum(free))
    score = np.zeros(nf)
    info = np.zeros((nf, nf))
    F = np.zeros((nf, p, p))
    for (W, WX, dR), Wr in zip(parts, Wr_all):
        tr1 = np.einsum("mab,rmba->r", W, dR)
        quad = np.einsum("rma,ma->r", (dR @ Wr[None, :, :, None])[..., 0], Wr)
        K = dR @ WX[None]  # Ṁ_r W X, (r, m, s, p)
        F += np.einsum("map,rmaq->rpq", WX, K)
        score += -0.5 * tr1 + 0.5 * quad
        if order >= 2:
            WdR = W[None] @ dR  # (r, m, s, s)
            flat = WdR.reshape(nf, -1)
            info += 0.5 * flat @ np.swapaxes(WdR, -1, -2).reshape(nf, -1).T
            if reml:
                # tr(W Ṁ_r W X A X'W Ṁ_t) = Σ (Ṁ_t W X A) · (W Ṁ_r W X)
                KA = (K @ A).reshape(nf, -1)
                WK = (W[None] @ K).reshape(nf, -1)
                info -= WK @ KA.T
    if reml:
        score += 0.5 * np.einsum("pq,rqp->r", A, F)
        if order >= 2:
            AF = A[None] @ F
            info += 0.5 * np.einsum("rpq,tqp->rt", AF, AF)
    out["score"] = score
    if order >= 2:
        out["info"] = 0.5 * (info + info.T)
    return out


def _damped_step(theta, free, cur, info, lam, args, reml):
    """One Levenberg-Marquardt-damped scoring step with step halving.

    Returns ``(theta, evaluation, λ)`` of an accepted step (the log-likelihood
    does not decrease), or ``None``."""
    g = cur["score"]
    scale = np.sqrt(np.maximum(np.diag(info), 1e-300))
    J = info / np.outer(scale, scale)
    for _ in range(12):
        try:
            step = np.linalg.solve(J + lam * np.eye(g.size), g / scale) / scale
        except np.linalg.LinAlgError:
            lam = max(lam * 10, 1e-6)
            continue
        big = np.max(np.abs(step), initial=0.0)
        if big > 5.0:
            step *= 5.0 / big
        t = 1.0
        for _ in range(6):
            trial = theta.copy()
            trial[free] += t * step
            # the full step is usually taken: evaluate it with derivatives at once
            new = evaluate(trial, *args, reml=reml, free=free, order=2 if t == 1.0 else 0)
            if new is not None and new["ll"] >= cur["ll"] - 1e-12 * abs(cur["ll"]):
                return trial, new, (max(lam / 10, 1e-10) if t == 1.0 else lam)
            t *= 0.5
        lam = max(lam * 10, 1e-6)
    return None


def _scoring(theta, free, args, reml, max_iter, tol, floor, power):
    """Damped Fisher scoring on the ``free`` parameters; a size parameter
    (the first ``n_var``) whose variance ``exp(power·θ)`` falls below
    ``exp(floor)`` is fixed at 0.  Returns ``(evaluation, theta, free,
    iterations, converged)``."""
    n_var = args[0].n_var
    cur = evaluate(theta, *args, reml=reml, free=free, order=2)
    if cur is None:
        return None, theta, free, 0, False
    lam, gain, iterations = 1e-8, np.inf, 0
    while iterations < max_iter and cur["score"].size:
        iterations += 1
        info = cur["info"]
        if gain < 1e-6 * max(1.0, abs(cur["ll"])):
            # near the maximum: Newton steps on the observed information (Fisher
            # scoring converges only linearly where it differs from the expected one)
            obs = _observed_information(theta, free, cur, args, reml)
            info = info if obs is None else obs
        step = _damped_step(theta, free, cur, info, lam, args, reml)
        if step is None:
            break
        theta, new, lam = step
        hit = [i for i in range(n_var) if free[i] and power * theta[i] < floor]
        if hit:  # a variance reached 0: fix it there and carry on with the others
            free = free.copy()
            free[hit] = False
            theta[hit] = (floor - 600.0) / power
        if hit or "info" not in new:
            new = evaluate(theta, *args, reml=reml, free=free, order=2)
        gain, cur = new["ll"] - cur["ll"], new
        if not hit and abs(gain) <= tol * max(1.0, abs(cur["ll"])) and _stationary(cur):
            break
    return cur, theta, free, iterations, _stationary(cur)


def _observed_information(theta, free, cur, args, reml):
    """Minus the Hessian of the log-likelihood by forward differences of the
    analytic score; ``None`` unless positive definite."""
    nf = int(np.sum(free))
    H = np.empty((nf, nf))
    where = np.flatnonzero(free)
    for j, i in enumerate(where):
        h = 1e-5 * max(1.0, abs(theta[i]))
        trial = theta.copy()
        trial[i] += h
        new = evaluate(trial, *args, reml=reml, free=free, order=1)
        if new is None:
            return None
        H[:, j] = (new["score"] - cur["score"]) / h
    H = -0.5 * (H + H.T)
    try:
        np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return None
    return H


def _stationary(cur) -> bool:
    """Score below 1e-6, or a Newton decrement ``g'I⁻¹g`` below 1e-10 (the
    predicted gain of a further step; scale-free where the information is
    nearly singular)."""
    g = cur["score"]
    if np.max(np.abs(g), initial=0.0) < 1e-6:
        return True
    dec = float(g @ np.linalg.lstsq(cur["info"], g, rcond=1e-12)[0])
    return 0 <= dec < 1e-10


def maximise(theta0, structure, groups, k, p, logdet_xtx, *, reml: bool, max_iter: int = 200,
             tol: float = 1e-10) -> dict:
    """Maximise the (restricted) log-likelihood from ``theta0``.

    Fisher scoring with Levenberg-Marquardt damping and step halving: the
    step solves ``(I + λ) δ = score`` on the information scaled to unit
    diagonal, ``λ`` shrinks after full steps and grows after halved ones, and
    steps are capped at 5 units on the unconstrained scale.  Near the maximum
    the expected information is replaced by the observed one (forward
    differences of the analytic score), so the last steps are Newton steps.
    A variance component that falls below 1e-10 × the mean sampling variance
    is set to 0 (the boundary, where log-scale parameters converge slowly)
    and the others are re-optimised; it is released again if moving it back
    inside raises the likelihood.  Converged when the log-likelihood changes
    by less than ``tol`` (relative) and the gradient check passes: largest
    score component below 1e-6, or Newton decrement ``g'I⁻¹g`` below 1e-10.
    Returns the final evaluation with ``theta``, ``iterations``, ``converged``
    and ``boundary`` (indices of the parameters fixed at 0).
    """
    theta = np.asarray(theta0, float).copy()
    free = np.ones(theta.size, bool)
    args = (structure, groups, k, p, logdet_xtx)
    s0 = float(np.mean(np.concatenate([np.diagonal(g.V, axis1=1, axis2=2).ravel()
                                       for g in groups])))
    power = structure.size_power
    floor = math.log(1e-10 * s0)
    total = 0
    for _ in range(4):
        cur, theta, free, it, converged = _scoring(theta, free, args, reml, max_iter - total,
                                                   tol, floor, power)
        total += it
        if cur is None:
            return {"theta": theta, "converged": False, "iterations": total, "ll": -np.inf}
        released = False
        for i in range(structure.n_var):
            if free[i]:
                continue
            trial = theta.copy()
            trial[i] = math.log(1e-6 * s0) / power
            new = evaluate(trial, *args, reml=reml)
            if new is not None and new["ll"] > cur["ll"] + 1e-9:
                theta, free, released = trial, free.copy(), True
                free[i] = True
        if not released:
            break
    cur.update(theta=theta, iterations=total, converged=converged,
               boundary=[i for i in range(structure.n_var) if not free[i]])
    return cur
