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
from matplotlib import transforms as mtransforms

from metaanalysis import formatting as fmt
from metaanalysis.errors import InputError
from metaanalysis.plots import layout as _layout
from metaanalysis.plots.scale import axis_scale

__all__ = ["timecourse"]

_BLUE = "#0072B2"
_VERMILLION = "#D55E00"
#: Okabe–Ito colours (colour-blind safe) for labelled study lines; blue is the pooled line's
STUDY_COLORS = ("#E69F00", "#009E73", "#D55E00", "#000000", "#999999", "#56B4E9", "#F0E442")
# (reddish purple #CC79A7 is kept for a model trajectory)


def _spread(y, gap):
    """Positions as near ``y`` as possible but at least ``gap`` apart (order kept)."""
    y = np.asarray(y, float)
    order = np.argsort(y, kind="stable")
    out = y[order].copy()
    for i in range(1, len(out)):
        out[i] = max(out[i], out[i - 1] + gap)
    # centre the block on the wanted positions so labels move both ways
    shift = np.mean(out - y[order])
    out -= shift
    for i in range(1, len(out)):
        out[i] = max(out[i], out[i - 1] + gap)
    res = np.empty_like(out)
    res[order] = out
    return res


def _sqrt_scale(ax):
    ax.set_xscale("function", functions=(lambda v: np.sign(v) * np.sqrt(np.abs(v)),
                                         lambda v: np.sign(v) * np.square(v)))


_TRAJ_COLOR = "#CC79A7"


def _check_trajectory(traj):
    """The trajectory DataFrame sorted by time, or None; InputError names what is missing."""
    if traj is None:
        return None
    if not isinstance(traj, pd.DataFrame):
        raise InputError(f"trajectory: got {type(traj).__name__}; expected a DataFrame with "
                         "columns time, estimate, ci_lb, ci_ub (optional pi_lb, pi_ub)")
    missing = [c for c in ("time", "estimate", "ci_lb", "ci_ub") if c not in traj.columns]
    if missing:
        raise InputError(f"trajectory: missing column(s) {missing}; expected time (days), "
                         f"estimate, ci_lb, ci_ub (have {list(traj.columns)})")
    if len(traj) < 2:
        raise InputError(f"trajectory: got {len(traj)} row(s); expected at least 2 time points")
    t = traj["time"].to_numpy(float)
    if not np.all(np.isfinite(t)):
        raise InputError("trajectory: column 'time' has missing or infinite values; "
                         "expected days")
    return traj.sort_values("time", kind="stable")


def _draw_trajectory(ax, traj, scale, interval):
    """Model line with its CI band and (if given) the wider prediction band."""
    t = traj["time"].to_numpy(float)
    name = str(traj.attrs.get("label", "Model"))
    lvl = float(traj.attrs.get("level", 0.95))
    if {"pi_lb", "pi_ub"} <= set(traj.columns):
        ax.fill_between(t, scale(traj["pi_lb"].to_numpy(float)),
                        scale(traj["pi_ub"].to_numpy(float)), color=_TRAJ_COLOR, alpha=0.12,
                        linewidth=0, zorder=0, gid="trajectory-pi",
                        label=f"{name}: {fmt.num(100 * lvl, 0)}% prediction interval")
    ax.fill_between(t, scale(traj["ci_lb"].to_numpy(float)), scale(traj["ci_ub"].to_numpy(float)),
                    color=_TRAJ_COLOR, alpha=0.28, linewidth=0, zorder=1, gid="trajectory-ci",
                    label=f"{name}: {fmt.num(100 * lvl, 0)}% {interval}")
    ax.plot(t, scale(traj["estimate"].to_numpy(float)), color=_TRAJ_COLOR, linewidth=1.2,
            zorder=3, gid="trajectory-line", label=name)


def _set_changes(pooled) -> list[bool]:
    """Per time point: does its study set differ from the previous time point's?
    From a ``studies`` column (a collection of study ids per row); all False without it."""
    if "studies" not in pooled.columns:
        return [False] * len(pooled)
    sets = [frozenset(v) if isinstance(v, (list, tuple, set, frozenset)) else frozenset()
            for v in pooled["studies"]]
    return [False] + [a != b for a, b in zip(sets[1:], sets[:-1])]


