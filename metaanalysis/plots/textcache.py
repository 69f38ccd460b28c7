"""Measuring each text once per process: width, height and descent shared by every figure.

Every figure measures its text many times: the layout step (:class:`~metaanalysis.plots.
layout.TextMeasure`, a fresh one per figure and font size) tries wrapped and shortened
versions of each label, and matplotlib measures every text again each time a figure is
drawn, with a new renderer per saved file.  matplotlib caches measurements per renderer
only, so the same tick label, column header or study name is measured again in every
figure and every file: with matplotlib 3.11 (text shaped by HarfBuzz), each measurement is
about 25 µs per character.  The report's figures measured 3,200 texts at 300 dpi, 1,300 of
them different.

Inside :func:`cached_text_metrics` the renderers' ``get_text_width_height_descent`` (Agg,
PDF, PostScript, SVG) remember their answer for the process, keyed by everything it
depends on: the renderer's class and resolution, the text, the font properties, whether
it is mathtext and the rcParams that choose and shape fonts (``font.*``, ``text.*``,
``mathtext.*``, the PDF/PS core-font switches).  A measurement is a pure function of
those, so every figure and file is the same bytes as without the cache.  TeX text is
measured as before.  Blocks nest; the renderers are restored when the outermost ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["cached_text_metrics"]

#: (renderer class, dpi, text, font properties, ismath, rc values, fonts known) -> (w, h, d)
_METRICS: dict = {}
_MAX_ENTRIES = 200_000  # about 40 MB at most; the report's figures need 3,000
_STATE = {"depth": 0, "originals": {}, "rc_keys": ()}


def _rc_keys() -> tuple[str, ...]:
    import matplotlib as mpl

    return tuple(sorted(k for k in mpl.rcParams
                        if k.startswith(("font.", "text.", "mathtext."))
                        or k in ("pdf.use14corefonts", "ps.useafm")))


def _rc_values() -> tuple:
    import matplotlib as mpl

    get = dict.__getitem__  # the stored (validated) values, without RcParams' lookup
    return tuple(tuple(v) if isinstance(v, list) else v
                 for v in (get(mpl.rcParams, k) for k in _STATE["rc_keys"]))


def _renderers() -> list:
    """The renderer classes whose ``get_text_width_height_descent`` is cached."""
    from matplotlib.backends import _backend_pdf_ps, backend_agg, backend_svg

    return [backend_agg.RendererAgg, _backend_pdf_ps.RendererPDFPSBase,
            backend_svg.RendererSVG]


def _cached(original):
    from matplotlib import font_manager

    def get_text_width_height_descent(self, s, prop, ismath):
        if ismath == "TeX":
            return original(self, s, prop, ismath)
        try:
            fonts = (id(font_manager.fontManager), len(font_manager.fontManager.ttflist))
            key = (type(self), getattr(self, "dpi", None), s, prop, ismath, _rc_values(), fonts)
            hash(key)
        except TypeError:  # an unhashable rc value: measure as matplotlib does
            return original(self, s, prop, ismath)
        found = _METRICS.get(key)
        if found is None:
            found = original(self, s, prop, ismath)
            if len(_METRICS) >= _MAX_ENTRIES:
                _METRICS.clear()
            # a copy: FontProperties is mutable and hashed by its state
            _METRICS[key[:3] + (prop.copy(),) + key[4:]] = found
        return found

    get_text_width_height_descent.__wrapped__ = original
    return get_text_width_height_descent


@contextlib.contextmanager
def cached_text_metrics() -> Iterator[None]:
    """Inside the block, text measured by the Agg, PDF, PS and SVG renderers is measured
    once per process (see the module docstring); the same output, in less time.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from matplotlib.font_manager import FontProperties
    >>> fig = plt.figure()
    >>> renderer = fig.canvas.get_renderer()
    >>> plain = renderer.get_text_width_height_descent("Chen 2022", FontProperties(), False)
    >>> with cached_text_metrics():
    ...     again = renderer.get_text_width_height_descent("Chen 2022", FontProperties(), False)
    >>> again == plain
    True
    >>> plt.close(fig)
    """
    if _STATE["depth"] == 0:
        _STATE["rc_keys"] = _rc_keys()
        for cls in _renderers():
            original = cls.__dict__["get_text_width_height_descent"]
            _STATE["originals"][cls] = original
            cls.get_text_width_height_descent = _cached(original)
    _STATE["depth"] += 1
    try:
        yield
    finally:
        _STATE["depth"] -= 1
        if _STATE["depth"] == 0:
            for cls, original in _STATE["originals"].items():
                cls.get_text_width_height_descent = original
            _STATE["originals"].clear()
