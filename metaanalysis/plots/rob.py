"""Risk-of-bias figures as robvis draws them: traffic-light plot and (weighted) summary bars.

Both take the wide table of :func:`metaanalysis.rob_table` (or any robvis-style
table: ``Study``, one column per domain, optional ``Overall`` and ``Weight``)
and the tool, and follow robvis (McGuinness & Higgins 2021, Res Synth Methods
12:55-61): the traffic light has one row per study and one circle per domain,
coloured by judgement *and* marked with a symbol (+ low, − some concerns,
× high, ! critical, ? no information) so it reads in grey scale; the summary
shows, per domain, the share of studies — or of the weight — at each level.

Layout is computed from measured text at an exact width: columns of circles
share what the study labels leave, the domain key and judgement legend are
wrapped below, and nothing is smaller than 6 pt; when the width cannot hold
the plot, an :class:`~metaanalysis.errors.InputError` says which width would.
"""

from __future__ import annotations

import numpy as np
from matplotlib.patches import Circle, Rectangle

from metaanalysis.errors import InputError
from metaanalysis.plots.textfit import (
    MIN_FONT_PT,
    InchCanvas,
    Measure,
    add_patch,
    base_fontsize,
    draw_lines,
)
from metaanalysis.review.rob import domain_columns, get_tool, rob_levels

__all__ = ["OVERALL_NAMES", "PALETTES", "SYMBOLS", "rob_summary", "rob_traffic_light"]

#: robvis colour schemes ("cochrane" is robvis's default)
PALETTES = {
    "cochrane": {"low": "#02C100", "some concerns": "#E2DF07", "high": "#BF0000",
                 "critical": "#820000", "no information": "#4EA1F7",
                 "not applicable": "#E6E6E6"},
    "colourblind": {"low": "#FED98E", "some concerns": "#FE9929", "high": "#D95F0E",
                    "critical": "#993404", "no information": "#FFFFD4",
                    "not applicable": "#E6E6E6"},
}
SYMBOLS = {"low": "+", "some concerns": "\u2212", "high": "\u00d7", "critical": "!",
           "no information": "?", "not applicable": ""}
_ORDER = ("low", "some concerns", "high", "critical", "no information", "not applicable")
_MARGIN = 0.03
_GAP = 0.08


def _palette(colors):
    if isinstance(colors, str):
        if colors not in PALETTES:
            raise InputError(f"colors: got {colors!r}; expected one of {', '.join(PALETTES)} "
                             "or a mapping level -> colour")
        return PALETTES[colors]
    return {**PALETTES["cochrane"], **dict(colors)}


def _level_name(tool, level: str) -> str:
    return tool.level_names.get(level, level.capitalize())


def _legend_items(tool, levels) -> list[str]:
    return [lv for lv in _ORDER if lv in levels]


def _flow(m: Measure, items, width: float, fs: float, key_w: float):
    """Place legend items ``(level, text)`` left to right, wrapping; returns rows of
    ``(x, level, text)``."""
    rows, row, x = [], [], 0.0
    for level, text in items:
        w = key_w + m.width(text, fs)
        if row and x + w > width:
            rows.append(row)
            row, x = [], 0.0
        if w > width:
            raise InputError("legend text wider than the figure")
        row.append((x, level, text))
        x += w + 2 * _GAP
    if row:
        rows.append(row)
    return rows


#: names of the overall levels for tools whose domain judgements are scores or answers
OVERALL_NAMES = {"low": "Low risk", "some concerns": "Some concerns", "high": "High risk",
                 "critical": "Critical risk", "no information": "No information"}


def _legend_groups(t, domain_levels, overall_levels) -> list:
    """``[(title, [(level, text), ...]), ...]``: one group when the tool judges domains in
    risk words (RoB 2, ROBINS-I), else domain answers and overall risk separately."""
    if t.name in ("rob2", "robins_i"):
        levels = set(domain_levels) | set(overall_levels)
        return [("Judgement:", [(lv, _level_name(t, lv)) for lv in _legend_items(t, levels)])]
    return [("Judgement:", [(lv, _level_name(t, lv)) for lv in _legend_items(t, domain_levels)]),
            ("Overall:", [(lv, OVERALL_NAMES[lv]) for lv in _legend_items(t, overall_levels)])]