def _split(df, studies, study):
    if studies is not None:
        return df, studies
    if study not in df.columns:
        return df, None
    marker = df[study].isna() | df[study].astype(str).str.lower().eq("pooled")
    return df[marker], df[~marker]


def timecourse(df=None, studies=None, *, ax=None, width=None, x: str = "days", y: str = "estimate",
               study: str = "study", band: bool = True, measure: str | None = None,
               percent: bool = False, xscale: str = "linear", show_k: bool = True,
               xlabel: str = "Days after treatment", ylabel: str | None = None,
               label: str = "Pooled", k_position: str = "row", xticks=None,
               study_labels=None, trajectory=None, interval: str = "CI", **kwargs):
    """Plot a pooled outcome across time points with its CI band and the studies.

    Parameters
    ----------
    df : DataFrame, optional
        One row per time point with ``x`` (days), ``estimate``, ``ci_lb``,
        ``ci_ub`` and optionally ``k`` and ``studies`` (the ids of the studies
        pooled at that time: where the set differs from the previous time
        point, k is marked "k*" in vermillion and the legend says so).  It may also hold the study rows: rows
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
    xscale : {"linear", "sqrt", "symlog"}
        ``"sqrt"`` (square-root axis) or ``"symlog"`` spread early follow-up
        (days 1 and 7) when the last time point is months away.
    show_k : bool
        Write the number of studies of each pooled point (needs ``k``).
    k_position : {"row", "above"}
        ``"row"`` (default): the k values in one row under the x tick labels,
        headed "k", like a number-at-risk table, so they never overlap the
        data or each other; ``"above"``: "k = N" above each point's CI.
    xticks : dict or sequence, optional
        Tick positions in days, or ``{day: label}`` such as ``{7: "1 wk"}``.
    study_labels : bool or dict, optional
        Label each study line at the right edge of the axes (labels moved
        apart so they never overlap; a dotted leader joins a label to its
        line's last point when the line ends earlier), in its own colour; a
        dict maps study ids to display labels (e.g. ``{"chen2022": "Chen
        2022"}``).  Coloured lines are moved 1.2 pt apart sideways so that
        lines through the same points stay visible.  Default: no labels, grey
        lines.  Study points are drawn above the pooled markers.
    xlabel, ylabel, label : str
        Axis labels and legend label of the pooled line.
    trajectory : DataFrame, optional
        A model's fitted time course, e.g. from a multivariate model fitted
        over all time points: columns ``time`` (days), ``estimate``,
        ``ci_lb``, ``ci_ub`` and optionally ``pi_lb``, ``pi_ub``.  Drawn as a
        line with its confidence band and, when given, the wider prediction
        band (values on the analysis scale, back-transformed like ``df``).
        ``df`` may then be omitted.  ``trajectory.attrs["label"]`` (default
        "Model") names the line in the legend.
    interval : {"CI", "CrI"}
        Name of the bands in the legend: "CrI" for credible bands of a
        Bayesian fit.
    **kwargs
        ``color`` of the pooled line.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import pandas as pd, metaanalysis as ma
    >>> pooled = pd.DataFrame({"days": [0, 30, 180], "estimate": [7.1, 2.9, 2.1],
    ...                        "ci_lb": [6.6, 2.2, 1.6], "ci_ub": [7.6, 3.6, 2.6], "k": [5, 4, 3]})
    >>> ax = ma.timecourse(pooled, ylabel="Pain (VAS, 0-10)")
    >>> ax.get_ylabel()
    'Pain (VAS, 0-10)'
    >>> ax.figure.clf()
    """
    traj = _check_trajectory(trajectory)
    if interval not in ("CI", "CrI"):
        raise InputError(f"interval: got {interval!r}; expected 'CI' or 'CrI'")
    if df is None and traj is not None:
        df = pd.DataFrame({x: [], y: []})
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"df: got {type(df).__name__}; expected a DataFrame with columns "
                         f"{x!r}, {y!r}, 'ci_lb', 'ci_ub'")
    pooled, srows = _split(df, studies, study)
    missing = [c for c in (x, y) if c not in pooled.columns]
    if missing:
        raise InputError(f"df: missing column(s) {missing}; expected {x!r}, {y!r}, 'ci_lb', "
                         f"'ci_ub' (have {list(pooled.columns)})")
    if len(pooled) == 0 and traj is None:
        raise InputError("df: no pooled rows (rows with an empty or 'pooled' study)")
    if xscale not in ("linear", "sqrt", "symlog"):
        raise InputError(f"xscale: got {xscale!r}; expected 'linear', 'sqrt' or 'symlog'")
    if k_position not in ("row", "above"):
        raise InputError(f"k_position: got {k_position!r}; expected 'row' or 'above'")
    if study_labels is not None and not isinstance(study_labels, (bool, dict)):
        raise InputError(f"study_labels: got {type(study_labels).__name__}; expected True, "
                         "False or a dict of study id -> label")
    scale = axis_scale(measure, transform=True, percent=percent,
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

    created = ax is None
    ax = _layout.new_axes(ax, width, 0.75)
    ends = []  # (last x, last y, label, colour, dodge) of labelled study lines
    if srows is not None and len(srows):
        col = "yi" if "yi" in srows.columns else y
        names = study_labels if isinstance(study_labels, dict) else {}
        groups = list(srows.groupby(study, sort=True))
        for i, (name, g) in enumerate(groups):
            g = g.sort_values(x)
            gy = scale(g[col].to_numpy(float))
            gx = g[x].to_numpy(float)
            c = STUDY_COLORS[i % len(STUDY_COLORS)] if study_labels else "#9A9A9A"
            # lines that coincide are moved apart sideways by 1.2 pt each (a visual dodge)
            dx = (i - (len(groups) - 1) / 2) * 1.2 if study_labels else 0.0
            tr = ax.transData + mtransforms.ScaledTranslation(dx / 72, 0,
                                                              ax.figure.dpi_scale_trans)
            # study markers sit above the pooled marker (zorder 5 > 4): never hidden
            ax.plot(gx, gy, color=c, linewidth=0.6 if not study_labels else 0.8,
                    marker="o", markersize=2.5, markerfacecolor="white", transform=tr,
                    markeredgewidth=0.6, zorder=5, gid="study-line",
                    label="Individual studies" if i == 0 and not study_labels else None)
            if study_labels:
                ends.append((float(gx[-1]), float(gy[-1]), str(names.get(name, name)), c, dx))
    if traj is not None:
        _draw_trajectory(ax, traj, scale, interval)
    if band and {"ci_lb", "ci_ub"} <= set(pooled.columns) and len(pooled):
        lb = scale(pooled["ci_lb"].to_numpy(float))
        ub = scale(pooled["ci_ub"].to_numpy(float))
        lvl = pooled.attrs.get("level", 0.95)
        ax.fill_between(px, lb, ub, color=color, alpha=0.2, linewidth=0, zorder=1,
                        gid="ci-band", label=f"{fmt.num(100 * lvl, 0)}% {interval}")
    if len(pooled):
        ax.plot(px, py, color=color, linewidth=1.4, marker="o", markersize=4, zorder=4,
                gid="pooled-line", label=label)
    if xscale == "sqrt":
        _sqrt_scale(ax)
    if xscale == "symlog":
        from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

        ax.set_xscale("symlog", linthresh=7, linscale=0.6)
        span = px if traj is None else np.concatenate([px, traj["time"].to_numpy(float)])
        ticks = [t for t in (0, 1, 7, 14, 30, 90, 180, 365, 730, 1095)
                 if span.min() <= t <= span.max() * 1.001]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    if xticks is not None:
        from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

        pos = list(xticks.keys()) if isinstance(xticks, dict) else list(xticks)
        ax.xaxis.set_major_locator(FixedLocator([float(v) for v in pos]))
        ax.xaxis.set_minor_locator(NullLocator())
        if isinstance(xticks, dict):
            ax.xaxis.set_major_formatter(FixedFormatter([str(v) for v in xticks.values()]))
    if xscale == "sqrt":
        xs_all = [px] + ([traj["time"].to_numpy(float)] if traj is not None else []) + ([srows[x].to_numpy(float)] if srows is not None and len(srows) else [])
        xa = np.concatenate(xs_all)
        lo_t, hi_t = np.sqrt(max(float(np.nanmin(xa)), 0.0)), np.sqrt(float(np.nanmax(xa)))
        pad = 0.04 * (hi_t - lo_t)
        ax.set_xlim(np.sign(lo_t - pad) * (lo_t - pad) ** 2, (hi_t + pad) ** 2)
    if show_k and "k" in pooled.columns:
        if k_position == "above":
            top = scale(pooled["ci_ub"].to_numpy(float)) if "ci_ub" in pooled.columns else py
            for xi, ti, k in zip(px, top, pooled["k"]):
                ax.annotate(f"k = {fmt.num(k, 0)}", (xi, ti), xytext=(0, 3),
                            textcoords="offset points", ha="center", va="bottom",
                            fontsize=_layout.small_font(), color="#404040", gid="k-label")
        else:
            import matplotlib as mpl
            from matplotlib.font_manager import FontProperties

            tick_pt = FontProperties(size=mpl.rcParams["xtick.labelsize"]).get_size_in_points()
            below = (mpl.rcParams["xtick.major.size"] + mpl.rcParams["xtick.major.pad"]
                     + tick_pt + 3.0)
            trans = ax.get_xaxis_transform()
            changed = _set_changes(pooled)
            for xi, k, ch in zip(px, pooled["k"], changed):
                ax.annotate(fmt.num(k, 0) + ("*" if ch else ""), (xi, 0), xycoords=trans,
                            xytext=(0, -below), textcoords="offset points", ha="center",
                            va="top", fontsize=_layout.small_font(),
                            color=_VERMILLION if ch else "#404040",
                            fontweight="bold" if ch else "normal", gid="k-label",
                            annotation_clip=False)
            if any(changed):
                from matplotlib.lines import Line2D

                ax.add_line(Line2D([], [], linestyle="none", marker="$*$", color=_VERMILLION,
                                   label="k*: other studies than at the previous time",
                                   gid="set-change-key"))
            ax.annotate("k", (0, 0), xycoords="axes fraction", xytext=(-6, -below),
                        textcoords="offset points", ha="right", va="top", fontsize=_layout.small_font(),
                        color="#404040", fontweight="bold", gid="k-header",
                        annotation_clip=False)
            ax.xaxis.labelpad = mpl.rcParams["axes.labelpad"] + tick_pt + 2.0
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel or scale.label)
    _layout.fit_labels(ax, "x")
    n_entries = len(ax.get_legend_handles_labels()[0])
    if created or n_entries > 3:  # under the axis label, off the data
        _layout.legend_below(ax, ncol=2 if ax.figure.get_size_inches()[0] > 5 else 1,
                             grow=created)
    else:
        ax.legend(frameon=False, loc="best", fontsize=_layout.small_font())
    _layout.settle(ax.figure)  # the axes' final height: for the y label and the study labels
    _layout.fit_labels(ax, "y")
    _layout.settle(ax.figure)
    if ends:
        lo_, hi_ = ax.get_ylim()
        h_pt = max(_layout.axes_height_points(ax), 1.0)
        fs = _layout.small_font()
        gap = (hi_ - lo_) * 1.15 * fs / h_pt
        ys = _spread([e[1] for e in ends], gap)
        x_end = ax.get_xlim()[1]
        for (xe, ye, text, c, _dx), yl in zip(ends, ys):
            ax.annotate(text, (1.0, yl), xycoords=("axes fraction", "data"), xytext=(4, 0),
                        textcoords="offset points", ha="left", va="center",
                        fontsize=fs, color=c, gid="study-label", annotation_clip=False)
            # a line that ends before the last time point, or a label moved off its line's
            # end, gets a dotted leader from the line's last point to its label
            if xe < 0.98 * x_end or abs(yl - ye) > 0.5 * gap:
                ax.annotate("", xy=(1.0, yl), xycoords=("axes fraction", "data"),
                            xytext=(xe, ye), textcoords="data",
                            arrowprops={"arrowstyle": "-", "color": c, "linewidth": 0.5,
                                        "linestyle": (0, (1, 1.5)), "shrinkA": 2,
                                        "shrinkB": 1},
                            annotation_clip=False, gid="study-leader", zorder=1)
    return ax
