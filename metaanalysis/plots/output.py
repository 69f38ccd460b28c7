"""Publication output: the shipped style, journal presets and reproducible files.

:func:`use_style` applies ``metaanalysis.mplstyle`` (DejaVu Sans, 7 pt text,
Okabe–Ito colours, embedded TrueType fonts) only inside a ``with`` block, so
importing this package never changes a user's matplotlib settings.
:func:`save_figure` writes PDF, SVG and PNG at a journal's column width with
fixed metadata, so the same figure gives the same bytes on every run.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import matplotlib as mpl
import matplotlib.style

from metaanalysis.errors import InputError
from metaanalysis.plots.fonts import lean_font_subsets, ps_font_bounds_once
from metaanalysis.plots.textcache import cached_text_metrics

__all__ = ["OKABE_ITO", "PRESETS", "STYLE_PATH", "save_figure", "use_style", "width_inches"]

STYLE_PATH = Path(__file__).with_name("metaanalysis.mplstyle")

#: Okabe & Ito (2008) colour-blind-safe palette, in the order the style cycles it.
OKABE_ITO = {
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "green": "#009E73",
    "orange": "#E69F00",
    "purple": "#CC79A7",
    "sky": "#56B4E9",
    "yellow": "#F0E442",
    "black": "#000000",
}

#: Journal presets: final printed width and text sizes that stay readable at
#: that width (most journals ask for 6-8 pt at print size).
PRESETS: dict[str, dict] = {
    "single": {"width_mm": 89.0, "rc": {"font.size": 7, "axes.labelsize": 7,
                                        "xtick.labelsize": 6.5, "ytick.labelsize": 6.5,
                                        "legend.fontsize": 6.5}},
    "onehalf": {"width_mm": 120.0, "rc": {"font.size": 7, "axes.labelsize": 7,
                                          "xtick.labelsize": 7, "ytick.labelsize": 7,
                                          "legend.fontsize": 6.5}},
    "double": {"width_mm": 183.0, "rc": {"font.size": 8, "axes.labelsize": 8,
                                         "xtick.labelsize": 7.5, "ytick.labelsize": 7.5,
                                         "legend.fontsize": 7}},
    "screen": {"width_mm": 160.0, "rc": {"font.size": 10, "axes.labelsize": 10,
                                         "xtick.labelsize": 9, "ytick.labelsize": 9,
                                         "legend.fontsize": 9, "figure.dpi": 110}},
}

_MM_PER_INCH = 25.4

# Metadata that would otherwise carry a timestamp or the software version.
_METADATA = {
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": "metaanalysis",
            "Producer": "metaanalysis"},
    "svg": {"Date": None, "Creator": "metaanalysis"},
    "png": {"Software": None},
    "tiff": {},
    "eps": {"Creator": "metaanalysis"},
}
_FORMATS = ("pdf", "svg", "png", "tiff", "eps")
_DEFAULT_FORMATS = ("pdf", "svg", "png")


def width_inches(width) -> float:
    """Figure width in inches for ``"single"`` (89 mm), ``"onehalf"`` (120 mm),
    ``"double"`` (183 mm) or millimetres.

    Examples
    --------
    >>> round(width_inches("single"), 3)
    3.504
    >>> width_inches(254)
    10.0
    """
    if isinstance(width, str):
        if width not in PRESETS:
            raise InputError(f"width: got {width!r}; expected one of {sorted(PRESETS)} "
                             "or a width in millimetres")
        return PRESETS[width]["width_mm"] / _MM_PER_INCH
    try:
        mm = float(width)
    except (TypeError, ValueError):
        raise InputError(f"width: got {width!r}; expected 'single', 'double' or "
                         "millimetres") from None
    if not 10.0 <= mm <= 1000.0:
        raise InputError(f"width: got {width!r} mm; expected between 10 and 1000 mm")
    return mm / _MM_PER_INCH


@contextlib.contextmanager
def use_style(preset: str | None = "single", **rc) -> Iterator[None]:
    """Apply the shipped ``metaanalysis.mplstyle`` inside a ``with`` block.

    Inside the block, text is measured once per process
    (:func:`~metaanalysis.plots.textcache.cached_text_metrics`: the same figures, faster).

    Parameters
    ----------
    preset : {"single", "double", "screen"} or None
        Text sizes for the final printed width (see :data:`PRESETS`); ``None``
        uses the style's own sizes.
    **rc
        Further rcParams, e.g. ``use_style(**{"font.size": 9})``.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> with ma.use_style("double"):
    ...     pass  # figures made here use the package style
    """
    if preset is not None and preset not in PRESETS:
        raise InputError(f"preset: got {preset!r}; expected one of {sorted(PRESETS)} or None")
    styles: list = [str(STYLE_PATH)]
    if preset is not None:
        styles.append(PRESETS[preset]["rc"])
    if rc:
        styles.append(dict(rc))
    with matplotlib.style.context(styles), cached_text_metrics():
        yield


def _formats(formats) -> tuple[str, ...]:
    if isinstance(formats, str):
        formats = (formats,)
    out = []
    for f in formats:
        f = str(f).lower().lstrip(".")
        f = {"tif": "tiff", "ps": "eps"}.get(f, f)
        if f not in _FORMATS:
            raise InputError(f"formats: got {f!r}; expected any of {_FORMATS}")
        out.append(f)
    if not out:
        raise InputError(f"formats: got an empty list; expected at least one of {_FORMATS}")
    return tuple(dict.fromkeys(out))


def _write_tiff(fig, fh, dpi: int) -> None:
    """RGB TIFF (no alpha: white background), LZW-compressed, ``dpi`` recorded."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    buf.seek(0)
    with Image.open(buf) as im:
        rgb = Image.new("RGB", im.size, (255, 255, 255))
        rgb.paste(im.convert("RGBA"), mask=im.convert("RGBA").split()[3])
        rgb.save(fh, format="TIFF", compression="tiff_lzw", dpi=(dpi, dpi))


