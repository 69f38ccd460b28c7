"""Multilevel and multivariate meta-analysis: :func:`pool_mv` (metafor's ``rma.mv``).

Several estimates per study — the same patients at several time points, or
several outcomes — are pooled in one model::

    y_ij = x_ij'β + u_ij + e_ij,   Var(e_i·) = V_i,   Var(u_i·) from a structure

* ``time=None``: the three-level model ``random = ~ 1 | study/estimate``
  (variance ``sigma2[0]`` between studies, ``sigma2[1]`` between estimates of
  a study);
* ``time=...``: ``random = ~ time | study`` with a covariance structure over
  the levels of ``time`` (:mod:`metaanalysis.models.mv_structures`).

The sampling covariance ``V`` is given, or built from ``vi`` with an assumed
within-study correlation (:mod:`metaanalysis.models.vcalc`).  Variance
components are estimated by REML or ML at the global maximum
(:mod:`metaanalysis.models.mv_fit`); the result (:class:`MVResult`) has
metafor's numbers, predictions with prediction intervals and cluster-robust
inference (CR1, CR2).

Examples
--------
>>> import metaanalysis as ma
>>> res = ma.pool_mv([0.2, 0.3, 0.1, 0.5, 0.4, 0.35], [0.01, 0.02, 0.015, 0.02, 0.01, 0.03],
...                  study=["a", "a", "b", "b", "c", "c"])
>>> res.sigma2.shape
(2,)
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from metaanalysis.effects.study_data import as_numbers, check_effects
from metaanalysis.errors import ConvergenceWarning, InputError
from metaanalysis.formatting import num
from metaanalysis.models import mv_fit
from metaanalysis.models.mv_design import code_design, time_levels
from metaanalysis.models.mv_result import MVModel, MVResult, build_result
from metaanalysis.models.mv_structures import STRUCTURES, ThreeLevel, TimeStructure
from metaanalysis.models.vcalc import blocks_from_matrix, study_rows, vcalc_blocks

__all__ = ["MVResult", "pool_mv"]

METHODS = ("REML", "ML")
MV_TESTS = ("z", "t")


def _column(value, data, name):
    if isinstance(value, str) and data is not None:
        if value not in data.columns:
            raise InputError(f"{name}: column {value!r} is not in the DataFrame")
        return data[value].to_numpy()
    return value


def _inputs(yi, vi, study, time, mods, V):
    data = yi if isinstance(yi, pd.DataFrame) else None
    if data is not None:
        if "yi" not in data.columns:
            raise InputError("yi: a DataFrame needs a 'yi' column")
        if vi is None and V is None and "vi" in data.columns:
            vi = data["vi"].to_numpy()
        yi = data["yi"].to_numpy()
        study = _column(study, data, "study")
        time = _column(time, data, "time")
        if isinstance(mods, str):
            mods = [mods]
        if isinstance(mods, (list, tuple)) and mods and all(isinstance(m, str) for m in mods):
            missing = [m for m in mods if m not in data.columns]
            if missing:
                raise InputError(f"mods: columns {missing} are not in the DataFrame")
            mods = data[list(mods)].reset_index(drop=True)
    y = as_numbers(yi, "yi")  # the package's one number check (strings, booleans, ...)
    k = y.size
    if k < 2:
        raise InputError(f"yi: got {k} estimate(s); a multilevel model needs several")
    if vi is not None:
        v = as_numbers(vi, "vi")
        if v.size != k:
            raise InputError(f"vi: got {v.size} values for {k} estimates")
        check_effects(y, v)
    elif V is None:
        raise InputError("vi: required (or give the sampling covariance matrix V)")
    else:
        v = None
        check_effects(y, np.ones(k))
    if study is None:
        raise InputError("study: required (the study of each estimate)")
    s = pd.Series(np.asarray(study, dtype=object).ravel())
    if len(s) != k:
        raise InputError(f"study: got {len(s)} values for {k} estimates")
    if s.isna().any():
        raise InputError(f"study: rows {np.flatnonzero(s.isna())[:5].tolist()} are missing")
    if time is not None:
        t = pd.Series(time if isinstance(time, pd.Categorical) else np.asarray(time).ravel())
        if len(t) != k:
            raise InputError(f"time: got {len(t)} values for {k} estimates")
        if t.isna().any():
            raise InputError(f"time: rows {np.flatnonzero(t.isna())[:5].tolist()} are missing")
        time = t
    return y, v, s.to_numpy(), time, mods


def _structure(struct, time, rows, n_studies):
    """The covariance structure and the level code of every row; raises
    :class:`InputError` when the structure cannot be identified from the data."""
    if time is None:
        if max(r.size for r in rows) < 2:
            raise InputError("study: every study has one estimate, so the between-study and "
                             "within-study variances cannot be told apart; use pool()")
        return ThreeLevel(), np.zeros(sum(r.size for r in rows), int)
    if struct not in STRUCTURES:
        raise InputError(f"struct: got {struct!r}; expected one of {', '.join(STRUCTURES)}")
    levels, values, codes = time_levels(time, numeric=struct == "CAR")
    L = len(levels)
    if L < 2 and struct != "ID":
        raise InputError(f"time: has a single level ({levels[0]!r}); use time=None (three-level "
                         "model) or struct='ID'")
    st = TimeStructure(struct, levels, values)
    if st.n_cor and not any(np.unique(codes[r]).size > 1 for r in rows):
        raise InputError(f"struct={struct!r}: no study has estimates at two different time "
                         "points, so the correlation between time points cannot be estimated; "
                         "use struct='ID' or 'DIAG'")
    if struct == "UN":
        if n_studies < L:
            raise InputError(f"struct='UN': {L} time points need at least {L} studies to "
                             f"estimate an unstructured covariance; got {n_studies}")
        seen = np.zeros((L, L), bool)
        for r in rows:
            c = np.unique(codes[r])
            seen[np.ix_(c, c)] = True
        never = [(levels[b], levels[a]) for a, b in st.pairs if not seen[a, b]]
        if never:
            raise InputError(f"struct='UN': time points {never} never occur in the same study, "
                             "so their correlation cannot be estimated; use HCS, HAR or CAR")
    return st, codes


def _starts(st, y, X, groups):
    """metafor's starting values (equal shares of the residual variance of the
    fixed-effects fit, ρ = 0.5) and, with correlations, a start at ρ ≈ 0."""
    beta, _, _, vdiag = mv_fit.fixed_effects(groups, X.shape[1])
    total = max(0.001 * st.n_var, float(np.var(y - X @ beta, ddof=1) - 1.0 / np.mean(1.0 / vdiag)))
    nat = np.concatenate([np.full(st.n_var, total / st.n_var), np.full(st.n_cor, 0.5)])
    out = [st.unconstrained(nat)]
    if st.n_cor:
        alt = nat.copy()
        alt[st.n_var:] = 0.1 if st.struct == "CAR" else 0.0
        out.append(st.unconstrained(alt))
    return out


def pool_mv(yi, vi=None, *, study, time=None, struct: str = "CS", rho: float | None = None,
            phi: float | None = None, V=None, mods=None, intercept: bool = True,
            method: str = "REML", test: str = "z", level: float = 0.95) -> MVResult:
    """Multilevel / multivariate random-effects model (metafor ``rma.mv``).

    Parameters
    ----------
    yi : array_like or DataFrame
        Estimates in long format, one per study × time point (or outcome).  A
        DataFrame supplies ``yi`` and ``vi`` columns, and ``study``, ``time``
        and ``mods`` may then be column names.
    vi : array_like, optional
        Sampling variances (not needed when ``V`` is given).
    study : array_like
        Study of each estimate (the outer grouping; estimates of different
        studies are independent).
    time : array_like, optional
        ``None``: three-level model (``random = ~ 1 | study/estimate``).
        Otherwise the inner variable of ``random = ~ time | study``: time
        points (numeric, sorted numerically) or outcome names.
    struct : {"CS", "HCS", "AR", "HAR", "CAR", "UN", "ID", "DIAG"}
        Covariance of the random effects over the levels of ``time``, as in
        metafor: AR/HAR use level positions, CAR the numeric time values.
    rho, phi : float, optional
        Assumed sampling correlation between estimates of a study: constant
        ``rho``, or ``phi^|Δtime|``.  Without either (and without ``V``) the
        sampling errors are independent.
    V : array_like, optional
        The ``k × k`` sampling covariance (block-diagonal by study).
    mods : DataFrame, Series, dict or array, optional
        Moderators.  Text and categorical columns are dummy coded (first
        level as reference); with ``intercept=False`` the first categorical
        column gets one column per level (the cell-means model,
        ``~ factor(time) - 1``).
    intercept : bool
        Include an intercept.
    method : {"REML", "ML"}
        Estimator of the variance components.
    test : {"z", "t"}
        z and χ² tests, or t tests on ``k − p`` df and an F test for the
        moderators (metafor ``test="t"``).
    level : float
        Confidence level.

    Returns
    -------
    MVResult

    Examples
    --------
    A repeated-measures model with a heteroscedastic AR(1) structure and one
    mean per time point:

    >>> import pandas as pd, metaanalysis as ma
    >>> d = pd.DataFrame({"study": list("aabbbccdd"), "time": [1, 2, 1, 2, 3, 2, 3, 1, 3],
    ...                   "yi": [3.1, 3.9, 2.5, 3.6, 4.1, 4.4, 4.9, 3.3, 4.6],
    ...                   "vi": [0.1, 0.12, 0.2, 0.15, 0.2, 0.1, 0.1, 0.3, 0.25]})
    >>> res = ma.pool_mv(d, study="study", time="time", struct="CAR", phi=0.8,
    ...                  mods=pd.DataFrame({"time": pd.Categorical(d["time"])}), intercept=False)
    >>> list(res.coef.index)
    ['time[1]', 'time[2]', 'time[3]']
    """
    if method not in METHODS:
        raise InputError(f"method: got {method!r}; expected one of {', '.join(METHODS)}")
    if test not in MV_TESTS:
        raise InputError(f"test: got {test!r}; expected 'z' or 't'")
    if not 0 < level < 1:
        raise InputError(f"level: got {level!r}; expected a number between 0 and 1")
    y, v, study_arr, time, mods = _inputs(yi, vi, study, time, mods, V)
    k = y.size
    rows = study_rows(study_arr)
    labels = [study_arr[r[0]] for r in rows]
    if V is not None:
        if rho is not None or phi is not None:
            raise InputError("V: give V, or rho/phi to build it from vi, not both")
        V_blocks = blocks_from_matrix(V, rows, labels)
        vdiag = np.diag(np.asarray(V, float)).copy()
        v_text = "V as given"
    else:
        tnum = None
        if phi is not None:
            if time is None:
                raise InputError("phi: the correlation phi^|Δtime| needs time=")
            tnum = pd.to_numeric(time, errors="coerce").to_numpy(dtype=float)
            if np.any(np.isnan(tnum)):
                raise InputError("phi: time must be numeric to compute phi^|Δtime|")
        V_blocks = vcalc_blocks(v, rows, time=tnum, rho=rho, phi=phi)
        vdiag = v
        v_text = ("independent (V = diag(vi))" if rho is None and phi is None else
                  f"constant correlation rho = {num(rho, 2)} within study" if rho is not None
                  else f"phi^|Δtime| within study, phi = {num(phi, 2)} per time unit")
    X, coding = code_design(mods, k, intercept)
    p = X.shape[1]
    if p >= k:
        raise InputError(f"mods: {p} coefficients for {k} estimates; the model needs k > p")
    Xa = X.to_numpy(dtype=float)
    if np.linalg.matrix_rank(Xa) < p:
        raise InputError(f"mods: the design matrix (columns {list(X.columns)}) is not of full "
                         "rank; drop redundant moderators")
    st, codes = _structure(struct, time, rows, len(rows))
    notes: list[str] = []
    groups = mv_fit.make_groups(y, Xa, V_blocks, rows, codes)
    logdet_xtx = float(np.linalg.slogdet(Xa.T @ Xa)[1])
    reml = method == "REML"
    args = (st, groups, k, p, logdet_xtx)
    starts = _starts(st, y, Xa, groups)
    if isinstance(st, TimeStructure) and st.struct == "UN":
        # UN has more local maxima: start from metafor's values and from the HCS fit
        hcs = TimeStructure("HCS", st.levels)
        h0 = mv_fit.maximise(_starts(hcs, y, Xa, groups)[0], hcs, groups, k, p, logdet_xtx,
                             reml=reml)
        nat = hcs.natural(h0["theta"])
        starts[1] = st.unconstrained(np.concatenate([nat[:-1], np.full(st.n_cor, nat[-1])]))
        fits = [mv_fit.maximise(t0, *args, reml=reml) for t0 in starts]
    else:
        fits = [mv_fit.maximise(starts[0], *args, reml=reml)]
        if not fits[0]["converged"]:
            fits += [mv_fit.maximise(t0, *args, reml=reml) for t0 in starts[1:]]
    ok = [f for f in fits if np.isfinite(f.get("ll", -np.inf))]
    if not ok:
        raise InputError("the marginal covariance is not positive definite at any starting "
                         "value; check V, rho/phi and struct")
    best = max(ok, key=lambda f: (f["converged"], f["ll"]))
    if not best["converged"]:
        nat = st.natural(best["theta"])
        state = ", ".join(f"{n} = {num(x)}" for n, x in zip(st.names(), nat))
        warnings.warn(f"pool_mv: {method} did not converge after {best['iterations']} "
                      f"iterations (log-likelihood {num(best['ll'])}, largest score "
                      f"{num(np.max(np.abs(best.get('score', [np.nan]))), 6)}; {state})",
                      ConvergenceWarning, stacklevel=2)
        notes.append(f"{method} did not converge; the estimates are the last state reached")
    conv = [f for f in ok if f["converged"]]
    if len(conv) > 1 and max(f["ll"] for f in conv) - min(f["ll"] for f in conv) > 1e-6:
        notes.append("several local maxima of the likelihood; the highest is reported")
    model = MVModel(structure=st, groups=tuple(groups), rows=tuple(rows), k=k, p=p,
                    logdet_xtx=logdet_xtx, theta=best["theta"], coding=coding,
                    v_text=v_text, reml=reml)
    return build_result(model, best, y=y, vdiag=vdiag, study=study_arr,
                        time=None if time is None else time.to_numpy(), X=X, method=method,
                        test=test, level=level, notes=tuple(notes))
