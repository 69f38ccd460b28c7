r"""LaTeX tables that fit the text width: ``tabularx`` in ``threeparttable`` with notes.

:func:`latex_table` writes a ``table`` (or, ``landscape=True``, a
``sidewaystable``) whose ``tabularx`` is exactly ``\linewidth`` wide: columns
with long text are ``X`` columns (wrapped, ragged right), short ones keep
their natural width.  Notes go under the table in a ``tablenotes`` list, with
the data markers as LaTeX symbols (``†`` → ``\textdagger``, ``‡`` →
``\textdaggerdbl``, ``§`` → ``\S``, ``‖`` → ``\|``, ``¶`` → ``\P``).  The output is plain
ASCII, so it compiles with pdfLaTeX without ``inputenc`` tricks.

Preamble needed: ``\usepackage{booktabs,tabularx,threeparttable}`` (and
``rotating`` for landscape tables); :data:`PREAMBLE` lists them.

Examples
--------
>>> import pandas as pd
>>> tex = latex_table(pd.DataFrame({"Study": ["Chen 2022 †"], "I²": ["96%"]}),
...                   caption="Results", label="tab:r", notes=["† estimated mean"])
>>> "\\begin{tabularx}{\\linewidth}" in tex, "Chen 2022 \\textdagger{}" in tex
(True, True)
>>> tex.isascii()
True
"""

from __future__ import annotations

import math
import re
import unicodedata

import pandas as pd

__all__ = ["MARKERS", "PREAMBLE", "latex_escape", "latex_table"]

#: data markers that label a table note (the report's flags, see study_labels.FLAG_MARKS)
MARKERS = "†‡§‖¶"
_LETTER = re.compile(r"^([a-z]{1,3})\. ")  # GRADE footnote letters: "a. ", "aa. "

PREAMBLE = (r"\usepackage{booktabs}", r"\usepackage{tabularx}", r"\usepackage{threeparttable}",
            r"\usepackage{rotating}", r"\usepackage{amssymb}")

_MAP = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
        "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
        "|": r"\textbar{}", "\"": "''",
        "†": r"\textdagger{}", "‡": r"\textdaggerdbl{}", "§": r"\S{}", "¶": r"\P{}", "‖": r"$\|$",
        "τ": r"$\tau$", "μ": r"$\mu$", "σ": r"$\sigma$", "χ": r"$\chi$", "²": r"$^{2}$",
        "³": r"$^{3}$", "≥": r"$\geq$", "≤": r"$\leq$", "±": r"$\pm$", "×": r"$\times$",
        "−": r"$-$", "–": "--", "—": "---", "→": r"$\rightarrow$", "←": r"$\leftarrow$",
        "⊕": r"$\oplus$", "◯": r"$\bigcirc$", "°": r"$^{\circ}$", "·": r"$\cdot$",
        "…": r"\ldots{}", "‘": "`", "’": "'", "“": "``", "”": "''", "≈": r"$\approx$",
        "\u00a0": "~", "\u200b": r"\allowbreak{}", "\u00ad": r"\-", "\u2009": r"\,", "\u202f": r"\,", "•": r"\textbullet{}",
        "Å": r"\AA{}", "å": r"\aa{}", "ø": r"{\o}", "Ø": r"{\O}", "ß": r"{\ss}",
        "ı": r"{\i}", "ł": r"{\l}", "Ł": r"{\L}", "æ": r"{\ae}", "Æ": r"{\AE}"}
_ACCENTS = {"\u0301": "'", "\u0300": "`", "\u0302": "^", "\u0308": '"', "\u0303": "~",
            "\u0327": "c", "\u030c": "v", "\u0304": "="}


def _char(ch: str) -> str:
    if ch in _MAP:
        return _MAP[ch]
    if ch.isascii():
        return ch
    decomposed = unicodedata.normalize("NFD", ch)
    base, marks = decomposed[0], decomposed[1:]
    if base.isascii() and len(marks) == 1 and marks in _ACCENTS:
        acc = _ACCENTS[marks]
        return f"\\{acc}{{{base}}}" if acc.isalpha() else f"{{\\{acc}{base}}}"
    return "?"  # never reached for the package's own text; keeps the output ASCII


def latex_escape(text) -> str:
    r"""Escape LaTeX specials and write every non-ASCII character as a LaTeX command.

    >>> latex_escape("I² = 96% (τ = 1.2), Müller † ≥ 5")
    'I$^{2}$ = 96\\% ($\\tau$ = 1.2), M{\\"u}ller \\textdagger{} $\\geq$ 5'
    """
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ""
    return "".join(_char(ch) for ch in str(text))


