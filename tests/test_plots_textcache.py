"""cached_text_metrics: text measured once per process, with the answers matplotlib gives."""

import contextlib

import matplotlib
import matplotlib.pyplot as plt
import pytest
from matplotlib.backends import _backend_pdf_ps, backend_agg, backend_svg
from matplotlib.font_manager import FontProperties

import metaanalysis as ma
from metaanalysis.plots import output, textcache
from metaanalysis.plots.textcache import cached_text_metrics

_TEXTS = ("Chen 2022", "office fluffy", "0.30 [0.22; 0.39]", "Δ pain ≥ 2", r"$\tau^2$",
          "two\nlines", "")


def _renderers(fig):
    import io

    from matplotlib.backends.backend_pdf import PdfFile, RendererPdf
    from matplotlib.backends.backend_svg import RendererSVG
    pdf = RendererPdf(PdfFile(io.BytesIO()), 72, 2, 2)
    svg = RendererSVG(2, 2, io.StringIO())
    return [fig.canvas.get_renderer(), backend_agg.RendererAgg(2, 2, 300), pdf, svg]


def _measure_all(fig):
    props = [FontProperties(size=7), FontProperties(size=7, weight="bold"),
             FontProperties(size=6.5, style="italic")]
    return [r.get_text_width_height_descent(t, p, ismath=t.startswith("$"))
            for r in _renderers(fig) for p in props for t in _TEXTS]


def test_cached_metrics_equal_matplotlib_and_methods_restored(monkeypatch):
    monkeypatch.setattr(textcache, "_METRICS", {})
    originals = [cls.__dict__["get_text_width_height_descent"] for cls in
                 (backend_agg.RendererAgg, _backend_pdf_ps.RendererPDFPSBase,
                  backend_svg.RendererSVG)]
    fig = plt.figure()
    plain = _measure_all(fig)
    with cached_text_metrics():
        first = _measure_all(fig)
        n = len(textcache._METRICS)
        with cached_text_metrics():  # nested: the same cache
            again = _measure_all(fig)
        assert len(textcache._METRICS) == n > 0  # the second pass measured nothing new
    assert first == again == plain
    assert [cls.__dict__["get_text_width_height_descent"] for cls in
            (backend_agg.RendererAgg, _backend_pdf_ps.RendererPDFPSBase,
             backend_svg.RendererSVG)] == originals
    with pytest.raises(KeyError), cached_text_metrics():
        raise KeyError("x")
    assert backend_agg.RendererAgg.__dict__["get_text_width_height_descent"] is originals[0]
    plt.close(fig)


def test_cache_keyed_by_font_settings_and_resolution(monkeypatch):
    """A text measured under other rcParams (family, hinting) or at another dpi is
    measured again, never taken from the cache."""
    monkeypatch.setattr(textcache, "_METRICS", {})
    prop = FontProperties(size=7)
    with cached_text_metrics():
        at = {dpi: backend_agg.RendererAgg(2, 2, dpi).get_text_width_height_descent(
            "Wang 2022", prop, False) for dpi in (100, 300)}
        with matplotlib.rc_context({"font.family": "serif", "font.serif": ["DejaVu Serif"]}):
            serif = backend_agg.RendererAgg(2, 2, 300).get_text_width_height_descent(
                "Wang 2022", FontProperties(size=7), False)
        with matplotlib.rc_context({"text.hinting": "none"}):
            unhinted = backend_agg.RendererAgg(2, 2, 300).get_text_width_height_descent(
                "Wang 2022", prop, False)
    assert at[300][0] > 2.5 * at[100][0]
    with matplotlib.rc_context({"font.family": "serif", "font.serif": ["DejaVu Serif"]}):
        assert serif == backend_agg.RendererAgg(2, 2, 300).get_text_width_height_descent(
            "Wang 2022", FontProperties(size=7), False)
    assert serif != at[300]
    with matplotlib.rc_context({"text.hinting": "none"}):
        assert unhinted == backend_agg.RendererAgg(2, 2, 300).get_text_width_height_descent(
            "Wang 2022", prop, False)


def test_figures_are_the_same_bytes_with_the_cache(tmp_path, monkeypatch):
    """A forest plot drawn and saved (PDF, PNG) with measurements from the cache is
    byte for byte the one drawn without it (SVG measures as the other tests show)."""
    import pandas as pd

    df = pd.DataFrame({"yi": [0.1, 0.3, -0.2, 0.5], "vi": [0.04, 0.02, 0.05, 0.03],
                       "study": ["Chen 2022", "Wang 2022", "Khan 2018", "Fluffy office 2020"]})
    res = ma.pool(df["yi"], df["vi"], labels=list(df["study"]))

    def draw(name):
        with ma.use_style("single"):
            ax = ma.forest(res, title="Pain reduction (office fluffy)")
            files = ma.save_figure(ax.figure, tmp_path / name, ("pdf", "png"), dpi=100)
            plt.close(ax.figure)
        return [f.read_bytes() for f in files]

    monkeypatch.setattr(textcache, "_METRICS", {})
    cached, again = draw("cached"), draw("again")  # again: every text from the cache
    monkeypatch.setattr(output, "cached_text_metrics", contextlib.nullcontext)
    plain = draw("plain")
    assert cached == again == plain
