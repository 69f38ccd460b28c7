"""save_figure / use_style: reproducible bytes, journal widths, embedded fonts, atomic writes."""

import contextlib
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest

import metaanalysis as ma
from metaanalysis.errors import InputError


def _figure():
    res = ma.pool([0.1, 0.3, 0.35, 0.2], [0.01, 0.02, 0.015, 0.01], method="REML",
                  labels=["Alpha 2001", "Beta 2005", "Gamma 2010", "Delta 2019"])
    with ma.use_style():
        return ma.forest(res).figure


def test_two_saves_are_byte_identical_without_timestamps(tmp_path):
    a = ma.save_figure(_figure(), tmp_path / "a" / "forest.pdf", dpi=72)
    assert [p.suffix for p in a] == [".pdf", ".svg", ".png"]
    # a second, separately built figure from the same input gives the same bytes
    c = ma.save_figure(_figure(), tmp_path / "c" / "forest", dpi=72)
    for pa, pc in zip(a, c):
        assert pa.read_bytes() == pc.read_bytes(), pa.suffix
    pdf, svg, png = a
    raw = pdf.read_bytes()
    assert b"CreationDate" not in raw and b"ModDate" not in raw
    assert b"/FontFile2" in raw  # TrueType (fonttype 42) embedded
    text = svg.read_text()
    assert "<dc:date>" not in text
    assert "<text" not in text  # glyphs as paths: no font needed to view
    assert b"Software" not in png.read_bytes()[:2000]
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]  # no temp files


def test_width_presets_and_size_restored(tmp_path):
    fig = _figure()
    size = tuple(fig.get_size_inches())
    (png,) = ma.save_figure(fig, tmp_path / "s", formats="png", width="single", dpi=100)
    assert tuple(fig.get_size_inches()) == size
    w = int.from_bytes(png.read_bytes()[16:20], "big")  # PNG IHDR width in pixels
    assert w == round(89 / 25.4 * 100)
    (png2,) = ma.save_figure(fig, tmp_path / "d", formats=["png"], width="double", dpi=100)
    assert int.from_bytes(png2.read_bytes()[16:20], "big") == round(183 / 25.4 * 100)
    with pytest.raises(InputError, match="width"):
        ma.save_figure(fig, tmp_path / "x", width="triple")
    with pytest.raises(InputError, match="formats"):
        ma.save_figure(fig, tmp_path / "x", formats=["jpg"])


def test_journal_formats_modes_and_editable_svg(tmp_path):
    import os
    import stat

    import matplotlib.pyplot as plt
    from PIL import Image

    fig = plt.figure(figsize=(1.2, 0.6))  # small: EPS font embedding is slow
    fig.text(0.1, 0.4, "Ab 12")
    files = ma.save_figure(fig, tmp_path / "j", formats=("tiff", "eps", "svg"), dpi=100,
                           svg_text=True)
    assert [p.suffix for p in files] == [".tiff", ".eps", ".svg"]
    um = os.umask(0)
    os.umask(um)
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~um  # 0644 under umask 022
    with Image.open(files[0]) as im:  # RGB on white, LZW, the asked resolution
        assert im.mode == "RGB"
        assert im.info["compression"] == "tiff_lzw"
        assert im.info["dpi"] == pytest.approx((100, 100))
    eps = files[1].read_bytes()
    assert b"%%CreationDate: Thu Jan 01 00:00:00 1970" in eps  # fixed, not today's date
    assert "<text" in files[2].read_text()  # real, editable text
    (again,) = ma.save_figure(fig, tmp_path / "k", formats="tiff", dpi=100)
    assert again.read_bytes() == files[0].read_bytes()


def test_save_at_a_width_redraws_instead_of_cropping(tmp_path):
    from metaanalysis.plots.inspect import layout_problems

    res = ma.pool([0.1, 0.3, 0.35, 0.2], [0.01, 0.02, 0.015, 0.01], method="REML",
                  labels=["Alpha 2001", "Beta 2005", "Gamma 2010", "Delta 2019"])
    with ma.use_style("double"):
        fig = ma.forest(res, width="double", title="An outcome").figure
    seen = {}

    def spy(fig, **kw):  # the figure as it is being saved
        seen["size"] = tuple(fig.get_size_inches())
        seen["problems"] = layout_problems(fig, title="An outcome")

    import matplotlib.figure

    orig = matplotlib.figure.Figure.savefig
    try:
        matplotlib.figure.Figure.savefig = lambda self, *a, **kw: (spy(self), orig(self, *a, **kw))[1]
        with pytest.warns(ma.LayoutWarning, match="weight"):
            ma.save_figure(fig, tmp_path / "s", formats="png", width="single", dpi=100)
    finally:
        matplotlib.figure.Figure.savefig = orig
    assert seen["size"][0] == pytest.approx(89 / 25.4)
    assert seen["problems"] == []  # nothing cut: the Study column and the panel both show
    assert fig.get_size_inches()[0] == pytest.approx(183 / 25.4)  # restored


