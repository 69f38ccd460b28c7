"""Time course of a pooled outcome (for example pain on a VAS) across follow-up times.

One pooled estimate per time point (a line with its confidence band) over the
individual studies' values (thin lines, one per study), x in days since the
intervention.  The pooled values come from one :func:`metaanalysis.pool` per
time point (or :func:`metaanalysis.pool_many` over all of them); this module
only draws.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import formatting as fmt
from ..errors import InputError
from . import _layout

__all__ = ["timecourse"]

_BLUE = "#0072B2"


def _split(df, studies, study):
    if studies is not None:
        return df, studies
    if study not in df.columns:
        return df, None
    marker = df[study].isna() | df[study].astype(str).str.lower().eq("pooled")
    return df[marker], df[~marker]


def timecourse(df, studies=None, *, ax=None, x: str = "days", y: str = "estimate",
               study: str = "study", band: bool = True, measure: str | None = None,
               percent: bool = False, xscale: str = "linear", show_k: bool = True,
               xlabel: str = "Days after treatment", ylabel: str | None = None,
               label: str = "Pooled", **kwargs):
    """Plot a pooled outcome across time points with its CI band and the studies.

    Parameters
    ----------
    df : DataFrame
        One row per time point with ``x`` (days), ``estimate``, ``ci_lb``,
        ``ci_ub`` and optionally ``k``.  It may also hold the study rows: rows
        whose ``study`` column is empty (NaN) or ``"pooled"`` are the pooled
        values, the others are studies (value in ``yi``, else ``estimate``).
    studies : DataFrame, optional
        Study rows (``study``, ``x`` and ``yi``/``estimate``) given separately.
    ax : matplotlib Axes, optional
    x, y, study : str
        Column names of the time (days), the pooled value and the study id.
    band : bool
        Shade the confidence band between ``ci_lb`` and ``ci_ub``.
    measure : str, optional
        Measure of the values, for the back-transform (e.g. ``"PLO"`` →
        proportions); identity when omitted.
    percent : bool
        Show proportions as percentages.
    xscale : {"linear", "symlog"}
        ``"symlog"`` spreads early follow-up (days) when the last is a year away.
    show_k : bool
        Write the number of studies above each pooled point (needs ``k``).
    xlabel, ylabel, label : str
        Axis labels and legend label of the pooled line.
    **kwargs
        ``color`` of the pooled line.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import pandas as pd, metaanalysis as ma  # doctest: +SKIP
    >>> pooled = pd.DataFrame({"days": [0, 30, 180], "estimate": [7.1, 2.9, 2.1],
    ...                        "ci_lb": [6.6, 2.2, 1.6], "ci_ub": [7.6, 3.6, 2.6], "k": [5, 4, 3]})
    >>> ax = ma.timecourse(pooled, ylabel="Pain (VAS, 0-10)")  # doctest: +SKIP
    """
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"df: got {type(df).__name__}; expected a DataFrame with columns "
                         f"{x!r}, {y!r}, 'ci_lb', 'ci_ub'")
    pooled, srows = _split(df, studies, study)
    missing = [c for c in (x, y) if c not in pooled.columns]
    if missing:
        raise InputError(f"df: missing column(s) {missing}; expected {x!r}, {y!r}, 'ci_lb', "
                         f"'ci_ub' (have {list(pooled.columns)})")
    if len(pooled) == 0:
        raise InputError("df: no pooled rows (rows with an empty or 'pooled' study)")
    if xscale not in ("linear", "symlog"):
        raise InputError(f"xscale: got {xscale!r}; expected 'linear' or 'symlog'")
    scale = _layout.axis_scale(measure, transform=True, percent=percent,
                               ni=np.array([1.0]) if measure == "PFT" else None)
    color = kwargs.pop("color", _BLUE)
    if kwargs:
        raise InputError(f"unexpected keyword argument(s) {sorted(kwargs)}")
    pooled = pooled.sort_values(x)
    px = pooled[x].to_numpy(float)
    if np.any(~np.isfinite(px)):
        raise InputError(f"df: column {x!r} has missing times; expected days for every row "
                         "(parse them with ma.parse_timepoint)")
    py = scale(pooled[y].to_numpy(float))

    if ax is None:
        from .output import width_inches

        w = width_inches("single")
        fig, ax = _layout.new_figure(w, w * 0.75)
        fig.set_layout_engine("constrained")
    if srows is not None and len(srows):
        col = "yi" if "yi" in srows.columns else y
        for i, (name, g) in enumerate(srows.groupby(study, sort=True)):
            g = g.sort_values(x)
            ax.plot(g[x].to_numpy(float), scale(g[col].to_numpy(float)), color="#9A9A9A",
                    linewidth=0.6, marker="o", markersize=2.5, markerfacecolor="white",
                    markeredgewidth=0.6, zorder=2, gid="study-line",
                    label="Individual studies" if i == 0 else None)
    if band and {"ci_lb", "ci_ub"} <= set(pooled.columns):
        lb = scale(pooled["ci_lb"].to_numpy(float))
        ub = scale(pooled["ci_ub"].to_numpy(float))
        lvl = pooled.attrs.get("level", 0.95)
        ax.fill_between(px, lb, ub, color=color, alpha=0.2, linewidth=0, zorder=1,
                        gid="ci-band", label=f"{fmt.num(100 * lvl, 0)}% CI")
    ax.plot(px, py, color=color, linewidth=1.4, marker="o", markersize=4, zorder=4,
            gid="pooled-line", label=label)
    if show_k and "k" in pooled.columns:
        top = scale(pooled["ci_ub"].to_numpy(float)) if "ci_ub" in pooled.columns else py
        for xi, ti, k in zip(px, top, pooled["k"]):
            ax.annotate(f"k = {fmt.num(k, 0)}", (xi, ti), xytext=(0, 3),
                        textcoords="offset points", ha="center", va="bottom",
                        fontsize="x-small", color="#404040", gid="k-label")
    if xscale == "symlog":
        from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

        ax.set_xscale("symlog", linthresh=7, linscale=0.6)
        ticks = [t for t in (0, 1, 7, 14, 30, 90, 180, 365, 730, 1095)
                 if px.min() <= t <= px.max() * 1.001]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel or scale.label)
    ax.legend(frameon=False, loc="best")
    return ax
