"""PRISMA 2020 flow diagram, laid out from measured text at an exact width.

The diagram follows the PRISMA 2020 template for new systematic reviews (Page
et al. 2021, BMJ 372:n71): phase bars (Identification, Screening, Included),
the main column of boxes with an arrow down between them and an arrow to the
box of what was removed or excluded at each step, and, when the counts have
one, the column for studies identified by other methods.

Layout: the figure is exactly ``width`` wide; columns share the width left
after the phase bars and gaps; text is wrapped to its box from the renderer's
font metrics and boxes in one row share the height of the tallest; the figure
is as tall as the rows need.  If a word does not fit its box at the requested
size the text is set smaller, down to 6 pt; below that the function refuses
with the narrowest width that fits (never crops, never widens silently).
"""

from __future__ import annotations

from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

from metaanalysis.errors import InputError
from metaanalysis.plots.textfit import (
    MIN_FONT_PT,
    InchCanvas,
    Measure,
    add_patch,
    base_fontsize,
    draw_lines,
)
from metaanalysis.review.prisma import PrismaCounts, prisma_counts

__all__ = ["prisma_flow"]

COLORS = {"header": "#F7DC9C", "phase": "#BFD9EE", "edge": "#262626", "box": "#FFFFFF",
          "arrow": "#262626", "note": "#595959"}
_MARGIN = 0.03  # inches around the drawing
_BAR = 1.9  # phase-bar width in line heights
_PAD = 0.06  # inches inside a box
_GAP_H = 0.20  # between a main box and its side box (room for the arrow)
_GAP_COLS = 0.16  # between the two column pairs
_GAP_V = 0.17  # between rows (room for the arrow)


def _n(x) -> str:
    """``(n = 1 234)``, kept on one line (no-break spaces; thin space between thousands)."""
    return f"(n\u00a0=\u00a0{x:,})".replace(",", "\u2009")


def _boxes(c: PrismaCounts) -> dict:
    """Text of every box, keyed ``(row, col)``: col 0/1 databases and registers (main box,
    box of what was removed), 2/3 other methods; without a search, other methods in 0/1."""
    b = {}
    if c.searched:
        ident = ["Records identified from:"]
        ident += [f"{k} {_n(v)}" for k, v in c.databases.items()]
        ident += [f"{k} {_n(v)}" for k, v in c.registers.items()]
        b[(1, 0)] = "\n".join(ident)
        b[(1, 1)] = "\n".join(["Records removed before screening:",
                               f"Duplicate records removed {_n(c.duplicates_removed)}",
                               "Records marked as ineligible by automation tools "
                               f"{_n(c.automation_removed)}",
                               f"Records removed for other reasons {_n(c.other_removed)}"])
        b[(2, 0)] = f"Records screened {_n(c.records_screened)}"
        b[(2, 1)] = f"Records excluded {_n(c.records_excluded)}"
        b[(3, 0)] = f"Reports sought for retrieval {_n(c.reports_sought)}"
        b[(3, 1)] = f"Reports not retrieved {_n(c.reports_not_retrieved)}"
        b[(4, 0)] = f"Reports assessed for eligibility {_n(c.reports_assessed)}"
        b[(4, 1)] = _excluded(c.reports_excluded)
    o = c.other_methods
    if o is not None:
        col = 2 if c.searched else 0
        b[(1, col)] = "\n".join(["Records identified from:"]
                                + [f"{k} {_n(v)}" for k, v in o.identified.items()])
        b[(3, col)] = f"Reports sought for retrieval {_n(o.reports_sought)}"
        b[(3, col + 1)] = f"Reports not retrieved {_n(o.reports_not_retrieved)}"
        b[(4, col)] = f"Reports assessed for eligibility {_n(o.reports_assessed)}"
        b[(4, col + 1)] = _excluded(o.reports_excluded)
    b[(5, 0)] = "\n".join([f"Studies included in review {_n(c.studies_included)}",
                           f"Reports of included studies {_n(c.reports_included)}"])
    return b


def _excluded(reasons) -> str:
    return "\n".join(["Reports excluded:"] + [f"{k} {_n(v)}" for k, v in reasons.items()]
                     + ([] if reasons else [_n(0)]))


_DATABASES = "Identification of studies via databases and registers"
_OTHER = "Identification of studies via other methods"
_PHASES = (("Identification", 1, 1), ("Screening", 2, 4), ("Included", 5, 5))
_ILLUSTRATIVE = "Illustrative counts: not the result of a literature search."


