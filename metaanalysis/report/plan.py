"""The analysis plan: which outcomes to pool, how, and under which assumptions.

A plan is a YAML file (``studies/plan.yaml`` by default) with three sections:
``defaults`` (model and handling rules), ``windows`` (named time windows in
days) and ``outcomes`` (one entry per pooled outcome).  See ``docs/plan.md``.

Examples
--------
>>> import metaanalysis as ma
>>> from metaanalysis.report.plan import load_plan
>>> plan = load_plan(ma.example_path("studies/plan.yaml"))  # the example shipped with the package
>>> [o.name for o in plan.outcomes]
['pain_vas', 'cement_leakage']
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from metaanalysis.effects.conversions import METHODS as MEDIAN_CONVERSIONS
from metaanalysis.effects.transforms import PROPORTION_MEASURES as PROPORTIONS
from metaanalysis.engine.batch import METHODS, TESTS
from metaanalysis.errors import PlanError, Problem
from metaanalysis.records.schema import (
    INVALID,
    Boolean,
    Choice,
    Integer,
    ListOf,
    MapOf,
    Name,
    Number,
    OneKey,
    Record,
    Ref,
    Spec,
    Text,
    is_number,
    show,
    suggest,
    validate,
)
from metaanalysis.records.studies import MODALITIES, OUTCOME_RE
from metaanalysis.records.yamlsafe import read_bytes_limited, read_yaml
from metaanalysis.report.output import slug
from metaanalysis.report.trajectory import ROBUST, SETTINGS, STRUCTURES, TRENDS
from metaanalysis.review.grade import DOMAINS, JUDGEMENTS
from metaanalysis.review.rob_tools import TOOLS

MODELS = ("two-step", "GLMM")
FEW_STUDIES = ("bayes", "pool")
OVERLAP = ("one_per_group", "all")
PERCENT_RULES = ("exclude", "treated")
COUNT_RULES = ("exclude", "nearest")
PROBABLE_OVERLAP = ("separate", "apply")
SUBGROUPS = ("modality",)
#: two-group measures over the arms of comparative studies (ablation arm vs control arm)
COMPARATIVE_COUNTS = ("RR", "OR", "RD")
COMPARATIVE = COMPARATIVE_COUNTS + ("MD", "SMD", "ROM")
MEDIAN_SD_RULES = ("exclude", "as_mean")
PRIORS = ("halfnormal", "halfcauchy")

_DEFAULTS = {
    "method": "REML",
    "test": "knha",
    "level": 0.95,
    "few_studies": "bayes",
    "overlap": "one_per_group",
    "percent_without_denominator": "exclude",
    "median_conversion": "luo-shi",
    "median_sd": "exclude",
    "funnel_min_k": 10,
    "assumed_denominator_min_fraction": 0.5,
    "modalities": None,
    "probable_overlap": "separate",
    "percent_without_count": "exclude",
}


@dataclass(frozen=True)
class OutcomePlan:
    """How one outcome is pooled."""

    name: str
    label: str
    measure: str
    model: str = "two-step"
    unit: str = "any"
    windows: tuple[str, ...] = ()
    r: float = 0.5
    r_sensitivity: tuple[float, ...] = ()
    timecourse: bool = False
    tau_prior: tuple[str, float] = ("halfnormal", 0.5)
    study_sets: tuple[str, ...] | None = None  # names of plan.study_sets; None: every set
    records: tuple[str, ...] = ()  # record outcomes pooled under this name (default: the name)
    complement: tuple[str, ...] = ()  # record outcomes whose complement this outcome is
    absolute: bool = False  # MC: also pool the absolute value (MN) at baseline and each window
    bounds: tuple | None = None  # (lowest, highest) value of the scale; None: unbounded
    subgroups: tuple[str, ...] = ()  # subgroup analyses, e.g. ("modality",)
    modalities: tuple[str, ...] | None = None  # override of the plan's modalities

    def __post_init__(self):
        if not self.records:
            object.__setattr__(self, "records", (self.name,))

    @property
    def all_records(self) -> tuple[str, ...]:
        """Every record outcome this analysis reads (direct and complemented)."""
        return self.records + tuple(c for c in self.complement if c not in self.records)


@dataclass(frozen=True)
class Plan:
    """A parsed, validated analysis plan."""

    path: str
    title: str
    method: str
    test: str
    level: float
    few_studies: str
    overlap: str
    percent_without_denominator: str
    median_conversion: str
    median_sd: str
    windows: dict = field(default_factory=dict)  # name -> (lo, hi) days
    outcomes: tuple[OutcomePlan, ...] = ()
    exclusions: tuple[tuple[str, str], ...] = ()  # (study id, reason)
    arms: tuple[tuple[str, str, str], ...] = ()  # (study id, arm pooled, reason)
    not_pooled: tuple[tuple[str, str], ...] = ()  # (outcome, reason)
    funnel_min_k: int = 10
    study_sets: dict = field(default_factory=dict)  # name -> tuple of study ids
    assumed_denominator_min_fraction: float = 0.5
    modalities: tuple[str, ...] | None = None  # ablation modalities in the main analyses; None: all
    probable_overlap: str = "separate"  # probable overlap-group members: separate, or apply
    percent_without_count: str = "exclude"  # percent of a total matching no count: or nearest
    controls: dict = field(default_factory=dict)  # study id -> control arm (comparisons)
    timecourse_model: dict = field(default_factory=lambda: dict(SETTINGS))  # docs/multilevel.md
    # submission package (metaanalysis.report.submission): PRISMA 2020 counts
    # (review.prisma.PrismaCounts), the risk-of-bias tool(s), GRADE rules and statements
    prisma: object = None
    risk_of_bias: dict | None = None
    grade: dict | None = None
    text: str = ""  # the plan file as read, recorded with the outputs

    def outcome(self, name: str) -> OutcomePlan:
        """The :class:`OutcomePlan` called ``name``."""
        for o in self.outcomes:
            if o.name == name:
                return o
        raise KeyError(name)

    def sets_for(self, op: OutcomePlan) -> list[str]:
        """Names of the study sets run as sensitivity analyses for outcome ``op``."""
        return list(self.study_sets) if op.study_sets is None else list(op.study_sets)

    def describe(self) -> list[str]:
        """One line per method choice, as printed in the report."""
        return [
            f"τ² estimator: {self.method}; CI and test: "
            + ("Knapp–Hartung (t)" if self.test == "knha" else self.test),
            f"confidence level: {self.level:g}",
            f"fewer than 3 studies: {'Bayesian normal-normal model' if self.few_studies == 'bayes' else 'pooled as usual'}",
            f"overlapping cohorts: {'one study per overlap group and outcome (the largest with usable data)' if self.overlap == 'one_per_group' else 'all studies'}"
            + ("; probable members (overlap_membership: probable) treated as separate cohorts"
               if self.probable_overlap == "separate" else
               "; probable members counted in their group"),
            (f"percent without denominator: {self.percent_without_denominator}; sensitivity: "
             f"smallest and largest candidate denominator from "
             f"{100 * self.assumed_denominator_min_fraction:g}% to 100% of the units treated "
             "(all units treated when the percent is 0% or 100%)"),
            f"median conversion: {self.median_conversion}; 'median ± SD': {self.median_sd}",
            f"funnel plots: drawn when k ≥ {self.funnel_min_k}",
        ] + ([f"ablation modalities in the main analyses: {', '.join(self.modalities)}"]
             if self.modalities else []) + [f"study set {name} ({', '.join(ids)}): pooled alone as a sensitivity analysis "
             "when at least two of its studies are in an analysis"
             for name, ids in self.study_sets.items()]


# ---------------------------------------------------------------- the schema
#
# One table per level of the plan file.  To add a plan key: add an entry to the
# table of its level and a field of the same name (with a default) to
# :class:`Plan` (for ``defaults`` and top-level keys) or :class:`OutcomePlan`
# (for outcome keys); ``load_plan`` passes every validated key on by name.
# docs/plan.md ("Adding a plan key") says more.

#: most outcomes and windows in a plan (each pair is an analysis: the work is bounded)
MAX_OUTCOMES = 100
MAX_WINDOWS = 50

#: the outcome measures the report can pool (two-group measures over the arms of a study)
REPORT_MEASURES = PROPORTIONS + ("MC",) + COMPARATIVE
MEASURES = REPORT_MEASURES

DEFAULTS_SCHEMA = {
    "method": Choice(METHODS, default=_DEFAULTS["method"], doc="τ² estimator"),
    "test": Choice(TESTS, default=_DEFAULTS["test"], doc="CI and test"),
    "level": Number(lo=0, hi=1, lo_open=True, hi_open=True, default=_DEFAULTS["level"],
                    doc="confidence level"),
    "few_studies": Choice(FEW_STUDIES, default=_DEFAULTS["few_studies"],
                          doc="k < 3: Bayesian model, or pool as usual"),
    "overlap": Choice(OVERLAP, default=_DEFAULTS["overlap"]),
    "percent_without_denominator": Choice(PERCENT_RULES,
                                          default=_DEFAULTS["percent_without_denominator"]),
    "median_conversion": Choice(MEDIAN_CONVERSIONS, default=_DEFAULTS["median_conversion"]),
    "median_sd": Choice(MEDIAN_SD_RULES, default=_DEFAULTS["median_sd"]),
    "funnel_min_k": Integer(lo=2, hi=10000, default=_DEFAULTS["funnel_min_k"]),
    "assumed_denominator_min_fraction": Number(
        lo=0, hi=1, lo_open=True, default=_DEFAULTS["assumed_denominator_min_fraction"]),
    "modalities": ListOf(Choice(MODALITIES), min_len=1, unique=True,
                         doc="ablation modalities pooled in the main analyses; omitted: all"),
    "probable_overlap": Choice(PROBABLE_OVERLAP, default=_DEFAULTS["probable_overlap"],
                               doc="probable overlap-group members: separate cohorts, or applied"),
    "percent_without_count": Choice(COUNT_RULES, default=_DEFAULTS["percent_without_count"],
                                    doc="a percent of a total that matches no whole count"),
}


class _Bounds(Spec):
    expected = "[lowest, highest] value of the scale (null for no bound), lowest < highest"

    def check(self, value, ck, record, fld):
        if (not isinstance(value, list) or len(value) != 2
                or not all(v is None or (is_number(v) and math.isfinite(float(v))) for v in value)
                or (None not in value and not value[0] < value[1])):
            return self.bad(value, ck, record, fld)
        return tuple(None if v is None else float(v) for v in value)


def _outcome_label(value, index):
    name = value.get("name")
    if isinstance(name, str) and OUTCOME_RE.fullmatch(name.strip()):
        return f"outcomes/{name.strip()}"
    return None


def _outcome_cross_checks(v, ck, record):
    if v["model"] == "GLMM" and v["measure"] not in PROPORTIONS:
        ck.error(record, "model", f"GLMM pools proportions (measure {', '.join(PROPORTIONS)}); "
                 f"measure {v['measure']} needs model: two-step")
    if v["absolute"] and v["measure"] != "MC":
        ck.error(record, "absolute", f"absolute values are pooled next to mean changes; measure "
                 f"{v['measure']} needs absolute: false")
    if v["complement"] and v["measure"] not in PROPORTIONS:
        ck.error(record, "complement", f"a complement (1 − p) needs a single-proportion measure "
                 f"({', '.join(PROPORTIONS)})")


OUTCOME_SCHEMA = {
    "name": Name(required=True, pattern=OUTCOME_RE,
                 pattern_text="an outcome name of the study records (lower-case letters, "
                 "digits and _, starting with a letter, at most 64 characters)"),
    "label": Text(max_len=300, doc="display label; default: the name"),
    "measure": Choice(REPORT_MEASURES, required=True),
    "model": Choice(MODELS, default="two-step"),
    "unit": Choice(("patients", "lesions", "any", "mixed"), default="any",
                   doc="any: each unit alone; mixed: both units in one analysis"),
    "records": ListOf(Name(pattern=OUTCOME_RE, pattern_text="an outcome name"), unique=True,
                      default=(), doc="record outcomes pooled under this name; default: name"),
    "complement": ListOf(Name(pattern=OUTCOME_RE, pattern_text="an outcome name"), unique=True,
                         default=(), doc="record outcomes whose complement (1 − p) is pooled"),
    "absolute": Boolean(default=False, doc="MC: also the absolute value at baseline and each "
                        "window"),
    "bounds": _Bounds(doc="the scale's lowest and highest value (PIs beyond them are flagged)"),
    "subgroups": ListOf(Choice(SUBGROUPS), unique=True, default=()),
    "modalities": ListOf(Choice(MODALITIES), min_len=1, unique=True,
                         doc="override of defaults/modalities for this outcome"),
    "windows": ListOf(Ref("windows"), unique=True, default=(), max_len=MAX_WINDOWS),
    "r": Number(lo=-1, hi=1, default=0.5, doc="pre-post correlation (MC)"),
    "r_sensitivity": ListOf(Number(lo=-1, hi=1), default=(), max_len=10),
    "timecourse": Boolean(default=False),
    "tau_prior": OneKey({p: Number(lo=0, lo_open=True, hi=1e6) for p in PRIORS},
                        default=("halfnormal", 0.5)),
    "study_sets": ListOf(Ref("study_sets"), unique=True, doc="omitted: every set"),
}

EXCLUSION_SCHEMA = {
    "study": Name(required=True, doc="study id"),
    "reason": Text(required=True, nonempty=True),
}

ARM_SCHEMA = {
    "study": Name(required=True, doc="study id"),
    "arm": Name(required=True, doc="arm name in that study's record"),
    "control": Name(doc="the control arm, for two-group measures (RR, OR, RD, MD, SMD, ROM)"),
    "reason": Text(default=""),
}

NOT_POOLED_SCHEMA = {
    "outcome": Name(required=True, pattern=OUTCOME_RE, pattern_text="an outcome name"),
    "reason": Text(required=True, nonempty=True),
}


TIMECOURSE_MODEL_SCHEMA = {  # the model-based time course (report/trajectory.py)
    "struct": Choice(STRUCTURES, default=SETTINGS["struct"],
                     doc="random effects over time (metafor rma.mv struct)"),
    "time_unit_days": Number(lo=0, lo_open=True, hi=36525, default=SETTINGS["time_unit_days"],
                             doc="unit of Δt in CAR's ρ^|Δt| (30.4375: months)"),
    "sampling_rho": Number(lo=-1, hi=1, lo_open=True, hi_open=True,
                           default=SETTINGS["sampling_rho"],
                           doc="assumed correlation of a study's estimates at two time points"),
    "rho_sensitivity": ListOf(Number(lo=-1, hi=1, lo_open=True, hi_open=True),
                              default=SETTINGS["rho_sensitivity"]),
    "trend": Choice(TRENDS, default=SETTINGS["trend"],
                    doc="windows: one mean per window; log_time: a line in log(1 + days)"),
    "method": Choice(("REML", "ML"), default=SETTINGS["method"]),
    "test": Choice(("z", "t"), default=SETTINGS["test"]),
    "robust": Choice(ROBUST, default=SETTINGS["robust"],
                     doc="cluster-robust inference reported as a sensitivity analysis"),
    "contrast": ListOf(Ref("windows"), min_len=2, max_len=2, unique=True,
                       doc="[from_window, to_window] for the test of change over time"),
}


class _Window(Spec):
    expected = "[first_day, last_day] with 0 <= first_day <= last_day <= 36525"

    def check(self, value, ck, record, fld):
        if (not isinstance(value, list) or len(value) != 2
                or not all(is_number(v) and math.isfinite(float(v)) for v in value)
                or not 0 <= value[0] <= value[1] <= 36525):
            return self.bad(value, ck, record, fld)
        return (float(value[0]), float(value[1]))


class _Prisma(Spec):
    """The ``prisma:`` block: PRISMA 2020 counts, checked for arithmetic consistency."""

    expected = "a mapping of PRISMA 2020 counts (docs/submission.md)"

    def check(self, value, ck, record, fld):
        from metaanalysis.review.prisma import prisma_counts

        try:
            return prisma_counts(value, file=ck.file)
        except PlanError as err:
            ck.problems.extend(err.problems)
            return INVALID


_ROB_TOOLS = tuple(TOOLS)

RISK_OF_BIAS_SCHEMA = {
    "tool": Choice(_ROB_TOOLS, required=True, doc="tool of the single-arm studies (or of all)"),
    "comparative_tool": Choice(_ROB_TOOLS, doc="tool of studies with two or more arms; "
                               "default: the same tool"),
    "required": Boolean(default=True, doc="every study must carry ratings"),
    "note": Text(default="", doc="how the ratings were made (printed in the report)"),
}

_GRADE_JUDGEMENTS = tuple(JUDGEMENTS)

GRADE_OUTCOME_SCHEMA = {
    "imprecision_ci_width": Number(lo=0, lo_open=True, doc="CI width above which imprecision "
                                   "is serious (percentage points for proportions)"),
    "ois": Integer(lo=1, hi=10_000_000, doc="optimal information size (participants)"),
    "imprecision_reason": Text(doc="where the threshold comes from (e.g. the MID)"),
    "indirectness": Record({"judgement": Choice(("serious", "very serious"), required=True),
                            "reason": Text(required=True, nonempty=True)}),
}


def _override_check(v, ck, record):
    pub = v["domain"] == "publication_bias"
    ok = (("undetected", "strongly suspected", "very strongly suspected", "not assessable")
          if pub else ("not serious", "serious", "very serious"))
    if v["judgement"] not in ok:
        ck.error(record, "judgement", f"{show(v['judgement'])} is not a judgement of "
                 f"{v['domain']}; expected one of {', '.join(ok)}")


GRADE_OVERRIDE_SCHEMA = {
    "outcome": Name(required=True, pattern=OUTCOME_RE, pattern_text="an outcome of the plan"),
    "window": Ref("windows"),
    "unit": Choice(("patients", "lesions")),
    "domain": Choice(DOMAINS, required=True),
    "judgement": Choice(_GRADE_JUDGEMENTS, required=True),
    "reason": Text(required=True, nonempty=True, doc="why the rule's judgement is replaced"),
}

GRADE_SCHEMA = {
    "design": Choice(("observational", "randomised"), default="observational",
                     doc="certainty starts low (observational) or high (randomised)"),
    "rob_serious_share": Number(lo=0, hi=1, lo_open=True, default=0.5,
                                doc="share of the weight from high-risk studies that makes "
                                "risk of bias serious"),
    "outcomes": MapOf(Record(GRADE_OUTCOME_SCHEMA), key=Name(pattern=OUTCOME_RE),
                      default={}),
    "overrides": ListOf(Record(GRADE_OVERRIDE_SCHEMA, check_all=_override_check), default=()),
}


PLAN_SCHEMA = {  # the order matters: names are defined before they are referred to
    "title": Text(max_len=500, default=""),
    "defaults": Record(DEFAULTS_SCHEMA, default={}),
    "windows": MapOf(_Window(), define="windows", default={}, max_len=MAX_WINDOWS,
                     doc="named windows in days after the procedure"),
    "timecourse_model": Record(TIMECOURSE_MODEL_SCHEMA, default={},
                               doc="one multilevel model over all time points"),
    "study_sets": MapOf(ListOf(Name(), min_len=2, unique=True,
                               expect="a list of at least two different study ids"),
                        define="study_sets", max_len=50,
                        default={}, doc="sets of study ids pooled alone as a sensitivity "
                        "analysis"),
    "outcomes": ListOf(Record(OUTCOME_SCHEMA, label=_outcome_label,
                              check_all=_outcome_cross_checks), min_len=1,
                      max_len=MAX_OUTCOMES, required=True),
    "exclusions": ListOf(Record(EXCLUSION_SCHEMA), default=()),
    "arms": ListOf(Record(ARM_SCHEMA), default=()),
    "not_pooled": ListOf(Record(NOT_POOLED_SCHEMA), default=()),
    "prisma": _Prisma(doc="PRISMA 2020 counts"),
    "risk_of_bias": Record(RISK_OF_BIAS_SCHEMA),
    "grade": Record(GRADE_SCHEMA),
}


def _fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def load_plan(path) -> Plan:
    r"""Read and validate an analysis plan against the plan schema.

    Every key at every level is checked: unknown keys are errors with the
    nearest valid key suggested, types are checked (``timecourse: "no"`` is
    text, not false), windows and study sets an outcome names must be defined,
    and a model must suit the measure.  References to studies, outcomes and
    arms are checked against the study records by :func:`plan_problems`.

    Parameters
    ----------
    path : str or Path
        The plan YAML file (read with the limits of
        :mod:`metaanalysis.records.yamlsafe`: no aliases, bounded size and depth).

    Returns
    -------
    Plan

    Raises
    ------
    PlanError
        One :class:`~metaanalysis.errors.Problem` per bad entry, naming the file,
        the entry, the value and what was expected.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "plan.yaml"
    >>> _ = p.write_text("exclusion: []\noutcomes: [{name: pain_vas, measure: MC}]\n")
    >>> try:
    ...     load_plan(p)
    ... except PlanError as err:
    ...     print(str(err).split(": ", 1)[1])
    exclusion: unknown key; did you mean exclusions?
    """
    file = str(path)
    raw, problems = read_yaml(path, "a YAML analysis plan")
    if problems:
        raise PlanError(problems)
    if not isinstance(raw, dict):
        raise PlanError([Problem(file, "", "", f"top level is {type(raw).__name__}; expected a "
                                 "mapping with defaults, windows and outcomes (docs/plan.md)")])
    values, problems = validate(Record(PLAN_SCHEMA), raw, file)
    if problems:
        raise PlanError(problems)
    problems = _file_name_clashes(file, "windows", values["windows"])
    if problems:
        raise PlanError(problems)
    text = read_bytes_limited(path)[0].decode("utf-8").removeprefix("\ufeff")
    outcomes = []
    for o in values["outcomes"]:
        o = {k: v for k, v in o.items() if k in _fields(OutcomePlan)}
        o["label"] = o["label"] or o["name"]
        outcomes.append(OutcomePlan(**o))
    top = {k: v for k, v in values.items()
           if k not in ("defaults", "outcomes", "exclusions", "arms", "not_pooled")}
    return Plan(
        path=file, text=text, **{k: v for k, v in values["defaults"].items()},
        **{k: v for k, v in top.items() if k in _fields(Plan)},
        outcomes=tuple(outcomes),
        exclusions=tuple((e["study"], e["reason"]) for e in values["exclusions"]),
        arms=tuple((a["study"], a["arm"], a["reason"]) for a in values["arms"]),
        controls={a["study"]: a["control"] for a in values["arms"] if a["control"]},
        not_pooled=tuple((n["outcome"], n["reason"]) for n in values["not_pooled"]),
    )


def _file_name_clashes(file: str, section: str, names) -> list[Problem]:
    """Names that would share a file name (``a/b`` and ``a-b`` both give ``a-b``)."""
    seen, out = {}, []
    for name in names:
        key = slug(name).casefold()
        if key in seen:
            out.append(Problem(file, section, name, f"gives the same file name ({slug(name)}) as "
                               f"{show(seen[key])}; rename one (file names keep only letters, "
                               "digits, _ - .)"))
        seen.setdefault(key, name)
    return out


def _kinds(records) -> tuple[bool, bool]:
    """(gives proportions, gives means) for a list of outcome records."""
    prop = any("events" in o.stats or "percent" in o.stats for o in records)
    mean = any("mean" in o.stats or "median" in o.stats for o in records)
    return prop, mean


def plan_problems(plan: Plan, studies) -> list[Problem]:
    """Problems of ``plan`` against the study records: unknown studies, outcomes, arms,
    and measures the records of an outcome cannot give.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> plan_problems(ma.load_plan(ma.example_path("studies/plan.yaml")),
    ...               ma.load_studies(ma.example_path()))
    []
    """
    file = plan.path or "built-in default plan"
    out: list[Problem] = []
    ids = {s.id: s for s in studies}
    names = studies.outcomes()

    def study(record, sid):
        if sid not in ids:
            out.append(Problem(file, record, "study", f"{show(sid)} is not a study id"
                               + suggest(sid, ids)))
            return None
        return ids[sid]

    for i, (sid, _) in enumerate(plan.exclusions):
        study(f"exclusions[{i}]", sid)
    for i, (sid, arm, _) in enumerate(plan.arms):
        s = study(f"arms[{i}]", sid)
        for fld, name in (("arm", arm), ("control", plan.controls.get(sid))):
            if s is not None and name is not None and name not in s.arms:
                out.append(Problem(file, f"arms[{i}]", fld, f"{show(name)} is not an arm of "
                                   f"{sid}" + (suggest(name, s.arms) if s.arms
                                               else "; it has no arms")))
        if plan.controls.get(sid) == arm:
            out.append(Problem(file, f"arms[{i}]", "control", f"{show(arm)} is the arm pooled; "
                               "expected the study's other (control) arm"))
    for name, members in plan.study_sets.items():
        for sid in members:
            if sid not in ids:
                out.append(Problem(file, "study_sets", name, f"{show(sid)} is not a study id"
                                   + suggest(sid, ids)))
    for i, (name, _) in enumerate(plan.not_pooled):
        if name not in names:
            out.append(Problem(file, f"not_pooled[{i}]", "outcome", f"{show(name)} is not an "
                               "outcome of the study records" + suggest(name, names)))
    for op in plan.outcomes:
        rec = f"outcomes/{op.name}"
        missing = [r for r in op.all_records if r not in names]
        if len(missing) == len(op.all_records):
            fld = "name" if op.records == (op.name,) and not op.complement else "records"
            out.append(Problem(file, rec, fld, f"{show(missing[0])} is not an outcome of the "
                               "study records" + suggest(missing[0], names)))
            continue
        prop, mean = _kinds([o for _, o in studies.records() if o.outcome in op.all_records])
        if op.measure in COMPARATIVE and not plan.controls:
            out.append(Problem(file, rec, "measure", f"{op.measure} compares two arms, but no "
                               "entry under arms names a control arm (arms: [{study, arm, "
                               "control}])"))
        elif op.measure in COMPARATIVE_COUNTS and not prop:
            out.append(Problem(file, rec, "measure", f"{op.measure} compares event counts, but "
                               f"no record of {op.name} gives events/total or a percent"))
        elif op.measure in COMPARATIVE and op.measure not in COMPARATIVE_COUNTS and not mean:
            out.append(Problem(file, rec, "measure", f"{op.measure} compares means, but no "
                               f"record of {op.name} gives a mean or median"))
        elif op.measure in PROPORTIONS and not prop:
            out.append(Problem(file, rec, "measure", f"{op.measure} pools proportions, but no "
                               f"record of {op.name} gives events/total or a percent"
                               + ("; its records give means or medians: use measure: MC"
                                  if mean else "")))
        elif op.measure == "MC" and not mean:
            out.append(Problem(file, rec, "measure", f"MC pools mean changes, but no record of "
                               f"{op.name} gives a mean or median"
                               + ("; its records give counts: use measure: PLO (or PR, PAS, "
                                  "PFT)" if prop else "")))
    return out


def check_plan(plan: Plan, studies) -> None:
    """Raise :class:`PlanError` listing :func:`plan_problems`, if any."""
    problems = plan_problems(plan, studies)
    if problems:
        raise PlanError(problems)


#: windows of the built-in default plan (days after the procedure)
DEFAULT_WINDOWS = {"about_1_day": (0.0, 3.0), "about_1_week": (5.0, 10.0),
                   "about_1_month": (21.0, 42.0), "about_3_months": (75.0, 105.0),
                   "about_6_months": (150.0, 200.0), "about_1_year": (300.0, 430.0)}


def default_plan(studies) -> Plan:
    """The plan used when no plan file is given: every outcome the records allow.

    Outcomes reported as events/total or percent are pooled as proportions
    (GLMM, each unit separately, any time point); outcomes with a baseline
    record and follow-up means or medians as raw mean change (r = 0.5,
    sensitivity 0.3 and 0.7) in :data:`DEFAULT_WINDOWS`; anything else is
    listed as not pooled.  Model and handling rules are the defaults of
    :func:`load_plan`.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> plan = default_plan(ma.load_studies(ma.example_path()))
    >>> [o.name for o in plan.outcomes][:3]
    ['cement_leakage', 'complications_any', 'complications_major']
    """
    outcomes, not_pooled = [], []
    for name in studies.outcomes():
        recs = [o for _, o in studies.records(name)]
        if any(("events" in o.stats) or ("percent" in o.stats) for o in recs):
            outcomes.append(OutcomePlan(name=name, label=name.replace("_", " ").capitalize(),
                                        measure="PLO", model="GLMM", unit="any"))
        elif any(o.timepoint.kind == "baseline" for o in recs) and any(
                o.timepoint.kind == "follow-up" and o.timepoint.defined for o in recs):
            outcomes.append(OutcomePlan(name=name, label=name.replace("_", " ").capitalize()
                                        + " (baseline minus follow-up)", measure="MC",
                                        unit="any", windows=tuple(DEFAULT_WINDOWS),
                                        r=0.5, r_sensitivity=(0.3, 0.7), timecourse=True))
        else:
            not_pooled.append((name, "no counts and no baseline with follow-up means or medians"))
    return Plan(path="", title="Meta-analysis (built-in default plan)", **_DEFAULTS,
                windows=dict(DEFAULT_WINDOWS), outcomes=tuple(outcomes),
                not_pooled=tuple(not_pooled), text="")
