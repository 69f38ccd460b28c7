"""Running an analysis plan on a set of studies: selection, pooling, sensitivity and subgroups.

No file I/O here (``run.py`` writes the files).  For every outcome of the plan,
every time window and unit (and, for mean changes with ``absolute: true``, the
absolute value at baseline and at each window), :func:`run_plan` selects the
records by the plan's rules (:mod:`metaanalysis.report.selection`), pools them
by the plan's model for their k (:mod:`metaanalysis.report.fitting`) and runs the
sensitivity analyses, each of which changes one thing and says what (the
studies it brings in or leaves out are listed in ``studies_in`` /
``studies_out``).  The rules are documented in ``docs/plan.md``.

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
Pain reduction at about 1 month: 4.30 (95% CI 1.45 to 7.15; 95% PI -1.33 to 9.92; τ = 1.13, I² = 97.2%; 3 studies, 196 patients; REML + Knapp–Hartung (MC)).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metaanalysis.records.studies import StudySet
from metaanalysis.report.fitting import (
    SingleStudy,
    effect_data,
    fit,
    is_bayes,
    leave_one_out_rows,
    plan_model,
    summarise,
)
from metaanalysis.report.plan import COMPARATIVE, OutcomePlan, Plan, check_plan
from metaanalysis.report.selection import (
    PROPORTIONS,
    Selection,
    assumed_events,
    representatives,
    select,
    units_of,
    usable_members,
)
from metaanalysis.report.study_labels import (
    FLAG_MARKS,
    display_label,
    display_labels,
    flag_text,
    flags_of,
    flags_summary,
)

#: what a row of the results table pools
QUANTITY = {"change": "change from baseline", "absolute": "absolute value",
            "baseline": "absolute value at baseline", None: ""}


# ---------------------------------------------------------------- one analysis

@dataclass(frozen=True)
class Analysis:
    """One analysis (outcome × window × unit × kind) with its sensitivity and subgroup analyses."""

    outcome: str
    label: str
    window: str | None
    window_days: tuple | None
    unit: str
    measure: str
    selection: Selection
    result: object  # PoolResult, BayesResult, SingleStudy or None
    model: str  # model label, or the reason it was not pooled
    sensitivity: pd.DataFrame = field(repr=False, default=None)
    assumptions: tuple[str, ...] = ()
    kind: str | None = None  # change / absolute / baseline (mean outcomes); None otherwise
    subgroups: object = None  # SubgroupResult by modality, or None
    subgroup_note: str = ""
    baseline_same_studies: float = math.nan  # pooled baseline of the same studies (absolute)
    bounds: tuple | None = None  # bounds of the pooled quantity's scale

    @property
    def pooled(self) -> bool:
        """True when at least two studies were pooled."""
        return self.result is not None and not isinstance(self.result, SingleStudy)

    @property
    def single(self) -> bool:
        return isinstance(self.result, SingleStudy)

    @property
    def key(self) -> str:
        """File-name stem, e.g. ``pain_vas__about_1_month__patients``
        (``pain_vas_absolute__baseline__patients`` for absolute values)."""
        name = self.outcome + ("_absolute" if self.kind in ("absolute", "baseline") else "")
        window = "baseline" if self.kind == "baseline" else (self.window or "all")
        return f"{name}__{window}__{self.unit}"

    @property
    def k(self) -> int:
        return len(self.selection.included)

    @property
    def total_n(self) -> int:
        return int(self.selection.included["ni"].sum()) if self.k else 0

    @property
    def studies(self) -> list[str]:
        return list(self.selection.included["study"])

    def labels(self, flags: bool = True) -> list[str]:
        """Display labels of the included studies, e.g. ``["Chen 2022 †§", "Wu 2021"]``;
        in analyses across units, the unit of each study in brackets."""
        inc = self.selection.included
        mixed = self.unit == "mixed"
        out = []
        for lab, f, u in zip(inc["label"], inc["flags"], inc["unit"]):
            text = f"{lab} {f}" if flags and f else lab
            out.append(f"{text} [{u}]" if mixed else text)
        return out

    def footnotes(self, plan: Plan | None = None) -> list[str]:
        """One line per flag marker used in this analysis, stating what it means."""
        return [flag_text(m, plan) for m in flags_of(self.selection.included)]

    def summary(self) -> dict:
        """:func:`summarise` of the result (NaN fields when nothing was estimated)."""
        if self.result is None:
            return dict(estimate=math.nan, ci_lb=math.nan, ci_ub=math.nan, pi_lb=math.nan,
                        pi_ub=math.nan, tau2=math.nan, i2=math.nan, k=self.k)
        return summarise(self.result, self.measure)

    def pi_outside_bounds(self) -> bool:
        """True when the prediction interval runs past the scale's bounds."""
        if not self.bounds or not self.pooled:
            return False
        s = self.summary()
        lo, hi = self.bounds
        return bool((lo is not None and s["pi_lb"] < lo) or (hi is not None and s["pi_ub"] > hi))

    def row(self) -> dict:
        """One row of the results table."""
        s = self.summary()
        window = "baseline" if self.kind == "baseline" else (self.window or "any")
        relative = math.nan
        if self.kind == "absolute" and self.result is not None \
                and not math.isnan(self.baseline_same_studies):
            relative = 100 * (1 - s["estimate"] / self.baseline_same_studies)
        return {"outcome": self.outcome, "label": self.label, "quantity": QUANTITY[self.kind],
                "window": window,
                "days": "" if not self.window_days or self.kind == "baseline"
                else f"{self.window_days[0]:g}-{self.window_days[1]:g}",
                "unit": self.unit, "k": self.k, "n": self.total_n, "measure": self.measure,
                "scale": _scale(self.measure),
                "studies": ", ".join(self.studies),
                "study_labels": ", ".join(self.labels()),
                "flags": flags_summary(self.selection.included),
                "model": (self.model if self.pooled else
                          "one study, not pooled" if self.single else "not pooled"),
                "estimate": s["estimate"], "ci_lb": s["ci_lb"], "ci_ub": s["ci_ub"],
                "pi_lb": s["pi_lb"], "pi_ub": s["pi_ub"], "tau2": s["tau2"],
                "tau": math.sqrt(s["tau2"]) if s["tau2"] >= 0 else math.nan,
                "i2": s["i2"], "pi_outside_scale": self.pi_outside_bounds(),
                "relative_reduction_pct": relative,
                "note": "" if self.pooled else self.model}

    def sentence(self, plan: Plan | None = None) -> str:
        """One sentence of results with τ, the PI and the model (see :mod:`.text`)."""
        from metaanalysis.report.text import sentence

        return sentence(self, plan)


