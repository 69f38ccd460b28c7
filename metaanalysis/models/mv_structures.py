"""Random-effects covariance structures of multilevel / multivariate models.

Each structure maps an unconstrained parameter vector ``theta`` to the
covariance of the random effects of the rows of one study, and gives its
derivatives with respect to ``theta`` (for the likelihood gradient).  The
parametrisations are metafor's (``rma.mv``, Viechtbauer 2010):

* variances on the log scale, correlations through ``tanh`` (CS, HCS, AR,
  HAR) or ``plogis`` (CAR, 0 < ρ < 1), variances first, then correlations;
* UN through a log-Cholesky factor, ``G = LL'`` with ``L`` lower triangular
  and a positive diagonal ``exp(θ_a)``: G is always positive definite, as
  with metafor's default for UN (``cholesky=TRUE``, ``G = T'T``), so both
  maximise over the same set of matrices; ``theta`` is the log-diagonal of
  ``L``, then its lower triangle in column-major order.  UN correlations are
  reported as the lower triangle of the correlation matrix in column-major
  order (ρ21, ρ31, …, ρL1, ρ32, …).

Structures for ``random = ~ time | study`` (G is L × L over the L sorted
levels of ``time``):

======  =====================================================================
CS      τ² on the diagonal, ρτ² off it (compound symmetry)
HCS     τ²_a on the diagonal, ρ τ_a τ_b off it
AR      τ² ρ^|a − b| over the level *positions* a, b (AR(1))
HAR     τ_a τ_b ρ^|a − b| (heteroscedastic AR(1))
CAR     τ² ρ^|t_a − t_b| over the *values* of time (continuous-time AR)
UN      τ²_a and a free correlation for every pair of levels
ID      τ² I (independent time points, one variance)
DIAG    diag(τ²_a) (independent time points, one variance each)
======  =====================================================================

:class:`ThreeLevel` is ``random = ~ 1 | study/estimate``: a variance σ²₁
shared by the estimates of a study and a variance σ²₂ of each estimate.

References
----------
Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package.
*J Stat Softw* 36(3):1-48.  (``rma.mv`` help page, "Specifying random effects".)

Konstantopoulos S (2011). Fixed effects and variance components estimation in
three-level meta-analysis. *Res Synth Methods* 2:61-76.

Ishak KJ, Platt RW, Joseph L, Hanley JA, Caro JJ (2007). Meta-analysis of
longitudinal studies. *Clin Trials* 4:525-539.
"""

from __future__ import annotations

import numpy as np
from scipy import special

__all__ = ["STRUCTURES", "STRUCTURE_NAMES", "ThreeLevel", "TimeStructure"]

STRUCTURES = ("CS", "HCS", "AR", "HAR", "CAR", "UN", "ID", "DIAG")
STRUCTURE_NAMES = {
    "CS": "compound symmetry (one τ², one ρ)",
    "HCS": "heteroscedastic compound symmetry (τ² per time point, one ρ)",
    "AR": "AR(1) over time-point positions (one τ², ρ^|lag|)",
    "HAR": "heteroscedastic AR(1) over time-point positions (τ² per time point, ρ^|lag|)",
    "CAR": "continuous-time AR(1) (one τ², ρ^|Δtime|)",
    "UN": "unstructured (τ² per time point, ρ per pair)",
    "ID": "independent time points (one τ², ρ = 0)",
    "DIAG": "independent time points (τ² per time point, ρ = 0)",
}
_HETERO = ("HCS", "HAR", "UN", "DIAG")


class ThreeLevel:
    """``random = ~ 1 | study/estimate``: ``σ²₁ J + σ²₂ I`` within a study.

    ``theta = (log σ²₁, log σ²₂)``.

    Examples
    --------
    >>> s = ThreeLevel()
    >>> R, dR = s.block(np.log([0.2, 0.1]), 2)
    >>> R.tolist()
    [[0.30000000000000004, 0.2], [0.2, 0.30000000000000004]]
    """

    kind = "threelevel"
    size_power = 1  # variance = exp(size_power · θ) for the first n_var parameters
    n_var = 2
    n_cor = 0
    levels: tuple = ()

    def names(self) -> list[str]:
        return ["sigma2.1", "sigma2.2"]

    def natural(self, theta) -> np.ndarray:
        return np.exp(np.asarray(theta, float))

    def unconstrained(self, natural) -> np.ndarray:
        return np.log(np.maximum(np.asarray(natural, float), 1e-300))

    def block(self, theta, size: int):
        """Covariance of the random effects of ``size`` rows of one study and
        its derivatives ``(2, size, size)`` with respect to ``theta``."""
        s1, s2 = np.exp(theta)
        one = np.ones((size, size))
        eye = np.eye(size)
        return s1 * one + s2 * eye, np.stack([s1 * one, s2 * eye])

    def prepare(self, theta):
        return None

    def blocks(self, theta, lev: np.ndarray, prepared=None):
        """Random-effects covariance of ``m`` studies with ``s`` rows each
        (``lev`` is ``(m, s)``; unused here): ``R (m, s, s)`` and
        ``dR/dθ (2, m, s, s)``."""
        m, s = lev.shape
        R, dR = self.block(theta, s)
        return np.broadcast_to(R, (m, s, s)), np.broadcast_to(dR[:, None], (2, m, s, s))

    def split(self, natural):
        """``(sigma2, tau2, rho)`` arrays from the natural parameters."""
        return np.asarray(natural, float), np.empty(0), np.empty(0)


