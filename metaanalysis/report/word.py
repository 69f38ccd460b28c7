"""Word tables (python-docx): one table per page section, notes under each table.

:func:`write_docx` writes tables the way journals ask for them in a Word
manuscript: each table in its own section (a new page, landscape when it is
wide), a caption above ("Table 2. Pooled outcomes"), header row in bold and
repeated on every page, no vertical rules, 8-9 pt text, and the notes under
the table with their markers (†‡§¶ and the letters of GRADE footnotes) as
superscripts.  The file is reproducible: fixed document properties and fixed
zip timestamps, so the same tables give the same bytes.

Examples
--------
>>> import pandas as pd, tempfile, pathlib
>>> t = DocxTable("Table 1. Included studies", pd.DataFrame({"Study": ["Chen 2022 †"]}),
...               notes=("† mean and SD estimated from the median",))
>>> path = pathlib.Path(tempfile.mkdtemp()) / "tables.docx"
>>> write_docx(path, [t]).name
'tables.docx'
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

__all__ = ["DocxTable", "docx_bytes", "write_docx"]

_FIXED_TIME = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
_MARKS = "†‡§‖¶"  # the report's data markers (study_labels.FLAG_MARKS)


@dataclass(frozen=True)
class DocxTable:
    """One table of the Word file: caption, cells (text), notes, orientation."""

    caption: str
    table: pd.DataFrame
    notes: Sequence[str] = ()
    landscape: bool | None = None  # None: landscape when the table has more than 7 columns
    font_pt: float = 8.0
    widths: Sequence[float] = field(default_factory=tuple)  # relative column widths


def _border(cell_or_table, **edges):
    """Set table borders (``top``/``bottom``/``insideH``... -> size in eighths of a point)."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    tbl = cell_or_table._tbl
    pr = tbl.tblPr
    borders = pr.find(qn("w:tblBorders"))
    if borders is None:
        borders = OxmlElement("w:tblBorders")
        pr.append(borders)
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        el = OxmlElement(f"w:{edge}")
        size = edges.get(edge, 0)
        el.set(qn("w:val"), "single" if size else "nil")
        if size:
            el.set(qn("w:sz"), str(size))
            el.set(qn("w:space"), "0")
            el.set(qn("w:color"), "000000")
        borders.append(el)


def _cell_bottom(cell, size: int = 6):
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    tc_pr = cell._tc.get_or_add_tcPr()
    b = OxmlElement("w:tcBorders")
    el = OxmlElement("w:bottom")
    el.set(qn("w:val"), "single")
    el.set(qn("w:sz"), str(size))
    el.set(qn("w:space"), "0")
    el.set(qn("w:color"), "000000")
    b.append(el)
    tc_pr.append(b)


def _repeat_header(row):
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    tr_pr = row._tr.get_or_add_trPr()
    el = OxmlElement("w:tblHeader")
    el.set(qn("w:val"), "true")
    tr_pr.append(el)


class _Runs:
    """Adds text runs to paragraphs as copies of one run python-docx made per (size, bold,
    superscript): the same XML as ``paragraph.add_run`` with those properties, without
    python-docx's per-element schema lookups (which made a 300-row table take seconds)."""

    def __init__(self):
        self._templates: dict = {}

    def _template(self, size, bold, superscript):
        key = (size, bold, superscript)
        if key not in self._templates:
            from docx.oxml import OxmlElement
            from docx.text.paragraph import Paragraph

            r = Paragraph(OxmlElement("w:p"), None).add_run("x")
            r.font.size, r.bold = size, bold
            if superscript:
                r.font.superscript = True
            self._templates[key] = r._r
        return self._templates[key]

    def add(self, p, text: str, size, bold=False, superscript=False) -> None:
        """Append a run of ``text`` to the ``w:p`` element ``p``."""
        import copy

        from docx.oxml.ns import qn
        from docx.text.paragraph import Paragraph

        if any(c in text for c in "\t\r\n"):  # tabs and breaks: python-docx's own elements
            r = Paragraph(p, None).add_run(text)
            r.font.size, r.bold = size, bold
            if superscript:
                r.font.superscript = True
            return
        r = copy.deepcopy(self._template(size, bold, superscript))
        t = r.find(qn("w:t"))
        t.text = text
        if len(text.strip()) < len(text):
            t.set(qn("xml:space"), "preserve")
        p.append(r)


