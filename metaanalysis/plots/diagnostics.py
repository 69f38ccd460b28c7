"""Diagnostic plots: Baujat, radial (Galbraith), GOSH and the influence panel.

Every number drawn comes from the models layer — :func:`metaanalysis.baujat_coordinates`,
:func:`metaanalysis.gosh`, :func:`metaanalysis.influence` or a fitted result — and is
passed in; this module only draws (a plot never refits a model or computes a test:
tests/test_plots_pure.py enforces it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from metaanalysis import formatting as fmt
from metaanalysis.errors import InputError
from metaanalysis.plots import layout as _layout

__all__ = ["baujat", "gosh_plot", "influence_plot", "radial"]

_BLUE, _VERMILLION = "#0072B2", "#D55E00"


def _check_result(result, name="result"):
    if not hasattr(result, "yi") or not hasattr(result, "vi") or not hasattr(result, "estimate"):
        raise InputError(f"{name}: got {type(result).__name__}; expected a PoolResult")


def _computed(obj, name, columns, make):
    """``obj`` when it is the DataFrame of a models-layer function with ``columns``;
    otherwise an InputError that names the call to make (a plot computes nothing)."""
    if isinstance(obj, pd.DataFrame):
        missing = [c for c in columns if c not in obj.columns]
        if missing:
            raise InputError(f"{name}: the DataFrame lacks column(s) {missing}; expected the "
                             f"result of {make} (have {list(obj.columns)})")
        return obj
    if hasattr(obj, "yi") and hasattr(obj, "estimate"):
        raise InputError(f"{name}: got a {type(obj).__name__}; pass {make} — a plot draws "
                         "results and never refits a model")
    raise InputError(f"{name}: got {type(obj).__name__}; expected the DataFrame of {make}")


def _label_points(ax, x, y, labels, fontsize=None):
    """Label points without overlaps: the points farthest out (most influential) first,
    each at the first free spot around it; a label that finds no free spot is left out."""
    fig = ax.figure
    fs = fontsize or _layout.small_font()
    _layout.settle(fig)  # final axes position and limits before measuring
    m = _layout.TextMeasure(fig, fs)
    x, y = np.asarray(x, float), np.asarray(y, float)
    pts = ax.transData.transform(np.column_stack([x, y])) / fig.dpi  # inches
    box = ax.get_window_extent().bounds
    x0, y0 = box[0] / fig.dpi, box[1] / fig.dpi
    x1, y1 = x0 + box[2] / fig.dpi, y0 + box[3] / fig.dpi
    span = np.ptp(pts, axis=0) + 1e-9
    order = np.argsort(-(((pts - pts.min(axis=0)) / span).sum(axis=1)), kind="stable")
    h = m.line()
    placed = [(px - 0.03, py - 0.03, px + 0.03, py + 0.03) for px, py in pts]  # the points
    for i in order:
        text = str(labels[i])
        w = m.width(text)
        px, py = pts[i]
        for dx, dy in ((0.04, 0.02), (0.04, -0.02 - h), (-0.04 - w, 0.02), (-0.04 - w, -0.02 - h),
                       (-w / 2, 0.05), (-w / 2, -0.05 - h)):
            b = (px + dx, py + dy, px + dx + w, py + dy + h)
            inside = b[0] >= x0 and b[2] <= x1 and b[1] >= y0 and b[3] <= y1
            free = all(b[2] <= o[0] or b[0] >= o[2] or b[3] <= o[1] or b[1] >= o[3]
                       for j, o in enumerate(placed) if j != i)
            if inside and free:
                placed.append(b)
                ax.annotate(text, (x[i], y[i]), xytext=(dx * 72, dy * 72),
                            textcoords="offset points", ha="left", va="bottom", fontsize=fs,
                            gid="point-label")
                break


def baujat(coords, *, ax=None, width=None, labels="number", **kwargs):
    """Baujat plot: contribution to heterogeneity against influence on the result.

    Studies at the top right both drive the heterogeneity and move the pooled
    estimate (Baujat, Mahé, Pignon & Hill 2002, Stat Med 21:2641).  The
    coordinates come from the models layer: ``ma.baujat(ma.baujat_coordinates(res))``.

    Parameters
    ----------
    coords : DataFrame
        :func:`metaanalysis.baujat_coordinates` of a fitted model (columns ``x``
        and ``y``, index the study labels).  A ``PoolResult`` is refused with
        an ``InputError`` that names this call (the plot fits nothing).
    ax : matplotlib Axes, optional
    width : "single", "onehalf", "double" or mm, optional
        Width of the figure made here (without ``ax``).
    labels : {"number", "label"} or False
        Write each study's number (1..k, in the order of the data; default,
        legible with many studies) or its label next to its point.  Labels
        never overlap: the studies farthest out are labelled first, and a
        label with no free spot near its point is left out.
    **kwargs
        Passed to ``ax.scatter``.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import metaanalysis as ma
    >>> res = ma.pool([0.1, 0.3, 0.35, 1.2, 0.2], [0.01, 0.02, 0.015, 0.01, 0.03])
    >>> ax = ma.baujat(ma.baujat_coordinates(res))
    >>> len(ax.collections[0].get_offsets())  # one point per study
    5
    >>> ax.figure.clf()
    """
    xy = _computed(coords, "coords", ("x", "y"), "ma.baujat_coordinates(res)")
    if labels not in ("number", "label", False, None):
        raise InputError(f"labels: got {labels!r}; expected 'number', 'label' or False")
    ax = _layout.new_axes(ax, width, 0.9)
    kwargs.setdefault("color", _BLUE)
    kwargs.setdefault("s", 14)
    ax.scatter(xy["x"], xy["y"], zorder=3, gid="baujat-points", **kwargs)
    ax.set_xlabel("Contribution to overall heterogeneity")
    ax.set_ylabel("Influence on overall result")
    ax.margins(0.12)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    if labels == "number":
        _label_points(ax, xy["x"], xy["y"], range(1, len(xy) + 1))
    elif labels == "label":
        _label_points(ax, xy["x"], xy["y"], [str(s) for s in xy.index])
    return ax


def radial(result, *, ax=None, width=None, labels: bool = False, level: float | None = None, **kwargs):
    """Radial (Galbraith) plot.

    Each study is drawn at ``x = 1/√(vi + τ̂²)`` (precision), ``y = yi/√(vi + τ̂²)``
    (standardised effect); the line through the origin has slope μ̂ and the
    band ``±z`` around it holds about ``level`` of the studies when the model
    fits (Galbraith 1988, Stat Med 7:889).

    Parameters
    ----------
    result : PoolResult
    ax : matplotlib Axes, optional
    labels : bool
        Write the study labels next to the points.
    level : float, optional
        Coverage of the band (default: the result's level).
    **kwargs
        Passed to ``ax.scatter``.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import metaanalysis as ma
    >>> res = ma.pool([0.1, 0.3, 0.35, 1.2, 0.2], [0.01, 0.02, 0.015, 0.01, 0.03])
    >>> ax = ma.radial(res)
    >>> ax.get_xlabel()
    '1/√(vᵢ + τ²)'
    >>> ax.figure.clf()
    """
    _check_result(result)
    level = float(result.level if level is None else level)
    yi = np.asarray(result.yi, float)
    vi = np.asarray(result.vi, float)
    tau2 = float(result.tau2) if result.method != "EE" else 0.0
    w = 1.0 / np.sqrt(vi + tau2)
    x, y = w, yi * w
    z = float(stats.norm.ppf(0.5 + level / 2))
    ax = _layout.new_axes(ax, width, 0.9)
    xmax = float(np.max(x)) * 1.08
    xs = np.array([0.0, xmax])
    mu = float(result.estimate)
    ax.plot(xs, mu * xs, color="#404040", linewidth=0.8, gid="radial-line",
            label=f"Pooled estimate ({fmt.num(mu, 2)})")
    ax.plot(xs, mu * xs + z, color="#404040", linewidth=0.6, linestyle=(0, (4, 2)),
            gid="radial-band")
    ax.plot(xs, mu * xs - z, color="#404040", linewidth=0.6, linestyle=(0, (4, 2)))
    ax.axhline(0, color="#B0B0B0", linewidth=0.5, zorder=0)
    kwargs.setdefault("color", _BLUE)
    kwargs.setdefault("s", 14)
    ax.scatter(x, y, zorder=3, gid="radial-points", **kwargs)
    ax.set_xlim(0, xmax)
    tau = "" if tau2 == 0 else " + τ²"
    ax.set_xlabel(f"1/√(vᵢ{tau})")
    ax.set_ylabel(f"yᵢ/√(vᵢ{tau})")
    if labels:
        _label_points(ax, x, y, result.labels)
    return ax


def gosh_plot(gosh, *, ax=None, width=None, highlight=None, max_points: int = 50_000, seed: int = 1,
              **kwargs):
    """GOSH plot: pooled estimate against I² over subsets of the studies.

    Each point is one subset of the studies refitted with the same model
    (Olkin, Dahabreh & Trikalinos 2012, Res Synth Methods 3:214); clusters
    point to studies that pull the estimate or the heterogeneity.

    Parameters
    ----------
    gosh : result of :func:`metaanalysis.gosh` or its DataFrame
        Needs ``estimate`` and ``i2`` per subset; a result without per-subset
        rows (large k) is drawn from its 2-D histogram (``gosh.stats``) as a
        density, with ``highlight`` as contours of the subsets containing the study.
    ax : matplotlib Axes, optional
    highlight : str or int, optional
        A study (label or index): subsets containing it are drawn in a second
        colour (needs the ``incl`` matrix of a GoshResult).
    max_points : int
        Draw at most this many subsets (a fixed random sample, ``seed``).
    **kwargs
        Passed to ``ax.scatter``.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import metaanalysis as ma
    >>> res = ma.pool([0.1, 0.3, 0.35, 1.2, 0.2], [0.01, 0.02, 0.015, 0.01, 0.03], method="DL")
    >>> ax = ma.gosh_plot(ma.gosh(res), highlight=3)
    >>> ax.get_ylabel().startswith("I²")
    True
    >>> ax.figure.clf()
    """
    frame = gosh if isinstance(gosh, pd.DataFrame) else getattr(gosh, "frame", None)
    if frame is None and getattr(gosh, "stats", None) is not None:
        return _gosh_density(gosh.stats, ax=ax, width=width, highlight=highlight, **kwargs)
    if frame is None or not {"estimate", "i2"} <= set(frame.columns):
        raise InputError(f"gosh: got {type(gosh).__name__}; expected a gosh() result or a "
                         "DataFrame with 'estimate' and 'i2' columns")
    est = frame["estimate"].to_numpy(float)
    i2 = frame["i2"].to_numpy(float)
    n = est.size
    idx = np.arange(n)
    if n > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))
    mask = None
    if highlight is not None:
        incl = getattr(gosh, "incl", None)
        labels = list(getattr(gosh, "labels", ()))
        if incl is None:
            raise InputError("highlight: needs a gosh() result (with its incl matrix), "
                             "not a bare DataFrame")
        if isinstance(highlight, str):
            if highlight not in labels:
                raise InputError(f"highlight: got {highlight!r}; expected one of {labels}")
            j = labels.index(highlight)
        else:
            j = int(highlight)
            if not 0 <= j < incl.shape[1]:
                raise InputError(f"highlight: got {highlight!r}; expected 0..{incl.shape[1] - 1}")
        mask = np.asarray(incl)[idx, j]
    created = ax is None
    ax = _layout.new_axes(ax, width, 0.9)
    alpha = float(np.clip(2000.0 / max(idx.size, 1), 0.08, 0.8))
    kwargs.setdefault("s", 4)
    kwargs.setdefault("alpha", alpha)
    kwargs.setdefault("edgecolors", "none")
    if mask is None:
        ax.scatter(est[idx], i2[idx], color=_BLUE, gid="gosh-points", rasterized=idx.size > 5000,
                   **kwargs)
    else:
        ax.scatter(est[idx][~mask], i2[idx][~mask], color="#8C8C8C", gid="gosh-points",
                   rasterized=idx.size > 5000, **kwargs)
        ax.scatter(est[idx][mask], i2[idx][mask], color=_VERMILLION, gid="gosh-highlight",
                   rasterized=idx.size > 5000, **kwargs)
    ax.set_xlabel("Pooled estimate")
    ax.set_ylabel("I² (%)")
    if mask is not None:
        from matplotlib.lines import Line2D

        dot = {"linestyle": "none", "marker": "o", "markersize": 3, "markeredgewidth": 0}
        _gosh_legend(ax, [Line2D([], [], color="#8C8C8C", **dot),
                          Line2D([], [], color=_VERMILLION, **dot)],
                     labels[j] if labels else str(j), created)
    ax.set_ylim(bottom=0, top=max(100.0 if np.nanmax(i2) > 50 else np.nanmax(i2) * 1.1, 1))
    return ax


def _gosh_density(stats, *, ax=None, width=None, highlight=None, **kwargs):
    """GOSH plot from the histogram summaries of :func:`metaanalysis.gosh` (no rows kept)."""
    from matplotlib.colors import LogNorm

    counts = np.asarray(stats.counts, float)
    ex, ey = stats.est_edges, stats.i2_edges
    j = None
    if highlight is not None:
        labels = list(stats.labels)
        j = labels.index(highlight) if isinstance(highlight, str) and highlight in labels \
            else highlight
        if isinstance(j, str) or not 0 <= int(j) < len(labels):
            raise InputError(f"highlight: got {highlight!r}; expected one of {labels} "
                             f"or 0..{len(labels) - 1}")
        j = int(j)
        counts = counts - stats.counts_with[j]  # the density without the study
    created = ax is None
    ax = _layout.new_axes(ax, width, 0.9)
    shown = np.ma.masked_less_equal(counts.T, 0)
    kwargs.setdefault("cmap", "Greys" if j is not None else "Blues")
    ax.pcolormesh(ex, ey, shown, norm=LogNorm(vmin=1, vmax=max(shown.max(), 1)),
                  gid="gosh-density", rasterized=True, **kwargs)
    if j is not None:
        with_ = np.asarray(stats.counts_with[j], float).T
        cx, cy = 0.5 * (ex[1:] + ex[:-1]), 0.5 * (ey[1:] + ey[:-1])
        top = with_.max()
        if top > 0:
            levels = top * np.array([0.01, 0.1, 0.5])
            cs = ax.contour(cx, cy, with_, levels=levels, colors=_VERMILLION, linewidths=0.8)
            cs.set_gid("gosh-highlight")
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        legend = ([Patch(color="#8C8C8C"), Line2D([], [], color=_VERMILLION)],
                  str(stats.labels[j]))
    nonzero = np.flatnonzero(counts.sum(axis=1) + (stats.counts_with[j].sum(axis=1)
                                                     if j is not None else 0))
    if nonzero.size:
        ax.set_xlim(ex[nonzero[0]], ex[nonzero[-1] + 1])
    ax.set_xlabel("Pooled estimate")
    ax.set_ylabel("I² (%)")
    ax.set_ylim(0, 100)
    if j is not None:
        _gosh_legend(ax, *legend, created)
    return ax


def _gosh_legend(ax, handles, name: str, created: bool) -> None:
    """"without / with <study>" under the axis label (off the points), the study's label
    shortened with "…" to the figure's width; the figure grows by the legend's height
    when it was made here."""
    fig = ax.figure
    m = _layout.TextMeasure(fig, _layout.small_font())
    room = fig.get_size_inches()[0] - 0.6  # less the legend handle and margins
    name = _layout.shorten(name, room - m.width("without "), m)
    _layout.legend_below(ax, handles, [f"without {name}", f"with {name}"], grow=created)


_PANELS = (("rstudent", "Studentised residual"), ("dffits", "DFFITS"),
           ("cooks", "Cook's distance"), ("cov_r", "Covariance ratio"),
           ("tau2_del", "τ² without study"), ("q_del", "Q without study"),
           ("hat", "Leverage (hat)"), ("weight", "Weight (%)"))


def influence_plot(inf, *, ax=None, fig=None, axes=None, labels: bool = False,
                   width=None):
    """Panel of the influence diagnostics of Viechtbauer & Cheung (2010, RSM 1:112).

    One small plot per statistic of :func:`metaanalysis.influence` (studentised
    residuals, DFFITS, Cook's distances, covariance ratios, τ² and Q when the
    study is left out, leverage, weight), studies on the x axis; studies
    flagged as influential (``inf``) are drawn in vermillion.

    Parameters
    ----------
    inf : DataFrame
        :func:`metaanalysis.influence` of a fitted model:
        ``ma.influence_plot(ma.influence(res))``.  A ``PoolResult`` is refused
        with an ``InputError`` that names this call (the plot fits nothing).
    ax : matplotlib Axes, optional
        Draw the eight panels inside this Axes' area (it becomes their frame,
        with no axis of its own); nothing outside it is touched.
    fig : matplotlib Figure, optional
        Figure to draw into (a 4 × 2 grid of axes is added).
    axes : array of 8 Axes, optional
        Axes to draw on, in the order of the statistics above.
    labels : bool
        Label the x axis with study labels instead of numbers.
    width : "single", "onehalf", "double" or mm, optional
        Width of the figure made here (default 183 mm).

    Returns
    -------
    numpy.ndarray of Axes

    Examples
    --------
    >>> import metaanalysis as ma
    >>> res = ma.pool([0.1, 0.3, 0.35, 1.2, 0.2], [0.01, 0.02, 0.015, 0.01, 0.03])
    >>> axes = ma.influence_plot(ma.influence(res))
    >>> axes.size > 1
    True
    >>> axes.flat[0].figure.clf()
    """
    inf = _computed(inf, "inf", (), "ma.influence(res)")
    cols = [(c, t) for c, t in _PANELS if c in inf.columns]
    if not cols:
        raise InputError("inf: the influence DataFrame has none of the columns "
                         f"{[c for c, _ in _PANELS]}")
    if sum(v is not None for v in (ax, fig, axes)) > 1:
        raise InputError("ax, fig, axes: give at most one of them")
    if ax is not None:
        if width is not None:
            raise InputError("width: given together with ax; the Axes' figure decides the "
                             "width (pass one or the other)")
        ax.set_axis_off()
        axes = [ax.inset_axes([0.02 + 0.25 * (i % 4), 0.56 - 0.5 * (i // 4), 0.19, 0.36])
                for i in range(8)]
    elif axes is None:
        if fig is None:
            import matplotlib.pyplot as plt

            from metaanalysis.plots.output import width_inches

            w = width_inches("double" if width is None else width)
            narrow = w < 4.5  # below ~115 mm: four rows of two panels
            fig = plt.figure(figsize=(w, w * 1.25 if narrow else max(w * 0.62, 2.6)))
        elif width is not None:
            raise InputError("width: given together with fig; the figure decides the width")
        else:
            narrow = fig.get_size_inches()[0] < 4.5
        fig.set_layout_engine("constrained")
        # the panels show the same studies on x; not matplotlib-shared axes (shared axes
        # measure every sibling's tick labels at each layout pass: 3 x slower to draw)
        ncols = 2 if narrow else 4
        axes = fig.subplots(8 // ncols, ncols).ravel()
        for a in axes[:-ncols]:  # x tick labels on the bottom row only
            a.tick_params(labelbottom=False)
    axes = np.asarray(axes).ravel()
    if axes.size < len(cols):
        raise InputError(f"axes: got {axes.size} axes; expected at least {len(cols)}")
    k = len(inf)
    xs = np.arange(1, k + 1)
    flag = inf["inf"].to_numpy(bool) if "inf" in inf.columns else np.zeros(k, bool)
    for ax, (c, title) in zip(axes, cols):  # noqa: B020 -- one Axes per statistic
        v = inf[c].to_numpy(float)
        ax.plot(xs, v, color="#8C8C8C", linewidth=0.6, zorder=1)
        ax.scatter(xs[~flag], v[~flag], s=10, color="#000000", zorder=2, gid=f"influence-{c}")
        if flag.any():
            ax.scatter(xs[flag], v[flag], s=14, color=_VERMILLION, zorder=3,
                       gid=f"influence-{c}-flagged")
        ax.set_title(title, loc="left")
        if c == "rstudent":
            for h in (-1.96, 0, 1.96):
                ax.axhline(h, color="#B0B0B0", linewidth=0.5, linestyle=":" if h else "-",
                           zorder=0)
        if c == "cov_r":
            ax.axhline(1, color="#B0B0B0", linewidth=0.5, zorder=0)
        if labels:
            ax.set_xticks(xs)
            ax.set_xticklabels([str(s) for s in inf.index], rotation=90,
                               fontsize=_layout.small_font())
        else:  # as many study numbers as fit the panel's width without touching
            fig_w = ax.figure.get_size_inches()[0]
            panel_pt = ax.get_position().width * fig_w * 72 or 60.0
            fits = max(int(panel_pt / (2.6 * _layout.font_size("small"))), 2)
            ax.set_xticks(xs[::max(1, -(-k // fits))])
    for ax in axes[len(cols):]:
        ax.set_visible(False)
    used = axes[:len(cols)]
    bottom = min(a.get_position().y0 for a in used)
    for ax in used:  # the bottom row says what the x axis is
        if abs(ax.get_position().y0 - bottom) < 1e-6:
            ax.set_xlabel("Study (label)" if labels else "Study (number)")
    return axes
