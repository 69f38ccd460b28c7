"""The submission package of ``metaanalysis report``: Table 1, PRISMA, risk of bias, GRADE.

Called by :func:`metaanalysis.report.run.run_report`:

* :func:`check_submission` (before anything is written): risk-of-bias blocks
  against the plan's tools, PRISMA "studies included" against the study
  folder, GRADE outcomes and overrides against the plan's outcomes — every
  problem one line, exit status 2;
* :func:`add_rob_sensitivity`: a sensitivity analysis without the studies at
  high risk of bias for every analysis that includes one;
* :func:`write_submission`: ``study_table.*``, ``prisma.csv`` and the flow
  diagram, ``risk_of_bias.*`` and its figures, ``summary_of_findings.*``
  (CSV, Markdown, LaTeX, Word) and ``tables.docx``; returns the report.md
  sections.

Examples
--------
>>> import metaanalysis as ma                                  # doctest: +SKIP
>>> files = ma.run_report("studies", out="figures")            # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metaanalysis.errors import PlanError, Problem, StudyFileError
from metaanalysis.report.latex import latex_table
from metaanalysis.report.study_labels import FLAG_MARKS, flag_text, flags_summary
from metaanalysis.review.grade import GradeSettings, outcome_row, sof_display, summary_of_findings
from metaanalysis.review.prisma import prisma_counts, prisma_lines, prisma_table
from metaanalysis.review.rob import check_ratings, get_tool, rob_ratings, rob_table
from metaanalysis.review.rob_tools import HIGH_RISK
from metaanalysis.review.study_table import NR, study_table

__all__ = ["Submission", "add_rob_sensitivity", "check_submission", "forest_rob",
           "grade_settings", "sof_rows", "submission_figures",
           "marker_notes", "rob_overall", "study_table_display", "write_submission"]

ROB_SENSITIVITY = "without studies at high risk of bias"


# ---------------------------------------------------------------- checks

def _tool_for(plan, study) -> str | None:
    rb = plan.risk_of_bias or {}
    if not rb:
        return None
    comparative = len(getattr(study, "arms", None) or {}) >= 2
    return (rb.get("comparative_tool") or rb["tool"]) if comparative else rb["tool"]


def check_submission(studies, plan) -> None:
    """Raise :class:`~metaanalysis.errors.StudyFileError` listing every problem of the
    ratings, the PRISMA counts (against the folder) and the GRADE statements."""
    problems: list[Problem] = []
    rb = plan.risk_of_bias
    if rb:
        for s in studies:
            problems += check_ratings([s], _tool_for(plan, s), require=rb["required"])
    else:
        problems += check_ratings(studies, None)
    file = plan.path or "plan"
    if plan.prisma is not None:
        try:
            prisma_counts(plan.prisma, file=file, studies=studies)
        except PlanError as err:
            problems += err.problems
    g = plan.grade or {}
    names = [o.name for o in plan.outcomes]
    for name in (g.get("outcomes") or {}):
        if name not in names:
            problems.append(Problem(file, "grade/outcomes", name, "not an outcome of the plan; "
                                    f"expected one of {', '.join(names)}"))
    for i, o in enumerate(g.get("overrides") or ()):
        if o["outcome"] not in names:
            problems.append(Problem(file, f"grade/overrides[{i}]", "outcome",
                                    f"{o['outcome']!r} is not an outcome of the plan; expected "
                                    f"one of {', '.join(names)}"))
    if problems:
        raise StudyFileError(problems)


def grade_settings(plan) -> GradeSettings:
    """The plan's ``grade:`` block as :class:`~metaanalysis.GradeSettings`."""
    g = plan.grade or {}
    imprecision, indirect = {}, {}
    for name, o in (g.get("outcomes") or {}).items():
        rule = {}
        if o.get("imprecision_ci_width") is not None:
            rule["ci_width"] = o["imprecision_ci_width"]
        if o.get("ois") is not None:
            rule["ois"] = o["ois"]
        if o.get("imprecision_reason"):
            rule["reason"] = o["imprecision_reason"]
        if rule:
            imprecision[name] = rule
        if o.get("indirectness"):
            indirect[name] = (o["indirectness"]["judgement"], o["indirectness"]["reason"])
    overrides = {}
    for o in g.get("overrides") or ():
        key = "/".join(x for x in (o["outcome"], o.get("window"), o.get("unit")) if x)
        if o.get("unit") and not o.get("window"):
            key = f"{o['outcome']}/None/{o['unit']}"
        overrides[(key, o["domain"])] = (o["judgement"], o["reason"])
    return GradeSettings(design=g.get("design", "observational"),
                         rob_serious=g.get("rob_serious_share", 0.5),
                         imprecision=imprecision, indirectness=indirect, overrides=overrides)