def _layout(m: Measure, c: PrismaCounts, width: float, fs: float) -> dict:
    """Positions (inches) of every box, phase bar and text; raises InputError if too narrow."""
    ncols = 4 if c.other_methods is not None and c.searched else 2
    lh = m.line_height(fs)
    bar = _BAR * lh
    avail = width - 2 * _MARGIN - bar - _GAP_COLS - _GAP_H
    if ncols == 4:
        avail -= _GAP_H + 2 * _GAP_COLS
    colw = avail / ncols
    if colw - 2 * _PAD <= 0:
        raise InputError("too narrow")
    x0 = _MARGIN + bar + _GAP_COLS
    xs = [x0, x0 + colw + _GAP_H]
    if ncols == 4:
        xs += [xs[1] + colw + 2 * _GAP_COLS, xs[1] + 2 * colw + 2 * _GAP_COLS + _GAP_H]
    texts = {key: m.wrap(t, colw - 2 * _PAD, fs, indent="") for key, t in _boxes(c).items()}
    titles = {0: _DATABASES if c.searched else _OTHER, 2: _OTHER}
    headers = {}
    for col in range(0, ncols, 2):
        hw = 2 * colw + _GAP_H - 2 * _PAD
        headers[col] = m.wrap(titles[col], hw, fs, weight="bold")
    y = _MARGIN
    out = {"boxes": {}, "headers": {}, "phases": {}, "font": fs, "cols": xs, "colw": colw}
    hh = m.block_height(max(len(v) for v in headers.values()), fs) + 2 * _PAD
    for col, lines in headers.items():
        out["headers"][col] = (xs[col], y, 2 * colw + _GAP_H, hh, lines)
    y += hh + _GAP_V
    rows = {}
    for r in sorted({k[0] for k in texts}):
        keys = [k for k in texts if k[0] == r]
        h = m.block_height(max(len(texts[k]) for k in keys), fs) + 2 * _PAD
        for name, lo, hi in _PHASES:  # a one-row phase must hold its rotated label
            if lo == hi == r:
                h = max(h, m.width(name, fs, "bold") + 2 * _PAD)
        rows[r] = (y, h)
        for k in keys:
            out["boxes"][k] = (xs[k[1]], y, colw, h, texts[k])
        y += h + _GAP_V
    for name, lo, hi in _PHASES:
        lo, hi = min(r for r in rows if r >= lo), max(r for r in rows if r <= hi)
        top, bottom = rows[lo][0], rows[hi][0] + rows[hi][1]
        out["phases"][name] = (_MARGIN, top, bar, bottom - top)
    y -= _GAP_V
    if c.illustrative:
        lines = m.wrap(_ILLUSTRATIVE, width - 2 * _MARGIN, fs, style="italic")
        y += 0.6 * lh
        out["note"] = (_MARGIN, y, lines)
        y += m.block_height(len(lines), fs)
    out["height"] = y + _MARGIN
    out["rows"] = rows
    return out


def _fit(m: Measure, c: PrismaCounts, width: float, fs: float) -> dict:
    size = fs
    while True:
        try:
            return _layout(m, c, width, size)
        except InputError:
            if size - 0.5 < MIN_FONT_PT - 1e-9:
                break
            size -= 0.5
    need = width
    while need < 1000 / 25.4:
        need += 2 / 25.4
        try:
            _layout(m, c, need, MIN_FONT_PT)
            break
        except InputError:
            continue
    raise InputError(f"width: {width * 25.4:.0f} mm is too narrow for this PRISMA diagram "
                     f"at {MIN_FONT_PT:g} pt; it needs at least {need * 25.4:.0f} mm")


def _arrow(ax, start, end, gid):
    a = FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=6, lw=0.6,
                        color=COLORS["arrow"], shrinkA=0, shrinkB=0, gid=gid)
    add_patch(ax, a)
    return a


