"""Measured text for figures laid out in inches: widths, word wrapping, a canvas in inches.

The submission figures (PRISMA flow diagram, risk-of-bias plots) are laid out
before drawing: every text is measured with the renderer's font metrics, boxes
and columns are sized from those measurements, and the figure is exactly the
width asked for.  :class:`InchCanvas` is an Axes whose data coordinates are
inches from the top-left corner of the figure (y downwards), so a layout in
inches is drawn as computed.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib as mpl
from matplotlib.font_manager import FontProperties

from metaanalysis.errors import InputError

__all__ = ["LINESPACING", "MIN_FONT_PT", "InchCanvas", "Measure", "add_patch", "base_fontsize",
           "draw_lines", "figure_width"]

MIN_FONT_PT = 6.0
#: distance between baselines of multi-line texts, in multiples of the font size
LINESPACING = 1.25


def base_fontsize(fontsize=None) -> float:
    """The text size to use: ``fontsize`` or the current ``font.size``, at least 6 pt."""
    size = float(mpl.rcParams["font.size"] if fontsize is None else fontsize)
    if size < MIN_FONT_PT:
        raise InputError(f"fontsize: got {size:g} pt; expected at least {MIN_FONT_PT:g} pt "
                         "(journals ask for 6-8 pt at print size)")
    return size


def figure_width(width) -> float:
    """Width in inches of ``"single"``, ``"onehalf"``, ``"double"`` or millimetres."""
    if width == "onehalf":
        return 120.0 / 25.4
    from metaanalysis.plots.output import width_inches

    return width_inches(width)


@dataclass
class Measure:
    """Text measurement with a figure's renderer (sizes in inches)."""

    fig: object

    def __post_init__(self):
        canvas = self.fig.canvas
        if hasattr(canvas, "get_renderer"):
            self.renderer = canvas.get_renderer()
        else:  # pragma: no cover - every backend used here has one
            from matplotlib.backends.backend_agg import FigureCanvasAgg

            self.renderer = FigureCanvasAgg(self.fig).get_renderer()
        self._cache: dict = {}

    def size(self, text: str, fontsize: float, weight: str = "normal",
             style: str = "normal") -> tuple[float, float]:
        """(width, height) of one line in inches."""
        key = (text, fontsize, weight, style)
        if key not in self._cache:
            prop = FontProperties(size=fontsize, weight=weight, style=style)
            w, h, _ = self.renderer.get_text_width_height_descent(text or " ", prop,
                                                                  ismath=False)
            self._cache[key] = (w / self.fig.dpi, h / self.fig.dpi)
        return self._cache[key]

    def width(self, text: str, fontsize: float, weight: str = "normal",
              style: str = "normal") -> float:
        return self.size(text, fontsize, weight, style)[0]

    def metrics(self, fontsize: float, weight: str = "normal") -> tuple[float, float]:
        """(ascent, descent) in inches of the tallest glyphs used ("lp(|")."""
        key = ("\0metrics", fontsize, weight)
        if key not in self._cache:
            prop = FontProperties(size=fontsize, weight=weight)
            _, h, d = self.renderer.get_text_width_height_descent("lpÅ(|", prop, ismath=False)
            self._cache[key] = ((h - d) / self.fig.dpi, d / self.fig.dpi)
        return self._cache[key]

    def line_height(self, fontsize: float) -> float:
        """Distance between baselines of :func:`draw_lines` text, in inches: 1.25 × the
        font size, or more if the glyphs need it (lines never overlap)."""
        a, d = self.metrics(fontsize)
        return max(LINESPACING * fontsize / 72.0, 1.02 * (a + d))

    def block_height(self, n_lines: int, fontsize: float) -> float:
        """Height in inches of ``n_lines`` lines drawn by :func:`draw_lines`."""
        a, d = self.metrics(fontsize)
        return (max(n_lines, 1) - 1) * self.line_height(fontsize) + a + d

    def wrap(self, text: str, width: float, fontsize: float, weight: str = "normal",
             style: str = "normal", indent: str = "") -> list[str]:
        """Greedy word wrap of ``text`` into lines no wider than ``width`` inches.

        Continuation lines start with ``indent``.  A single word wider than the
        width raises :class:`~metaanalysis.errors.InputError` (the caller
        chooses a smaller font or says the figure is too narrow).
        """
        lines: list[str] = []

        def too_wide(word):
            return InputError(f"{word!r} is wider than {width * 25.4:.1f} mm at {fontsize:g} pt")

        for para in str(text).split("\n"):
            line = ""
            for word in para.split(" "):
                trial = f"{line} {word}" if line.strip() else line + word
                if self.width(trial, fontsize, weight, style) <= width:
                    line = trial
                elif not line.strip():
                    raise too_wide(word)
                else:
                    lines.append(line)
                    line = indent + word
                    if self.width(line, fontsize, weight, style) > width:
                        raise too_wide(word)
            lines.append(line)
        return lines


def draw_lines(ax, m: Measure, x: float, top: float, lines, fontsize: float, *,
               ha: str = "left", gid: str | None = None, **kw) -> list:
    """Draw ``lines`` one Text per line, the first line's top at ``top`` (inches, y down),
    baselines :meth:`Measure.line_height` apart; returns the Text artists."""
    ascent, _ = m.metrics(fontsize, kw.get("fontweight", "normal"))
    lh = m.line_height(fontsize)
    return [ax.text(x, top + ascent + i * lh, line, ha=ha, va="baseline", fontsize=fontsize,
                    gid=gid, **kw) for i, line in enumerate(lines)]


def add_patch(ax, patch):
    """``ax.add_patch(patch)`` without growing the Axes' data limits: the limits of an
    :class:`InchCanvas` are fixed in inches, and matplotlib would otherwise find the
    extremes of every curve of the patch (for the circles of a traffic-light plot, 40% of
    its drawing time).  The patch is drawn the same; returns it."""
    return ax.add_artist(patch)


class InchCanvas:
    """An Axes covering ``fig`` (or drawing in ``ax``) with coordinates in inches, y down."""

    def __init__(self, ax, width: float, height: float):
        self.ax = ax
        self.width = width
        self.height = height
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)
        ax.set_axis_off()

    @classmethod
    def new(cls, width: float, height: float):
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(width, height))
        ax = fig.add_axes((0, 0, 1, 1))
        return cls(ax, width, height)

    @classmethod
    def on(cls, ax, height: float):
        """Use an existing Axes: its width in inches is the layout width."""
        fig = ax.figure
        pos = ax.get_position()
        width = pos.width * fig.get_size_inches()[0]
        canvas = cls(ax, width, height)
        ax.set_aspect("equal", adjustable="box", anchor="N")
        return canvas

    @classmethod
    def open(cls, ax, width, height: float = 1.0):
        """On ``ax`` when given (its width is the layout width), else a new figure
        ``width`` wide (``"single"``, ``"onehalf"``, ``"double"`` or millimetres)."""
        return cls.new(figure_width(width), height) if ax is None else cls.on(ax, height)
