"""Study-level effect sizes and their sampling variances (metafor's ``escalc``).

Every measure uses the formula, sign convention and default large-sample
("LS") variance of metafor's ``escalc`` (Viechtbauer 2010, J Stat Softw 36(3);
the formulas are those given on the ``escalc`` help page of metafor 3.8), so
that ``yi`` and ``vi`` agree with R to rounding error.  Sources per measure:

* ``PR``, ``PLO``, ``PAS``, ``PFT`` -- raw, logit, arcsine square-root and
  Freeman-Tukey double-arcsine proportion (Freeman & Tukey 1950, Ann Math Stat
  21:607; variance 1/(4n + 2) as in Miller 1978, Am Stat 32:138).
* ``MN``, ``MNLN`` -- raw mean, log mean (delta method).
* ``MC``, ``SMCR`` -- raw mean change (pre minus post) and mean change
  standardised by the pre-treatment SD (Becker 1988, Br J Math Stat Psychol
  41:257), with the pre-post correlation ``r``.
* ``MD``, ``SMD``, ``ROM`` -- raw mean difference (heteroscedastic variance),
  Hedges' g with the exact small-sample correction
  ``c(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2))``, m = n1 + n2 - 2
  (Hedges 1981, J Educ Stat 6:107), log ratio of means (Hedges, Gurevitch &
  Curtis 1999, Ecology 80:1150).
* ``RR``, ``OR``, ``RD`` -- log risk ratio, log odds ratio, risk difference
  for 2x2 tables, with the continuity correction of metafor.
* ``ZCOR``, ``COR`` -- Fisher's r-to-z and the raw correlation.
* ``GEN`` -- an estimate already on the analysis scale with its variance,
  standard error or (symmetric, Wald) confidence interval.

Continuity correction (``add``, ``to``, ``drop00``) as in metafor: for 2x2
tables (RR, OR, RD) and for PR and PLO, ``add`` is added to every cell of the
tables with a zero cell (``to="only0"``, default), to all tables (``"all"``),
to all tables when any has a zero cell (``"if0all"``), or never (``"none"``).
PAS and PFT are defined at 0 and n, so for them ``add`` defaults to 0 (as in
metafor; an explicit ``add`` is applied to them too).  ``drop00=True``
sets the 2x2 tables with no events in either arm (or only events) to NaN.
Values that come out infinite (e.g. a zero cell with ``to="none"``) are set to
NaN with a :class:`~metaanalysis.errors.StatisticalWarning`, like metafor's
recoding to ``NA``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from metaanalysis.effects.study_data import as_numbers
from metaanalysis.errors import InputError, StatisticalWarning

__all__ = ["MEASURES", "effect_sizes", "measure_arguments"]

# measure -> (required arguments, optional arguments)
_ARGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "PR": (("events", "total"), ()),
    "PLO": (("events", "total"), ()),
    "PAS": (("events", "total"), ()),
    "PFT": (("events", "total"), ()),
    "MN": (("mean", "sd", "n"), ()),
    "MNLN": (("mean", "sd", "n"), ()),
    "MC": (("mean_pre", "sd_pre", "mean_post", "sd_post", "n", "r"), ()),
    "SMCR": (("mean_pre", "sd_pre", "mean_post", "n", "r"), ("sd_post",)),
    "MD": (("mean1", "sd1", "n1", "mean2", "sd2", "n2"), ()),
    "SMD": (("mean1", "sd1", "n1", "mean2", "sd2", "n2"), ()),
    "ROM": (("mean1", "sd1", "n1", "mean2", "sd2", "n2"), ()),
    "RR": (("events1", "total1", "events2", "total2"), ()),
    "OR": (("events1", "total1", "events2", "total2"), ()),
    "RD": (("events1", "total1", "events2", "total2"), ()),
    "ZCOR": (("r", "n"), ()),
    "COR": (("r", "n"), ()),
    "GEN": (("estimate",), ("vi", "se", "ci_lb", "ci_ub", "n")),
}

#: The measure codes :func:`effect_sizes` knows, in metafor's spelling.
MEASURES: tuple[str, ...] = tuple(_ARGS)

_TO = ("all", "only0", "if0all", "none")


def measure_arguments(measure: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return ``(required, optional)`` argument names for ``measure``.

    Examples
    --------
    >>> measure_arguments("RR")[0]
    ('events1', 'total1', 'events2', 'total2')
    """
    return _ARGS[_check_measure(measure)]


