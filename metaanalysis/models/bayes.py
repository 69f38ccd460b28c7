"""Bayesian random-effects meta-analysis by numerical integration (no MCMC).

Model (normal-normal hierarchical model): yᵢ | θᵢ ~ N(θᵢ, vᵢ), θᵢ | μ, τ ~
N(μ, τ²), μ flat or N(m₀, s₀²), τ ~ any prior on τ ≥ 0.

Computation follows the structure of Röver (2020), J Stat Softw 93(6)
(bayesmeta): given τ, μ is conditionally normal, so it is integrated out
analytically; the marginal posterior of τ is one-dimensional and is
integrated numerically; the marginal posteriors of μ, of a new study's effect
θ_new and of each θᵢ are mixtures of normals over τ.  The numerical engine
(adaptive Gauss-Legendre panels in log τ, analytic tails, mixture quantiles)
is in :mod:`metaanalysis.models.posterior`; this module holds the public API
(:func:`pool_bayes`, :func:`prior_sensitivity`) and the results
(:class:`BayesResult`, :class:`PosteriorSummary`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from metaanalysis.effects.study_data import overflow_error, study_data
from metaanalysis.errors import InputError
from metaanalysis.formatting import ci, level_text, num, pval
from metaanalysis.frozen import FrameField, freeze_arrays
from metaanalysis.models import priors as _priors
from metaanalysis.models.posterior import (
    Posterior,
    mixture_cdf,
    mixture_pdf,
    mixture_ppf,
    shortest_interval,
)
from metaanalysis.results.display import Display, Displayed, Lines, Table

__all__ = ["BayesResult", "PosteriorSummary", "pool_bayes", "prior_sensitivity"]


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class PosteriorSummary:
    """Posterior summary of one quantity: mean, median, sd and a credible interval."""

    mean: float
    median: float
    sd: float
    ci_lb: float
    ci_ub: float


@dataclass(frozen=True, eq=False, repr=False)
class BayesResult(Displayed):
    """Result of :func:`pool_bayes` (immutable).

    Attributes
    ----------
    mu, tau : PosteriorSummary
        Posterior of the overall mean μ and of the between-study SD τ.
    pi_lb, pi_ub : float
        Interval of the posterior predictive distribution of a new study's θ.
    predictive : PosteriorSummary
        Full summary of that predictive distribution.
    shrinkage : pandas.DataFrame
        Per study: ``label, yi, mean, median, sd, ci_lb, ci_ub`` of θᵢ | data (a new
        copy on every access, like ``data``).
    prior_text, mu_prior_text : str
        The priors in words (printed with every result).
    """

    k: int
    mu: PosteriorSummary
    tau: PosteriorSummary
    predictive: PosteriorSummary
    pi_lb: float
    pi_ub: float
    shrinkage: pd.DataFrame = FrameField(required=True)
    yi: np.ndarray
    vi: np.ndarray
    labels: tuple
    measure: str | None
    ni: np.ndarray | None
    level: float
    interval: str
    prior_text: str
    mu_prior_text: str
    tau_prior: Any = field(repr=False)
    mu_prior: Any = field(repr=False)
    notes: tuple = ()
    data: pd.DataFrame | None = FrameField()  # the effect_sizes frame, if given
    _post: Any = field(default=None, repr=False)

    def __post_init__(self):
        freeze_arrays(self)
        for value in vars(self._post).values() if self._post is not None else ():
            if isinstance(value, np.ndarray):
                value.flags.writeable = False  # the posterior grid is the result's own

    # ---- probabilities, densities, quantiles (used by the plots)
    def _mix(self, which):
        p = self._post
        if which == "mu":
            return p.omega, p.m_nodes, np.sqrt(p.var_nodes)
        if which in ("predictive", "theta_new"):
            return p.omega, p.m_nodes, np.sqrt(p.var_nodes + p.tau_nodes**2)
        raise InputError(f"which: got {which!r}; expected 'mu', 'tau' or 'predictive'")

    def cdf(self, which: str, x) -> np.ndarray:
        """Posterior CDF of ``which`` ("mu", "tau" or "predictive") at ``x``."""
        x = np.asarray(x, dtype=float)
        if which == "tau":
            return np.vectorize(self._post.tau_cdf, otypes=[float])(x)
        return mixture_cdf(*self._mix(which), x)

    def density(self, which: str, x) -> np.ndarray:
        """Posterior density of ``which`` ("mu", "tau" or "predictive") at ``x``."""
        x = np.asarray(x, dtype=float)
        if which == "tau":
            return self._post.tau_pdf(x)
        return mixture_pdf(*self._mix(which), x)

    def quantile(self, which: str, p) -> np.ndarray:
        """Posterior quantiles of ``which`` at probabilities ``p``."""
        p = np.atleast_1d(np.asarray(p, dtype=float))
        if np.any(~((p > 0) & (p < 1))):
            raise InputError(f"p: got {p.tolist()!r}; expected probabilities in (0, 1)")
        if which == "tau":
            return np.array([self._post.tau_ppf(q) for q in p])
        w, m, s = self._mix(which)
        return mixture_ppf(w, np.broadcast_to(m, (p.size, m.size)),
                            np.broadcast_to(s, (p.size, s.size)), p)

    def prior_density(self, which: str, x) -> np.ndarray | None:
        """Prior density at ``x`` (None for the flat μ prior or an improper τ prior)."""
        x = np.asarray(x, dtype=float)
        if which == "mu":
            return None if self.mu_prior is None else self.mu_prior.pdf(x)
        if which != "tau":
            raise InputError(f"which: got {which!r}; expected 'mu' or 'tau'")
        if hasattr(self.tau_prior, "pdf") and hasattr(self.tau_prior, "support"):
            return self.tau_prior.pdf(x)
        from scipy import integrate

        def f(t):
            return float(np.asarray(self.tau_prior(np.array([t])))[0])
        norm, _ = integrate.quad(f, 0, np.inf, limit=200)
        if not (np.isfinite(norm) and norm > 0):
            return None
        return np.asarray(self.tau_prior(x), dtype=float) / norm

    def grid(self, which: str, n: int = 400) -> np.ndarray:
        """Evenly spaced points covering the posterior's 0.05%-99.95% range."""
        q = self.quantile(which, [0.0005, 0.9995])
        lo = 0.0 if which == "tau" else q[0]
        return np.linspace(lo, q[1], n)

    def prob(self, which: str = "mu", *, greater: float | None = None,
             less: float | None = None) -> float:
        """Posterior probability that ``which`` lies above ``greater`` / below ``less``.

        >>> from scipy import stats
        >>> res = pool_bayes([0.2, 0.5], [0.04, 0.05], tau_prior=stats.halfnorm(scale=0.5))
        >>> round(res.prob("mu", greater=0), 3)  # P(μ > 0 | data)
        0.901
        """
        if greater is None and less is None:
            raise InputError("prob: give greater=, less= or both")
        lo = -np.inf if greater is None else float(greater)
        hi = np.inf if less is None else float(less)
        if which == "tau":
            cl = 0.0 if lo <= 0 else self._post.tau_cdf(lo)
            ch = 1.0 if hi == np.inf else self._post.tau_cdf(hi)
        else:
            cl = 0.0 if lo == -np.inf else float(self.cdf(which, lo))
            ch = 1.0 if hi == np.inf else float(self.cdf(which, hi))
        return float(min(max(ch - cl, 0.0), 1.0))

    def prob_mu_greater(self, c: float = 0.0) -> float:
        """Posterior probability P(μ > c | data)."""
        return self.prob("mu", greater=c)

    # ---- display
    def _frame(self) -> pd.DataFrame:
        rows = {"mu": self.mu, "tau": self.tau, "predictive": self.predictive}
        df = pd.DataFrame({name: vars(s) for name, s in rows.items()}).T
        df.attrs.update(tau_prior=self.prior_text, mu_prior=self.mu_prior_text,
                        level=self.level, interval=self.interval, measure=self.measure)
        return df

    def to_frame(self) -> pd.DataFrame:
        """Posterior summaries of μ, τ and θ_new as rows; the priors, level and interval
        kind in ``attrs`` (``attrs["description"]``: every method choice in words)."""
        return super().to_frame()

    def back_transform(self) -> pd.DataFrame:
        """μ (posterior median) with its credible and prediction intervals on the
        natural scale of the measure (quantiles commute with monotone transforms,
        so the median and both intervals map exactly; the mean does not)."""
        vals = np.array([self.mu.median, self.mu.ci_lb, self.mu.ci_ub, self.pi_lb, self.pi_ub])
        if self.measure is not None:
            from metaanalysis.effects.transforms import to_natural

            vals = np.asarray(to_natural(self.measure, vals, ni=self.ni), dtype=float)
        return pd.DataFrame([vals], columns=["estimate", "ci_lb", "ci_ub", "pi_lb", "pi_ub"])

    def _display(self) -> Display:
        from metaanalysis.effects.transforms import NATURAL_MEASURES, natural_label

        lv = level_text(self.level)
        methods = [
            ("Prior on τ", self.prior_text),
            ("Prior on μ", self.mu_prior_text),
            ("Intervals", f"{lv} {self.interval} credible; prediction interval from the "
                          "posterior predictive distribution"),
            ("Computation", "μ integrated analytically given τ; τ by adaptive "
                            "Gauss–Legendre quadrature on log τ (no sampling)"),
        ]
        if self.measure:
            methods.append(("Measure", self.measure))
        cri = f"{lv} CrI"
        post = pd.DataFrame(
            {"mean": [num(s.mean) for s in (self.mu, self.tau, self.predictive)],
             "median": [num(s.median) for s in (self.mu, self.tau, self.predictive)],
             "sd": [num(s.sd) for s in (self.mu, self.tau, self.predictive)],
             cri: [ci(s.ci_lb, s.ci_ub) for s in (self.mu, self.tau, self.predictive)]},
            index=pd.Index(["μ", "τ", "θ_new"], name="posterior"))
        rows = [("P(μ > 0 | data)", pval(self.prob_mu_greater(0.0)))]
        if self.measure in NATURAL_MEASURES:
            bt = self.back_transform().iloc[0]
            rows.append((natural_label(self.measure),
                         f"median {num(bt['estimate'])}, {cri} {ci(bt['ci_lb'], bt['ci_ub'])}, "
                         f"{lv} PI {ci(bt['pi_lb'], bt['pi_ub'])}"))
        shrink = FrameField.peek(self, "shrinkage")
        studies = pd.DataFrame(
            {"yi": shrink["yi"].map(num), "mean": shrink["mean"].map(num),
             "sd": shrink["sd"].map(num),
             cri: [ci(a, b) for a, b in zip(shrink["ci_lb"], shrink["ci_ub"])]},
        ).set_axis(pd.Index(shrink["label"].astype(str), name="study"))
        return Display(
            f"Bayesian random-effects model, normal–normal hierarchical (k = {self.k})",
            tuple(methods),
            (Table("", post), Lines(tuple(rows)),
             Table("Shrinkage estimates (posterior of each study's θᵢ):", studies)),
            tuple(self.notes),
        )