def _breakable(text: str) -> str:
    """``text`` with a zero-width break allowed after every "/", "_" and "=" (DOIs, URLs,
    "a/b"), and after "." and "-" (before "(") inside any word longer than 12 characters (DOI
    suffixes such as ``j.jvir.2014.06.007`` or ``02656736.2023.2241687``), and a soft hyphen
    in words of 14 or more letters."""
    text = str(text).replace("/", "/\u200b").replace("_", "_\u200b").replace("=", "=\u200b")
    text = _PLAIN_LONG_WORD.sub(lambda m: _soft_hyphen(m.group()), text)
    return _LONG_WORD.sub(lambda m: re.sub(r"(?<=\w)\(", "\u200b(",
                                           re.sub(r"([.-])(?=\w)", "\\1\u200b", m.group())), text)


_LONG_WORD = re.compile(r"[^\s\u200b]{13,}")
_PLAIN_LONG_WORD = re.compile(r"\b[^\W\d_]{14,}\b")


def _soft_hyphen(word: str) -> str:
    """A word of 14 or more letters with a soft hyphen after its middle consonant--vowel
    join, for words TeX's patterns do not break (``oligometastatic``)."""
    mid = len(word) // 2
    for i in sorted(range(4, len(word) - 4), key=lambda j: abs(j - mid)):
        if word[i - 1].lower() not in "aeiouy" and word[i].lower() in "aeiouy":
            return word[:i - 1] + "\u00ad" + word[i - 1:]
    return word[:mid] + "\u00ad" + word[mid:]


def _cell(x) -> str:
    """A cell's text escaped, with the breaks of :func:`_breakable`."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return latex_escape(_breakable(x))


def _spec(df: pd.DataFrame, wrap_chars: int) -> str:
    r"""Column types: ``l`` for short columns, ``X`` for the others, each ``X`` as wide as
    its content asks (longest word, up to 40 characters of its longest cell), the
    ``\hsize`` factors summing to the number of ``X`` columns as tabularx requires."""
    texts = [[str(c)] + ["" if pd.isna(x) else str(x) for x in df[c]] for c in df.columns]
    longest = [max(len(x) for x in col) for col in texts]
    wide = [n > wrap_chars for n in longest]
    if not any(wide):  # tabularx needs one X column
        wide[max(range(len(longest)), key=longest.__getitem__)] = True
    weight = []
    for col, n, w in zip(texts, longest, wide):
        if w:
            word = max((len(t) for x in col for t in
                        re.split(r"[\s\u200b\u00ad]+", _breakable(x)) if t), default=1)
            weight.append(max(1.5 * (word + 1), min(n, 30)))
    scale = len(weight) / sum(weight)
    out, i = [], 0
    for w in wide:
        if w:
            out.append(r">{\raggedright\arraybackslash\hspace{0pt}\hsize=%.3f\hsize}X"
                       % (weight[i] * scale))
            i += 1
        else:
            out.append("l")
    return "".join(out)


def latex_table(df: pd.DataFrame, caption: str | None = None, label: str | None = None,
                notes=(), *, landscape: bool = False, size: str = "footnotesize",
                wrap_chars: int = 16) -> str:
    r"""A table as wide as the text: ``threeparttable`` + ``tabularx`` + ``booktabs``.

    Parameters
    ----------
    df : DataFrame
        Text cells (formatted already); the header is the column names.
    caption, label : str, optional
        ``\caption`` and ``\label``.
    notes : sequence of str
        Lines under the table (``tablenotes``); a line starting with a marker
        (†‡§¶ or a letter followed by ". ") gets it as its item label.
    landscape : bool
        ``sidewaystable`` (package ``rotating``) for very wide tables.
    size : str
        Font size command for the table (``footnotesize``, ``scriptsize``, ``small``).
    wrap_chars : int
        Columns with a cell longer than this wrap (``X`` columns).

    Returns
    -------
    str
        ASCII text of the table environment.
    """
    env = "sidewaystable" if landscape else "table"
    lines = [f"\\begin{{{env}}}[htbp]", r"\centering", f"\\{size}"]
    if df.shape[1] > 6:  # narrower gaps between many columns
        lines.append(r"\setlength{\tabcolsep}{3pt}")
    lines.append(r"\begin{threeparttable}")
    if caption:
        lines.append(r"\caption{" + latex_escape(caption) + "}")
    if label:
        lines.append(r"\label{" + label + "}")
    lines += [r"\begin{tabularx}{\linewidth}{" + _spec(df, wrap_chars) + "}", r"\toprule",
              " & ".join(_cell(c) for c in df.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(_cell(x) for x in row) + r" \\"
              for row in df.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabularx}"]
    notes = [n for n in notes if str(n).strip()]
    if notes:
        lines += [r"\begin{tablenotes}", r"\footnotesize"]
        for n in notes:
            n = str(n)
            mark = ""
            if n[:1] in MARKERS and n[1:2] == " ":
                mark, n = n[0], n[2:]
            elif (m := _LETTER.match(n)):
                mark, n = m.group(1), n[m.end():]
            lines.append(f"\\item[{latex_escape(mark)}] {latex_escape(n)}")
        lines.append(r"\end{tablenotes}")
    lines += [r"\end{threeparttable}", f"\\end{{{env}}}"]
    return "\n".join(lines)
