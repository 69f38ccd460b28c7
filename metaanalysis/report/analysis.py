"""Running an analysis plan on a set of studies: selection, effect sizes, pooling, sensitivity.

No file I/O here (``report.py`` writes the files).  For every outcome of the
plan, every time window and unit, :func:`run_plan` applies the plan's rules in
this order, recording one reason for every record it leaves out:

1. study exclusions named in the plan;
2. multi-arm studies: only the arm named under ``arms`` in the plan;
3. unit of analysis: records in another unit than the plan's are left out; with
   ``unit: any`` each unit is pooled separately (patients and lesions are never
   mixed);
4. time window: the follow-up record whose reported window overlaps the plan's
   window (the one nearest the window's midpoint if a study has several); for
   mean-change measures the study also needs a baseline record;
   proportion outcomes without windows use every time point (the latest defined
   one if a study reports several);
5. statistics: events/total are used as reported; a percent with a total but no
   count uses the single count consistent with it (or is left out); a percent
   without a denominator is left out (``percent_without_denominator:
   exclude``) or, in sensitivity analyses, given an assumed denominator from
   :func:`metaanalysis.records.checks.candidate_denominators`; a median with range/IQR
   is converted to mean and SD (:func:`metaanalysis.estimate_mean_sd`, method
   from the plan); a "median ± SD" is left out (``median_sd: exclude``) or used
   with the median as the mean (``as_mean``);
6. overlap groups: with ``overlap: one_per_group`` only the largest eligible
   study of a group is kept (most patients/lesions in the analysis; ties by
   id), with ``all`` every study is pooled.

Models: k ≥ 3 (or ``few_studies: pool``): two-step random effects (plan's τ²
estimator and test, REML + Knapp–Hartung by default) or, for proportions with
``model: GLMM``, the binomial-normal GLMM; 1 < k < 3 with ``few_studies:
bayes``: :func:`metaanalysis.pool_bayes` with the plan's τ prior (printed);
k ≤ 1: not pooled.

Examples
--------
>>> import metaanalysis as ma
>>> from metaanalysis.report.analysis import run_plan
>>> studies = ma.load_studies(ma.example_path())  # four studies shipped with the package
>>> res = run_plan(studies, ma.load_plan(ma.example_path("studies/plan.yaml")))
>>> res.results_table()[["outcome", "window", "k", "estimate"]].round(4)
          outcome         window  k  estimate
0        pain_vas  about_1_month  3    4.2965
1  cement_leakage            any  3    0.2918
>>> print(res.analyses[0].sentence())
Pooled pain reduction at about 1 month was 4.30 (95% CI 1.45 to 7.15; 3 studies, 196 patients; I² = 97.2%; REML + Knapp–Hartung (MC)).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metaanalysis.errors import MetaAnalysisError, one_line
from metaanalysis.formatting import num, pct
from metaanalysis.records.studies import StudySet
from metaanalysis.report.plan import OutcomePlan, Plan, check_plan
from metaanalysis.report.selection import PROPORTIONS, Selection, assumed_events, select
from metaanalysis.report.study_labels import (
    FLAG_MARKS,
    display_label,
    display_labels,
    flag_text,
    flags_of,
    flags_summary,
)

# ---------------------------------------------------------------- pooling

def effect_data(sel: Selection, op: OutcomePlan, r: float | None = None,
                measure: str | None = None) -> pd.DataFrame:
    """Effect sizes (``yi``, ``vi``, ``ni``) of the included studies, labelled by study."""
    from metaanalysis.effects.effect_sizes import effect_sizes

    df = sel.included
    m = measure or op.measure
    if m in PROPORTIONS:
        return effect_sizes(m, data=df, events="events", total="total")
    if m == "MC":
        return effect_sizes("MC", data=df, mean_pre="mean_pre", sd_pre="sd_pre",
                            mean_post="mean_post", sd_post="sd_post", n="n",
                            r=op.r if r is None else r)
    raise ValueError(m)


def _prior(op: OutcomePlan):
    from scipy import stats

    name, scale = op.tau_prior
    return stats.halfnorm(scale=scale) if name == "halfnormal" else stats.halfcauchy(scale=scale)


def plan_model(k: int, op: OutcomePlan, plan: Plan) -> str:
    """The model the plan prescribes for ``k`` studies (a ``fit`` model spec)."""
    if k < 3 and plan.few_studies == "bayes":
        return "bayes"
    if op.model == "GLMM":
        return "GLMM"
    return f"{op.measure}:{plan.method}:{plan.test}"


#: most studies for a leave-one-out analysis with the GLMM (each fit takes about a second)
MAX_GLMM_LEAVE_ONE_OUT = 30

#: errors of a model on degenerate data (all 0% or 100%, no variance...): that analysis is
#: "not pooled" with the reason, the rest of the report goes on
FIT_ERRORS = (MetaAnalysisError, ValueError, ArithmeticError, np.linalg.LinAlgError)


def _not_pooled_on_failure(fn):
    """``fit`` never raises on data a model cannot fit: ``(None, "model failed: ...")``."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FIT_ERRORS as err:
            return None, "model failed: " + one_line(str(err) or type(err).__name__)
    return wrapper


