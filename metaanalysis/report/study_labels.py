"""Display labels of studies ("Chen 2022") and the flags marking how their data were used.

Labels are short citations built from the study's citation or id; flags (†, ‡,
§, ¶) mark estimated means/SDs, assumed denominators and similar choices, with
the footnote text of each mark.  Used by :mod:`metaanalysis.report.analysis` and the
report.
"""

from __future__ import annotations

import pandas as pd

from metaanalysis.records.labels import display_label, display_labels
from metaanalysis.report.plan import Plan

__all__ = ["FLAG_MARKS", "display_label", "display_labels", "flag_text", "flags_of",
           "flags_summary"]

#: marker -> meaning; a row carries the markers of every estimate or assumption behind it
FLAG_MARKS = ("†", "‡", "§", "‖", "¶")
_CONVERSION_SOURCES = {"luo-shi": "Luo 2018; Shi 2020", "wan": "Wan 2014", "hozo": "Hozo 2005"}


def flag_text(mark: str, plan: Plan | None = None, conversion: str | None = None) -> str:
    """What a flag marker means, e.g. ``"† mean and SD estimated from the median ..."``.

    Examples
    --------
    >>> flag_text("†", conversion="luo-shi")
    '† mean and SD estimated from the median and range/IQR (Luo 2018; Shi 2020)'
    """
    conv = conversion or (plan.median_conversion if plan is not None else "luo-shi")
    texts = {
        "†": f"mean and SD estimated from the median and range/IQR "
             f"({_CONVERSION_SOURCES.get(conv, conv)})",
        "‡": "'median ± SD' used as mean ± SD (assumption)",
        "§": "n (or total) not reported for this time point, the study's sample size assumed",
        "‖": "unit or definition not stated, assumed (the record gives the reason)",
        "¶": "denominator (or count) not reported, assumed: the number treated in the main "
             "analyses, candidate denominators in sensitivity analyses",
    }
    return f"{mark} {texts[mark]}"


def flags_of(included: pd.DataFrame) -> dict[str, list[str]]:
    """``{marker: [study label, ...]}`` over the rows of a selection, markers in order."""
    out: dict[str, list[str]] = {}
    if "flags" not in included.columns:
        return out
    for mark in FLAG_MARKS:
        who = [lab for lab, f in zip(included["label"], included["flags"]) if mark in str(f)]
        if who:
            out[mark] = who
    return out


def flags_summary(included: pd.DataFrame) -> str:
    """``"† Chen 2022, Motaghi 2022; § Chen 2022"`` (empty when nothing is flagged)."""
    return "; ".join(f"{m} {', '.join(who)}" for m, who in flags_of(included).items())
