"""The one numerical engine: common- and random-effects models on batches.

:func:`fit` takes arrays of shape ``(B, k)`` — B independent meta-analyses of up
to k studies, NaN marking an absent study — and returns a dict of arrays of
length B.  ``pool`` is a batch of one; leave-one-out, cumulative analysis,
GOSH, permutations and simulations are masks or re-samplings fed to the same
function.  Rows are never looped over in Python; only iterations are.

Conventions are metafor's (Viechtbauer 2010, J Stat Softw 36(3)):

* weights ``w = 1/(v + τ²)``; ``se = 1/sqrt(Σw)``;
* ``test="knha"``: Knapp & Hartung (2003, Stat Med 22:2693) / Sidik & Jonkman
  (2002, Stat Med 21:3153): ``se² = Σw(y − μ)²/((k − 1)Σw)``, t(k − 1);
  ``test="adhoc"``: the same with the variance factor at least 1 (Röver, Knapp
  & Friede 2015, BMC Med Res Methodol 15:99);
* prediction interval ``μ ± c·sqrt(se² + τ²)`` with c the normal quantile for
  ``z`` and the t(k − 1) quantile for ``knha``/``adhoc`` (Higgins, Thompson &
  Spiegelhalter 2009, J R Stat Soc A 172:137); none for the common-effect model;
* I² and H²: from Q for ``EE`` (I² = (Q − df)/Q, H² = Q/df), from τ² otherwise
  (I² = τ²/(τ² + s²), H² = (τ² + s²)/s², s² the typical within-study variance
  of Higgins & Thompson 2002, Stat Med 21:1539);
* SE of τ²: the variance of the estimating equation for moment estimators
  (DL, HE, HS, HSk, SJ), the inverse (expected) information for ML and REML,
  ``sqrt(2k²/(k − 1))/Σw`` for EB, PM and PMM (Morris 1983), all evaluated at τ̂².

Examples
--------
>>> import numpy as np
>>> from metaanalysis import engine
>>> out = engine.fit(np.array([[0.1, 0.3, 0.35]]), np.array([[0.01, 0.02, 0.015]]),
...                  method="DL")
>>> sorted(out)[:3]
['ci_lb', 'ci_ub', 'converged']
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import special

from metaanalysis.engine.qprofile import tau2_ci
from metaanalysis.engine.tau2 import (
    ESTIMATORS,
    _count,
    _einsum,
    _filled,
    _rs,
    _ss_mean,
    clean,
    dl_from_sums,
)
from metaanalysis.errors import ConvergenceWarning, InputError

__all__ = ["CORE_KEYS", "KEYS", "METHODS", "OUTPUTS", "TESTS", "fit"]

METHODS = ("EE", "DL", "HE", "HS", "HSk", "SJ", "ML", "REML", "EB", "PM", "PMM")
TESTS = ("z", "knha", "adhoc")
KEYS = (
    "k", "estimate", "se", "stat", "p", "ci_lb", "ci_ub", "pi_lb", "pi_ub",
    "tau2", "se_tau2", "tau2_ci_lb", "tau2_ci_ub", "i2", "i2_ci_lb", "i2_ci_ub",
    "h2", "q", "q_df", "q_p", "df", "converged",
)  # fmt: skip
OUTPUTS = ("all", "core")
# what ``outputs="core"`` returns: the estimate and heterogeneity of each row
CORE_KEYS = ("k", "estimate", "se", "tau2", "i2", "h2", "q", "q_df", "converged")


def check_names(method, test, level) -> None:
    """Raise :class:`InputError` for an unknown method/test or a bad level."""
    if method not in METHODS:
        raise InputError(f"method: got {method!r}; expected one of {', '.join(METHODS)}")
    if test not in TESTS:
        raise InputError(f"test: got {test!r}; expected one of {', '.join(TESTS)}")
    check_level(level)


def check_level(level) -> float:
    """Return ``level`` as a float; raise :class:`InputError` unless 0 < level < 1."""
    try:
        ok = 0.0 < float(level) < 1.0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"level: got {level!r}; expected a number between 0 and 1 (e.g. 0.95)")
    return float(level)


def _as2d(x, name):
    try:
        a = np.array(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{name}: could not read as numbers ({exc}); expected a (B, k) array"
        ) from None
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise InputError(f"{name}: got an array of shape {a.shape}; expected shape (B, k)")
    return a


def _chi2_sf(df, x):
    """Upper tail P(χ²_df > x), exact for integer df (as ``special.chdtrc``).

    For a large batch whose df take few small integer values the closed forms
    are several times faster than the incomplete-gamma routine: for even df,
    e^{−x/2} Σ_{j<df/2} (x/2)^j/j!; for odd df, 2Φ(−√x) +
    e^{−x/2} Σ_{j=1}^{(df−1)/2} x^{j−1/2}/(1·3·…·(2j−1)) √(2/π)
    (Abramowitz & Stegun 26.4.4–26.4.5).  All terms are positive, so there is
    no cancellation.
    """
    df = np.asarray(df, dtype=float)
    x = np.asarray(x, dtype=float)
    if x.size < 256 or df.max() > 60 or np.any(df != np.round(df)):
        return special.chdtrc(df, x)
    out = np.empty(x.shape)
    for d in np.unique(df):
        sel = df == d
        xs = x[sel] if not sel.all() else x
        h = 0.5 * xs
        e = np.exp(-h)
        n = int(d)
        if n % 2 == 0:
            term = np.ones_like(xs)
            acc = term.copy()
            for j in range(1, n // 2):
                term *= h / j
                acc += term
            res = e * acc
        else:
            rx = np.sqrt(xs)
            res = 2.0 * special.ndtr(-rx)
            if n > 1:
                term = rx * np.sqrt(2.0 / np.pi)
                acc = term.copy()
                for j in range(2, (n + 1) // 2):
                    term *= xs / (2 * j - 1)
                    acc += term
                res += e * acc
        res = np.where(xs >= 0, res, 1.0)
        if sel.all():
            return res
        out[sel] = res
    return out


def _trPSPS(a, s_a, sig):
    """tr(PΣPΣ) for P = A − aa'/Σa, A = diag(a), Σ = diag(sig) (absent: a = 0)."""
    b = a * sig
    return _rs(b * b) - 2 * _rs(a * b * b) / s_a + (_rs(a * b) / s_a) ** 2