@_not_pooled_on_failure
def fit(sel: Selection, op: OutcomePlan, plan: Plan, *, model: str = "plan", r: float | None = None):
    """Pool one selection; returns ``(result, model_label)`` or ``(None, reason)``.

    A model that fails on the data (e.g. the GLMM when every study is at 100%)
    gives ``(None, "model failed: <reason>")``: the analysis is reported as not
    pooled and the rest of the report goes on.

    ``model``: ``"plan"`` (the plan's rule), ``"GLMM"``, ``"bayes"``, or a two-step
    ``"MEASURE:METHOD:TEST"`` such as ``"PFT:REML:knha"``.
    """
    k = len(sel.included)
    labels = list(sel.included["study"])
    if k == 0:
        return None, "no study with usable data"
    if k == 1:
        who = sel.included["label"].iloc[0] if "label" in sel.included.columns else labels[0]
        return None, f"one study ({who}): nothing to pool"
    if model == "plan":
        model = plan_model(k, op, plan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if model == "GLMM":
            from metaanalysis.models.proportions import pool_glmm

            d = sel.included
            res = pool_glmm(d["events"].to_numpy(float), d["total"].to_numpy(float),
                            level=plan.level, labels=labels, unit=d["unit"].iloc[0])
            return res, "GLMM (binomial-normal, ML), Wald CI"
        if model == "bayes":
            from metaanalysis.models.bayes import pool_bayes

            measure = "PLO" if op.measure in PROPORTIONS else op.measure
            es = effect_data(sel, op, r=r, measure=measure)
            res = pool_bayes(es, tau_prior=_prior(op), level=plan.level, labels=labels,
                             measure=measure, ni=es["ni"].to_numpy(float))
            return res, f"Bayesian normal-normal, τ ~ {res.prior_text}, flat μ prior"
        from metaanalysis.models.pooling import pool

        measure, method, test = model.split(":")
        es = effect_data(sel, op, r=r, measure=measure)
        res = pool(es, method=method, test=test, level=plan.level, labels=labels,
                   unit=sel.included["unit"].iloc[0])
        kh = {"knha": "Knapp–Hartung", "z": "z", "adhoc": "modified Knapp–Hartung"}[test]
        return res, f"{method} + {kh} ({measure})"


def summarise(res, measure: str) -> dict:
    """Estimate, CI, PI (natural scale), τ², I², k of a PoolResult or BayesResult."""
    from metaanalysis.effects.transforms import to_natural
    from metaanalysis.models.bayes import BayesResult

    if isinstance(res, BayesResult):
        raw = [res.mu.median, res.mu.ci_lb, res.mu.ci_ub, res.pi_lb, res.pi_ub]
        m = res.measure
        tau2, i2 = res.tau.median ** 2, math.nan
        ni = res.ni
    else:
        raw = [res.estimate, res.ci_lb, res.ci_ub, res.pi_lb, res.pi_ub]
        m = res.measure or measure
        tau2, i2 = res.tau2, res.i2
        ni = res.ni
    nat = np.asarray(to_natural(m, np.asarray(raw, float), ni=ni), float)
    return dict(zip(("estimate", "ci_lb", "ci_ub", "pi_lb", "pi_ub"), map(float, nat)),
                tau2=float(tau2), i2=float(i2), k=int(res.k))


# ---------------------------------------------------------------- one analysis

@dataclass(frozen=True)
class Analysis:
    """One pooled analysis (outcome × window × unit) with its sensitivity analyses."""

    outcome: str
    label: str
    window: str | None
    window_days: tuple | None
    unit: str
    measure: str
    selection: Selection
    result: object  # PoolResult, BayesResult or None
    model: str  # model label, or the reason it was not pooled
    sensitivity: pd.DataFrame = field(repr=False, default=None)
    assumptions: tuple[str, ...] = ()

    @property
    def pooled(self) -> bool:
        return self.result is not None

    @property
    def key(self) -> str:
        """File-name stem, e.g. ``pain_vas__about_1_month__patients``."""
        return f"{self.outcome}__{self.window or 'all'}__{self.unit}"

    @property
    def total_n(self) -> int:
        return int(self.selection.included["ni"].sum()) if len(self.selection.included) else 0

    def labels(self, flags: bool = True) -> list[str]:
        """Display labels of the included studies, e.g. ``["Chen 2022 †§", "Wu 2021"]``."""
        inc = self.selection.included
        if not flags:
            return list(inc["label"])
        return [f"{lab} {f}" if f else lab for lab, f in zip(inc["label"], inc["flags"])]

    def footnotes(self, plan: Plan | None = None) -> list[str]:
        """One line per flag marker used in this analysis, stating what it means."""
        return [flag_text(m, plan) for m in flags_of(self.selection.included)]

    def row(self) -> dict:
        """One row of the results table."""
        base = {"outcome": self.outcome, "label": self.label, "window": self.window or "any",
                "days": "" if not self.window_days else f"{self.window_days[0]:g}-{self.window_days[1]:g}",
                "unit": self.unit, "k": len(self.selection.included), "n": self.total_n,
                "measure": self.measure,
                "scale": "proportion" if self.measure in PROPORTIONS else "raw mean change (pre − post)",
                "studies": ", ".join(self.selection.included["study"]),
                "study_labels": ", ".join(self.labels()),
                "flags": flags_summary(self.selection.included),
                "model": self.model if self.pooled else "not pooled",
                "estimate": math.nan, "ci_lb": math.nan, "ci_ub": math.nan, "pi_lb": math.nan,
                "pi_ub": math.nan, "tau2": math.nan, "i2": math.nan,
                "note": "" if self.pooled else self.model}
        if self.pooled:
            base.update({k: v for k, v in summarise(self.result, self.measure).items() if k != "k"})
        return base

    def sentence(self) -> str:
        """One sentence of results, e.g. "Pooled cement leakage was 29% (95% CI ...)"."""
        label = self.label.split(" (")[0]
        where = f" at {self.window.replace('_', ' ')}" if self.window else ""
        unitw = self.unit
        k = len(self.selection.included)
        if not self.pooled:
            return f"{label}{where} ({unitw}): not pooled — {self.model}."
        s = summarise(self.result, self.measure)
        est = estimate_text(self.measure, s, f"{100 * self.result.level:g}%",
                            "CrI" if "Bayes" in self.model else "CI")
        het = f"I² = {pct(s['i2'])}" if not math.isnan(s["i2"]) else f"τ = {num(math.sqrt(s['tau2']), 2)}"
        return (f"Pooled {label.lower()}{where} was {est}; {k} studies, {self.total_n} "
                f"{unitw}; {het}; {self.model}).")


def estimate_text(measure: str, s, level_text: str, interval: str) -> str:
    """``"29.0% (95% CI 24.1–34.5%"``: estimate and interval of a summary row
    (proportions in percent), the parenthesis left open for what follows."""
    if measure in PROPORTIONS:
        return (f"{num(100 * s['estimate'], 1)}% ({level_text} {interval} "
                f"{num(100 * s['ci_lb'], 1)}–{num(100 * s['ci_ub'], 1)}%")
    return (f"{num(s['estimate'], 2)} ({level_text} {interval} {num(s['ci_lb'], 2)} to "
            f"{num(s['ci_ub'], 2)}")


def _sens_row(name, res, measure, sel, note="", **extra):
    inc = sel.included
    row = {"analysis": name, "k": len(inc), "n": int(inc["ni"].sum()),
           "estimate": math.nan, "ci_lb": math.nan, "ci_ub": math.nan, "tau2": math.nan,
           "i2": math.nan, "note": note, "flags": flags_summary(inc),
           "studies": ", ".join(inc["study"]), "left_out": "", "study_set": ""}
    row.update(extra)
    if res is not None:
        s = summarise(res, measure)
        row.update(k=s["k"], estimate=s["estimate"], ci_lb=s["ci_lb"], ci_ub=s["ci_ub"],
                   tau2=s["tau2"], i2=s["i2"])
    return row


def plausible_denominators(percent: float, upper: int | None, candidates, min_fraction: float = 0.5):
    """Denominators assumed in the sensitivity analysis of a percent without a denominator.

    The rule, stated in the output: among the denominators consistent with the
    reported percent (:func:`metaanalysis.records.checks.candidate_denominators`), those
    from ``min_fraction`` of the units treated (``upper``) to all of them; for
    0% or 100% (every denominator is consistent) the number treated.  Returns
    ``(smallest, largest)`` or None when no candidate qualifies.

    Examples
    --------
    >>> plausible_denominators(94.8, 140, [58, 77, 96, 97, 115, 116, 134, 135])
    (77, 135)
    >>> plausible_denominators(100, 33, range(1, 34))
    (33, 33)
    """
    cands = sorted(int(c) for c in candidates)
    if not cands or not upper:
        return None
    if percent in (0, 100) and int(upper) in cands:
        return int(upper), int(upper)
    keep = [c for c in cands if c >= math.ceil(min_fraction * upper - 1e-9)]
    return (keep[0], keep[-1]) if keep else None


def _subset(sel: Selection, drop: str) -> Selection:
    inc = sel.included[sel.included["study"] != drop].reset_index(drop=True)
    return dataclasses.replace(sel, included=inc)


def sensitivity(studies: StudySet, plan: Plan, op: OutcomePlan, window, unit,
                sel: Selection, main, model: str) -> pd.DataFrame:
    """The sensitivity table of one analysis (one row per alternative)."""
    m = op.measure
    k = len(sel.included)
    spec = plan_model(k, op, plan)
    rows = [_sens_row(f"main: {model}" if main is not None else "main: not pooled", main, m, sel,
                      "" if main is not None else model)]
    # alternative models
    if main is not None:
        alts = []
        if m in PROPORTIONS:
            alts = [("GLMM", "model: GLMM"), (f"PLO:{plan.method}:{plan.test}", "model: logit two-step"),
                    (f"PFT:{plan.method}:{plan.test}", "model: Freeman–Tukey two-step"),
                    ("bayes", "model: Bayesian (logit)")]
        else:
            alts = [(f"{m}:{plan.method}:{plan.test}", f"model: {plan.method} + Knapp–Hartung"),
                    (f"{m}:{plan.method}:z", f"model: {plan.method}, z (no Knapp–Hartung)"),
                    ("bayes", "model: Bayesian")]
        for alt_spec, name in alts:
            res, lab = fit(sel, op, plan, model=alt_spec)
            if lab == model:
                continue
            rows.append(_sens_row(name, res, m, sel, lab))
    # leave-one-out (the GLMM only up to MAX_GLMM_LEAVE_ONE_OUT studies: one fit per study)
    if k >= 3 and spec == "GLMM" and k > MAX_GLMM_LEAVE_ONE_OUT:
        rows.append(_sens_row("leave-one-out: not run", None, m, sel,
                              f"k = {k}: leave-one-out with the GLMM is run for k ≤ "
                              f"{MAX_GLMM_LEAVE_ONE_OUT} (one fit per study)"))
    elif k >= 3:
        for sid in sel.included["study"]:
            sub = _subset(sel, sid)
            res, lab = fit(sub, op, plan, model=spec)
            lab_s = sel.included.set_index("study").loc[sid, "label"]
            rows.append(_sens_row(f"leave out {lab_s}", res, m, sub, lab, left_out=sid))
    # pre-post correlation
    if m == "MC" and main is not None:
        for r in op.r_sensitivity:
            res, lab = fit(sel, op, plan, model=spec, r=r)
            rows.append(_sens_row(f"r = {r:g}", res, m, sel, lab))
    # rule changes that alter the selection
    variants = []
    if plan.overlap == "one_per_group" and sel.excluded["reason"].str.startswith("overlap").any():
        variants.append(("overlap: all studies of each group", dataclasses.replace(plan, overlap="all"), None))
    if plan.median_sd == "exclude" and sel.excluded["reason"].str.contains("median ± SD").any():
        variants.append(("'median ± SD' used as mean ± SD", dataclasses.replace(plan, median_sd="as_mean"), None))
    if m == "MC" and sel.included["assumption"].str.contains(plan.median_conversion).any():
        alt = "wan" if plan.median_conversion != "wan" else "luo-shi"
        variants.append((f"median conversion: {alt}", dataclasses.replace(plan, median_conversion=alt), None))
    if sel.pending_denominators:
        labels = display_labels(studies)
        frac = plan.assumed_denominator_min_fraction
        picks, pct_of = {}, {}
        for sid, t, p_, dec_, upper, c in sel.pending_denominators:
            pct_of[(sid, t)] = (p_, dec_)
            pl = plausible_denominators(p_, upper, c, frac)
            if pl:
                picks[(sid, t)] = pl
        for which, j in (("smallest", 0), ("largest", 1)):
            assumed = {key: pl[j] for key, pl in picks.items()}
            if assumed:
                desc = ", ".join(f"{labels.get(s_, s_)} {assumed_events(*pct_of[key], c)}/{c}"
                                 for key, c in assumed.items() for s_ in [key[0]])
                name = (f"assumed denominators ({which} plausible, "
                        f"{100 * frac:g}–100% of units treated): {desc}")
                variants.append((name, plan, assumed))
    for name, p2, assumed in variants:
        s2 = select(studies, p2, op, window, unit, assumed=assumed)
        res, lab = fit(s2, op, p2)
        rows.append(_sens_row(name, res, m, s2, lab))
    # named study sets pooled alone (e.g. the two anchor series), when >= 2 are in the analysis
    for set_name in plan.sets_for(op):
        ids = plan.study_sets.get(set_name, ())
        inc = sel.included[sel.included["study"].isin(ids)].reset_index(drop=True)
        if len(inc) < 2 or len(inc) == k:
            continue
        sub = dataclasses.replace(sel, included=inc)
        res, lab = fit(sub, op, plan)
        name = (f"study set {set_name} only ({', '.join(inc['label'])}): k = {len(inc)} → "
                + ("Bayesian normal-normal" if lab.startswith("Bayes") else lab.split(",")[0]))
        rows.append(_sens_row(name, res, m, sub, lab, study_set=set_name))
    df = pd.DataFrame(rows)
    return df


def analyse(studies: StudySet, plan: Plan, op: OutcomePlan, window: str | None, unit: str,
            *, with_sensitivity: bool = True) -> Analysis:
    """Select, pool and run the sensitivity analyses for one outcome, window and unit."""
    sel = select(studies, plan, op, window, unit)
    res, model = fit(sel, op, plan)
    sens = (sensitivity(studies, plan, op, window, unit, sel, res, model)
            if with_sensitivity else pd.DataFrame())
    assumptions = list(sel.notes)
    methods = {"luo-shi", "wan", "hozo", "median-as-mean"}
    for _, r in sel.included.iterrows():
        if r["assumption"] and not set(r["assumption"].split("; ")) <= methods:
            assumptions.append(f"{r['study']} ({r['time']}): {r['assumption']}")
    if op.measure == "MC" and res is not None:
        assumptions.append(f"pre-post correlation r = {op.r:g} (sensitivity: "
                           f"{', '.join(f'{x:g}' for x in op.r_sensitivity) or 'none'})")
    return Analysis(op.name, op.label, window, plan.windows.get(window) if window else None,
                    unit, op.measure, sel, res, model, sens, tuple(dict.fromkeys(assumptions)))


# ---------------------------------------------------------------- the whole plan

@dataclass(frozen=True)
class PlanResults:
    """Every analysis of a plan, plus the outcomes it does not pool."""

    plan: Plan
    analyses: tuple[Analysis, ...]
    unpooled: tuple[tuple[str, str], ...]  # (outcome, reason) not analysed at all
    labels: dict = field(default_factory=dict)  # study id -> display label ("Chen 2022")

    def results_table(self) -> pd.DataFrame:
        """One row per analysis (natural scale for proportions)."""
        return pd.DataFrame([a.row() for a in self.analyses])

    def sensitivity_table(self) -> pd.DataFrame:
        """Every sensitivity row, with the analysis it belongs to."""
        parts = []
        for a in self.analyses:
            if a.sensitivity is not None and len(a.sensitivity):
                parts.append(a.sensitivity.assign(outcome=a.outcome, window=a.window or "any",
                                                  unit=a.unit))
        if not parts:
            return pd.DataFrame(columns=["outcome", "window", "unit", "analysis"])
        df = pd.concat(parts, ignore_index=True)
        front = ["outcome", "window", "unit", "analysis"]
        return df[front + [c for c in df.columns if c not in front]]

    def selection_table(self) -> pd.DataFrame:
        """Every record used or left out, with the reason."""
        rows = []
        for a in self.analyses:
            for _, r in a.selection.included.iterrows():
                rows.append({"outcome": a.outcome, "window": a.window or "any", "unit": a.unit,
                             "study": r["study"], "time": r["time"], "used": True,
                             "reason": r["assumption"] or ""})
            for _, r in a.selection.excluded.iterrows():
                rows.append({"outcome": a.outcome, "window": a.window or "any", "unit": a.unit,
                             "study": r["study"], "time": r["time"], "used": False,
                             "reason": r["reason"]})
        return pd.DataFrame(rows, columns=["outcome", "window", "unit", "study", "time", "used", "reason"])


def units_of(studies: StudySet, op: OutcomePlan) -> list[str]:
    """Units an outcome is analysed in: the plan's, or every unit reported (``any``)."""
    if op.unit != "any":
        return [op.unit]
    found = sorted({o.unit for _, o in studies.records(op.name)})
    return found or ["patients"]


def run_plan(studies: StudySet, plan: Plan, *, progress=None, with_sensitivity: bool = True) -> PlanResults:
    """Run every outcome of ``plan`` on ``studies``.

    Parameters
    ----------
    studies : StudySet
    plan : Plan
    progress : callable, optional
        Called with one line of text per analysis (the CLI prints it to stderr).
    with_sensitivity : bool
        Also run the sensitivity analyses (default).

    Returns
    -------
    PlanResults

    Examples
    --------
    See the example at the top of this module (it runs the plan shipped with the
    package's example data).
    """
    check_plan(plan, studies)  # unknown studies, outcomes, arms; measures the data cannot give
    analyses = []
    present = set(studies.outcomes())
    unpooled = []
    for op in plan.outcomes:
        if op.name not in present:
            unpooled.append((op.name, "in the plan, but no study reports it"))
            continue
        for unit in units_of(studies, op):
            for window in (op.windows or (None,)):
                a = analyse(studies, plan, op, window, unit, with_sensitivity=with_sensitivity)
                analyses.append(a)
                if progress:
                    progress(f"{a.outcome} {a.window or 'any time'} ({a.unit}): "
                             + (f"k = {len(a.selection.included)}, {a.model}" if a.pooled
                                else f"not pooled ({a.model})"))
    planned = {o.name for o in plan.outcomes}
    reasons = dict(plan.not_pooled)
    for name in sorted(present - planned):
        unpooled.append((name, reasons.get(name, "not in the analysis plan")))
    return PlanResults(plan, tuple(analyses), tuple(unpooled), display_labels(studies))


__all__ = [
    "FLAG_MARKS",
    "Analysis",
    "PlanResults",
    "Selection",
    "analyse",
    "display_label",
    "display_labels",
    "effect_data",
    "fit",
    "flag_text",
    "flags_of",
    "flags_summary",
    "plausible_denominators",
    "run_plan",
    "select",
    "sensitivity",
    "summarise",
    "units_of",
]
