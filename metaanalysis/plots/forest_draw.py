"""Drawing a :class:`~metaanalysis.plots.forest_spec.ForestSpec`: measure, lay out, draw.

The layout is computed from the text measured at its final size:

1. every text column is as wide as its widest cell (or header); the study
   label column takes at most 40% of the width (a pooled row's label may run
   into the empty cells of the data columns) (longer labels end in "…",
   the full text stays in ``ForestSpec.table()``); the plot panel gets the
   rest, at least 25% of the width (0.9 in);
2. if that does not fit, headers break onto two lines; then the plot panel
   narrows to 20% of the width (still at least 0.9 in), so that a column of
   study data is not lost for a few millimetres of axis; then whole columns
   are dropped in the order of :data:`~metaanalysis.plots.forest_spec.DROP_ORDER`
   (weight first) with a :class:`~metaanalysis.plots.layout.LayoutWarning`
   naming them; then labels are shortened further.  A figure is never
   cropped and never made wider than asked; a width too small even for the
   labels and the estimates is an :class:`~metaanalysis.errors.InputError`;
3. heterogeneity lines, notes, the title, the axis label and the favours
   labels wrap to the width; tick labels are thinned until none collide;
4. the height follows from the rows (1.9 × the font size per row).
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
from matplotlib import transforms as mtransforms
from matplotlib.patches import Polygon
from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

from metaanalysis.errors import InputError
from metaanalysis.plots import layout as lay
from metaanalysis.plots.forest_spec import DROP_ORDER, ROB_LEVELS, ForestSpec
from metaanalysis.plots.scale import format_tick, linear_ticks, ratio_ticks

__all__ = ["PITCH", "draw_forest", "natural_width"]

PITCH = 1.9  # row height in font sizes
_MARGIN_IN = 0.03  # figure edge to the outermost text
_DIAMOND_HALF = 0.36  # rows
_BOX = 0.62  # side of the largest box, in rows
_PRESETS_MM = (89.0, 120.0, 183.0)


def _pt(x):
    return x / 72.0


class _Layout:
    """Geometry of one forest at one width (inches from the left of the box)."""

    def __init__(self, spec: ForestSpec, width_in: float, f: float, m: lay.TextMeasure):
        self.spec, self.W, self.f, self.m = spec, width_in, f, m
        self.gap = _pt(0.9 * f)
        self.panel_gap = _pt(1.1 * f)
        self.dropped: list[str] = []
        self._columns()
        if not any(c.kind == "rob" for c in self.columns):  # no symbols left to explain
            self.spec = spec = dataclasses.replace(
                spec, rows=tuple(r for r in spec.rows if r.kind != "rob-legend"))
        self._rows()
        self._axis()

    # --- columns -------------------------------------------------------------
    def _col_width(self, c, two_line: bool, room=None) -> float:
        """Widest cell (or header) of column ``c``; ``room[i]``: extra width a label in
        row i may use because the next left columns are empty in that row."""
        m = self.m
        w = m.width(self._header(c, two_line), True)
        if c.kind == "rob":
            return max(w, _pt(1.3 * self.f))
        for i, r in enumerate(self.spec.rows):
            cell = r.cells.get(c.key)
            if cell is not None:
                w = max(w, m.width(cell.text, cell.bold) - (room[i] if room else 0.0))
        return w

    def _room(self, cols, widths):
        """Per row, the width of the empty left columns right of the label column."""
        left = [c for c in cols if c.side == "left" and not c.shorten]
        room = []
        for r in self.spec.rows:
            extra = 0.0
            for c in left:
                if c.key in r.cells:
                    break
                extra += widths[c.key] + self.gap
            room.append(extra)
        return room

    @staticmethod
    def _header(c, two_line: bool) -> str:
        h = c.header
        if not two_line or " " not in h:
            return h
        words = h.split(" ")
        best = min(range(1, len(words)), key=lambda i: abs(len(" ".join(words[:i]))
                                                            - len(" ".join(words[i:]))))
        return " ".join(words[:best]) + "\n" + " ".join(words[best:])

    def _need(self, cols, two_line, label_w, panel_min):
        widths = {c.key: self._col_width(c, two_line) for c in cols if not c.shorten}
        room = self._room(cols, widths)
        for c in cols:
            if c.shorten:
                widths[c.key] = min(self._col_width(c, two_line, room), label_w)
        self._last_room = room
        n_left = sum(c.side == "left" for c in cols)
        n_right = len(cols) - n_left
        total = (sum(widths.values()) + self.gap * (max(n_left - 1, 0) + max(n_right - 1, 0))
                 + self.panel_gap * ((n_left > 0) + (n_right > 0)) + panel_min)
        return total, widths

    def _columns(self):
        W, spec = self.W, self.spec
        cols = list(spec.columns)
        label_cap = 0.40 * W
        label_min = self.m.width("Abcdefghij" + lay.ELLIPSIS)
        panel_min = max(0.9, 0.25 * W)
        two_line = False
        total, widths = self._need(cols, two_line, label_cap, panel_min)
        if total > W:
            two_line = True
            total, widths = self._need(cols, two_line, label_cap, panel_min)
        if total > W:  # a narrower panel before any column goes
            panel_min = max(0.9, 0.20 * W)
            total, widths = self._need(cols, two_line, label_cap, panel_min)
        while total > W:
            ranks = [c.drop for c in cols if c.drop > 0]
            if not ranks:
                break
            top = max(ranks)
            gone = [c for c in cols if c.drop == top]
            self.dropped += sorted({c.group or c.header for c in gone},
                                   key=lambda g: DROP_ORDER.index(g) if g in DROP_ORDER else 99)
            cols = [c for c in cols if c.drop != top]
            total, widths = self._need(cols, two_line, label_cap, panel_min)
        if total > W:  # shorten labels further, then narrow the panel
            excess = total - W
            lab = next((c for c in cols if c.shorten), None)
            if lab is not None:
                cut = min(excess, max(widths[lab.key] - label_min, 0.0))
                label_cap = widths[lab.key] - cut
                total, widths = self._need(cols, two_line, label_cap, panel_min)
            if total > W:
                panel_min = max(0.7, panel_min - (total - W))
                total, widths = self._need(cols, two_line, label_cap, panel_min)
        if total > W + 1e-9:
            raise InputError(f"width: {W * 25.4:.0f} mm is too narrow for this forest plot at "
                             f"{self.f:g} pt (it needs at least {total * 25.4:.0f} mm with every "
                             "optional column dropped); give a larger width or a smaller "
                             "fontsize (6 pt at least)")
        if self.dropped:
            lay.warn_layout(f"forest: left out the column(s) {', '.join(self.dropped)} to fit "
                            f"{W * 25.4:.0f} mm at {self.f:g} pt (drop order: "
                            f"{', '.join(DROP_ORDER)}); use a larger width or fontsize= to "
                            "keep them")
        self.columns = cols
        self.widths = widths
        self.two_line = two_line
        # x positions: left columns from the box's left edge, right columns after the panel
        x = 0.0
        self.anchor = {}
        left = [c for c in cols if c.side == "left"]
        right = [c for c in cols if c.side == "right"]
        for i, c in enumerate(left):
            self.anchor[c.key] = self._anchor(c, x)
            x += widths[c.key] + (self.gap if i < len(left) - 1 else 0.0)
        self.panel_left = x + (self.panel_gap if left else 0.0)
        right_w = (sum(widths[c.key] for c in right) + self.gap * max(len(right) - 1, 0)
                   + (self.panel_gap if right else 0.0))
        self.panel_w = W - self.panel_left - right_w
        x = self.panel_left + self.panel_w + (self.panel_gap if right else 0.0)
        for c in right:
            self.anchor[c.key] = self._anchor(c, x)
            x += widths[c.key] + self.gap
        self.label_w = {c.key: widths[c.key] for c in cols if c.shorten}
        self.room = self._room(cols, widths)

    def _anchor(self, c, x0):
        w = self.widths[c.key]
        return x0 if c.align == "left" else (x0 + w / 2 if c.align == "center" else x0 + w)

    # --- rows ----------------------------------------------------------------
    def _rows(self):
        spec, m = self.spec, self.m
        lu = 1.2 / PITCH  # one text line, in rows
        self.text = {}  # (row index, key) -> drawn text
        self.span = {}  # row index -> wrapped span text
        lines = []
        for i, r in enumerate(spec.rows):
            n = 1
            if r.span is not None:
                avail = self.W if r.span_width == "full" else max(self.panel_left - self.gap,
                                                                  0.45 * self.W)
                t = lay.wrap(r.span.text, avail, m, r.span.bold)
                self.span[i] = t
                n = t.count("\n") + 1
            for c in self.columns:
                cell = r.cells.get(c.key)
                if cell is None:
                    continue
                t = cell.text
                if c.shorten:  # study labels are shortened, model labels wrap
                    avail = self.label_w[c.key] + self.room[i]
                    t = (lay.shorten(t, avail, m, cell.bold) if r.kind == "study"
                         else lay.fit_lines(t, avail, m, cell.bold, max_lines=3))
                    n = max(n, t.count("\n") + 1)
                self.text[(i, c.key)] = t
            lines.append(n)
        self.headers = {c.key: self._header(c, self.two_line) for c in self.columns}
        n_head = max([h.count("\n") + 1 for h in self.headers.values()] + [1])
        ys, prev_n, y = [], n_head, 0.0
        for r, n in zip(spec.rows, lines):
            y += r.gap + (prev_n - 1) * lu / 2 + (n - 1) * lu / 2
            ys.append(y)
            prev_n = n
        self.ys = ys
        self.top = -(n_head * lu / 2 + 0.3)
        self.bottom = (ys[-1] + prev_n * lu / 2 + 0.3) if ys else 1.0
        self.units = self.bottom - self.top
        self.n_head = n_head

    # --- axis, title, labels -----------------------------------------------
    def _frac(self, x):
        lo, hi = self.spec.xlim
        if self.spec.scale.kind == "log":
            return (math.log(x) - math.log(lo)) / (math.log(hi) - math.log(lo))
        return (x - lo) / (hi - lo)

    def _ticks(self):
        spec, m, f = self.spec, self.m, self.f
        lo, hi = spec.xlim
        if spec.xticks is not None:
            return [t for t in spec.xticks if lo <= t <= hi]
        cands = ratio_ticks(lo, hi) if spec.scale.kind == "log" else linear_ticks(lo, hi)
        cands = cands + [c[::2] for c in cands if len(c) > 2]
        for ticks in cands:
            pos = [self._frac(t) * self.panel_w for t in ticks]
            ws = [m.width(format_tick(t)) for t in ticks]
            if all(p2 - p1 >= (w1 + w2) / 2 + _pt(0.6 * f)
                   for p1, p2, w1, w2 in zip(pos, pos[1:], ws, ws[1:])):
                return list(ticks)
        return [lo, hi] if spec.scale.kind != "log" else [c for c in cands[-1][:1]]

    def _axis(self):
        spec, m = self.spec, self.m
        self.ticks = self._ticks()
        lh = m.line()
        y = _pt(3.0 + 2.5) + lh  # tick marks, pad, tick labels
        self.favours = None
        if spec.favours:
            ref = spec.refline if spec.refline is not None else None
            lo, hi = spec.xlim
            xr = self._frac(ref) if ref is not None and lo < ref < hi else 0.5
            x_in = self.panel_left + xr * self.panel_w
            left = lay.wrap(f"← {spec.favours[0]}", max(x_in - _pt(2), 0.4), m)
            right = lay.wrap(f"{spec.favours[1]} →", max(self.W - x_in - _pt(2), 0.4), m)
            self.favours = (xr, left, right, y + _pt(2.0))
            y += _pt(2.0) + lh * max(left.count("\n"), right.count("\n")) + lh
        self.xlabel = lay.wrap(spec.xlabel, self.W, m) if spec.xlabel else ""
        self.xlabel_y = y + _pt(3.0)
        if self.xlabel:
            y = self.xlabel_y + lh * (self.xlabel.count("\n") + 1)
            w = m.width(self.xlabel)
            centre = self.panel_left + self.panel_w / 2
            centre = min(max(centre, w / 2), self.W - w / 2)
            self.xlabel_x = (centre - self.panel_left) / self.panel_w
        self.bottom_in = y + _pt(2.0)
        self.title = None
        self.top_in = _pt(3.0)
        if spec.title:
            size = self.f + 1
            self.title = lay.wrap(spec.title, self.W, m, True, size)
            self.top_in = _pt(4.0 + 3.0) + m.line(size) * (self.title.count("\n") + 1)


def _font(fontsize) -> float:
    f = lay.font_size(fontsize)
    if fontsize is not None and f < lay.MIN_FONT_PT:
        raise InputError(f"fontsize: got {fontsize!r}; expected at least {lay.MIN_FONT_PT:g} pt "
                         "(smaller text is unreadable in print)")
    return max(f, lay.MIN_FONT_PT)


def natural_width(spec: ForestSpec, fig, f: float) -> float:
    """Width (inches) for a figure made without ``width=``: the journal width (89, 120
    or 183 mm) that holds every column with a 1.8-inch plot panel, at most 183 mm."""
    m = lay.TextMeasure(fig, f)
    lay_ = _Layout.__new__(_Layout)
    lay_.spec, lay_.f, lay_.m, lay_.W = spec, f, m, 100.0
    lay_.gap, lay_.panel_gap = _pt(0.9 * f), _pt(1.1 * f)
    total, _ = lay_._need(list(spec.columns), False, 2.6, 1.8)
    need = total + 2 * _MARGIN_IN
    for mm in _PRESETS_MM:
        if need <= mm / 25.4:
            return mm / 25.4
    return _PRESETS_MM[-1] / 25.4


def draw_forest(spec: ForestSpec, ax=None, *, width=None, fontsize=None):
    """Draw ``spec``; returns the Axes of the plot panel.

    Without ``ax`` a figure is made ``width`` wide (a preset, mm, or by default the
    narrowest journal width that holds every column) and as high as its rows need;
    it re-draws itself when saved at another width.  With ``ax`` the whole forest
    (text columns included) is laid out inside that Axes' area.
    """
    from metaanalysis.plots.output import width_inches

    f = _font(fontsize)
    if ax is not None:
        if width is not None:
            raise InputError("width: given together with ax; the Axes' figure decides the "
                             "width (pass one or the other)")
        fig = ax.figure
        box = ax.get_position()
        fw, fh = fig.get_size_inches()
        _render(spec, ax, f, (box.x0 * fw, box.y0 * fh, box.width * fw, box.height * fh))
        return ax
    fig, ax = lay.new_figure(1.0, 1.0)
    w = width_inches(width) if width is not None else natural_width(spec, fig, f)

    def redraw(fig, width_in, height_in):
        ax.cla()
        _render(spec, ax, f, None, width_in=width_in, height_in=height_in)

    fig.set_layout_engine(lay.Relayout(redraw))
    _render(spec, ax, f, None, width_in=w)
    return ax


def _fitting_layout(spec, W, f, fig) -> _Layout:
    """The layout at ``f`` points, or at the largest smaller size (down to 6 pt, with a
    warning) at which the labels and estimates fit ``W`` inches."""
    try:
        return _Layout(spec, W, f, lay.TextMeasure(fig, f))
    except InputError:
        if f <= lay.MIN_FONT_PT:
            raise
    size = f
    while size > lay.MIN_FONT_PT:
        size = max(size - 0.5, lay.MIN_FONT_PT)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", lay.LayoutWarning)
                _Layout(spec, W, size, lay.TextMeasure(fig, size))
        except InputError:
            if size <= lay.MIN_FONT_PT:
                raise
            continue
        lay.warn_layout(f"forest: {f:g} pt text does not fit {W * 25.4:.0f} mm; drawn at "
                        f"{size:g} pt")
        return _Layout(spec, W, size, lay.TextMeasure(fig, size))
    raise AssertionError("unreachable")


def _render(spec, ax, f, box, *, width_in=None, height_in=None):
    """Lay out and draw on ``ax``: inside ``box`` (x0, y0, w, h in inches), or as the
    whole figure ``width_in`` wide (its height set from the rows unless given)."""
    fig = ax.figure
    W = width_in - 2 * _MARGIN_IN if box is None else box[2]
    L = _fitting_layout(spec, W, f, fig)
    f, spec = L.f, L.spec  # the layout's rows: without the risk-of-bias legend if its columns went
    if box is None:
        pitch = _pt(PITCH * f)
        H = L.top_in + L.units * pitch + L.bottom_in + 2 * _MARGIN_IN
        if height_in is not None:
            pitch = max((height_in - L.top_in - L.bottom_in - 2 * _MARGIN_IN) / L.units, 1e-3)
            H = height_in
        fig.set_size_inches(width_in, H, forward=False)
        x0, y0 = _MARGIN_IN, _MARGIN_IN
    else:
        x0, y0, _, h = box
        pitch = (h - L.top_in - L.bottom_in) / L.units
        if pitch < _pt(1.25 * f):
            lay.warn_layout(f"forest: the Axes is too low for {len(spec.rows)} rows at {f:g} pt "
                            f"(it needs {(L.top_in + L.bottom_in + L.units * _pt(1.4 * f)):.1f} "
                            "in); rows will overlap")
            pitch = max(pitch, 1e-3)
    fw, fh = fig.get_size_inches()
    body = L.units * pitch
    ax.set_position([(x0 + L.panel_left) / fw, (y0 + L.bottom_in) / fh, L.panel_w / fw, body / fh])
    _draw(spec, ax, L, f, pitch * 72.0, body)
    return ax


def _draw(spec: ForestSpec, ax, L: _Layout, f: float, pitch_pt: float, body_in: float):
    colors = spec.colors
    lo, hi = spec.xlim
    log = spec.scale.kind == "log"
    ax.set_xscale("log" if log else "linear")
    ax.set_xlim(lo, hi)
    ax.set_ylim(L.bottom, L.top)
    ax.xaxis.set_major_locator(FixedLocator(L.ticks))
    ax.xaxis.set_major_formatter(FixedFormatter([format_tick(t) for t in L.ticks]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.tick_params(axis="x", labelsize=f, length=3.0, pad=2.5, width=0.6)
    ax.yaxis.set_visible(False)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_linewidth(0.6)
    ax.patch.set_visible(False)

    # --- text -------------------------------------------------------------
    tr = mtransforms.blended_transform_factory(ax.transAxes, ax.transData)

    def xf(x_in):
        return (x_in - L.panel_left) / L.panel_w

    common = {"transform": tr, "va": "center", "clip_on": False, "fontsize": f,
              "parse_math": False}
    for c in L.columns:
        ha = c.align
        ax.text(xf(L.anchor[c.key]), 0.0, L.headers[c.key], ha=ha, fontweight="bold",
                gid=f"forest-text-{c.key}", linespacing=1.0, **common)
    for (i, key), text in L.text.items():
        c = next(col for col in L.columns if col.key == key)
        cell = spec.rows[i].cells[key]
        y = L.ys[i]
        if c.kind == "rob":
            _rob_symbol(ax, xf(L.anchor[key]), y, cell.text, f, tr)
            continue
        ax.text(xf(L.anchor[key]), y, text, ha=c.align,
                fontweight="bold" if cell.bold else "normal", color=cell.color,
                gid=f"forest-text-{key}", **common)
    for i, text in L.span.items():
        r = spec.rows[i]
        ax.text(xf(0.0), L.ys[i], text, ha="left", linespacing=1.2,
                fontweight="bold" if r.span.bold else "normal", gid="forest-text-span", **common)
    if L.title:  # the Axes title, moved to the left edge of the text columns
        t = ax.set_title(L.title, fontsize=f + 1, fontweight="bold", pad=4.0, linespacing=1.2)
        t.set_horizontalalignment("left")
        t.set_x(xf(0.0))
    if L.xlabel:
        ax.set_xlabel(L.xlabel, fontsize=f, linespacing=1.2)
        ax.xaxis.set_label_coords(L.xlabel_x, -L.xlabel_y / body_in)
        ax.xaxis.label.set_verticalalignment("top")
    if L.favours:
        xr, left, right, y_in = L.favours
        ftr = mtransforms.blended_transform_factory(ax.transAxes, ax.transAxes)
        dx = 2.0 / 72.0 / L.panel_w
        for text, x, ha, gid in ((left, xr - dx, "right", "favours-left"),
                                 (right, xr + dx, "left", "favours-right")):
            ax.text(x, -y_in / body_in, text, transform=ftr, ha=ha, va="top", fontsize=f,
                    clip_on=False, gid=gid, parse_math=False, linespacing=1.2)

    # --- marks ------------------------------------------------------------
    rows = spec.rows
    marks = [(L.ys[i], mk) for i, r in enumerate(rows) for mk in r.marks]
    y_top = L.ys[0] - 0.6 if L.ys else 0.0
    y_top = min(y_top, 0.6)
    last_mark = max([y for y, _ in marks] + [0.0])
    if spec.refline is not None and lo <= spec.refline <= hi:
        ax.plot([spec.refline] * 2, [y_top, last_mark + 0.5], color=colors["ref"],
                linewidth=0.6, zorder=1, gid="reference-line")
    overall = next((L.ys[i] for i, r in enumerate(rows) if r.overall), None)
    if overall is not None:
        mk = next(mk for mk in rows[[r.overall for r in rows].index(True)].marks)
        if lo <= mk.est <= hi:
            oc = colors["bayes"] if mk.kind == "bayes" else colors["re"]
            ax.plot([mk.est] * 2, [y_top, overall], color=oc, linewidth=0.5,
                    linestyle=(0, (2, 2)), zorder=1, gid="pooled-line")
    _draw_marks(ax, spec, marks, pitch_pt, L.panel_w * 72.0)


def _rob_symbol(ax, x, y, level, f, tr):
    sym, color, _ = ROB_LEVELS[level]
    ax.scatter([x], [y], s=(1.25 * f) ** 2, marker="o", color=color, edgecolors="none",
               transform=tr, clip_on=False, zorder=5, gid=f"rob-{level}")
    ax.text(x, y, sym, transform=tr, ha="center", va="center_baseline", fontsize=f,
            color="white" if level != "some" else "black", fontweight="bold", clip_on=False,
            zorder=6,
            gid="rob-symbol", parse_math=False)


def _xpt(spec, x, panel_pt):
    """Position of ``x`` in points from the panel's left edge."""
    lo, hi = spec.xlim
    if spec.scale.kind == "log":
        return (math.log(x) - math.log(lo)) / (math.log(hi) - math.log(lo)) * panel_pt
    return (x - lo) / (hi - lo) * panel_pt