def _se_tau2(method, y, v, m, k, t, w=None, sw=None):
    """SE of τ̂² per row; ``w = m/(v + τ̂²)`` and its row sums ``sw`` when known.

    Called inside :func:`fit`'s ``np.errstate``."""
    if method in ("DL", "HS", "HSk", "HE", "SJ"):
        sig = v + t[:, None]
        if method == "HE":
            return np.sqrt(2 * _trPSPS(m, k.astype(float), sig)) / (k - 1)
        if method == "SJ":
            t0 = _ss_mean(y, m, k) / k
            a = m / (v + t0[:, None])
            return t0 * np.sqrt(2 * _trPSPS(a, _rs(a), sig)) / (k - 1)
        a = m / v
        sa = _rs(a)
        num = np.sqrt(2 * _trPSPS(a, sa, sig))
        if method == "DL":
            return num / (sa - _rs(a * a) / sa)
        return num / sa * (k / (k - 1) if method == "HSk" else 1.0)
    if w is None:
        w = m / (v + t[:, None])
        sw = _rs(w)
    if method == "ML":
        return np.sqrt(2 / _rs(w * w))
    if method == "REML":
        w2 = w * w
        s2 = _rs(w2)
        s2w = s2 / sw
        trpp = s2 - 2 * _einsum("ij,ij->i", w2, w) / sw + s2w * s2w
        return np.sqrt(2 / trpp)
    # EB, PM, PMM (Morris 1983)
    return np.sqrt(2 * k**2 / (k - 1)) / sw


