"""PRISMA 2020 flow counts: read, checked for arithmetic consistency, tabulated.

The counts follow the PRISMA 2020 flow diagram for new systematic reviews
(Page et al. 2021, BMJ 372:n71), with the optional column for studies found by
other methods (websites, organisations, citation searching).  In the plan::

    prisma:
      illustrative: false          # true: counts made up to show the diagram (said on it)
      note: how the search was run
      databases: {MEDLINE: 412, Embase: 388}    # records identified per source
      registers: {ClinicalTrials.gov: 6}
      duplicates_removed: 301
      automation_removed: 0        # marked ineligible by automation tools (optional)
      other_removed: 0             # removed for other reasons (optional)
      records_screened: 505
      records_excluded: 471
      reports_sought: 34
      reports_not_retrieved: 2
      reports_assessed: 32
      reports_excluded: {Not thermal ablation: 12, No outcome of interest: 8}
      other_methods:               # optional second column (the only one without a search:
                                   # then the database counts may be left out)
        identified: {Citation searching: 3}
        reports_sought: 3
        reports_not_retrieved: 0
        reports_assessed: 3
        reports_excluded: {}
      studies_included: 14
      reports_included: 15         # reports of the included studies (both columns)

The checks (:func:`prisma_counts`), each a problem naming the count that does
not add up:

* records screened = records identified − duplicates − automation − other removed;
* reports sought = records screened − records excluded;
* reports assessed = reports sought − reports not retrieved (in each column);
* reports included = Σ (reports assessed − reports excluded) over the columns;
* other methods: reports sought ≤ records identified;
* 1 ≤ studies included ≤ reports included, and, when the study folder is
  given, studies included = the number of studies in it.

Examples
--------
>>> c = prisma_counts({"databases": {"PubMed": 10}, "duplicates_removed": 2,
...     "records_screened": 8, "records_excluded": 5, "reports_sought": 3,
...     "reports_not_retrieved": 0, "reports_assessed": 3,
...     "reports_excluded": {"Review": 1}, "studies_included": 2, "reports_included": 2})
>>> c.identified, c.reports_included
(10, 2)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

import pandas as pd

from metaanalysis.errors import PlanError, Problem

__all__ = ["OtherMethods", "PrismaCounts", "prisma_counts", "prisma_lines", "prisma_table"]

_COUNTS = ("duplicates_removed", "automation_removed", "other_removed", "records_screened",
           "records_excluded", "reports_sought", "reports_not_retrieved", "reports_assessed",
           "studies_included", "reports_included")
_OPTIONAL = ("automation_removed", "other_removed")
_KEYS = ("illustrative", "note", "databases", "registers", "reports_excluded",
         "other_methods") + _COUNTS
_OTHER_KEYS = ("identified", "reports_sought", "reports_not_retrieved", "reports_assessed",
               "reports_excluded")


def _frozen(d) -> dict:
    return dict(d)


@dataclass(frozen=True)
class OtherMethods:
    """The PRISMA 2020 column for studies identified by other methods."""

    identified: Mapping = field(default_factory=lambda: _frozen({}))
    reports_sought: int = 0
    reports_not_retrieved: int = 0
    reports_assessed: int = 0
    reports_excluded: Mapping = field(default_factory=lambda: _frozen({}))

    @property
    def reports_kept(self) -> int:
        return self.reports_assessed - sum(self.reports_excluded.values())


@dataclass(frozen=True)
class PrismaCounts:
    """Checked PRISMA 2020 counts (build with :func:`prisma_counts`)."""

    databases: Mapping
    registers: Mapping
    duplicates_removed: int
    records_screened: int
    records_excluded: int
    reports_sought: int
    reports_not_retrieved: int
    reports_assessed: int
    reports_excluded: Mapping
    studies_included: int
    reports_included: int
    automation_removed: int = 0
    other_removed: int = 0
    other_methods: OtherMethods | None = None
    illustrative: bool = False
    note: str = ""

    @property
    def identified(self) -> int:
        """Records identified from databases and registers."""
        return sum(self.databases.values()) + sum(self.registers.values())

    @property
    def searched(self) -> bool:
        """Whether databases or registers were searched (the diagram's first column)."""
        return bool(self.databases or self.registers)

    @property
    def removed(self) -> int:
        """Records removed before screening."""
        return self.duplicates_removed + self.automation_removed + self.other_removed

    def to_frame(self) -> pd.DataFrame:
        """The counts as a table (:func:`prisma_table`)."""
        return prisma_table(self)

    def _repr_html_(self) -> str:
        return self.to_frame().to_html(index=False)


def _count(problems, file, key, value, *, where="prisma"):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        problems.append(Problem(file, where, key, f"got {value!r}; expected a count "
                                "(a whole number ≥ 0)"))
        return None
    return value


def _counts_map(problems, file, key, value, where="prisma"):
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append(Problem(file, where, key, f"got {value!r}; expected a mapping "
                                "{source or reason: count}"))
        return None
    out = {}
    for k, v in value.items():
        n = _count(problems, file, f"{key}.{k}", v, where=where)
        if n is not None:
            out[str(k)] = n
    return out


def _sum_text(parts) -> str:
    return " − ".join(f"{name} {n}" for name, n in parts if n or name == parts[0][0])


def prisma_counts(raw, *, file: str = "prisma", studies=None) -> PrismaCounts:
    """Read and check PRISMA 2020 counts.

    Parameters
    ----------
    raw : mapping or PrismaCounts
        The ``prisma:`` block of the plan (keys in the module docstring).
    file : str
        Name used in problem messages (the plan file).
    studies : StudySet or sized, optional
        The study folder: "studies included" must equal its number of studies.

    Returns
    -------
    PrismaCounts

    Raises
    ------
    PlanError
        One problem per missing, negative or inconsistent count, naming it and
        showing the sum it fails (``prisma/records_screened: 505 does not add up:
        ...``).
    """
    if isinstance(raw, PrismaCounts):
        raw = _as_raw(raw)
    problems: list[Problem] = []
    if not isinstance(raw, Mapping):
        raise PlanError([Problem(file, "prisma", "", f"got {raw!r}; expected a mapping of "
                                 "PRISMA 2020 counts")])
    for key in raw:
        if key not in _KEYS:
            problems.append(Problem(file, "prisma", str(key), "unknown count; expected one of "
                                    + ", ".join(_KEYS)))
    vals = {}
    searched = bool(raw.get("databases") or raw.get("registers"))
    for key in _COUNTS:
        if key not in raw or raw[key] is None:
            # without a database or register search the first column has nothing to count
            if key in _OPTIONAL or (not searched and key not in ("studies_included",
                                                                  "reports_included")):
                vals[key] = 0
                continue
            problems.append(Problem(file, "prisma", key, "missing; PRISMA 2020 reports it"))
            vals[key] = None
            continue
        vals[key] = _count(problems, file, key, raw[key])
    dbs = _counts_map(problems, file, "databases", raw.get("databases"))
    regs = _counts_map(problems, file, "registers", raw.get("registers"))
    reasons = _counts_map(problems, file, "reports_excluded", raw.get("reports_excluded"))
    other = None
    if raw.get("other_methods") is not None:
        om = raw["other_methods"]
        if not isinstance(om, Mapping):
            problems.append(Problem(file, "prisma", "other_methods", f"got {om!r}; expected a "
                                    "mapping with identified, reports_sought, ..."))
        else:
            w = "prisma/other_methods"
            for key in om:
                if key not in _OTHER_KEYS:
                    problems.append(Problem(file, w, str(key), "unknown count; expected one of "
                                            + ", ".join(_OTHER_KEYS)))
            ov = {k: _count(problems, file, k, om.get(k, 0), where=w)
                  for k in ("reports_sought", "reports_not_retrieved", "reports_assessed")}
            ident = _counts_map(problems, file, "identified", om.get("identified"), w)
            orea = _counts_map(problems, file, "reports_excluded", om.get("reports_excluded"), w)
            if None not in ov.values() and ident is not None and orea is not None:
                other = OtherMethods(_frozen(ident), ov["reports_sought"],
                                     ov["reports_not_retrieved"], ov["reports_assessed"],
                                     _frozen(orea))
    note = raw.get("note", "")
    if not isinstance(note, str):
        problems.append(Problem(file, "prisma", "note", f"got {note!r}; expected text"))
    illus = raw.get("illustrative", False)
    if not isinstance(illus, bool):
        problems.append(Problem(file, "prisma", "illustrative", f"got {illus!r}; expected true "
                                "or false"))
    if dbs is not None and regs is not None and not dbs and not regs and other is None:
        problems.append(Problem(file, "prisma", "databases", "no records identified: give "
                                "the records per database or register (or other_methods)"))
    if problems or None in (dbs, regs, reasons):
        raise PlanError(problems)
    c = PrismaCounts(databases=_frozen(dbs), registers=_frozen(regs),
                     reports_excluded=_frozen(reasons), other_methods=other,
                     illustrative=illus, note=note, **vals)
    problems = _arithmetic(c, file)
    if studies is not None and c.studies_included != len(studies):
        problems.append(Problem(file, "prisma", "studies_included",
                                f"{c.studies_included} does not match the study folder, which "
                                f"holds {len(studies)} studies"))
    if problems:
        raise PlanError(problems)
    return c


def _arithmetic(c: PrismaCounts, file: str) -> list[Problem]:
    out = []

    def check(key, value, parts, where="prisma"):
        expected = parts[0][1] - sum(n for _, n in parts[1:])
        if value != expected:
            out.append(Problem(file, where, key, f"{value} does not add up: "
                               f"{_sum_text(parts)} = {expected}"))

    check("records_screened", c.records_screened,
          [("records identified", c.identified), ("duplicates removed", c.duplicates_removed),
           ("marked ineligible by automation", c.automation_removed),
           ("removed for other reasons", c.other_removed)])
    check("reports_sought", c.reports_sought,
          [("records screened", c.records_screened), ("records excluded", c.records_excluded)])
    check("reports_assessed", c.reports_assessed,
          [("reports sought", c.reports_sought),
           ("reports not retrieved", c.reports_not_retrieved)])
    excluded = sum(c.reports_excluded.values())
    kept = c.reports_assessed - excluded
    text = f"reports assessed {c.reports_assessed} − reports excluded {excluded}"
    o = c.other_methods
    if o is not None:
        w = "prisma/other_methods"
        if o.reports_sought > sum(o.identified.values()):
            out.append(Problem(file, w, "reports_sought", f"{o.reports_sought} is more than the "
                               f"{sum(o.identified.values())} records identified by other "
                               "methods"))
        check("reports_assessed", o.reports_assessed,
              [("reports sought", o.reports_sought),
               ("reports not retrieved", o.reports_not_retrieved)], w)
        kept += o.reports_kept
        text += (f" + other methods: reports assessed {o.reports_assessed} − reports excluded "
                 f"{sum(o.reports_excluded.values())}")
    if c.reports_included != kept:
        out.append(Problem(file, "prisma", "reports_included", f"{c.reports_included} does not "
                           f"add up: {text} = {kept}"))
    if c.studies_included < 1:
        out.append(Problem(file, "prisma", "studies_included", "0: a review includes at least "
                           "one study"))
    elif c.studies_included > c.reports_included:
        out.append(Problem(file, "prisma", "studies_included", f"{c.studies_included} is more "
                           f"than the {c.reports_included} reports included; every study has at "
                           "least one report"))
    return out


def _as_raw(c: PrismaCounts) -> dict:
    raw = {f.name: getattr(c, f.name) for f in fields(c)}
    for key in ("databases", "registers", "reports_excluded"):
        raw[key] = dict(raw[key])
    if c.other_methods is not None:
        o = c.other_methods
        raw["other_methods"] = {"identified": dict(o.identified),
                                "reports_sought": o.reports_sought,
                                "reports_not_retrieved": o.reports_not_retrieved,
                                "reports_assessed": o.reports_assessed,
                                "reports_excluded": dict(o.reports_excluded)}
    return raw


def prisma_table(c: PrismaCounts) -> pd.DataFrame:
    """One row per box of the flow diagram: ``stage``, ``box``, ``detail``, ``n``.

    >>> c = prisma_counts({"databases": {"PubMed": 10}, "duplicates_removed": 2,
    ...     "records_screened": 8, "records_excluded": 5, "reports_sought": 3,
    ...     "reports_not_retrieved": 0, "reports_assessed": 3,
    ...     "reports_excluded": {"Review": 1}, "studies_included": 2, "reports_included": 2})
    >>> prisma_table(c)["n"].tolist()[:3]
    [10, 10, 2]
    """
    rows = []
    if c.searched:
        rows += [("Identification", "Records identified", "", c.identified)]
        rows += [("Identification", "Records identified", f"database: {k}", n)
                 for k, n in c.databases.items()]
        rows += [("Identification", "Records identified", f"register: {k}", n)
                 for k, n in c.registers.items()]
        rows += [("Identification", "Records removed before screening", "duplicates",
                  c.duplicates_removed)]
        if c.automation_removed:
            rows.append(("Identification", "Records removed before screening",
                         "marked ineligible by automation tools", c.automation_removed))
        if c.other_removed:
            rows.append(("Identification", "Records removed before screening", "other reasons",
                         c.other_removed))
        rows += [("Screening", "Records screened", "", c.records_screened),
                 ("Screening", "Records excluded", "", c.records_excluded),
                 ("Screening", "Reports sought for retrieval", "", c.reports_sought),
                 ("Screening", "Reports not retrieved", "", c.reports_not_retrieved),
                 ("Screening", "Reports assessed for eligibility", "", c.reports_assessed)]
        rows += [("Screening", "Reports excluded", k, n) for k, n in c.reports_excluded.items()]
    o = c.other_methods
    if o is not None:
        rows += [("Identification", "Records identified (other methods)", k, n)
                 for k, n in o.identified.items()]
        rows += [("Screening", "Reports sought for retrieval (other methods)", "",
                  o.reports_sought),
                 ("Screening", "Reports not retrieved (other methods)", "",
                  o.reports_not_retrieved),
                 ("Screening", "Reports assessed for eligibility (other methods)", "",
                  o.reports_assessed)]
        rows += [("Screening", "Reports excluded (other methods)", k, n)
                 for k, n in o.reports_excluded.items()]
    rows += [("Included", "Studies included in review", "", c.studies_included),
             ("Included", "Reports of included studies", "", c.reports_included)]
    df = pd.DataFrame(rows, columns=["stage", "box", "detail", "n"])
    df.attrs["illustrative"] = c.illustrative
    return df


def prisma_lines(c: PrismaCounts) -> list[str]:
    """Sentences for report.md: the flow in words, with every count."""
    src = ", ".join(f"{k} {n}" for k, n in {**c.databases, **c.registers}.items())
    out = []
    if c.illustrative:
        out.append("**Illustrative counts** (not the result of a search; they show the "
                   "diagram's format).")
    if c.note:
        out.append(c.note.strip())
    if c.searched:
        removed = f"{c.duplicates_removed} duplicates"
        if c.automation_removed:
            removed += f", {c.automation_removed} marked ineligible by automation tools"
        if c.other_removed:
            removed += f", {c.other_removed} removed for other reasons"
        out.append(f"Records identified from databases and registers: {c.identified} ({src}); "
                   f"removed before screening: {removed}; screened: {c.records_screened}; "
                   f"excluded on title and abstract: {c.records_excluded}.")
        reasons = "; ".join(f"{k}: {n}" for k, n in c.reports_excluded.items()) or "none"
        out.append(f"Reports sought for retrieval: {c.reports_sought}; not retrieved: "
                   f"{c.reports_not_retrieved}; assessed for eligibility: {c.reports_assessed}; "
                   f"excluded: {sum(c.reports_excluded.values())} ({reasons}).")
    o = c.other_methods
    if o is not None:
        ident = ", ".join(f"{k} {n}" for k, n in o.identified.items())
        reasons = "; ".join(f"{k}: {n}" for k, n in o.reports_excluded.items()) or "none"
        out.append(f"Other methods: records identified {sum(o.identified.values())} ({ident}); "
                   f"reports sought: {o.reports_sought}; not retrieved: "
                   f"{o.reports_not_retrieved}; assessed: {o.reports_assessed}; excluded: "
                   f"{sum(o.reports_excluded.values())} ({reasons}).")
    out.append(f"Studies included in the review: {c.studies_included} "
               f"({c.reports_included} reports).")
    return out