def _scale(measure: str) -> str:
    return {"MC": "raw mean change (pre − post)", "MN": "mean", "RR": "risk ratio",
            "OR": "odds ratio", "RD": "risk difference", "MD": "mean difference",
            "SMD": "standardised mean difference", "ROM": "ratio of means"}.get(
        measure, "proportion" if measure in PROPORTIONS else measure)


def estimate_text(measure: str, s, level_text: str, interval: str) -> str:
    """``"29.0% (95% CI 24.1–34.5%"``: estimate and interval of a summary row
    (proportions in percent), the parenthesis left open for what follows."""
    from metaanalysis.formatting import num

    if measure in PROPORTIONS or measure == "RD":
        return (f"{num(100 * s['estimate'], 1)}% ({level_text} {interval} "
                f"{num(100 * s['ci_lb'], 1)}–{num(100 * s['ci_ub'], 1)}%")
    return (f"{num(s['estimate'], 2)} ({level_text} {interval} {num(s['ci_lb'], 2)} to "
            f"{num(s['ci_ub'], 2)}")


# ---------------------------------------------------------------- sensitivity

#: most studies for a leave-one-out analysis with the GLMM (each fit takes about a second)
MAX_GLMM_LEAVE_ONE_OUT = 30

def _sens_row(kind, name, changed, res, measure, sel, main_sel, labels, note="", **extra):
    inc = sel.included
    main_ids = list(main_sel.included["study"])
    ids = list(inc["study"])
    row = {"kind": kind, "analysis": name, "changed": changed, "k": len(inc),
           "n": int(inc["ni"].sum()) if len(inc) else 0,
           "estimate": math.nan, "ci_lb": math.nan, "ci_ub": math.nan, "pi_lb": math.nan,
           "pi_ub": math.nan, "tau2": math.nan, "i2": math.nan, "note": note,
           "flags": flags_summary(inc), "studies": ", ".join(ids),
           "studies_in": ", ".join(labels.get(s, s) for s in ids if s not in main_ids),
           "studies_out": ", ".join(labels.get(s, s) for s in main_ids if s not in ids),
           "left_out": "", "study_set": ""}
    row.update(extra)
    if isinstance(res, dict):  # a summary already computed (engine leave-one-out)
        row.update({k: res[k] for k in ("estimate", "ci_lb", "ci_ub", "pi_lb", "pi_ub", "tau2",
                                        "i2", "k")})
    elif res is not None:
        s = summarise(res, measure)
        row.update({k: s[k] for k in ("estimate", "ci_lb", "ci_ub", "pi_lb", "pi_ub", "tau2",
                                      "i2", "k")})
    return row