def _traffic_layout(m, tool, studies, codes, width, fs, cell_max):
    lh = m.line_height(fs)
    label_w = max(m.width(s, fs) for s in studies) + _GAP
    overall_w = max(m.width("Overall", fs, "bold") + _GAP, 0.0)
    ncell = len(codes) - 1
    cell = min(cell_max, (width - 2 * _MARGIN - label_w - overall_w) / max(ncell, 1))
    code_w = max(m.width(c, fs, "bold") for c in codes[:-1]) + 0.03
    if cell < max(code_w, 0.16):
        raise InputError("too narrow")
    overall_w = max(overall_w, cell)
    radius = 0.42 * cell
    sym_fs = max(MIN_FONT_PT, min(fs + 1.5, 2 * radius * 72 * 0.75))
    if m.size("\u00d7", sym_fs)[1] > 1.8 * radius:
        raise InputError("too narrow")
    return {"label_w": label_w, "cell": cell, "overall_w": overall_w, "radius": radius,
            "sym_fs": sym_fs, "lh": lh}


def rob_traffic_light(table, tool=None, *, ax=None, width="double", colors="cochrane",
                      fontsize=None, title: str | None = None):
    """Traffic-light plot of risk-of-bias judgements: studies × domains, plus overall.

    Parameters
    ----------
    table : DataFrame
        Wide table (:func:`metaanalysis.rob_table`): ``Study``, domain columns,
        optional ``Overall`` (computed by the tool's rule when absent).
    tool : str, optional
        ``minors``, ``jbi_case_series``, ``robins_i``, ``nos`` or ``rob2``;
        default ``table.attrs["tool"]``.
    ax : matplotlib Axes, optional
        Draw here (its width is the layout width); default a new figure.
    width : {"single", "onehalf", "double"} or float
        Figure width when ``ax`` is None (89, 120, 183 mm or millimetres).
    colors : {"cochrane", "colourblind"} or mapping
        robvis colour scheme, or ``{level: colour}``.
    fontsize : float, optional
        Text size in points (default ``font.size``; at least 6).
    title : str, optional
        Heading over the domain columns (default "Risk-of-bias domains (TOOL)").

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import pandas as pd
    >>> import metaanalysis as ma
    >>> t = pd.DataFrame({"Study": ["Alpha 2019", "Beta 2021"],
    ...                   "randomisation": ["Low", "High"], "deviations": ["Low", "Low"],
    ...                   "missing_data": ["Some concerns", "Low"],
    ...                   "measurement": ["Low", "Low"], "reporting": ["Low", "Low"]})
    >>> ax = ma.rob_traffic_light(t, "rob2", width="single")
    >>> round(ax.figure.get_size_inches()[0] * 25.4)
    89
    """
    t = get_tool(tool if tool is not None else table.attrs.get("tool"))
    lv = rob_levels(table, t)
    cols = list(domain_columns(table, t))
    keys = [domain_columns(table, t)[c] for c in cols]
    index = {d.key: i for i, d in enumerate(t.domains, 1)}
    codes = [f"D{index[k]}" for k in keys] + ["Overall"]
    studies = list(lv["Study"])
    pal = _palette(colors)
    fs = base_fontsize(fontsize)
    canvas = InchCanvas.open(ax, width)
    w = canvas.width
    m = Measure(canvas.ax.figure)
    size = fs
    while True:
        try:
            lay = _traffic_layout(m, t, studies, codes, w, size, 0.30)
            break
        except InputError:
            if size - 0.5 < MIN_FONT_PT - 1e-9:
                raise InputError(f"width: {w * 25.4:.0f} mm cannot hold {len(codes) - 1} domain "
                                 f"columns and the study labels at {MIN_FONT_PT:g} pt") from None
            size -= 0.5
    fs = size
    cell, lh = lay["cell"], lay["lh"]
    x_cells = _MARGIN + lay["label_w"]
    grid_w = cell * (len(codes) - 1) + lay["overall_w"]
    title = title or f"Risk-of-bias domains ({t.label})"
    title_lines = m.wrap(title, grid_w, fs, "bold")
    y = _MARGIN
    y_title = y
    y += m.block_height(len(title_lines), fs) + 0.04
    y_head = y
    y += lh + 0.03
    y_rows = y
    y += cell * len(studies)
    grid_bottom = y
    # legend (domains, then judgements): right of the grid when there is room, else below
    block_w = lay["label_w"] + grid_w
    beside = w - 2 * _MARGIN - block_w - 0.25
    if beside >= 2.2:
        legend_x, legend_w, y = _MARGIN + block_w + 0.25, beside, y_head
    else:
        legend_x, legend_w, y = _MARGIN, w - 2 * _MARGIN, y + 0.08
    dom_lines = []
    for code, key in zip(codes, keys):
        text = next(d.text for d in t.domains if d.key == key)
        dom_lines += m.wrap(f"{code}: {text}", legend_w, fs, indent="    ")
    groups = _legend_groups(t, set(lv[cols].to_numpy().ravel()), set(lv["Overall"]))
    key_r = min(lay["radius"], 0.09)
    key_w = 2 * key_r + 0.05
    lab_w = max(m.width(f"{title}  ", fs, "bold") for title, _ in groups)
    flows = [(title, _flow(m, items, legend_w - lab_w, fs, key_w)) for title, items in groups]
    y_dom = y
    y += m.block_height(len(dom_lines) + 1, fs)
    y += 0.06
    y_key = y
    key_row_h = max(2 * key_r, lh) + 0.03
    y += key_row_h * sum(len(f) for _, f in flows)
    height = max(y, grid_bottom) + _MARGIN
    if ax is None:
        canvas.ax.figure.set_size_inches(w, height)
        canvas = InchCanvas(canvas.ax, w, height)
    else:
        canvas = InchCanvas.on(ax, height)
    ax = canvas.ax
    draw_lines(ax, m, x_cells + grid_w / 2, y_title, title_lines, fs, ha="center",
               fontweight="bold", gid="rob-title")
    centers = [x_cells + cell * (i + 0.5) for i in range(len(codes) - 1)]
    centers.append(x_cells + cell * (len(codes) - 1) + lay["overall_w"] / 2)
    for x, code in zip(centers, codes):
        ax.text(x, y_head, code, ha="center", va="top", fontsize=fs, fontweight="bold",
                gid="rob-header")
    add_patch(ax, Rectangle((x_cells, y_rows), grid_w, cell * len(studies), fc="#F4F4F4",
                           ec="none", gid="rob-panel", zorder=0))
    ax.plot([centers[-1] - lay["overall_w"] / 2] * 2, [y_rows, y_rows + cell * len(studies)],
            color="#BFBFBF", lw=0.5, gid="rob-overall-rule")
    for i, study in enumerate(studies):
        yc = y_rows + cell * (i + 0.5)
        ax.text(_MARGIN, yc, study, ha="left", va="center", fontsize=fs, gid="rob-study")
        for x, col in zip(centers, cols + ["Overall"]):
            level = lv[col].iloc[i]
            _marker(ax, x, yc, lay["radius"], level, pal, lay["sym_fs"], f"rob-cell-{col}")
    draw_lines(ax, m, legend_x, y_dom, ["Domains:"] + dom_lines, fs, gid="rob-domains")
    key_fs = max(MIN_FONT_PT, min(lay["sym_fs"], 2 * key_r * 72 * 0.75))
    r = 0
    for title, flow in flows:
        for i, row in enumerate(flow):
            yc = y_key + key_row_h * (r + 0.5)
            r += 1
            if i == 0:
                ax.text(legend_x, yc, title, ha="left", va="center", fontsize=fs,
                        fontweight="bold", gid="rob-key-title")
            for x, level, text in row:
                x0 = legend_x + lab_w + x
                _marker(ax, x0 + key_r, yc, key_r, level, pal, key_fs, "rob-key")
                ax.text(x0 + key_w, yc, text, ha="left", va="center", fontsize=fs,
                        gid="rob-key")
    return ax


