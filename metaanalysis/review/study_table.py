"""Table 1: the characteristics of the included studies, built from the study records.

One row per study, every cell taken from the record (``NR``: not reported).
Where a record has no dedicated field, two cells are read from its outcomes,
and say so: the pain scale from the pain outcome's name (``pain_vas`` → VAS,
``pain_nrs`` → NRS, ``pain_bpi`` → BPI) and the follow-up as the latest
reported time point ("up to 6 months").

Examples
--------
>>> import metaanalysis as ma
>>> t = ma.study_table(ma.load_studies("studies"))      # doctest: +SKIP
>>> t[["Study", "Design", "Patients"]].head(2)          # doctest: +SKIP
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import pandas as pd

__all__ = ["COLUMNS", "NR", "study_table"]

NR = "NR"
COLUMNS = ("Study", "id", "Citation", "DOI", "Design", "Centre", "Country", "Period",
           "Intervention", "Modality", "Augmentation", "Augmented", "Patients", "Lesions", "Population",
           "Pain scale", "Follow-up", "Attrition", "Overlap group", "Source")
_SCALES = {"vas": "VAS", "nrs": "NRS", "bpi": "BPI", "vrs": "VRS"}
_SCALE_TEXT = {"VAS": "visual analogue scale", "NRS": "numeric rating scale",
               "BPI": "Brief Pain Inventory", "VRS": "verbal rating scale"}
_MODALITY = (("microwave", "MWA"), ("radiofrequency", "RFA"), ("cryo", "cryoablation"),
             ("laser", "laser ablation"))


def _get(study, name):
    v = getattr(study, name, None)
    if v is None or (isinstance(v, float) and math.isnan(v)) or v == "" \
            or (isinstance(v, (tuple, list)) and not v) or str(v) == "not reported":
        return None
    return v


def _text(v) -> str:
    if v is None:
        return NR
    if isinstance(v, Mapping):
        return "; ".join(f"{k}: {x}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return "; ".join(map(str, v))
    return str(v)


def _size(study, unit: str) -> str:
    arms = getattr(study, "arms", None) or {}
    per_arm = [a.patients if unit == "patients" else a.lesions for a in arms.values()]
    if len(arms) >= 2 and all(x is not None for x in per_arm):
        return " vs ".join(str(x) for x in per_arm)
    v = study.size(unit) if hasattr(study, "size") else _get(study, unit)
    if v is None:
        return NR
    if unit == "lesions" and _get(study, "lesion_type"):
        return f"{v} {study.lesion_type}"
    return str(v)


def _modality(study) -> str:
    v = _get(study, "modality")
    if v is not None:
        return _text(v)
    text = str(_get(study, "intervention") or "").lower()
    found = [m for key, m in _MODALITY if key in text]
    return ", ".join(found) if found else NR


def _pain_scale(study) -> str:
    v = _get(study, "pain_scale")
    if v is not None:
        return _text(v)
    found = []
    for o in getattr(study, "outcomes", ()):
        m = re.match(r"^pain_([a-z]+)", o.outcome)
        if m and _SCALES.get(m.group(1)) and _SCALES[m.group(1)] not in found:
            found.append(_SCALES[m.group(1)])
    return ", ".join(found) if found else NR


def _follow_up(study) -> str:
    v = _get(study, "follow_up")
    if v is not None:
        return _text(v)
    latest = None
    for o in getattr(study, "outcomes", ()):
        tp = o.timepoint
        if tp.kind == "follow-up" and tp.defined and (latest is None or tp.day_hi > latest[0]):
            latest = (tp.day_hi, o.time)
    return f"up to {latest[1].removeprefix('within ')}" if latest else NR


def _overlap(study) -> str:
    group = _get(study, "overlap_group")
    if group is None:
        return "—"
    how = _get(study, "overlap_membership")
    return f"{group} ({how})" if how and how != "established" else str(group)


def _augmentation(study) -> tuple[str, str]:
    aug, share = _get(study, "augmentation"), _get(study, "augmented")
    if isinstance(share, Mapping):
        share = f"{share.get('n', '?')} of {share.get('of', '?')} {share.get('unit', '')}".strip()
    return (_text(aug) if aug is not None else NR,
            _text(share) if share is not None else NR)


def study_table(studies, labels: Mapping | None = None) -> pd.DataFrame:
    """Table 1 of a review: one row per included study.

    Parameters
    ----------
    studies : StudySet or iterable of Study
        The study records (:func:`metaanalysis.load_studies`).
    labels : mapping, optional
        Study id -> display label ("Chen 2022"); by default first author and
        year from the citation.

    Returns
    -------
    DataFrame
        Columns :data:`COLUMNS` (text; ``NR`` where the record has nothing);
        ``attrs["notes"]`` lists the abbreviations and the cells read from the
        outcomes rather than a field of the record.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> t = study_table(ma.load_studies("studies"))
    >>> t.set_index("id").loc["chen2022", ["Study", "Patients", "Pain scale"]].tolist()
    ['Chen 2022', '91', 'VAS 0-10']
    """
    if labels is None:
        from metaanalysis.records.labels import display_labels

        labels = display_labels(studies)
    rows, derived = [], set()
    for s in studies:
        aug, share = _augmentation(s)
        for name, fld in (("pain scale", "pain_scale"), ("follow-up", "follow_up"),
                          ("modality", "modality")):
            if _get(s, fld) is None:
                derived.add(name)
        doi = _get(s, "doi")
        rows.append({
            "Study": labels.get(s.id, s.id), "id": s.id, "Citation": s.citation,
            "DOI": doi or _get(s, "url") or NR, "Design": _text(_get(s, "design")),
            "Centre": _text(_get(s, "centre")), "Country": _text(_get(s, "country")),
            "Period": _text(_get(s, "period")),
            "Intervention": _text(_get(s, "intervention")), "Modality": _modality(s),
            "Augmentation": aug, "Augmented": share,
            "Patients": _size(s, "patients"), "Lesions": _size(s, "lesions"),
            "Population": _text(_get(s, "population")), "Pain scale": _pain_scale(s),
            "Follow-up": _follow_up(s), "Attrition": _text(_get(s, "attrition")),
            "Overlap group": _overlap(s),
            "Source": _text(_get(s, "source")),
        })
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    scales = sorted({x for v in df["Pain scale"] for x in _SCALE_TEXT
                     if re.search(rf"\b{x}\b", str(v))})
    notes = [f"{NR}, not reported"] + [f"{x}, {_SCALE_TEXT[x]}" for x in scales]
    mods = {m for v in df["Modality"] for m in ("MWA", "RFA") if m in str(v)}
    notes += [{"MWA": "MWA, microwave ablation", "RFA": "RFA, radiofrequency ablation"}[m]
              for m in sorted(mods)]
    read = {"pain scale": "pain scale from the name of the pain outcome",
            "follow-up": "follow-up as the latest time point reported",
            "modality": "modality from the intervention text"}
    notes += [f"Where the record has no such field: {read[k]}" for k in sorted(derived)]
    df.attrs["notes"] = notes
    return df
