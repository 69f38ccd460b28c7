"""Measuring text and sizing figures: the shared half of every drawing step.

* :class:`TextMeasure` measures text at its final size (points → inches) with
  the figure's renderer, so columns are as wide as their widest cell;
  :func:`wrap` and :func:`shorten` fit a text into a width.
* :class:`Relayout` is the layout engine of figures made by this package:
  it knows how to draw the figure again at another width, so
  :func:`~metaanalysis.plots.output.save_figure` never crops or squeezes a
  figure (it re-lays it out at the asked width instead).
* :func:`new_axes` makes the figure of a plot at a journal width.
"""

from __future__ import annotations

import warnings

from matplotlib.font_manager import FontProperties
from matplotlib.layout_engine import ConstrainedLayoutEngine, LayoutEngine

__all__ = ["MIN_FONT_PT", "LayoutWarning", "Relayout", "TextMeasure", "axes_height_points",
           "fit_labels", "fit_lines", "get_renderer", "legend_below", "settle", "new_axes", "new_figure", "shorten", "wrap"]

#: Smallest text size drawn at the final size (journals ask for 6–8 pt).
MIN_FONT_PT = 6.0
ELLIPSIS = "…"


class LayoutWarning(UserWarning):
    """A figure had to leave something out (a column, part of a label) to fit its width."""


def new_figure(width_in: float, height_in: float):
    """A pyplot figure with one axes (pyplot so that notebooks display it)."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(width_in, height_in))
    ax = fig.add_subplot()
    return fig, ax


def get_renderer(fig):
    """The figure's renderer, for measuring text before the first draw."""
    canvas = fig.canvas
    if hasattr(canvas, "get_renderer"):
        return canvas.get_renderer()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    return FigureCanvasAgg(fig).get_renderer()


def axes_height_points(ax) -> float:
    """Height of ``ax`` in points as currently placed."""
    return ax.get_position().height * ax.figure.get_size_inches()[1] * 72.0


def font_size(size=None) -> float:
    """``size`` (points or a name such as "small") in points; the rc font size if None."""
    return float(FontProperties(size=size).get_size_in_points())


def small_font() -> float:
    """Size of secondary text (point labels, k row, legends): 85% of the rc font size,
    never below :data:`MIN_FONT_PT`."""
    return max(0.85 * font_size(), MIN_FONT_PT)


class TextMeasure:
    """Width and height in inches of single- or multi-line text at ``size`` points."""

    def __init__(self, fig, size: float):
        self.renderer = get_renderer(fig)
        self.size = float(size)
        self._cache: dict = {}
        self._props = {w: FontProperties(size=self.size, weight=w) for w in ("normal", "bold")}

    def width(self, text: str, bold: bool = False, size: float | None = None) -> float:
        if not text:
            return 0.0
        key = (text, bold, size)
        if key not in self._cache:
            prop = self._props["bold" if bold else "normal"]
            if size is not None:
                prop = FontProperties(size=size, weight="bold" if bold else "normal")
            w = 0.0
            for line in text.split("\n"):
                lw, _, _ = self.renderer.get_text_width_height_descent(line, prop, ismath=False)
                w = max(w, lw)
            # 3% slack: glyph hinting makes text a little wider at some resolutions
            self._cache[key] = 1.03 * w / self.renderer.points_to_pixels(72.0)
        return self._cache[key]

    def line(self, size: float | None = None) -> float:
        """Height of one line of text (1.2 × the font size), in inches."""
        return 1.2 * (size or self.size) / 72.0


def wrap(text: str, width_in: float, measure: TextMeasure, bold: bool = False,
         size: float | None = None) -> str:
    """``text`` with line breaks so that no line is wider than ``width_in`` (greedy,
    at spaces and after ``;`` or ``,``; a single word longer than a line stays whole)."""
    out = []
    for para in text.split("\n"):
        words = para.split(" ")
        line = ""
        for w in words:
            cand = w if not line else f"{line} {w}"
            if not line or measure.width(cand, bold, size) <= width_in:
                line = cand
            else:
                out.append(line)
                line = w
        out.append(line)
    return "\n".join(out)


def fit_lines(text: str, width_in: float, measure: TextMeasure, bold: bool = False,
              max_lines: int = 2) -> str:
    """``text`` wrapped to ``width_in`` (at spaces and after hyphens) on at most
    ``max_lines`` lines, the last one shortened with an ellipsis if needed."""
    if measure.width(text, bold) <= width_in:
        return text
    words = text.replace("-", "-\x00").replace(" ", " \x00").split("\x00")
    lines, line = [], ""
    for w in words:
        cand = line + w
        if not line or measure.width(cand.rstrip(), bold) <= width_in:
            line = cand
        else:
            lines.append(line.rstrip())
            line = w
    lines.append(line.rstrip())
    if len(lines) > max_lines:
        lines = lines[:max_lines - 1] + [" ".join(lines[max_lines - 1:])]
    lines = [ln if measure.width(ln, bold) <= width_in else shorten(ln, width_in, measure, bold)
             for ln in lines]
    return "\n".join(lines)