def prisma_flow(counts, ax=None, *, width="double", fontsize=None, studies=None):
    """Draw the PRISMA 2020 flow diagram.

    Parameters
    ----------
    counts : PrismaCounts or mapping
        Checked counts (:func:`metaanalysis.review.prisma.prisma_counts`), or
        the mapping of the plan's ``prisma:`` block (checked here).
    ax : matplotlib Axes, optional
        Draw here (its width is the layout width, drawn at equal aspect);
        default: a new figure of ``width`` and the height the diagram needs.
    width : {"single", "onehalf", "double"} or float
        Figure width (89, 120, 183 mm, or millimetres) when ``ax`` is None.
    fontsize : float, optional
        Text size in points (default: ``font.size``; at least 6).
    studies : sized, optional
        The included studies, to cross-check "studies included".

    Returns
    -------
    matplotlib Axes

    Raises
    ------
    PlanError
        The counts do not add up (the problem names the count).
    InputError
        The width cannot hold the diagram at 6 pt (the message gives the
        width it needs).

    Examples
    --------
    >>> import metaanalysis as ma
    >>> counts = {"databases": {"PubMed": 120, "Embase": 95}, "duplicates_removed": 60,
    ...           "records_screened": 155, "records_excluded": 130, "reports_sought": 25,
    ...           "reports_not_retrieved": 1, "reports_assessed": 24,
    ...           "reports_excluded": {"No ablation": 10, "Review": 6},
    ...           "studies_included": 7, "reports_included": 8}
    >>> ax = ma.prisma_flow(counts, width="double")
    >>> round(ax.figure.get_size_inches()[0] * 25.4)
    183
    """
    c = counts if isinstance(counts, PrismaCounts) else prisma_counts(counts, file="counts",
                                                                       studies=studies)
    if studies is not None and isinstance(counts, PrismaCounts):
        c = prisma_counts(counts, file="counts", studies=studies)
    fs = base_fontsize(fontsize)
    canvas = InchCanvas.open(ax, width)
    w = canvas.width
    fig = canvas.ax.figure
    m = Measure(fig)
    lay = _fit(m, c, w, fs)
    if ax is None:
        fig.set_size_inches(w, lay["height"])
        canvas = InchCanvas(canvas.ax, w, lay["height"])
    else:
        canvas = InchCanvas.on(ax, lay["height"])
    ax = canvas.ax
    fs = lay["font"]
    pad = _PAD
    for col, (x, y, bw, bh, lines) in lay["headers"].items():
        add_patch(ax, FancyBboxPatch((x, y), bw, bh, boxstyle="round,pad=0,rounding_size=0.04",
                                    fc=COLORS["header"], ec=COLORS["edge"], lw=0.6,
                                    gid=f"prisma-box-header{col}"))
        draw_lines(ax, m, x + bw / 2, y + pad, lines, fs, ha="center", fontweight="bold",
                   gid=f"prisma-text-header{col}")
    for name, (x, y, bw, bh) in lay["phases"].items():
        add_patch(ax, FancyBboxPatch((x, y), bw, bh, boxstyle="round,pad=0,rounding_size=0.04",
                                    fc=COLORS["phase"], ec="none", gid=f"prisma-box-{name}"))
        ax.text(x + bw / 2, y + bh / 2, name, rotation=90, fontsize=fs, fontweight="bold",
                ha="center", va="center", rotation_mode="anchor", gid=f"prisma-text-{name}")
    for (r, col), (x, y, bw, bh, lines) in lay["boxes"].items():
        add_patch(ax, Rectangle((x, y), bw, bh, fc=COLORS["box"], ec=COLORS["edge"], lw=0.6,
                               gid=f"prisma-box-{r}-{col}"))
        draw_lines(ax, m, x + pad, y + pad, lines, fs, gid=f"prisma-text-{r}-{col}")
    boxes = lay["boxes"]

    def bottom(k):
        x, y, bw, bh, _ = boxes[k]
        return (x + bw / 2, y + bh)

    def top(k):
        x, y, bw, _, _ = boxes[k]
        return (x + bw / 2, y)

    for main in (0, 2):
        if (1, main) not in boxes:
            continue
        chain = [r for r in range(1, 6) if (r, main) in boxes]
        if main == 0:
            for a, b in zip(chain, chain[1:]):
                _arrow(ax, bottom((a, main)), top((b, main)), f"prisma-arrow-{a}-{main}")
        else:
            for a, b in zip(chain, chain[1:]):
                _arrow(ax, bottom((a, main)), top((b, main)), f"prisma-arrow-{a}-{main}")
            # other methods -> studies included: down to the included row, then left
            x, y, bw, bh, _ = boxes[(4, main)]
            tx, ty, tw, th, _ = boxes[(5, 0)]
            mid = ty + th / 2
            ax.plot([x + bw / 2, x + bw / 2], [y + bh, mid], color=COLORS["arrow"], lw=0.6,
                    gid="prisma-arrow-other-down", solid_capstyle="butt")
            _arrow(ax, (x + bw / 2, mid), (tx + tw, mid), "prisma-arrow-other-included")
        for r in range(1, 6):
            if (r, main) in boxes and (r, main + 1) in boxes:
                x, y, bw, bh, _ = boxes[(r, main)]
                sx = boxes[(r, main + 1)][0]
                _arrow(ax, (x + bw, y + bh / 2), (sx, y + bh / 2), f"prisma-arrow-{r}-{main}-side")
    if "note" in lay:
        x, y, lines = lay["note"]
        draw_lines(ax, m, x, y, lines, fs, gid="prisma-text-note", fontstyle="italic",
                   color=COLORS["note"])
    return ax
