"""Change from baseline and absolute values of one outcome in one figure: two panels.

A journal figure of a time course often needs both: how much the outcome
changed, and where it stands (for example pain reduction from baseline and the
pain score itself).  :func:`timecourse_panels` draws the two
:func:`~metaanalysis.plots.timecourse.timecourse` panels side by side (or one
above the other when the width cannot hold two readable panels), with one time
axis range, each panel its own y label, one legend under both, the same colour
for a study in both panels and panel letters A and B.
"""

from __future__ import annotations

import numpy as np

from metaanalysis.errors import InputError
from metaanalysis.plots import layout as _layout
from metaanalysis.plots.timecourse import (
    STUDY_COLORS,
    draw_timecourse,
    label_study_lines,
    sqrt_limits,
    study_label_text,
    timecourse_spec,
)

__all__ = ["MIN_PANEL_MM", "timecourse_panels"]

#: Narrowest data area of a panel (mm) drawn side by side; narrower panels are stacked.
MIN_PANEL_MM = 36.0
_MM = 25.4
_NOT_PER_PANEL = ("ax", "width", "fig")


def _panel_args(value, name: str) -> dict:
    if not isinstance(value, dict):
        raise InputError(f"{name}: got {type(value).__name__}; expected a dict of "
                         "ma.timecourse arguments, e.g. {'df': pooled, 'studies': rows, "
                         "'ylabel': '...'}")
    bad = [k for k in value if k in _NOT_PER_PANEL]
    if bad:
        raise InputError(f"{name}: {bad} cannot be set per panel; pass width= to "
                         "timecourse_panels")
    return dict(value)


def _overhead_in(fig, spec) -> float:
    """Width (inches) a side-by-side panel needs beside its data area: y label, y tick
    labels, study labels at the right edge and the layout's paddings (measured)."""
    import matplotlib as mpl

    small = _layout.TextMeasure(fig, _layout.small_font())
    tick = _layout.TextMeasure(fig, _layout.font_size(mpl.rcParams["ytick.labelsize"]))
    names = spec.options["study_labels"]
    labels = ([study_label_text(fig, str(names.get(s, s)) if isinstance(names, dict) else str(s))
               for s in spec.study_ids()] if names else [])
    right = max((small.width(t) for t in labels), default=0.0) + (6 / 72 if labels else 0)
    ylabel = 1.2 * _layout.font_size(mpl.rcParams["axes.labelsize"]) / 72
    return right + tick.width("−00.0") + ylabel + 0.25