# --------------------------------------------------------------------------- API


def _summaries(w, m, s, level, shortest):
    """mean, median, sd, interval for q mixtures (means, sds: (q, N))."""
    a = (1.0 - level) / 2.0
    q = m.shape[0]
    probs = np.repeat([[0.5, a, 1.0 - a]], q, axis=0).ravel()
    quant = mixture_ppf(w, np.repeat(m, 3, axis=0), np.repeat(s, 3, axis=0), probs).reshape(q, 3)
    mean = m @ w
    sd = np.sqrt(np.maximum((s**2 + m**2) @ w - mean**2, 0.0))
    if shortest:
        for j in range(q):
            def ppf(p, j=j):
                return mixture_ppf(w, m[j:j + 1], s[j:j + 1], [p])
            quant[j, 1:] = shortest_interval(ppf, level)
    return mean, quant[:, 0], sd, quant[:, 1], quant[:, 2]


def pool_bayes(yi, vi=None, *, tau_prior: Any = "auto", mu_prior: Any = None,
               level: float = 0.95, labels=None, measure: str | None = None, ni=None,
               shortest: bool = False) -> BayesResult:
    """Bayesian random-effects meta-analysis by numerical integration.

    Normal-normal hierarchical model yᵢ ~ N(θᵢ, vᵢ), θᵢ ~ N(μ, τ²) with a
    prior on τ and a flat or normal prior on μ, computed exactly (to ~1e-9) by
    one-dimensional quadrature over τ, as in Röver (2020), J Stat Softw 93(6);
    weakly informative τ priors for few studies after Friede et al. (2017),
    Biom J 59:658-671, and Röver et al. (2021), Res Synth Methods 12:448-474.

    Parameters
    ----------
    yi : array_like or pandas.DataFrame
        Effect sizes, or the DataFrame from ``ma.effect_sizes`` (then ``vi``,
        ``measure``, ``ni`` and ``labels`` are read from it, as ``ma.pool`` does).
    vi : array_like, optional
        Sampling variances.
    tau_prior : frozen scipy.stats distribution, callable or "auto"
        Prior on τ ≥ 0, e.g. ``scipy.stats.halfnorm(scale=0.5)``, ``halfcauchy``,
        ``lognorm``, or a (possibly unnormalised) density ``f(tau_array)``.
        ``"auto"`` picks the documented default for ``measure`` (half-normal 0.5
        on log/logit scales; half-normal with scale UISD/2 on raw scales, which
        needs ``ni``; see :mod:`metaanalysis.models.priors`) and says so in the notes.
    mu_prior : frozen scipy.stats.norm or None
        Prior on μ; None is the flat (improper uniform) prior, proper posterior
        for any k ≥ 1 when the τ prior is proper.
    level : float
        Credible level of the intervals.
    labels, measure, ni : optional
        Study labels, effect measure code (for defaults and back-transforms),
        per-study sample sizes.
    shortest : bool
        Shortest (highest-density, for unimodal posteriors) intervals instead of
        equal-tailed ones.

    Returns
    -------
    BayesResult

    Examples
    --------
    >>> from scipy import stats
    >>> import metaanalysis as ma
    >>> res = ma.pool_bayes([-4.50, -3.51], [1.011, 0.515], measure="PLO",
    ...                     tau_prior=stats.halfnorm(scale=0.5))
    >>> round(res.mu.median, 2)
    -3.87
    """
    d = study_data(yi, vi, labels=labels, measure=measure, ni=ni)
    y, v, labels, measure, ni = d.yi, d.vi, d.labels, d.measure, d.ni
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        raise InputError(f"level: got {level!r}; expected a number in (0, 1)")
    notes = []
    if isinstance(tau_prior, str):
        if tau_prior != "auto":
            raise InputError(f"tau_prior: got {tau_prior!r}; expected 'auto', a frozen "
                             "scipy.stats distribution on τ ≥ 0 or a callable density")
        tau_prior, why = _priors.default_tau_prior(measure, v, ni)
        notes.append(f"τ prior chosen automatically: {_priors.describe(tau_prior)}, {why}")
    tp = _priors.check_tau_prior(tau_prior)
    mu0 = _priors.check_mu_prior(mu_prior)
    post = Posterior(y, v, tp, mu0)
    k = y.size
    # tau
    e1, e2 = post.tau_moment(1), post.tau_moment(2)
    tau_mean = e1
    tau_sd = math.sqrt(max(e2 - e1 * e1, 0.0)) if math.isfinite(e2) else math.inf
    a = (1.0 - level) / 2.0
    tau_med = post.tau_ppf(0.5)
    if shortest:
        t_lb, t_ub = shortest_interval(lambda p: np.array([post.tau_ppf(p)]), level, lower=0.0)
    else:
        t_lb, t_ub = post.tau_ppf(a), post.tau_ppf(1.0 - a)
    tau_sum = PosteriorSummary(tau_mean, tau_med, tau_sd, t_lb, t_ub)
    # mu, predictive, shrinkage: normal mixtures over the tau nodes
    w, tn, mn, vn = post.omega, post.tau_nodes, post.m_nodes, post.var_nodes
    b = v[:, None] / (v[:, None] + tn[None, :] ** 2)  # (k, N) shrinkage factors
    means = np.vstack([mn, mn, b * mn[None, :] + (1 - b) * y[:, None]])
    sds = np.sqrt(np.vstack([vn, vn + tn**2, v[:, None] * (1 - b) + b**2 * vn[None, :]]))
    mean, med, sd, lb, ub = _summaries(w, means, sds, level, shortest)
    # moments that do not exist (heavy-tailed τ posterior with a flat μ prior)
    if mu0 is None and not math.isfinite(e1):
        mean[0] = np.nan
    if mu0 is None and not math.isfinite(e2):
        sd[0] = np.inf
    if not math.isfinite(e1):
        mean[1] = np.nan
    if not math.isfinite(e2):
        sd[1] = np.inf
    if not (math.isfinite(e1) and math.isfinite(e2)):
        notes.append("the posterior of τ has no finite mean or variance under this prior and k; "
                     "moments that do not exist are shown as — or ∞ (medians and intervals are valid)")
    if not np.all(np.isfinite([med[0], lb[0], ub[0], med[1]])):
        raise overflow_error(y, v, "the posterior of μ")
    mu_sum = PosteriorSummary(*(float(x[0]) for x in (mean, med, sd, lb, ub)))
    pred = PosteriorSummary(*(float(x[1]) for x in (mean, med, sd, lb, ub)))
    shrink = pd.DataFrame({"label": labels, "yi": y, "mean": mean[2:], "median": med[2:],
                           "sd": sd[2:], "ci_lb": lb[2:], "ci_ub": ub[2:]})
    if k <= 2:
        notes.append(f"k = {k}: the data say little about τ, so its posterior (and the width "
                     "of the intervals) is driven by the prior; see prior_sensitivity()")
    return BayesResult(
        k=k, mu=mu_sum, tau=tau_sum, predictive=pred, pi_lb=pred.ci_lb, pi_ub=pred.ci_ub,
        shrinkage=shrink, yi=y, vi=v, labels=labels, measure=measure, ni=ni, level=level,
        interval="shortest" if shortest else "equal-tailed", prior_text=tp.text,
        mu_prior_text=_priors.describe(mu_prior), tau_prior=tau_prior, mu_prior=mu_prior,
        notes=tuple(notes), data=FrameField.peek(d, "frame"), _post=post,
    )


