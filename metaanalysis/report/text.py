"""The words of ``report.md``: result sentences, the methods as run, and the page itself.

Every sentence carries the estimate, its interval, τ and the prediction interval
(flagged when it runs past the scale), k, n and the model; the methods section
is written from the analyses that actually ran (model, τ² estimator, interval
method and degrees of freedom, prior), not from the plan's defaults alone.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import pandas as pd

from metaanalysis.formatting import num, pct
from metaanalysis.report.fitting import SingleStudy, is_bayes
from metaanalysis.report.plan import Plan
from metaanalysis.report.selection import PROPORTIONS
from metaanalysis.report.study_labels import FLAG_MARKS, flag_text, flags_of

_WHAT = {"change": "change from baseline", "absolute": "absolute", "baseline": "at baseline"}


def _fmt(measure: str, x: float) -> str:
    if measure in PROPORTIONS or measure == "RD":
        return f"{num(100 * x, 1)}%"
    return num(x, 2)


def interval_text(measure: str, lb: float, ub: float) -> str:
    """``"24.2–34.7%"`` for proportions, ``"1.38 to 6.87"`` otherwise."""
    if measure in PROPORTIONS or measure == "RD":
        return f"{num(100 * lb, 1)}–{num(100 * ub, 1)}%"
    return f"{num(lb, 2)} to {num(ub, 2)}"


def analysis_name(a) -> str:
    label = a.label.split(" (")[0]
    if a.kind == "baseline":
        return f"{label.replace(' reduction', '')}, absolute, at baseline"
    if a.kind == "absolute":
        return f"{label.replace(' reduction', '')}, absolute, at {a.window.replace('_', ' ')}"
    where = f" at {a.window.replace('_', ' ')}" if a.window else ""
    return f"{label}{where}"


def unit_text(a) -> str:
    """``patients``, ``lesions``, or for analyses across units ``units (patients or lesions)``."""
    return "units (patients or lesions, as each study reports)" if a.unit == "mixed" else a.unit


def bounds_text(a) -> str:
    lo, hi = a.bounds
    return f"{'−∞' if lo is None else num(lo, 0)} to {'∞' if hi is None else num(hi, 0)}"


def sentence(a, plan: Plan | None = None) -> str:
    """One sentence of results, e.g. "Pain reduction at about 1 month: 4.89 (95% CI ...)."

    Pooled analyses give the estimate, CI, PI (flagged when it runs past the
    scale), τ (and I² for frequentist fits), k, n and the model; one study gives
    its own estimate and exact interval; nothing pooled gives the reason.
    """
    name = analysis_name(a)
    if a.result is None:
        return f"{name} ({unit_text(a)}): not pooled — {a.model}."
    s = a.summary()
    lv = f"{100 * a.result.level:g}%"
    if isinstance(a.result, SingleStudy):
        return (f"{name}: one study ({a.result.label}), not pooled: "
                f"{_fmt(a.measure, s['estimate'])} ({lv} CI {interval_text(a.measure, s['ci_lb'], s['ci_ub'])}, "
                f"{a.result.method}; n = {a.total_n} {unit_text(a)}).")
    bayes = is_bayes(a.result)
    ci = "CrI" if bayes else "CI"
    pi = f"{lv} PI {interval_text(a.measure, s['pi_lb'], s['pi_ub'])}"
    if a.pi_outside_bounds():
        pi += (f" — beyond the scale's bounds ({bounds_text(a)}): with this k and heterogeneity "
               "the normal random-effects model does not describe the spread of true effects")
    tau = math.sqrt(s["tau2"]) if s["tau2"] >= 0 else math.nan
    het = f"τ = {num(tau, 2)}" + ("" if bayes else f", I² = {pct(s['i2'])}")
    if bayes:
        het += " (posterior median)"
    rel = ""
    row = a.row()
    if a.kind == "absolute" and not math.isnan(row["relative_reduction_pct"]):
        rel = (f" Relative reduction from the pooled baseline of the same studies "
               f"({num(a.baseline_same_studies, 2)}): {num(row['relative_reduction_pct'], 0)}%.")
    return (f"{name}: {_fmt(a.measure, s['estimate'])} ({lv} {ci} "
            f"{interval_text(a.measure, s['ci_lb'], s['ci_ub'])}; {pi}; {het}; "
            f"{a.k} studies, {a.total_n} {unit_text(a)}; {a.model}).{rel}")


# ---------------------------------------------------------------- methods, as run

def model_description(label: str, plan: Plan) -> str:
    """The model of a result label in full: estimator, interval method, df, prior."""
    lv = f"{100 * plan.level:g}%"
    if label.startswith("GLMM"):
        return ("binomial-normal random-intercept model (GLMM) on the logit scale, fitted by "
                "maximum likelihood with adaptive Gauss–Hermite quadrature; Wald (z) CI and PI; "
                "I² against the typical within-study variance, as metafor's rma.glmm")
    if label.startswith("Bayes"):
        prior = label.split("τ ~ ")[1].split(",")[0] if "τ ~ " in label else "the outcome's prior"
        return (f"Bayesian normal-normal model by numerical integration (no MCMC), τ ~ {prior}, "
                f"flat prior on μ; {lv} equal-tailed credible interval, posterior predictive "
                "interval; used because the plan's rule for k < 3 is a Bayesian model "
                "(few_studies: bayes)")
    m = re.match(r"(\w+) \+ ([^(]+) \((\w+)", label)
    if m:
        method, test, measure = m.groups()
        test = test.strip()
        df = ("t distribution with k − 1 df for the CI and the PI" if "Knapp" in test
              else "normal (z) CI and PI")
        return f"two-step random effects on {measure}, τ² by {method}, {test} test: {df}"
    return label


def _model_lines(results, plan: Plan) -> list[str]:
    out = []
    for op in plan.outcomes:
        parts = [a for a in results.analyses if a.outcome == op.name]
        if not parts:
            continue
        for kind in dict.fromkeys(a.kind for a in parts):
            sub = [a for a in parts if a.kind == kind]
            models: dict[str, list[str]] = {}
            for a in sub:
                key = a.model if a.pooled else ("one study (not pooled)" if a.single
                                                else "not pooled")
                where = ("baseline" if a.kind == "baseline" else
                         (a.window or "all").replace("_", " "))
                models.setdefault(key, []).append(f"{where}, {a.unit}, k = {a.k}")
            head = op.label.split(" (")[0]
            if kind in ("absolute", "baseline"):
                head = head.replace(" reduction", "")
            what = head + (f" ({_WHAT[kind]})" if kind else "")
            if op.measure == "MC" and kind == "change":
                what += f", pre-post r = {op.r:g}"
            body = "; ".join(
                f"{model_description(lab, plan) if lab not in ('not pooled', 'one study (not pooled)') else lab}"
                f" [{'; '.join(w)}]" for lab, w in models.items())
            out.append(f"- {what}: {body}.")
    return out


def _attrition_lines(studies, labels) -> list[str]:
    reported = []
    for s in studies:
        base = {o.outcome: o.stats.get("n") for o in s.outcomes if o.timepoint.kind == "baseline"}
        for o in s.outcomes:
            n = o.stats.get("n")
            if (o.timepoint.kind == "follow-up" and n is not None and "n" not in o.assumed
                    and base.get(o.outcome) not in (None, n)):
                reported.append(f"{labels.get(s.id, s.id)} {o.outcome} at {o.time}: "
                                f"{n:g} of {base[o.outcome]:g}")
    lost = [f"{labels.get(s.id, s.id)}: {s.attrition}" for s in studies
            if s.attrition and not s.attrition.startswith("not reported")]
    line = ("- Attrition, the same rule for every study: at each time point the n analysed where "
            "the paper reports it; otherwise the enrolled n (marked §). Deaths or losses known "
            "from elsewhere in a paper are not subtracted, so precision is slightly overstated "
            "where patients were lost.")
    if reported:
        line += " Reported follow-up n: " + "; ".join(reported) + "."
    if lost:
        line += " Attrition as reported: " + "; ".join(lost) + "."
    return [line]


def methods_lines(results, studies, plan: Plan) -> list[str]:
    """The methods section, written from what ran."""
    labels = results.labels
    L = []
    mods = plan.modalities
    if mods:
        others = sorted({s.modality for s in studies if s.modality and s.modality not in mods})
        L.append(f"- Eligibility: the main analyses pool {', '.join(mods)} series"
                 + (f"; {', '.join(others)} series enter only the subgroup analyses by modality "
                    "(between-group test: Q-between from a common-effect fit of the subgroup "
                    "estimates)" if others else "") + ".")
    for sid, reason in plan.exclusions:
        L.append(f"- Excluded study {labels.get(sid, sid)}: {reason}.")
    for sid, arm, reason in plan.arms:
        ctl = plan.controls.get(sid)
        L.append(f"- {labels.get(sid, sid)}: arm {arm} in single-group analyses ({reason})"
                 + (f"; compared with arm {ctl} in comparative analyses" if ctl else "") + ".")
    L.append("- Unit of analysis: patients and lesions are pooled separately, except outcomes "
             "with `unit: mixed` (local control), which pool both with the unit shown for each "
             "study; each unit alone is a sensitivity analysis.")
    pwd = {"treated": "the number of units treated is taken as the denominator (the count is the "
                      "largest consistent with the percent, else the nearest; marked ¶); "
                      "sensitivity: the smallest and largest candidate denominators from "
                      f"{100 * plan.assumed_denominator_min_fraction:g}% to 100% of the units "
                      "treated, and the analysis without these studies",
           "exclude": "left out; sensitivity: the smallest and largest candidate denominators "
                      f"from {100 * plan.assumed_denominator_min_fraction:g}% to 100% of the "
                      "units treated"}[plan.percent_without_denominator]
    L.append(f"- A percent reported without a denominator: {pwd}.")
    if plan.percent_without_count == "nearest":
        L.append("- A percent of a known total that matches no whole count: the nearest whole "
                 "count (marked ¶).")
    L.append(f"- Medians with range or IQR: mean and SD by {plan.median_conversion} (marked †); "
             "a 'median ± SD' (Khan 2018's VAS) is neither a mean nor a five-number summary and "
             f"is {'left out' if plan.median_sd == 'exclude' else 'used as mean ± SD (‡)'}"
             + (" (sensitivity: used as mean ± SD, ‡)" if plan.median_sd == "exclude" else "")
             + ".")
    L += _attrition_lines(studies, labels)
    rep_lines = []
    for name, reps in results.representatives.items():
        if reps:
            rep_lines.append(f"{name}: " + ", ".join(f"{g} → {labels.get(s, s)}"
                                                     for g, s in reps.items()))
    probable = [s for s in studies if s.overlap_membership == "probable"]
    L.append("- Overlapping cohorts (one study per overlap group for the whole review): for "
             "each outcome, the member with the most patients among those with usable data "
             "stands for its group in every window and analysis of that outcome, so a time "
             "course never joins different cohorts of one group; every other member, and all "
             "members together, are sensitivity analyses. Representatives: "
             + ("; ".join(rep_lines) if rep_lines else "none") + ".")
    for s in probable:
        L.append(f"- {labels.get(s.id, s.id)} is a probable member of group {s.overlap_group} "
                 f"({s.overlap_evidence}); the main analyses treat it as a separate cohort "
                 "(probable_overlap: separate) and a sensitivity analysis applies the overlap.")
    L.append("- Time windows (days after the procedure): " + "; ".join(
        f"{n.replace('_', ' ')} = {lo:g}-{hi:g}" for n, (lo, hi) in plan.windows.items())
        + "; a study's record is used in a window when its reported time overlaps it (with "
        "several, the one nearest the middle).")
    L.append("- Models, as run (the plan: k ≥ 3 two-step random effects with "
             f"{plan.method} and {'Knapp–Hartung' if plan.test == 'knha' else plan.test}, or the "
             "GLMM for proportions; k = 2 Bayesian; k = 1 not pooled, the study's estimate with "
             "an exact interval):")
    L += ["  " + x for x in _model_lines(results, plan)]
    L.append("- Leave-one-out: two-step fits through the engine's masked batch "
             "(ma.leave_one_out) with the main model; subsets of two studies follow the k < 3 "
             "rule (Bayesian), GLMM fits are refitted by the GLMM.")
    L.append("- Heterogeneity: τ², τ and I² with every pooled estimate, and the prediction "
             "interval (t with k − 1 df after Knapp–Hartung; z after the GLMM; posterior "
             "predictive when Bayesian); a prediction interval that runs past the scale's bounds "
             "is flagged. Where k allows, heterogeneity is explored by leave-one-out (the "
             "change in I² is named), leaving out studies with converted medians (†), series with "
             "partial augmentation (JVIR 2014, 9 of 20 tumours), assumed units (‖) and same-day "
             "(day 0) records.")
    kmax = max((a.k for a in results.analyses), default=0)
    if kmax >= plan.funnel_min_k:
        L.append(f"- Reporting bias: funnel plots and Egger's test for analyses with k ≥ "
                 f"{plan.funnel_min_k}.")
    else:
        L.append(f"- Reporting bias: no analysis reaches k ≥ {max(plan.funnel_min_k, 10)} "
                 f"(largest k = {kmax}), so funnel plots and asymmetry tests (Egger, Begg) were "
                 "not done: with fewer than 10 studies they cannot tell asymmetry from chance "
                 "(Sterne et al. 2011, BMJ 343:d4002). Small-study effects and selective "
                 "reporting cannot be excluded: the series are small, single-centre and "
                 "reported in abstracts.")
    sets = [f"{n} ({', '.join(labels.get(i, i) for i in ids)})" for n, ids in plan.study_sets.items()]
    if sets:
        L.append("- Study sets pooled alone as a sensitivity analysis when at least two of their "
                 "studies are in an analysis: " + "; ".join(sets) + ".")
    L.append("- Each sensitivity analysis changes one thing (model, one study out, r, overlap "
             "rule, a data rule, denominators, unit, a study set) and lists the studies it brings "
             "in and leaves out against the main analysis (`sensitivity.csv`: `changed`, "
             "`studies_in`, `studies_out`).")
    return L


# ---------------------------------------------------------------- the page

def _relabeller(labels: dict):
    """Function replacing study ids by display labels in free text."""
    if not labels:
        return lambda text: text
    pat = re.compile(r"\b(" + "|".join(re.escape(k) for k in sorted(labels, key=len, reverse=True))
                     + r")\b")
    return lambda text: pat.sub(lambda m: labels[m.group(1)], str(text))


def p_only_text(studies, op, labels) -> str:
    """Findings of the outcome that a study reports only as a p-value (or a direction)."""
    out = []
    for s in studies:
        for o in s.outcomes:
            if o.outcome in op.all_records and not o.stats and (o.p or o.note):
                what = "; ".join(x for x in (o.note, f"p {o.p}" if o.p and not
                                             str(o.p).startswith("reported") else o.p) if x)
                out.append(f"{labels.get(s.id, s.id)} ({o.time}: {what})")
    return "; ".join(out)


def left_out_text(excluded) -> str:
    """``"Wallace 2015 (pre-procedure, 1 week): modality RFA ..."``: the records left out,
    one entry per study and reason (its time points together)."""
    groups: dict[tuple, list[str]] = {}
    for r in excluded.itertuples():
        arm = f", arm {r.arm}" if isinstance(r.arm, str) else ""
        groups.setdefault((r.study, r.reason), []).append(f"{r.time}{arm}")
    return "; ".join(f"{sid} ({', '.join(dict.fromkeys(times))}): {reason}"
                     for (sid, reason), times in groups.items())


def sensitivity_lines(a, labels=None) -> list[str]:
    """One line per sensitivity analysis: estimate with its interval, k, n, what changed."""
    from metaanalysis.report.analysis import complete_sensitivity

    sens = a.sensitivity
    if sens is None or len(sens) <= 1:
        return []
    sens = complete_sensitivity(sens, labels or {})
    out = [f"  Sensitivity analyses ({len(sens) - 1}; estimate, interval, k, n; what changed):"]
    for r in sens.iloc[1:].to_dict("records"):
        if pd.isna(r["estimate"]):
            est = f"not estimated ({r['note']})"
        else:
            ci = "CrI" if str(r["note"]).startswith("Bayes") else "CI"
            est = (f"{_fmt(a.measure, r['estimate'])} ({ci} "
                   f"{interval_text(a.measure, r['ci_lb'], r['ci_ub'])})")
        moved = "; ".join(x for x in (f"in: {r['studies_in']}" if r["studies_in"] else "",
                                      f"out: {r['studies_out']}" if r["studies_out"] else "") if x)
        model = "" if r["kind"] == "model" else f"; {_short_model(r['note'])}"
        out.append(f"  - {r['analysis']}: {est}; k = {int(r['k'])}, n = {int(r['n'])}"
                   f"{model}" + (f"; {moved}" if moved else "") + ".")
    return out


def _short_model(note: str) -> str:
    note = str(note)
    if note.startswith("Bayes"):
        return "Bayesian"
    if note.startswith("GLMM"):
        return "GLMM"
    if note.startswith("one study"):
        return "one study"
    return note.split(" (")[0]


def _heterogeneity_line(a) -> str:
    sens = a.sensitivity
    if sens is None or not a.pooled or is_bayes(a.result):
        return ""
    loo = sens[sens["kind"] == "leave-one-out"].dropna(subset=["i2"])
    if not len(loo):
        return ""
    best = loo.loc[loo["i2"].idxmin()]
    s = a.summary()
    if s["i2"] < 0.05:
        return (f"  Heterogeneity: I² = {pct(s['i2'])}, τ = {num(math.sqrt(s['tau2']), 2)}: none "
                "estimated, so none to explore (with so few studies, not evidence of none).")
    return (f"  Heterogeneity: I² = {pct(s['i2'])}, τ = {num(math.sqrt(s['tau2']), 2)}; "
            f"leaving out {best['analysis'].removeprefix('leave out ')} changes I² most "
            f"({pct(s['i2'])} → {pct(best['i2'])}).")


def _trajectory_spread(t) -> str:
    """τ and the prediction interval of each window of a fitted time-course model."""
    if not t.fitted or t.curve is None or "pi_lb" not in t.curve.columns:
        return ""
    import numpy as np

    tau2 = np.atleast_1d(np.asarray(getattr(t.result, "tau2", []), float))
    lv = f"{100 * t.result.level:g}%"
    pis = "; ".join(f"{w.replace('_', ' ')} {num(r.pi_lb, 2)} to {num(r.pi_ub, 2)}"
                    for w, r in zip(t.curve["window"], t.curve.itertuples()) if isinstance(w, str))
    tau = (f"τ = {', '.join(num(math.sqrt(max(x, 0.0)), 2) for x in tau2)}; " if tau2.size
           else "")
    notes = ""
    if t.sensitivity is not None and "note" in t.sensitivity.columns:
        notes = " ".join(f"{n[0].upper()}{n[1:]}." for n in t.sensitivity["note"].dropna())
    return (f" Between-study spread: {tau}{lv} PI {pis}." if pis else "") + \
        (f" {notes}" if notes else "")


def _time_course_table(results, op) -> list[str]:
    """Absolute and change side by side at each window (mean outcomes with absolute: true)."""
    parts = [a for a in results.analyses if a.outcome == op.name]
    base = [a for a in parts if a.kind == "baseline"]
    if not base:
        return []
    lines = ["", f"| {op.label.split(' (')[0].replace(' reduction', '')}: window | k | "
                 "absolute (95% CI) | k | change "
                 "from baseline (95% CI) | relative reduction |",
             "|---|---|---|---|---|---|"]
    for b in base:
        s = b.summary()
        lines.append(f"| baseline ({b.unit}) | {b.k} | {_cell(b, s)} | | | |")
    for w in op.windows:
        ab = next((a for a in parts if a.kind == "absolute" and a.window == w), None)
        ch = next((a for a in parts if a.kind == "change" and a.window == w), None)
        if ab is None or ch is None:
            continue
        rel = ab.row()["relative_reduction_pct"]
        lines.append(f"| {w.replace('_', ' ')} | {ab.k} | {_cell(ab, ab.summary())} | {ch.k} | "
                     f"{_cell(ch, ch.summary())} | "
                     f"{'—' if math.isnan(rel) else num(rel, 0) + '%'} |")
    return lines + [""]


def _cell(a, s) -> str:
    if a.result is None:
        return "—"
    ci = "CrI " if is_bayes(a.result) else ""
    return (f"{_fmt(a.measure, s['estimate'])} ({ci}{interval_text(a.measure, s['ci_lb'], s['ci_ub'])})"
            + (" *" if a.single else ""))


def _subgroup_line(a) -> str:
    sg = a.subgroups
    if sg is None:
        return ""
    from metaanalysis.effects.transforms import to_natural
    from metaanalysis.formatting import pval

    parts = []
    for g, r in sg.groups.items():
        est, lb, ub = to_natural(r.measure, [r.estimate, r.ci_lb, r.ci_ub], ni=r.ni)
        parts.append(f"{g} {_fmt(a.measure, est)} ({interval_text(a.measure, lb, ub)}; k = {r.k})")
    return (f"  Subgroups by modality ({a.subgroup_note}): " + "; ".join(parts)
            + f"; test for subgroup differences Q({sg.q_between_df}) = {num(sg.q_between, 2)}, "
            f"p = {pval(sg.q_between_p)}.")


def report_md(results, studies, figs, plan_name, version, results_md, sens_all,
              trajectories=()) -> str:
    """The text of report.md; ``results_md`` is the Markdown results table and
    ``sens_all`` the sensitivity table, both already made for their own files."""
    from metaanalysis.records.checks import format_problem

    plan = results.plan
    rl = _relabeller(results.labels)
    used = results.studies_used()
    sub_only = sorted({s for a in results.analyses if a.subgroups is not None
                       for r in a.subgroups.groups.values() for s in r.labels}
                      - {results.labels.get(i, i) for i in used})
    unused = [i for i in studies.ids if i not in used
              and results.labels.get(i, i) not in sub_only]
    sources = sorted({s.source for s in studies})
    L = [f"# {plan.title or 'Meta-analysis report'}", "",
         (f"Generated by metaanalysis {version} from {len(used)} studies that enter at least one "
          f"main analysis ({', '.join(results.labels.get(i, i) for i in used)}) of "
          f"{len(studies)} study records, with the analysis plan `{plan_name}`. "
          + (f"Only in the subgroup analyses by modality: {', '.join(sub_only)}. " if sub_only else "")
          + (f"In no analysis: {', '.join(results.labels.get(i, i) for i in unused)}. "
             if unused else "")
          + "Input checksums are in `provenance.json`."), ""]
    if sources == ["abstract"]:
        L += ["**Data source.** Every number was read from the abstract of the published report "
              "(no full texts were available): these are abstract-level, study-level data. "
              "Abstracts give few time points, rarely the n behind a follow-up value, and often "
              "no unit or definition; what had to be assumed is marked in the records and "
              "flagged here (§ ‖ ¶), and risk of bias cannot be judged beyond what an abstract "
              "states.", ""]
    L += ["## Methods (as run)", ""]
    L += methods_lines(results, studies, plan)
    if trajectories:
        from metaanalysis.report.trajectory import settings_lines

        L += [f"- {line}" for line in settings_lines(plan)]
    L += ["", "## Results", "", results_md]
    marks = {}
    for a in results.analyses:
        for m in flags_of(a.selection.included):
            marks[m] = True
    for f in (sens_all["flags"] if "flags" in sens_all.columns else ()):
        for m in FLAG_MARKS:
            if m in str(f):
                marks[m] = True
    if marks:
        L += ["", "Markers on study labels (here, in the forest plots and in the tables' "
              "flag columns): " + "; ".join(flag_text(m, plan) for m in FLAG_MARKS if m in marks)
              + ". Analyses across units show each study's unit in brackets."]
    L += ["", ("Tables: `results.csv/.md/.tex`; sensitivity analyses: `sensitivity.csv/.md/.tex`; "
               "subgroups by modality: `subgroups.csv/.md`; every record used or left out: "
               "`selection.csv`."), ""]
    for op in plan.outcomes:
        L += [f"### {op.label}", ""]
        parts = [a for a in results.analyses if a.outcome == op.name]
        if not parts:
            L += [f"Not analysed: {dict(results.unpooled).get(op.name, 'no data')}.", ""]
            continue
        L += _time_course_table(results, op)
        p_only = p_only_text(studies, op, results.labels)
        if p_only:
            L += [f"Reported without values (not poolable): {p_only}.", ""]
        for a in parts:
            L.append(f"- {a.sentence(plan)}")
            f = figs.get(a.key, {})
            if f:
                L.append("  Figures: " + ", ".join(f"[{k}]({v}.svg)" for k, v in sorted(f.items())))
            if a.k:
                L.append("  Studies: " + ", ".join(a.labels()) + ".")
            het = _heterogeneity_line(a)
            if het:
                L.append(het)
            if a.assumptions:
                L.append("  Assumptions: " + rl("; ".join(a.assumptions)) + ".")
            if len(a.selection.excluded):
                L.append("  Left out: " + rl(left_out_text(a.selection.excluded)) + ".")
            sg = _subgroup_line(a)
            if sg:
                L.append(sg)
            L += sensitivity_lines(a, results.labels)
        for t in (t for t in trajectories if t.outcome == op.name):
            L.append(f"- Time course (primary, one model): {t.sentence()}{_trajectory_spread(t)}")
        tc = figs.get(f"timecourse:{op.name}")
        if tc:
            L.append("- Time course: " + ", ".join(f"[{u}]({v}.svg)" for u, v in sorted(tc.items())))
        L.append("")
    L += ["## Outcomes not pooled", ""]
    for name, reason in results.unpooled:
        L.append(f"- {name}: {rl(reason)}")
    L += ["", "## Data warnings", ""]
    L += [f"- {format_problem(dataclasses.replace(w, file=Path(w.file).name))}"
          for w in studies.warnings] or ["- none"]
    return "\n".join(L) + "\n"


__all__ = ["interval_text", "methods_lines", "model_description", "report_md", "sentence",
           "sensitivity_lines"]