def test_use_style_applies_only_inside_block():
    before = dict(matplotlib.rcParams)
    with ma.use_style("double"):
        assert matplotlib.rcParams["font.size"] == 8
        assert matplotlib.rcParams["pdf.fonttype"] == 42
        assert matplotlib.rcParams["axes.prop_cycle"].by_key()["color"][0].upper() in (
            "#0072B2", "0072B2")
    assert matplotlib.rcParams["font.size"] == before["font.size"]
    assert matplotlib.rcParams["pdf.fonttype"] == before["pdf.fonttype"]
    with pytest.raises(InputError, match="preset"), ma.use_style("poster"):
        pass


def _pdf_parts(raw: bytes):
    """(page content streams, ToUnicode maps, embedded TrueType fonts) of a matplotlib PDF."""
    import io
    import re
    import zlib

    from fontTools.ttLib import TTFont

    content, cmaps, fonts = [], [], []
    for m in re.finditer(rb"\d+ 0 obj\s*(.*?)endobj", raw, re.S):
        s = re.search(rb"stream\r?\n(.*)endstream", m.group(1), re.S)
        if not s:
            continue
        data = s.group(1)
        if b"FlateDecode" in m.group(1)[:s.start()]:
            data = zlib.decompress(data)
        if data[:4] == b"\x00\x01\x00\x00":
            fonts.append(TTFont(io.BytesIO(data)))
        elif b"begincmap" in data:
            cmaps.append(data)
        elif b"BT" in data:
            content.append(data)
    return content, cmaps, fonts


def _outline(font, name):
    g = font["glyf"][name]
    return g.getCoordinates(font["glyf"])[0].array.tobytes() if g.numberOfContours else b""


def test_lean_font_subsets_keep_text_and_glyphs_drop_layout_tables(tmp_path, monkeypatch):
    import contextlib

    from fontTools import subset

    from metaanalysis.plots import output
    from metaanalysis.plots.fonts import LAYOUT_TABLES, lean_font_subsets

    default = subset.load_font
    fig = _figure()
    fig.axes[0].set_title("Δ pain ≥ 2 (μ, τ²)")  # glyphs beyond ASCII, math-font fallbacks
    lean = ma.save_figure(fig, tmp_path / "lean", "pdf")[0].read_bytes()
    assert subset.load_font is default  # restored after the save
    monkeypatch.setattr(output, "lean_font_subsets", contextlib.nullcontext)  # fontTools' own
    full = ma.save_figure(fig, tmp_path / "full", "pdf")[0].read_bytes()
    a, b = _pdf_parts(lean), _pdf_parts(full)
    assert a[0] == b[0] and a[1] == b[1]  # the same drawing operators and text mapping
    assert len(a[2]) == len(b[2]) >= 1  # every font still embedded
    for small, big in zip(a[2], b[2]):
        assert not set(LAYOUT_TABLES) & set(small.keys())
        assert {"glyf", "cmap", "hmtx"} <= set(small.keys())
        kept = small.getGlyphOrder()
        assert set(kept) <= set(big.getGlyphOrder())  # only closure variants dropped
        assert all(_outline(small, g) == _outline(big, g) for g in kept)
    with lean_font_subsets():
        assert subset.load_font is not default
    with pytest.raises(KeyError), lean_font_subsets():
        raise KeyError("x")
    assert subset.load_font is default  # restored after an error too


def test_eps_font_bounds_measured_once_per_font(monkeypatch):
    """EPS speed-up: matplotlib's ``backend_ps._bounds`` (every glyph of the font drawn with
    a bounds pen) runs once per font file and face; later calls return the same box."""
    from pathlib import Path

    import fontTools.ttLib
    import matplotlib
    from matplotlib.backends import backend_ps

    from metaanalysis.plots.fonts import ps_font_bounds_once

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "cmr10.ttf"  # 130 glyphs
    other = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "cmss10.ttf"
    calls = []
    original = backend_ps._bounds

    def counting(font):
        calls.append(font)
        return original(font)

    monkeypatch.setattr(backend_ps, "_bounds", counting)
    want = original(fontTools.ttLib.TTFont(path))
    with ps_font_bounds_once():
        got = [backend_ps._bounds(fontTools.ttLib.TTFont(p)) for p in (path, path, other)]
    assert got[0] == got[1] == want and got[2] == original(fontTools.ttLib.TTFont(other))
    assert len(calls) == 2  # cmr10 once, cmss10 once
    assert backend_ps._bounds is counting  # restored


