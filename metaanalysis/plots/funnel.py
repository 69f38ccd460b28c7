"""Funnel plots, contour-enhanced (Peters et al. 2008), with trim-and-fill and Egger line.

A funnel plot shows each study's effect (x, on the analysis scale) against its
standard error (y, inverted so precise studies sit at the top) (Light &
Pillemer 1984; Sterne & Egger 2001, J Clin Epidemiol 54:1046).  Pseudo
confidence limits ``estimate ± z·SE`` outline where studies would lie without
heterogeneity or bias.  Contour enhancement (Peters, Sutton, Jones, Abrams &
Rushton 2008, J Clin Epidemiol 61:991) shades, around the *null* effect, the
regions where a study's own two-sided test is significant at 10%, 5% and 1%,
so that missing studies can be told apart from missing *non-significant*
studies.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from metaanalysis import formatting as fmt
from metaanalysis.errors import InputError
from metaanalysis.plots import layout as _layout
from metaanalysis.plots.forest_spec import p_eq
from metaanalysis.plots.scale import axis_scale

__all__ = ["funnel"]

# lighter the more significant; p > 0.10 stays white
_CONTOUR_COLORS = {0.10: "#B8B8B8", 0.05: "#D6D6D6", 0.01: "#EDEDED"}


def _contour_levels(contours):
    if contours is True:
        return (0.10, 0.05, 0.01)
    if contours is False or contours is None:
        return ()
    levels = tuple(sorted((float(c) for c in contours), reverse=True))
    if any(not 0 < c < 1 for c in levels):
        raise InputError(f"contours: got {contours!r}; expected significance levels in (0, 1)")
    return levels


def funnel(result, *, ax=None, width=None, contours=True, pseudo_ci: bool = True, trimfill=None,
           egger=None, null: float = 0.0, level: float | None = None, legend: bool = True,
           xlabel: str | None = None, title: str | None = None, **kwargs):
    """Draw a funnel plot of a pooled result.

    Parameters
    ----------
    result : PoolResult
        From :func:`metaanalysis.pool`; ``yi`` and ``vi`` are used on the
        analysis scale (log ratios, logits ...).
    ax : matplotlib Axes, optional
        Axes to draw on (a new 89 mm-wide figure when omitted).
    contours : bool or sequence of float
        Significance levels of the shaded contours (default 0.10, 0.05, 0.01),
        centred on ``null``; ``False`` for a plain funnel.
    pseudo_ci : bool
        Draw the pseudo confidence limits ``estimate ± z·SE``.
    trimfill : result of :func:`metaanalysis.trim_and_fill`, optional
        Its imputed studies (``.filled``: a DataFrame with ``yi`` and ``vi``) are
        drawn as open circles, and its adjusted estimate as a dashed line.
    egger : result of :func:`metaanalysis.egger_test` / :func:`metaanalysis.peese`, optional
        Draw the test's fitted line ``yi = limit_estimate + slope · SE``
        (``· SE²`` for PEESE) with its p-value in the legend (the plot does
        not fit it: ``egger_test(res, model="lm")`` is Egger et al.'s 1997
        classic regression).
    null : float
        Null effect around which the contours are centred.
    level : float, optional
        Level of the pseudo confidence limits (default: the result's level).
    legend : bool
        Add a legend (under the axis label, every line and region named).
    width : "single", "onehalf", "double" or mm, optional
        Width of the figure made here (default 89 mm).
    title : str, optional
        Title above the plot.
    **kwargs
        ``color`` and ``s`` (marker size) of the study points.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import warnings, metaanalysis as ma
    >>> res = ma.pool([0.1, 0.3, 0.35, 0.2, 0.6, 0.8], [0.01, 0.02, 0.015, 0.03, 0.08, 0.1])
    >>> with warnings.catch_warnings():  # k < 10: the tests warn that they mean little
    ...     warnings.simplefilter("ignore")
    ...     ax = ma.funnel(res, trimfill=ma.trim_and_fill(res), egger=ma.egger_test(res),
    ...                    title="Funnel plot")
    >>> bool(ax.yaxis_inverted())  # standard error, 0 at the top
    True
    >>> "Pooled estimate (REML)" in [t.get_text() for t in ax.get_legend().get_texts()]
    True
    >>> import matplotlib.pyplot as plt; plt.close("all")
    """
    if not hasattr(result, "yi") or not hasattr(result, "vi"):
        raise InputError(f"result: got {type(result).__name__}; expected a PoolResult")
    yi = np.asarray(result.yi, float)
    sei = np.sqrt(np.asarray(result.vi, float))
    level = float(getattr(result, "level", 0.95) if level is None else level)
    if not 0 < level < 1:
        raise InputError(f"level: got {level!r}; expected a number in (0, 1)")
    levels = _contour_levels(contours)
    color = kwargs.pop("color", "#000000")
    size = kwargs.pop("s", 16)
    if kwargs:
        raise InputError(f"unexpected keyword argument(s) {sorted(kwargs)}")

    filled_y = filled_se = None
    if trimfill is not None:
        filled = getattr(trimfill, "filled", None)
        if filled is None or not {"yi", "vi"} <= set(getattr(filled, "columns", ())):
            raise InputError("trimfill: expected a trim_and_fill() result whose .filled "
                             "DataFrame has yi and vi columns")
        filled_y = np.asarray(filled["yi"], float)
        filled_se = np.sqrt(np.asarray(filled["vi"], float))

    if egger is True:
        raise InputError("egger: got True; pass the test result, egger=ma.egger_test(res) "
                         "(model='lm' for Egger's classic regression): the plot draws the "
                         "fitted line, it does not fit it")
    if egger is not None and egger is not False and not (
            hasattr(egger, "slope") and hasattr(egger, "limit_estimate")):
        raise InputError(f"egger: got {type(egger).__name__}; expected an egger_test() or "
                         "peese() result")
    created = ax is None
    ax = _layout.new_axes(ax, width, 0.85)
    all_se = sei if filled_se is None else np.concatenate([sei, filled_se])
    all_y = yi if filled_y is None else np.concatenate([yi, filled_y])
    se_max = float(np.nanmax(all_se)) * 1.08
    se_grid = np.linspace(0.0, se_max, 200)
    est = float(result.estimate)
    z = float(stats.norm.ppf(0.5 + level / 2))
    # centred on the pooled estimate: the pseudo-CI at the largest SE and every study
    half = max(z * se_max, float(np.nanmax(np.abs(all_y - est)))) * 1.06
    lo, hi = est - half, est + half
    if levels:  # regions around the null, drawn only over the visible range
        zs = [float(stats.norm.ppf(1 - a / 2)) for a in levels]  # increasing
        edges = [z_ * se_grid for z_ in zs] + [np.full_like(se_grid, max(abs(lo - null),
                                                                          abs(hi - null)))]
        for a, e0, e1 in zip(levels, edges[:-1], edges[1:]):
            c = _CONTOUR_COLORS.get(a, "#DDDDDD")
            for sign in (1, -1):
                x0 = np.clip(null + sign * e0, lo, hi)
                x1 = np.clip(null + sign * e1, lo, hi)
                ax.fill_betweenx(se_grid, x0, x1, color=c, linewidth=0, zorder=0,
                                 gid=f"contour-{a:g}" if sign == 1 else None)
    ax.set_xlim(lo, hi)
    if pseudo_ci:
        lab = f"Pseudo {fmt.num(100 * level, 0)}% CI (estimate ± {fmt.num(z, 2)}·SE)"
        ax.plot(est - z * se_grid, se_grid, color="#404040", linewidth=0.7,
                linestyle=(0, (4, 2)), zorder=2, gid="pseudo-ci", label=lab)
        ax.plot(est + z * se_grid, se_grid, color="#404040", linewidth=0.7,
                linestyle=(0, (4, 2)), zorder=2)
    ax.plot([est, est], [0, se_max], color="#404040", linewidth=0.7, zorder=2,
            gid="pooled-line", label=f"Pooled estimate ({getattr(result, 'method', '')})")
    ax.scatter(yi, sei, s=size, color=color, edgecolors="none", zorder=4, gid="studies",
               label="Studies", clip_on=False)
    if filled_y is not None and filled_y.size:
        ax.scatter(filled_y, filled_se, s=size, facecolors="white", edgecolors=color,
                   linewidths=0.8, zorder=4, gid="filled-studies", clip_on=False,
                   label=f"Imputed (trim and fill, k₀ = {filled_y.size})")
        pooled = getattr(trimfill, "pooled", None)
        if pooled is not None:
            e2 = float(pooled.estimate)
            ax.plot([e2, e2], [0, se_max], color="#D55E00", linewidth=0.8,
                    linestyle=(0, (2, 1.5)), zorder=2, gid="trimfill-line",
                    label="Adjusted estimate (trim and fill)")
    if egger is not None and egger is not False:
        power = 2.0 if getattr(egger, "predictor", "sei") == "vi" else 1.0
        lab = "PEESE regression" if power == 2.0 else "Egger regression"
        p = getattr(egger, "p", None)
        if p is not None:
            lab += f" ({p_eq(p)})"
        line = (egger.fitted(se_grid ** power) if hasattr(egger, "fitted") else
                egger.limit_estimate + egger.slope * se_grid ** power)
        ax.plot(line, se_grid, color="#0072B2", linewidth=0.9, zorder=3,
                gid="egger-line", label=lab)
    handles, labels = ax.get_legend_handles_labels()
    if levels:
        from matplotlib.patches import Patch

        lv = sorted(levels)  # e.g. 0.01, 0.05, 0.10
        prev = None
        for a in lv:
            txt = f"p < {fmt.num(a, 2)}" if prev is None else \
                f"{fmt.num(prev, 2)} < p < {fmt.num(a, 2)}"
            handles.append(Patch(facecolor=_CONTOUR_COLORS.get(a, "#DDDDDD"), linewidth=0))
            labels.append(txt + (" (around the null)" if prev is None else ""))
            prev = a
        handles.append(Patch(facecolor="white", edgecolor="#B8B8B8", linewidth=0.5))
        labels.append(f"p > {fmt.num(lv[-1], 2)}")
    ax.set_ylim(se_max, 0)
    ax.set_ylabel("Standard error")
    scale = axis_scale(getattr(result, "measure", None), transform=False, xlabel=xlabel)
    ax.set_xlabel(scale.label)
    if title:
        ax.set_title(title, loc="left", fontweight="bold")
    _layout.fit_labels(ax, "x")
    if legend:
        _layout.legend_below(ax, handles, labels,
                             ncol=2 if ax.figure.get_size_inches()[0] > 5 else 1,
                             grow=created)
    _layout.settle(ax.figure)
    _layout.fit_labels(ax, "y")
    return ax
