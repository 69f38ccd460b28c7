"""Every number and every method name shown to a user is formatted here, and nowhere else.

Numbers: :func:`num`, :func:`pval`, :func:`ci`, :func:`pct`.  Text built from them:
:func:`p_text` (``p = 0.0019`` or ``p < 0.0001``, never ``p = < 0.0001``),
:func:`stat_text` (``t(12) = -3.95``), :func:`level_text` (``95%``).  Method names:
one name per τ² estimator (:data:`METHOD_NAMES`, :func:`method_text`) and per test
(:data:`TEST_NAMES`, :func:`inference_text`), used by every result's display.
"""

from __future__ import annotations

import math

DIGITS = 4

#: one name per τ² estimator code (and the GLMM), used in every display
METHOD_NAMES = {
    "EE": "common effect, inverse variance",
    "DL": "DerSimonian–Laird",
    "HE": "Hedges",
    "HS": "Hunter–Schmidt",
    "HSk": "Hunter–Schmidt, small-sample corrected",
    "SJ": "Sidik–Jonkman",
    "ML": "maximum likelihood",
    "REML": "restricted maximum likelihood",
    "EB": "empirical Bayes",
    "PM": "Paule–Mandel",
    "PMM": "median-unbiased Paule–Mandel",
    "GLMM": "binomial-normal GLMM, maximum likelihood",
}
#: one name per test code (``test=``), used in every display
TEST_NAMES = {
    "z": "Wald-type",
    "knha": "Knapp–Hartung",
    "adhoc": "Knapp–Hartung, ad hoc (variance factor ≥ 1)",
}


def num(x, digits: int = DIGITS) -> str:
    """Format a number with ``digits`` decimals; NaN/None as an em dash."""
    if x is None:
        return "—"
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(x):
        return "—"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    out = f"{x:.{digits}f}"
    if out.startswith("-") and float(out) == 0:
        out = out[1:]
    return out


def pval(p, digits: int = DIGITS) -> str:
    """Format a p-value for a table cell: exact, with ``< 0.0001`` below the display floor."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "—"
    floor = 10.0 ** (-digits)
    return f"< {floor:.{digits}f}" if p < floor else num(p, digits)


def p_text(p, digits: int = DIGITS, name: str = "p") -> str:
    """A p-value in running text: ``p = 0.0019``, ``p < 0.0001`` or ``p = —``.

    >>> p_text(0.0019), p_text(1e-9), p_text(float("nan"))
    ('p = 0.0019', 'p < 0.0001', 'p = —')
    """
    s = pval(p, digits)
    return f"{name} {s}" if s.startswith("<") else f"{name} = {s}"


def ci(lb, ub, digits: int = DIGITS) -> str:
    """Format an interval as ``[lb, ub]``."""
    return f"[{num(lb, digits)}, {num(ub, digits)}]"


def pct(x, digits: int = 1) -> str:
    """Format a value already in percent (I², weights)."""
    s = num(x, digits)
    return s if s == "—" else f"{s}%"


def level_text(level) -> str:
    """``0.95`` as ``95%``."""
    return f"{100 * float(level):g}%"


def dist_text(df=None) -> str:
    """The reference distribution: ``z`` (normal) or ``t(12)``; ``df`` may be a pair (F)."""
    if df is None or (isinstance(df, float) and not math.isfinite(df)):
        return "z"
    if isinstance(df, tuple):
        return f"F({', '.join(num(d, 0) for d in df)})"
    return f"t({num(df, 0)})"


def stat_text(value, df=None, name: str | None = None, digits: int = 2) -> str:
    """A test statistic: ``z = 1.96``, ``t(12) = -3.95``, ``F(2, 10) = 4.10``,
    ``QM(2) = 5.31`` (``name`` with ``df`` in brackets).

    >>> stat_text(-3.9526, 12), stat_text(1.96), stat_text(5.3, 2, "QM")
    ('t(12) = -3.95', 'z = 1.96', 'QM(2) = 5.30')
    """
    if name is None:
        head = dist_text(df)
    elif df is None:
        head = name
    else:
        dfs = df if isinstance(df, tuple) else (df,)
        head = f"{name}({', '.join(num(d, 0) for d in dfs)})"
    return f"{head} = {num(value, digits)}"


def method_text(method: str) -> str:
    """A τ² estimator by code and name: ``REML (restricted maximum likelihood)``.

    >>> method_text("DL")
    'DL (DerSimonian–Laird)'
    """
    name = METHOD_NAMES.get(method)
    return f"{method} ({name})" if name else str(method)


def inference_text(test: str, df=None) -> str:
    """How the CI and tests are computed: ``Knapp–Hartung, t(12)`` or ``Wald-type, normal``.

    ``df`` None (or not finite) means the normal distribution.

    >>> inference_text("knha", 12), inference_text("z"), inference_text("adhoc", 3)
    ('Knapp–Hartung, t(12)', 'Wald-type, normal', 'Knapp–Hartung, ad hoc (variance factor ≥ 1), t(3)')
    """
    name = TEST_NAMES.get(test, str(test))
    if df is None or (isinstance(df, (int, float)) and not math.isfinite(df)):
        return f"{name}, normal"
    if isinstance(df, str):
        return f"{name}, {df}"
    return f"{name}, {dist_text(df)}"
