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


def _prop(measure) -> bool:
    return measure in PROPORTIONS or measure == "RD"


def display_results(df: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Formatted results table: one row per analysis, text cells.

    Parameters
    ----------
    df : DataFrame
        :meth:`PlanResults.results_table` (columns ``outcome, window, days,
        unit, k, n, measure, model, estimate, ci_lb, ci_ub, pi_lb, pi_ub,
        tau2, i2, note``; optionally ``quantity``, ``tau``, ``pi_outside_scale``,
        ``relative_reduction_pct``, ``study_labels``).
    level : float
        Confidence level, for the column headers.

    Returns
    -------
    DataFrame of str
        One study (k = 1) keeps its own estimate and CI, with the model cell
        saying it was not pooled; a prediction interval beyond the scale is
        marked "(beyond scale)".

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
        prop = _prop(r["measure"])
        est = not _is_nan(r["estimate"])
        pooled = est and int(r["k"]) >= 2
        window = r["window"] if not r["days"] or _is_nan(r["days"]) else f"{r['window']} ({r['days']} d)"
        quantity = r.get("quantity", "")
        pi = _interval(r["pi_lb"], r["pi_ub"], prop) if pooled else "—"
        if pooled and bool(r.get("pi_outside_scale", False)):
            pi += " (beyond scale)"
        row = {"Outcome": r["outcome"] + (f" ({quantity})" if isinstance(quantity, str)
                                          and quantity else ""),
               "Window": window, "Unit": r["unit"], "k": str(int(r["k"])), "n": str(int(r["n"])),
               "Estimate": _est(r["estimate"], prop),
               f"{lv} CI": _interval(r["ci_lb"], r["ci_ub"], prop) if est else "—",
               f"{lv} PI": pi,
               "τ": num(r["tau"], 3) if pooled and "tau" in r else
               (num(r["tau2"] ** 0.5, 3) if pooled and not _is_nan(r["tau2"]) else "—"),
               "I²": pct(r["i2"]) if pooled else "—",
               "Model": r["model"] if pooled else (f"not pooled: {r['note']}" if r["note"]
                                                    else "not pooled")}
        rel = r.get("relative_reduction_pct", float("nan"))
        if "relative_reduction_pct" in df.columns:
            row["Relative reduction"] = "—" if _is_nan(rel) else f"{num(rel, 0)}%"
        if "study_labels" in df.columns:
            row["Studies"] = r["study_labels"] or "—"
        rows.append(row)
    return pd.DataFrame(rows)


def display_sensitivity(df: pd.DataFrame, measures: dict) -> pd.DataFrame:
    """Formatted sensitivity table; ``measures`` maps outcome -> measure code.

    Absolute values (``quantity`` "absolute value...") are means whatever the
    outcome's measure.  With a ``flags`` column (:meth:`PlanResults.sensitivity_table`)
    the table gets an "Estimated/assumed data" column naming, per marker, the
    studies whose data were estimated or assumed in that analysis (†: mean and
    SD from a median; ‡: "median ± SD" used as mean ± SD; §: assumed n; ‖:
    assumed unit or definition; ¶: assumed denominator or count); ``changed``,
    ``studies_in`` and ``studies_out`` say what the row changed.
    """
    rows = []
    for _, r in df.iterrows():
        quantity = r.get("quantity", "")
        absolute = isinstance(quantity, str) and quantity.startswith("absolute")
        prop = _prop(measures.get(r["outcome"])) and not absolute
        row = {"Outcome": r["outcome"] + (f" ({quantity})" if isinstance(quantity, str)
                                          and quantity else ""),
               "Window": r["window"], "Unit": r["unit"], "Analysis": r["analysis"],
               "k": str(int(r["k"])), "n": str(int(r["n"])),
               "Estimate": _est(r["estimate"], prop),
               "CI": _interval(r["ci_lb"], r["ci_ub"], prop),
               "τ²": num(r["tau2"], 4), "I²": pct(r["i2"]), "Note": r["note"] or ""}
        for col, head in (("studies_in", "Studies in"), ("studies_out", "Studies out")):
            if col in df.columns:
                v = r[col]
                row[head] = v if isinstance(v, str) and v else "—"
        if "flags" in df.columns:
            f = r["flags"]
            row["Estimated/assumed data"] = f if isinstance(f, str) and f else "—"
        rows.append(row)
    return pd.DataFrame(rows)


def display_subgroups(df: pd.DataFrame) -> pd.DataFrame:
    """Formatted subgroup table (:meth:`PlanResults.subgroup_table`): one row per modality."""
    from metaanalysis.formatting import pval

    rows = []
    for _, r in df.iterrows():
        prop = _prop(r["measure"])
        rows.append({"Outcome": r["outcome"] + (f" ({r['quantity']})" if r["quantity"] else ""),
                     "Window": r["window"], "Unit": r["unit"], "Modality": r["modality"],
                     "k": str(int(r["k"])), "Studies": r["studies"],
                     "Estimate": _est(r["estimate"], prop),
                     "CI": _interval(r["ci_lb"], r["ci_ub"], prop),
                     "Q-between": f"Q({int(r['q_between_df'])}) = {num(r['q_between'], 2)}, "
                                  f"p = {pval(r['q_between_p'])}",
                     "Model": r["model"]})
    return pd.DataFrame(rows, columns=["Outcome", "Window", "Unit", "Modality", "k", "Studies",
                                       "Estimate", "CI", "Q-between", "Model"])


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
