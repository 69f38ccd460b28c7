"""Forest-like display of leave-one-out and cumulative analyses (private; use ``forest``)."""

from __future__ import annotations

import numpy as np

from metaanalysis import formatting as fmt
from metaanalysis.errors import InputError
from metaanalysis.plots import _layout
from metaanalysis.plots._forest_rows import _effect_text
from metaanalysis.plots._layout import Column, TextTable


def sensitivity_forest(df, *, ax=None, measure=None, overall=None, transform=True,
                       percent=False, refline="auto", xlim=None, xticks=None, xlabel=None,
                       digits=None, width=None, title=None, **kwargs):
    """Draw a leave-one-out or cumulative DataFrame: one refit per row (see ``forest``)."""
    from metaanalysis.plots import forest as fo

    missing = [c for c in ("estimate", "ci_lb", "ci_ub") if c not in df.columns]
    if missing:
        raise InputError(f"result: DataFrame lacks column(s) {missing}; expected the output "
                         "of leave_one_out() or cumulative()")
    if len(df) == 0:
        raise InputError("result: got an empty DataFrame; expected at least one row")
    if measure is None:
        measure = df.attrs.get("measure") or getattr(overall, "measure", None)
    ni = getattr(overall, "ni", None)
    scale = _layout.axis_scale(measure, transform=transform, percent=percent, ni=ni,
                               xlabel=xlabel)
    if digits is None:
        digits = 1 if scale.percent else 2
    color = kwargs.pop("color", fo.COLORS["study"])
    dcolor = kwargs.pop("diamond_color", fo.COLORS["diamond"])
    fontsize = kwargs.pop("fontsize", None)
    if kwargs:
        raise InputError(f"unexpected keyword argument(s) {sorted(kwargs)}")
    analysis = str(df.attrs.get("analysis", ""))
    cumulative = analysis.lower().startswith("cumulative")
    level = float(df.attrs.get("level", getattr(overall, "level", 0.95)))

    est = scale(df["estimate"].to_numpy(float))
    lb = scale(df["ci_lb"].to_numpy(float))
    ub = scale(df["ci_ub"].to_numpy(float))
    labels = [str(s) for s in df.index]
    cols = [Column("label", "Adding" if cumulative else "Omitting", "left", "left")]
    if "k" in df.columns:
        cols.append(Column("k", "k", "left", "right"))
    cols.append(Column("eff", f"{scale.label.split(' (')[0]} [{fmt.num(level * 100, 0)}% CI]",
                       "right", "right"))
    has_i2 = "i2" in df.columns
    if has_i2:
        cols.append(Column("i2", "I²", "right", "right"))
    table = TextTable(cols)
    for c in cols:
        table.add(c.key, 0.0, c.header, bold=True)
    ys = np.arange(1, len(df) + 1, dtype=float)
    for i, y in enumerate(ys):
        table.add("label", y, ("+ " if cumulative else "− ") + labels[i])
        if "k" in df.columns:
            table.add("k", y, fmt.num(df["k"].iloc[i], 0))
        table.add("eff", y, _effect_text(est[i], lb[i], ub[i], digits))
        if has_i2:
            table.add("i2", y, fmt.pct(df["i2"].iloc[i]))
    xvalues = list(lb) + list(ub)
    last = ys[-1]
    diamond = None
    if overall is not None:
        last += 1.15
        e, l_, u = scale([overall.estimate, overall.ci_lb, overall.ci_ub])
        diamond = (last, e, l_, u)
        xvalues += [l_, u]
        table.add("label", last, "All studies", bold=True)
        table.add("eff", last, _effect_text(e, l_, u, digits), bold=True)
        if has_i2:
            table.add("i2", last, fmt.pct(overall.i2), bold=True)
    desc = df.attrs.get("description")
    if desc:
        last += 0.9
        table.add_span(last, str(desc))
    n_rows = last + 1.2  # the y-axis span, in rows

    created = ax is None
    if created:
        _, ax = _layout.new_figure(*fo.forest_size(n_rows))
    ref = scale.null if refline == "auto" else refline
    if ref is not None:
        xvalues.append(ref)
    lim = fo._auto_xlim(xvalues, scale, xlim)
    fo._set_xaxis(ax, scale, lim, xticks)
    ax.set_ylim(last + 0.6, -0.6)
    row_pt = fo._draw_table(ax, table, n_rows, created=created, width=width, fontsize=fontsize)
    y_end = diamond[0] + 0.5 if diamond else ys[-1] + 0.5
    if ref is not None:
        ax.plot([ref, ref], [0.6, y_end], color=fo.COLORS["ref"], linewidth=0.6, zorder=1,
                gid="reference-line")
    for y, l_, u in zip(ys, lb, ub):
        fo._ci_line(ax, y, l_, u, lim, scale.kind == "log", color)
    inside = (est >= lim[0]) & (est <= lim[1])
    ax.scatter(est[inside], ys[inside], s=(0.32 * row_pt) ** 2, marker="o", color=color,
               edgecolors="none", zorder=4, gid="study-boxes")
    if diamond is not None:
        y, e, l_, u = diamond
        fo._diamond(ax, e, max(l_, lim[0]), min(u, lim[1]), y, color=dcolor,
                    gid="pooled-diamond")
        if lim[0] <= e <= lim[1]:
            ax.plot([e, e], [0.6, y], color=dcolor, linewidth=0.5, linestyle=(0, (2, 2)),
                    zorder=1, gid="pooled-line")
    if title:
        ax.set_title(title, loc="left")
    return ax
