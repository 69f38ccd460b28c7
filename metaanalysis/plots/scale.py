"""How a measure is shown on a plot axis (no matplotlib: usable by the pure specs).

:func:`axis_scale` describes the axis for a measure: natural scale
(proportions for PLO/PAS/PFT, ratios on a log axis for RR/OR/ROM) or the
analysis scale, the label, and the value of "no effect".  :func:`ratio_ticks`
and :func:`linear_ticks` give candidate tick positions; the drawing step keeps
those whose labels do not collide at the final size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from metaanalysis.effects.transforms import PROPORTION_MEASURES
from metaanalysis.errors import InputError

__all__ = ["DIFFERENCE_MEASURES", "MODEL_LABELS", "PROPORTION_MEASURES", "RATIO_MEASURES",
           "SINGLE_GROUP_MEASURES", "AxisScale", "axis_scale", "format_tick", "linear_ticks",
           "ratio_ticks"]

RATIO_MEASURES = frozenset({"RR", "OR", "ROM"})
DIFFERENCE_MEASURES = frozenset({"MD", "SMD", "RD", "MC", "SMCR", "ZCOR", "COR"})
#: single-group measures: a test of "estimate = 0" (p = 50% on the logit scale) means nothing
SINGLE_GROUP_MEASURES = frozenset(PROPORTION_MEASURES) | {"MN", "MNLN"}

MODEL_LABELS = {
    "PLO": "Log odds", "PAS": "Arcsine square-root proportion",
    "PFT": "Freeman–Tukey double arcsine", "RR": "Log risk ratio", "OR": "Log odds ratio",
    "ROM": "Log ratio of means", "MNLN": "Log mean", "ZCOR": "Fisher's z",
}


@dataclass(frozen=True)
class AxisScale:
    """How values of a measure are shown: calling it maps the analysis scale to the axis."""

    measure: str | None
    kind: str  # "linear" or "log"
    label: str
    percent: bool
    natural: bool
    ni: object = None
    name: str = ""  # the measure's own name ("Risk ratio"), whatever the axis label says

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        if not self.natural:
            return x
        from metaanalysis.effects.transforms import to_natural

        out = np.asarray(to_natural(self.measure, x, ni=self.ni), dtype=float)
        return out * 100.0 if self.percent else out

    @property
    def null(self) -> float | None:
        """Value of 'no effect' on the axis, or None when there is none (single groups)."""
        if self.measure in SINGLE_GROUP_MEASURES:
            return None
        if self.measure in RATIO_MEASURES:
            return 1.0 if self.natural else 0.0
        return 0.0

    @property
    def short_label(self) -> str:
        """The measure's name without a parenthesised unit: the effect column's header."""
        return (self.name or self.label).split(" (")[0]


def axis_scale(measure, *, transform: bool = True, percent: bool = False, ni=None,
               xlabel: str | None = None) -> AxisScale:
    """Describe the x axis for ``measure``.

    Examples
    --------
    >>> axis_scale("RR").kind, axis_scale("RR").label
    ('log', 'Risk ratio')
    >>> axis_scale("PLO", percent=True).label
    'Proportion (%)'
    """
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
        label = MODEL_LABELS.get(measure) or (natural_label(measure) if measure else "Estimate")
        kind = "linear"
        percent = False
    return AxisScale(measure, kind, xlabel or label, bool(percent), bool(transform), ni, label)


def ratio_ticks(lo: float, hi: float) -> list[list[float]]:
    """Candidate tick sets for a log axis of ratios, densest first.

    The drawing step uses the first set whose labels do not collide.

    Examples
    --------
    >>> ratio_ticks(0.1, 3)[0]
    [0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 3.0]
    >>> ratio_ticks(0.1, 3)[-1]
    [0.1, 1.0]
    """
    def inside(c):
        return lo <= c * (1 + 1e-9) and c <= hi * (1 + 1e-9)

    def grid(ms):
        return sorted({round(m * 10.0 ** e, 10) for e in range(-4, 5) for m in ms})

    narrow = grid((1, 1.1, 1.2, 1.3, 1.5, 2, 3, 4, 5, 6, 7, 8, 9))
    out = []
    for cands in (grid((1, 2, 3, 5)), grid((1, 2, 5)), grid((1, 5)), grid((1, 3)), grid((1,))):
        t = [c for c in cands if inside(c)]
        if len(t) >= 2 and t not in out:
            out.append(t)
    if not out or len(out[0]) < 3:
        t = [c for c in narrow if inside(c)]
        if len(t) >= 2:
            out.insert(0, t)
    coarse = grid((1,))
    sparse = sorted({c for c in coarse if inside(c)})
    if len(sparse) > 3:  # every other power of ten, keeping 1
        keep = [c for c in sparse if c == 1.0 or round(math.log10(c)) % 2 == 0]
        out.append(keep)
    if not out:
        out.append([float(lo), float(hi)])
    return sorted(out, key=len, reverse=True)


def linear_ticks(lo: float, hi: float) -> list[list[float]]:
    """Candidate tick sets on a linear axis, from about 7 ticks down to 2.

    Examples
    --------
    >>> linear_ticks(0, 10)[-1]
    [0.0, 10.0]
    """
    span = hi - lo
    out: list[list[float]] = []
    for target in (7, 6, 5, 4, 3, 2):
        raw = span / max(target - 1, 1)
        mag = 10.0 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
        for m in (1, 2, 2.5, 5, 10):
            step = m * mag
            if step >= raw * 0.999:
                break
        first = math.ceil(lo / step - 1e-9) * step
        t = [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]
        t = [0.0 if abs(v) < step * 1e-9 else v for v in t]
        if len(t) >= 2 and t not in out:
            out.append(t)
    if not out or len(out[-1]) > 2:
        out.append([float(lo), float(hi)])
    return out


def format_tick(x: float) -> str:
    """Tick label without trailing zeros and with a real minus sign (0.5, 1, 20, −2).

    Examples
    --------
    >>> format_tick(0.5), format_tick(-2.0)
    ('0.5', '−2')
    """
    s = f"{x:.6g}"
    return s.replace("-", "−")
