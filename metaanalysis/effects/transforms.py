"""Back-transformations from the analysis scale to the natural scale of a measure.

Pooling happens on a scale where the sampling distribution is close to normal
(log odds, log ratios, Fisher's z, variance-stabilised proportions); readers
want the answer on the natural scale (a proportion, a ratio, a correlation).
:func:`to_natural` maps estimates, confidence and prediction limits back, and
:func:`natural_label` names the natural scale for tables and axes.

Conventions follow metafor's ``transf.*`` family so that numbers agree with
``predict(..., transf = ...)``:

* ``PLO`` (logit): inverse logit.
* ``PAS`` (arcsine square root): ``sin(x)**2`` with ``x`` clamped to ``[0, π/2]``.
* ``PFT`` (Freeman–Tukey double arcsine): the inversion of Miller (1978) with
  ``n`` the harmonic mean of the study sizes, values outside the range the
  transformation can take for that ``n`` mapped to 0 and 1.
* ``RR``, ``OR``, ``ROM``, ``MNLN`` (log scale): ``exp``.
* ``ZCOR`` (Fisher's z): ``tanh``.
* every other measure (``PR``, ``MD``, ``SMD``, ``RD``, ``COR``, ...): identity.
"""

from __future__ import annotations

import numpy as np

from metaanalysis.errors import InputError

__all__ = ["NATURAL_MEASURES", "PROPORTION_MEASURES", "harmonic_mean", "ipft", "natural_label", "pft", "to_natural"]

_EXP = frozenset({"RR", "OR", "ROM", "MNLN"})
#: single-proportion measures (raw, logit, arcsine, Freeman–Tukey)
PROPORTION_MEASURES = ("PR", "PLO", "PAS", "PFT")
#: measures whose analysis scale differs from the natural one (back-transform is not identity)
NATURAL_MEASURES = frozenset({"PLO", "PAS", "PFT", "ZCOR"}) | _EXP

_LABELS = {
    "PR": "Proportion",
    "PLO": "Proportion",
    "PAS": "Proportion",
    "PFT": "Proportion",
    "RR": "Risk ratio",
    "OR": "Odds ratio",
    "RD": "Risk difference",
    "ROM": "Ratio of means",
    "MNLN": "Mean",
    "MN": "Mean",
    "MD": "Mean difference",
    "SMD": "Standardised mean difference (Hedges' g)",
    "MC": "Mean change",
    "SMCR": "Standardised mean change",
    "ZCOR": "Correlation",
    "COR": "Correlation",
    "GEN": "Estimate",
}


def _as_float_array(x, name: str) -> np.ndarray:
    try:
        return np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: got {x!r}; expected numbers") from exc


def pft(p, n) -> np.ndarray:
    """Freeman–Tukey double arcsine of a proportion ``p`` in a study of size ``n``.

    The average of the two arcsines, ``(asin(sqrt(x/(n+1))) + asin(sqrt((x+1)/(n+1))))/2``
    with ``x = n p`` (Freeman & Tukey 1950, Ann Math Stat 21:607), the scale metafor's
    ``escalc(measure = "PFT")`` uses.

    Examples
    --------
    >>> float(pft(0.0, 10))  # doctest: +ELLIPSIS
    0.1531...
    """
    p = _as_float_array(p, "p")
    n = _as_float_array(n, "n")
    x = p * n
    return 0.5 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1))))


def ipft(t, n) -> np.ndarray:
    """Invert the Freeman–Tukey double arcsine (Miller 1978, Am Stat 32:138).

    With ``s = sin(2 t)`` (Miller's ``t`` is the *sum* of the two arcsines, twice
    the average used here), ``p = (1 - sign(cos 2t) sqrt(1 - (s + (s - 1/s)/n)^2)) / 2``.
    Values of ``t`` below ``pft(0, n)`` give 0 and above ``pft(1, n)`` give 1, where
    the formula has no meaning.

    Parameters
    ----------
    t : array_like
        Values on the double-arcsine scale (average of the two arcsines).
    n : float or array_like
        Sample size, broadcast against ``t``.

    Examples
    --------
    >>> round(float(ipft(pft(0.3, 50), 50)), 12)
    0.3
    """
    t = _as_float_array(t, "t")
    n = _as_float_array(n, "n")
    t, n = np.broadcast_arrays(t, n)
    s = np.sin(2.0 * t)
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = 1.0 - (s + (s - 1.0 / s) / n) ** 2
        p = 0.5 * (1.0 - np.sign(np.cos(2.0 * t)) * np.sqrt(np.clip(inner, 0.0, None)))
    lo = pft(0.0, n)
    hi = pft(1.0, n)
    p = np.where(t < lo, 0.0, p)
    p = np.where(t > hi, 1.0, p)
    p = np.where(np.isnan(t), np.nan, p)
    return np.clip(p, 0.0, 1.0)


def harmonic_mean(ni) -> float:
    """Harmonic mean of the study sizes ``ni`` (NaN entries ignored).

    Examples
    --------
    >>> harmonic_mean([10, 40])
    16.0
    """
    ni = _as_float_array(ni, "ni").ravel()
    ni = ni[~np.isnan(ni)]
    if ni.size == 0 or np.any(ni <= 0):
        raise InputError(f"ni: got {ni.tolist()!r}; expected at least one positive sample size")
    return float(ni.size / np.sum(1.0 / ni))


def to_natural(measure: str | None, x, ni=None) -> np.ndarray:
    """Map values on the analysis scale of ``measure`` to its natural scale.

    Parameters
    ----------
    measure : str or None
        Effect-size code (``"PLO"``, ``"PFT"``, ``"OR"``, ``"ZCOR"``, ...).  ``None``
        and measures analysed on their natural scale give the identity.
    x : array_like
        Estimates, confidence or prediction limits on the analysis scale.
    ni : array_like, optional
        Study sample sizes; required for ``"PFT"``, where pooled values are inverted
        with their harmonic mean (as metafor's ``transf.ipft.hm``).

    Returns
    -------
    numpy.ndarray
        Values on the natural scale, same shape as ``x`` (NaN stays NaN).

    Examples
    --------
    >>> to_natural("PLO", [0.0]).tolist()
    [0.5]
    >>> to_natural("OR", [0.0]).tolist()
    [1.0]
    """
    x = _as_float_array(x, "x")
    m = None if measure is None else str(measure).upper()
    if m == "PLO":
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-x))
    if m == "PAS":
        return np.sin(np.clip(x, 0.0, np.pi / 2)) ** 2
    if m == "PFT":
        if ni is None:
            raise InputError(
                "ni: got None; the Freeman-Tukey back-transformation needs the study "
                "sample sizes (harmonic mean, Miller 1978)"
            )
        return ipft(x, harmonic_mean(ni))
    if m in _EXP:
        with np.errstate(over="ignore"):
            return np.exp(x)
    if m == "ZCOR":
        return np.tanh(x)
    return x.copy()


def natural_label(measure: str | None) -> str:
    """Name of the natural scale of ``measure``, for table headers and axis labels.

    Examples
    --------
    >>> natural_label("PFT")
    'Proportion'
    >>> natural_label("OR")
    'Odds ratio'
    """
    if measure is None:
        return "Estimate"
    return _LABELS.get(str(measure).upper(), str(measure))