def forest_rob(analysis, overall: dict) -> dict:
    """``{forest label: overall level}`` of the rated studies of one analysis (the labels
    with their data markers, as the forest plot names the studies)."""
    inc = analysis.selection.included
    return {lab: overall[sid] for lab, sid in zip(analysis.labels(), inc["study"])
            if sid in overall}


def rob_overall(studies) -> dict:
    """Study id -> overall risk-of-bias level (rated studies only)."""
    long = rob_ratings(studies)
    ov = long[long["domain"] == "overall"]
    return dict(zip(ov["study"], ov["level"]))


# ---------------------------------------------------------------- sensitivity

def _row(name, res, measure, sel, note, summarise):
    inc = sel.included
    row = {"analysis": name, "k": len(inc), "n": int(inc["ni"].sum()) if len(inc) else 0,
           "estimate": math.nan, "ci_lb": math.nan, "ci_ub": math.nan, "tau2": math.nan,
           "i2": math.nan, "note": note, "flags": flags_summary(inc),
           "studies": ", ".join(inc["study"]), "left_out": "", "study_set": ""}
    if res is not None:
        s = summarise(res, measure)
        row.update(k=s["k"], estimate=s["estimate"], ci_lb=s["ci_lb"], ci_ub=s["ci_ub"],
                   tau2=s["tau2"], i2=s["i2"])
    return row


def add_rob_sensitivity(results, studies):
    """``results`` with a row "without studies at high risk of bias (...)" added to the
    sensitivity table of every pooled analysis that includes such a study."""
    from metaanalysis.report.analysis import fit, summarise

    overall = rob_overall(studies)
    if not overall:
        return results
    analyses = []
    for a in results.analyses:
        inc = a.selection.included
        high = [s for s in inc["study"] if overall.get(s) in HIGH_RISK] if len(inc) else []
        if not a.pooled or not high:
            analyses.append(a)
            continue
        keep = inc[~inc["study"].isin(high)].reset_index(drop=True)
        sub = dataclasses.replace(a.selection, included=keep)
        op = results.plan.outcome(a.outcome)
        res, lab = fit(sub, op, results.plan)
        if not len(keep):
            lab = "every study of this analysis is at high risk of bias: nothing left to pool"
        who = ", ".join(results.labels.get(s, s) for s in high)
        row = _row(f"{ROB_SENSITIVITY} (left out: {who})", res, a.measure, sub,
                   lab if res is not None else lab, summarise)
        row["left_out"] = ", ".join(high)
        sens = pd.concat([a.sensitivity, pd.DataFrame([row])], ignore_index=True) \
            if a.sensitivity is not None and len(a.sensitivity) else pd.DataFrame([row])
        analyses.append(dataclasses.replace(a, sensitivity=sens))
    return dataclasses.replace(results, analyses=tuple(analyses))


# ---------------------------------------------------------------- tables

