"""Every number shown to a user is formatted here, and nowhere else."""

from __future__ import annotations

import math

DIGITS = 4


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
    """Format a p-value: exact, with ``< 0.0001`` below the display floor."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "—"
    floor = 10.0 ** (-digits)
    return f"< {floor:.{digits}f}" if p < floor else num(p, digits)


def ci(lb, ub, digits: int = DIGITS) -> str:
    """Format an interval as ``[lb, ub]``."""
    return f"[{num(lb, digits)}, {num(ub, digits)}]"


def pct(x, digits: int = 1) -> str:
    """Format a value already in percent (I², weights)."""
    s = num(x, digits)
    return s if s == "—" else f"{s}%"