def _marker(ax, x, y, r, level, pal, sym_fs, gid):
    add_patch(ax, Circle((x, y), r, fc=pal[level], ec="#404040" if level != "not applicable"
                        else "none", lw=0.4, gid=f"{gid}-circle"))
    sym = SYMBOLS[level]
    if sym:
        ax.text(x, y, sym, ha="center", va="center_baseline", fontsize=sym_fs,
                fontweight="bold", color="white" if level == "critical" else "black",
                gid=f"{gid}-symbol")


def _shares(lv, cols, weights):
    out = {}
    for col in cols:
        vals = lv[col].to_numpy()
        use = vals != "not applicable"
        w = weights[use]
        total = w.sum()
        out[col] = {k: float(w[vals[use] == k].sum() / total) if total > 0 else 0.0
                    for k in _ORDER[:-1]}
    return out


def rob_summary(table, tool=None, *, weighted: bool | None = None, overall: bool = True,
                ax=None, width="double", colors="cochrane", fontsize=None):
    """Summary bar plot: per domain, the share of studies (or weight) at each judgement.

    Parameters
    ----------
    table : DataFrame
        Wide table (:func:`metaanalysis.rob_table`).
    tool : str, optional
        The tool (default ``table.attrs["tool"]``).
    weighted : bool, optional
        Weight each study by the ``Weight`` column (robvis ``weighted = TRUE``);
        default: when the table has one.
    overall : bool
        Add a bar for the overall judgement.
    ax, width, colors, fontsize
        As :func:`rob_traffic_light`.

    Returns
    -------
    matplotlib Axes

    Notes
    -----
    Studies for which a domain does not apply (MINORS items for comparative
    studies) are left out of that domain's bar.

    Examples
    --------
    >>> import pandas as pd
    >>> import metaanalysis as ma
    >>> t = pd.DataFrame({"Study": ["Alpha 2019", "Beta 2021"],
    ...                   "randomisation": ["Low", "High"], "deviations": ["Low", "Low"],
    ...                   "missing_data": ["Some concerns", "Low"],
    ...                   "measurement": ["Low", "Low"], "reporting": ["Low", "Low"],
    ...                   "Weight": [30, 90]})
    >>> ax = ma.rob_summary(t, "rob2", width="double")
    >>> round(ax.figure.get_size_inches()[0] * 25.4)
    183
    """
    t = get_tool(tool if tool is not None else table.attrs.get("tool"))
    lv = rob_levels(table, t)
    cmap = domain_columns(table, t)
    cols = list(cmap)
    if weighted is None:
        weighted = "Weight" in table.columns
    if weighted:
        if "Weight" not in table.columns:
            raise InputError("weighted: True needs a 'Weight' column in the table")
        weights = np.nan_to_num(table["Weight"].to_numpy(float))
        if (weights < 0).any() or weights.sum() <= 0:
            raise InputError("Weight: expected non-negative weights with a positive sum")
    else:
        weights = np.ones(len(lv))
    index = {d.key: i for i, d in enumerate(t.domains, 1)}
    names = [f"D{index[cmap[c]]}: " + next(d.text for d in t.domains if d.key == cmap[c])
             for c in cols]
    if overall:
        cols = cols + ["Overall"]
        names.append("Overall risk of bias")
    shares = _shares(lv, cols, weights)
    pal = _palette(colors)
    fs = base_fontsize(fontsize)
    canvas = InchCanvas.open(ax, width)
    w = canvas.width
    m = Measure(canvas.ax.figure)
    label_max = 0.45 * (w - 2 * _MARGIN)
    while True:
        try:
            labels = [m.wrap(n, label_max, fs, indent="   ") for n in names]
            break
        except InputError:
            if fs - 0.5 < MIN_FONT_PT - 1e-9:
                raise InputError(f"width: {w * 25.4:.0f} mm is too narrow for the domain labels "
                                 f"at {MIN_FONT_PT:g} pt") from None
            fs -= 0.5
    lh = m.line_height(fs)
    label_w = max(m.width(line, fs) for lines in labels for line in lines) + _GAP
    bar_x = _MARGIN + label_w
    tick_half = m.width("100%", fs) / 2
    bar_w = w - bar_x - _MARGIN - tick_half
    if bar_w < 0.8:
        raise InputError(f"width: {w * 25.4:.0f} mm leaves {bar_w * 25.4:.0f} mm for the bars; "
                         "use a wider figure")
    bar_h = max(0.16, 1.6 * lh)
    pitches = [max(bar_h, m.block_height(len(lines), fs)) + 0.06 for lines in labels]
    levels = {k for c in cols for k, v in shares[c].items() if v > 0}
    if t.name in ("rob2", "robins_i"):
        items = [(lv, _level_name(t, lv)) for lv in _legend_items(t, levels)]
    else:  # domain answers and overall risk share the colours: name both
        items = [(lv, f"{_level_name(t, lv)} / {OVERALL_NAMES[lv].lower()}"
                  if lv in OVERALL_NAMES else _level_name(t, lv))
                 for lv in _legend_items(t, levels)]
    sw = 0.11
    flow = _flow(m, items, w - 2 * _MARGIN, fs, sw + 0.05)
    y = _MARGIN
    rows_y = []
    for p in pitches:
        rows_y.append(y + p / 2)
        y += p
    y_axis = y + 0.02
    y_ticks = y_axis + 0.05
    y = y_ticks + lh + 0.02
    xlabel = "Share of the weight (%)" if weighted else "Share of studies (%)"
    y_xlabel = y
    y += lh + 0.08
    y_key = y
    key_h = max(sw, lh) + 0.03
    y += key_h * len(flow)
    height = y + _MARGIN
    if ax is None:
        canvas.ax.figure.set_size_inches(w, height)
        canvas = InchCanvas(canvas.ax, w, height)
    else:
        canvas = InchCanvas.on(ax, height)
    ax = canvas.ax
    for yc, lines, col in zip(rows_y, labels, cols):
        draw_lines(ax, m, _MARGIN, yc - m.block_height(len(lines), fs) / 2, lines, fs,
                   fontweight="bold" if col == "Overall" else "normal",
                   gid="rob-summary-label")
        x = bar_x
        for level in _ORDER[:-1]:
            share = shares[col][level]
            if share <= 0:
                continue
            add_patch(ax, Rectangle((x, yc - bar_h / 2), share * bar_w, bar_h, fc=pal[level],
                                   ec="#404040", lw=0.4, gid=f"rob-summary-bar-{level}"))
            x += share * bar_w
    ax.plot([bar_x, bar_x + bar_w], [y_axis, y_axis], color="#262626", lw=0.6,
            gid="rob-summary-axis")
    for frac in (0, 0.25, 0.5, 0.75, 1.0):
        x = bar_x + frac * bar_w
        ax.plot([x, x], [y_axis, y_axis + 0.04], color="#262626", lw=0.6, gid="rob-summary-tick")
        ax.text(x, y_ticks, f"{100 * frac:g}%", ha="center", va="top", fontsize=fs,
                gid="rob-summary-ticklabel")
    ax.text(bar_x + bar_w / 2, y_xlabel, xlabel, ha="center", va="top", fontsize=fs,
            gid="rob-summary-xlabel")
    for r, row in enumerate(flow):
        yc = y_key + key_h * (r + 0.5)
        for x, level, text in row:
            add_patch(ax, Rectangle((_MARGIN + x, yc - sw / 2), sw, sw, fc=pal[level],
                                   ec="#404040", lw=0.4, gid="rob-summary-key"))
            ax.text(_MARGIN + x + sw + 0.05, yc, text, ha="left", va="center", fontsize=fs,
                    gid="rob-summary-key")
    return ax