def study_table_display(table: pd.DataFrame) -> pd.DataFrame:
    """Table 1 as printed: one text cell per characteristic, compact."""
    def join(*parts):
        vals = [p for p in parts if p and p != NR]
        return "; ".join(vals) if vals else NR

    rows = []
    for _, r in table.iterrows():
        doi = r["DOI"]
        aug = r["Augmentation"] if r["Augmented"] in (NR, "all") else \
            f"{r['Augmentation']} ({r['Augmented']})"
        rows.append({
            "Study": f"{r['Study']}; doi:{doi}" if doi != NR else r["Study"],
            "Design": r["Design"], "Centre, country": join(r["Centre"], r["Country"]),
            "Period": r["Period"],
            "Intervention": join(r["Modality"], aug) if r["Augmentation"] != NR
            else r["Intervention"],
            "Patients / lesions": f"{r['Patients']} / {r['Lesions']}",
            "Population": r["Population"], "Pain scale": r["Pain scale"],
            "Follow-up": r["Follow-up"], "Attrition": r["Attrition"],
            "Overlap group": r["Overlap group"], "Source": r["Source"]})
    return pd.DataFrame(rows)


def _rob_display(wide: pd.DataFrame, tool) -> pd.DataFrame:
    t = get_tool(tool)
    index = {d.key: i for i, d in enumerate(t.domains, 1)}
    out = pd.DataFrame({"Study": wide["Study"]})
    for d in t.domains:
        if d.key in wide.columns:
            out[f"D{index[d.key]}"] = ["—" if pd.isna(v) else _judgement_text(v)
                                       for v in wide[d.key]]
    out["Overall"] = [t.level_names.get(v, v).split(":")[0] if t.name not in ("minors", "nos")
                      else v for v in wide["Overall"]]
    return out


def _judgement_text(v) -> str:
    """``2`` for a score read as 2.0 (a column with empty cells), else the judgement as written."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _rob_notes(tool, note: str) -> list[str]:
    t = get_tool(tool)
    index = {d.key: i for i, d in enumerate(t.domains, 1)}
    lines = [f"{t.label} ({t.reference}): " + "; ".join(f"D{index[d.key]} {d.text}"
                                                        for d in t.domains)]
    lines.append(f"Overall judgement: {t.rule_text}.")
    if note:
        lines.append(note)
    return lines


@dataclass
class Submission:
    """What :func:`write_submission` wrote: report.md sections and file names."""

    before_results: list = field(default_factory=list)  # report.md lines
    after_results: list = field(default_factory=list)
    files: dict = field(default_factory=dict)


def _markers(analyses) -> dict:
    out = {}
    for a in analyses:
        if "flags" in a.selection.included.columns:
            marks = "".join(m for m in FLAG_MARKS if any(m in str(f) for f in
                                                         a.selection.included["flags"]))
            if marks:
                out[(a.outcome, a.window, a.unit)] = marks
    return out


def sof_rows(results, settings: GradeSettings) -> list[dict]:
    """Input rows of :func:`~metaanalysis.summary_of_findings` for every pooled analysis of
    ``results`` (a :class:`~metaanalysis.report.analysis.PlanResults`); Egger's p when k is
    at least ``settings.pub_bias_min_k``; the control arms' risk for comparative measures."""
    from metaanalysis.models.bayes import BayesResult

    rows = []
    for a in results.analyses:
        if not a.pooled:
            continue
        inc = a.selection.included
        egger = None
        if not isinstance(a.result, BayesResult) and a.result.k >= settings.pub_bias_min_k:
            from metaanalysis.models.bias import egger_test

            egger = float(egger_test(a.result).p)
        control = None
        if {"events2", "total2"} <= set(inc.columns):
            control = float(inc["events2"].sum() / inc["total2"].sum())
        rows.append(outcome_row(a.result, outcome=a.outcome, n=a.total_n, unit=a.unit,
                                studies=list(inc["study"]), measure=a.measure, window=a.window,
                                egger_p=egger, control_risk=control))
    return rows


