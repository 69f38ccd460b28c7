"""Display labels of studies ("Chen 2022") and the flags marking how their data were used.

Labels are short citations built from the study's citation or id; flags (†, ‡,
§, ¶) mark estimated means/SDs, assumed denominators and similar choices, with
the footnote text of each mark.  Used by :mod:`metaanalysis.report.analysis` and the
report.
"""

from __future__ import annotations

import re

import pandas as pd

from metaanalysis.report.plan import Plan

_CITATION = re.compile(r"^\s*([^\W\d_][\w'’-]*)(?:\s+[A-Z]{1,3}\.?)*\s+et\s+al\.?,?\s+"
                       r"((?:19|20)\d\d)")
_ID = re.compile(r"^([A-Za-z]+)[-_]?((?:19|20)\d\d)[a-z]?$")


def display_label(study) -> str:
    """First author and year from a study's ``citation``, e.g. ``"Chen 2022"``.

    ``"Motaghi M et al. 2022, J Clin Neurosci ..."`` gives ``"Motaghi 2022"``.
    A record's ``label`` is used as given.  A citation without a first author (``"... J Vasc Interv Radiol 2014
    (author not verified)"``) falls back to the id's letters in capitals and
    its year (``jvir2014`` → ``"JVIR 2014"``); anything else to the id.

    Examples
    --------
    >>> from types import SimpleNamespace as S
    >>> display_label(S(id="chen2022", citation="Chen et al. 2022, AJNR 43(3):501-506"))
    'Chen 2022'
    >>> display_label(S(id="jvir2014", citation="Microwave ablation, J Vasc Interv Radiol 2014"))
    'JVIR 2014'

    A record's own ``label:`` wins:

    >>> display_label(S(id="bmcneurol2020", citation="BMC Neurol 2020", label="BMC Neurol 2020"))
    'BMC Neurol 2020'
    """
    own = getattr(study, "label", None)
    if own:
        return str(own)
    m = _CITATION.match(str(getattr(study, "citation", "") or ""))
    if m:
        return f"{m.group(1)} {m.group(2)}"
    m = _ID.match(study.id)
    if m:
        return f"{m.group(1).upper()} {m.group(2)}"
    return study.id


def display_labels(studies) -> dict[str, str]:
    """``{study id: display label}``; equal labels get ``a``, ``b``... in id order.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> display_labels(ma.load_studies(ma.example_path()))["khan2018"]
    'Khan 2018'
    """
    raw = {s.id: display_label(s) for s in sorted(studies, key=lambda s: s.id)}
    out = {}
    for sid, lab in raw.items():
        same = [i for i, v in raw.items() if v == lab]
        out[sid] = lab if len(same) == 1 else lab + "abcdefghijklmnopqrstuvwxyz"[same.index(sid) % 26]
    return out


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
        "¶": "denominator not reported, assumed (sensitivity analysis only)",
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
