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
from metaanalysis.plots import _layout
from metaanalysis.plots.forest import p_eq

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


def _egger_line(yi, sei):
    """Egger et al. (1997, BMJ 315:629) regression: yi/sei = a + b/sei, i.e. x = b + a·SE."""
    z = yi / sei
    X = np.column_stack([np.ones_like(sei), 1.0 / sei])
    (a, b), *_ = np.linalg.lstsq(X, z, rcond=None)
    return float(a), float(b)


def funnel(result, *, ax=None, contours=True, pseudo_ci: bool = True, trimfill=None,
           egger=False, null: float = 0.0, level: float | None = None, legend: bool = True,
           xlabel: str | None = None, **kwargs):
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
    egger : bool or result of :func:`metaanalysis.egger_test` / :func:`metaanalysis.peese`
        Draw the regression line of the test: with a test result, its fitted
        model ``yi = limit_estimate + slope · SE`` (``· SE²`` for PEESE) and its
        p-value in the legend; with ``True``, Egger et al.'s (1997) classic
        weighted regression.
    null : float
        Null effect around which the contours are centred.
    level : float, optional
        Level of the pseudo confidence limits (default: the result's level).
    legend : bool
        Add a legend.
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
    ...     ax = ma.funnel(res, trimfill=ma.trim_and_fill(res), egger=True)
    >>> bool(ax.yaxis_inverted())  # standard error, 0 at the top
    True
    >>> ax.figure.clf()
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

    ax = _layout.single_column_axes(ax, 1.05)
    all_se = sei if filled_se is None else np.concatenate([sei, filled_se])
    se_max = float(np.nanmax(all_se)) * 1.08
    se_grid = np.linspace(0.0, se_max, 200)
    est = float(result.estimate)

    if levels:
        zs = [float(stats.norm.ppf(1 - a / 2)) for a in levels]  # increasing
        span = max(np.nanmax(np.abs(yi - null)), zs[-1] * se_max) * 1.15
        # bands between consecutive critical values, the outermost reaching the edge
        edges = [z * se_grid for z in zs] + [np.full_like(se_grid, span)]
        for a, lo, hi in zip(levels, edges[:-1], edges[1:]):
            c = _CONTOUR_COLORS.get(a, "#DDDDDD")
            ax.fill_betweenx(se_grid, null + lo, null + hi, color=c, linewidth=0,
                             zorder=0, gid=f"contour-{a:g}")
            ax.fill_betweenx(se_grid, null - hi, null - lo, color=c, linewidth=0, zorder=0)
        ax.set_xlim(null - span, null + span)
    if pseudo_ci:
        z = float(stats.norm.ppf(0.5 + level / 2))
        ax.plot(est - z * se_grid, se_grid, color="#404040", linewidth=0.7,
                linestyle=(0, (4, 2)), zorder=2, gid="pseudo-ci")
        ax.plot(est + z * se_grid, se_grid, color="#404040", linewidth=0.7,
                linestyle=(0, (4, 2)), zorder=2)
    ax.plot([est, est], [0, se_max], color="#404040", linewidth=0.7, zorder=2,
            gid="pooled-line", label=f"Pooled ({getattr(result, 'method', '')})")
    ax.scatter(yi, sei, s=size, color=color, edgecolors="none", zorder=4, gid="studies",
               label="Studies")
    if filled_y is not None and filled_y.size:
        ax.scatter(filled_y, filled_se, s=size, facecolors="white", edgecolors=color,
                   linewidths=0.8, zorder=4, gid="filled-studies",
                   label=f"Imputed (trim and fill, k₀ = {filled_y.size})")
        pooled = getattr(trimfill, "pooled", None)
        if pooled is not None:
            e2 = float(pooled.estimate)
            ax.plot([e2, e2], [0, se_max], color="#D55E00", linewidth=0.8,
                    linestyle=(0, (2, 1.5)), zorder=2, gid="trimfill-line",
                    label="Adjusted (trim and fill)")
    if egger is not False and egger is not None:
        power = 1.0
        if hasattr(egger, "slope") and hasattr(egger, "limit_estimate"):
            # the fitted test model: yi = limit + slope * sei (or * vi for PEESE)
            a, b = float(egger.slope), float(egger.limit_estimate)
            power = 2.0 if getattr(egger, "predictor", "sei") == "vi" else 1.0
        else:
            a, b = _egger_line(yi, sei)
        lab = "PEESE regression" if power == 2.0 else "Egger regression"
        p = getattr(egger, "p", None)
        if p is not None:
            lab += f" ({p_eq(p)})"
        ax.plot(b + a * se_grid ** power, se_grid, color="#0072B2", linewidth=0.9, zorder=3,
                gid="egger-line", label=lab)
    if levels:
        from matplotlib.patches import Patch

        handles, labels = ax.get_legend_handles_labels()
        lv = sorted(levels)  # e.g. 0.01, 0.05, 0.10
        prev = None
        for a in lv:
            txt = f"p < {fmt.num(a, 2)}" if prev is None else \
                f"{fmt.num(prev, 2)} < p < {fmt.num(a, 2)}"
            handles.append(Patch(facecolor=_CONTOUR_COLORS.get(a, "#DDDDDD"), linewidth=0))
            labels.append(txt)
            prev = a
        handles.append(Patch(facecolor="white", edgecolor="#B8B8B8", linewidth=0.5))
        labels.append(f"p > {fmt.num(lv[-1], 2)}")
    else:
        handles, labels = ax.get_legend_handles_labels()
    ax.set_ylim(se_max, 0)
    ax.set_ylabel("Standard error")
    scale = _layout.axis_scale(getattr(result, "measure", None), transform=False,
                               xlabel=xlabel)
    ax.set_xlabel(scale.label)
    if legend:
        ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.16),
                  ncol=2, frameon=False, borderaxespad=0.0, columnspacing=1.2,
                  handlelength=1.6)
    return ax
