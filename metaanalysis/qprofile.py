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
>>> from metaanalysis.qprofile import tau2_ci
>>> y = np.array([[0.1, 0.5, 0.9, -0.3]]); v = np.full((1, 4), 0.02)
>>> lb, ub, ok, capped = tau2_ci(y, v, np.isfinite(y), np.array([0.2]))
>>> bool(lb[0] < 0.2 < ub[0])
True
"""

from __future__ import annotations

import numpy as np
from scipy import special

from .tau2 import _q_root, clean

__all__ = ["TAU2_MAX", "tau2_ci"]

TAU2_MAX = 100.0


def tau2_ci(yi, vi, mask, tau2, level: float = 0.95):
    """Q-profile limits for τ² on a batch.

    Parameters
    ----------
    yi, vi : ndarray, shape (B, k)
    mask : ndarray of bool, shape (B, k)
        ``True`` where a study is present.
    tau2 : ndarray, shape (B,)
        The point estimate (used only for the search bound ``max(100, 10 τ̂²)``).
    level : float
        Confidence level.

    Returns
    -------
    lb, ub : ndarray (B,)
        NaN for rows with k < 2.
    converged : ndarray of bool (B,)
    capped : ndarray of bool (B,)
        ``True`` where the upper limit hit the search bound.
    """
    y, v, m, k = clean(yi, vi, mask)
    B = y.shape[0]
    alpha = 1.0 - level
    df = np.maximum(k - 1, 1).astype(float)
    hi_t = special.chdtri(df, alpha / 2)  # upper alpha/2 quantile -> lower limit
    lo_t = special.chdtri(df, 1 - alpha / 2)
    t_hat = np.nan_to_num(np.asarray(tau2, float), nan=0.0)
    cap = np.maximum(TAU2_MAX, 10.0 * t_hat)
    # both limits in one vectorised solve: stack the batch twice
    yy = np.concatenate([y, y])
    vv = np.concatenate([v, v])
    mm = np.concatenate([m, m])
    kk = np.concatenate([k, k])
    t, conv, hit = _q_root(
        yy, vv, mm, kk, np.concatenate([hi_t, lo_t]), x0=np.concatenate([0.5 * t_hat, 2.0 * t_hat]),
        cap=np.concatenate([cap, cap]),
    )
    lb, ub = t[:B], t[B:]
    bad = k < 2
    lb = np.where(bad, np.nan, lb)
    ub = np.where(bad, np.nan, ub)
    return lb, ub, conv[:B] & conv[B:], hit[B:] & ~bad