def submission_figures(tree, studies, plan, *, formats=("pdf", "svg", "png"), dpi: int = 300,
                       submit=None) -> dict:
    """Make the flow diagram and the risk-of-bias figures of :func:`write_submission`.

    They need only the studies and the plan, so they can be drawn while the analyses
    run: each figure is handed to ``submit(tag, task)`` (default: drawn now), e.g.
    :meth:`metaanalysis.report.parallel.Forked.submit`.  Returns the stems
    (relative to ``tree``) to pass to ``write_submission(figures=...)``:
    ``{"prisma": stem, ("rob", tool): (traffic light, summary)}``.
    """
    import functools

    from metaanalysis.records.labels import display_labels

    submit = submit or (lambda _tag, task: task())
    out: dict = {}
    if plan.prisma is not None:
        counts = prisma_counts(plan.prisma, file=plan.path or "plan", studies=studies)
        stem = tree.path("prisma", "prisma_flow")
        out["prisma"] = f"prisma/{stem.name}"
        submit(out["prisma"], functools.partial(_prisma_draw, counts, stem, formats, dpi))
    labels = display_labels(studies)
    long = rob_ratings(studies, labels=labels)
    for tool in dict.fromkeys(long["tool"]) if len(long) else ():
        wide = rob_table(studies, tool, labels=labels)
        stems = (tree.path("risk_of_bias", tool, "traffic_light"),
                 tree.path("risk_of_bias", tool, "summary"))
        out[("rob", tool)] = tuple(f"risk_of_bias/{s.name}" for s in stems)
        for kind, stem, rel in zip(("light", "summary"), stems, out[("rob", tool)]):
            submit(rel, functools.partial(_rob_draw, kind, wide, tool, stem, formats, dpi))
    return out