def fit(
    yi,
    vi,
    *,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
    tau2=None,
    qprofile: bool = True,
    outputs: str = "all",
    mask=None,
) -> dict[str, np.ndarray]:
    """Fit B meta-analyses at once.

    Parameters
    ----------
    yi, vi : array_like, shape (B, k) (or (k,) for one analysis)
        Effect sizes and their sampling variances; NaN in either marks an
        absent study, so rows may have different k.
    method : str
        One of :data:`METHODS` (``"EE"`` = common effect).
    test : str
        ``"z"``, ``"knha"`` (Knapp–Hartung) or ``"adhoc"`` (Knapp–Hartung with
        variance factor at least 1).
    level : float
        Confidence level of the CI, PI and Q-profile intervals.
    tau2 : array_like, shape (B,), optional
        Fixed τ² per row (skips estimation).
    qprofile : bool
        Compute Q-profile intervals for τ² and I² (the most expensive part);
        NaN when False or for ``EE``.
    outputs : {"all", "core"}
        ``"core"`` computes only :data:`CORE_KEYS` (estimate, its SE, τ², I²,
        H², Q, k) and skips everything else — test statistics, p-values, CI
        and prediction intervals, SE of τ², Q-profile intervals, the p-value
        of Q and the per-study weights — for large batches such as GOSH.  The
        values it returns are those of ``"all"``, computed the same way.
    mask : array_like of bool, shape (B, k), optional
        Studies present in each row.  ``yi`` and ``vi`` are then the k studies
        (shape ``(k,)``, all finite, ``vi > 0``) and row b fits the studies
        with ``mask[b]`` True: subsets of one data set (leave-one-out, GOSH)
        without building NaN-filled copies.

    Returns
    -------
    dict of ndarray
        Keys :data:`KEYS` (length B each), ``weights`` (B, k) in percent with
        NaN where absent, and ``tau2_ci_capped`` (bool: upper τ² limit hit the
        search bound ``max(100, 10 τ̂²)``); with ``outputs="core"`` only
        :data:`CORE_KEYS`.

    Examples
    --------
    >>> import numpy as np
    >>> out = fit([[0.1, 0.3, 0.35], [0.2, 0.4, np.nan]],
    ...           [[0.01, 0.02, 0.015], [0.02, 0.01, np.nan]], method="REML")
    >>> out["k"].tolist()
    [3, 2]
    >>> sub = fit([0.1, 0.3, 0.35], [0.01, 0.02, 0.015], method="DL", outputs="core",
    ...           mask=[[True, True, True], [True, False, True]])
    >>> sorted(sub) == sorted(CORE_KEYS), sub["k"].tolist()
    (True, [3, 2])
    """
    check_names(method, test, level)
    if outputs not in OUTPUTS:
        raise InputError(f"outputs: got {outputs!r}; expected one of {', '.join(OUTPUTS)}")
    # absent rows (k = 0) give 0/0 = NaN on purpose; no RuntimeWarnings for them
    with np.errstate(divide="ignore", invalid="ignore"):
        if mask is None:
            y, v, m, k, mask = _prepare(yi, vi)
        else:
            y, v, m, k, mask = _prepare_masked(yi, vi, mask)
        return _fit(y, v, m, k, mask, method, test, float(level), tau2, qprofile,
                    outputs == "core")


def _prepare_masked(yi, vi, mask):
    """Cleaned ``(y, v, m, k, mask)`` for subsets ``mask`` (B, k) of one set of k studies."""
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.ndim != 2:
        raise InputError(f"mask: got an array of dtype {mask.dtype} and shape {mask.shape}; "
                         "expected a boolean (B, k) array")
    yi = _as2d(yi, "yi")
    vi = _as2d(vi, "vi")
    kk = mask.shape[1]
    for name, a in (("yi", yi), ("vi", vi)):
        if a.shape != (1, kk):
            raise InputError(f"{name}: got shape {a.shape[1:] if a.shape[0] == 1 else a.shape} "
                             f"with a mask; expected ({kk},), one value per study")
        if not np.all(np.isfinite(a)):
            raise InputError(f"{name}: got {a[0].tolist()!r}; expected finite numbers")
    if not np.all(vi > 0):
        c = int(np.argmin(vi[0] > 0))
        raise InputError(f"vi: got {float(vi[0, c])!r} (study {c}); "
                         "expected sampling variances > 0")
    # as tau2.clean: absent entries y = 0, v = 1, m = 0.0, by exact products
    # (np.where broadcasting a (1, k) row is several times slower)
    m = mask.astype(float)
    y = m * yi
    v = m * vi
    v += 1.0 - m
    k = _rs(m).astype(np.intp)
    return y, v, m, k, mask