def complete_sensitivity(sens: pd.DataFrame, labels: dict) -> pd.DataFrame:
    """Fill ``kind``, ``changed``, ``studies_in`` and ``studies_out`` of rows added to a
    sensitivity table by other steps (e.g. the risk-of-bias row of the submission
    package): the studies in and out are worked out against the main row."""
    if sens is None or not len(sens):
        return sens
    sens = sens.copy()
    for col in ("kind", "changed", "studies_in", "studies_out"):
        if col not in sens.columns:
            sens[col] = ""
        sens[col] = sens[col].astype(object).where(sens[col].notna(), "")
    main_ids = [x for x in str(sens["studies"].iloc[0]).split(", ") if x]
    for i in sens.index[1:]:
        if sens.at[i, "kind"]:
            continue
        ids = [x for x in str(sens.at[i, "studies"]).split(", ") if x]
        sens.at[i, "kind"] = "risk of bias" if "risk of bias" in str(sens.at[i, "analysis"]) \
            else "other"
        sens.at[i, "changed"] = str(sens.at[i, "analysis"])
        sens.at[i, "studies_in"] = ", ".join(labels.get(x, x) for x in ids if x not in main_ids)
        sens.at[i, "studies_out"] = ", ".join(labels.get(x, x) for x in main_ids if x not in ids)
    return sens


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


def _model_alternatives(m: str, op: OutcomePlan, plan: Plan) -> list[tuple[str, str]]:
    if m in PROPORTIONS:
        return [("GLMM", "model: GLMM"),
                (f"PLO:{plan.method}:{plan.test}", "model: logit two-step"),
                (f"PFT:{plan.method}:{plan.test}", "model: Freeman–Tukey two-step"),
                ("bayes", "model: Bayesian (logit)")]
    return [(f"{m}:{plan.method}:{plan.test}", f"model: {plan.method} + Knapp–Hartung"),
            (f"{m}:{plan.method}:z", f"model: {plan.method}, z (no Knapp–Hartung)"),
            ("bayes", "model: Bayesian")]


