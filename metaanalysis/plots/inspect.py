"""Check a drawn figure as a journal's figure editor would: nothing cut, nothing
overlapping, nothing too small to read.

:func:`layout_problems` draws the figure and measures every visible text
artist (tick labels, axis labels, titles, legend entries, annotations, table
cells): each must lie inside the figure, no two may overlap, and none may be
smaller than 6 pt at the figure's size.  The tests run it on every plot kind
at 89 and 183 mm; users can run it on their own figures.
"""

from __future__ import annotations

from matplotlib.text import Text

from metaanalysis.plots.layout import MIN_FONT_PT, get_renderer

__all__ = ["layout_problems", "visible_texts"]


def _axis_texts(ax):
    out = []
    for axis in (ax.xaxis, ax.yaxis):
        if not axis.get_visible():
            continue
        lo, hi = sorted(axis.get_view_interval())
        for tick in axis.get_major_ticks() + axis.get_minor_ticks():
            loc = tick.get_loc()
            if loc is None or not (lo - 1e-9 * abs(hi - lo) <= loc <= hi + 1e-9 * abs(hi - lo)):
                continue
            out += [t for t in (tick.label1, tick.label2) if t.get_visible()]
    return out


def visible_texts(fig) -> list[Text]:
    """Every visible, non-empty text artist of ``fig`` that is drawn."""
    tick_labels = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                tick_labels.update((id(tick.label1), id(tick.label2)))
    drawn = [ax for ax in fig.axes if ax.get_visible()]
    texts = [t for ax in drawn for t in _axis_texts(ax)]
    for t in fig.findobj(Text):
        if id(t) in tick_labels:
            continue
        if t.axes is not None and not t.axes.get_visible():
            continue
        texts.append(t)
    out, seen = [], set()
    for t in texts:
        if id(t) in seen or not t.get_visible() or not t.get_text().strip():
            continue
        if not _ancestors_visible(t):
            continue
        seen.add(id(t))
        out.append(t)
    return out


def _ancestors_visible(t) -> bool:
    leg = [a.get_legend() for a in t.figure.axes if a.get_legend() is not None]
    leg += list(t.figure.legends)
    for lg in leg:
        if t in lg.get_texts() or t is lg.get_title():
            return lg.get_visible()
    return True


def layout_problems(fig, *, min_size: float = MIN_FONT_PT, title: str | None = None,
                    tolerance_px: float = 0.5) -> list[str]:
    """Problems of the figure as drawn: text outside it, overlapping or too small.

    Parameters
    ----------
    fig : matplotlib Figure
    min_size : float
        Smallest allowed text size in points at the figure's size.
    title : str, optional
        A title that must show (compared with line breaks as spaces).
    tolerance_px : float
        Overlaps and overhangs smaller than this (pixels at the figure's dpi)
        are ignored.

    Returns
    -------
    list of str
        One line per problem; empty when the figure is clean.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> res = ma.pool([0.1, 0.3, 0.2], [0.01, 0.02, 0.02], labels=["A", "B", "C"])
    >>> ax = ma.forest(res, width="single", title="An outcome")
    >>> ma.layout_problems(ax.figure, title="An outcome")
    []
    >>> import matplotlib.pyplot as plt; plt.close("all")
    """
    fig.draw_without_rendering()  # positions and layout as drawn, no pixels
    renderer = get_renderer(fig)
    W, H = fig.bbox.width, fig.bbox.height
    texts = visible_texts(fig)
    boxes = []
    problems = []
    tol = tolerance_px
    for t in texts:
        bb = t.get_window_extent(renderer)
        label = repr(t.get_text()[:40])
        if t.get_fontsize() < min_size - 1e-9:
            problems.append(f"text {label}: {t.get_fontsize():g} pt < {min_size:g} pt")
        if bb.x0 < -tol or bb.y0 < -tol or bb.x1 > W + tol or bb.y1 > H + tol:
            problems.append(f"text {label} outside the figure: "
                            f"[{bb.x0:.1f}, {bb.x1:.1f}] x [{bb.y0:.1f}, {bb.y1:.1f}] px of "
                            f"{W:.0f} x {H:.0f}")
        boxes.append((t, bb))
    for i, (t1, b1) in enumerate(boxes):
        for t2, b2 in boxes[i + 1:]:
            if (min(b1.x1, b2.x1) - max(b1.x0, b2.x0) > tol
                    and min(b1.y1, b2.y1) - max(b1.y0, b2.y0) > tol):
                problems.append(f"texts {t1.get_text()[:30]!r} and {t2.get_text()[:30]!r} "
                                "overlap")
    if title is not None:
        want = " ".join(title.split())
        if not any(" ".join(t.get_text().split()) == want for t, _ in boxes):
            problems.append(f"title {title!r} not shown")
    return problems
