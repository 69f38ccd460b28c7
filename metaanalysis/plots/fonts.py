"""Embedding fonts in PDF and EPS files quickly, with the bytes matplotlib would write.

matplotlib embeds a subset of every TrueType font a figure uses (``pdf.fonttype: 42``),
made by fontTools from the font file on disk at every save: about 70 ms per font and file
for DejaVu Sans, most of it decompiling tables of the whole font (``cmap``, ``post``,
``glyf``, ``hmtx``, 6000 glyphs).  The context managers here make that cheaper without
changing what is written:

* :func:`lean_font_subsets` drops the OpenType layout tables (:data:`LAYOUT_TABLES`) as
  fontTools opens a font for subsetting: no PDF or PostScript viewer reads them.
* Inside it, each font is subset once per process to a fixed base set of glyphs (the
  characters of :data:`BASE_CHARACTERS` the font has, with the glyphs they are built
  from), kept in memory, and every later subset of that font is cut from that small
  font: the same glyphs, outlines, tables and bytes as a
  subset made from the font file (the tests compare them byte for byte), in a seventh of
  the time.  A figure with a glyph outside the base set is subset from the file as before.
* :func:`ps_font_bounds_once`: EPS font bounding boxes computed once per font.

Each patch of matplotlib or fontTools lives only inside its ``with`` block and is
restored after it; a matplotlib whose internals differ (before 3.11, the subset function
took characters, not glyph indices) keeps its own subsetting.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Iterator

__all__ = ["BASE_CHARACTERS", "LAYOUT_TABLES", "lean_font_subsets", "ps_font_bounds_once",
           "warm_font_subsets"]

#: OpenType tables left out of the font subsets embedded in PDF and EPS files: glyph
#: substitution and positioning (GSUB, GPOS, GDEF, kern, JSTF, BASE, MATH).  A PDF or
#: PostScript page places every glyph explicitly (matplotlib has already applied kerning),
#: so a viewer never reads these tables; fontTools would otherwise decompile DejaVu's large
#: GSUB/GPOS on every save (more than half the time of writing a PDF).
LAYOUT_TABLES = ("GSUB", "GPOS", "GDEF", "kern", "JSTF", "BASE", "MATH")

_RANGES = (
    (0x0020, 0x007E),  # Basic Latin
    (0x00A0, 0x017F),  # Latin-1 Supplement, Latin Extended-A (author names)
    (0x0300, 0x036F),  # combining diacritical marks (x̂)
    (0x0391, 0x03C9),  # Greek letters (τ, μ, Δ, I²'s companions)
    (0x1D62, 0x1D6A),  # subscript letters (θᵢ)
    (0x2010, 0x2044),  # dashes, quotes, daggers (†‡‖), ellipsis, per mille, prime
    (0x2070, 0x209C),  # superscripts and subscripts
    (0x2190, 0x21FF),  # arrows
    (0x2200, 0x22FF),  # mathematical operators (− ± ≤ ≥ ≈ √ ∞ ×)
    (0x25A0, 0x25FF),  # geometric shapes (■ ○ ● ▲ ◆: legend and risk-of-bias marks)
    (0x2713, 0x2718),  # check and cross marks
    (0xFB00, 0xFB06),  # ligatures ff fi fl ffi ffl (text shaping since matplotlib 3.11 uses them)
)
#: Characters whose glyphs every cached base subset holds (when the font has them).
BASE_CHARACTERS = "".join(chr(c) for lo, hi in _RANGES for c in range(lo, hi + 1))

#: font -> (original glyph ids in the base, original id -> base id, base font bytes)
_SUBSET_BASES: dict = {}
_FONT_BOUNDS: dict = {}


@contextlib.contextmanager
def lean_font_subsets() -> Iterator[None]:
    """Inside the block, the fonts fontTools loads for subsetting (the fonts matplotlib
    embeds in PDF and EPS) lose the layout tables :data:`LAYOUT_TABLES` as they are
    opened, before anything reads them, and each font's subsets are cut from a base
    subset made once per process (see the module docstring); ``fontTools.subset.load_font``
    and matplotlib's ``get_glyphs_subset`` are restored after.

    The embedded fonts keep every glyph outline, metric, cmap and hinting table, so the
    text of the file is the same; only tables no PDF or PostScript viewer reads are gone
    (and the glyph variants only they referred to).

    Examples
    --------
    >>> from fontTools import subset
    >>> original = subset.load_font
    >>> with lean_font_subsets():
    ...     subset.load_font is original
    False
    >>> subset.load_font is original
    True
    """
    from fontTools import subset

    original = subset.load_font

    def load_font(*args, **kwargs):
        font = original(*args, **kwargs)
        for tag in LAYOUT_TABLES:
            if tag in font:
                del font[tag]  # lazily loaded: removed without being decompiled
        return font

    subset.load_font = load_font
    try:
        with _subsets_from_base():
            yield
    finally:
        subset.load_font = original


def _pdf_ps():
    """matplotlib's shared PDF/PS module when its subset function has the interface the
    cache knows (``get_glyphs_subset(fontfile, glyph_ids)`` giving a context manager of
    ``SubsetResults(font, glyph_index_map)``, matplotlib 3.11), else None."""
    try:
        from matplotlib.backends import _backend_pdf_ps as pdf_ps
    except ImportError:  # pragma: no cover - every supported matplotlib has it
        return None
    fields = getattr(getattr(pdf_ps, "SubsetResults", None), "_fields", ())
    if fields != ("font", "glyph_index_map") or not hasattr(pdf_ps, "get_glyphs_subset"):
        return None
    return pdf_ps


class _InMemoryFont(io.BytesIO):
    """A font file in memory, as matplotlib passes font paths (with a face index)."""

    face_index = 0


def _font_key(fontfile) -> tuple:
    path = os.fspath(fontfile)
    st = os.stat(path)
    return (path, getattr(fontfile, "face_index", 0), st.st_size, st.st_mtime_ns,
            LAYOUT_TABLES)


def _subset_base(fontfile, get_glyphs_subset) -> tuple:
    """``(glyph ids, id map, font bytes)`` of the base subset of ``fontfile``: the glyphs
    of :data:`BASE_CHARACTERS` it has (and those they are built from), made once per
    process with matplotlib's ``get_glyphs_subset`` inside :func:`lean_font_subsets`.

    ``glyph ids`` are the original font's ids the base holds, ``id map`` maps them to the
    base font's ids.
    """
    key = _font_key(fontfile)
    if key not in _SUBSET_BASES:
        from matplotlib.font_manager import get_font

        cmap = get_font(fontfile).get_charmap()
        gids = {cmap[ord(c)] for c in BASE_CHARACTERS if ord(c) in cmap} | {0}
        with get_glyphs_subset(fontfile, gids) as base:
            data = io.BytesIO()
            base.font.save(data, reorderTables=False)  # as matplotlib's font_as_file
            index = dict(base.glyph_index_map)
        _SUBSET_BASES[key] = (frozenset(index), index, data.getvalue())
    return _SUBSET_BASES[key]


@contextlib.contextmanager
def _subsets_from_base() -> Iterator[None]:
    """matplotlib's ``get_glyphs_subset`` cuts every subset from the font's cached base
    subset (see the module docstring) inside the block."""
    pdf_ps = _pdf_ps()
    if pdf_ps is None:
        yield
        return
    original = pdf_ps.get_glyphs_subset

    @contextlib.contextmanager
    def from_base(index, data, glyphs):
        with original(_InMemoryFont(data), {index[g] for g in glyphs}) as cut:
            back = {b: g for g, b in index.items()}
            yield pdf_ps.SubsetResults(cut.font, {back[b]: new for b, new
                                                  in cut.glyph_index_map.items()})

    def get_glyphs_subset(fontfile, glyphs):
        glyphs = set(glyphs)
        try:
            have, index, data = _subset_base(fontfile, original)
        except (OSError, KeyError, ValueError, RuntimeError):
            return original(fontfile, glyphs)  # an unusual font: matplotlib's own way
        if not glyphs <= have:
            return original(fontfile, glyphs)
        return from_base(index, data, glyphs)

    pdf_ps.get_glyphs_subset = get_glyphs_subset
    try:
        yield
    finally:
        pdf_ps.get_glyphs_subset = original


def warm_font_subsets() -> None:
    """Make the base subsets of the fonts the current style draws text with (regular,
    bold, italic, mathtext) in this process now, e.g. before forking processes that save
    figures: they inherit them instead of each making them again.

    Examples
    --------
    >>> from metaanalysis.plots.output import use_style
    >>> with use_style():
    ...     warm_font_subsets()
    """
    import matplotlib
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1))
    for i, kw in enumerate(({}, {"weight": "bold"}, {"style": "italic"},
                            {"weight": "bold", "style": "italic"})):
        fig.text(0.1, 0.2 * i, "Aa 1", **kw)
    fig.text(0.5, 0.5, r"$\tau^2 \mu \mathbf{x} \leq \sqrt{2}$")
    with matplotlib.rc_context({"pdf.fonttype": 42}), lean_font_subsets():
        fig.savefig(io.BytesIO(), format="pdf")


@contextlib.contextmanager
def ps_font_bounds_once():
    """EPS: matplotlib's Type 42 writer measures the bounding box of every glyph of each
    font it embeds (``backend_ps._bounds``, all ~6000 DejaVu glyphs drawn with a
    bounds pen: about 90% of an EPS file's time).  The box depends only on the font
    file, so it is computed once per font per process: the same bytes, faster.  Keyed
    by the font's bytes and table offsets (one face of a collection); a matplotlib
    without ``_bounds`` is left alone."""
    from matplotlib.backends import backend_ps

    original = getattr(backend_ps, "_bounds", None)
    if original is None:
        yield
        return

    def bounds(font):
        reader = getattr(font, "reader", None)
        data = getattr(getattr(reader, "file", None), "getvalue", None)
        if data is None:
            return original(font)
        key = (hashlib.sha256(data()).hexdigest(),
               tuple(sorted((tag, e.offset) for tag, e in reader.tables.items())))
        if key not in _FONT_BOUNDS:
            _FONT_BOUNDS[key] = original(font)
        return _FONT_BOUNDS[key]

    backend_ps._bounds = bounds
    try:
        yield
    finally:
        backend_ps._bounds = original