def sensitivity(studies: StudySet, plan: Plan, op: OutcomePlan, window, unit, sel: Selection,
                main, model: str, kind=None, reps=None) -> pd.DataFrame:
    """The sensitivity table of one analysis: one row per alternative, each changing one thing.

    Columns: ``kind`` (model, leave-one-out, r, overlap, data rule, study set,
    unit), ``analysis`` (what was done), ``changed`` (the one thing changed),
    ``k, n``, estimate, CI, PI, τ², I², ``note`` (the model), ``flags``,
    ``studies``, ``studies_in`` and ``studies_out`` (against the main analysis),
    ``left_out`` (leave-one-out), ``study_set``.
    """
    labels = display_labels(studies)
    m = "MN" if kind in ("absolute", "baseline") else op.measure
    k = len(sel.included)
    reps = representatives(studies, plan, op) if reps is None else reps
    rows = [_sens_row("main", f"main: {model}" if main is not None else "main: not pooled",
                      "nothing (the main analysis)", main, m, sel, sel, labels,
                      "" if main is not None else model)]

    def add(kind_, name, changed, sub, p2=plan, r=None, **extra):
        if sub.signature == sel.signature and r is None and (
                p2 is plan or p2.median_conversion == plan.median_conversion):
            return  # nothing changed: the row would repeat the main analysis
        res, lab = fit(sub, op, p2, r=r)
        rows.append(_sens_row(kind_, name, changed, res, m, sub, sel, labels, lab, **extra))

    if k >= 2 and main is not None:
        for spec, name in _model_alternatives(m, op, plan):
            if spec == "GLMM" and m not in PROPORTIONS:
                continue
            res, lab = fit(sel, op, plan, model=spec)
            if lab == model:
                continue
            rows.append(_sens_row("model", name, f"the model ({lab})", res, m, sel, sel, labels,
                                  lab))
    # leave-one-out: the engine's masked batch for two-step fits; the k < 3 rule for subsets;
    # the GLMM only up to MAX_GLMM_LEAVE_ONE_OUT studies (one fit per study)
    glmm = getattr(main, "method", None) == "GLMM"
    if k >= 3 and main is not None and glmm and k > MAX_GLMM_LEAVE_ONE_OUT:
        rows.append(_sens_row("leave-one-out", "leave-one-out: not run", "nothing (not run)",
                              None, m, sel, sel, labels,
                              f"k = {k}: leave-one-out with the GLMM is run for k ≤ "
                              f"{MAX_GLMM_LEAVE_ONE_OUT} (one fit per study)"))
    elif k >= 3 and main is not None:
        i2_main = summarise(main, m)["i2"] if not is_bayes(main) else math.nan
        for sid, sub, _res, lab, s in leave_one_out_rows(sel, op, plan, main):
            who = labels.get(sid, sid)
            extra = {"left_out": sid}
            row = _sens_row("leave-one-out", f"leave out {who}", f"{who} out", s, m, sub, sel,
                            labels, lab, **extra)
            if not math.isnan(i2_main) and not math.isnan(row["i2"]):
                row["changed"] += f" (I² {i2_main:.1f}% → {row['i2']:.1f}%)"
            rows.append(row)
    if m == "MC" and main is not None:
        for r in op.r_sensitivity:
            res, lab = fit(sel, op, plan, r=r)
            rows.append(_sens_row("r", f"r = {r:g}", f"pre-post correlation {op.r:g} → {r:g}",
                                  res, m, sel, sel, labels, lab))

    def sel_for(p2, reps2=None, assumed=None):
        return select(studies, p2, op, window, unit, assumed,
                      reps=representatives(studies, p2, op) if reps2 is None else reps2,
                      kind=kind)

    # overlap: every member pooled; each other member standing for its group; probable overlap
    if plan.overlap == "one_per_group":
        p_all = dataclasses.replace(plan, overlap="all")
        add("overlap", "overlap: all studies of each group",
            "every member of each overlap group pooled (patients may be counted twice)",
            sel_for(p_all, {}), p_all)
        usable = usable_members(studies, plan, op)
        for g, rep in reps.items():
            for other in usable.get(g, []):
                if other == rep:
                    continue
                sub = sel_for(plan, {**reps, g: other})
                add("overlap", f"overlap group {g}: {labels.get(other, other)} instead of "
                    f"{labels.get(rep, rep)}", f"the study standing for group {g}", sub)
        if plan.probable_overlap == "separate" and any(
                s.overlap_membership == "probable" for s in studies):
            p2 = dataclasses.replace(plan, probable_overlap="apply")
            probable = ", ".join(labels.get(s.id, s.id) for s in studies
                                 if s.overlap_membership == "probable")
            add("overlap", "probable overlap applied",
                f"probable overlap-group members ({probable}) counted in their group", sel_for(p2),
                p2)
    # data rules
    if plan.median_sd == "exclude" and sel.excluded["reason"].str.contains("median ± SD").any():
        p2 = dataclasses.replace(plan, median_sd="as_mean")
        add("data rule", "'median ± SD' used as mean ± SD",
            "'median ± SD' records used with the median as the mean", sel_for(p2), p2)
    conv = [i for i, f in enumerate(sel.included["flags"]) if "†" in f]
    if conv and m in ("MC", "MN"):
        alt = "wan" if plan.median_conversion != "wan" else "luo-shi"
        p2 = dataclasses.replace(plan, median_conversion=alt)
        add("data rule", f"median conversion: {alt}", f"median conversion {plan.median_conversion}"
            f" → {alt}", sel_for(p2), p2)
        add("data rule", "studies with converted medians out (†)",
            "studies whose mean and SD were estimated from medians left out",
            sel.subset(~sel.included["flags"].str.contains("†")))
    partial = [s.id for s in studies if s.augmented is not None
               and s.augmented.fraction is not None and s.augmented.fraction < 1
               and s.id in set(sel.included["study"])]
    if partial:
        who = ", ".join(f"{labels.get(s, s)} ({studies[s].augmented})" for s in partial)
        add("data rule", "studies with partial augmentation out",
            f"series that augmented only part of the treated lesions left out: {who}",
            sel.subset(~sel.included["study"].isin(partial)))
    if sel.included["flags"].str.contains("‖").any():
        add("data rule", "assumed unit or definition out (‖)",
            "records whose unit or definition is assumed left out",
            sel.subset(~sel.included["flags"].str.contains("‖")))
    if "days" in sel.included.columns and (sel.included["days"] == 0).any() and window:
        add("data rule", "day-0 records out", "same-day (day 0) records left out",
            sel.subset(sel.included["days"] != 0))
    if sel.included["flags"].str.contains("¶").any():
        p2 = dataclasses.replace(plan, percent_without_denominator="exclude",
                                 percent_without_count="exclude")
        add("data rule", "assumed denominators or counts out (¶)",
            "percents without a denominator or a matching count left out", sel_for(p2), p2)
    if sel.pending_denominators:
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
                desc = ", ".join(f"{labels.get(key[0], key[0])} "
                                 f"{assumed_events(*pct_of[key], c)}/{c}"
                                 for key, c in assumed.items())
                name = (f"assumed denominators ({which} plausible, "
                        f"{100 * frac:g}–100% of units treated): {desc}")
                add("denominator", name, f"denominators of percents without one: the {which} "
                    "plausible candidate", sel_for(plan, reps, assumed))
    # analyses across units: each unit alone
    if unit == "mixed":
        for u in sorted(set(sel.included["unit"])):
            add("unit", f"{u} only", f"only the studies reporting per {u[:-1]}",
                sel.subset(sel.included["unit"] == u))
    # named study sets pooled alone (e.g. the two anchor series), when >= 2 are in the analysis
    for set_name in plan.sets_for(op):
        ids = plan.study_sets.get(set_name, ())
        keep = sel.included["study"].isin(ids)
        if keep.sum() < 2 or keep.sum() == k:
            continue
        sub = sel.subset(keep)
        res, lab = fit(sub, op, plan)
        name = (f"study set {set_name} only ({', '.join(sub.included['label'])}): k = "
                f"{len(sub.included)} → "
                + ("Bayesian normal-normal" if lab.startswith("Bayes") else lab.split(",")[0]))
        rows.append(_sens_row("study set", name, f"only the studies of set {set_name}", res, m,
                              sub, sel, labels, lab, study_set=set_name))
    return pd.DataFrame(rows)


