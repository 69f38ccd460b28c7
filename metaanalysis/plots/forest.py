"""Forest plots: studies, pooled diamonds, prediction interval and text columns.

Follows the conventions of Lewis & Clarke (2001, BMJ 322:1479) for forest plots
and of Riley, Higgins & Deeks (2011, BMJ 342:d549) for showing the prediction
interval: one row per study with a box whose *area* is proportional to the
study's weight and a line for its confidence interval, a diamond spanning the
pooled confidence interval, a bar for the prediction interval, and the
heterogeneity statistics written under the plot.  Values are shown on the
natural scale of the measure (proportions for PLO/PAS/PFT, ratios on a log
axis for RR/OR/ROM).  Bayesian results are drawn as in Röver (2020, J Stat
Softw 93(6)) and Friede et al. (2017, Biom J 59:658).

:func:`forest` is two steps: :func:`forest_spec` turns a result into a
:class:`~metaanalysis.plots.forest_spec.ForestSpec` (rows, columns, text,
intervals, scale; no matplotlib) and
:func:`~metaanalysis.plots.forest_draw.draw_forest` lays it out from measured
text at the final width and draws it.
"""

from __future__ import annotations

from metaanalysis.errors import InputError
from metaanalysis.plots.forest_draw import draw_forest
from metaanalysis.plots.forest_spec import COLORS, ForestOptions, build_spec, p_eq

__all__ = ["COLORS", "forest", "forest_spec", "p_eq", "shared_xlim"]

_COLOR_KEYS = {"color": "study", "diamond_color": "re", "pi_color": "pi", "bayes_color": "bayes"}


def forest_spec(result, **options):
    """The specification of a forest plot (rows, columns, text, intervals, scale).

    Takes the arguments of :func:`forest` except ``ax``, ``width`` and
    ``fontsize``.  ``forest_spec(res).table()`` is the plot's table with every
    cell in full (labels the figure shortens to fit included).

    Examples
    --------
    >>> import metaanalysis as ma
    >>> es = ma.effect_sizes("PLO", events=[42, 32], total=[140, 115])
    >>> spec = ma.forest_spec(ma.pool(es, labels=["Chen 2022", "Wang 2022"]), percent=True)
    >>> spec.table().columns.tolist()
    ['Study', 'Events/Total', 'Proportion [95% CI]', 'Weight']
    >>> spec.table().iloc[0].tolist()
    ['Chen 2022', '42/140', '30.0 [22.6, 38.3]', '56.0%']
    """
    colors = {}
    for k in list(options):
        if k in _COLOR_KEYS:
            colors[_COLOR_KEYS[k]] = options.pop(k)
    fields = set(ForestOptions.__dataclass_fields__)
    unknown = sorted(set(options) - fields)
    if unknown:
        raise InputError(f"unexpected keyword argument(s) {unknown}")
    return build_spec(result, ForestOptions(**options, colors=colors))