# --------------------------------------------------------------------------- helpers


def _check_measure(measure: Any) -> str:
    if not isinstance(measure, str) or measure.upper() not in _ARGS:
        raise InputError(
            f"effect_sizes: measure = {measure!r} is not known; expected one of "
            + ", ".join(MEASURES)
        )
    return measure.upper()


def _first_bad(name: str, values: np.ndarray, bad: np.ndarray, expected: str) -> None:
    """Raise InputError naming the first offending element of ``values``."""
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        idx = np.flatnonzero(bad)
        i = int(idx[0])
        more = f" (and {idx.size - 1} more)" if idx.size > 1 else ""
        raise InputError(f"effect_sizes: {name}[{i}] = {values[i]:g}{more}; expected {expected}")


def _resolve(name: str, value: Any, data: pd.DataFrame | None) -> np.ndarray:
    """Turn an argument (array, scalar or column name in ``data``) into a float array."""
    if isinstance(value, str):
        if data is None:
            raise InputError(
                f"effect_sizes: {name} = {value!r} is a column name but no data was given; "
                "pass data=DataFrame or an array"
            )
        if value not in data.columns:
            raise InputError(
                f"effect_sizes: {name} = {value!r} is not a column of data; columns are "
                + ", ".join(map(str, data.columns))
            )
        value = data[value]
    arr = as_numbers(value, f"effect_sizes: {name}", ndim=None)  # no text, no booleans
    if arr.ndim > 1:
        raise InputError(
            f"effect_sizes: {name} has shape {arr.shape}; expected one value per study"
        )
    return arr


def _broadcast(arrays: dict[str, np.ndarray], k: int | None) -> tuple[dict[str, np.ndarray], int]:
    """Give every argument length ``k`` (scalars are repeated); lengths must agree."""
    if k is None:
        sized = {nm: a.size for nm, a in arrays.items() if a.ndim == 1}
        k = max(sized.values()) if sized else 1
        ref = next((nm for nm, s in sized.items() if s == k), None)
    else:
        ref = "data"
    out = {}
    for nm, a in arrays.items():
        if a.ndim == 0:
            out[nm] = np.full(k, float(a))
        elif a.size != k:
            what = f"data has {k} rows" if ref == "data" else f"{ref} has length {k}"
            raise InputError(
                f"effect_sizes: {nm} has length {a.size} but {what}; expected equal lengths"
            )
        else:
            out[nm] = a.astype(float, copy=True)
    return out, k


def _nonneg(name, x):
    _first_bad(name, x, x < 0, f"{name} >= 0")


def _positive(name, x):
    _first_bad(name, x, x <= 0, f"{name} > 0")


def _at_least(name, x, lo):
    _first_bad(name, x, x < lo, f"{name} >= {lo:g}")


def _events_le_total(ev, tot, x, n):
    _nonneg(ev, x)
    _positive(tot, n)
    bad = x > n
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"effect_sizes: {ev}[{i}] = {x[i]:g} is larger than {tot}[{i}] = {n[i]:g}; "
            f"expected 0 <= {ev} <= {tot}"
        )


def _correlation(name, r, closed=True):
    if closed:
        _first_bad(name, r, np.abs(r) > 1, f"-1 <= {name} <= 1")
    else:
        _first_bad(name, r, np.abs(r) >= 1, f"-1 < {name} < 1")


def hedges_c(m: np.ndarray) -> np.ndarray:
    """Exact small-sample correction ``c(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2))``.

    Hedges (1981), J Educ Stat 6:107, eq. 6b; ``c(m) ~ 1 - 3/(4m - 1)``.

    Examples
    --------
    >>> round(float(hedges_c(10)), 6)
    0.922746
    """
    m = np.asarray(m, dtype=float)
    return np.exp(special.gammaln(m / 2) - 0.5 * np.log(m / 2) - special.gammaln((m - 1) / 2))


def _zero_correct(cells: list[np.ndarray], add: float, to: str) -> list[np.ndarray]:
    """metafor's continuity correction on a list of cell arrays (rows = studies)."""
    if to == "none" or add == 0:
        return cells
    has0 = np.zeros(cells[0].shape, dtype=bool)
    for c in cells:
        has0 |= c == 0
    if to == "all":
        rows = np.ones_like(has0)
    elif to == "only0":
        rows = has0
    else:  # if0all
        rows = np.full(has0.shape, bool(has0.any()))
    return [np.where(rows, c + add, c) for c in cells]