def modality_subgroups(studies, plan, op, window, unit, kind=None):
    """Subgroup analysis by ablation modality over every modality in the records.

    Returns ``(SubgroupResult or None, note)``: pooled within each modality with
    the plan's two-step model (proportions on the logit scale) and tested with
    Q-between; None (with the reason) when fewer than two modalities have data.
    """
    from metaanalysis.models.subgroups import subgroups

    reps = representatives(studies, plan, op, modalities=())
    sel = select(studies, plan, op, window, unit, reps=reps, kind=kind, modalities=())
    mods = sorted(set(sel.included["modality"].dropna()))
    if len(mods) < 2:
        return None, ""
    m = "MN" if kind in ("absolute", "baseline") else op.measure
    measure = "PLO" if m in PROPORTIONS else m
    es = effect_data(sel, op, measure=measure)
    labels = list(sel.included["label"])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = subgroups(es, groups=list(sel.included["modality"]), method=plan.method,
                            test=plan.test, level=plan.level, labels=labels)
        except Exception as err:  # noqa: BLE001 - reported, never fatal for the report
            return None, f"modality subgroups not estimable: {err}"
    counts = ", ".join(f"{g} k = {r.k}" for g, r in res.groups.items())
    return res, (f"{plan.method} + {'Knapp–Hartung' if plan.test == 'knha' else plan.test} "
                 f"within each modality ({measure}); {counts}")


