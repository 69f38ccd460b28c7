"""Text display shared by result objects that print themselves with ``summary()``.

One printer behind ``repr`` and Jupyter's ``_repr_html_``, so every result
shows the same text (with its method choices) in a console and a notebook.
"""

from __future__ import annotations

import html


class TextDisplay:
    """Mixin: ``__repr__`` is ``summary()``; ``_repr_html_`` is that text in a
    ``<pre>`` block followed by ``_html_extra()`` (e.g. a table).

    ``_repr_html_`` never raises (a notebook must still show something): if the
    display fails it shows the class name.  Frozen dataclasses using this mixin
    are declared with ``repr=False`` so the dataclass does not replace
    ``__repr__``.

    Examples
    --------
    >>> class Note(TextDisplay):
    ...     def summary(self):
    ...         return "τ² = 0"
    >>> Note()._repr_html_()
    '<pre>τ² = 0</pre>'
    """

    __slots__ = ()

    def summary(self) -> str:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def _html_extra(self) -> str:
        return ""

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        try:
            return f"<pre>{html.escape(self.summary())}</pre>" + self._html_extra()
        except Exception:  # noqa: BLE001 - display must not fail
            return f"<pre>{type(self).__name__}</pre>"