def prior_sensitivity(yi, vi=None, priors: dict[str, Any] | None = None, *,
                      mu_prior: Any = None, level: float = 0.95, measure: str | None = None,
                      ni=None, labels=None) -> pd.DataFrame:
    """Fit :func:`pool_bayes` under several τ priors and tabulate them side by side.

    Default priors (in the measure's units; multiplied by the UISD on raw scales):
    half-normal 0.5 and 1.0 (Friede et al. 2017; Röver et al. 2021), half-Cauchy
    0.5 (Röver et al. 2021) and, for OR/RR, the log-normal empirical prior of
    Turner et al. (2012, general healthcare setting).

    Returns
    -------
    pandas.DataFrame
        One row per prior: ``mu_median, mu_mean, mu_sd, mu_ci_lb, mu_ci_ub,
        tau_median, tau_ci_lb, tau_ci_ub, pi_lb, pi_ub, p_mu_gt_0``.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> tab = ma.prior_sensitivity([-4.50, -3.51], [1.011, 0.515], measure="PLO")
    >>> list(tab.index)[:2]
    ['half-normal(0.5)', 'half-normal(1.0)']
    """
    d = study_data(yi, vi, labels=labels, measure=measure, ni=ni)
    y, v, labels, measure, ni = d.yi, d.vi, d.labels, d.measure, d.ni
    if priors is None:
        priors = _priors.sensitivity_priors(measure, v, ni)
    if not isinstance(priors, dict) or not priors:
        raise InputError(f"priors: got {priors!r}; expected a non-empty dict name -> prior")
    rows = {}
    for name, prior in priors.items():
        r = pool_bayes(y, v, tau_prior=prior, mu_prior=mu_prior, level=level, labels=labels,
                       measure=measure, ni=ni)
        rows[name] = {
            "prior": r.prior_text, "mu_median": r.mu.median, "mu_mean": r.mu.mean,
            "mu_sd": r.mu.sd, "mu_ci_lb": r.mu.ci_lb, "mu_ci_ub": r.mu.ci_ub,
            "tau_median": r.tau.median, "tau_ci_lb": r.tau.ci_lb, "tau_ci_ub": r.tau.ci_ub,
            "pi_lb": r.pi_lb, "pi_ub": r.pi_ub, "p_mu_gt_0": r.prob_mu_greater(0.0),
        }
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.attrs.update(mu_prior=_priors.describe(mu_prior), level=level, measure=measure)
    return df
