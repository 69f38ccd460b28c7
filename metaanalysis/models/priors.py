"""Prior distributions for the Bayesian normal-normal hierarchical model.

The heterogeneity prior is what matters with few studies: with k = 2 the data
say little about τ, so the posterior of τ is mostly the prior, and the width of
the interval for μ follows from it.  This module checks user priors, describes
them in words for printing, and chooses the documented default for a measure.

Recommended priors (the scale they assume is that of the effect measure):

* Log odds ratios, log risk ratios, log ratios of means, logit proportions:
  half-normal with scale 0.5 (``HN(0.5)``), weakly informative: 95% prior mass
  below τ ≈ 0.98; at that τ the true ratios of the middle 95% of studies lie
  within a factor of about 7 either side of the median; ``HN(1.0)`` as the conservative
  alternative.  Friede T, Röver C, Wandel S, Neuenschwander B (2017), Biom J
  59:658-671; Röver C, Bender R, Dias S, et al. (2021), Res Synth Methods
  12:448-474.  (For single-arm logit proportions this is borrowed from the
  log-odds-ratio setting: it is a statement about the logit scale.)
* Fisher z (``ZCOR``): its unit-information SD is 1 (``vi = 1/(n-3)``), so the
  unit-information rule below gives ``HN(0.5)`` as well.
* Measures on a raw or standardised scale (``MD``, ``MC``, ``MN``, ``SMD``,
  ``SMCR``, ``RD``, ``PR``, ``PAS``, ``PFT``, ``COR``, ``GEN``): half-normal with
  scale UISD/2, where UISD = sqrt(Σnᵢ / Σ(1/vᵢ)) is the unit-information
  standard deviation (Röver et al. 2021, Eq. 6; bayesmeta's ``uisd``).  The
  reasoning (Röver et al. 2021, Sec. 3): a between-study SD as large as the SD
  of a single patient's outcome would be extreme heterogeneity, so the prior
  should put most of its mass well below one UISD; HN(UISD/2) puts 95% below
  ≈ 0.98·UISD.  For VAS pain (0-10) change scores the UISD is about 1.7
  points, giving HN(0.86): 5% prior probability that the between-study SD of
  the true mean change exceeds 1.7 VAS points.  This needs per-study sample
  sizes ``ni``.
* Empirical log-normal prior for log odds ratios (sensitivity analysis):
  τ² ~ LN(-2.56, 1.74²), the "general healthcare setting" predictive
  distribution of Turner et al. (2012), Int J Epidemiol 41:818-827; Turner et
  al. (2015), Stat Med 34:984-998 give setting-specific versions.  As a prior
  on τ it is log-normal with log-mean -1.28 and log-SD 0.87.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from metaanalysis.errors import InputError

#: measures on a log or logit scale whose default is HN(0.5)
LOG_SCALE_MEASURES = frozenset({"OR", "RR", "ROM", "PLO", "MNLN", "HR", "IRR", "ZCOR"})
#: measures whose default is scaled by the unit-information SD
UISD_MEASURES = frozenset(
    {"MD", "MC", "MN", "SMD", "SMCR", "RD", "PR", "PAS", "PFT", "COR", "GEN"}
)
#: Turner et al. (2012) general healthcare setting, prior on tau^2 (log-mean, log-SD)
TURNER_TAU2 = (-2.56, 1.74)

_FAMILY_NAMES = {
    "halfnorm": "half-normal",
    "halfcauchy": "half-Cauchy",
    "lognorm": "log-normal",
    "halft": "half-t",
    "expon": "exponential",
    "uniform": "uniform",
    "gamma": "gamma",
    "invgamma": "inverse-gamma",
    "lomax": "Lomax",
    "halflogistic": "half-logistic",
    "norm": "normal",
}


def describe(dist: Any) -> str:
    """Describe a frozen ``scipy.stats`` distribution or a callable in words.

    >>> from scipy import stats
    >>> describe(stats.halfnorm(scale=0.5))
    'half-normal(scale=0.5)'
    """
    if dist is None:
        return "flat (improper uniform)"
    inner = getattr(dist, "dist", None)
    if inner is not None and hasattr(inner, "name"):
        name = _FAMILY_NAMES.get(inner.name, inner.name)
        parts = [f"{a:.6g}" for a in getattr(dist, "args", ())]
        parts += [f"{key}={val:.6g}" for key, val in getattr(dist, "kwds", {}).items()]
        if inner.name == "norm":
            return f"normal(mean={dist.mean():.6g}, sd={dist.std():.6g})"
        if inner.name == "lognorm":
            s = (list(dist.args) + [dist.kwds.get("s")])[0]
            scale = dist.kwds.get("scale", 1.0)
            loc = dist.kwds.get("loc", 0.0)
            txt = f"log-normal(log-mean={math.log(scale):.4g}, log-sd={s:.4g})"
            return txt if loc == 0 else f"{txt} shifted by {loc:.6g}"
        return f"{name}({', '.join(parts)})"
    label = getattr(dist, "__name__", None)
    if label and label != "<lambda>":
        return f"user density {label}()"
    return "user density"


@dataclass(frozen=True)
class TauPrior:
    """A checked prior on τ ≥ 0: density, log-density and support."""

    logpdf: Callable[[np.ndarray], np.ndarray]
    lower: float
    upper: float
    text: str
    frozen: Any = None  # the scipy distribution, when given one

    def pdf(self, tau) -> np.ndarray:
        return np.exp(self.logpdf(np.asarray(tau, dtype=float)))


def check_tau_prior(prior: Any) -> TauPrior:
    """Validate a τ prior; raise :class:`InputError` if it cannot be one.

    Accepts a frozen continuous ``scipy.stats`` distribution whose support lies
    in [0, ∞), or a callable ``f(tau_array) -> density_array`` (it need not be
    normalised; whether the posterior is proper is checked during the fit).
    """
    if hasattr(prior, "dist") and hasattr(prior, "support"):
        if not hasattr(prior, "logpdf") or not hasattr(prior.dist, "pdf"):
            raise InputError(
                f"tau_prior: {describe(prior)} is not a continuous distribution; "
                "expected e.g. scipy.stats.halfnorm(scale=0.5)"
            )
        lo, hi = (float(b) for b in prior.support())
        if not lo >= 0:
            raise InputError(
                f"tau_prior: {describe(prior)} has support starting at {lo:g} < 0; "
                "τ is a standard deviation, expected a distribution on τ ≥ 0 "
                "(e.g. scipy.stats.halfnorm(scale=0.5), halfcauchy, lognorm)"
            )

        def logpdf(tau, _d=prior):
            with np.errstate(divide="ignore"):
                return np.asarray(_d.logpdf(tau), dtype=float)

        return TauPrior(logpdf, lo, hi, describe(prior), prior)
    if callable(prior):
        def logpdf(tau, _f=prior):
            val = np.asarray(_f(tau), dtype=float)
            val = np.broadcast_to(val, np.shape(tau))
            if np.any(~np.isfinite(val)) or np.any(val < 0):
                bad = val[~(np.isfinite(val) & (val >= 0))][0]
                raise InputError(
                    f"tau_prior: the density returned {bad!r}; expected finite values ≥ 0"
                )
            with np.errstate(divide="ignore"):
                return np.log(val)

        logpdf(np.array([0.1, 1.0]))  # fail early on a bad callable
        return TauPrior(logpdf, 0.0, math.inf, describe(prior), None)
    raise InputError(
        f"tau_prior: got {prior!r}; expected a frozen scipy.stats distribution on "
        "τ ≥ 0 (e.g. scipy.stats.halfnorm(scale=0.5)) or a callable density"
    )


def check_mu_prior(prior: Any) -> tuple[float, float] | None:
    """Return ``(mean, sd)`` of a normal μ prior, or None for the flat prior."""
    if prior is None:
        return None
    inner = getattr(prior, "dist", None)
    if getattr(inner, "name", None) != "norm":
        raise InputError(
            f"mu_prior: got {prior!r}; expected None (flat prior) or a frozen "
            "scipy.stats.norm(loc=..., scale=...)"
        )
    m0, s0 = float(prior.mean()), float(prior.std())
    if not (math.isfinite(m0) and math.isfinite(s0) and s0 > 0):
        raise InputError(f"mu_prior: mean {m0!r}, sd {s0!r}; expected finite, sd > 0")
    return m0, s0


def uisd(vi, ni) -> float:
    """Unit-information SD, sqrt(Σnᵢ / Σ(1/vᵢ)) (Röver et al. 2021, Eq. 6).

    >>> round(uisd([0.04, 0.05], [100, 80]), 4)
    2.0
    """
    vi = np.asarray(vi, dtype=float)
    if ni is None:
        raise InputError("ni: needed for the unit-information SD; got None")
    ni = np.asarray(ni, dtype=float)
    if ni.shape != vi.shape or np.any(~np.isfinite(ni)) or np.any(ni <= 0):
        raise InputError(f"ni: got {ni!r}; expected one positive sample size per study")
    return float(math.sqrt(ni.sum() / np.sum(1.0 / vi)))


def turner_prior() -> Any:
    """Log-normal τ prior from Turner et al. (2012) general healthcare setting.

    τ² ~ LN(-2.56, 1.74²) for log odds ratios, i.e. τ ~ LN(-1.28, 0.87²).

    >>> round(float(turner_prior().median()), 4)
    0.278
    """
    m, s = TURNER_TAU2
    return stats.lognorm(s / 2.0, scale=math.exp(m / 2.0))


def default_tau_prior(measure: str | None, vi, ni=None) -> tuple[Any, str]:
    """The documented default τ prior for ``measure`` and why it was chosen.

    Returns ``(frozen distribution, reason)``.  Raises :class:`InputError` when
    no default can be justified (unknown measure, or a raw-scale measure without
    sample sizes): then pass ``tau_prior`` explicitly.

    >>> dist, why = default_tau_prior("PLO", [0.5, 1.0])
    >>> float(dist.std()) > 0, why.startswith("default for PLO")
    (True, True)
    """
    if measure in LOG_SCALE_MEASURES:
        return (
            stats.halfnorm(scale=0.5),
            f"default for {measure} (log/logit scale): Friede et al. 2017; Röver et al. 2021",
        )
    if measure in UISD_MEASURES:
        if ni is None:
            raise InputError(
                f"tau_prior: no default for measure {measure!r} without per-study sample "
                "sizes (ni), because the scale of τ depends on the outcome's units; pass "
                "ni=... (the default is then half-normal with scale UISD/2) or "
                "tau_prior=scipy.stats.halfnorm(scale=...)"
            )
        u = uisd(vi, ni)
        return (
            stats.halfnorm(scale=u / 2.0),
            (f"default for {measure}: half-normal with scale UISD/2, UISD = {u:.4g} "
            "(Röver et al. 2021)"),
        )
    raise InputError(
        f"tau_prior: no default for measure {measure!r}; pass tau_prior explicitly, "
        "e.g. scipy.stats.halfnorm(scale=0.5) for log odds ratios"
    )


def sensitivity_priors(measure: str | None, vi, ni=None) -> dict[str, Any]:
    """Default set of τ priors for :func:`metaanalysis.models.bayes.prior_sensitivity`.

    HN(0.5), HN(1.0), HC(0.5) in the measure's units (multiplied by the UISD for
    raw-scale measures) and, for log odds / risk ratios, Turner's log-normal.
    """
    unit, suffix = 1.0, ""
    if measure in UISD_MEASURES and ni is not None:
        unit, suffix = uisd(vi, ni), "·UISD"
    elif measure not in LOG_SCALE_MEASURES:
        raise InputError(
            f"priors: no default set for measure {measure!r}"
            + (" without ni" if measure in UISD_MEASURES else "")
            + "; pass priors={'name': scipy.stats.halfnorm(scale=...), ...}"
        )
    out = {
        f"half-normal(0.5{suffix})": stats.halfnorm(scale=0.5 * unit),
        f"half-normal(1.0{suffix})": stats.halfnorm(scale=1.0 * unit),
        f"half-Cauchy(0.5{suffix})": stats.halfcauchy(scale=0.5 * unit),
    }
    if measure in {"OR", "RR"}:
        out["log-normal (Turner 2012)"] = turner_prior()
    return out
