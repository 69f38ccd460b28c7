"""Q-profile confidence intervals for τ² and I² (Viechtbauer 2007).

The generalised Q statistic ``Q(τ²) = Σ w (y − μ_w)²`` with ``w = 1/(v + τ²)``
follows a χ² distribution with k − 1 degrees of freedom at the true τ² and is
strictly decreasing in τ².  The interval is ``{τ² : χ²_{α/2} ≤ Q(τ²) ≤ χ²_{1−α/2}}``:

* lower limit: the root of ``Q(τ²) = χ²_{1−α/2, k−1}``, or 0 when ``Q(0)`` is
  already below it;
* upper limit: the root of ``Q(τ²) = χ²_{α/2, k−1}``, or 0 when ``Q(0)`` is
  below it.

As in metafor's ``confint.rma.uni``, the search is limited to
``[0, max(100, 10 τ̂²)]``; a limit beyond that is reported as the bound itself
(flagged, so results can say so).  The interval therefore does not depend on
the estimator, except through that bound.  The I² interval maps the τ² limits
with the same typical within-study variance as I² itself.

Viechtbauer W (2007). Confidence intervals for the amount of heterogeneity in
meta-analysis. Stat Med 26:37–52.

Examples
--------
>>> import numpy as np
>>> from metaanalysis.engine.qprofile import tau2_ci
>>> y = np.array([[0.1, 0.5, 0.9, -0.3]]); v = np.full((1, 4), 0.02)
>>> lb, ub, ok, capped = tau2_ci(y, v, np.isfinite(y), np.array([0.2]))
>>> bool(lb[0] < 0.2 < ub[0])
True
"""

from __future__ import annotations

import numpy as np
from scipy import special

from metaanalysis.engine.tau2 import _count, _q_root, clean, q_stat

__all__ = ["TAU2_MAX", "tau2_ci"]

TAU2_MAX = 100.0


def tau2_ci(yi, vi, mask, tau2, level: float = 0.95, *, q0=None, q_hat=None):
    """Q-profile limits for τ² on a batch.

    Parameters
    ----------
    yi, vi : ndarray, shape (B, k)
    mask : ndarray of bool, shape (B, k)
        ``True`` where a study is present.
    tau2 : ndarray, shape (B,)
        The point estimate (used for the search bound ``max(100, 10 τ̂²)`` and
        to start the search).
    level : float
        Confidence level.
    q0, q_hat : ndarray, shape (B,), optional
        Q(0) and Q(τ̂²) when the caller has them already (computed otherwise).

    Returns
    -------
    lb, ub : ndarray (B,)
        NaN for rows with k < 2.
    converged : ndarray of bool (B,)
    capped : ndarray of bool (B,)
        ``True`` where the upper limit hit the search bound.

    Notes
    -----
    1/Q(τ²) is nearly linear in τ² (exactly so for equal vi), so each search
    starts where the secant of 1/Q through τ² = 0 and τ² = τ̂² reaches its
    target (the tangent at 0 when τ̂² = 0), usually within a few percent of
    the root.
    """
    y, v, m, k = clean(yi, vi, mask)
    B = y.shape[0]
    alpha = 1.0 - level
    df = np.maximum(k - 1, 1).astype(float)
    # row 0: upper α/2 quantile -> lower limit; row 1: lower α/2 quantile -> upper limit
    target = special.chdtri(df, np.array([[0.5 * alpha], [1.0 - 0.5 * alpha]]))
    t_hat = np.fmax(np.asarray(tau2, float), 0.0)  # NaN -> 0
    cap = np.maximum(TAU2_MAX, 10.0 * t_hat)
    with np.errstate(divide="ignore", invalid="ignore"):
        if q0 is None:
            q0, dq0 = q_stat(y, v, m)
        else:
            dq0 = None
        if q_hat is None:
            q_hat, _ = q_stat(y, v, m, t_hat)
        iq0 = 1.0 / q0
        slope = (1.0 / q_hat - iq0) / t_hat
        flat = ~(t_hat > 0)
        if _count(flat):  # τ̂² = 0: the tangent of 1/Q at 0
            if dq0 is None:
                _, dq0 = q_stat(y, v, m)
            np.copyto(slope, dq0 * iq0 * iq0, where=flat)
        x0 = ((1.0 / target - iq0) / slope).ravel()
    # both limits in one vectorised solve: the batch stacked twice
    t, conv, hit = _q_root(
        np.concatenate([y, y]), np.concatenate([v, v]), np.concatenate([m, m]), target.ravel(),
        x0=x0, cap=np.concatenate([cap, cap]), q0=np.concatenate([q0, q0]),
    )
    lb, ub = t[:B], t[B:]
    bad = k < 2
    if _count(bad):
        lb = np.where(bad, np.nan, lb)
        ub = np.where(bad, np.nan, ub)
    return lb, ub, conv[:B] & conv[B:], hit[B:] & ~bad