def _prepare(yi, vi):
    """Checked and cleaned ``(y, v, m, k, mask)`` from NaN-marked (B, k) arrays."""
    yi = _as2d(yi, "yi")
    vi = _as2d(vi, "vi")
    if yi.shape != vi.shape:
        raise InputError(f"yi, vi: shapes {yi.shape} and {vi.shape} differ; expected equal shapes")
    mask = np.isfinite(yi)
    mask &= np.isfinite(vi)
    badv = vi <= 0  # NaN compares False
    badv &= mask
    if _count(badv):
        r, c = np.argwhere(badv)[0]
        raise InputError(
            f"vi: got {float(vi[r, c])!r} (row {r}, study {c}); expected sampling variances > 0"
        )
    y, v, m, k = clean(yi, vi, mask)
    return y, v, m, k, mask


def _fit(y, v, m, k, mask, method, test, level, tau2, qprofile, core):
    # A single pool() is a batch of one, so this body is written to keep the
    # number of array calls low: counts instead of .any(), shared sums, no
    # redundant passes over (B, k).  ``core``: only CORE_KEYS (GOSH-size batches).
    full = _count(k != y.shape[1]) == 0  # no absent study
    B = y.shape[0]
    kf = k.astype(float)

    # Q at τ² = 0 (as tau2.q_stat) and Σw, Σw² (w = 1/v): for Q, I², H² and DL
    # (in place where possible: fewer (B, k) temporaries, fewer page faults)
    w0 = m / v
    sw0 = _rs(w0)
    sw0sq = _einsum("ij,ij->i", w0, w0)
    r0 = y - (_einsum("ij,ij->i", w0, y) / sw0)[:, None]
    q = _einsum("ij,ij->i", np.multiply(w0, r0, out=w0), r0)  # w0 is now w0 * r0
    qdf = kf - 1

    # ---- τ²
    if tau2 is not None:
        t = np.broadcast_to(np.asarray(tau2, dtype=float), (B,)).copy()
        if np.any(~np.isfinite(t)) or np.any(t < 0):
            raise InputError(f"tau2: got {tau2!r}; expected finite values >= 0")
        converged = np.ones(B, bool)
    elif method == "EE":
        t = np.zeros(B)
        converged = np.ones(B, bool)
    elif method == "DL":  # closed form from the sums above (tau2.tau2_dl's formula)
        t = dl_from_sums(q, k, sw0, sw0sq)
        converged = np.ones(B, bool)
    else:
        t, converged = ESTIMATORS[method](y, v, mask)
    one = k < 2
    n_one = _count(one)
    if n_one:
        t = np.where(one, 0.0, t)

    # ---- pooled estimate
    w = np.add(v, t[:, None], out=r0)
    w = np.divide(m, w, out=w)  # m / (v + τ̂²)
    sw = _rs(w)
    mu = _rs(np.multiply(w, y, out=w0)) / sw
    se = 1.0 / np.sqrt(sw)
    if test != "z" or not core:
        r = np.subtract(y, mu[:, None], out=w0)
        q_t = _einsum("ij,ij->i", w * r, r)  # generalised Q at τ̂²
    nan = _filled(B, np.nan)
    df = nan
    if test != "z":
        s2 = q_t / qdf
        if test == "adhoc":
            s2 = np.maximum(s2, 1.0)
        se = se * np.sqrt(s2)
        df = qdf
        if n_one:
            se = np.where(one, 1.0 / np.sqrt(sw), se)
            df = np.where(one, np.nan, qdf)

    # ---- heterogeneity
    ee = method == "EE" and tau2 is None
    if ee:
        i2 = np.where(q > 0, 100 * np.maximum(0.0, (q - qdf) / q), 0.0)
        h2 = q / qdf
    else:
        s2typ = qdf * sw0 / (sw0 * sw0 - sw0sq)
        ts = t + s2typ
        i2 = 100 * t / ts
        h2 = ts / s2typ
    none = k == 0
    n_none = _count(none)
    if n_none:  # no study at all: nothing is defined
        se = np.where(none, np.nan, se)
    if core:
        out = {"k": k, "estimate": mu, "se": se, "tau2": t, "i2": i2, "h2": h2, "q": q,
               "q_df": qdf, "converged": converged}  # fmt: skip
        return _finish(out, one, n_one, k, qdf, converged, method, B)

    q_p = _chi2_sf(np.maximum(qdf, 1), q)
    if n_one:
        q_p = np.where(qdf > 0, q_p, np.nan)
    stat = mu / se
    alpha = 1 - level
    z_crit = special.ndtri(1 - alpha / 2)
    if test == "z":
        crit = z_crit
        p = 2 * special.ndtr(-np.abs(stat))
    else:
        dft = np.maximum(qdf, 1)
        crit = special.stdtrit(dft, 1 - alpha / 2)
        p = 2 * special.stdtr(dft, -np.abs(stat))
        if n_one:
            crit = np.where(one, z_crit, crit)
            p = np.where(one, 2 * special.ndtr(-np.abs(stat)), p)
    ci_lb, ci_ub = mu - crit * se, mu + crit * se
    if ee:
        pi_lb = pi_ub = nan
        se_t = tau2_lb = tau2_ub = i2_lb = i2_ub = nan
        capped = np.zeros(B, bool)
    else:
        ps = np.sqrt(se * se + t)
        pi_lb, pi_ub = mu - crit * ps, mu + crit * ps
        se_t = nan if tau2 is not None else _se_tau2(method, y, v, m, k, t, w, sw)
        if qprofile:
            tau2_lb, tau2_ub, qconv, capped = tau2_ci(y, v, mask, t, level, q0=q, q_hat=q_t)
            converged = converged & (qconv | one)
            i2_lb = 100 * tau2_lb / (tau2_lb + s2typ)
            i2_ub = 100 * tau2_ub / (tau2_ub + s2typ)
        else:
            tau2_lb = tau2_ub = i2_lb = i2_ub = nan
            capped = np.zeros(B, bool)
    weights = 100 * w
    weights /= sw[:, None]
    if not full:
        weights = np.where(mask, weights, np.nan)

    if n_none:
        stat = np.where(none, np.nan, stat)
        p = np.where(none, np.nan, p)
        ci_lb = np.where(none, np.nan, ci_lb)
        ci_ub = np.where(none, np.nan, ci_ub)
    out = {
        "k": k, "estimate": mu, "se": se, "stat": stat, "p": p, "ci_lb": ci_lb, "ci_ub": ci_ub,
        "pi_lb": pi_lb, "pi_ub": pi_ub, "tau2": t, "se_tau2": se_t,
        "tau2_ci_lb": tau2_lb, "tau2_ci_ub": tau2_ub, "i2": i2, "i2_ci_lb": i2_lb,
        "i2_ci_ub": i2_ub, "h2": h2, "q": q, "q_df": qdf, "q_p": q_p, "df": df,
        "converged": converged, "weights": weights, "tau2_ci_capped": capped,
    }  # fmt: skip
    return _finish(out, one, n_one, k, qdf, converged, method, B)


_UNDEFINED_K1 = ("pi_lb", "pi_ub", "tau2", "se_tau2", "tau2_ci_lb", "tau2_ci_ub",
                 "i2", "i2_ci_lb", "i2_ci_ub", "h2", "q_p")  # fmt: skip


def _finish(out, one, n_one, k, qdf, converged, method, B):
    """k < 2 conventions and the convergence warning, for both output sets."""
    # k = 1: the pooled value is the study; heterogeneity is undefined
    if n_one:
        for key in _UNDEFINED_K1:
            if key in out:
                out[key] = np.where(one, np.nan, out[key])
        out["q"] = np.where(one & (k == 1), 0.0, out["q"])
        out["q_df"] = np.where(one, np.maximum(qdf, 0), qdf)
    if _count(converged) != B:
        bad = np.flatnonzero(~converged)
        warnings.warn(  # stacklevel: caller of fit()
            f"{method}: the iteration did not converge for {bad.size} of {B} rows "
            f"(first: row {bad[0]}); see 'converged'",
            ConvergenceWarning,
            stacklevel=4,
        )
    return out
