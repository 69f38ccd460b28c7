"""Bayesian rows of a forest plot (private; use ``forest``).

The Bayesian diamond at the posterior median of μ spanning its credible
interval, the posterior predictive interval, the priors and the posterior of
τ, as in the forest plots of Röver (2020, J Stat Softw 93(6)) and Friede et
al. (2017, Biom J 59:658).
"""

from __future__ import annotations

import numpy as np

from metaanalysis import formatting as fmt
from metaanalysis.plots import _layout
from metaanalysis.plots._forest_rows import _f


def _is_bayes(obj) -> bool:
    return hasattr(obj, "shrinkage") and hasattr(obj, "mu") and hasattr(obj, "prior_text")


def _bayes_prior_text(b) -> str:
    """``Bayesian model: τ ~ half-normal(scale=0.5); μ ~ flat; 95% equal-tailed CrI``."""
    mu = "flat" if b.mu_prior is None else b.mu_prior_text
    return (f"Bayesian model: priors τ ~ {b.prior_text}, μ ~ {mu}; "
            f"{fmt.num(100 * b.level, 0)}% {b.interval} credible intervals")


def _bayes_tau_text(b) -> str:
    """Posterior median of τ with its credible interval, on the analysis scale."""
    scale = _layout._MODEL_LABELS.get(b.measure)
    where = f" ({scale.lower()} scale)" if scale else ""
    return (f"Posterior τ{where}: median {fmt.num(b.tau.median, 2)} "
            f"{fmt.ci(b.tau.ci_lb, b.tau.ci_ub, 2)}")


def bayes_rows(rows, b, *, first: bool, prediction: bool) -> None:
    """Bayesian diamond (posterior median, credible interval) and predictive interval."""
    rows.next(1.15 if first else 1.0)
    rows.summary(b.mu.median, b.mu.ci_lb, b.mu.ci_ub, "bayes", "Bayesian random-effects model",
                 overall=first)
    if prediction and np.isfinite(_f(b.pi_lb)) and np.isfinite(_f(b.pi_ub)):
        rows.interval(b.pi_lb, b.pi_ub, "Predictive interval (Bayesian)")


def bayes_text(rows, b) -> None:
    """The priors (always printed) and the posterior of τ."""
    rows.next(0.9)
    rows.table.add_span(rows.y, _bayes_prior_text(b))
    rows.next(0.85)
    rows.table.add_span(rows.y, _bayes_tau_text(b))