def shorten(text: str, width_in: float, measure: TextMeasure, bold: bool = False) -> str:
    """``text`` cut at the end with an ellipsis so that it fits ``width_in``."""
    if measure.width(text, bold) <= width_in:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if measure.width(text[:mid].rstrip() + ELLIPSIS, bold) <= width_in:
            lo = mid
        else:
            hi = mid - 1
    return text[:max(lo, 1)].rstrip() + ELLIPSIS


def settle(fig) -> None:
    """Run the figure's layout engine now (as drawing would), so that positions read
    afterwards are the final ones."""
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)


def fit_labels(ax, which: str = "xy", x_room: float | None = None) -> None:
    """Wrap axis labels that are longer than the figure is wide (x; ``x_room`` inches
    when given, e.g. one panel's width) or the axes are high (y), onto more lines."""
    fig = ax.figure
    w, h = fig.get_size_inches()
    rooms = []
    if "x" in which:
        rooms.append((ax.xaxis.label, w - 0.3 if x_room is None else x_room))
    if "y" in which:
        rooms.append((ax.yaxis.label, ax.get_position().height * h))
    for label, room in rooms:
        text = " ".join(label.get_text().split())
        if text:
            m = TextMeasure(fig, label.get_fontsize())
            if m.width(text) > room:
                label.set_text(wrap(text, room, m))
                label.set_linespacing(1.1)


def legend_below(ax, handles=None, labels=None, ncol: int = 1, grow: bool = False,
                 others=()) -> None:
    """Legend under everything drawn below ``ax`` (tick labels, rows of numbers, the
    axis label), measured, so it never covers the axis label or the data.  ``grow``:
    the figure (made by the caller) grows by the legend's height, so the axes keep theirs.
    ``others``: more Axes beside ``ax`` whose text under their x axis counts too (one
    legend for a row of panels)."""
    from matplotlib import transforms as mtransforms

    fig = ax.figure
    r = get_renderer(fig)
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    bottom = ax.get_window_extent(r).y0
    texts = [t for a in (ax, *others)
             for t in [a.xaxis.label] + list(a.texts) + list(a.get_xticklabels())]
    ys = [t.get_window_extent(r).y0 for t in texts if t.get_visible() and t.get_text()]
    low = min([y for y in ys if y < bottom] + [bottom])
    drop_in = (bottom - low) / fig.dpi + 4.0 / 72.0
    tr = ax.transAxes + mtransforms.ScaledTranslation(0, -drop_in, fig.dpi_scale_trans)
    leg = ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.0, 0.0),
                    bbox_transform=tr, ncol=ncol, frameon=False, borderaxespad=0.0,
                    handlelength=1.6, fontsize=small_font())
    if grow:
        w, h = fig.get_size_inches()
        extra = leg.get_window_extent(r).height / fig.dpi + drop_in
        fig.set_size_inches(w, h + extra, forward=False)


def warn_layout(message: str) -> None:
    warnings.warn(message, LayoutWarning, stacklevel=4)


class Relayout(LayoutEngine):
    """Layout engine of a figure this package made: ``redraw(fig, width_in, height_in)``
    draws it again at a new size (``height_in=None``: the height its content needs) and
    returns the height used.  Between redraws, matplotlib's constrained layout (when
    ``constrained``) or nothing adjusts the axes."""

    _adjust_compatible = False
    _colorbar_gridspec = False

    def __init__(self, redraw, *, constrained: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.redraw = redraw
        self._constrained = ConstrainedLayoutEngine() if constrained else None

    def execute(self, fig) -> None:
        if self._constrained is not None:
            self._constrained.execute(fig)

    def resize(self, fig, width_in: float, height_in: float | None = None) -> None:
        """Draw ``fig`` again at ``width_in`` (and ``height_in``, or its natural height)."""
        self.redraw(fig, float(width_in), None if height_in is None else float(height_in))

    @property
    def idle(self) -> bool:
        """True when :meth:`execute` does nothing (no constrained layout): the figure is
        laid out already, a layout pass before drawing changes nothing."""
        return self._constrained is None


def new_axes(ax, width, ratio: float, draw=None):
    """``ax`` itself, or the Axes of a new figure ``width`` wide (preset or mm; default
    "single") and ``ratio`` × as high, laid out by constrained layout.

    ``draw(ax)`` — when given and the figure is made here, the figure remembers how to
    draw itself again, so :func:`~metaanalysis.plots.output.save_figure` can re-draw it
    at another width instead of stretching it.
    """
    from metaanalysis.errors import InputError
    from metaanalysis.plots.output import width_inches

    if ax is not None:
        if width is not None:
            raise InputError("width: given together with ax; the Axes' figure decides the "
                             "width (pass one or the other)")
        return ax
    w = width_inches("single" if width is None else width)
    fig, ax = new_figure(w, w * ratio)

    def redraw(fig, width_in, height_in):
        fig.clear()
        fig.set_size_inches(width_in, height_in or width_in * ratio, forward=False)
        new = fig.add_subplot()
        if draw is not None:
            draw(new)

    fig.set_layout_engine(Relayout(redraw, constrained=True) if draw is not None
                          else "constrained")
    return ax