def analyse(studies: StudySet, plan: Plan, op: OutcomePlan, window: str | None, unit: str,
            *, with_sensitivity: bool = True, kind: str | None = None,
            reps: dict | None = None) -> Analysis:
    """Select, pool and run the sensitivity analyses for one outcome, window, unit and kind."""
    if reps is None:
        reps = representatives(studies, plan, op)
    kind = kind or ("change" if op.measure == "MC" else None)
    sel = select(studies, plan, op, window, unit, reps=reps, kind=kind)
    res, model = fit(sel, op, plan)
    m = "MN" if kind in ("absolute", "baseline") else op.measure
    sens = (sensitivity(studies, plan, op, window, unit, sel, res, model, kind=kind, reps=reps)
            if with_sensitivity else pd.DataFrame())
    assumptions = list(sel.notes)
    methods = {"luo-shi", "wan", "hozo", "median-as-mean"}
    labels = display_labels(studies)
    for _, r in sel.included.iterrows():
        if r["assumption"] and not set(r["assumption"].split("; ")) <= methods:
            assumptions.append(f"{labels.get(r['study'], r['study'])} ({r['time']}): "
                               f"{r['assumption']}")
    for _, r in sel.included.iterrows():
        rec_reasons = _reasons_of(studies[r["study"]], op, r)
        assumptions.extend(rec_reasons)
    if m == "MC" and res is not None:
        assumptions.append(f"pre-post correlation r = {op.r:g} (sensitivity: "
                           f"{', '.join(f'{x:g}' for x in op.r_sensitivity) or 'none'})")
    sub, sub_note = (modality_subgroups(studies, plan, op, window, unit, kind)
                     if "modality" in op.subgroups and with_sensitivity else (None, ""))
    base_same = math.nan
    if kind == "absolute" and res is not None:
        bsel = select(studies, plan, op, window, unit, reps=reps, kind="baseline")
        bsel = bsel.subset(bsel.included["study"].isin(sel.included["study"]))
        bres, _ = fit(bsel, op, plan)
        if bres is not None:
            base_same = summarise(bres, "MN")["estimate"]
    bounds = op.bounds
    if bounds and m == "MC":
        lo, hi = bounds
        bounds = (None if hi is None or lo is None else lo - hi,
                  None if hi is None or lo is None else hi - lo)
    if bounds and m in COMPARATIVE:
        bounds = None
    return Analysis(op.name, op.label, window, plan.windows.get(window) if window else None,
                    unit, m, sel, res, model, sens, tuple(dict.fromkeys(assumptions)), kind,
                    sub, sub_note, base_same, bounds)