# ------------------------------------------------------------------------- measures


def _proportions(measure, a, add, to):
    x, n = a["events"], a["total"]
    _events_le_total("events", "total", x, n)
    ni = n.copy()
    xi, mi = _zero_correct([x, n - x], add, to)
    nc = xi + mi
    if measure == "PAS":
        return np.arcsin(np.sqrt(xi / nc)), 1 / (4 * nc), ni
    if measure == "PFT":
        yi = 0.5 * (np.arcsin(np.sqrt(xi / (nc + 1))) + np.arcsin(np.sqrt((xi + 1) / (nc + 1))))
        return yi, 1 / (4 * nc + 2), ni
    p = xi / nc
    if measure == "PR":
        return p, p * (1 - p) / nc, ni
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(xi / mi), 1 / xi + 1 / mi, ni  # PLO


def _two_by_two(measure, a, add, to, drop00):
    for g in ("1", "2"):
        _events_le_total("events" + g, "total" + g, a["events" + g], a["total" + g])
    ai, ci = a["events1"], a["events2"]
    bi, di = a["total1"] - ai, a["total2"] - ci
    ni = a["total1"] + a["total2"]
    dropped = ((ai == 0) & (ci == 0)) | ((bi == 0) & (di == 0)) if drop00 else None
    if dropped is not None and dropped.any():
        ai, bi, ci, di = (np.where(dropped, np.nan, c) for c in (ai, bi, ci, di))
    ai, bi, ci, di = _zero_correct([ai, bi, ci, di], add, to)
    n1, n2 = ai + bi, ci + di
    p1, p2 = ai / n1, ci / n2
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "RR":
            return np.log(p1 / p2), 1 / ai - 1 / n1 + 1 / ci - 1 / n2, ni
        if measure == "OR":
            return np.log(ai * di / (bi * ci)), 1 / ai + 1 / bi + 1 / ci + 1 / di, ni
    return p1 - p2, p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2, ni  # RD


def _single_mean(measure, a):
    m, sd, n = a["mean"], a["sd"], a["n"]
    _positive("sd", sd)
    _at_least("n", n, 2)
    if measure == "MN":
        return m, sd**2 / n, n.copy()
    _positive("mean", m)  # log of the mean
    return np.log(m), sd**2 / (n * m**2), n.copy()


def _mean_change(measure, a):
    m1, m2, sd1, n, r = a["mean_pre"], a["mean_post"], a["sd_pre"], a["n"], a["r"]
    _positive("sd_pre", sd1)
    _correlation("r", r)
    if measure == "MC":
        sd2 = a["sd_post"]
        _positive("sd_post", sd2)
        _at_least("n", n, 2)
        return m1 - m2, (sd1**2 + sd2**2 - 2 * r * sd1 * sd2) / n, n.copy()
    if "sd_post" in a:
        _positive("sd_post", a["sd_post"])
    _at_least("n", n, 3)  # c(n - 1) needs n - 1 >= 2
    yi = hedges_c(n - 1) * (m1 - m2) / sd1
    return yi, 2 * (1 - r) / n + yi**2 / (2 * n), n.copy()


def _two_means(measure, a):
    m1, sd1, n1, m2, sd2, n2 = (a[k] for k in ("mean1", "sd1", "n1", "mean2", "sd2", "n2"))
    for nm in ("sd1", "sd2"):
        _positive(nm, a[nm])
    for nm in ("n1", "n2"):
        _at_least(nm, a[nm], 2)
    ni = n1 + n2
    if measure == "MD":
        return m1 - m2, sd1**2 / n1 + sd2**2 / n2, ni
    if measure == "SMD":
        sdp = np.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / (n1 + n2 - 2))
        yi = hedges_c(n1 + n2 - 2) * (m1 - m2) / sdp
        return yi, 1 / n1 + 1 / n2 + yi**2 / (2 * ni), ni
    _positive("mean1", m1)  # ROM: log of the ratio of means
    _positive("mean2", m2)
    return np.log(m1 / m2), sd1**2 / (n1 * m1**2) + sd2**2 / (n2 * m2**2), ni


