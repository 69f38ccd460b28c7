"""Result tables as CSV, Markdown and LaTeX (no file system state, no timestamps).

:func:`display_results` and :func:`display_sensitivity` turn the tables of
:class:`metaanalysis.report.analysis.PlanResults` into rows of formatted text (every
number through :mod:`metaanalysis.formatting`; proportions as percentages);
:func:`to_markdown`, :func:`to_latex` and :func:`to_csv_text` write any
DataFrame deterministically (same table, same bytes).

Examples
--------
>>> import pandas as pd
>>> print(to_markdown(pd.DataFrame({"a": ["x|y"], "b": ["1.0"]})))
| a | b |
|---|---|
| x\\|y | 1.0 |
"""

from __future__ import annotations

import math
import re

import pandas as pd

from metaanalysis.effects.transforms import PROPORTION_MEASURES as PROPORTIONS
from metaanalysis.formatting import num, pct


def _is_nan(x) -> bool:
    try:
        return math.isnan(float(x))
    except (TypeError, ValueError):
        return False


def _est(x, prop: bool) -> str:
    if _is_nan(x):
        return "—"
    return f"{num(100 * x, 1)}%" if prop else num(x, 2)


def _interval(lb, ub, prop: bool) -> str:
    if _is_nan(lb) and _is_nan(ub):
        return "—"
    return f"{_est(lb, prop)} to {_est(ub, prop)}"


def display_results(df: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Formatted results table: one row per analysis, text cells.

    Parameters
    ----------
    df : DataFrame
        :meth:`PlanResults.results_table` (columns ``outcome, window, days,
        unit, k, n, measure, model, estimate, ci_lb, ci_ub, pi_lb, pi_ub,
        tau2, i2, note``).
    level : float
        Confidence level, for the column headers.

    Returns
    -------
    DataFrame of str

    Examples
    --------
    >>> import pandas as pd
    >>> row = dict(outcome="leak", window="any", days="", unit="lesions", k=3, n=288,
    ...            measure="PLO", model="GLMM", estimate=0.29, ci_lb=0.24, ci_ub=0.35,
    ...            pi_lb=0.24, pi_ub=0.35, tau2=0.0, i2=0.0, note="")
    >>> display_results(pd.DataFrame([row])).iloc[0]["Estimate"]
    '29.0%'
    """
    lv = f"{100 * level:g}%"
    rows = []
    for _, r in df.iterrows():
        prop = r["measure"] in PROPORTIONS
        pooled = not _is_nan(r["estimate"])
        window = r["window"] if not r["days"] else f"{r['window']} ({r['days']} d)"
        rows.append({
            "Outcome": r["outcome"], "Window": window, "Unit": r["unit"],
            "k": str(int(r["k"])), "n": str(int(r["n"])),
            "Estimate": _est(r["estimate"], prop),
            f"{lv} CI": _interval(r["ci_lb"], r["ci_ub"], prop) if pooled else "—",
            f"{lv} PI": _interval(r["pi_lb"], r["pi_ub"], prop) if pooled else "—",
            "τ²": num(r["tau2"], 4) if pooled else "—",
            "I²": pct(r["i2"]) if pooled else "—",
            "Model": r["model"] if pooled else f"not pooled: {r['note']}",
        })
        if "study_labels" in df.columns:
            rows[-1]["Studies"] = r["study_labels"] or "—"
    return pd.DataFrame(rows)


def display_sensitivity(df: pd.DataFrame, measures: dict) -> pd.DataFrame:
    """Formatted sensitivity table; ``measures`` maps outcome -> measure code.

    With a ``flags`` column (:meth:`PlanResults.sensitivity_table`) the table
    gets an "Estimated/assumed data" column naming, per marker, the studies
    whose data were estimated or assumed in that analysis (†: mean and SD from
    a median; ‡: "median ± SD" used as mean ± SD; §: assumed n; ¶: assumed
    denominator).
    """
    rows = []
    for _, r in df.iterrows():
        prop = measures.get(r["outcome"]) in PROPORTIONS
        rows.append({
            "Outcome": r["outcome"], "Window": r["window"], "Unit": r["unit"],
            "Analysis": r["analysis"], "k": str(int(r["k"])), "n": str(int(r["n"])),
            "Estimate": _est(r["estimate"], prop),
            "CI": _interval(r["ci_lb"], r["ci_ub"], prop),
            "τ²": num(r["tau2"], 4), "I²": pct(r["i2"]), "Note": r["note"] or "",
        })
        if "flags" in df.columns:
            f = r["flags"]
            rows[-1]["Estimated/assumed data"] = f if isinstance(f, str) and f else "—"
    return pd.DataFrame(rows)


def csv_safe(cell):
    """A text cell that a spreadsheet would run as a formula (``=...``, ``+``, ``-``, ``@``,
    tab, carriage return) gets a leading ``'``, the usual guard against CSV formula
    injection from text in the study files; numbers and other text are unchanged.

    Examples
    --------
    >>> csv_safe("=SUM(A1:A9)"), csv_safe("-1.5"), csv_safe("Chen 2022")
    ("'=SUM(A1:A9)", '-1.5', 'Chen 2022')
    """
    if (isinstance(cell, str) and cell[:1] in _FORMULA_START
            and not _NUMBER.fullmatch(cell)):
        return "'" + cell
    return cell


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def to_csv_text(df: pd.DataFrame) -> str:
    """CSV text with ``\\n`` line ends; floats as their shortest exact repr (deterministic);
    text cells guarded against formula injection (:func:`csv_safe`)."""
    guarded = None
    for i, dtype in enumerate(df.dtypes):
        if pd.api.types.is_numeric_dtype(dtype):
            continue
        values = df.iloc[:, i].to_numpy(dtype=object)
        if any(isinstance(v, str) and v[:1] in _FORMULA_START for v in values):
            guarded = df.copy() if guarded is None else guarded
            guarded.isetitem(i, pd.Series([csv_safe(v) for v in values], index=df.index,
                                          dtype=object))
    df = df if guarded is None else guarded
    return df.to_csv(index=False, lineterminator="\n")


def _md_cell(x) -> str:
    s = "" if x is None or (isinstance(x, float) and math.isnan(x)) else str(x)
    return s.replace("|", "\\|").replace("\n", " ")


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (pipes in cells escaped)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(_md_cell(c) for c in cols) + " |",
             "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_md_cell(x) for x in row) + " |")
    return "\n".join(lines)


def latex_escape(text) -> str:
    """Escape LaTeX specials; non-ASCII symbols as LaTeX commands
    (:func:`metaanalysis.report.latex.latex_escape`)."""
    from metaanalysis.report.latex import latex_escape as escape

    return escape(text)


def to_latex(df: pd.DataFrame, caption: str | None = None, label: str | None = None,
             notes=()) -> str:
    """A table as wide as the text (``tabularx`` in ``threeparttable``, ``booktabs`` rules;
    :func:`metaanalysis.report.latex.latex_table`), landscape when it has more than eight
    columns; markers and symbols as LaTeX commands (plain ASCII output).

    Examples
    --------
    >>> import pandas as pd
    >>> print(to_latex(pd.DataFrame({"I²": ["5%"]})).splitlines()[6])
    I$^{2}$ \\\\
    """
    from metaanalysis.report.latex import latex_table

    return latex_table(df, caption, label, notes, landscape=df.shape[1] > 8)