_TEXTS = ("Alpha 2001 (12/40)", "Łódź Ørsted Çelik – Müller", "Δ pain ≥ 2 (μ, τ²) − 1.5 ± 0.3",
          "† ‡ § ¶ ‖ ■ ○ → ≤ √ ×", "θᵢ ŷ Ω ∞ … “quoted”")


def _text_figure(extra=""):
    import matplotlib.pyplot as plt

    with ma.use_style():
        fig = plt.figure(figsize=(3.5, 1.6))
        for i, t in enumerate(_TEXTS + ((extra,) if extra else ())):
            fig.text(0.02, 0.9 - 0.14 * i, t, weight="bold" if i == 1 else "normal",
                     style="italic" if i == 2 else "normal")
        fig.text(0.6, 0.1, r"$\hat{\theta}_i \pm \tau^2$")
    return fig


@pytest.mark.parametrize("extra", ["", "Жизнь ẞ ﬁ"])  # Cyrillic, ẞ: outside the base set
def test_subsets_cut_from_the_cached_base_are_byte_identical(tmp_path, monkeypatch, extra):
    """The base-subset cache changes nothing in the file: the PDF (and EPS) is byte for byte
    the one written when every subset is made from the font file, for glyphs inside the
    base set (regular, bold, italic, mathtext, accented, composite glyphs) and outside it
    (falls back to the file)."""
    import matplotlib.pyplot as plt
    from matplotlib.backends import _backend_pdf_ps

    from metaanalysis.plots import fonts

    original = _backend_pdf_ps.get_glyphs_subset
    fig = _text_figure(extra)
    eps_fig = plt.figure(figsize=(2, 0.5))  # EPS: one font (its bounding box is slow)
    eps_fig.text(0.05, 0.4, "Łódź ≤ √ × ■ Ω " + extra)
    saves = {}
    for name in ("cached", "again", "plain"):  # again: the bases exist now
        if name == "plain":
            monkeypatch.setattr(fonts, "_subsets_from_base", contextlib.nullcontext)
        saves[name] = (ma.save_figure(fig, tmp_path / name, "pdf")[0].read_bytes(),
                       ma.save_figure(eps_fig, tmp_path / name, "eps")[0].read_bytes())
        assert _backend_pdf_ps.get_glyphs_subset is original  # restored after each save
    assert saves["cached"] == saves["again"] == saves["plain"]
    content, cmaps, embedded = _pdf_parts(saves["cached"][0])
    assert len(embedded) >= 3  # regular, bold, oblique (+ mathtext)
    shown = "".join(_TEXTS + (extra,)).replace(" ", "")
    # every character drawn is in a ToUnicode map of the file, with an outline in its font
    mapped = set()
    for cm in cmaps:
        for targets in re.findall(rb"\[([^\]]*)\]", cm):  # bfrange <from> <to> [<u> ...]
            mapped |= {bytes.fromhex(h.decode()).decode("utf-16-be")  # UTF-16 code units
                       for h in re.findall(rb"<([0-9a-fA-F]+)>", targets)}
    assert set(shown) <= mapped
    for font in embedded:
        assert "glyf" in font and font["maxp"].numGlyphs < 200  # a subset, not the font
        assert all(_outline(font, g) for g in font.getGlyphOrder()[4:])  # .notdef etc. aside


def test_subset_cache_made_once_per_font_and_patch_restored(monkeypatch):
    import io

    import matplotlib.pyplot as plt
    from matplotlib.backends import _backend_pdf_ps

    from metaanalysis.plots import fonts

    monkeypatch.setattr(fonts, "_SUBSET_BASES", {})
    calls = []  # (from the font file?, glyphs asked for)
    original = _backend_pdf_ps.get_glyphs_subset

    def counting(fontfile, glyphs):
        calls.append((isinstance(fontfile, str), len(set(glyphs))))
        return original(fontfile, glyphs)

    monkeypatch.setattr(_backend_pdf_ps, "get_glyphs_subset", counting)
    fig = plt.figure(figsize=(1, 1))
    fig.text(0.1, 0.5, "Ab 12")
    with matplotlib.rc_context({"pdf.fonttype": 42}), fonts.lean_font_subsets():
        assert _backend_pdf_ps.get_glyphs_subset is not counting
        for text in ("Ab 12", "Cd 34", "Ef 56"):
            fig.texts[0].set_text(text)
            fig.savefig(io.BytesIO(), format="pdf")
    assert _backend_pdf_ps.get_glyphs_subset is counting
    assert len(fonts._SUBSET_BASES) == 1  # DejaVu Sans
    from_file = [n for f, n in calls if f]
    assert len(from_file) == 1 and from_file[0] > 300  # the base, made once from the file
    assert [n for f, n in calls if not f] == [5, 5, 5]  # each save cut from it in memory
    with pytest.raises(KeyError), fonts.lean_font_subsets():
        raise KeyError("x")
    assert _backend_pdf_ps.get_glyphs_subset is counting  # restored after an error too