def write_submission(tree, results, studies, plan, *, formats=("pdf", "svg", "png"),
                     dpi: int = 300, say=None, figures: dict | None = None) -> Submission:
    """Write the submission files into ``tree`` (:class:`~metaanalysis.report.output.OutputTree`:
    every path checked there, names from the input slugged); return the report.md sections.
    ``figures``: what :func:`submission_figures` returned, when it made them; else the
    figures are drawn here."""
    from metaanalysis.report.output import slug
    from metaanalysis.report.tables import (
        display_results,
        display_sensitivity,
        to_csv_text,
        to_markdown,
    )
    from metaanalysis.report.word import DocxTable, docx_bytes

    out = Submission()
    say = say or (lambda _text: None)
    labels = results.labels

    def text(name, content):
        tree.write_text(name, content if content.endswith("\n") else content + "\n")
        out.files[name] = name

    # Table 1
    t1 = study_table(studies, labels=labels)
    t1d = study_table_display(t1)
    t1_notes = list(t1.attrs["notes"])
    text("study_table.csv", to_csv_text(t1))
    text("study_table.md", to_markdown(t1d) + "\n\n" + "\n".join(f"- {n}" for n in t1_notes))
    text("study_table.tex", latex_table(t1d, caption="Characteristics of the included studies",
                                        label="tab:studies", notes=t1_notes, landscape=True,
                                        size="scriptsize"))
    L = out.before_results
    # PRISMA
    if plan.prisma is not None:
        counts = prisma_counts(plan.prisma, file=plan.path or "plan", studies=studies)
        text("prisma.csv", to_csv_text(prisma_table(counts)))
        flow = figures["prisma"] if figures else _prisma_figure(counts, tree, formats, dpi)
        L += ["## Study selection (PRISMA 2020)", ""]
        L += prisma_lines(counts)
        L += ["", f"Flow diagram: [{flow}.svg]({flow}.svg) (also PDF and PNG); counts: "
              "`prisma.csv`.", ""]
    else:
        L += ["## Study selection (PRISMA 2020)", "",
              "No `prisma:` counts in the plan: no flow diagram.", ""]
    L += ["## Included studies", "", f"{len(studies)} studies (Table 1: `study_table.csv`, "
          "`study_table.md`, `study_table.tex`, and in `tables.docx`).", "",
          to_markdown(t1d), ""] + [f"- {n}" for n in t1_notes] + [""]
    # risk of bias
    rb = plan.risk_of_bias or {}
    long = rob_ratings(studies, labels=labels)
    rob_tables = []
    if len(long):
        text("risk_of_bias.csv", to_csv_text(long))
        L += ["## Risk of bias", ""]
        if rb.get("note"):
            L += [rb["note"].strip(), ""]
        for tool in dict.fromkeys(long["tool"]):
            wide = rob_table(studies, tool, labels=labels)
            disp = _rob_display(wide, tool)
            notes = _rob_notes(tool, "")
            light, summary = (figures[("rob", tool)] if figures
                              else _rob_figures(wide, tool, tree, formats, dpi))
            text(f"risk_of_bias_{slug(tool)}.md", to_markdown(disp))
            rob_tables.append((tool, disp, notes))
            high = [s for s, o in zip(wide["Study"], wide["Overall"]) if o in HIGH_RISK]
            unweighted = [s for s, w in zip(wide["Study"], wide["Weight"]) if not np.isfinite(w)]
            weight_text = "weighted by patients" + (
                f"; {', '.join(unweighted)} without a patient count, weight 0"
                if unweighted else "")
            L += [f"{get_tool(tool).label}: {len(wide)} studies; overall "
                  + ", ".join(f"{lv} {int((wide['Overall'] == lv).sum())}"
                              for lv in dict.fromkeys(wide["Overall"]))
                  + (f"; at high risk: {', '.join(high)}" if high else "") + ".",
                  f"Figures: [traffic light]({light}.svg), "
                  f"[summary, {weight_text}]({summary}.svg). Ratings with the "
                  "reason for every judgement: `risk_of_bias.csv`.", "",
                  to_markdown(disp), ""] + [f"- {n}" for n in notes] + [""]
        L += [f"Sensitivity analysis {ROB_SENSITIVITY}: a row of `sensitivity.csv` for every "
              "analysis that includes one.", ""]
    else:
        L += ["## Risk of bias", "", "No study carries risk-of-bias ratings.", ""]
    # GRADE
    settings = grade_settings(plan)
    overall = rob_overall(studies) if len(long) else None
    sof = summary_of_findings(sof_rows(results, settings), rob=overall, settings=settings,
                              labels=labels)
    names = {o.name: o.label for o in plan.outcomes}
    sof_disp = _sof_table(sof, names, _markers(results.analyses))
    sof_notes = list(sof_disp.attrs["notes"]) + marker_notes(sof_disp, plan)
    text("summary_of_findings.csv", to_csv_text(sof))
    text("summary_of_findings.md", to_markdown(sof_disp) + "\n\n"
         + "\n".join(f"- {n}" for n in sof_notes))
    text("summary_of_findings.tex", latex_table(
        sof_disp, caption=f"Summary of findings (GRADE; certainty starts "
        f"{'high: randomised trials' if settings.design == 'randomised' else 'low: observational studies'})",
        label="tab:sof", notes=sof_notes, landscape=True, size="scriptsize"))
    sof_doc = DocxTable("Summary of findings (GRADE)", sof_disp, tuple(sof_notes), True)
    tree.write_bytes("summary_of_findings.docx", docx_bytes([sof_doc],
                                                            title="Summary of findings"))
    A = out.after_results
    A += ["## Certainty of the evidence (GRADE)", "",
          f"Certainty starts {'high (randomised trials)' if settings.design == 'randomised' else 'low (observational studies)'} "
          "and is rated down one level per serious and two per very serious domain; each "
          "judgement comes from a stated rule (docs/submission.md) unless the plan overrides it "
          "with a reason. Files: `summary_of_findings.csv` (every reason), `.md`, `.tex`, "
          "`.docx`.", "", to_markdown(sof_disp), ""] + [f"- {n}" for n in sof_notes] + [""]
    # tables.docx
    measures = {o.name: o.measure for o in plan.outcomes}
    res_disp = display_results(results.results_table(), plan.level)
    sens_disp = display_sensitivity(results.sensitivity_table(), measures)
    docs = [DocxTable("Table 1. Characteristics of the included studies", t1d,
                      tuple(t1_notes), True),
            DocxTable("Table 2. Pooled outcomes", res_disp,
                      tuple(marker_notes(res_disp, plan)), True),
            DocxTable("Table 3. Sensitivity analyses", sens_disp,
                      tuple(marker_notes(sens_disp, plan)), True),
            DocxTable("Table 4. Summary of findings (GRADE)", sof_disp, tuple(sof_notes), True)]
    for i, (tool, disp, notes) in enumerate(rob_tables, 5):
        docs.append(DocxTable(f"Table {i}. Risk of bias ({get_tool(tool).label})", disp,
                              tuple(notes + ([rb['note']] if rb.get("note") else []))))
    tree.write_bytes("tables.docx", docx_bytes(docs, title=plan.title or "Tables"))
    out.files["tables.docx"] = "tables.docx"
    say(f"submission: Table 1 ({len(t1)} studies), "
        + ("PRISMA flow diagram, " if plan.prisma is not None else "")
        + f"risk of bias ({len(rob_tables)} tool{'s' if len(rob_tables) != 1 else ''}), "
        f"summary of findings ({len(sof)} outcomes), tables.docx")
    return out


