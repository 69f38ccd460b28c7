"""Estimating a sample mean and SD from the median with the range and/or IQR.

Scenarios (Wan et al. 2014): S1 = {min, median, max}, S2 = {q1, median, q3},
S3 = all five.  Methods:

* ``"luo-shi"`` (default): mean by Luo et al. (2018), Stat Methods Med Res
  27(6):1785-1805, eqs. for S1/S2/S3 with sample-size dependent weights; SD by
  Wan et al. (2014) for S1 and S2 and by Shi et al. (2020), Res Synth Methods
  11(5):641-654, for S3 (smoothly weighted range and IQR).
* ``"wan"``: Wan, Wang, Liu & Tong (2014), BMC Med Res Methodol 14:135 --
  mean (a + 2m + b)/4, (q1 + m + q3)/3, (a + 2q1 + 2m + 2q3 + b)/8; SD
  (b - a)/xi(n), (q3 - q1)/eta(n), and their average for S3.
* ``"hozo"``: Hozo, Djulbegovic & Hozo (2005), BMC Med Res Methodol 5:13 --
  S1 only; mean (a + 2m + b)/4 + (a - 2m + b)/(4n) and the distribution-free
  variance bound average of their eq. (16).

``xi(n) = 2 Phi^-1((n - 0.375)/(n + 0.25))`` and
``eta(n) = 2 Phi^-1((0.75 n - 0.125)/(n + 0.25))`` are Wan's closed forms
(Blom's approximation to the expected normal range / IQR).  Wan et al.'s
Table 1 lists the exact expected range for n <= 50; the closed form is within
0.5 % of it for n >= 10 (4.487 vs 4.498 at n = 50) and is what Shi et al. and the authors' calculator use.

All three assume roughly normal data: a skewed sample (median far from the
mid-range or mid-quartile) gives biased estimates.  Rows converted this way
should be flagged (``estimated=True``, ``conversion=<method>``), and the
method printed with the result: :func:`describe_method` gives the text.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from metaanalysis.errors import InputError

__all__ = ["METHODS", "describe_method", "estimate_mean_sd", "eta", "xi"]

METHODS: tuple[str, ...] = ("luo-shi", "wan", "hozo")

_CITATIONS = {
    "luo-shi": (
        "mean and SD estimated from the median with range and/or IQR: mean by Luo et al. 2018 "
        "(Stat Methods Med Res 27:1785), SD by Wan et al. 2014 (BMC Med Res Methodol 14:135) "
        "from the range or IQR alone and by Shi et al. 2020 (Res Synth Methods 11:641) from both; "
        "assumes approximately normal data"
    ),
    "wan": (
        "mean and SD estimated from the median with range and/or IQR by Wan et al. 2014 "
        "(BMC Med Res Methodol 14:135); assumes approximately normal data"
    ),
    "hozo": (
        "mean and SD estimated from the median and range by Hozo et al. 2005 "
        "(BMC Med Res Methodol 5:13)"
    ),
}


def describe_method(method: str) -> str:
    """Citation text for a conversion method, to print next to converted rows.

    Examples
    --------
    >>> describe_method("luo-shi")[:40]
    'mean and SD estimated from the median wi'
    """
    if method not in _CITATIONS:
        raise InputError(
            f"describe_method: method = {method!r}; expected one of {', '.join(METHODS)}"
        )
    return _CITATIONS[method]


def xi(n) -> np.ndarray:
    """Wan et al. (2014) ``xi(n) = 2 Phi^-1((n - 0.375)/(n + 0.25))`` (range / SD).

    Examples
    --------
    >>> round(float(xi(50)), 3)
    4.487
    """
    n = np.asarray(n, dtype=float)
    return 2 * stats.norm.ppf((n - 0.375) / (n + 0.25))


def eta(n) -> np.ndarray:
    """Wan et al. (2014) ``eta(n) = 2 Phi^-1((0.75 n - 0.125)/(n + 0.25))`` (IQR / SD).

    Examples
    --------
    >>> round(float(eta(10_000)), 3)
    1.349
    """
    n = np.asarray(n, dtype=float)
    return 2 * stats.norm.ppf((0.75 * n - 0.125) / (n + 0.25))


def _as_float(name: str, value: Any) -> np.ndarray | None:
    if value is None:
        return None
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InputError(
            f"estimate_mean_sd: {name} = {value!r} is not numeric; expected numbers"
        ) from None


def _order_check(lo_name, lo, hi_name, hi):
    bad = (lo > hi) & ~(np.isnan(lo) | np.isnan(hi))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        where = f"[{i}]" if lo.size > 1 else ""
        raise InputError(
            f"estimate_mean_sd: {lo_name}{where} = {lo.flat[i]:g} and {hi_name}{where} = {hi.flat[i]:g} "
            f"are out of order; expected min <= q1 <= median <= q3 <= max ({lo_name} <= {hi_name})"
        )


def estimate_mean_sd(
    n,
    *,
    median=None,
    q1=None,
    q3=None,
    min=None,
    max=None,
    method: str = "luo-shi",
):
    """Estimate a sample's mean and SD from its median and range and/or IQR.

    Parameters
    ----------
    n : int or array
        Sample size (>= 2).
    median : float or array
        Sample median (required).
    q1, q3 : float or array, optional
        First and third quartiles (scenario S2, or S3 with min/max).
    min, max : float or array, optional
        Sample minimum and maximum (scenario S1, or S3 with q1/q3).
    method : {"luo-shi", "wan", "hozo"}
        ``"luo-shi"``: Luo et al. 2018 mean, Shi et al. 2020 / Wan et al. 2014
        SD (default); ``"wan"``: Wan et al. 2014; ``"hozo"``: Hozo et al. 2005
        (S1 only).  See the module docstring for the formulas.

    Returns
    -------
    (mean, sd)
        Floats for scalar input, arrays otherwise.  Within arrays, NaN in a
        quantile means "not reported" and the scenario is chosen per element
        (S3 where all five are present, else S1 or S2); an element with no
        median gives NaN.

    Raises
    ------
    InputError
        Unknown method; quantiles that fit no scenario (e.g. the median with
        only a minimum), or a scenario the method does not cover (``hozo``
        with quartiles); quantiles out of order; n < 2.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> mean, sd = ma.estimate_mean_sd(30, median=4, min=1, max=10)
    >>> round(mean, 4), round(sd, 4)
    (4.3567, 2.2056)
    """
    if method not in METHODS:
        raise InputError(
            f"estimate_mean_sd: method = {method!r}; expected one of {', '.join(METHODS)}"
        )
    if median is None:
        raise InputError("estimate_mean_sd: median is missing; every method needs the median")
    vals = {
        nm: _as_float(nm, v)
        for nm, v in {"n": n, "median": median, "q1": q1, "q3": q3, "min": min, "max": max}.items()
    }
    scalar = all(v is None or v.ndim == 0 for v in vals.values())
    try:
        shape = np.broadcast_shapes(*(v.shape for v in vals.values() if v is not None))
    except ValueError:
        sizes = ", ".join(f"{k} {v.shape}" for k, v in vals.items() if v is not None)
        raise InputError(
            f"estimate_mean_sd: arguments have shapes that do not match: {sizes}"
        ) from None
    full = {
        k: (np.broadcast_to(v, shape).astype(float) if v is not None else np.full(shape, np.nan))
        for k, v in vals.items()
    }
    nn, m, lo_q, hi_q, a, b = (full[k] for k in ("n", "median", "q1", "q3", "min", "max"))

    has_m = ~np.isnan(m)
    has_r = ~np.isnan(a) & ~np.isnan(b)
    has_q = ~np.isnan(lo_q) & ~np.isnan(hi_q)
    half_r = np.isnan(a) ^ np.isnan(b)
    half_q = np.isnan(lo_q) ^ np.isnan(hi_q)
    bad = has_m & (half_r | half_q | ~(has_r | has_q))
    if bad.any():
        i = int(np.flatnonzero(bad.ravel())[0])
        where = f" (element {i})" if not scalar else ""
        given = [k for k in ("median", "q1", "q3", "min", "max") if not np.isnan(full[k].flat[i])]
        raise InputError(
            f"estimate_mean_sd: got {', '.join(given)}{where}; expected the median with min and max "
            "(S1), q1 and q3 (S2), or all five (S3)"
        )
    if method == "hozo" and (has_m & has_q).any():
        raise InputError(
            "estimate_mean_sd: method 'hozo' uses the median with min and max only (Hozo et al. 2005); "
            "got q1/q3 -- use method='luo-shi' or 'wan', or leave out the quartiles"
        )
    bad_n = has_m & ~(nn >= 2)
    if bad_n.any():
        i = int(np.flatnonzero(bad_n.ravel())[0])
        raise InputError(f"estimate_mean_sd: n = {nn.flat[i]:g}; expected a sample size >= 2")
    for lo_name, lo, hi_name, hi in (
        ("min", a, "q1", lo_q),
        ("q1", lo_q, "median", m),
        ("median", m, "q3", hi_q),
        ("q3", hi_q, "max", b),
        ("min", a, "median", m),
        ("median", m, "max", b),
    ):
        _order_check(lo_name, lo, hi_name, hi)

    s1 = has_m & has_r & ~has_q
    s2 = has_m & has_q & ~has_r
    s3 = has_m & has_r & has_q
    mean = np.full(shape, np.nan)
    sd = np.full(shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        if method == "luo-shi":
            w1 = 4 / (4 + nn**0.75)  # Luo 2018, S1
            mean[s1] = (w1 * (a + b) / 2 + (1 - w1) * m)[s1]
            w2 = 0.7 + 0.39 / nn  # Luo 2018, S2
            mean[s2] = (w2 * (lo_q + hi_q) / 2 + (1 - w2) * m)[s2]
            wa = 2.2 / (2.2 + nn**0.75)  # Luo 2018, S3
            wq = 0.7 - 0.72 / nn**0.55
            mean[s3] = (wa * (a + b) / 2 + wq * (lo_q + hi_q) / 2 + (1 - wa - wq) * m)[s3]
            sd[s1] = ((b - a) / xi(nn))[s1]  # Wan 2014 eq. (7) with xi(n) closed form
            sd[s2] = ((hi_q - lo_q) / eta(nn))[s2]  # Wan 2014 eq. (16)
            w = 1 / (1 + 0.07 * nn**0.6)  # Shi 2020, S3 shortcut weight
            sd[s3] = (w * (b - a) / xi(nn) + (1 - w) * (hi_q - lo_q) / eta(nn))[s3]
        elif method == "wan":
            mean[s1] = ((a + 2 * m + b) / 4)[s1]
            mean[s2] = ((lo_q + m + hi_q) / 3)[s2]
            mean[s3] = ((a + 2 * lo_q + 2 * m + 2 * hi_q + b) / 8)[s3]
            sd[s1] = ((b - a) / xi(nn))[s1]
            sd[s2] = ((hi_q - lo_q) / eta(nn))[s2]
            sd[s3] = ((b - a) / (2 * xi(nn)) + (hi_q - lo_q) / (2 * eta(nn)))[s3]
        else:  # hozo, S1 only
            est = (a + 2 * m + b) / 4 + (a - 2 * m + b) / (4 * nn)
            mean[s1] = est[s1]
            var = (
                a**2 + m**2 + b**2 + (nn - 3) / 2 * ((a + m) ** 2 + (m + b) ** 2) / 4 - nn * est**2
            ) / (nn - 1)
            sd[s1] = np.sqrt(np.maximum(var, 0.0))[s1]
    if scalar:
        return float(mean), float(sd)
    return mean, sd