def _runs(paragraph, text: str, size, bold=False, superscript_marks=True, runs=None):
    """Add ``text`` to ``paragraph`` (a python-docx paragraph or a ``w:p`` element); data
    markers become superscripts."""
    runs = runs or _Runs()
    p = getattr(paragraph, "_p", paragraph)
    buf = ""
    for ch in str(text):
        if superscript_marks and ch in _MARKS:
            if buf:
                runs.add(p, buf, size, bold)
                buf = ""
            runs.add(p, ch, size, bold, superscript=True)
        else:
            buf += ch
    if buf:
        runs.add(p, buf, size, bold)


def _note(doc, text: str, size):
    p = doc.add_paragraph()
    p.paragraph_format.space_after = 0
    mark, rest = "", str(text)
    if rest[:1] in _MARKS and rest[1:2] == " ":
        mark, rest = rest[0], rest[2:]
    elif (m := re.match(r"^([a-z]{1,3})\. ", rest)):
        mark, rest = m.group(1), rest[m.end():]
    if mark:
        r = p.add_run(mark)
        r.font.size, r.font.superscript = size, True
        rest = " " + rest
    r = p.add_run(rest)
    r.font.size = size


def _add(doc, t: DocxTable, first: bool):
    from docx.enum.section import WD_ORIENT, WD_SECTION
    from docx.shared import Mm, Pt

    df = t.table
    landscape = t.landscape if t.landscape is not None else df.shape[1] > 7
    section = doc.sections[0] if first else doc.add_section(WD_SECTION.NEW_PAGE)
    w, h = Mm(210), Mm(297)
    section.orientation = WD_ORIENT.LANDSCAPE if landscape else WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = (h, w) if landscape else (w, h)
    for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(section, side, Mm(20))
    size = Pt(t.font_pt)
    runs = _Runs()
    cap = doc.add_paragraph()
    _runs(cap, t.caption, Pt(t.font_pt + 1), bold=True, runs=runs)
    table = doc.add_table(rows=1, cols=df.shape[1])
    table.autofit = True
    _border(table, top=8, bottom=8)
    for cell, name in zip(table.rows[0].cells, df.columns):
        _runs(cell.paragraphs[0], name, size, bold=True, runs=runs)
        _cell_bottom(cell)
    _repeat_header(table.rows[0])
    tbl = table._tbl
    blank = None  # an empty row as table.add_row() makes it, copied for every data row
    for row in df.itertuples(index=False):
        if blank is None:
            blank = copy.deepcopy(table.add_row()._tr)
            tr = tbl.tr_lst[-1]
        else:
            tr = copy.deepcopy(blank)
            tbl.append(tr)
        for tc, value in zip(tr.tc_lst, row):
            _runs(tc.p_lst[0], "" if pd.isna(value) else value, size, runs=runs)
    if t.widths:
        usable = section.page_width - section.left_margin - section.right_margin
        total = float(sum(t.widths))
        for tr in tbl.tr_lst:  # cell.width of every cell of each column (no merged cells)
            for tc, rel in zip(tr.tc_lst, t.widths):
                tc.width = int(usable * rel / total)
    for n in t.notes:
        _note(doc, n, Pt(t.font_pt - 0.5))


def docx_bytes(tables: Sequence[DocxTable], title: str = "Tables") -> bytes:
    """The .docx file of ``tables`` as bytes (reproducible: fixed metadata and zip times)."""
    from docx import Document

    doc = Document()
    props = doc.core_properties
    props.author = props.last_modified_by = "metaanalysis"
    props.title = title
    props.created = props.modified = props.last_printed = _FIXED_TIME
    props.revision = 1
    for i, t in enumerate(tables):
        _add(doc, t, i == 0)
    raw = io.BytesIO()
    doc.save(raw)
    out = io.BytesIO()
    with zipfile.ZipFile(raw) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            zout.writestr(fixed, zin.read(info.filename))
    return out.getvalue()


def write_docx(path, tables: Sequence[DocxTable], title: str = "Tables") -> Path:
    """Write ``tables`` to ``path`` (see module docstring); returns the path."""
    path = Path(path)
    path.write_bytes(docx_bytes(tables, title))
    return path
