"""Sampling covariance of dependent estimates (metafor's ``vcalc``), kept per study.

Estimates from the same study (the same patients measured at several time
points, or several outcomes) have correlated sampling errors.  When the
correlation is not reported it is assumed: a constant ``rho`` between any
two estimates of a study, or ``phi^|Δtime|`` (an AR(1) decay over time, the
``time1``/``phi`` option of ``vcalc``).  The covariance is block-diagonal by
study; this module builds and checks those blocks, and :func:`vcalc` returns
the full matrix for users who want to look at it.

References
----------
Viechtbauer W (2022). ``vcalc``: construct or approximate the
variance-covariance matrix of dependent effect sizes. metafor 3.8 manual.

Ishak KJ, Platt RW, Joseph L, Hanley JA, Caro JJ (2007). Meta-analysis of
longitudinal studies. *Clin Trials* 4:525-539 (the AR(1) sampling correlation).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from metaanalysis.errors import InputError

__all__ = ["blocks_from_matrix", "study_rows", "vcalc", "vcalc_blocks"]


def study_rows(study) -> list[np.ndarray]:
    """Row indices of each study, studies in order of first appearance.

    Examples
    --------
    >>> [r.tolist() for r in study_rows(["a", "b", "a"])]
    [[0, 2], [1]]
    """
    codes, _ = pd.factorize(pd.Series(study), sort=False)
    order = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes))[:-1]
    return np.split(order, bounds)


def _correlation(n, t, rho, phi) -> np.ndarray:
    if phi is not None:
        return np.power(phi, np.abs(t[:, None] - t[None, :]))
    R = np.full((n, n), rho)
    np.fill_diagonal(R, 1.0)
    return R


def vcalc_blocks(vi, rows, *, time=None, rho=None, phi=None) -> list[np.ndarray]:
    """Per-study sampling covariance blocks from ``vi`` and an assumed correlation.

    ``rows`` are the row indices of each study (:func:`study_rows`).  With
    ``rho`` every pair of estimates of a study has correlation ``rho``; with
    ``phi`` the correlation is ``phi^|time_i − time_j|``; with neither the
    blocks are diagonal.  Raises :class:`InputError` naming ``rho``/``phi``
    when a block is not positive definite.

    Examples
    --------
    >>> b = vcalc_blocks([1.0, 4.0], [np.array([0, 1])], time=[0, 2], phi=0.5)
    >>> b[0].tolist()
    [[1.0, 0.5], [0.5, 4.0]]
    """
    v = np.asarray(vi, float)
    if rho is not None and phi is not None:
        raise InputError("give rho (constant correlation) or phi (phi^|Δtime|), not both")
    if rho is not None and not (-1.0 <= float(rho) <= 1.0):
        raise InputError(f"rho: got {rho!r}; expected a correlation between -1 and 1")
    if phi is not None:
        if not (0.0 <= float(phi) <= 1.0):
            raise InputError(f"phi: got {phi!r}; expected an autocorrelation between 0 and 1")
        if time is None:
            raise InputError("phi: the correlation phi^|Δtime| needs time=")
        t = np.asarray(time, float)
    out = []
    for idx in rows:
        sd = np.sqrt(v[idx])
        if (rho is None and phi is None) or idx.size == 1:
            out.append(np.diag(v[idx]))
            continue
        R = _correlation(idx.size, t[idx] if phi is not None else None, rho, phi)
        B = sd[:, None] * R * sd[None, :]
        if np.linalg.eigvalsh(B)[0] <= 1e-12 * np.max(v[idx]):
            arg = f"phi={phi!r}" if phi is not None else f"rho={rho!r}"
            why = " (two estimates at the same time)" if phi is not None and np.any(
                np.diff(np.sort(t[idx])) == 0) else ""
            raise InputError(f"{arg}: the sampling covariance of the study with rows "
                             f"{idx.tolist()} is not positive definite{why}")
        out.append(B)
    return out


def blocks_from_matrix(V, rows, labels=None) -> list[np.ndarray]:
    """Split a given ``k × k`` sampling covariance into per-study blocks.

    Raises :class:`InputError` naming ``V`` when it is not square, not
    symmetric, couples estimates of different studies, or has a block that
    is not positive definite.
    """
    M = np.asarray(V.to_numpy() if isinstance(V, pd.DataFrame) else V, float)
    k = sum(r.size for r in rows)
    if M.shape != (k, k):
        raise InputError(f"V: got a matrix of shape {M.shape}; expected ({k}, {k}), one row "
                         "and column per estimate")
    if not np.all(np.isfinite(M)):
        raise InputError("V: has missing or infinite values")
    if not np.allclose(M, M.T, rtol=1e-10, atol=1e-12 * np.max(np.abs(M))):
        raise InputError("V: is not symmetric")
    inside = np.zeros((k, k), bool)
    for idx in rows:
        inside[np.ix_(idx, idx)] = True
    if np.any(M[~inside] != 0):
        i, j = np.argwhere((M != 0) & ~inside)[0]
        raise InputError(f"V: couples rows {i} and {j}, which belong to different studies; "
                         "the sampling covariance must be block-diagonal by study")
    out = []
    for n, idx in enumerate(rows):
        B = M[np.ix_(idx, idx)]
        if np.linalg.eigvalsh(B)[0] <= 0:
            name = labels[n] if labels is not None else n
            raise InputError(f"V: the block of study {name!r} (rows {idx.tolist()}) is not "
                             "positive definite")
        out.append(B)
    return out


def vcalc(vi, study, *, time=None, rho=None, phi=None) -> np.ndarray:
    """The full sampling covariance matrix of dependent estimates (metafor ``vcalc``).

    Parameters
    ----------
    vi : array_like
        Sampling variances, one per estimate.
    study : array_like
        Study (cluster) of each estimate; estimates of different studies are
        independent.
    time : array_like, optional
        Time of each estimate (needed with ``phi``).
    rho : float, optional
        Constant correlation between any two estimates of the same study
        (``vcalc(vi, cluster, obs, rho)``).
    phi : float, optional
        Autocorrelation: estimates ``Δ`` time units apart correlate
        ``phi^|Δ|`` (``vcalc(vi, cluster, time1, phi)``).

    Returns
    -------
    numpy.ndarray
        ``k × k``, block-diagonal by study.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> ma.vcalc([1.0, 1.0, 2.0], ["a", "a", "b"], rho=0.5).tolist()
    [[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 2.0]]
    """
    v = np.asarray(vi, float).ravel()
    if len(study) != v.size:
        raise InputError(f"study: got {len(study)} values for {v.size} estimates")
    rows = study_rows(study)
    out = np.zeros((v.size, v.size))
    for idx, B in zip(rows, vcalc_blocks(v, rows, time=time, rho=rho, phi=phi)):
        out[np.ix_(idx, idx)] = B
    return out