def _reasons_of(study, op, row) -> list[str]:
    """The record's stated reasons for assumed units/definitions (‖) of the row used."""
    out = []
    if "‖" not in str(row["flags"]):
        return out
    for o in study.outcomes:
        if o.outcome in op.all_records and o.time in (row["time"], row.get("baseline_time")) \
                and (o.arm in (None, row["arm"]) or op.measure in COMPARATIVE):
            for key in ("unit", "definition"):
                why = o.assumed_reasons.get(key)
                if why:
                    out.append(f"{display_label(study)} ({o.time}{', ' + o.arm if o.arm else ''}):"
                               f" {key} assumed: {why}")
    return out


# ---------------------------------------------------------------- the whole plan

@dataclass(frozen=True)
class PlanResults:
    """Every analysis of a plan, plus the outcomes it does not pool."""

    plan: Plan
    analyses: tuple[Analysis, ...]
    unpooled: tuple[tuple[str, str], ...]  # (outcome, reason) not analysed at all
    labels: dict = field(default_factory=dict)  # study id -> display label ("Chen 2022")
    representatives: dict = field(default_factory=dict)  # outcome -> {group: study id}

    def results_table(self) -> pd.DataFrame:
        """One row per analysis (natural scale for proportions and ratios)."""
        return pd.DataFrame([a.row() for a in self.analyses])

    def sensitivity_table(self) -> pd.DataFrame:
        """Every sensitivity row, with the analysis it belongs to."""
        parts = []
        for a in self.analyses:
            if a.sensitivity is not None and len(a.sensitivity):
                parts.append(complete_sensitivity(a.sensitivity, self.labels).assign(
                    outcome=a.outcome, quantity=QUANTITY[a.kind],
                    window="baseline" if a.kind == "baseline" else a.window or "any",
                    unit=a.unit))
        if not parts:
            return pd.DataFrame(columns=["outcome", "quantity", "window", "unit", "analysis"])
        df = pd.concat(parts, ignore_index=True)
        front = ["outcome", "quantity", "window", "unit", "analysis"]
        return df[front + [c for c in df.columns if c not in front]]

    def subgroup_table(self) -> pd.DataFrame:
        """One row per modality subgroup of every analysis that has one, with Q-between."""
        from metaanalysis.effects.transforms import to_natural

        rows = []
        for a in self.analyses:
            sg = a.subgroups
            if sg is None:
                continue
            for g, r in sg.groups.items():
                raw = np.array([r.estimate, r.ci_lb, r.ci_ub], float)
                nat = np.asarray(to_natural(r.measure, raw, ni=r.ni), float)
                rows.append({"outcome": a.outcome, "quantity": QUANTITY[a.kind],
                             "window": "baseline" if a.kind == "baseline" else a.window or "any",
                             "unit": a.unit, "modality": str(g), "k": r.k,
                             "studies": ", ".join(map(str, r.labels)),
                             "estimate": nat[0], "ci_lb": nat[1], "ci_ub": nat[2],
                             "tau2": r.tau2, "i2": r.i2, "q_between": sg.q_between,
                             "q_between_df": sg.q_between_df, "q_between_p": sg.q_between_p,
                             "model": a.subgroup_note, "measure": a.measure})
        return pd.DataFrame(rows, columns=["outcome", "quantity", "window", "unit", "modality",
                                           "k", "studies", "estimate", "ci_lb", "ci_ub", "tau2",
                                           "i2", "q_between", "q_between_df", "q_between_p",
                                           "model", "measure"])

    def selection_table(self) -> pd.DataFrame:
        """Every record used or left out, with the reason."""
        rows = []
        for a in self.analyses:
            w = "baseline" if a.kind == "baseline" else a.window or "any"
            for _, r in a.selection.included.iterrows():
                rows.append({"outcome": a.outcome, "quantity": QUANTITY[a.kind], "window": w,
                             "unit": a.unit, "study": r["study"], "time": r["time"],
                             "used": True, "reason": r["assumption"] or ""})
            for _, r in a.selection.excluded.iterrows():
                rows.append({"outcome": a.outcome, "quantity": QUANTITY[a.kind], "window": w,
                             "unit": a.unit, "study": r["study"], "time": r["time"],
                             "used": False, "reason": r["reason"]})
        return pd.DataFrame(rows, columns=["outcome", "quantity", "window", "unit", "study",
                                           "time", "used", "reason"])

    def studies_used(self) -> list[str]:
        """Ids of the studies that enter at least one main analysis."""
        ids = set()
        for a in self.analyses:
            ids |= set(a.studies)
        return sorted(ids)