@contextlib.contextmanager
def _source_date_epoch():
    """EPS files carry a creation date unless SOURCE_DATE_EPOCH is set: fix it at 0."""
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = "0"
    try:
        yield
    finally:
        if old is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old


def _file_mode() -> int:
    """0666 less the process umask (0644 under the usual umask 022)."""
    um = os.umask(0)
    os.umask(um)
    return 0o666 & ~um


@contextlib.contextmanager
def _at_size(fig, width_in: float | None, height_in: float | None):
    """``fig`` at the asked size for the duration of the block, then as it was.

    A figure made by this package (layout engine :class:`~metaanalysis.plots.layout.Relayout`)
    is drawn again at the new width, so nothing is cropped or squeezed; any other figure
    is resized and left to its own layout engine."""
    from metaanalysis.plots.layout import Relayout

    old = tuple(fig.get_size_inches())
    engine = fig.get_layout_engine()
    if width_in is None and height_in is None:
        yield
        return
    w = old[0] if width_in is None else width_in
    relayout = isinstance(engine, Relayout)
    try:
        if relayout:
            engine.resize(fig, w, height_in)
        else:
            fig.set_size_inches(w, old[1] if height_in is None else height_in, forward=False)
        yield
    finally:
        if relayout:
            engine.resize(fig, old[0], old[1])
        else:
            fig.set_size_inches(*old, forward=False)


@contextlib.contextmanager
def _no_idle_layout_pass(fig):
    """Inside the block, a figure whose layout engine does nothing
    (:attr:`~metaanalysis.plots.layout.Relayout.idle`: a forest plot, laid out when drawn)
    has none, so that ``savefig`` does not draw it once more, without output, to run that
    engine (for PDF and SVG a second layout of every text, a fifth of a forest's save
    time).  The files are the same bytes; the engine is back after the block.  A
    matplotlib without ``Figure._layout_engine`` is left alone."""
    from metaanalysis.plots.layout import Relayout

    engine = fig.get_layout_engine()
    if not (isinstance(engine, Relayout) and engine.idle
            and getattr(fig, "_layout_engine", None) is engine):
        yield
        return
    fig._layout_engine = None
    try:
        yield
    finally:
        fig._layout_engine = engine