def test_ligatures_of_shaped_text_are_cut_from_the_base(monkeypatch):
    """matplotlib 3.11 shapes text (HarfBuzz): "fit", "office", "fluffy" are drawn with the ff, fi,
    fl ligature glyphs.  They are in the base subset, so such text is cut from it in memory
    like any other (before, each PDF with one of these words subset the font file again)."""
    import io

    import matplotlib.pyplot as plt
    from matplotlib.backends import _backend_pdf_ps

    from metaanalysis.plots import fonts

    monkeypatch.setattr(fonts, "_SUBSET_BASES", {})
    from_file = []
    original = _backend_pdf_ps.get_glyphs_subset

    def counting(fontfile, glyphs):
        from_file.append(isinstance(fontfile, str))
        return original(fontfile, glyphs)

    monkeypatch.setattr(_backend_pdf_ps, "get_glyphs_subset", counting)
    fig = plt.figure(figsize=(1, 1))
    fig.text(0.1, 0.5, "fit office fluffy")
    with matplotlib.rc_context({"pdf.fonttype": 42}), fonts.lean_font_subsets():
        fig.savefig(raw := io.BytesIO(), format="pdf")
    plt.close(fig)
    glyphs = {g for font in _pdf_parts(raw.getvalue())[2] for g in font.getGlyphOrder()}
    assert {"uniFB00", "fi", "fl"} <= glyphs  # the ligatures ff, fi, fl are drawn
    assert from_file[0] and not any(from_file[1:])  # the base from the file, the rest from it


def test_subset_cache_stands_aside_for_another_matplotlib(monkeypatch, tmp_path):
    """A matplotlib whose subset function has another interface (before 3.11 it took
    characters and returned a font) keeps its own: nothing is patched, files still save."""
    from matplotlib.backends import _backend_pdf_ps

    from metaanalysis.plots import fonts

    monkeypatch.setattr(_backend_pdf_ps.SubsetResults, "_fields", ("font",))
    original = _backend_pdf_ps.get_glyphs_subset
    with fonts.lean_font_subsets():
        assert _backend_pdf_ps.get_glyphs_subset is original
    (pdf,) = ma.save_figure(_text_figure(), tmp_path / "old", "pdf")
    assert b"/FontFile2" in pdf.read_bytes()


def test_warm_font_subsets_fills_the_cache(monkeypatch):
    from metaanalysis.plots import fonts

    monkeypatch.setattr(fonts, "_SUBSET_BASES", {})
    with ma.use_style():
        fonts.warm_font_subsets()
    names = {Path(k[0]).name for k in fonts._SUBSET_BASES}
    assert {"DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf"} <= names


def test_forest_saved_without_an_idle_layout_pass(tmp_path, monkeypatch):
    """A forest plot's layout engine does nothing when drawn, so savefig's extra pass to run
    it is skipped: one draw per file instead of two, the same bytes, the engine restored."""
    import matplotlib.figure

    from metaanalysis.plots import output

    fig = _figure()
    engine = fig.get_layout_engine()
    assert engine.idle
    draws = []
    original = matplotlib.figure.Figure.draw
    monkeypatch.setattr(matplotlib.figure.Figure, "draw",
                        lambda self, r: (draws.append(type(r).__name__), original(self, r))[1])
    fast = ma.save_figure(fig, tmp_path / "fast", dpi=100)
    assert len(draws) == 3  # one per format
    assert fig.get_layout_engine() is engine
    skip = output._no_idle_layout_pass
    monkeypatch.setattr(output, "_no_idle_layout_pass", lambda fig: contextlib.nullcontext())
    draws.clear()
    slow = ma.save_figure(fig, tmp_path / "slow", dpi=100)
    assert len(draws) == 6  # matplotlib's own: a layout pass, then the drawing
    for a, b in zip(fast, slow):
        assert a.read_bytes() == b.read_bytes(), a.suffix
    with pytest.raises(KeyError), skip(fig):
        assert fig.get_layout_engine() is None
        raise KeyError("x")
    assert fig.get_layout_engine() is engine  # back after an error too


def test_constrained_figures_keep_their_layout_pass(tmp_path):
    import matplotlib.pyplot as plt

    from metaanalysis.plots import output

    fig = plt.figure(layout="constrained")
    engine = fig.get_layout_engine()
    with output._no_idle_layout_pass(fig):
        assert fig.get_layout_engine() is engine  # constrained layout must run