def forest(result, *, ax=None, width=None, fontsize=None, title: str | None = None,
           xlabel: str | None = None, favours=None, xlim=None, rob=None, **options):
    """Draw a forest plot of a pooled result, a subgroup analysis or a sensitivity table.

    Parameters
    ----------
    result : PoolResult, BayesResult, subgroups result or DataFrame
        From :func:`metaanalysis.pool` / :func:`metaanalysis.pool_glmm`,
        :func:`metaanalysis.pool_bayes` (observed studies, shrinkage
        estimates, Bayesian diamond, predictive interval and the priors),
        :func:`metaanalysis.subgroups` (one block per group with a subtotal
        diamond and the test for subgroup differences), or the DataFrame of
        :func:`metaanalysis.leave_one_out` / :func:`metaanalysis.cumulative`.
    ax : matplotlib Axes, optional
        Draw the whole forest (text columns included) inside this Axes' area;
        nothing outside it is touched.
    width : "single", "onehalf", "double" or mm, optional
        Width of the figure made here (89, 120, 183 mm or a number of mm):
        the figure is exactly that wide.  Default: the narrowest of the three
        that holds every column.  Columns that do not fit are left out with a
        :class:`~metaanalysis.plots.layout.LayoutWarning` (weight first, then
        risk-of-bias domains, user columns, mean (SD) and n, events/total,
        shrinkage estimates, overall risk of bias); the figure is never cropped.
    fontsize : float, optional
        Text size in points (default: the rc font size; at least 6 pt).
    title : str, optional
        Title above the table (wrapped to the width).
    xlabel : str, optional
        Axis label; say the unit and the direction, e.g. ``"Pain reduction,
        VAS points (baseline − follow-up)"``.  Default: the measure's name.
    favours : (str, str), optional
        Labels under the axis left and right of the reference line, e.g.
        ``("Favours control", "Favours treatment")``.
    xlim : (float, float), optional
        Axis limits on the displayed scale; intervals beyond them end in an
        arrow inside the panel.  Pass the same limits to a family of forests
        (e.g. one per time window) so that they share one scale.
    rob : mapping, Series or DataFrame, optional
        Risk of bias: study label → overall judgement ("low", "some
        concerns", "high", "unclear"), or a DataFrame (index: study labels)
        of domain judgements with an optional "Overall" column.  Drawn as
        coloured symbols (+, −, ×, ?) in columns on the right, as robvis does.
    **options
        ``sort`` ("weight", "effect", "year" or a permutation), ``year``,
        ``transform`` (natural scale, default True), ``percent``,
        ``common`` (a common-effect PoolResult to draw as a second diamond),
        ``prediction``, ``heterogeneity``, ``refline`` ("auto", a value or
        None), ``xticks``, ``digits``, ``weights``, ``study_ci`` ("auto",
        "exact", "wilson", "model"), ``events``/``total`` (counts when the
        result does not carry them), ``columns`` (extra left columns
        ``{header: k strings}``), ``measure`` and ``overall`` (for
        sensitivity DataFrames), ``bayes`` (a BayesResult of the same
        studies: second, green diamond), ``shrinkage``, ``footnotes`` (lines
        under the plot), and the colours ``color``, ``diamond_color``,
        ``pi_color``, ``bayes_color``.

    Returns
    -------
    matplotlib.axes.Axes
        The plot panel.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> es = ma.effect_sizes("PLO", events=[42, 32, 37, 10], total=[140, 115, 85, 33])
    >>> ax = ma.forest(ma.pool(es, method="REML"), percent=True, width="single",
    ...                title="Cement leakage")
    >>> round(ax.figure.get_size_inches()[0] * 25.4)
    89
    >>> ax.get_xlabel()
    'Proportion (%)'
    >>> from scipy import stats
    >>> b = ma.pool_bayes(es, tau_prior=stats.halfnorm(scale=0.5))
    >>> ax = ma.forest(b)                                  # shrinkage + Bayesian diamond
    >>> ax = ma.forest(ma.pool(es, method="REML"), bayes=b)  # both diamonds
    >>> import matplotlib.pyplot as plt; plt.close("all")
    """
    spec = forest_spec(result, title=title, xlabel=xlabel, favours=favours, xlim=xlim, rob=rob,
                       **options)
    return draw_forest(spec, ax, width=width, fontsize=fontsize)


def shared_xlim(specs) -> tuple[float, float]:
    """One x range holding every forest of a family (e.g. one outcome's time windows).

    Pass the result to each ``forest(..., xlim=...)`` so the plots share a scale.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> a = ma.forest_spec(ma.pool([0.1, 0.3], [0.01, 0.02]))
    >>> b = ma.forest_spec(ma.pool([0.8, 1.2], [0.01, 0.02]))
    >>> lo, hi = shared_xlim([a, b])
    >>> lo <= a.xlim[0] and hi >= b.xlim[1]
    True
    """
    specs = list(specs)
    if not specs:
        raise InputError("specs: got none; expected at least one ForestSpec")
    return (min(s.xlim[0] for s in specs), max(s.xlim[1] for s in specs))