def save_figure(fig, path, formats: Sequence[str] | str = _DEFAULT_FORMATS, *, width=None,
                height: float | None = None, dpi: int = 600, svg_text: bool = False
                ) -> list[Path]:
    """Write ``fig`` for a journal: PDF, SVG, PNG, TIFF or EPS with reproducible bytes.

    Every file is written to a temporary file in the target folder and renamed
    into place (mode 0644 under the usual umask), so a reader never sees half a
    figure.  Timestamps and software versions are left out, SVG ids use a fixed
    hash salt and fonts are embedded (TrueType in PDF and EPS), so the same
    figure saved twice gives identical files.  The embedded font subsets leave out the
    OpenType layout tables, which no PDF or PostScript viewer reads, and are cut from a
    subset of each font made once per process
    (:func:`~metaanalysis.plots.fonts.lean_font_subsets`).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or Path
        Target without extension (``figures/forest``); an extension among
        ``formats`` is stripped.
    formats : sequence of {"pdf", "svg", "png", "tiff", "eps"}
        Default PDF, SVG and PNG.  TIFF is RGB on white with LZW compression
        at ``dpi``; EPS on request (no transparency in EPS).
    width : {"single", "onehalf", "double"} or float, optional
        Printed width: 89, 120 or 183 mm, or millimetres.  ``None`` keeps the
        figure's width.  A figure made by this package is laid out again at
        that width (text keeps its size; columns that do not fit are dropped
        with a warning) — never cropped or scaled; the figure is restored
        afterwards.
    height : float, optional
        Height in millimetres; by default the height the content needs at
        that width (forest plots) or the figure's height.
    dpi : int
        Resolution of PNG and TIFF (default 600; journals ask for at least 300).
    svg_text : bool
        Write SVG text as real ``<text>`` elements that a figure editor can
        change (``svg.fonttype="none"``; the reader needs the font, DejaVu
        Sans) instead of glyph outlines.

    Returns
    -------
    list of Path
        The files written, in the order of ``formats``.

    Examples
    --------
    >>> import metaanalysis as ma  # doctest: +SKIP
    >>> ax = ma.forest(ma.pool(df))  # doctest: +SKIP
    >>> ma.save_figure(ax.figure, "figures/forest", width="double",
    ...                formats=("pdf", "tiff"))  # doctest: +SKIP
    """
    formats = _formats(formats)
    try:
        dpi = int(dpi)
    except (TypeError, ValueError):
        raise InputError(f"dpi: got {dpi!r}; expected an integer (300 or more for print)") from None
    if dpi < 72:
        raise InputError(f"dpi: got {dpi}; expected at least 72 (300 or more for print)")
    path = Path(path)
    if path.suffix.lower().lstrip(".") in _FORMATS + ("tif", "ps"):
        path = path.with_suffix("")
    path.parent.mkdir(parents=True, exist_ok=True)
    new_w = None if width is None else width_inches(width)
    new_h = None
    if height is not None:
        try:
            new_h = float(height) / _MM_PER_INCH
        except (TypeError, ValueError):
            raise InputError(f"height: got {height!r}; expected millimetres") from None
        if not new_h > 0:
            raise InputError(f"height: got {height!r}; expected a positive height in mm")
    written: list[Path] = []
    rc = {"svg.hashsalt": "metaanalysis", "pdf.fonttype": 42, "ps.fonttype": 42,
          "svg.fonttype": "none" if svg_text else "path", "savefig.bbox": "standard"}
    mode = _file_mode()
    with _at_size(fig, new_w, new_h), mpl.rc_context(rc), lean_font_subsets(), \
            cached_text_metrics():
        for fmt in formats:
            target = path.with_name(f"{path.name}.{fmt}")
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".{fmt}",
                                       dir=str(target.parent))
            try:
                with os.fdopen(fd, "wb") as fh, _no_idle_layout_pass(fig):
                    if fmt == "tiff":
                        _write_tiff(fig, fh, dpi)
                    elif fmt == "eps":
                        with _source_date_epoch(), ps_font_bounds_once():
                            fig.savefig(fh, format="eps", metadata=dict(_METADATA["eps"]))
                    else:
                        fig.savefig(fh, format=fmt, dpi=dpi, metadata=dict(_METADATA[fmt]))
                os.chmod(tmp, mode)
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            written.append(target)
    return written
