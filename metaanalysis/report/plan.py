"""The analysis plan: which outcomes to pool, how, and under which assumptions.

A plan is a YAML file (``studies/plan.yaml`` by default) with three sections:
``defaults`` (model and handling rules), ``windows`` (named time windows in
days) and ``outcomes`` (one entry per pooled outcome).  See ``docs/plan.md``.

Examples
--------
>>> from metaanalysis.report.plan import load_plan
>>> plan = load_plan("studies/plan.yaml")  # doctest: +SKIP
>>> [o.name for o in plan.outcomes]        # doctest: +SKIP
['pain_vas', 'morphine_mg_day', 'local_control', 'cement_leakage', 'complications']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from metaanalysis.effects.conversions import METHODS as MEDIAN_CONVERSIONS
from metaanalysis.engine.batch import METHODS, TESTS
from metaanalysis.errors import PlanError, Problem

MEASURES = ("PR", "PLO", "PAS", "PFT", "MN", "MNLN", "MC", "SMCR")
MODELS = ("two-step", "GLMM")
FEW_STUDIES = ("bayes", "pool")
OVERLAP = ("one_per_group", "all")
PERCENT_RULES = ("exclude", "assume")
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
            f"overlapping cohorts: {'largest study per overlap group' if self.overlap == 'one_per_group' else 'all studies'}",
            (f"percent without denominator: {self.percent_without_denominator}; sensitivity: "
             f"smallest and largest candidate denominator from "
             f"{100 * self.assumed_denominator_min_fraction:g}% to 100% of the units treated "
             "(all units treated when the percent is 0% or 100%)"),
            f"median conversion: {self.median_conversion}; 'median ± SD': {self.median_sd}",
            f"funnel plots: drawn when k ≥ {self.funnel_min_k}",
        ] + [f"study set {name} ({', '.join(ids)}): pooled alone as a sensitivity analysis "
             "when at least two of its studies are in an analysis"
             for name, ids in self.study_sets.items()]


def _choice(problems, file, where, key, value, allowed):
    if value not in allowed:
        problems.append(Problem(file, where, key, f"{value!r} is not one of {', '.join(map(str, allowed))}"))
    return value


def _prior(problems, file, where, value):
    if not isinstance(value, dict) or len(value) != 1:
        problems.append(Problem(file, where, "tau_prior", f"{value!r}: expected one of {{halfnormal: SCALE}} or {{halfcauchy: SCALE}}"))
        return ("halfnormal", 0.5)
    (name, scale), = value.items()
    if name not in PRIORS:
        problems.append(Problem(file, where, "tau_prior", f"{name!r} is not one of {', '.join(PRIORS)}"))
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or scale <= 0:
        problems.append(Problem(file, where, "tau_prior", f"scale {scale!r} must be a positive number"))
        scale = 0.5
    return (name, float(scale))


def _outcome(problems, file, i, raw, windows, sets=None) -> OutcomePlan | None:
    where = f"outcomes[{i}]"
    if not isinstance(raw, dict):
        problems.append(Problem(file, where, "", f"expected a mapping, got {type(raw).__name__}"))
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        problems.append(Problem(file, where, "name", f"{name!r}: expected an outcome name"))
        return None
    where = f"outcomes/{name}"
    measure = _choice(problems, file, where, "measure", raw.get("measure"), MEASURES)
    model = _choice(problems, file, where, "model", raw.get("model", "two-step"), MODELS)
    unit = _choice(problems, file, where, "unit", raw.get("unit", "any"), ("patients", "lesions", "any"))
    wins = raw.get("windows", [])
    if not isinstance(wins, list) or any(w not in windows for w in wins):
        problems.append(Problem(file, where, "windows", f"{wins!r}: every entry must be a window defined under 'windows' ({', '.join(windows)})"))
        wins = []
    r = raw.get("r", 0.5)
    rs = raw.get("r_sensitivity", [])
    for val in [r, *(rs if isinstance(rs, list) else [rs])]:
        if not isinstance(val, (int, float)) or isinstance(val, bool) or not -1 <= val <= 1:
            problems.append(Problem(file, where, "r", f"{val!r}: a correlation must be a number in [-1, 1]"))
            r, rs = 0.5, []
            break
    use = raw.get("study_sets")
    if use is not None and (not isinstance(use, list)
                            or any(not isinstance(x, str) or x not in (sets or {}) for x in use)):
        problems.append(Problem(file, where, "study_sets", f"{use!r}: expected a list of names "
                                f"defined under 'study_sets' ({', '.join(sets or {}) or 'none'})"))
        use = None
    return OutcomePlan(
        name=name,
        label=str(raw.get("label", name)),
        measure=measure,
        model=model,
        unit=unit,
        windows=tuple(wins),
        r=float(r),
        r_sensitivity=tuple(float(x) for x in rs),
        timecourse=bool(raw.get("timecourse", False)),
        tau_prior=_prior(problems, file, where, raw.get("tau_prior", {"halfnormal": 0.5})),
        study_sets=None if use is None else tuple(use),
    )


def load_plan(path) -> Plan:
    """Read and validate an analysis plan.

    Parameters
    ----------
    path : str or Path
        The plan YAML file.

    Returns
    -------
    Plan

    Raises
    ------
    PlanError
        One :class:`~metaanalysis.errors.Problem` per bad entry, naming the file,
        the entry and the value.
    """
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        raw = yaml.safe_load(text)
    except FileNotFoundError:
        raise PlanError([Problem(file, "", "", "plan file not found")]) from None
    except (UnicodeDecodeError, yaml.YAMLError) as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise PlanError([Problem(file, "", "", f"not a readable YAML file: {msg}")]) from None
    if not isinstance(raw, dict):
        raise PlanError([Problem(file, "", "", f"expected a mapping at top level, got {type(raw).__name__}")])
    problems: list[Problem] = []
    d = {**_DEFAULTS, **(raw.get("defaults") or {})}
    unknown = set(d) - set(_DEFAULTS)
    for key in sorted(unknown):
        problems.append(Problem(file, "defaults", key, "unknown setting"))
    _choice(problems, file, "defaults", "method", d["method"], METHODS)
    _choice(problems, file, "defaults", "test", d["test"], TESTS)
    _choice(problems, file, "defaults", "few_studies", d["few_studies"], FEW_STUDIES)
    _choice(problems, file, "defaults", "overlap", d["overlap"], OVERLAP)
    _choice(problems, file, "defaults", "percent_without_denominator", d["percent_without_denominator"], PERCENT_RULES)
    _choice(problems, file, "defaults", "median_conversion", d["median_conversion"], MEDIAN_CONVERSIONS)
    _choice(problems, file, "defaults", "median_sd", d["median_sd"], MEDIAN_SD_RULES)
    fmk = d["funnel_min_k"]
    if not isinstance(fmk, int) or isinstance(fmk, bool) or fmk < 2:
        problems.append(Problem(file, "defaults", "funnel_min_k", f"{fmk!r}: expected a whole number of studies, at least 2"))
        fmk = 10
    level = d["level"]
    if not isinstance(level, float) or not 0 < level < 1:
        problems.append(Problem(file, "defaults", "level", f"{level!r}: expected a number between 0 and 1, e.g. 0.95"))

    windows = {}
    for name, val in (raw.get("windows") or {}).items():
        ok = isinstance(val, list) and len(val) == 2 and all(isinstance(v, (int, float)) for v in val) and val[0] <= val[1]
        if not ok:
            problems.append(Problem(file, "windows", str(name), f"{val!r}: expected [first_day, last_day]"))
            continue
        windows[str(name)] = (float(val[0]), float(val[1]))

    frac = d["assumed_denominator_min_fraction"]
    if not isinstance(frac, (int, float)) or isinstance(frac, bool) or not 0 < frac <= 1:
        problems.append(Problem(file, "defaults", "assumed_denominator_min_fraction",
                                f"{frac!r}: expected a number in (0, 1], e.g. 0.5"))
        frac = 0.5

    study_sets = {}
    raw_sets = raw.get("study_sets") or {}
    if not isinstance(raw_sets, dict):
        problems.append(Problem(file, "study_sets", "", f"{raw_sets!r}: expected a mapping "
                                "{name: [study id, ...]}"))
        raw_sets = {}
    for name, ids in raw_sets.items():
        if (not isinstance(ids, list) or len(ids) < 2
                or any(not isinstance(x, str) or not x for x in ids) or len(set(ids)) != len(ids)):
            problems.append(Problem(file, "study_sets", str(name), f"{ids!r}: expected a list of "
                                    "at least two different study ids"))
            continue
        study_sets[str(name)] = tuple(ids)

    outcomes = []
    raw_outcomes = raw.get("outcomes")
    if not isinstance(raw_outcomes, list) or not raw_outcomes:
        problems.append(Problem(file, "outcomes", "", "expected a non-empty list of outcomes"))
        raw_outcomes = []
    for i, item in enumerate(raw_outcomes):
        o = _outcome(problems, file, i, item, windows, study_sets)
        if o is not None:
            outcomes.append(o)

    exclusions = []
    for i, item in enumerate(raw.get("exclusions") or []):
        if not isinstance(item, dict) or not isinstance(item.get("study"), str) or not item.get("reason"):
            problems.append(Problem(file, f"exclusions[{i}]", "", f"{item!r}: expected {{study: ID, reason: TEXT}}"))
            continue
        exclusions.append((item["study"], str(item["reason"])))

    arms = []
    for i, item in enumerate(raw.get("arms") or []):
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) and item.get(k) for k in ("study", "arm")):
            problems.append(Problem(file, f"arms[{i}]", "", f"{item!r}: expected {{study: ID, arm: ARM, reason: TEXT}}"))
            continue
        arms.append((item["study"], item["arm"], str(item.get("reason", ""))))

    not_pooled = []
    for i, item in enumerate(raw.get("not_pooled") or []):
        if not isinstance(item, dict) or not isinstance(item.get("outcome"), str) or not item.get("reason"):
            problems.append(Problem(file, f"not_pooled[{i}]", "", f"{item!r}: expected {{outcome: NAME, reason: TEXT}}"))
            continue
        not_pooled.append((item["outcome"], str(item["reason"])))

    if problems:
        raise PlanError(problems)
    return Plan(
        path=file,
        title=str(raw.get("title", "")),
        method=d["method"],
        test=d["test"],
        level=float(level),
        few_studies=d["few_studies"],
        overlap=d["overlap"],
        percent_without_denominator=d["percent_without_denominator"],
        median_conversion=d["median_conversion"],
        median_sd=d["median_sd"],
        windows=windows,
        outcomes=tuple(outcomes),
        exclusions=tuple(exclusions),
        arms=tuple(arms),
        not_pooled=tuple(not_pooled),
        funnel_min_k=int(fmk),
        study_sets=study_sets,
        assumed_denominator_min_fraction=float(frac),
        text=text,
    )


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
    >>> plan = default_plan(ma.load_studies("studies"))  # doctest: +SKIP
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
