"""Time course of a pooled outcome (for example pain on a VAS) across follow-up times.

One pooled estimate per time point (a line with its confidence band) over the
individual studies' values (thin lines, one per study), x in days since the
intervention.  The pooled values come from one :func:`metaanalysis.pool` per
time point (or :func:`metaanalysis.pool_many` over all of them); this module
only draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib import transforms as mtransforms

from metaanalysis import formatting as fmt
from metaanalysis.errors import InputError
from metaanalysis.plots import layout as _layout
from metaanalysis.plots.scale import axis_scale

__all__ = ["LABEL_SHARE", "STUDY_COLORS", "TimecourseSpec", "draw_timecourse",
           "label_study_lines", "sqrt_limits", "study_label_text", "timecourse", "timecourse_spec"]

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


def _check_bounds(bounds):
    """``(lo, hi)`` of the scale (either None), or None; InputError names a bad value."""
    if bounds is None:
        return None
    try:
        lo, hi = bounds
        lo = None if lo is None else float(lo)
        hi = None if hi is None else float(hi)
    except (TypeError, ValueError):
        raise InputError(f"bounds: got {bounds!r}; expected (lower, upper) of the scale, "
                         "either None, e.g. (0, 10) for a 0-10 VAS") from None
    if any(v is not None and not np.isfinite(v) for v in (lo, hi)) or (
            lo is not None and hi is not None and not lo < hi):
        raise InputError(f"bounds: got {bounds!r}; expected finite lower < upper (or None)")
    return lo, hi


def _clip(lb, ub, bounds):
    """The band ``lb``..``ub`` cut at the scale's ``bounds``; also the masks of the points
    cut below and above."""
    lo, hi = bounds if bounds is not None else (None, None)
    below = lb < lo if lo is not None else np.zeros(lb.shape, bool)
    above = ub > hi if hi is not None else np.zeros(ub.shape, bool)
    return (np.where(below, lo, lb) if lo is not None else lb,
            np.where(above, hi, ub) if hi is not None else ub, below, above)


def _mark_cut(ax, x, below, above, bounds, color, interval):
    """A small triangle on the bound where a band was cut (pointing past it), with a
    legend entry saying so: a band that stops at 0 on a 0-10 scale is not read as
    reaching exactly 0."""
    lo, hi = bounds if bounds is not None else (None, None)
    first = True
    for mask, at, marker in ((below, lo, "v"), (above, hi, "^")):
        if at is None or not mask.any():
            continue
        ax.plot(x[mask], np.full(int(mask.sum()), at), linestyle="none", marker=marker,
                markersize=3.5, color=color, zorder=4, gid="band-cut", clip_on=False,
                label=f"{interval} cut at the scale's end" if first else None)
        first = False


def _draw_trajectory(ax, traj, scale, interval, bounds=None):
    """Model line with its CI band and (if given) the wider prediction band, cut at the
    scale's ``bounds``."""
    t = traj["time"].to_numpy(float)
    name = str(traj.attrs.get("label", "Model"))
    lvl = float(traj.attrs.get("level", 0.95))
    if {"pi_lb", "pi_ub"} <= set(traj.columns):
        plb, pub, _, _ = _clip(scale(traj["pi_lb"].to_numpy(float)),
                               scale(traj["pi_ub"].to_numpy(float)), bounds)
        ax.fill_between(t, plb, pub, color=_TRAJ_COLOR, alpha=0.12,
                        linewidth=0, zorder=0, gid="trajectory-pi",
                        label=f"{name}: {fmt.num(100 * lvl, 0)}% prediction interval")
    clb, cub, _, _ = _clip(scale(traj["ci_lb"].to_numpy(float)),
                           scale(traj["ci_ub"].to_numpy(float)), bounds)
    ax.fill_between(t, clb, cub, color=_TRAJ_COLOR, alpha=0.28, linewidth=0, zorder=1, gid="trajectory-ci",
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


def _check_counts(counts, x):
    """The k table sorted by time, or None; InputError names what is missing."""
    if counts is None:
        return None
    if not isinstance(counts, pd.DataFrame):
        raise InputError(f"counts: got {type(counts).__name__}; expected a DataFrame with "
                         f"columns {x!r}, 'k' (optional 'studies')")
    missing = [c for c in (x, "k") if c not in counts.columns]
    if missing:
        raise InputError(f"counts: missing column(s) {missing}; expected {x!r} (days), 'k' and "
                         f"optionally 'studies' (have {list(counts.columns)})")
    if not np.all(np.isfinite(counts[x].to_numpy(float))):
        raise InputError(f"counts: column {x!r} has missing or infinite values; expected days")
    return counts.sort_values(x, kind="stable")


@dataclass(frozen=True)
class TimecourseSpec:
    """What a time-course panel shows, checked (no matplotlib): the pooled rows, the
    study rows, the model trajectory, the k table and the drawing options."""

    pooled: pd.DataFrame
    studies: pd.DataFrame | None
    trajectory: pd.DataFrame | None
    counts: pd.DataFrame | None
    scale: object
    options: dict

    def study_ids(self) -> list:
        """The ids of the study lines, in drawing order."""
        if self.studies is None or not len(self.studies):
            return []
        return sorted(self.studies[self.options["study"]].unique())

    def span(self):
        """The smallest and largest time drawn (days)."""
        x = self.options["x"]
        parts = [self.pooled[x].to_numpy(float)]
        if self.trajectory is not None:
            parts.append(self.trajectory["time"].to_numpy(float))
        if self.studies is not None and len(self.studies):
            parts.append(self.studies[x].to_numpy(float))
        if self.counts is not None:
            parts.append(self.counts[x].to_numpy(float))
        a = np.concatenate(parts)
        return float(np.nanmin(a)), float(np.nanmax(a))


def timecourse_spec(df=None, studies=None, *, x: str = "days", y: str = "estimate",
                    study: str = "study", band: bool = True, measure: str | None = None,
                    percent: bool = False, xscale: str = "linear", show_k: bool = True,
                    xlabel: str = "Days after treatment", ylabel: str | None = None,
                    label: str = "Pooled", k_position: str = "row", xticks=None,
                    study_labels=None, trajectory=None, interval: str = "CI", counts=None,
                    study_colors=None, bounds=None, **kwargs) -> TimecourseSpec:
    """Check the arguments of :func:`timecourse` (same names) into a
    :class:`TimecourseSpec`; raises :class:`~metaanalysis.errors.InputError`."""
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
    if study_colors is not None and not isinstance(study_colors, dict):
        raise InputError(f"study_colors: got {type(study_colors).__name__}; expected a dict "
                         "of study id -> colour")
    scale = axis_scale(measure, transform=True, percent=percent,
                       ni=np.array([1.0]) if measure == "PFT" else None)
    color = kwargs.pop("color", _BLUE)
    if kwargs:
        raise InputError(f"unexpected keyword argument(s) {sorted(kwargs)}")
    pooled = pooled.sort_values(x)
    if np.any(~np.isfinite(pooled[x].to_numpy(float))):
        raise InputError(f"df: column {x!r} has missing times; expected days for every row "
                         "(parse them with ma.parse_timepoint)")
    opts = {"x": x, "y": y, "study": study, "band": band, "xscale": xscale, "show_k": show_k,
            "xlabel": xlabel, "ylabel": ylabel, "label": label, "k_position": k_position,
            "xticks": xticks, "study_labels": study_labels, "interval": interval,
            "color": color, "study_colors": study_colors, "bounds": _check_bounds(bounds)}
    return TimecourseSpec(pooled, srows, traj, _check_counts(counts, x), scale, opts)


def timecourse(df=None, studies=None, *, ax=None, width=None, x: str = "days", y: str = "estimate",
               study: str = "study", band: bool = True, measure: str | None = None,
               percent: bool = False, xscale: str = "linear", show_k: bool = True,
               xlabel: str = "Days after treatment", ylabel: str | None = None,
               label: str = "Pooled", k_position: str = "row", xticks=None,
               study_labels=None, trajectory=None, interval: str = "CI", counts=None,
               study_colors=None, bounds=None, **kwargs):
    """Plot a pooled outcome across time points with its CI band and the studies.

    Parameters
    ----------
    df : DataFrame, optional
        One row per time point with ``x`` (days), ``estimate``, ``ci_lb``,
        ``ci_ub`` and optionally ``k`` and ``studies`` (the ids of the studies
        pooled at that time: where the set differs from the previous time
        point, k is marked "k*" in vermillion and the legend says so).  It may
        also hold the study rows: rows whose ``study`` column is empty (NaN) or
        ``"pooled"`` are the pooled values, the others are studies (value in
        ``yi``, else ``estimate``).
    studies : DataFrame, optional
        Study rows (``study``, ``x`` and ``yi``/``estimate``) given separately.
    ax : matplotlib Axes, optional
    width : "single", "onehalf", "double" or mm, optional
        Width of the figure made here (default 89 mm).
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
        Write the number of studies of each pooled point (needs ``k`` in
        ``df`` or ``counts``).
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
    study_colors : dict, optional
        Study id → colour of its line (with ``study_labels``), so that a study
        has the same colour in several figures; the order of the dict also
        orders the sideways moves.  Default: Okabe–Ito colours in id order.
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
    counts : DataFrame, optional
        The k row when ``df`` has no ``k`` (for example a model trajectory
        drawn without per-window pools): columns ``x`` (days), ``k`` and
        optionally ``studies`` (ids per time point; a changed study set is
        marked "k*" as for ``df``).
    interval : {"CI", "CrI"}
        Name of the bands in the legend: "CrI" for credible bands of a
        Bayesian fit.
    bounds : (float or None, float or None), optional
        Ends of the outcome's scale on the displayed scale, e.g. ``(0, 10)``
        for a 0–10 VAS.  Bands (CI, and a trajectory's CI and PI) are cut at
        them; where the pooled CI runs past an end a small triangle on that end
        points past it, and the legend says "95% CI cut at the scale's end".
    **kwargs
        ``color`` of the pooled line.

    Returns
    -------
    matplotlib.axes.Axes

    See Also
    --------
    timecourse_panels : change and absolute values side by side in one figure.

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
    spec = timecourse_spec(df, studies, x=x, y=y, study=study, band=band, measure=measure,
                           percent=percent, xscale=xscale, show_k=show_k, xlabel=xlabel,
                           ylabel=ylabel, label=label, k_position=k_position, xticks=xticks,
                           study_labels=study_labels, trajectory=trajectory, interval=interval,
                           counts=counts, study_colors=study_colors, bounds=bounds,
                           **kwargs)
    created = ax is None
    ax = _layout.new_axes(ax, width, 0.75)
    ends = draw_timecourse(ax, spec)
    n_entries = len(ax.get_legend_handles_labels()[0])
    if created or n_entries > 3:  # under the axis label, off the data
        _layout.legend_below(ax, ncol=2 if ax.figure.get_size_inches()[0] > 5 else 1,
                             grow=created)
    else:
        ax.legend(frameon=False, loc="best", fontsize=_layout.small_font())
    _layout.settle(ax.figure)  # the axes' final height: for the y label and the study labels
    _layout.fit_labels(ax, "y")
    _layout.settle(ax.figure)
    label_study_lines(ax, ends)
    return ax


def _study_colors(spec):
    """Colour and sideways move (pt) of each study line."""
    ids = spec.study_ids()
    given = spec.options["study_colors"] or {}
    order = list(given) + [s for s in ids if s not in given]
    n = len(order)
    out = {}
    for i, sid in enumerate(order):
        c = given.get(sid, STUDY_COLORS[i % len(STUDY_COLORS)])
        out[sid] = (c, (i - (n - 1) / 2) * 1.2)
    return out


def draw_timecourse(ax, spec: TimecourseSpec) -> list:
    """Draw ``spec`` on ``ax`` (lines, bands, k row, axis labels; no legend, no study
    labels); returns the ends of the labelled study lines for :func:`label_study_lines`."""
    o = spec.options
    x, y, study, scale = o["x"], o["y"], o["study"], spec.scale
    pooled, srows, traj = spec.pooled, spec.studies, spec.trajectory
    study_labels, xscale = o["study_labels"], o["xscale"]
    px = pooled[x].to_numpy(float)
    py = scale(pooled[y].to_numpy(float))
    ends = []  # (last x, last y, label, colour, dodge) of labelled study lines
    if srows is not None and len(srows):
        col = "yi" if "yi" in srows.columns else y
        names = study_labels if isinstance(study_labels, dict) else {}
        colors = _study_colors(spec)
        for i, (name, g) in enumerate(srows.groupby(study, sort=True)):
            g = g.sort_values(x)
            gy = scale(g[col].to_numpy(float))
            gx = g[x].to_numpy(float)
            c, dx = colors[name] if study_labels else ("#9A9A9A", 0.0)
            # lines that coincide are moved apart sideways by 1.2 pt each (a visual dodge)
            tr = ax.transData + mtransforms.ScaledTranslation(dx / 72, 0,
                                                              ax.figure.dpi_scale_trans)
            # study markers sit above the pooled marker (zorder 5 > 4): never hidden
            ax.plot(gx, gy, color=c, linewidth=0.6 if not study_labels else 0.8,
                    marker="o", markersize=2.5, markerfacecolor="white", transform=tr,
                    markeredgewidth=0.6, zorder=5, gid="study-line",
                    label="Individual studies" if i == 0 and not study_labels else None)
            # a line drawn through an offset transform is not in the autoscaled limits:
            # its points are added here, so no study point falls outside the axes
            ax.update_datalim(np.column_stack([gx, gy])[np.isfinite(gy)])
            if study_labels:
                ends.append((float(gx[-1]), float(gy[-1]),
                             study_label_text(ax.figure, str(names.get(name, name))), c, dx))
        ax.autoscale_view()
    if traj is not None:
        _draw_trajectory(ax, traj, scale, o["interval"], o["bounds"])
    if o["band"] and {"ci_lb", "ci_ub"} <= set(pooled.columns) and len(pooled):
        lb = scale(pooled["ci_lb"].to_numpy(float))
        ub = scale(pooled["ci_ub"].to_numpy(float))
        lvl = pooled.attrs.get("level", 0.95)
        lb, ub, below, above = _clip(lb, ub, o["bounds"])
        ax.fill_between(px, lb, ub, color=o["color"], alpha=0.2, linewidth=0, zorder=1,
                        gid="ci-band", label=f"{fmt.num(100 * lvl, 0)}% {o['interval']}")
        _mark_cut(ax, px, below, above, o["bounds"], o["color"],
                  f"{fmt.num(100 * lvl, 0)}% {o['interval']}")
    if len(pooled):
        ax.plot(px, py, color=o["color"], linewidth=1.4, marker="o", markersize=4, zorder=4,
                gid="pooled-line", label=o["label"])
    lo, hi = spec.span()
    if xscale == "sqrt":
        _sqrt_scale(ax)
    if xscale == "symlog":
        from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

        ax.set_xscale("symlog", linthresh=7, linscale=0.6)
        ticks = [t for t in (0, 1, 7, 14, 30, 90, 180, 365, 730, 1095)
                 if lo <= t <= hi * 1.001]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    xticks = o["xticks"]
    if xticks is not None:
        from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

        pos = list(xticks.keys()) if isinstance(xticks, dict) else list(xticks)
        ax.xaxis.set_major_locator(FixedLocator([float(v) for v in pos]))
        ax.xaxis.set_minor_locator(NullLocator())
        if isinstance(xticks, dict):
            ax.xaxis.set_major_formatter(FixedFormatter([str(v) for v in xticks.values()]))
    if xscale == "sqrt":
        ax.set_xlim(*sqrt_limits(lo, hi))
    kdf = spec.counts if spec.counts is not None else pooled
    if o["show_k"] and "k" in kdf.columns and len(kdf):
        _k_row(ax, kdf, x, y, scale, o["k_position"])
    ax.set_xlabel(o["xlabel"])
    ax.set_ylabel(o["ylabel"] or scale.label)
    _layout.fit_labels(ax, "x")
    return ends


def sqrt_limits(lo: float, hi: float) -> tuple[float, float]:
    """x limits of a square-root time axis over days ``lo``..``hi``: 4% padding on the
    square-root scale."""
    lo_t, hi_t = np.sqrt(max(lo, 0.0)), np.sqrt(hi)
    pad = 0.04 * (hi_t - lo_t)
    return float(np.sign(lo_t - pad) * (lo_t - pad) ** 2), float((hi_t + pad) ** 2)


def _k_row(ax, kdf, x, y, scale, position):
    """The number of studies per time point: a row under the tick labels (a changed
    study set marked "k*") or "k = N" above each point's CI."""
    kx = kdf[x].to_numpy(float)
    col = next((c for c in ("ci_ub", y) if c in kdf.columns), None)
    if position == "above" and col is not None:  # (a bare k table goes in the row)
        top = scale(kdf[col].to_numpy(float))
        for xi, ti, k in zip(kx, top, kdf["k"]):
            ax.annotate(f"k = {fmt.num(k, 0)}", (xi, ti), xytext=(0, 3),
                        textcoords="offset points", ha="center", va="bottom",
                        fontsize=_layout.small_font(), color="#404040", gid="k-label")
        return
    import matplotlib as mpl
    from matplotlib.font_manager import FontProperties

    tick_pt = FontProperties(size=mpl.rcParams["xtick.labelsize"]).get_size_in_points()
    below = mpl.rcParams["xtick.major.size"] + mpl.rcParams["xtick.major.pad"] + tick_pt + 3.0
    trans = ax.get_xaxis_transform()
    changed = _set_changes(kdf)
    for xi, k, ch in zip(kx, kdf["k"], changed):
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
                textcoords="offset points", ha="right", va="top",
                fontsize=_layout.small_font(), color="#404040", fontweight="bold",
                gid="k-header", annotation_clip=False)
    ax.xaxis.labelpad = mpl.rcParams["axes.labelpad"] + tick_pt + 2.0