def _whisker(ax, y, lb, ub, lim, log, color, gid="study-ci", lw=0.8):
    """Whisker from lb to ub, clipped to ``lim`` with an arrow head inside the panel."""
    lo, hi = lim
    a, b = max(lb, lo), min(ub, hi)
    if not (np.isfinite(a) and np.isfinite(b)) or a > b:
        return
    ax.plot([a, b], [y, y], color=color, linewidth=lw, solid_capstyle="butt", zorder=3, gid=gid)
    for clipped, edge, inner in ((lb < lo, lo, b), (ub > hi, hi, a)):
        if not clipped:
            continue
        if log:
            start = math.exp(math.log(edge) + 0.06 * (math.log(inner) - math.log(edge)))
        else:
            start = edge + 0.06 * (inner - edge)
        ax.annotate("", xy=(edge, y), xytext=(start, y), gid="clip-arrow",
                    arrowprops={"arrowstyle": "-|>,head_length=0.35,head_width=0.18",
                                "color": color, "linewidth": lw, "shrinkA": 0, "shrinkB": 0},
                    annotation_clip=False, zorder=3)


def _draw_marks(ax, spec, marks, pitch_pt, panel_pt):
    colors = spec.colors
    lim = spec.xlim
    log = spec.scale.kind == "log"
    lo, hi = lim
    studies = [(y, mk) for y, mk in marks if mk.kind == "study"]
    shrink = bool(any(mk.kind == "shrink" for _, mk in marks))
    d_obs, d_shr = (-0.15, 0.22) if shrink else (0.0, 0.0)
    w = np.asarray([mk.weight for _, mk in studies], float)
    wmax = float(np.nanmax(w)) if np.any(np.isfinite(w)) else math.nan
    side_max = _BOX * pitch_pt * spec.box_scale
    xs, ys, sizes, inside = [], [], [], []
    for y, mk in studies:
        y = y + d_obs
        _whisker(ax, y, mk.lb, mk.ub, lim, log, colors["study"])
        if not lo <= mk.est <= hi:
            continue
        if np.isfinite(mk.weight) and wmax > 0:
            side = side_max * math.sqrt(max(mk.weight, 0.0) / wmax)
        else:
            side = 0.55 * side_max
        side = max(side, 2.2)
        xs.append(mk.est)
        ys.append(y)
        sizes.append(side ** 2)
        ci_pt = _xpt(spec, min(mk.ub, hi), panel_pt) - _xpt(spec, max(mk.lb, lo), panel_pt)
        if ci_pt < side:  # the box hides the whisker: draw it over the box (R meta)
            inside.append((y, mk))
    if xs:
        ax.scatter(xs, ys, s=sizes, marker="s", color=colors["study"], edgecolors="none",
                   zorder=4, gid="study-boxes", clip_on=False)
    for y, mk in inside:
        ax.plot([max(mk.lb, lo), min(mk.ub, hi)], [y, y], color=colors["inside"],
                linewidth=0.6, solid_capstyle="butt", zorder=5, gid="study-ci-inside")
    sx, sy = [], []
    for y, mk in marks:
        if mk.kind != "shrink":
            continue
        _whisker(ax, y + d_shr, mk.lb, mk.ub, lim, log, colors["bayes"], gid="shrinkage-ci",
                 lw=0.6)
        if lo <= mk.est <= hi:
            sx.append(mk.est)
            sy.append(y + d_shr)
    if sx:
        ax.scatter(sx, sy, s=(0.34 * pitch_pt) ** 2, marker="o", facecolors="white",
                   edgecolors=colors["bayes"], linewidths=0.8, zorder=5,
                   gid="shrinkage-markers", clip_on=False)
    refits = [(y, mk) for y, mk in marks if mk.kind == "refit"]
    for y, mk in refits:
        _whisker(ax, y, mk.lb, mk.ub, lim, log, colors["study"])
    if refits:
        keep = [(y, mk.est) for y, mk in refits if lo <= mk.est <= hi]
        ax.scatter([e for _, e in keep], [y for y, _ in keep], s=(0.32 * pitch_pt) ** 2,
                   marker="o", color=colors["study"], edgecolors="none", zorder=4,
                   gid="study-boxes", clip_on=False)
    gids = {"re": "pooled-diamond", "ce": "common-diamond", "bayes": "bayes-diamond"}
    for y, mk in marks:
        if mk.kind in gids:
            a, b = max(mk.lb, lo), min(mk.ub, hi)
            e = min(max(mk.est, lo), hi)
            face = {"re": colors["re"], "bayes": colors["bayes"]}.get(mk.kind, colors["ce"])
            ax.add_patch(Polygon([(a, y), (e, y - _DIAMOND_HALF), (b, y),
                                  (e, y + _DIAMOND_HALF)], closed=True, facecolor=face,
                                 edgecolor="black", linewidth=0.6, zorder=4, gid=gids[mk.kind]))
        elif mk.kind == "pi":
            ax.plot([max(mk.lb, lo), min(mk.ub, hi)], [y, y], color=colors["pi"],
                    linewidth=3.2, solid_capstyle="butt", zorder=3, gid="prediction-interval")