def _used_marks(frames) -> list[str]:
    found = []
    for df in frames:
        for col in df.columns:
            for v in df[col].astype(str):
                for m in FLAG_MARKS:
                    if m in v and m not in found:
                        found.append(m)
    return [m for m in FLAG_MARKS if m in found]


def marker_notes(df: pd.DataFrame, plan) -> list[str]:
    """The meaning of every data marker (†‡§‖¶) used in the cells of ``df``."""
    return [flag_text(m, plan) for m in _used_marks([df])]


def _sof_table(sof: pd.DataFrame, names: dict, markers: dict) -> pd.DataFrame:
    marks = [markers.get((o, w, u), "")
             for o, w, u in zip(sof["outcome"], sof["window"], sof["unit"])]
    return sof_display(sof, markers=marks, labels=names)


def _prisma_draw(counts, stem, formats, dpi) -> None:
    from metaanalysis.plots.output import save_figure, use_style
    from metaanalysis.plots.prisma import prisma_flow

    with use_style("double"):
        ax = prisma_flow(counts, width="double")
        save_figure(ax.figure, stem, formats, dpi=dpi)
        _close(ax.figure)


def _prisma_figure(counts, tree, formats, dpi) -> str:
    stem = tree.path("prisma", "prisma_flow")
    _prisma_draw(counts, stem, formats, dpi)
    return f"prisma/{stem.name}"


def _rob_draw(kind, wide, tool, stem, formats, dpi) -> None:
    from metaanalysis.plots.output import save_figure, use_style
    from metaanalysis.plots.rob import rob_summary, rob_traffic_light

    with use_style("double"):
        if kind == "light":
            ax = rob_traffic_light(wide, tool, width="double")
        else:
            ax = rob_summary(wide, tool, width="double", weighted=bool(np.isfinite(
                wide["Weight"].to_numpy(float)).any()))
        save_figure(ax.figure, stem, formats, dpi=dpi)
        _close(ax.figure)


def _rob_figures(wide, tool, tree, formats, dpi) -> tuple[str, str]:
    light = tree.path("risk_of_bias", tool, "traffic_light")
    _rob_draw("light", wide, tool, light, formats, dpi)
    summary = tree.path("risk_of_bias", tool, "summary")
    _rob_draw("summary", wide, tool, summary, formats, dpi)
    return f"risk_of_bias/{light.name}", f"risk_of_bias/{summary.name}"


def _close(fig):
    import matplotlib.pyplot as plt

    plt.close(fig)


def insert_sections(md: str, sub: Submission) -> str:
    """report.md with the submission sections: selection, studies and risk of bias before
    "## Results"; GRADE before "## Outcomes not pooled" (appended when a heading is absent)."""
    before = "\n".join(sub.before_results).rstrip() + "\n\n"
    after = "\n".join(sub.after_results).rstrip() + "\n\n"
    if "\n## Results\n" in md:
        md = md.replace("\n## Results\n", "\n" + before + "## Results\n", 1)
    else:
        md = md.rstrip() + "\n\n" + before
    if "\n## Outcomes not pooled\n" in md:
        md = md.replace("\n## Outcomes not pooled\n", "\n" + after + "## Outcomes not pooled\n", 1)
    else:
        md = md.rstrip() + "\n\n" + after
    return md