def _correlations(measure, a):
    r, n = a["r"], a["n"]
    if measure == "COR":
        _correlation("r", r)
        _at_least("n", n, 2)
        return r.copy(), (1 - r**2) ** 2 / (n - 1), n.copy()
    _correlation("r", r, closed=False)
    _first_bad("n", n, n <= 3, "n > 3 (the variance of Fisher's z is 1/(n - 3))")
    return np.arctanh(r), 1 / (n - 3), n.copy()


def _generic(a, level):
    yi = a["estimate"].copy()
    given = [nm for nm in ("vi", "se", "ci_lb", "ci_ub") if nm in a]
    ni = a["n"].copy() if "n" in a else None
    if given == ["vi"]:
        _nonneg("vi", a["vi"])
        return yi, a["vi"].copy(), ni
    if given == ["se"]:
        _nonneg("se", a["se"])
        return yi, a["se"] ** 2, ni
    if given == ["ci_lb", "ci_ub"]:
        if not 0 < level < 1:
            raise InputError(f"effect_sizes: level = {level!r}; expected 0 < level < 1")
        lb, ub = a["ci_lb"], a["ci_ub"]
        width = ub - lb
        _first_bad("ci_ub - ci_lb", width, width < 0, "ci_lb <= ci_ub")
        z = stats.norm.ppf(0.5 + level / 2)
        return yi, (width / (2 * z)) ** 2, ni
    raise InputError(
        "effect_sizes: measure GEN needs exactly one of vi, se, or ci_lb + ci_ub; got "
        + (", ".join(given) if given else "none of them")
    )


# ----------------------------------------------------------------------------- API


