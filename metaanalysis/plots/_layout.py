"""Private layout helpers shared by the figure functions.

* :class:`FixedMargins` keeps margins fixed in inches when a figure is resized
  (for example by :func:`~metaanalysis.plots.output.save_figure` at a journal
  width), so text columns drawn outside the axes always fit.
* :class:`TextTable` draws the text columns of forest-like plots: every cell
  is an ``ax.text`` whose x position is an offset in inches from the left or
  right edge of the axes, measured from the rendered widths of the cells.
* :func:`axis_scale` describes how a measure is shown on the x axis (natural
  scale, log axis for ratios, percent for proportions).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from matplotlib import transforms as mtransforms
from matplotlib.layout_engine import LayoutEngine

from metaanalysis.effects.transforms import PROPORTION_MEASURES
from metaanalysis.errors import InputError

RATIO_MEASURES = frozenset({"RR", "OR", "ROM"})
DIFFERENCE_MEASURES = frozenset({"MD", "SMD", "RD", "MC", "SMCR", "ZCOR", "COR"})

_MODEL_LABELS = {
    "PLO": "Log odds", "PAS": "Arcsine square-root proportion",
    "PFT": "Freeman–Tukey double arcsine", "RR": "Log risk ratio", "OR": "Log odds ratio",
    "ROM": "Log ratio of means", "MNLN": "Log mean", "ZCOR": "Fisher's z",
}


class FixedMargins(LayoutEngine):
    """Layout engine placing the figure's first axes with margins fixed in inches."""

    _adjust_compatible = False
    _colorbar_gridspec = False

    def __init__(self, left: float, right: float, top: float, bottom: float, **kwargs):
        super().__init__(**kwargs)
        self.margins = (float(left), float(right), float(top), float(bottom))

    def execute(self, fig) -> None:
        left, right, top, bottom = self.margins
        w, h = fig.get_size_inches()
        pw = max(w - left - right, 0.2)
        ph = max(h - top - bottom, 0.2)
        for ax in fig.axes[:1]:
            ax.set_position([left / w, bottom / h, pw / w, ph / h])


def new_figure(width_in: float, height_in: float):
    """A pyplot figure with one axes (pyplot so that notebooks display it)."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(width_in, height_in))
    ax = fig.add_subplot()
    return fig, ax


def single_column_axes(ax, ratio: float):
    """``ax`` itself, or when it is None the Axes of a new single-column figure
    (height ``ratio`` × width) laid out by matplotlib's constrained layout."""
    if ax is None:
        from metaanalysis.plots.output import width_inches

        w = width_inches("single")
        fig, ax = new_figure(w, w * ratio)
        fig.set_layout_engine("constrained")
    return ax


def get_renderer(fig):
    """The figure's renderer, for measuring text before the first draw."""
    canvas = fig.canvas
    if hasattr(canvas, "get_renderer"):
        return canvas.get_renderer()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    return FigureCanvasAgg(fig).get_renderer()


def axes_height_points(ax) -> float:
    """Height of ``ax`` in points as currently placed."""
    fig = ax.figure
    return ax.get_position().height * fig.get_size_inches()[1] * 72.0


@dataclass
class Column:
    """One text column: ``side`` of the axes ("left"/"right"), alignment and header."""

    key: str
    header: str
    side: str
    align: str = "right"


