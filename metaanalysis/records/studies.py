"""Study records: one YAML file per study, loaded into a :class:`StudySet`.

The format is documented in ``docs/study_records.md`` (and the contract in
API.md, "Study records").  A record keeps exactly what the paper reported;
conversions happen later, in the analysis, visibly.

Files named ``plan*.yaml`` / ``plan*.yml`` in the folder are analysis plans, not
studies, and are skipped.  Every structural problem (unreadable file, broken
YAML, wrong type, missing or duplicate ``id``, unparseable time point) is
collected across all files and raised together as one
:class:`~metaanalysis.errors.StudyFileError`; impossible or inconsistent values
are found by :func:`metaanalysis.records.checks.check_studies`, which
:func:`load_studies` runs by default.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from metaanalysis.errors import InputError, Problem, StudyFileError
from metaanalysis.records.schema import MAX_NAME, MAX_TEXT, show, suggest
from metaanalysis.records.timepoints import TimePoint, parse_timepoint
from metaanalysis.records.yamlsafe import ReportedFloat, read_yaml  # noqa: F401 (re-export)

#: statistic keys, as reported
COUNT_KEYS = ("events", "total", "n")
STAT_KEYS = ("events", "total", "percent", "mean", "sd", "se", "ci_lb", "ci_ub",
             "median", "q1", "q3", "min", "max", "n")
UNITS = ("patients", "lesions")
#: ablation modalities a record may name (``modality:``)
MODALITIES = ("MWA", "RFA", "cryoablation", "laser", "other", "none")
#: ``overlap_membership:`` established (same centre or group named in the sources) or
#: probable (inferred, e.g. from author initials): see docs/study_records.md
OVERLAP_MEMBERSHIP = ("established", "probable")
#: free-text study fields (Table 1 and provenance)
STUDY_TEXT_KEYS = ("design", "intervention", "period", "lesion_type", "note", "label", "country",
                   "centre", "augmentation", "pain_scale", "follow_up", "attrition",
                   "overlap_evidence")
STUDY_KEYS = ("id", "citation", "doi", "url", "pmid", "source", "patients", "lesions",
              "modality", "augmented", "population", "overlap_group", "overlap_membership",
              "arms", "outcomes", "risk_of_bias") + STUDY_TEXT_KEYS
OUTCOME_KEYS = ("outcome", "time", "unit", "arm", "reported_as", "derived", "assumed", "p",
                "definition", "grade", "note") + STAT_KEYS
ARM_KEYS = ("patients", "lesions", "intervention", "modality", "note")
#: what ``derived:`` / ``assumed:`` may name besides statistic keys
FLAG_KEYS = STAT_KEYS + ("unit", "definition", "time")
#: study ids and arm names: letters, digits, _ . - starting with a letter (at most 64)
ID_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
#: outcome names: lower-case letters, digits and _ starting with a letter (at most 64)
OUTCOME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
#: largest count (events, total, n, patients, lesions) a record may hold
MAX_COUNT = 1_000_000
#: largest magnitude of any other reported number
MAX_VALUE = 1e12
#: most decimals a reported number may be written with
MAX_DECIMALS = 6
#: most study files in one folder, and their total size in bytes
MAX_STUDY_FILES = 300
MAX_TOTAL_BYTES = 4 * 1024 * 1024
#: most outcome records in one study file, and in one folder
MAX_RECORDS_PER_STUDY = 300
MAX_RECORDS = 3000


def is_plan_file(path: Path) -> bool:
    """True for files that hold an analysis plan rather than a study (``plan*.yaml``)."""
    return path.name.lower().startswith("plan")


# ---------------------------------------------------------------- YAML reading
# (metaanalysis.records.yamlsafe: no aliases, bounded size and depth, decimals kept)

def decimals_of(value) -> int:
    """Number of decimals a reported number was written with (0 for integers)."""
    return int(getattr(value, "decimals", 0))


# ---------------------------------------------------------------- records

@dataclass(frozen=True)
class OutcomeRecord:
    """One reported outcome at one time point (and arm) of one study."""

    outcome: str
    time: str
    timepoint: TimePoint
    unit: str
    stats: Mapping[str, float]
    decimals: Mapping[str, int]
    arm: str | None = None
    reported_as: str | None = None
    derived: tuple[str, ...] = ()
    assumed: tuple[str, ...] = ()
    p: str | None = None
    note: str | None = None
    index: int = 0
    definition: str | None = None
    grade: str | None = None
    assumed_reasons: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    derived_reasons: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def where(self) -> str:
        """Field prefix used in problem messages, e.g. ``outcomes[2]``."""
        return f"outcomes[{self.index}]"

    @property
    def label(self) -> str:
        """Human label: ``pain_vas at 1 week`` (plus the arm when there is one)."""
        arm = f", arm {self.arm}" if self.arm else ""
        return f"{self.outcome} at {self.time}{arm}"


@dataclass(frozen=True)
class Arm:
    """One arm of a multi-arm study."""

    name: str
    patients: int | None = None
    lesions: int | None = None
    intervention: str | None = None
    modality: str | None = None


@dataclass(frozen=True)
class Share:
    """How many of the treated units received something (``augmented: {count, total, unit}``).

    ``text`` is ``"all"`` or ``"not reported"`` when no counts are given.

    Examples
    --------
    >>> Share(9, 20, "tumours").fraction, Share(text="all").fraction
    (0.45, 1.0)
    """

    count: int | None = None
    total: int | None = None
    unit: str | None = None
    text: str | None = None

    @property
    def fraction(self) -> float | None:
        """Share in 0-1 (1 for ``all``), None when not reported."""
        if self.text == "all":
            return 1.0
        if self.count is not None and self.total:
            return self.count / self.total
        return None

    def __str__(self) -> str:
        if self.count is not None and self.total is not None:
            return f"{self.count} of {self.total}" + (f" {self.unit}" if self.unit else "")
        return self.text or "not reported"


@dataclass(frozen=True)
class Study:
    """One study record (frozen)."""

    id: str
    file: str
    citation: str
    doi: str | None
    source: str
    outcomes: tuple[OutcomeRecord, ...]
    url: str | None = None
    design: str | None = None
    intervention: str | None = None
    period: str | None = None
    patients: int | None = None
    lesions: int | None = None
    lesion_type: str | None = None
    overlap_group: str | None = None
    arms: Mapping[str, Arm] = field(default_factory=lambda: MappingProxyType({}))
    note: str | None = None
    label: str | None = None
    pmid: str | None = None
    country: str | None = None
    centre: str | None = None
    modality: str | None = None
    augmentation: str | None = None
    augmented: Share | None = None
    pain_scale: str | None = None
    follow_up: str | None = None
    attrition: str | None = None
    population: tuple[str, ...] = ()
    overlap_membership: str | None = None
    overlap_evidence: str | None = None
    #: ratings as recorded (validated against the tool by metaanalysis.review.rob)
    risk_of_bias: Mapping | None = None

    def size(self, unit: str, arm: str | None = None) -> int | None:
        """Number of patients or lesions (of ``arm`` when given), or None if unknown."""
        holder = self.arms.get(arm) if arm else self
        if holder is None:
            return None
        return holder.patients if unit == "patients" else holder.lesions


# ---------------------------------------------------------------- parsing

class _Collector:
    def __init__(self, file: str):
        self.file = file
        self.problems: list[Problem] = []
        self.record = ""

    def error(self, fld: str, message: str, severity: str = "error") -> None:
        self.problems.append(Problem(self.file, self.record, fld, message, severity))

    def unknown_keys(self, d: Mapping, valid, prefix: str = "") -> None:
        """An error per key of ``d`` not in ``valid``, with the nearest valid key."""
        for key in d:
            if key not in valid:
                name = key.strip() if isinstance(key, str) else show(key)
                hint = suggest(name, valid)
                if not hint.startswith("; did you mean"):
                    hint = "; expected one of " + ", ".join(valid)
                self.error(f"{prefix}{name or show(key)}", "unknown key" + hint)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _text(c: _Collector, d: Mapping, key: str, required: bool = False,
          fld: str | None = None) -> str | None:
    v = d.get(key)
    fld = fld or key
    if v is None:
        if required:
            c.error(fld, "missing; expected text")
        return None
    if not isinstance(v, str):
        c.error(fld, f"got {show(v)} ({type(v).__name__}); expected text (put numbers in "
                "quotes)")
        return None
    if len(v) > MAX_TEXT:
        c.error(fld, f"text of {len(v)} characters; expected at most {MAX_TEXT}")
        return None
    return v


def _name(c: _Collector, v, fld: str, pattern: re.Pattern, what: str) -> str | None:
    """A stripped name matching ``pattern`` (ids, outcome and arm names), else an error."""
    if isinstance(v, str) and pattern.fullmatch(v.strip()):
        return v.strip()
    c.error(fld, f"got {show(v)}; expected {what} (at most {MAX_NAME} characters)")
    return None


def _count(c: _Collector, d: Mapping, key: str, fld: str | None = None) -> int | None:
    v = d.get(key)
    fld = fld or key
    if v is None:
        return None
    if not _is_number(v) or (isinstance(v, float) and not v.is_integer()):
        c.error(fld, f"got {show(v)}; expected a whole number (a count)")
        return None
    if not 0 <= v <= MAX_COUNT:
        c.error(fld, f"got {show(v)}; expected a count from 0 to {MAX_COUNT:,}")
        return None
    return int(v)


def _value(c: _Collector, v, fld: str) -> float | None:
    """A reported number: finite, at most MAX_VALUE in size and MAX_DECIMALS decimals."""
    if not _is_number(v):
        c.error(fld, f"got {show(v)} ({type(v).__name__}); expected a number")
        return None
    try:
        x = float(v)
    except OverflowError:
        x = math.inf
    if not math.isfinite(x) or abs(x) > MAX_VALUE:
        c.error(fld, f"got {show(v)}; expected a finite number no larger than {MAX_VALUE:g} "
                "in size")
        return None
    if decimals_of(v) > MAX_DECIMALS:
        c.error(fld, f"got a number written with {decimals_of(v)} decimals; expected at most "
                f"{MAX_DECIMALS} (write it as reported in the paper)")
        return None
    return x


def _parse_outcome(c: _Collector, i: int, o, arms: Mapping[str, Arm]) -> OutcomeRecord | None:
    where = f"outcomes[{i}]"
    if not isinstance(o, dict):
        c.error(where, f"got {show(o)}; expected a mapping with outcome, time, unit and "
                "statistics")
        return None
    n_before = len(c.problems)
    c.unknown_keys(o, OUTCOME_KEYS, f"{where}.")
    name = _name(c, o.get("outcome"), f"{where}.outcome", OUTCOME_RE,
                 "a lower-case name such as pain_vas or cement_leakage")
    time = o.get("time")
    tp = None
    if not isinstance(time, str) or len(time) > 200:
        c.error(f"{where}.time", f"got {show(time)}; expected a time point as text, e.g. "
                "'3 days', '2-4 weeks', 'baseline' or 'procedure'")
    else:
        try:
            tp = parse_timepoint(time)
        except InputError as err:
            c.error(f"{where}.time", str(err).removeprefix("time point: "))
    unit = o.get("unit")
    if not isinstance(unit, str) or unit.strip() not in UNITS:
        c.error(f"{where}.unit", f"got {show(unit)}; expected one of {', '.join(UNITS)}")
    else:
        unit = unit.strip()
    arm = o.get("arm")
    if arm is not None:
        arm = arm.strip() if isinstance(arm, str) else arm
        if not isinstance(arm, str) or arm not in arms:
            c.error(f"{where}.arm", f"got {show(arm)}; expected one of the arms listed under "
                    f"'arms' ({', '.join(arms) or 'none listed'})")
    stats: dict[str, float] = {}
    decimals: dict[str, int] = {}
    for key in STAT_KEYS:
        v = o.get(key)
        if v is None:
            continue
        if key in COUNT_KEYS:
            cv = _count(c, o, key, f"{where}.{key}")
            if cv is not None:
                stats[key] = cv
                decimals[key] = 0
            continue
        x = _value(c, v, f"{where}.{key}")
        if x is not None:
            stats[key] = x
            decimals[key] = decimals_of(v)
    flags, reasons = {}, {}
    for key in ("derived", "assumed"):
        v = o.get(key, [])
        why: dict[str, str] = {}
        if isinstance(v, str):
            v = [v]
        if isinstance(v, dict):
            why = {k: r for k, r in v.items() if isinstance(k, str)}
            if len(why) != len(v) or any(not isinstance(r, str) or not r.strip()
                                         or len(r) > MAX_TEXT for r in why.values()):
                c.error(f"{where}.{key}", f"got {show(v)}; expected {{key: reason}} with the "
                        "reason as text, e.g. {unit: 'the abstract names no unit'}")
                why = {}
            v = list(why)
        if not isinstance(v, list) or any(not isinstance(x, str) or x not in FLAG_KEYS
                                          for x in v):
            c.error(f"{where}.{key}", f"got {show(v)}; expected a list of keys (e.g. [events]) "
                    "whose values were worked out or assumed, not reported, or a mapping "
                    "{key: reason}; keys: " + ", ".join(FLAG_KEYS))
            v, why = [], {}
        flags[key] = tuple(v)
        reasons[key] = MappingProxyType(why)
    texts = {key: _text(c, o, key, fld=f"{where}.{key}")
             for key in ("reported_as", "note", "definition", "grade")}
    p = o.get("p")
    if p is not None and (not isinstance(p, (str, int, float)) or isinstance(p, bool)
                          or len(str(p)) > 100):
        c.error(f"{where}.p", f"got {show(p)}; expected a p-value as reported, e.g. '< .01'")
    if any(q.severity == "error" for q in c.problems[n_before:]):
        return None
    return OutcomeRecord(
        outcome=name, time=time, timepoint=tp, unit=unit,
        stats=MappingProxyType(stats), decimals=MappingProxyType(decimals), arm=arm,
        reported_as=texts["reported_as"], derived=flags["derived"], assumed=flags["assumed"],
        p=None if p is None else str(p), note=texts["note"], index=i,
        definition=texts["definition"], grade=texts["grade"],
        assumed_reasons=reasons["assumed"], derived_reasons=reasons["derived"])


def _choice(c: _Collector, v, fld: str, allowed) -> str | None:
    """``v`` when it is one of ``allowed`` (None stays None), else an error."""
    if v is None:
        return None
    if isinstance(v, str) and v.strip() in allowed:
        return v.strip()
    c.error(fld, f"got {show(v)}; expected one of {', '.join(allowed)}")
    return None


def _share(c: _Collector, v, key: str) -> Share | None:
    """``all`` / ``not reported`` / ``{count: 9, total: 20, unit: tumours}``."""
    if v is None:
        return None
    if v in ("all", "not reported"):
        return Share(text=v)
    if isinstance(v, dict) and set(v) <= {"count", "total", "unit"} and {"count", "total"} <= set(v):
        n, t = _count(c, v, "count", f"{key}.count"), _count(c, v, "total", f"{key}.total")
        unit = _text(c, v, "unit", fld=f"{key}.unit")
        if n is not None and t is not None:
            if n > t or t == 0:
                c.error(key, f"got {n} of {t}; expected a count no larger than a total of at "
                        "least 1")
                return None
            return Share(n, t, unit)
        return None
    c.error(key, f"got {show(v)}; expected 'all', 'not reported' or {{count: N, total: N, "
            "unit: TEXT}}")
    return None


def _parse_arms(c: _Collector, raw) -> dict[str, Arm]:
    arms: dict[str, Arm] = {}
    if raw is None:
        return arms
    if not isinstance(raw, dict):
        c.error("arms", f"got {show(raw)}; expected a mapping of arm name to patients/lesions")
        return arms
    for key, a in raw.items():
        name = _name(c, key, f"arms.{show(key) if not isinstance(key, str) else key.strip()}",
                     ID_RE, "an arm name of letters, digits, _ . - starting with a letter")
        if name is None:
            continue
        if name in arms or name.casefold() in {k.casefold() for k in arms}:
            c.error(f"arms.{name}", "arm listed twice (names differ only in case or spaces)")
            continue
        if not isinstance(a, dict):
            c.error(f"arms.{name}", f"got {show(a)}; expected a mapping with patients/lesions")
            continue
        c.unknown_keys(a, ARM_KEYS, f"arms.{name}.")
        arm_mod = _choice(c, a.get("modality"), f"arms.{name}.modality", MODALITIES)
        arms[name] = Arm(name, _count(c, a, "patients", f"arms.{name}.patients"),
                         _count(c, a, "lesions", f"arms.{name}.lesions"),
                         _text(c, a, "intervention", fld=f"arms.{name}.intervention"), arm_mod)
    return arms


def _parse_study(c: _Collector, doc) -> Study | None:
    if not isinstance(doc, dict):
        c.error("", f"top level is {type(doc).__name__}; expected a mapping with id, citation, "
                "doi, source and outcomes")
        return None
    sid = doc.get("id")
    if sid is None:
        c.error("id", "missing; every study needs a unique id such as chen2022")
    else:
        sid = _name(c, sid, "id", ID_RE, "a name of letters, digits, _ . - starting with a "
                    "letter, e.g. chen2022")
        if sid is not None:
            c.record = sid
    c.unknown_keys(doc, STUDY_KEYS)
    citation = _text(c, doc, "citation", required=True)
    doi = _text(c, doc, "doi")
    url = _text(c, doc, "url")
    if doi is None and url is None and "doi" not in doc:
        c.error("doi", "missing; give the DOI (or a url) the numbers were read from")
    source = _text(c, doc, "source", required=True)
    texts = {k: _text(c, doc, k) for k in STUDY_TEXT_KEYS}
    og = doc.get("overlap_group")
    if og is not None:
        og = _name(c, og, "overlap_group", ID_RE, "a group name of letters, digits, _ . - "
                   "starting with a letter, or null")
    membership = doc.get("overlap_membership")
    if membership is not None and og is None:
        c.error("overlap_membership", f"got {show(membership)}; expected next to an "
                "overlap_group")
        membership = None
    membership = _choice(c, membership, "overlap_membership", OVERLAP_MEMBERSHIP)
    if og is not None and membership is None:
        membership = "established"
    modality = _choice(c, doc.get("modality"), "modality", MODALITIES)
    pmid = doc.get("pmid")
    if pmid is not None and (isinstance(pmid, bool) or not re.fullmatch(r"[0-9]{1,9}", str(pmid))):
        c.error("pmid", f"got {show(pmid)}; expected a PubMed id (digits)")
        pmid = None
    population = doc.get("population", ())
    if isinstance(population, str):
        population = [population]
    if not isinstance(population, (list, tuple)) or len(population) > 100 or any(
            not isinstance(x, str) or len(x) > MAX_TEXT for x in population):
        c.error("population", f"got {show(population)}; expected a list of notes as text, "
                "e.g. ['multiple myeloma 10 of 69 patients']")
        population = ()
    augmented = _share(c, doc.get("augmented"), "augmented")
    patients = _count(c, doc, "patients")
    lesions = _count(c, doc, "lesions")
    arms = _parse_arms(c, doc.get("arms"))
    rob = doc.get("risk_of_bias")
    if rob is not None and not isinstance(rob, dict):
        c.error("risk_of_bias", f"got {show(rob)}; expected a mapping with tool, domains "
                "and a reason per domain")
        rob = None
    raw = doc.get("outcomes")
    outcomes = []
    if not isinstance(raw, list) or not raw:
        c.error("outcomes", f"got {show(raw)}; expected a non-empty list of outcome records")
    elif len(raw) > MAX_RECORDS_PER_STUDY:
        c.error("outcomes", f"{len(raw)} outcome records; a study holds at most "
                f"{MAX_RECORDS_PER_STUDY}")
    else:
        for i, o in enumerate(raw):
            rec = _parse_outcome(c, i, o, arms)
            if rec is not None:
                outcomes.append(rec)
    if any(p.severity == "error" for p in c.problems):
        return None
    return Study(id=sid, file=c.file, citation=citation, doi=doi, url=url, source=source,
                 outcomes=tuple(outcomes), patients=patients, lesions=lesions,
                 overlap_group=og, arms=MappingProxyType(arms),
                 pmid=None if pmid is None else str(pmid), modality=modality,
                 augmented=augmented, population=tuple(population),
                 overlap_membership=membership, risk_of_bias=rob, **texts)


def read_study_file(path: str | Path) -> tuple[Study | None, list[Problem]]:
    """Read one study file; return the study (None if it has errors) and its problems.

    The file is read with the limits of :mod:`metaanalysis.records.yamlsafe` (a
    regular file of at most 512 KiB, no aliases, bounded nesting).
    """
    c = _Collector(str(path))
    doc, problems = read_yaml(path, "a YAML study record")
    if problems:
        return None, problems
    return _parse_study(c, doc), c.problems


# ---------------------------------------------------------------- the set

_FRAME_COLUMNS = ("study", "citation", "doi", "source", "overlap_group", "arm", "outcome",
                  "time", "time_kind", "day_lo", "day_hi", "unit", "patients", "lesions") \
    + STAT_KEYS + ("reported_as", "derived", "assumed", "p", "note", "modality", "definition",
                   "grade")


class StudySet:
    """The study records of one folder.

    Attributes
    ----------
    studies : tuple of Study
        Frozen records, in file-name order.
    warnings : tuple of Problem
        Warnings found while loading and checking (kept, never fatal).
    path : str
        Where the records were read from.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> s = load_studies(ma.example_path())  # four studies shipped with the package
    >>> s.outcome("pain_vas", timepoint=(21, 42))[["study", "time", "n", "mean", "median"]]
          study       time     n  mean  median
    0  chen2022    1 month  91.0   NaN     3.0
    1  khan2018  2-4 weeks  69.0   NaN     2.0
    2  wang2022    1 month  82.0   1.7     NaN
    3    wu2021    4 weeks  23.0   1.4     NaN
    """

    def __init__(self, studies, warnings=(), path: str = ""):
        self.studies = tuple(studies)
        self.warnings = tuple(warnings)
        self.path = str(path)

    def __len__(self) -> int:
        return len(self.studies)

    def __iter__(self) -> Iterator[Study]:
        return iter(self.studies)

    def __getitem__(self, study_id: str) -> Study:
        for s in self.studies:
            if s.id == study_id:
                return s
        raise KeyError(study_id)

    @property
    def ids(self) -> list[str]:
        """Study ids in order."""
        return [s.id for s in self.studies]

    def outcomes(self) -> list[str]:
        """Sorted names of every outcome reported by at least one study."""
        return sorted({o.outcome for s in self.studies for o in s.outcomes})

    def records(self, name: str | None = None):
        """Yield ``(study, outcome_record)`` pairs, optionally for one outcome."""
        for s in self.studies:
            for o in s.outcomes:
                if name is None or o.outcome == name:
                    yield s, o

    def outcome(self, name: str, timepoint=None):
        """Tidy table of one outcome: one row per study x time point (x arm).

        Parameters
        ----------
        name : str
            Outcome name, e.g. ``"pain_vas"`` (see :meth:`outcomes`).
        timepoint : None, str, number or (lo, hi), optional
            ``None``: every time point.  Text (``"1 month"``, ``"baseline"``):
            rows whose parsed time point is the same (same kind and window).
            A number of days: rows whose window contains it.  A ``(lo, hi)``
            pair of days: rows whose window overlaps it.  Numeric selections
            never return baseline rows (select those with ``"baseline"``) nor
            rows with an undefined window ("follow-up").

        Returns
        -------
        pandas.DataFrame
            Columns: study, citation, doi, source, overlap_group, arm, outcome,
            time (as reported), time_kind, day_lo, day_hi, unit, patients,
            lesions, every statistic key (NaN if absent), n, reported_as,
            derived, assumed, p, note, modality (the arm's, else the study's),
            definition, grade.

        Examples
        --------
        >>> import metaanalysis as ma
        >>> s = load_studies(ma.example_path())
        >>> s.outcome("cement_leakage")[["study", "events", "total"]]
              study  events  total
        0  chen2022    42.0  140.0
        1  wang2022    32.0  115.0
        2    wu2021    10.0   33.0
        """
        import pandas as pd

        if name not in self.outcomes():
            raise InputError(f"outcome: got {name!r}; expected one of {', '.join(self.outcomes())}")
        select = _selector(timepoint)
        rows = []
        for s, o in self.records(name):
            if not select(o.timepoint):
                continue
            row = {"study": s.id, "citation": s.citation, "doi": s.doi, "source": s.source,
                   "overlap_group": s.overlap_group, "arm": o.arm, "outcome": o.outcome,
                   "time": o.time, "time_kind": o.timepoint.kind, "day_lo": o.timepoint.day_lo,
                   "day_hi": o.timepoint.day_hi, "unit": o.unit,
                   "patients": _nan(s.size("patients", o.arm)),
                   "lesions": _nan(s.size("lesions", o.arm))}
            for key in STAT_KEYS:
                row[key] = float(o.stats[key]) if key in o.stats else math.nan
            arm = s.arms.get(o.arm) if o.arm else None
            row.update(reported_as=o.reported_as, derived=",".join(o.derived) or None,
                       assumed=",".join(o.assumed) or None, p=o.p, note=o.note,
                       modality=(arm.modality if arm and arm.modality else s.modality),
                       definition=o.definition, grade=o.grade)
            rows.append(row)
        df = pd.DataFrame(rows, columns=list(_FRAME_COLUMNS))
        df.attrs["outcome"] = name
        df.attrs["timepoint"] = timepoint
        return df

    def __repr__(self) -> str:
        return (f"StudySet({len(self)} studies from {self.path or '-'}: "
                f"{', '.join(self.ids)}; outcomes: {', '.join(self.outcomes())}; "
                f"{len(self.warnings)} warnings)")

    def _repr_html_(self) -> str:
        try:
            head = ("<tr><th>id</th><th>citation</th><th>patients</th><th>lesions</th>"
                    "<th>overlap group</th><th>outcomes</th></tr>")
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
                    s.id, s.citation, "—" if s.patients is None else s.patients,
                    "—" if s.lesions is None else s.lesions, s.overlap_group or "—",
                    ", ".join(sorted({o.outcome for o in s.outcomes})))) + "</tr>"
                for s in self.studies)
            return (f"<p>{len(self)} studies, {len(self.warnings)} warnings</p>"
                    f"<table>{head}{body}</table>")
        except Exception:  # noqa: BLE001 - a display hook must never raise
            return html.escape(repr(self))


def _nan(v):
    return math.nan if v is None else v


def _selector(timepoint):
    if timepoint is None:
        return lambda tp: True
    if isinstance(timepoint, str):
        want = parse_timepoint(timepoint)
        if want.kind != "follow-up" or not want.defined:
            return lambda tp: tp.kind == want.kind and tp.defined == want.defined \
                and (not want.defined or (tp.day_lo, tp.day_hi) == (want.day_lo, want.day_hi))
        return lambda tp: tp.kind == "follow-up" and tp.defined and \
            abs(tp.day_lo - want.day_lo) < 1e-9 and abs(tp.day_hi - want.day_hi) < 1e-9
    if _is_number(timepoint):
        d = float(timepoint)
        return lambda tp: tp.kind != "baseline" and tp.overlaps(d, d)
    if isinstance(timepoint, (tuple, list)) and len(timepoint) == 2 \
            and all(_is_number(x) for x in timepoint) and timepoint[0] <= timepoint[1]:
        lo, hi = float(timepoint[0]), float(timepoint[1])
        return lambda tp: tp.kind != "baseline" and tp.overlaps(lo, hi)
    raise InputError(f"timepoint: got {timepoint!r}; expected None, text such as '1 month', "
                     "a number of days, or a (lo, hi) window of days with lo <= hi")


def study_files(path: str | Path) -> list[Path]:
    """The study files of a folder, sorted by name.

    Every entry named ``*.yaml``/``*.yml`` that is not a plan (``plan*``) and not
    hidden (``.name``), whatever it is: a folder, FIFO or broken link with such
    a name is reported as an error when read, never skipped.
    """
    p = Path(path)
    if not p.is_dir():
        return [p]
    return sorted(f for f in p.iterdir() if f.suffix.lower() in (".yaml", ".yml")
                  and not is_plan_file(f) and not f.name.startswith("."))


def read_studies(path: str | Path = "studies") -> tuple[list[Study], list[Problem]]:
    """Read every study file under ``path`` without raising; return studies and problems."""
    p = Path(path)
    if not p.exists():
        why = ("a symbolic link to nothing" if p.is_symlink() else "no such file or folder")
        return [], [Problem(str(p), "", "", f"{why}; expected a folder of study YAML files")]
    try:
        files = study_files(p)
    except OSError as err:
        return [], [Problem(str(p), "", "", f"cannot list the folder: {err.strerror or err}")]
    if not files:
        return [], [Problem(str(p), "", "", "no study files (*.yaml) found")]
    if len(files) > MAX_STUDY_FILES:
        return [], [Problem(str(p), "", "", f"{len(files)} study files; at most "
                            f"{MAX_STUDY_FILES} are read")]
    total = 0
    for f in files:
        try:
            total += f.stat().st_size if f.is_file() else 0
        except OSError:
            pass
    if total > MAX_TOTAL_BYTES:
        return [], [Problem(str(p), "", "", f"study files of {total} bytes in all; at most "
                            f"{MAX_TOTAL_BYTES} bytes are read")]
    studies, problems, seen = [], [], {}
    for f in files:
        study, probs = read_study_file(f)
        problems.extend(probs)
        if study is None:
            continue
        key = study.id.casefold()
        if key in seen:
            other_file, other_id = seen[key]
            also = "" if other_id == study.id else f" (as {other_id!r}: ids differ only in case)"
            problems.append(Problem(str(f), study.id, "id", f"duplicate id {study.id!r}, "
                                    f"also used in {other_file}{also}; ids must be unique"))
            continue
        seen[key] = (str(f), study.id)
        studies.append(study)
    n_records = sum(len(s.outcomes) for s in studies)
    if n_records > MAX_RECORDS:
        problems.append(Problem(str(p), "", "", f"{n_records} outcome records in all; a folder "
                                f"holds at most {MAX_RECORDS}"))
    return studies, problems


def load_studies(path: str | Path = "studies", *, check: bool = True) -> StudySet:
    """Load the study records of a folder (or one file) into a :class:`StudySet`.

    Parameters
    ----------
    path : str or Path
        Folder of ``*.yaml`` study files (``plan*.yaml`` files are skipped), or
        one file.
    check : bool
        Run :func:`metaanalysis.records.checks.check_studies` too (default); its errors
        are raised, its warnings kept in ``StudySet.warnings``.

    Raises
    ------
    StudyFileError
        Listing every problem (file, record, field, message) when any file is
        malformed or (with ``check``) holds impossible values.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> studies = ma.load_studies(ma.example_path())  # or your own folder, e.g. "studies"
    >>> len(studies), studies.outcomes()[:2]
    (4, ['ablation_time_s', 'cement_leakage'])
    """
    studies, problems = read_studies(path)
    if any(p.severity == "error" for p in problems):
        raise StudyFileError([p for p in problems if p.severity == "error"])
    sset = StudySet(studies, problems, str(path))
    if check:
        from metaanalysis.records.checks import consistency_problems

        more = consistency_problems(sset)
        errors = [p for p in more if p.severity == "error"]
        if errors:
            raise StudyFileError(errors)
        sset = StudySet(studies, problems + more, str(path))
    return sset