class TimeStructure:
    """One of :data:`STRUCTURES` over the ``L`` levels of the inner variable.

    Parameters
    ----------
    struct : str
        Structure name (CS, HCS, AR, HAR, CAR, UN, ID, DIAG).
    levels : sequence
        The sorted levels of the inner variable (positions for AR/HAR).
    values : array_like, optional
        Numeric values of the levels (CAR).

    Examples
    --------
    >>> s = TimeStructure("AR", [1, 2, 3])
    >>> G, dG = s.G(np.array([np.log(2.0), np.arctanh(0.5)]))
    >>> G.round(3).tolist()
    [[2.0, 1.0, 0.5], [1.0, 2.0, 1.0], [0.5, 1.0, 2.0]]
    """

    kind = "time"

    def __init__(self, struct: str, levels, values=None):
        self.struct = struct
        self.size_power = 2 if struct == "UN" else 1  # UN: log of the Cholesky diagonal
        self.levels = tuple(levels)
        L = len(self.levels)
        self.L = L
        self.n_var = L if struct in _HETERO else 1
        if struct == "UN":
            self.n_cor = L * (L - 1) // 2
        elif struct in ("ID", "DIAG"):
            self.n_cor = 0
        else:
            self.n_cor = 1
        pos = np.arange(L, dtype=float)
        if struct == "CAR":
            v = np.asarray(values, float)
            self.lag = np.abs(v[:, None] - v[None, :])
        else:
            self.lag = np.abs(pos[:, None] - pos[None, :])
        # UN: lower-triangle pairs in column-major order
        rows, cols = np.tril_indices(L, -1)
        order = np.lexsort((rows, cols))
        self.pairs = list(zip(rows[order].tolist(), cols[order].tolist()))
        diag = np.arange(L)
        self._entries = (np.concatenate([diag, rows[order]]).astype(int),
                         np.concatenate([diag, cols[order]]).astype(int))

    # ------------------------------------------------------------------ naming
    def names(self) -> list[str]:
        if self.n_var == 1:
            var = ["tau2"]
        else:
            var = [f"tau2[{lv}]" for lv in self.levels]
        if self.struct == "UN":
            cor = [f"rho[{self.levels[a]},{self.levels[b]}]" for a, b in self.pairs]
        else:
            cor = ["rho"] * self.n_cor
        return var + cor

    # ------------------------------------------------------------------ transforms
    def _chol_factor(self, theta):
        """UN: the lower-triangular ``L`` with ``G = LL'`` (log-diagonal, then
        the lower triangle column-major)."""
        T = np.zeros((self.L, self.L))
        T[np.diag_indices(self.L)] = np.exp(theta[: self.L])
        for j, (a, b) in enumerate(self.pairs):
            T[a, b] = theta[self.L + j]
        return T

    def natural(self, theta) -> np.ndarray:
        """Variances then correlations (UN: τ²_a and the correlations of G)."""
        theta = np.asarray(theta, float)
        if self.struct == "UN":
            T = self._chol_factor(theta)
            G = T @ T.T
            d = np.diag(G).copy()
            sd = np.sqrt(np.maximum(d, 1e-300))
            return np.concatenate([d, [G[a, b] / (sd[a] * sd[b]) for a, b in self.pairs]])
        out = np.empty_like(theta)
        out[: self.n_var] = np.exp(theta[: self.n_var])
        cor = theta[self.n_var:]
        out[self.n_var:] = special.expit(cor) if self.struct == "CAR" else np.tanh(cor)
        return out

    def unconstrained(self, natural) -> np.ndarray:
        nat = np.asarray(natural, float)
        if self.struct == "UN":
            sd = np.sqrt(nat[: self.L])
            R = np.eye(self.L)
            for j, (a, b) in enumerate(self.pairs):
                R[a, b] = R[b, a] = nat[self.L + j]
            G = sd[:, None] * R * sd[None, :]
            T = np.linalg.cholesky(G + 1e-12 * np.trace(G) * np.eye(self.L))
            return np.concatenate([np.log(np.diag(T)), [T[a, b] for a, b in self.pairs]])
        out = np.empty_like(nat)
        out[: self.n_var] = np.log(np.maximum(nat[: self.n_var], 1e-300))
        cor = nat[self.n_var:]
        if self.struct == "CAR":
            out[self.n_var:] = special.logit(np.clip(cor, 1e-12, 1 - 1e-12))
        else:
            out[self.n_var:] = np.arctanh(np.clip(cor, -1 + 1e-12, 1 - 1e-12))
        return out

    def split(self, natural):
        nat = np.asarray(natural, float)
        rho = nat[self.n_var:] if self.n_cor else np.zeros(1 if self.struct in ("ID", "DIAG") else 0)
        return np.empty(0), nat[: self.n_var], rho

    # ------------------------------------------------------------------ G and dG/dθ
    def correlation(self, cor) -> tuple[np.ndarray, np.ndarray]:
        """Correlation matrix of the levels and its derivatives ``(n_cor, L, L)``
        with respect to the unconstrained correlation parameters."""
        L, s = self.L, self.struct
        eye = np.eye(L)
        if s in ("ID", "DIAG"):
            return eye, np.zeros((0, L, L))
        r = cor[0]
        if s in ("CS", "HCS"):
            off = 1.0 - eye
            return eye + r * off, ((1.0 - r * r) * off)[None]
        lag = self.lag
        with np.errstate(divide="ignore", invalid="ignore"):
            R = np.where(lag > 0, np.power(r, lag), 1.0)
            if s == "CAR":  # ρ = expit(θ): dρ/dθ = ρ(1 − ρ)
                dR = np.where(lag > 0, lag * np.power(r, lag) * (1.0 - r), 0.0)
            else:  # ρ = tanh(θ): dρ/dθ = 1 − ρ²
                dR = np.where(lag > 0, lag * np.power(r, lag - 1.0) * (1.0 - r * r), 0.0)
        return R, np.nan_to_num(dR)[None]

    def G(self, theta):
        """``G`` (L × L) and ``dG/dθ`` (n_par, L, L) at ``theta``."""
        if self.struct == "UN":
            T = self._chol_factor(np.asarray(theta, float))
            a, b = self._entries
            val = np.where(a == b, T[a, b], 1.0)  # dL/dθ: L_aa on the diagonal (log scale)
            # dG = dL L' + L dL' with dL = val·e_a e_b': row a and column a of val·L[:, b]
            dG = np.zeros((a.size, self.L, self.L))
            dG[np.arange(a.size), a, :] = val[:, None] * T[:, b].T
            return T @ T.T, dG + np.swapaxes(dG, 1, 2)
        nat = self.natural(theta)
        tau2 = np.broadcast_to(nat[: self.n_var], (self.L,)) if self.n_var == 1 else nat[: self.n_var]
        sd = np.sqrt(tau2)
        R, dR = self.correlation(nat[self.n_var:])
        G = sd[:, None] * R * sd[None, :]
        dG = np.empty((self.n_var + self.n_cor, self.L, self.L))
        if self.n_var == 1:
            dG[0] = G
        else:  # d/dlog τ²_a: half of row a and half of column a of G
            half = np.zeros((self.L, self.L, self.L))
            half[np.arange(self.L), np.arange(self.L), :] = 0.5 * G
            dG[: self.L] = half + np.swapaxes(half, 1, 2)
        for j in range(self.n_cor):
            dG[self.n_var + j] = sd[:, None] * dR[j] * sd[None, :]
        return G, dG

    def prepare(self, theta):
        """``G`` and ``dG/dθ`` at ``theta``, computed once for every block."""
        return self.G(theta)

    def blocks(self, theta, lev: np.ndarray, prepared=None):
        """Random-effects covariance of ``m`` studies whose ``s`` rows have the
        level codes ``lev (m, s)``: ``R (m, s, s)`` and ``dR/dθ (n_par, m, s, s)``."""
        G, dG = self.G(theta) if prepared is None else prepared
        a, b = lev[:, :, None], lev[:, None, :]
        return G[a, b], dG[:, a, b]