def _legend_columns(fig, labels, room_in: float) -> int:
    m = _layout.TextMeasure(fig, _layout.small_font())
    col = max(m.width(t) for t in labels) + (1.6 + 0.8 + 2.0) * _layout.small_font() / 72
    return int(max(1, min(len(labels), room_in // col)))


def timecourse_panels(change: dict, absolute: dict, *, width=None, title: str | None = None,
                      letters=("A", "B"), arrange: str = "auto", **common):
    """Change from baseline (A) and absolute values (B) of one outcome, side by side.

    Each panel is an :func:`~metaanalysis.plots.timecourse.timecourse` drawn under
    the same layout rules, with

    * one time axis: both panels span the same days on the same scale (the
      absolute panel usually starts at baseline, day 0, the change panel at
      the first follow-up);
    * each panel its own y label (say the unit: "Pain reduction, VAS 0–10
      (baseline − follow-up)" and "Pain, VAS 0–10"), its own k row and its
      study lines labelled at its right edge, a study in the same colour in
      both panels;
    * one legend under both panels, panel letters at the top left and
      ``title`` above the figure.

    Side by side when each panel keeps a data area of at least
    :data:`MIN_PANEL_MM` (36 mm) beside its measured y label, tick labels and
    study labels — at 183 mm, usually; at 89 mm two panels cannot fit and
    they are stacked, change above absolute (``arrange="auto"``).

    Parameters
    ----------
    change, absolute : dict
        Arguments of :func:`~metaanalysis.plots.timecourse.timecourse` for each
        panel: ``df``, ``studies``, ``ylabel``, ``trajectory``, ``counts``,
        ``xticks``, ``interval`` … (not ``ax`` or ``width``).
    width : "single", "onehalf", "double" or mm, optional
        Width of the figure (default "double", 183 mm); the figure is exactly
        that wide and grows in height for the legend.
    title : str, optional
        Figure title, wrapped to the width.
    letters : pair of str
        Panel letters (journals ask for "A", "B"; ``("a", "b")`` for some).
    arrange : {"auto", "row", "column"}
        Side by side ("row"), stacked ("column") or chosen from the width.
    **common
        :func:`~metaanalysis.plots.timecourse.timecourse` arguments of both
        panels (``xscale``, ``study_labels``, ``xlabel``, ``measure`` …); a
        panel's own dict wins.

    Returns
    -------
    numpy.ndarray of two Axes
        The change panel and the absolute panel.

    Examples
    --------
    >>> import pandas as pd, metaanalysis as ma
    >>> change = pd.DataFrame({"days": [7, 30, 180], "estimate": [3.9, 4.6, 5.0],
    ...                        "ci_lb": [3.1, 3.9, 4.1], "ci_ub": [4.7, 5.3, 5.9], "k": [4, 4, 3]})
    >>> absolute = pd.DataFrame({"days": [0, 7, 30, 180], "estimate": [7.3, 3.4, 2.7, 2.3],
    ...                          "ci_lb": [6.9, 2.8, 2.1, 1.6], "ci_ub": [7.7, 4.0, 3.3, 3.0],
    ...                          "k": [5, 4, 4, 3]})
    >>> a, b = ma.timecourse_panels({"df": change, "ylabel": "Pain reduction, VAS 0–10"},
    ...                             {"df": absolute, "ylabel": "Pain, VAS 0–10"},
    ...                             xscale="sqrt", width="double", title="Pain")
    >>> a.get_title(loc="left"), b.get_title(loc="left"), b.get_ylabel()
    ('A', 'B', 'Pain, VAS 0–10')
    >>> a.get_xlim() == b.get_xlim()
    True
    >>> ma.layout_problems(a.figure, title="Pain")
    []
    >>> import matplotlib.pyplot as plt; plt.close("all")
    """
    import matplotlib.pyplot as plt

    from metaanalysis.plots.output import width_inches

    if arrange not in ("auto", "row", "column"):
        raise InputError(f"arrange: got {arrange!r}; expected 'auto', 'row' or 'column'")
    if (not isinstance(letters, (tuple, list)) or len(letters) != 2
            or not all(isinstance(t, str) for t in letters)):
        raise InputError(f"letters: got {letters!r}; expected two strings such as ('A', 'B')")
    bad = [k for k in common if k in _NOT_PER_PANEL]
    if bad:
        raise InputError(f"{bad}: not an argument of timecourse_panels (it makes its own "
                         "figure: pass width=)")
    panels = [_panel_args(change, "change"), _panel_args(absolute, "absolute")]
    specs = [timecourse_spec(**{**common, **p}) for p in panels]
    # one colour per study across both panels
    if not any(s.options["study_colors"] for s in specs):
        ids = sorted({i for s in specs for i in s.study_ids()}, key=str)
        colors = {sid: STUDY_COLORS[i % len(STUDY_COLORS)] for i, sid in enumerate(ids)}
        specs = [timecourse_spec(**{**common, **p, "study_colors": colors}) for p in panels]

    w = width_inches("double" if width is None else width)
    fig = plt.figure(figsize=(w, w))
    over = max(_overhead_in(fig, s) for s in specs)
    row = arrange == "row" or (arrange == "auto" and (w - 2 * over) / 2 >= MIN_PANEL_MM / _MM)
    fig.set_size_inches(w, 0.42 * w if row else 1.3 * w, forward=False)
    fig.set_layout_engine("constrained")
    axes = fig.subplots(1, 2) if row else fig.subplots(2, 1)
    ends = [draw_timecourse(ax, s) for ax, s in zip(axes, specs)]

    # one time axis: the same days on the same scale in both panels
    if specs[0].options["xscale"] == specs[1].options["xscale"]:
        if specs[0].options["xscale"] == "sqrt":
            spans = [s.span() for s in specs]
            lim = sqrt_limits(min(a for a, _ in spans), max(b for _, b in spans))
        else:
            lims = [ax.get_xlim() for ax in axes]
            lim = (min(a for a, _ in lims), max(b for _, b in lims))
        for ax in axes:
            ax.set_xlim(*lim)
    for ax, letter in zip(axes, letters):
        ax.set_title(letter, loc="left", fontweight="bold", gid="panel-letter")
    if row:  # each x label wrapped to its panel, not to the figure
        for ax in axes:
            _layout.fit_labels(ax, "x", x_room=(w - 2 * over) / 2 + over - 0.1)

    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:  # a figure legend: constrained layout keeps it under both panels
        leg = fig.legend(handles, labels, loc="outside lower center", frameon=False,
                         ncol=_legend_columns(fig, labels, w - 0.3), handlelength=1.6,
                         fontsize=_layout.small_font())
        extra = leg.get_window_extent(_layout.get_renderer(fig)).height / fig.dpi
        fig.set_size_inches(w, fig.get_size_inches()[1] + extra + 4 / 72, forward=False)
    if title:
        m = _layout.TextMeasure(fig, _layout.font_size(plt.rcParams["figure.titlesize"]))
        fig.suptitle(_layout.wrap(" ".join(title.split()), w - 0.2, m))
    _layout.settle(fig)  # the panels' final heights: for the y labels and the study labels
    for ax in axes:
        _layout.fit_labels(ax, "y")
    _layout.settle(fig)
    for ax, e in zip(axes, ends):
        label_study_lines(ax, e)
    return np.asarray(axes)
