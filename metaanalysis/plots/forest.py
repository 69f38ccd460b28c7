"""Forest plots: studies, pooled diamonds, prediction interval and text columns.

Follows the conventions of Lewis & Clarke (2001, BMJ 322:1479) for forest plots
and of Riley, Higgins & Deeks (2011, BMJ 342:d549) for showing the prediction
interval: one row per study with a box whose *area* is proportional to the
study's weight and a line for its confidence interval, a diamond spanning the
pooled confidence interval, a bar for the prediction interval, and the
heterogeneity statistics written under the plot.  Values are shown on the
natural scale of the measure (proportions for PLO/PAS/PFT, ratios on a log
axis for RR/OR/ROM).

The same layout draws leave-one-out and cumulative analyses (a DataFrame from
:func:`metaanalysis.leave_one_out` / :func:`metaanalysis.cumulative`) and
subgroup analyses (a result of :func:`metaanalysis.subgroups`).

Bayesian results (:func:`metaanalysis.pool_bayes`) are drawn with each study's
observed estimate and, below it, its posterior (shrinkage) estimate θᵢ | data
as an open circle, the pooled diamond at the posterior median of μ spanning
its credible interval, the posterior predictive interval and the priors; a
Bayesian diamond can also be added under a frequentist one (``bayes=``), as
in the forest plots of Röver (2020, J Stat Softw 93(6)) and Friede et al.
(2017, Biom J 59:658).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.patches import Polygon

from metaanalysis import formatting as fmt
from metaanalysis.errors import InputError
from metaanalysis.plots import _layout
from metaanalysis.plots._forest_bayes import _is_bayes, bayes_rows, bayes_text
from metaanalysis.plots._forest_rows import (
    Rows,
    _effect_text,
    _f,
    _is_subgroups,
    _order,
    _study_intervals,
    _study_text_columns,
    _subgroup_parts,
)
from metaanalysis.plots._layout import PROPORTION_MEASURES, Column, TextTable

__all__ = ["forest", "forest_size"]

ROW_HEIGHT_IN = 0.19  # inches per row at the default 7 pt text
PLOT_WIDTH_IN = 2.3  # width of the graphical column when the figure is made here
_BOTTOM_IN = 0.42
_TOP_IN = 0.06
_DIAMOND_HALF = 0.36  # half height of a diamond, in rows
_BOX_FRACTION = 0.72  # side of the largest box, in rows

COLORS = {"study": "#000000", "diamond": "#0072B2", "common": "#FFFFFF",
          "pi": "#D55E00", "ref": "#7F7F7F", "ci": "#000000", "bayes": "#009E73"}
_SHRINK_OFFSET = (-0.15, 0.22)  # rows: observed above, shrinkage estimate below


def forest_size(n_rows: int, left_in: float = 2.0, right_in: float = 1.6,
                plot_width_in: float = PLOT_WIDTH_IN) -> tuple[float, float]:
    """Figure size (inches) for a forest plot of ``n_rows`` rows.

    Height grows linearly with the rows (``ROW_HEIGHT_IN`` each) plus room for
    the x axis, so 3 or 60 studies get the same row spacing.

    Examples
    --------
    >>> w, h = forest_size(10)
    >>> round(h, 2)
    2.38
    """
    return (left_in + plot_width_in + right_in, n_rows * ROW_HEIGHT_IN + _BOTTOM_IN + _TOP_IN)


# ---------------------------------------------------------------------------
# drawing primitives
# ---------------------------------------------------------------------------

def _diamond(ax, est, lb, ub, y, *, color, gid, half=_DIAMOND_HALF):
    poly = Polygon([(lb, y), (est, y - half), (ub, y), (est, y + half)], closed=True,
                   facecolor=color, edgecolor="black", linewidth=0.6, zorder=4, gid=gid)
    ax.add_patch(poly)
    return poly


def _ci_line(ax, y, lb, ub, xlim, log, color, gid="study-ci", lw=0.8):
    """Whisker from lb to ub, clipped to ``xlim`` with an arrow head at a clipped end."""
    lo, hi = xlim
    a, b = max(lb, lo), min(ub, hi)
    if not (np.isfinite(a) and np.isfinite(b)) or a > b:
        return
    ax.plot([a, b], [y, y], color=color, linewidth=lw, solid_capstyle="butt", zorder=3,
            gid=gid)
    for clipped, edge, inner in ((lb < lo, lo, b), (ub > hi, hi, a)):
        if not clipped:
            continue
        if log:
            start = np.exp(np.log(edge) + 0.06 * (np.log(inner) - np.log(edge)))
        else:
            start = edge + 0.06 * (inner - edge)
        ax.annotate("", xy=(edge, y), xytext=(start, y), gid="clip-arrow",
                    arrowprops={"arrowstyle": "-|>,head_length=0.35,head_width=0.18",
                                    "color": color, "linewidth": lw, "shrinkA": 0, "shrinkB": 0},
                    annotation_clip=False, zorder=3)


def _auto_xlim(values, scale, xlim):
    if xlim is not None:
        lo, hi = float(xlim[0]), float(xlim[1])
        if not lo < hi or (scale.kind == "log" and lo <= 0):
            raise InputError(f"xlim: got {xlim!r}; expected (low, high) with low < high"
                             + (" and low > 0 on a log axis" if scale.kind == "log" else ""))
        return lo, hi
    v = np.asarray([x for x in values if np.isfinite(x)], float)
    if scale.kind == "log":
        v = np.log(v[v > 0])
        lo, hi = v.min(), v.max()
        pad = 0.05 * max(hi - lo, 0.2)
        return float(np.exp(lo - pad)), float(np.exp(hi + pad))
    lo, hi = float(v.min()), float(v.max())
    pad = 0.04 * max(hi - lo, 1e-3)
    lo, hi = lo - pad, hi + pad
    if scale.natural and scale.measure in PROPORTION_MEASURES:
        top = 100.0 if scale.percent else 1.0
        lo, hi = max(lo, 0.0), min(hi, top)
    return lo, hi


def _set_xaxis(ax, scale, xlim, xticks):
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

    if scale.kind == "log":
        ax.set_xscale("log")
        ticks = xticks if xticks is not None else _layout.ratio_ticks(*xlim)
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: _layout.format_tick(x)))
    elif xticks is not None:
        ax.xaxis.set_major_locator(FixedLocator(xticks))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    ax.set_xlim(*xlim)
    ax.set_xlabel(scale.label)
    ax.yaxis.set_visible(False)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)


def _model_name(res, common=False):
    if common or res.method == "EE":
        return "Common-effect model"
    test = getattr(res, "test", "z")
    extra = {"knha": ", Knapp–Hartung", "adhoc": ", modified Knapp–Hartung"}.get(test, "")
    return f"Random-effects model ({res.method}{extra})"


def _het_text(res):
    parts = []
    if res.method != "EE":
        tau2 = f"τ² = {fmt.num(res.tau2, 4)}"
        if np.isfinite(_f(getattr(res, "tau2_ci_lb", None))):
            tau2 += f" {fmt.ci(res.tau2_ci_lb, res.tau2_ci_ub, 4)}"
        parts.append(tau2)
    i2 = f"I² = {fmt.pct(res.i2)}"
    lb, ub = getattr(res, "i2_ci_lb", None), getattr(res, "i2_ci_ub", None)
    if np.isfinite(_f(lb)):
        i2 += f" [{fmt.pct(lb)}, {fmt.pct(ub)}]"
    parts.append(i2)
    parts.append(f"Q = {fmt.num(res.q, 2)}, df = {fmt.num(res.q_df, 0)}, {p_eq(res.q_p)}")
    return "Heterogeneity: " + "; ".join(parts)


def _overall_text(res):
    test = getattr(res, "test", "z")
    df = getattr(res, "df", None)
    name = "z" if test == "z" or df is None or not np.isfinite(df) else f"t({fmt.num(df, 0)})"
    return f"Test for overall effect: {name} = {fmt.num(res.stat, 2)}, {p_eq(res.p)}"


def p_eq(p) -> str:
    """``p = 0.0123`` or ``p < 0.0001`` (the one p-text rule, :func:`formatting.p_text`)."""
    return fmt.p_text(p)


def _draw_table(ax, table, n_rows, *, created, width, fontsize) -> float:
    """Draw the text columns; size a figure made here (``created``) to hold them.

    Returns the height of one row in points (``n_rows``: the y-axis span, in rows).
    """
    left_in, right_in = table.draw(ax, fontsize=fontsize)
    if created:
        fig = ax.figure
        if width is None:
            fig_w = left_in + PLOT_WIDTH_IN + right_in
        else:
            from metaanalysis.plots.output import width_inches

            fig_w = max(width_inches(width), left_in + right_in + 1.0)
        fig.set_size_inches(fig_w, n_rows * ROW_HEIGHT_IN + _BOTTOM_IN + _TOP_IN)
        fig.set_layout_engine(_layout.FixedMargins(left_in, right_in, _TOP_IN, _BOTTOM_IN))
        fig.get_layout_engine().execute(fig)
    return _layout.axes_height_points(ax) / n_rows


# ---------------------------------------------------------------------------
# the figure
# ---------------------------------------------------------------------------


def forest(result, *, ax=None, sort=None, year=None, transform: bool = True,
           percent: bool = False, common=False, prediction: bool = True,
           heterogeneity: bool = True, refline="auto", xlim=None, xticks=None,
           xlabel: str | None = None, digits: int | None = None, weights: bool = True,
           study_ci: str = "auto", events=None, total=None, columns=None,
           measure: str | None = None, overall=None, width=None, title: str | None = None,
           bayes=None, shrinkage: bool | None = None, footnotes=None, **kwargs):
    """Draw a forest plot of a pooled result, a subgroup analysis or a sensitivity table.

    Parameters
    ----------
    result : PoolResult, BayesResult, subgroups result or DataFrame
        From :func:`metaanalysis.pool` / :func:`metaanalysis.pool_glmm`,
        :func:`metaanalysis.pool_bayes` (observed studies, shrinkage
        estimates, Bayesian diamond, predictive interval and the priors),
        :func:`metaanalysis.subgroups` (one block per group with a subtotal
        diamond and the test for subgroup differences), or the DataFrame of
        :func:`metaanalysis.leave_one_out` / :func:`metaanalysis.cumulative`
        (one row per refit, drawn with equal-sized markers).
    ax : matplotlib Axes, optional
        Axes to draw on; the text columns are drawn outside its left and right
        edges, so leave room for them.  When omitted a figure is created whose
        height grows with the number of rows (:func:`forest_size`).
    sort : {"weight", "effect", "year"}, sequence of int or None
        Order of the studies (default: as given).  ``"year"`` uses the
        ``year`` column of ``result.data`` or the ``year=`` array.
    transform : bool
        Show values on the natural scale of the measure (default) or on the
        analysis scale.
    percent : bool
        For proportion measures, show percentages.
    common : bool or PoolResult
        Add a common-effect diamond (refitted with ``method="EE"`` when True).
    prediction : bool
        Draw the prediction-interval bar (random-effects models only).
    heterogeneity : bool
        Write the heterogeneity and overall-effect lines.
    refline : float, "auto" or None
        Reference line; ``"auto"`` is 1 for ratios, 0 for differences and none
        for proportions and means.
    xlim, xticks : optional
        Axis limits and ticks on the displayed scale; study intervals beyond
        ``xlim`` end in an arrow.
    digits : int, optional
        Decimals in the effect column (default 2; 1 for percentages).
    weights : bool
        Show the weight column.
    study_ci : {"auto", "exact", "wilson", "model"}
        Study intervals; ``"auto"`` uses exact Clopper–Pearson intervals
        (:func:`metaanalysis.proportion_ci`) for proportions with events and
        totals, otherwise the Wald interval on the analysis scale.
    events, total : array or column name, optional
        Counts for the text column and exact intervals, when ``result.data``
        does not carry them.
    columns : dict, optional
        Extra left text columns ``{header: list of k strings}``.
    measure : str, optional
        Measure of a sensitivity DataFrame (PoolResults know theirs).
    overall : PoolResult, optional
        For sensitivity DataFrames, the full-data result drawn as a diamond.
    width : "single", "double" or mm, optional
        When the figure is created here, its total width; by default the
        plotting column is 2.3 in wide and the figure as wide as it needs.
    title : str, optional
        Axes title.
    bayes : BayesResult, optional
        With a PoolResult: a :func:`metaanalysis.pool_bayes` fit of the same
        studies, drawn as a second (green) diamond at the posterior median of
        μ spanning its credible interval, under the frequentist diamond, with
        its posterior predictive interval, the priors and the posterior of τ.
    shrinkage : bool, optional
        Draw each study's posterior (shrinkage) estimate, median and credible
        interval of θᵢ | data, as an open circle just below the observed
        estimate, with its own text column.  Default: True for a BayesResult,
        False with ``bayes=``.
    footnotes : list of str, optional
        Lines written under the plot, after the heterogeneity lines, e.g. the
        meaning of a marker added to study labels (``"† mean and SD estimated
        from the median and range (Luo 2018; Shi 2020)"``).
    **kwargs
        ``color`` of the study boxes, ``diamond_color``, ``pi_color``,
        ``bayes_color``, ``fontsize``.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import metaanalysis as ma
    >>> es = ma.effect_sizes("PLO", events=[42, 32, 37, 10], total=[140, 115, 85, 33])
    >>> ax = ma.forest(ma.pool(es, method="REML"), percent=True)
    >>> ax.get_xlabel()
    'Proportion (%)'
    >>> from scipy import stats
    >>> b = ma.pool_bayes(es, tau_prior=stats.halfnorm(scale=0.5))
    >>> ax = ma.forest(b)                                  # shrinkage + Bayesian diamond
    >>> ax = ma.forest(ma.pool(es, method="REML"), bayes=b)  # both diamonds
    >>> import matplotlib.pyplot as plt; plt.close("all")
    """
    if bayes is not None and (not _is_bayes(bayes)):
        raise InputError(f"bayes: got {type(bayes).__name__}; expected a BayesResult "
                         "from pool_bayes")
    if bayes is not None and (isinstance(result, pd.DataFrame) or _is_subgroups(result)
                              or _is_bayes(result)):
        raise InputError(f"bayes: given with a {type(result).__name__} result; expected "
                         "result to be a PoolResult of the same studies")
    if footnotes is not None and (isinstance(footnotes, str) or not all(
            isinstance(f, str) for f in footnotes)):
        raise InputError(f"footnotes: got {footnotes!r}; expected a list of strings")
    if footnotes is not None and isinstance(result, pd.DataFrame):
        raise InputError("footnotes: not supported for leave-one-out/cumulative DataFrames")
    if shrinkage is not None and not isinstance(shrinkage, (bool, np.bool_)):
        raise InputError(f"shrinkage: got {shrinkage!r}; expected True, False or None")
    if isinstance(result, pd.DataFrame):
        from metaanalysis.plots._sensitivity_forest import sensitivity_forest

        return sensitivity_forest(result, ax=ax, measure=measure, overall=overall,
                                  transform=transform, percent=percent, refline=refline,
                                  xlim=xlim, xticks=xticks, xlabel=xlabel, digits=digits,
                                  width=width, title=title, **kwargs)
    if _is_subgroups(result):
        parts = _subgroup_parts(result)
        if overall is None:
            overall = getattr(result, "overall", None)
    elif _is_bayes(result):
        if common is not False:
            raise InputError("common: a BayesResult has no common-effect fit; draw "
                             "ma.forest(ma.pool(..., method='EE'), bayes=res) instead")
        parts = [(None, result)]
        overall = result
        bayes = result
    else:
        if not hasattr(result, "yi") or not hasattr(result, "estimate"):
            raise InputError(f"result: got {type(result).__name__}; expected a PoolResult, "
                             "a BayesResult, a subgroups result or a leave-one-out/"
                             "cumulative DataFrame")
        parts = [(None, result)]
        overall = result
    if shrinkage is None:
        shrinkage = _is_bayes(result)
    if shrinkage and bayes is None:
        raise InputError("shrinkage: got True but no Bayesian fit; pass a BayesResult as "
                         "result or bayes=")
    if bayes is not None and bayes is not result and (
            bayes.k != result.k
            or not np.allclose(np.asarray(bayes.yi, float), np.asarray(result.yi, float))):
        raise InputError(f"bayes: a fit of {bayes.k} studies with other yi than result "
                         f"({result.k} studies); expected pool_bayes on the same data")
    if percent and not transform:
        raise InputError("percent: got True with transform=False; percentages are a "
                         "natural-scale display")
    first = parts[0][1]
    meas = measure or getattr(first, "measure", None)
    ni_all = [getattr(r, "ni", None) for _, r in parts]
    ni = None if any(n is None for n in ni_all) else np.concatenate(
        [np.asarray(n, float) for n in ni_all])
    scale = _layout.axis_scale(meas, transform=transform, percent=percent, ni=ni,
                               xlabel=xlabel)
    if digits is None:
        digits = 1 if scale.percent else 2
    level = float(first.level)
    color = kwargs.pop("color", COLORS["study"])
    dcolor = kwargs.pop("diamond_color", COLORS["diamond"])
    picolor = kwargs.pop("pi_color", COLORS["pi"])
    bcolor = kwargs.pop("bayes_color", COLORS["bayes"])
    fontsize = kwargs.pop("fontsize", None)
    if kwargs:
        raise InputError(f"unexpected keyword argument(s) {sorted(kwargs)}")

    # --- build the table --------------------------------------------------
    rows = Rows(scale=scale, digits=digits)
    header_y = 0.0
    extra_headers: list[str] = []
    blocks = []
    for name, res in parts:
        textcols, ev, tot = _study_text_columns(res, events if len(parts) == 1 else None,
                                                total if len(parts) == 1 else None)
        if columns and len(parts) == 1:
            textcols = textcols + [(h, list(v)) for h, v in columns.items()]
        for h, _ in textcols:
            if h not in extra_headers:
                extra_headers.append(h)
        order = _order(res, sort, year if len(parts) == 1 else None)
        est, lb, ub, exact = _study_intervals(res, scale, ev, tot, study_ci)
        blocks.append((name, res, textcols, order, est, lb, ub, exact))

    if weights and all(not np.any(np.isfinite(np.asarray(r.weights, float)))
                       for _, r in parts if getattr(r, "weights", None) is not None):
        weights = False  # e.g. GLMM: no inverse-variance weights to show
    colspec = [Column("label", "Study", "left", "left")]
    colspec += [Column(f"x{i}", h, "left", "right") for i, h in enumerate(extra_headers)]
    eff_header = f"{scale.label.split(' (')[0]} [{fmt.num(level * 100, 0)}% CI]"
    if not transform:
        eff_header = f"Estimate [{fmt.num(level * 100, 0)}% CI]"
    if shrinkage:  # the header doubles as the legend of the two markers
        eff_header = f"■ Observed [{fmt.num(level * 100, 0)}% CI]"
    colspec.append(Column("eff", eff_header, "right", "right"))
    if shrinkage:
        colspec.append(Column("shrink", f"○ Shrinkage estimate [{fmt.num(bayes.level * 100, 0)}"
                              "% CrI]", "right", "right"))
    if weights:
        colspec.append(Column("w", "Weight", "right", "right"))
    table = rows.table = TextTable(colspec)
    for c in colspec:
        table.add(c.key, header_y, c.header, bold=True,
                  color=bcolor if c.key == "shrink" else None)
    rows.y = header_y

    def pooled_rows(res, label_prefix="", subtotal=False):
        rows.next(1.15 if not subtotal else 1.0)
        rows.summary(res.estimate, res.ci_lb, res.ci_ub, "re" if res.method != "EE" else "ce",
                     label_prefix + _model_name(res), overall=not subtotal)
        if weights:
            total_w = share.get(id(res), 100.0) if subtotal else 100.0
            if not subtotal or share:
                table.add("w", rows.y, fmt.pct(total_w), bold=True)
        if common is not False and not subtotal and res.method != "EE":
            ce = common if hasattr(common, "estimate") else _refit_common(res)
            rows.next()
            rows.summary(ce.estimate, ce.ci_lb, ce.ci_ub, "ce", _model_name(ce, common=True))
        if prediction and res.method != "EE" and np.isfinite(_f(res.pi_lb)) and res.k >= 3:
            rows.interval(res.pi_lb, res.pi_ub, "Prediction interval")
        if bayes is not None and not subtotal:
            bayes_rows(rows, bayes, first=False, prediction=prediction)
        if heterogeneity:
            rows.next(0.9)
            table.add_span(rows.y, _het_text(res))
            if not subtotal:
                rows.next(0.85)
                table.add_span(rows.y, _overall_text(res))
        if bayes is not None and not subtotal:
            bayes_text(rows, bayes)

    # weight share of each subgroup in the overall analysis (sum of study weights)
    share = {}
    if len(parts) > 1 and overall is not None and getattr(overall, "weights", None) is not None:
        w_all = dict(zip((str(x) for x in overall.labels), np.asarray(overall.weights, float)))
        for _, res in parts:
            share[id(res)] = float(np.nansum([w_all.get(str(x), np.nan) for x in res.labels]))
        if not all(np.isfinite(v) and v > 0 for v in share.values()):
            share = {}
    for name, res, textcols, order, est, lb, ub, _exact in blocks:
        if name is not None:
            rows.next(1.3 if rows.y > header_y else 1.0)
            table.add("label", rows.y, str(name), bold=True)
        w = getattr(res, "weights", None)
        w = np.full(int(res.k), np.nan) if w is None else np.asarray(w, float)
        if shrinkage:
            sh = bayes.shrinkage
            s_est, s_lb, s_ub = (scale(np.asarray(sh[c], float))
                                 for c in ("median", "ci_lb", "ci_ub"))
        if share:
            w = w / np.nansum(w) * share[id(res)]
        labels = [str(s) for s in res.labels]
        for i in order:
            rows.next()
            rows.studies.append((rows.y, est[i], lb[i], ub[i], w[i]))
            rows.xvalues += [lb[i], ub[i]]
            table.add("label", rows.y, labels[i])
            for _j, (h, vals) in enumerate(textcols):
                table.add(f"x{extra_headers.index(h)}", rows.y, vals[i])
            table.add("eff", rows.y, _effect_text(est[i], lb[i], ub[i], digits))
            if shrinkage:
                rows.shrink.append((rows.y, s_est[i], s_lb[i], s_ub[i]))
                rows.xvalues += [s_lb[i], s_ub[i]]
                table.add("shrink", rows.y, _effect_text(s_est[i], s_lb[i], s_ub[i], digits),
                          color=bcolor)
            if weights:
                table.add("w", rows.y, fmt.pct(w[i]))
        if name is not None:
            pooled_rows(res, subtotal=True)
    if len(parts) > 1:
        if overall is not None:
            rows.next(0.6)
            pooled_rows(overall)
        rows.next(0.9 if overall is not None else 1.2)
        table.add_span(rows.y, "Test for subgroup differences: "
                       f"Q = {fmt.num(result.q_between, 2)}, "
                       f"df = {fmt.num(result.q_between_df, 0)}, "
                       f"{p_eq(result.q_between_p)}")
    elif _is_bayes(result):
        bayes_rows(rows, result, first=True, prediction=prediction)
        bayes_text(rows, result)
    else:
        pooled_rows(overall)
    for i, line in enumerate(footnotes or ()):
        rows.next(1.0 if i == 0 else 0.85)
        table.add_span(rows.y, line, italic=False)
    n_rows = rows.y - header_y + 1.2  # the y-axis span, in rows

    # --- axes --------------------------------------------------------------
    created = ax is None
    if created:
        _, ax = _layout.new_figure(*forest_size(n_rows))
    ref = scale.null if refline == "auto" else refline
    if ref is not None:
        rows.xvalues.append(ref)
    lim = _auto_xlim(rows.xvalues, scale, xlim)
    _set_xaxis(ax, scale, lim, xticks)
    ax.set_ylim(rows.y + 0.6, header_y - 0.6)
    row_pt = _draw_table(ax, table, n_rows, created=created, width=width, fontsize=fontsize)

    # --- draw ----------------------------------------------------------------
    y_top, y_bottom = header_y + 0.6, max([d[0] for d in rows.diamonds] + [0]) + 0.5
    if ref is not None:
        ax.plot([ref, ref], [y_top, y_bottom], color=COLORS["ref"], linewidth=0.6,
                zorder=1, gid="reference-line")
    wts = np.asarray([s[4] for s in rows.studies], float)
    wmax = float(np.nanmax(wts)) if np.any(np.isfinite(wts)) else np.nan
    side_max = _BOX_FRACTION * row_pt * (0.75 if shrinkage else 1.0)
    d_obs, d_shr = _SHRINK_OFFSET if shrinkage else (0.0, 0.0)
    xs, ys, sizes = [], [], []
    for y, e, l_, u, w in rows.studies:
        y = y + d_obs
        _ci_line(ax, y, l_, u, lim, scale.kind == "log", color)
        if lim[0] <= e <= lim[1]:
            xs.append(e)
            ys.append(y)
            # area proportional to weight; equal boxes when there are no weights
            area = side_max ** 2 * (w / wmax if np.isfinite(w) and wmax > 0 else 0.35)
            sizes.append(max(area, 2.0 ** 2))
    ax.scatter(xs, ys, s=sizes, marker="s", color=color, edgecolors="none", zorder=4,
               gid="study-boxes")
    if rows.shrink:
        sx, sy = [], []
        for y, e, l_, u in rows.shrink:
            _ci_line(ax, y + d_shr, l_, u, lim, scale.kind == "log", bcolor,
                     gid="shrinkage-ci", lw=0.6)
            if lim[0] <= e <= lim[1]:
                sx.append(e)
                sy.append(y + d_shr)
        ax.scatter(sx, sy, s=(0.34 * row_pt) ** 2, marker="o", facecolors="white",
                   edgecolors=bcolor, linewidths=0.8, zorder=5, gid="shrinkage-markers")
    for y, e, l_, u, kind in rows.diamonds:
        _diamond(ax, e, max(l_, lim[0]), min(u, lim[1]), y,
                 color={"re": dcolor, "bayes": bcolor}.get(kind, COLORS["common"]),
                 gid={"re": "pooled-diamond", "bayes": "bayes-diamond"}.get(
                     kind, "common-diamond"))
    if rows.overall is not None and lim[0] <= rows.overall[1] <= lim[1]:
        oy, oe = rows.overall
        ocolor = bcolor if _is_bayes(result) else dcolor
        ax.plot([oe, oe], [y_top, oy], color=ocolor, linewidth=0.5, linestyle=(0, (2, 2)),
                zorder=1, gid="pooled-line")
    for y, pl, pu in rows.pis:
        ax.plot([max(pl, lim[0]), min(pu, lim[1])], [y, y], color=picolor, linewidth=3.2,
                solid_capstyle="butt", zorder=3, gid="prediction-interval")
    if title:
        ax.set_title(title, loc="left")
    return ax


def _refit_common(res):
    """Common-effect (inverse-variance) fit of the same studies, via the one engine."""
    from metaanalysis.models.pooling import pool

    return pool(np.asarray(res.yi, float), np.asarray(res.vi, float), method="EE",
                level=float(res.level))
