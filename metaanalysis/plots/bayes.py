"""Posterior density plots for :func:`metaanalysis.pool_bayes` results.

Draws the marginal posterior density of μ (overall effect), τ (between-study
SD) or θ_new (predictive), with the prior overlaid, the credible interval
shaded and the posterior median marked, as in the plots of Röver (2020),
J Stat Softw 93(6), Fig. 2.
"""

from __future__ import annotations

import numpy as np

from metaanalysis import formatting as fmt
from metaanalysis.errors import InputError
from metaanalysis.plots import layout as _layout

__all__ = ["posterior_plot"]

_BLUE, _VERMILLION, _GREY = "#0072B2", "#D55E00", "#7F7F7F"
_NAMES = {"mu": "μ (overall effect)", "tau": "τ (between-study SD)",
          "predictive": "θ_new (predicted effect in a new study)"}


def posterior_plot(res, which: str = "mu", ax=None, show_prior: bool = True, *,
                   n: int = 400, color: str = _BLUE, width=None, **kwargs):
    """Plot a marginal posterior density of a Bayesian meta-analysis.

    Parameters
    ----------
    res : BayesResult
        Result of :func:`metaanalysis.pool_bayes`.
    which : {"mu", "tau", "predictive"}
        Quantity to plot.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure is made when None.  Nothing else is touched.
    show_prior : bool
        Overlay the prior density (dashed); the flat μ prior is not drawn.
    n : int
        Number of evaluation points.
    color : str
        Colour of the posterior curve; ``kwargs`` go to its ``Axes.plot`` call.
    width : "single", "onehalf", "double" or mm, optional
        Width of the figure made here (default 89 mm).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> from scipy import stats
    >>> import metaanalysis as ma
    >>> res = ma.pool_bayes([-4.50, -3.51], [1.011, 0.515],
    ...                     tau_prior=stats.halfnorm(scale=0.5))
    >>> ax = ma.posterior_plot(res, "tau", width="single")
    >>> float(ax.get_xlim()[0])  # τ ≥ 0
    0.0
    >>> round(ax.figure.get_size_inches()[0] * 25.4)
    89
    >>> import matplotlib.pyplot as plt; plt.close("all")
    """
    if not (hasattr(res, "density") and hasattr(res, "quantile") and hasattr(res, "mu")):
        raise InputError(f"res: got {type(res).__name__}; expected a BayesResult from pool_bayes")
    if which not in _NAMES:
        raise InputError(f"which: got {which!r}; expected 'mu', 'tau' or 'predictive'")
    if not (isinstance(n, int) and n >= 10):
        raise InputError(f"n: got {n!r}; expected an integer ≥ 10")
    ax = _layout.new_axes(ax, width, 0.8)
    x = res.grid(which, n)
    dens = res.density(which, x)
    summ = {"mu": res.mu, "tau": res.tau, "predictive": res.predictive}[which]
    ax.plot(x, dens, color=color, lw=1.5, label="Posterior", **kwargs)
    inside = (x >= summ.ci_lb) & (x <= summ.ci_ub)
    ax.fill_between(x[inside], 0, dens[inside], color=color, alpha=0.2, lw=0,
                    label=f"{fmt.num(100 * res.level, 0)}% CrI ({res.interval})")
    med = summ.median
    ax.vlines(med, 0, float(res.density(which, np.array([med]))[0]), color=color, lw=1,
              linestyles="solid", label=f"median {fmt.num(med)}")
    if show_prior and which != "predictive":
        prior = res.prior_density(which, x)
        if prior is not None:
            text = res.prior_text if which == "tau" else res.mu_prior_text
            ax.plot(x, prior, color=_GREY, lw=1, ls="--", label=f"prior: {text}")
    from metaanalysis.plots.scale import MODEL_LABELS

    scale = MODEL_LABELS.get(getattr(res, "measure", None))
    name = _NAMES[which]
    if scale and which != "tau":
        name = name[:-1] + f", {scale.lower()})"
    elif scale:
        name = name[:-1] + f", {scale.lower()} scale)"
    ax.set_xlabel(name)
    ax.set_ylabel("Posterior density")
    ax.set_ylim(bottom=0)
    if which == "tau":
        ax.set_xlim(left=0)
    ax.legend(frameon=False, fontsize=_layout.small_font(), loc="best")
    return ax
