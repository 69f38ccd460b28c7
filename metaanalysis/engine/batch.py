"""The one numerical engine: common-, random- and mixed-effects models on batches.

:func:`fit` takes arrays of shape ``(B, k)`` — B independent meta-analyses of up
to k studies, NaN marking an absent study — and an optional design matrix
``X`` (``(k, p)`` shared by every row, or ``(B, k, p)``), and returns a dict of
arrays of length B.  ``pool`` is a batch of one; leave-one-out, cumulative
analysis, GOSH, permutations and simulations are masks or re-samplings fed to
the same function; meta-regression, subgroups with a common τ², Egger's test
and PEESE are the same function with a design.  The intercept-only model is
the case X = 1 of every formula (:mod:`metaanalysis.engine.design`).

Rows are never looped over in Python; only iterations are, and the batch is
processed in chunks of rows sized to stay in the CPU cache (every pass over a
chunk then runs at cache speed; ``chunk_size``).  A row's results do not depend
on the other rows of the batch, to the last bit: sums over studies run in one
order whatever the number of rows (:func:`metaanalysis.engine.design.ein`) and
no numerical choice is made from the batch size, so a batch cut into chunks,
permuted or spread over a cluster gives the same numbers as one call.

Conventions are metafor's ``rma.uni`` (Viechtbauer 2010, J Stat Softw 36(3));
see :mod:`metaanalysis.engine.inference` for the tests, heterogeneity
statistics, SE of τ² and prediction intervals, :mod:`metaanalysis.engine.tau2`
for the estimators and :mod:`metaanalysis.engine.qprofile` for the Q-profile
intervals.

Examples
--------
>>> import numpy as np
>>> from metaanalysis import engine
>>> out = engine.fit(np.array([[0.1, 0.3, 0.35]]), np.array([[0.01, 0.02, 0.015]]),
...                  method="DL")
>>> sorted(out)[:3]
['ci_lb', 'ci_ub', 'converged']
>>> reg = engine.fit([0.1, 0.3, 0.35, 0.5], [0.01, 0.02, 0.015, 0.02],
...                  X=[[1, 0], [1, 1], [1, 2], [1, 3]], method="REML")
>>> reg["coef"].shape, reg["qm_df"].tolist()
((1, 2), [1])
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import special

from metaanalysis.engine.design import colsum, ein, make_design
from metaanalysis.engine.inference import (
    chi2_sf,
    critical,
    pvalue,
    scale_factor,
    se_tau2,
    wald,
)
from metaanalysis.engine.qprofile import tau2_ci
from metaanalysis.engine.roots import count_true
from metaanalysis.engine.tau2 import CHUNK_ESTIMATORS
from metaanalysis.engine.wls import Chunk, wls
from metaanalysis.errors import ConvergenceWarning, InputError

__all__ = ["CORE_KEYS", "KEYS", "METHODS", "REG_CORE_KEYS", "REG_KEYS", "TESTS", "check_btt",
           "fit"]

METHODS = ("EE", "DL", "HE", "HS", "HSk", "SJ", "ML", "REML", "EB", "PM", "PMM")
TESTS = ("z", "knha", "adhoc")
_HET = ("tau2", "se_tau2", "tau2_ci_lb", "tau2_ci_ub", "i2", "i2_ci_lb", "i2_ci_ub",
        "h2", "h2_ci_lb", "h2_ci_ub", "q", "q_df", "q_p", "df", "converged")  # fmt: skip
KEYS = ("k", "estimate", "se", "stat", "p", "ci_lb", "ci_ub", "pi_lb", "pi_ub") + _HET
REG_KEYS = ("k", "coef", "coef_se", "coef_stat", "coef_p", "coef_ci_lb", "coef_ci_ub",
            "vcov", "qm", "qm_df", "qm_df2", "qm_p") + _HET  # fmt: skip
# what ``outputs="core"`` returns: the estimate and heterogeneity of each row
CORE_KEYS = ("k", "estimate", "se", "tau2", "i2", "h2", "q", "q_df", "converged")
REG_CORE_KEYS = ("k", "coef", "coef_se", "tau2", "i2", "h2", "q", "q_df", "converged")
_EXTRA = ("weights", "tau2_ci_capped")
_PROFILE = ("tau2_ci_lb", "tau2_ci_ub", "i2_ci_lb", "i2_ci_ub", "h2_ci_lb", "h2_ci_ub")
_PROFILE_SET = frozenset(_PROFILE)
_ALL, _ALL_REG = frozenset(KEYS + _EXTRA), frozenset(REG_KEYS + _EXTRA)
# keys that need the weighted least-squares fit at τ̂²
_FIT_KEYS = frozenset(("estimate", "se", "stat", "p", "ci_lb", "ci_ub", "pi_lb", "pi_ub", "coef",
                       "coef_se", "coef_stat", "coef_p", "coef_ci_lb", "coef_ci_ub", "vcov", "qm",
                       "qm_p", "weights", "se_tau2"))
# keys that need Q_E, tr P and the typical within-study variance s²
_HET_KEYS = frozenset(("i2", "h2", "q", "q_df", "q_p") + _PROFILE + ("tau2_ci_capped",))
_CHUNK_ELEMENTS = 262144  # k × rows per chunk: (k, n) float arrays of 2 MB


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
        a = np.asarray(x, dtype=float)  # never written to: no copy of float64 input
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{name}: could not read as numbers ({exc}); expected a (B, k) array"
        ) from None
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise InputError(f"{name}: got an array of shape {a.shape}; expected shape (B, k)")
    return a


def _wanted(outputs, reg):
    keys = REG_KEYS if reg else KEYS
    if isinstance(outputs, str):
        if outputs == "all":
            return _ALL_REG if reg else _ALL
        if outputs == "core":
            return set(REG_CORE_KEYS if reg else CORE_KEYS)
        raise InputError(f"outputs: got {outputs!r}; expected 'all', 'core' or a list of keys")
    want = set(outputs)
    unknown = want - set(keys) - set(_EXTRA)
    if unknown:
        raise InputError(f"outputs: unknown keys {sorted(unknown)}; expected keys of "
                         f"{', '.join(keys + _EXTRA)}")
    return want | {"k", "converged"}


def fit(
    yi,
    vi,
    *,
    X=None,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
    tau2=None,
    qprofile: bool = True,
    outputs="all",
    mask=None,
    btt=None,
    chunk_size: int | None = None,
) -> dict[str, np.ndarray]:
    """Fit B meta-analyses (or meta-regressions) at once.

    Parameters
    ----------
    yi, vi : array_like, shape (B, k) (or (k,) for one analysis)
        Effect sizes and their sampling variances; NaN in either marks an
        absent study, so rows may have different k.
    X : array_like, shape (k, p) or (B, k, p), optional
        Design matrix (include the intercept column yourself); ``None`` is the
        intercept-only model.  Columns are used as given; collinear columns
        raise :class:`InputError`.
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
        Compute Q-profile intervals for τ², I² and H² (NaN when False or for ``EE``).
    outputs : "all", "core" or a collection of keys
        Compute only these: ``"core"`` is :data:`CORE_KEYS` (:data:`REG_CORE_KEYS`
        with ``X``); a collection names keys of :data:`KEYS` (:data:`REG_KEYS`),
        ``weights`` or ``tau2_ci_capped`` (``k`` and ``converged`` always come).
        Values are those of ``"all"``, computed the same way.
    mask : array_like of bool, shape (B, k), optional
        Studies present in each row.  ``yi`` and ``vi`` are then the k studies
        (shape ``(k,)``, all finite, ``vi > 0``) and row b fits the studies
        with ``mask[b]`` True: subsets of one data set (leave-one-out, GOSH)
        without building NaN-filled copies.
    btt : sequence of int, optional
        Coefficients tested by Q_M (with ``X``; default: all but the first
        column when that column is constant, as metafor's intercept rule,
        otherwise all).
    chunk_size : int, optional
        Rows per chunk (default: about 262,000 / k).

    Returns
    -------
    dict of ndarray
        Intercept-only: :data:`KEYS` (length B each), ``weights`` (B, k) in
        percent with NaN where absent, and ``tau2_ci_capped`` (bool: upper τ²
        limit hit the search bound ``max(100, 10 τ̂²)``).  With ``X``:
        :data:`REG_KEYS` — ``coef``, ``coef_se``, ... of shape (B, p),
        ``vcov`` (B, p, p), ``qm`` (Wald χ², or F with knha/adhoc) on
        ``qm_df`` (and ``qm_df2``) degrees of freedom — plus ``weights`` and
        ``tau2_ci_capped``.  ``df`` is the t df (k − p) for knha/adhoc, NaN for z.

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
    reg = X is not None
    want = _wanted(outputs, reg)
    with np.errstate(divide="ignore", invalid="ignore"):
        if mask is None:
            y, v, present, B, k = _prepare(yi, vi)
        else:
            y, v, present, B, k = _prepare_masked(yi, vi, mask)
        d = make_design(X, k, B)
        if reg:
            bt = _btt(X, d.p, btt)
        else:
            bt = None
        fixed = None
        if tau2 is not None:
            fixed = np.broadcast_to(np.asarray(tau2, dtype=float), (B,))
            if not np.all(np.isfinite(fixed)) or np.any(fixed < 0):
                raise InputError(f"tau2: got {tau2!r}; expected finite values >= 0")
        n_c = int(chunk_size) if chunk_size else max(64, _CHUNK_ELEMENTS // max(k, 1))
        out: dict[str, np.ndarray] = {}
        for r0 in range(0, B, n_c):
            r1 = min(B, r0 + n_c)
            # a single row is fitted as two copies of itself: NumPy's sums over the
            # studies of one row would round differently (design.ein)
            one = r1 - r0 == 1
            sel = np.array([r0, r0]) if one else slice(r0, r1)
            c = _chunk(d, y, v, present, sel, mask is not None)
            res = _fit_chunk(c, method, test, float(level), None if fixed is None else
                             fixed[sel], qprofile, want, bt, reg)
            if one:
                res = {key: val[:1] for key, val in res.items()}
            if r0 == 0 and r1 == B:
                out = res
                break
            for key, val in res.items():
                if key not in out:
                    out[key] = np.empty((B,) + val.shape[1:], dtype=val.dtype)
                out[key][r0:r1] = val
    conv = out["converged"]
    if count_true(conv) != B:
        bad = np.flatnonzero(~conv)
        warnings.warn(  # stacklevel: caller of fit()
            f"{method}: the iteration did not converge for {bad.size} of {B} rows "
            f"(first: row {bad[0]}); see 'converged'",
            ConvergenceWarning,
            stacklevel=3,
        )
    return out


def check_btt(btt, p: int) -> list[int]:
    """``btt`` as a list of coefficient numbers; :class:`InputError` unless they are
    distinct numbers in 0..p − 1.

    Examples
    --------
    >>> check_btt((1, 2), 3)
    [1, 2]
    """
    try:
        bt = [int(j) for j in btt]
    except (TypeError, ValueError):
        raise InputError(f"btt: got {btt!r}; expected coefficient numbers") from None
    if not bt or min(bt) < 0 or max(bt) >= p or len(set(bt)) != len(bt):
        raise InputError(f"btt: got {btt!r}; expected distinct numbers in 0..{p - 1}")
    return bt


def _btt(X, p, btt):
    if btt is not None:
        return check_btt(btt, p)
    X = np.asarray(X, dtype=float)
    first = X[..., 0] if X.ndim > 1 else X
    const = bool(np.all(first == first.reshape(-1)[0])) and p > 1
    return list(range(1, p)) if const else list(range(p))


def _prepare(yi, vi):
    """Checked (B, k) arrays and the presence mask."""
    yi = _as2d(yi, "yi")
    vi = _as2d(vi, "vi")
    if yi.shape != vi.shape:
        raise InputError(f"yi, vi: shapes {yi.shape} and {vi.shape} differ; expected equal shapes")
    if yi.size and _all_finite(yi) and _all_finite(vi) and vi.min() > 0:
        return yi, vi, None, yi.shape[0], yi.shape[1]  # every study present
    present = np.isfinite(yi)
    present &= np.isfinite(vi)
    badv = vi <= 0  # NaN compares False
    badv &= present
    if count_true(badv):
        r, c = np.argwhere(badv)[0]
        raise InputError(
            f"vi: got {float(vi[r, c])!r} (row {r}, study {c}); expected sampling variances > 0"
        )
    full = count_true(present) == present.size
    return yi, vi, (None if full else present), yi.shape[0], yi.shape[1]


def _all_finite(a) -> bool:
    """Every value finite: two reductions, no temporaries (NaN makes min and max NaN)."""
    return bool(-np.inf < a.min() and a.max() < np.inf)


def _prepare_masked(yi, vi, mask):
    """One set of k studies and the (B, k) subsets ``mask``."""
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
    return yi[0], vi[0], mask, mask.shape[0], kk


def _chunk(d, y, v, present, sel, masked):
    """Rows ``sel`` (a slice or row numbers) in the engine's layout (k, n)."""
    dc = d if d.shared else d.take(sel)
    if masked:  # y, v: (k,); present: the (B, k) mask
        mT = np.ascontiguousarray(present[sel].T)
        m = mT.astype(float)
        yT = m * y[:, None]
        vT = np.where(mT, v[:, None], np.inf)
        full = count_true(mT) == mT.size
        return Chunk(dc, yT, vT, None if full else m)
    if present is None:
        return Chunk(dc, np.ascontiguousarray(y[sel].T), np.ascontiguousarray(v[sel].T))
    mT = np.ascontiguousarray(present[sel].T)
    if count_true(mT) == mT.size:
        return Chunk(dc, np.ascontiguousarray(y[sel].T), np.ascontiguousarray(v[sel].T))
    yT = np.where(mT, y[sel].T, 0.0)
    vT = np.where(mT, v[sel].T, np.inf)
    return Chunk(dc, yT, vT, mT.astype(float))


def _fit_chunk(c, method, test, level, fixed, qprofile, want, btt, reg):
    n, p = c.n, c.p
    k = c.k
    df = k - p
    one = df < 1  # no residual degrees of freedom (k = 1 without moderators)
    n_one = count_true(one)
    none = k == 0
    if reg and not (c.full and c.d.shared):  # per-row designs were checked when made
        none = none | ~c.d.full_rank(c.m)
    n_none = count_true(none)
    # ---- τ²
    ee = method == "EE" and fixed is None
    if fixed is not None:
        t = np.array(fixed, dtype=float)
        conv = np.ones(n, dtype=bool)
    elif ee:
        t = np.zeros(n)
        conv = np.ones(n, dtype=bool)
    else:
        t, conv = CHUNK_ESTIMATORS[method](c)
    if n_one:
        t = np.where(one, 0.0, t)
    res = {"k": k, "tau2": t, "converged": conv}

    # ---- coefficients at τ̂²
    need_fit = bool(want & _FIT_KEYS or (qprofile and want & _PROFILE_SET))
    w = A = q_t = None
    if need_fit:
        need_q = test != "z" or bool(qprofile and want & _PROFILE_SET)
        w, S, A, gam, r = wls(c.d, c.y, c.v, t, resid=need_q)
        if need_q:
            # generalised Q_E at τ̂² (Knapp–Hartung, Q-profile start): Σ (w r) r, the products
            # and sums of colsum(w * r, r) without the temporary w * r
            q_t = ein("ij,ij,ij->j", w, r, r)
        vb = A
        if test != "z":
            vb = A * scale_factor(test, q_t, df)
        if "df" in want:
            res["df"] = (np.where(one, np.nan, df.astype(float)) if test != "z"
                         else np.full(n, np.nan))
        crit = critical(test, level, df) if want & {"ci_lb", "pi_lb", "coef_ci_lb"} else None
        if reg:
            _coefficients(res, c, gam, vb, test, df, crit, want, btt)
        else:
            se = np.sqrt(vb)
            res["estimate"], res["se"] = gam, se
            if want & {"stat", "p"}:
                res["stat"] = gam / se
                res["p"] = pvalue(test, res["stat"], df)
            if crit is not None:
                res["ci_lb"], res["ci_ub"] = gam - crit * se, gam + crit * se
                if ee:
                    res["pi_lb"] = res["pi_ub"] = np.full(n, np.nan)
                else:
                    ps = np.sqrt(vb + t)
                    res["pi_lb"], res["pi_ub"] = gam - crit * ps, gam + crit * ps
        if "weights" in want:
            wt = 100 * w / colsum(w)
            if not c.full:
                wt = np.where(c.m > 0, wt, np.nan)
            res["weights"] = wt.T
    else:
        res["df"] = np.where(one, np.nan, df.astype(float)) if test != "z" else np.full(n, np.nan)

    # ---- heterogeneity: Q_E, I², H² (the closed-form estimators with outputs such as
    # ("tau2", "estimate", "se") skip them)
    if want & _HET_KEYS:
        q0 = c.q0
        trp0 = c.trp0
        # typical within-study variance; tr P cancels to 0 when the vᵢ span ~1e16 or more
        s2 = np.where(trp0 > 0, df / trp0, np.nan)
        if ee:
            with np.errstate(divide="ignore", invalid="ignore"):
                i2 = np.where(q0 > 0, 100 * np.maximum(0.0, (q0 - df) / q0), 0.0)
                h2 = q0 / df
        else:
            i2 = 100 * t / (t + s2)
            h2 = t / s2 + 1.0
        res.update(i2=i2, h2=h2, q=q0, q_df=df)
    if "q_p" in want:
        res["q_p"] = chi2_sf(np.maximum(df, 1), q0)
    if "se_tau2" in want:
        res["se_tau2"] = (np.full(n, np.nan) if ee or fixed is not None
                          else se_tau2(c, method, t, w, A))
    if want & _PROFILE_SET or "tau2_ci_capped" in want:
        if qprofile and not ee:
            lb, ub, qconv, capped = tau2_ci(c, t, level, q_hat=q_t)
            res["converged"] = conv = conv & (qconv | one)
            res.update(tau2_ci_lb=lb, tau2_ci_ub=ub, i2_ci_lb=100 * lb / (lb + s2),
                       i2_ci_ub=100 * ub / (ub + s2), h2_ci_lb=lb / s2 + 1,
                       h2_ci_ub=ub / s2 + 1, tau2_ci_capped=capped)
        else:
            nan = np.full(n, np.nan)
            res.update({key: nan for key in _PROFILE})
            res["tau2_ci_capped"] = np.zeros(n, dtype=bool)
    # k ≤ p: metafor's conventions (τ² = 0, Q_E = 0 with p = 1, I² = 0, H² = 1)
    if n_one:
        for key, val in (("q", 0.0), ("q_p", 1.0), ("i2", 0.0), ("h2", 1.0), ("q_df", 0)):
            if key in res:
                res[key] = np.where(one, val, res[key])
        for key in ("se_tau2",) + _PROFILE:
            if key in res:
                res[key] = np.where(one, np.nan, res[key])
    if n_none:  # no study, or moderators the present studies cannot identify
        for key, val in res.items():
            if val.dtype.kind == "f" and key not in ("q_df",):
                res[key] = np.where(none.reshape((-1,) + (1,) * (val.ndim - 1)), np.nan, val)
    return {key: val for key, val in res.items() if key in want}


def _coefficients(res, c, gam, vb, test, df, crit, want, btt):
    """Coefficients, their tests and Q_M in the original columns of X."""
    beta, V = c.d.to_original(gam, vb)
    se = np.sqrt(c.d.diag(V))
    res["coef"], res["coef_se"], res["vcov"] = beta.T, se.T, V.transpose(2, 0, 1)
    if want & {"coef_stat", "coef_p"}:
        stat = beta / se
        res["coef_stat"] = stat.T
        res["coef_p"] = pvalue(test, stat, df).T
    if crit is not None:
        res["coef_ci_lb"], res["coef_ci_ub"] = (beta - crit * se).T, (beta + crit * se).T
    if want & {"qm", "qm_p", "qm_df", "qm_df2"}:
        m = len(btt)
        qm = wald(beta, V, btt)
        n = c.n
        if test == "z":
            res["qm"], res["qm_p"] = qm, chi2_sf(np.full(n, m), qm)
            res["qm_df2"] = np.full(n, np.nan)
        else:
            f = qm / m
            with np.errstate(invalid="ignore"):
                res["qm"], res["qm_p"] = f, special.fdtrc(m, np.maximum(df, 1), f)
            res["qm_df2"] = df.astype(float)
        res["qm_df"] = np.full(n, m)
