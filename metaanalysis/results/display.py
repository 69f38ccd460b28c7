"""One printer for every result: ``summary()``, ``repr``, Jupyter's ``_repr_html_`` and the
description attached by ``to_frame()`` all come from one :class:`Display`.

A result describes itself once, in ``_display()``: a title, the method choices
(τ² estimator, how CI and tests are computed with their distribution and df, priors,
...), labelled result lines, tables and notes — every number already formatted through
:mod:`metaanalysis.formatting`.  :class:`Displayed` (the mixin of every result class)
turns that into text and HTML, so a console and a notebook always show the same
content.  The model is lifelines' ``Printer`` (one object behind ``__repr__``,
``_repr_html_`` and ``to_latex``).

Examples
--------
>>> d = Display("Random-effects model (k = 3)",
...             methods=(("τ² estimator", "DL (DerSimonian–Laird)"),),
...             body=(Lines((("Estimate", "0.3000 (SE 0.1000)"), ("", "I² = 0.0%"))),),
...             notes=("one note",))
>>> print(d.text())
Random-effects model (k = 3)
  τ² estimator: DL (DerSimonian–Laird)
Estimate: 0.3000 (SE 0.1000)
  I² = 0.0%
Note: one note
>>> d.headline()
'Random-effects model (k = 3); τ² estimator: DL (DerSimonian–Laird)'
"""

from __future__ import annotations

import html
from dataclasses import dataclass

__all__ = ["Display", "Displayed", "Lines", "Table"]


@dataclass(frozen=True)
class Lines:
    """Labelled result lines ``(label, text)``; an empty label continues the line above."""

    items: tuple


@dataclass(frozen=True)
class Table:
    """A table of already formatted strings (a DataFrame of str), with a caption."""

    caption: str
    frame: object  # pandas.DataFrame of str
    index: bool = True


@dataclass(frozen=True)
class Display:
    """What a result shows: title, method choices, body (:class:`Lines` and
    :class:`Table` blocks, in order) and notes."""

    title: str
    methods: tuple = ()
    body: tuple = ()
    notes: tuple = ()

    def headline(self) -> str:
        """The title and every method choice on one line."""
        return "; ".join([self.title, *(f"{label}: {text}" for label, text in self.methods)])

    def text(self) -> str:
        out = [self.title]
        out += [f"  {label}: {text}" for label, text in self.methods]
        for block in self.body:
            if isinstance(block, Lines):
                out += [f"{label}: {text}" if label else f"  {text}" for label, text in block.items]
            else:
                out += ["", *([block.caption] if block.caption else []), *_table_text(block)]
        out += [f"Note: {note}" for note in self.notes]
        return "\n".join(out)

    def html(self) -> str:
        e = html.escape
        left = ' style="text-align: left"'
        parts = [f'<div class="metaanalysis-result"><p><b>{e(self.title)}</b></p>']
        if self.methods:
            rows = "".join(f"<tr><th{left}>{e(label)}</th><td{left}>{e(text)}</td></tr>"
                           for label, text in self.methods)
            parts.append(f'<table class="methods">{rows}</table>')
        for block in self.body:
            if isinstance(block, Lines):
                rows = "".join(f"<tr><th{left}>{e(label)}</th><td{left}>{e(text)}</td></tr>"
                               for label, text in block.items)
                parts.append(f'<table class="results">{rows}</table>')
            else:
                if block.caption:
                    parts.append(f"<p>{e(block.caption)}</p>")
                parts.append(block.frame.to_html(index=block.index, escape=True, border=0))
        if self.notes:
            parts.append("<ul>" + "".join(f"<li>Note: {e(n)}</li>" for n in self.notes) + "</ul>")
        parts.append("</div>")
        return "".join(parts)


def _table_text(table: Table) -> list[str]:
    frame = table.frame
    cols = [str(c) for c in frame.columns]
    rows = [[str(x) for x in r] for r in frame.itertuples(index=False)]
    widths = [max([len(c)] + [len(r[j]) for r in rows]) for j, c in enumerate(cols)]
    if table.index:
        name = "" if frame.index.name is None else str(frame.index.name)
        idx = [str(i) for i in frame.index]
        iw = max([len(name)] + [len(i) for i in idx])
        head = [name.ljust(iw)] + [c.rjust(w) for c, w in zip(cols, widths)]
        lines = ["  ".join(head).rstrip()]
        lines += ["  ".join([i.ljust(iw)] + [x.rjust(w) for x, w in zip(r, widths)])
                  for i, r in zip(idx, rows)]
    else:
        lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths))]
        lines += ["  ".join(x.rjust(w) for x, w in zip(r, widths)) for r in rows]
    return lines


class Displayed:
    """Mixin of every result: ``summary()``, ``repr``/``str`` and ``_repr_html_`` from
    ``_display()``; ``to_frame()`` is ``_frame()`` with the method choices in
    ``frame.attrs["description"]``.  The displays never raise (a notebook must
    show something): on failure they show the class name and the error.
    Frozen dataclasses using it are declared with ``repr=False``.
    """

    __slots__ = ()

    def _display(self) -> Display:  # pragma: no cover - every result defines it
        raise NotImplementedError

    def _frame(self):  # pragma: no cover - every result defines it
        raise NotImplementedError

    def summary(self) -> str:
        """The result as text: method choices, numbers, notes."""
        return self._display().text()

    def to_frame(self):
        """The numbers as a DataFrame (a new one on each call); ``attrs["description"]``
        states the method choices."""
        frame = self._frame()
        try:
            frame.attrs["description"] = self._display().headline()
        except Exception:  # noqa: BLE001 -- the numbers matter more than the caption
            pass
        return frame

    def __repr__(self) -> str:
        try:
            return self.summary()
        except Exception as exc:  # noqa: BLE001 - display must not fail
            return f"<{type(self).__name__} (display failed: {exc})>"

    __str__ = __repr__

    def _repr_html_(self) -> str:
        try:
            return self._display().html()
        except Exception:  # noqa: BLE001 - display must not fail; repr never raises
            return f"<pre>{html.escape(repr(self))}</pre>"
