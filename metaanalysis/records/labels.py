"""Display labels of studies: first author and year ("Chen 2022") from the citation.

Used by the report (figures and tables name studies this way) and by the
submission tables (:mod:`metaanalysis.review.study_table`).
"""

from __future__ import annotations

import re

_CITATION = re.compile(r"^\s*([^\W\d_][\w'’-]*)(?:\s+[A-Z]{1,3}\.?)*\s+et\s+al\.?,?\s+"
                       r"((?:19|20)\d\d)")
_ID = re.compile(r"^([A-Za-z]+)[-_]?((?:19|20)\d\d)[a-z]?$")


def display_label(study) -> str:
    """First author and year from a study's ``citation``, e.g. ``"Chen 2022"``.

    ``"Motaghi M et al. 2022, J Clin Neurosci ..."`` gives ``"Motaghi 2022"``.
    A record's own ``label`` is used as given.  A citation without a first author (``"... J Vasc Interv Radiol 2014
    (author not verified)"``) falls back to the id's letters in capitals and
    its year (``jvir2014`` → ``"JVIR 2014"``); anything else to the id.

    Examples
    --------
    >>> from types import SimpleNamespace as S
    >>> display_label(S(id="chen2022", citation="Chen et al. 2022, AJNR 43(3):501-506"))
    'Chen 2022'
    >>> display_label(S(id="jvir2014", citation="Microwave ablation, J Vasc Interv Radiol 2014"))
    'JVIR 2014'
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
