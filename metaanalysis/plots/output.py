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
}
_FORMATS = ("pdf", "svg", "png")


def width_inches(width) -> float:
    """Figure width in inches for ``"single"`` (89 mm), ``"double"`` (183 mm) or millimetres.

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
    with matplotlib.style.context(styles):
        yield


def _formats(formats) -> tuple[str, ...]:
    if isinstance(formats, str):
        formats = (formats,)
    out = []
    for f in formats:
        f = str(f).lower().lstrip(".")
        if f not in _FORMATS:
            raise InputError(f"formats: got {f!r}; expected any of {_FORMATS}")
        out.append(f)
    if not out:
        raise InputError("formats: got an empty list; expected at least one of pdf, svg, png")
    return tuple(dict.fromkeys(out))


def save_figure(fig, path, formats: Sequence[str] | str = _FORMATS, *, width=None,
                height: float | None = None, dpi: int = 600) -> list[Path]:
    """Write ``fig`` as PDF, SVG and PNG with reproducible bytes.

    Every file is written to a temporary file in the target folder and renamed
    into place, so a reader never sees half a figure.  Timestamps and software
    versions are left out of the metadata, SVG ids use a fixed hash salt and
    fonts are embedded (TrueType in PDF, glyph paths in SVG), so the same
    figure saved twice gives identical files.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or Path
        Target without extension (``figures/forest``); an extension among
        ``formats`` is stripped.
    formats : sequence of {"pdf", "svg", "png"}
    width : {"single", "double"} or float, optional
        Printed width: journal single column (89 mm), double column (183 mm)
        or millimetres.  ``None`` keeps the figure's width.  The figure's size
        is restored after saving.
    height : float, optional
        Height in millimetres; by default the figure's height is kept (forest
        plots size their height from the number of rows).
    dpi : int
        Resolution of the PNG (default 600; journals ask for at least 300).

    Returns
    -------
    list of Path
        The files written, in the order of ``formats``.

    Examples
    --------
    >>> import metaanalysis as ma  # doctest: +SKIP
    >>> ax = ma.forest(ma.pool(df))  # doctest: +SKIP
    >>> ma.save_figure(ax.figure, "figures/forest", width="double")  # doctest: +SKIP
    """
    formats = _formats(formats)
    try:
        dpi = int(dpi)
    except (TypeError, ValueError):
        raise InputError(f"dpi: got {dpi!r}; expected an integer (300 or more for print)") from None
    if dpi < 72:
        raise InputError(f"dpi: got {dpi}; expected at least 72 (300 or more for print)")
    path = Path(path)
    if path.suffix.lower().lstrip(".") in _FORMATS:
        path = path.with_suffix("")
    path.parent.mkdir(parents=True, exist_ok=True)

    old_size = tuple(fig.get_size_inches())
    new_w = old_size[0] if width is None else width_inches(width)
    if height is None:
        new_h = old_size[1]
    else:
        try:
            new_h = float(height) / _MM_PER_INCH
        except (TypeError, ValueError):
            raise InputError(f"height: got {height!r}; expected millimetres") from None
        if new_h <= 0:
            raise InputError(f"height: got {height!r}; expected a positive height in mm")
    written: list[Path] = []
    rc = {"svg.hashsalt": "metaanalysis", "pdf.fonttype": 42, "ps.fonttype": 42,
          "svg.fonttype": "path", "savefig.bbox": "standard"}
    try:
        fig.set_size_inches(new_w, new_h, forward=False)
        with mpl.rc_context(rc):
            for fmt in formats:
                target = path.with_name(f"{path.name}.{fmt}")
                fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".{fmt}",
                                           dir=str(target.parent))
                try:
                    with os.fdopen(fd, "wb") as fh:
                        fig.savefig(fh, format=fmt, dpi=dpi, metadata=dict(_METADATA[fmt]))
                    os.replace(tmp, target)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    raise
                written.append(target)
    finally:
        fig.set_size_inches(*old_size, forward=False)
    return written