def _kinds_of(op: OutcomePlan) -> list[tuple]:
    """``[(kind, window)]`` analysed for one outcome (per unit)."""
    if op.measure != "MC":
        return [(None, w) for w in (op.windows or (None,))]
    kinds = [("change", w) for w in op.windows]
    if op.absolute:
        kinds += [("baseline", None)] + [("absolute", w) for w in op.windows]
    return kinds


def count_analyses(studies: StudySet, plan: Plan) -> int:
    """How many analyses :func:`run_plan` runs (for progress bars)."""
    present = set(studies.outcomes())
    return sum(len(_kinds_of(op)) * len(units_of(studies, op)) for op in plan.outcomes
               if set(op.all_records) & present)


def run_plan(studies: StudySet, plan: Plan, *, progress=None, with_sensitivity: bool = True,
             on_outcome=None) -> PlanResults:
    """Run every outcome of ``plan`` on ``studies``.

    Parameters
    ----------
    studies : StudySet
    plan : Plan
    progress : callable, optional
        Called with one line of text per analysis (the CLI prints it to stderr).
    with_sensitivity : bool
        Also run the sensitivity and subgroup analyses (default).
    on_outcome : callable, optional
        Called as ``on_outcome(PlanResults)`` with the analyses of each outcome as soon
        as they are done (the report starts drawing that outcome's figures while the
        next outcome is analysed).

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
    reps_by: dict = {}
    for op in plan.outcomes:
        if not set(op.all_records) & present:
            unpooled.append((op.name, "in the plan, but no study reports it"))
            continue
        reps = representatives(studies, plan, op)
        reps_by[op.name] = reps
        kinds = _kinds_of(op)
        first = len(analyses)
        for unit in units_of(studies, op):
            for kind, window in kinds:
                a = analyse(studies, plan, op, window, unit, with_sensitivity=with_sensitivity,
                            kind=kind, reps=reps)
                analyses.append(a)
                if progress:
                    what = f" ({QUANTITY[kind]})" if kind else ""
                    where = "baseline" if kind == "baseline" else a.window or "any time"
                    progress(f"{a.outcome}{what} {where} ({a.unit}): "
                             + (f"k = {a.k}, {a.model}" if a.pooled
                                else f"not pooled ({a.model})"))
        if on_outcome:
            on_outcome(PlanResults(plan, tuple(analyses[first:]), (), display_labels(studies),
                                   {op.name: reps}))
    planned = {r for o in plan.outcomes for r in o.all_records} | {o.name for o in plan.outcomes}
    reasons = dict(plan.not_pooled)
    for name in sorted(present - planned):
        unpooled.append((name, reasons.get(name, "not in the analysis plan")))
    return PlanResults(plan, tuple(analyses), tuple(unpooled), display_labels(studies), reps_by)


__all__ = [
    "FLAG_MARKS",
    "QUANTITY",
    "Analysis",
    "PlanResults",
    "Selection",
    "analyse",
    "count_analyses",
    "display_label",
    "display_labels",
    "effect_data",
    "estimate_text",
    "fit",
    "flag_text",
    "flags_of",
    "flags_summary",
    "modality_subgroups",
    "plan_model",
    "plausible_denominators",
    "run_plan",
    "select",
    "sensitivity",
    "summarise",
    "units_of",
]