#: A study label at the right edge takes at most this share of the figure width (at least
#: 0.8 in); longer labels end in "…".
LABEL_SHARE = 0.25


def study_label_text(fig, text: str) -> str:
    """``text`` shortened with "…" to the width a study label may take in ``fig``."""
    m = _layout.TextMeasure(fig, _layout.small_font())
    return _layout.shorten(text, max(LABEL_SHARE * fig.get_size_inches()[0], 0.8), m)


def label_study_lines(ax, ends) -> None:
    """Label each study line at the right edge of ``ax`` (after the layout is final:
    the gap between labels is measured at the axes' height).  Labels stay within the
    axes' height; when they cannot all fit there they are left out with a
    :class:`~metaanalysis.plots.layout.LayoutWarning`."""
    if not ends:
        return
    lo_, hi_ = ax.get_ylim()
    h_pt = max(_layout.axes_height_points(ax), 1.0)
    fs = _layout.small_font()
    gap = (hi_ - lo_) * 1.15 * fs / h_pt
    if len(ends) * gap > hi_ - lo_:
        need, have = len(ends) * 1.15 * fs / 72 * 25.4, h_pt / 72 * 25.4
        _layout.warn_layout(f"timecourse: {len(ends)} study labels at {fs:g} pt need "
                            f"{need:.0f} mm; the axes are {have:.0f} mm high: labels left out "
                            "(use a taller figure, fewer studies or study_labels=None)")
        return
    ys = _spread([e[1] for e in ends], gap)
    ys -= max(ys.max() + gap / 2 - hi_, 0.0)  # the block stays within the axes' height
    ys += max(lo_ - (ys.min() - gap / 2), 0.0)
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