@dataclass
class TextTable:
    """Cells of the text columns of a forest-like plot, positioned after measuring.

    ``cells[(key, y)] = (text, bold)``; ``colors[(key, y)]`` an optional text
    colour of a cell; ``spans`` are texts starting at the outer-left column
    edge that are not measured (long footnote lines).
    """

    columns: list
    gap_in: float = 0.10
    cells: dict = field(default_factory=dict)
    spans: list = field(default_factory=list)
    colors: dict = field(default_factory=dict)

    def add(self, key: str, y: float, text: str, bold: bool = False,
            color: str | None = None) -> None:
        if text is None or text == "":
            return
        self.cells[(key, y)] = (str(text), bold)
        if color is not None:
            self.colors[(key, y)] = color

    def add_span(self, y: float, text: str, bold: bool = False, italic: bool = False) -> None:
        self.spans.append((y, str(text), bold, italic))

    def draw(self, ax, fontsize=None) -> tuple[float, float]:
        """Draw every cell on ``ax``; returns the inches needed left and right of it."""
        fig = ax.figure
        renderer = get_renderer(fig)
        base_left = mtransforms.blended_transform_factory(ax.transAxes, ax.transData)
        texts: dict[str, list] = {c.key: [] for c in self.columns}
        widths: dict[str, float] = {}
        for col in self.columns:
            for (k, y), (s, bold) in self.cells.items():
                if k != col.key:
                    continue
                t = ax.text(0, y, s, transform=base_left, ha=col.align, va="center",
                            fontweight="bold" if bold else "normal", clip_on=False,
                            fontsize=fontsize, gid=f"forest-text-{col.key}",
                            color=self.colors.get((k, y)))
                texts[col.key].append(t)
            w = 0.0
            for t in texts[col.key]:
                w = max(w, t.get_window_extent(renderer).width / fig.dpi)
            widths[col.key] = w
        # place columns outward from the axes edges
        left_cols = [c for c in self.columns if c.side == "left"]
        right_cols = [c for c in self.columns if c.side == "right"]
        offset = -self.gap_in
        for col in reversed(left_cols):
            x_edge = offset - widths[col.key]  # left edge of this column
            x = x_edge if col.align == "left" else offset
            self._place(ax, texts[col.key], 0.0, x)
            offset = x_edge - 2 * self.gap_in
        left_total = -offset - 2 * self.gap_in + 0.06
        outer_left = offset + 2 * self.gap_in
        offset = self.gap_in
        for col in right_cols:
            x = offset if col.align == "left" else offset + widths[col.key]
            self._place(ax, texts[col.key], 1.0, x)
            offset = offset + widths[col.key] + 2 * self.gap_in
        right_total = offset - 2 * self.gap_in + 0.06 if right_cols else 0.08
        for y, s, bold, italic in self.spans:
            tr = base_left + mtransforms.ScaledTranslation(outer_left, 0, fig.dpi_scale_trans)
            ax.text(0, y, s, transform=tr, ha="left", va="center", clip_on=False,
                    fontweight="bold" if bold else "normal",
                    fontstyle="italic" if italic else "normal", fontsize=fontsize,
                    gid="forest-text-span")
        return max(left_total, 0.05), right_total

    @staticmethod
    def _place(ax, texts, x_axes: float, dx_in: float) -> None:
        fig = ax.figure
        tr = mtransforms.blended_transform_factory(ax.transAxes, ax.transData)
        tr = tr + mtransforms.ScaledTranslation(dx_in, 0, fig.dpi_scale_trans)
        for t in texts:
            t.set_x(x_axes)
            t.set_transform(tr)


@dataclass(frozen=True)
class AxisScale:
    """How values of a measure are shown: ``fn`` maps the analysis scale to the axis."""

    measure: str | None
    kind: str  # "linear" or "log"
    label: str
    percent: bool
    natural: bool
    ni: object = None

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        if not self.natural:
            return x
        from metaanalysis.effects.transforms import to_natural

        out = np.asarray(to_natural(self.measure, x, ni=self.ni), dtype=float)
        return out * 100.0 if self.percent else out

    @property
    def null(self) -> float | None:
        """Value of 'no effect' on the axis, or None when there is none (proportions)."""
        if self.measure in PROPORTION_MEASURES or self.measure in ("MN", "MNLN"):
            return None
        if self.measure in RATIO_MEASURES:
            return 1.0 if self.natural else 0.0
        return 0.0


def axis_scale(measure, *, transform: bool = True, percent: bool = False, ni=None,
               xlabel: str | None = None) -> AxisScale:
    """Describe the x axis for ``measure`` (see module docstring)."""
    from metaanalysis.effects.transforms import natural_label

    if percent and measure not in PROPORTION_MEASURES:
        raise InputError(f"percent: got True for measure {measure!r}; "
                         f"expected a proportion measure {sorted(PROPORTION_MEASURES)}")
    if transform:
        if measure == "PFT" and ni is None:
            raise InputError("ni: got None for measure 'PFT'; the back-transform needs the "
                             "study sample sizes (pool an effect_sizes DataFrame with 'ni')")
        label = natural_label(measure) if measure else "Estimate"
        if percent:
            label = f"{label} (%)"
        kind = "log" if measure in RATIO_MEASURES else "linear"
    else:
        label = _MODEL_LABELS.get(measure) or (natural_label(measure) if measure else "Estimate")
        kind = "linear"
        percent = False
    return AxisScale(measure, kind, xlabel or label, bool(percent), bool(transform), ni)


def ratio_ticks(lo: float, hi: float) -> list[float]:
    """Readable tick positions for a log axis of ratios between ``lo`` and ``hi``."""
    cands = []
    for e in range(-4, 5):
        for m in (1, 2, 5):
            cands.append(m * 10.0 ** e)
    ticks = [c for c in cands if lo <= c * (1 + 1e-9) and c <= hi * (1 + 1e-9)]
    if len(ticks) < 3:
        fine = sorted({round(m * 10.0 ** e, 10) for e in range(-4, 5)
                       for m in (1, 1.5, 2, 3, 4, 5, 7)})
        ticks = [c for c in fine if lo <= c * (1 + 1e-9) and c <= hi * (1 + 1e-9)]
    if len(ticks) > 7:
        ticks = [c for c in ticks if np.isclose(np.log10(c) % 1, 0) or c == 1] or ticks
    return ticks


def format_tick(x: float) -> str:
    """Tick label without trailing zeros (0.5, 1, 20)."""
    return f"{x:.6g}"