def effect_sizes(
    measure: str,
    data: pd.DataFrame | None = None,
    *,
    add: float | None = None,
    to: str = "only0",
    drop00: bool = False,
    level: float = 0.95,
    **columns: Any,
) -> pd.DataFrame:
    """Compute study-level effect sizes ``yi`` and sampling variances ``vi``.

    The formulas, sign conventions and default variances are those of
    metafor's ``escalc`` (Viechtbauer 2010, J Stat Softw 36(3)); see the
    module docstring and ``docs/effect_sizes.md`` for the source of each.

    Parameters
    ----------
    measure : str
        One of ``PR, PLO, PAS, PFT, MN, MNLN, MC, SMCR, MD, SMD, ROM, RR, OR,
        RD, ZCOR, COR, GEN``.
    data : DataFrame, optional
        When given, each argument in ``columns`` may be a column name of
        ``data``, and every column of ``data`` is passed through to the
        result (e.g. ``study``, ``estimated``, ``conversion``).
    add, to, drop00 : float, str, bool
        Continuity correction as in metafor (defaults ``add=0.5``,
        ``to="only0"``, ``drop00=False``); ``to`` is one of ``"all"``,
        ``"only0"``, ``"if0all"``, ``"none"``.  Used by RR, OR, RD, PR, PLO,
        and by PAS and PFT only when ``add`` is given explicitly (their
        default is ``add=0``, as in metafor); ``drop00`` only by RR, OR, RD.
    level : float
        Confidence level of ``ci_lb``/``ci_ub`` for ``GEN`` (Wald interval
        on the analysis scale: ``se = (ci_ub - ci_lb) / (2 z)``).
    **columns
        The measure's arguments, arrays or scalars (scalars are repeated):

        - PR, PLO, PAS, PFT: ``events, total``
        - MN, MNLN: ``mean, sd, n``
        - MC: ``mean_pre, sd_pre, mean_post, sd_post, n, r`` (yi = pre - post)
        - SMCR: ``mean_pre, sd_pre, mean_post, n, r``
        - MD, SMD, ROM: ``mean1, sd1, n1, mean2, sd2, n2``
        - RR, OR, RD: ``events1, total1, events2, total2``
        - ZCOR, COR: ``r, n``
        - GEN: ``estimate`` and one of ``vi``, ``se``, ``ci_lb`` + ``ci_ub``
          (optional ``n``)

    Returns
    -------
    DataFrame
        One row per study: the columns of ``data`` (or, without ``data``, the
        arguments under their names), then ``yi``, ``vi`` and ``ni`` (total
        sample size, metafor's ``ni`` attribute; absent for ``GEN`` without
        ``n``).  ``df.attrs["measure"]`` is the measure; ``df.attrs["add"]``,
        ``["to"]``, ``["drop00"]`` record the continuity correction;
        ``df.attrs["columns"]`` maps each argument given as a column name
        (or, without ``data``, every argument) to its column, e.g.
        ``{"events1": "ev_trt", ...}``, so that forest plots show the data.

    Raises
    ------
    InputError
        Unknown measure, missing or unexpected arguments, mismatched lengths,
        negative counts, events > total, sd <= 0, n too small, r outside
        [-1, 1].

    Examples
    --------
    >>> import metaanalysis as ma
    >>> es = ma.effect_sizes("RR", events1=[4, 6], total1=[123, 306],
    ...                      events2=[11, 29], total2=[139, 303])
    >>> es["yi"].round(4).tolist()
    [-0.8893, -1.5854]
    >>> es.attrs["measure"]
    'RR'
    """
    measure = _check_measure(measure)
    if data is not None and not isinstance(data, pd.DataFrame):
        raise InputError(
            f"effect_sizes: data is a {type(data).__name__}; expected a pandas DataFrame"
        )
    if to not in _TO:
        raise InputError(
            f"effect_sizes: to = {to!r}; expected one of " + ", ".join(map(repr, _TO))
        )
    if add is None:
        add = 0.0 if measure in ("PAS", "PFT") else 0.5
    try:
        add = float(add)
    except (TypeError, ValueError):
        raise InputError(f"effect_sizes: add = {add!r}; expected a number >= 0") from None
    if not np.isfinite(add) or add < 0:
        raise InputError(f"effect_sizes: add = {add!r}; expected a number >= 0")
    if not isinstance(drop00, (bool, np.bool_)):
        raise InputError(f"effect_sizes: drop00 = {drop00!r}; expected True or False")

    required, optional = _ARGS[measure]
    unknown = sorted(set(columns) - set(required) - set(optional))
    if unknown:
        raise InputError(
            f"effect_sizes: argument(s) {', '.join(unknown)} not used by measure {measure}; "
            f"expected {', '.join(required + optional)}"
        )
    missing = [nm for nm in required if columns.get(nm) is None]
    if missing:
        raise InputError(
            f"effect_sizes: measure {measure} needs {', '.join(required)}; missing {', '.join(missing)}"
        )
    raw = {nm: _resolve(nm, v, data) for nm, v in columns.items() if v is not None}
    a, _k = _broadcast(raw, None if data is None else len(data))

    if measure in ("PR", "PLO", "PAS", "PFT"):
        yi, vi, ni = _proportions(measure, a, add, to)
    elif measure in ("RR", "OR", "RD"):
        yi, vi, ni = _two_by_two(measure, a, add, to, bool(drop00))
    elif measure in ("MN", "MNLN"):
        yi, vi, ni = _single_mean(measure, a)
    elif measure in ("MC", "SMCR"):
        yi, vi, ni = _mean_change(measure, a)
    elif measure in ("MD", "SMD", "ROM"):
        yi, vi, ni = _two_means(measure, a)
    elif measure in ("ZCOR", "COR"):
        yi, vi, ni = _correlations(measure, a)
    else:
        yi, vi, ni = _generic(a, level)

    yi, vi = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    infinite = np.isinf(yi) | np.isinf(vi)
    if infinite.any():
        warnings.warn(
            f"effect_sizes: {int(infinite.sum())} {measure} value(s) are infinite "
            f"(e.g. a zero cell with to={to!r}); set to NaN",
            StatisticalWarning,
            stacklevel=2,
        )
        yi, vi = np.where(infinite, np.nan, yi), np.where(infinite, np.nan, vi)

    if data is not None:
        out = data.copy()
    else:
        out = pd.DataFrame({nm: a[nm] for nm in columns if nm in a})
    out["yi"] = yi
    out["vi"] = vi
    if ni is not None:
        out["ni"] = ni
    out.attrs["measure"] = measure
    out.attrs.update(add=add, to=to, drop00=bool(drop00))
    # column roles, so that displays find the data the user named (events1="ev_trt")
    out.attrs["columns"] = {nm: (v if isinstance(v, str) else nm) for nm, v in columns.items()
                            if v is not None and (isinstance(v, str) or data is None)}
    return out
