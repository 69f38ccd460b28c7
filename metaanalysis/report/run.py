"""``metaanalysis report``: the main job.

Loads and checks the study records, runs the analysis plan
(:func:`metaanalysis.report.analysis.run_plan`) and writes report.md, the results and
sensitivity tables, the figures and provenance.  It also writes one CSV per
outcome, time point and unit with the study-level effect sizes into
``OUT/effect_sizes/`` (plus ``index.csv``).  In those tables every choice is printed:

* events/total rows: ``PR`` (raw proportion) and ``PLO`` (logit), metafor's
  escalc conventions (continuity correction 0.5 only for zero cells);
* mean/SD/n rows: ``MN``;
* median with range and/or IQR: mean and SD estimated by
  :func:`metaanalysis.effects.conversions.estimate_mean_sd` (``method="luo-shi"``: Luo
  et al. 2018, Stat Methods Med Res 27:1785; Shi et al. 2020, Res Synth
  Methods 11:641), then ``MN``; flagged ``estimated=True`` with the method;
* "median ± SD" (khan2018): used only under the printed assumption that the
  median stands for the mean (``estimated=True``, conversion
  ``median-as-mean``);
* anything else (a percent without a denominator, no n...) is listed with
  ``included=False`` and the reason, never silently dropped.

Output is written atomically: everything goes to a temporary folder next to
``OUT`` and is moved into place only when complete, so on any error nothing is
written.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from metaanalysis.records.studies import StudySet, load_studies
from metaanalysis.report.output import OutputTree, check_out, write_output
from metaanalysis.report.parallel import Forked

TABLE_PROPORTION_MEASURES = ("PR", "PLO")  # effect-size tables: raw and logit
MEDIAN_AS_MEAN = "median-as-mean"
TABLE_DIR = "effect_sizes"

_STAT_COLS = ("events", "total", "percent", "mean", "sd", "median", "q1", "q3", "min", "max", "n")


def _plan_row(row: pd.Series) -> tuple[str | None, str]:
    """Which effect size a row gives: (kind, reason-if-skipped)."""
    has = {k: not pd.isna(row[k]) for k in _STAT_COLS}
    if has["events"] and has["total"]:
        return "proportion", ""
    if has["mean"] and has["sd"] and has["n"]:
        return "mean", ""
    if has["median"] and has["n"] and ((has["min"] and has["max"]) or (has["q1"] and has["q3"])):
        return "median", ""
    if has["median"] and has["sd"] and has["n"]:
        return "median_sd", ""
    if has["percent"] and not has["total"]:
        return None, "percent without a denominator (see `metaanalysis check`)"
    if has["percent"] and has["total"] and not has["events"]:
        return None, "percent matches no whole count of the total"
    if not has["n"] and (has["mean"] or has["median"]):
        return None, "no n reported"
    return None, "no statistics usable for an effect size"


def effect_size_table(df: pd.DataFrame, *, median_conversion: str = "luo-shi") -> pd.DataFrame:
    """Study-level effect sizes for one outcome table from :meth:`StudySet.outcome`.

    Parameters
    ----------
    df : DataFrame
        Rows of one outcome (typically one time point and unit).
    median_conversion : str
        Method passed to :func:`metaanalysis.effects.conversions.estimate_mean_sd`.

    Returns
    -------
    DataFrame
        The input columns plus ``measure, yi, vi, ni, estimated, conversion,
        included, reason``; proportion rows appear twice (PR and PLO).

    Examples
    --------
    >>> import metaanalysis as ma
    >>> s = load_studies(ma.example_path())
    >>> effect_size_table(s.outcome("cement_leakage"))[["study", "measure", "yi"]].round(4)
          study measure      yi
    0  chen2022      PR  0.3000
    1  wang2022      PR  0.2783
    2    wu2021      PR  0.3030
    3  chen2022     PLO -0.8473
    4  wang2022     PLO -0.9531
    5    wu2021     PLO -0.8329
    """
    from metaanalysis.effects.conversions import estimate_mean_sd
    from metaanalysis.effects.effect_sizes import effect_sizes

    df = df.reset_index(drop=True).copy()
    kinds = [_plan_row(r) for _, r in df.iterrows()]
    df["_kind"] = [k for k, _ in kinds]
    df["reason"] = [r for _, r in kinds]
    df["estimated"] = False
    df["conversion"] = None
    parts = []
    props = df[df["_kind"] == "proportion"]
    for measure in TABLE_PROPORTION_MEASURES if len(props) else ():
        parts.append(effect_sizes(measure, data=props, events="events", total="total")
                     .assign(measure=measure))
    means = df[df["_kind"].isin(["mean", "median", "median_sd"])].copy()
    if len(means):
        med = means["_kind"] == "median"
        if med.any():
            sub = means[med]
            # absent statistics are NaN: the scenario (range, IQR or both) is per row
            kw = {k: sub[k].to_numpy(float) for k in ("median", "q1", "q3", "min", "max")}
            m, s = estimate_mean_sd(sub["n"].to_numpy(float), method=median_conversion, **kw)
            means.loc[med, "mean"] = np.asarray(m, float)
            means.loc[med, "sd"] = np.asarray(s, float)
            means.loc[med, "estimated"] = True
            means.loc[med, "conversion"] = median_conversion
        msd = means["_kind"] == "median_sd"
        if msd.any():
            means.loc[msd, "mean"] = means.loc[msd, "median"]
            means.loc[msd, "estimated"] = True
            means.loc[msd, "conversion"] = MEDIAN_AS_MEAN
        parts.append(effect_sizes("MN", data=means, mean="mean", sd="sd", n="n")
                     .assign(measure="MN"))
    skipped = df[df["_kind"].isna()].assign(measure=None, yi=np.nan, vi=np.nan, ni=np.nan)
    parts.append(skipped)
    out = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(
        len(p) for p in parts) else skipped
    out["included"] = out["_kind"].notna()
    out = out.drop(columns="_kind")
    front = ["study", "arm", "outcome", "time", "day_lo", "day_hi", "unit", "overlap_group",
             "measure", "yi", "vi", "ni", "estimated", "conversion", "included", "reason"]
    return out[front + [c for c in out.columns if c not in front]]


def effect_size_tables(studies: StudySet, *, median_conversion: str = "luo-shi"):
    """One effect-size table per (outcome, time point, unit).

    The effect sizes of an outcome are computed once, for all its rows, and
    split by time point and unit (the work grows with the number of rows, not
    with the number of tables).

    Returns
    -------
    list of (outcome, time_label, unit, DataFrame)
    """
    tables = []
    for name in studies.outcomes():
        df = studies.outcome(name)
        keys = [f"{k}|{lo!r}|{hi!r}|{u}" for k, lo, hi, u in zip(
            df["time_kind"], df["day_lo"], df["day_hi"], df["unit"])]
        full = effect_size_table(df.assign(_table=keys), median_conversion=median_conversion)
        rows = full.groupby("_table", sort=False).indices
        first = dict(zip(reversed(keys), reversed(range(len(keys)))))  # first row of each key
        full = full.drop(columns="_table")
        for key in dict.fromkeys(keys):
            row = df.iloc[first[key]]
            tables.append((name, row["time"], row["unit"],
                           full.iloc[rows[key]].reset_index(drop=True)))
    return tables


# ---------------------------------------------------------------- the report

FIGURE_FORMATS = ("pdf", "svg", "png")


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _resolve_plan(studies_path, plan):
    """The plan to run: the given file, else STUDIES/plan.yaml, else the built-in default."""
    from metaanalysis.report.plan import load_plan

    if plan is not None:
        return load_plan(plan), Path(plan)
    if studies_path is not None:
        folder = Path(studies_path)
        folder = folder if folder.is_dir() else folder.parent
        for name in ("plan.yaml", "plan.yml"):
            if (folder / name).exists() or (folder / name).is_symlink():
                return load_plan(folder / name), folder / name  # not a file: an error there
    return None, None


def _close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


_TICK_NAMES = ((1, "1 d"), (7, "1 wk"), (14, "2 wk"), (30, "1 mo"), (90, "3 mo"),
               (180, "6 mo"), (365, "1 y"), (730, "2 y"))


def _window_ticks(plan, op) -> dict:
    """``{day: name}`` ticks for the time-course axis: one per window of ``op``.

    The tick is the conventional day nearest the window's middle that lies
    inside the window ("1 d", "1 wk", "1 mo", "3 mo", "6 mo"), else the middle.
    """
    ticks = {}
    for w in op.windows:
        lo, hi = plan.windows[w]
        inside = [(abs(d - (lo + hi) / 2), d, t) for d, t in _TICK_NAMES if lo <= d <= hi]
        if inside:
            _, d, t = min(inside)
        else:
            d, t = (lo + hi) / 2, f"{(lo + hi) / 2:g} d"
        ticks[float(d)] = t
    return dict(sorted(ticks.items()))


def _axis_label(label: str) -> str:
    """Axis label with unit and direction from a plan label:
    "Pain reduction (VAS 0-10, baseline minus follow-up)" →
    "Pain reduction, VAS 0–10 (baseline − follow-up)"."""
    name, _, inner = label.partition(" (")
    if not inner:
        return label
    unit, _, direction = inner.rstrip(")").partition(", ")
    unit = unit.replace("0-10", "0–10")
    direction = direction.replace(" minus ", " − ")
    return f"{name}, {unit}" + (f" ({direction})" if direction else "")


def figure_jobs(results, trajectories=(), rob=None) -> list[tuple]:
    """The figures of a report as jobs ``(kind, key, payload)``: one forest per pooled
    analysis (absolute values are drawn in their time course instead), a funnel where k
    reaches the plan's minimum, a time course per outcome and unit (change from
    baseline, and absolute values from baseline on when pooled: then one figure of two
    panels, A change and B absolute, :func:`~metaanalysis.plots.timecourse_panels`).  A fitted time-course
    model (:mod:`metaanalysis.report.trajectory`) is the change figure's line, CI and PI
    band over each study's observed points.  ``rob`` ({study id: overall judgement})
    adds each study's overall risk of bias as a forest column."""
    from metaanalysis.plots.forest import forest_spec, shared_xlim
    from metaanalysis.report.analysis import PROPORTIONS
    from metaanalysis.report.fitting import is_bayes
    from metaanalysis.report.submission import forest_rob
    from metaanalysis.report.text import analysis_name
    from metaanalysis.report.trajectory import trajectory_figure

    plan = results.plan
    jobs = []
    for a in results.analyses:
        if not a.pooled or a.kind in ("absolute", "baseline"):
            continue  # absolute values: in the tables, the sentences and the time course
        prop = a.measure in PROPORTIONS
        inc = a.selection.included
        title = f"{analysis_name(a)} ({a.unit})"
        labels = tuple(a.labels())
        res = (dataclasses.replace(a.result, labels=labels) if is_bayes(a.result)
               else a.result.with_(labels=labels))
        kw = {"percent": prop, "footnotes": a.footnotes(plan), "title": title}
        if prop and "events" in inc.columns:
            kw.update(events=inc["events"].to_numpy(float), total=inc["total"].to_numpy(float))
        if not prop:
            kw["xlabel"] = _axis_label(a.label)
        if "events1" in inc.columns:  # two-group measures: say which arm is which
            kw["footnotes"] = [*kw["footnotes"], "Events/Total (1): the ablation arm; (2): the "
                               "control arm"]
        if rob:  # overall risk of bias of each study, a column on the right
            kw["rob"] = forest_rob(a, rob) or None
        names = (a.outcome, a.window or "all", a.unit)
        jobs.append(("forest", a.key, dict(res=res, kw=kw, names=names,
                                           family=(a.outcome, a.unit, a.measure))))
        if not is_bayes(a.result) and a.result.k >= plan.funnel_min_k:
            jobs.append(("funnel", a.key, dict(res=a.result, title=title, names=names,
                                               xlabel=kw.get("xlabel"))))
    # the forests of one outcome and unit (its time windows) share one x range
    family: dict = {}
    for j in jobs:
        if j[0] == "forest":
            family.setdefault(j[2]["family"], []).append(j[2])
    for members in family.values():
        if len(members) > 1:
            lim = shared_xlim([forest_spec(m["res"], **m["kw"]) for m in members])
            for m in members:
                m["xlim"] = lim
    for op in plan.outcomes:
        if not op.timecourse:
            continue
        parts = [a for a in results.analyses if a.outcome == op.name and a.pooled]
        for unit in sorted({a.unit for a in parts}):
            panels = {}
            for kind in ("change", "absolute"):
                rows, studies = [], []
                members = [x for x in parts if x.unit == unit and (
                    x.kind == kind or (kind == "absolute" and x.kind == "baseline"))]
                for a in members:
                    s = a.row()
                    days = 0.0 if a.kind == "baseline" else \
                        float(np.nanmean(a.selection.included["days"]))
                    rows.append({"days": days, "estimate": s["estimate"], "ci_lb": s["ci_lb"],
                                 "ci_ub": s["ci_ub"], "k": s["k"],
                                 "studies": tuple(a.selection.included["study"])})
                    y = np.asarray(a.result.yi, float)
                    for sid, d, yi in zip(a.selection.included["study"],
                                          a.selection.included["days"], y):
                        studies.append({"study": sid, "days": 0.0 if a.kind == "baseline"
                                        else float(d), "yi": float(yi)})
                if len(rows) < 2:
                    continue
                scale = op.label.split(" (", 1)[1].split(",")[0] if " (" in op.label else ""
                what = op.label.split(" (")[0].replace(" reduction", "")
                ticks = _window_ticks(plan, op)
                if kind == "absolute":
                    ticks = {0.0: "pre", **ticks}
                model = trajectory_figure(trajectories, op.name, unit) if kind == "change" else None
                bounds = next((a.bounds for a in members if a.bounds), None)
                panels[kind] = dict(
                    df=None if model else pd.DataFrame(rows),
                    studies=model["studies"] if model else pd.DataFrame(studies),
                    trajectory=model["trajectory"] if model else None,
                    counts=model.get("counts") if model else None,
                    ylabel=_axis_label(op.label) if kind == "change" else
                    (f"{what} ({scale})" if scale else what),
                    interval="CrI" if any(is_bayes(a.result) for a in members) else "CI",
                    xticks=ticks, bounds=bounds)
            if not panels:
                continue
            # change and absolute values: one figure of two panels (A, B) under one name
            head = op.label.split(" (")[0]
            what = head.replace(" reduction", "")
            if len(panels) == 2:
                names, entry = (op.name, unit), unit
                title = f"{what}: change from baseline (A) and absolute values (B), {unit}"
            elif "change" in panels:
                names, entry = (op.name, unit), unit
                title = f"{head}, change from baseline ({unit})"
            else:
                names, entry = (f"{op.name}_absolute", unit), f"{unit}, absolute"
                title = f"{what}, absolute ({unit})"
            jobs.append(("timecourse", f"timecourse:{op.name}", dict(
                panels=panels, labels=dict(results.labels), title=title, names=names,
                entry=entry)))
    return jobs


FIGURE_FOLDERS = {"forest": "forest", "funnel": "funnel", "timecourse": "timecourse"}


def draw_figure(job, stem: Path, formats, dpi) -> tuple[str, str, str]:
    """Draw one figure job and save it as ``stem`` + each format; returns
    ``(entry key, kind, relative stem)``."""
    from metaanalysis.plots.forest import forest
    from metaanalysis.plots.funnel import funnel
    from metaanalysis.plots.output import save_figure, use_style
    from metaanalysis.plots.timecourse import timecourse
    from metaanalysis.plots.timecourse_panels import timecourse_panels

    kind, key, d = job
    with use_style("single"):
        if kind == "forest":
            ax = forest(d["res"], xlim=d.get("xlim"), **d["kw"])
            entry = "forest"
        elif kind == "funnel":
            ax = funnel(d["res"], title=d["title"], xlabel=d.get("xlabel"))
            entry = "funnel"
        else:
            common = dict(xscale="sqrt", study_labels=d["labels"],
                          xlabel="Time after treatment (square-root scale)")
            if len(d["panels"]) == 2:
                ax = timecourse_panels(d["panels"]["change"], d["panels"]["absolute"],
                                       width="double", title=d["title"], **common)[0]
            else:
                ax = timecourse(**next(iter(d["panels"].values())), **common)
                ax.set_title(d["title"])
            entry = d["entry"]
        stem = Path(stem)
        save_figure(ax.figure, stem, formats, dpi=dpi)
        _close(ax.figure)
    return key, entry, f"{stem.parent.name}/{stem.name}"


def figure_entry(job) -> tuple[str, str]:
    """``(entry key, entry)`` of a figure job in the report's figure index."""
    kind, key, d = job
    return key, (kind if kind in ("forest", "funnel") else d["entry"])


def warm_figures() -> None:
    """Import the plotting modules, load the fonts and make their base subsets for PDF
    embedding in this process, so that forked figure processes inherit them instead of
    each making them again."""
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.backends.backend_pdf  # noqa: F401
    import matplotlib.backends.backend_svg  # noqa: F401
    import matplotlib.pyplot as plt
    from fontTools import subset  # noqa: F401

    import metaanalysis.plots.forest  # noqa: F401
    import metaanalysis.plots.funnel  # noqa: F401
    import metaanalysis.plots.prisma  # noqa: F401
    import metaanalysis.plots.rob  # noqa: F401
    import metaanalysis.plots.timecourse  # noqa: F401
    from metaanalysis.plots.fonts import warm_font_subsets
    from metaanalysis.plots.output import use_style

    with use_style("single"):
        fig = plt.figure()
        fig.text(0.5, 0.5, "Aa 1", weight="bold")
        fig.text(0.5, 0.2, "Aa $\\tau^2$")
        fig.canvas.draw()
        plt.close(fig)
        warm_font_subsets()  # the embedded-font subsets every PDF of a figure is cut from


def run_report(studies="studies", out="figures", *, plan=None, quiet: bool = False,
               median_conversion: str | None = None, formats=FIGURE_FORMATS,
               dpi: int = 300, jobs: int = 1, progress=None) -> list[Path]:
    """Run the analysis plan and write every table and figure into ``out``.

    Parameters
    ----------
    studies : str or Path
        Folder of study records.
    out : str or Path
        Output folder (written atomically: into a temporary folder next to it,
        moved into place only when complete; files of yours already in ``out``
        that the report does not write are kept).
    plan : str or Path, optional
        Analysis plan; default ``STUDIES/plan.yaml``, else a built-in default
        (:func:`metaanalysis.report.plan.default_plan`).
    quiet : bool
        No progress lines on stderr.
    median_conversion : str, optional
        Override of the plan's median conversion (effect-size tables only).
    formats : sequence of {"pdf", "svg", "png"}
        Figure formats.
    dpi : int
        PNG resolution.
    jobs : int
        Processes that draw the figures (the output is byte-identical to ``jobs=1``).
    progress : Progress, optional
        Where progress goes (:class:`metaanalysis.report.progress.Progress`; default:
        stderr, a bar on a terminal, silenced by ``quiet``).

    Returns
    -------
    list of Path
        Every file written, sorted.

    Raises
    ------
    StudyFileError, PlanError
        Bad study records or plan; nothing is written then.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> files = ma.run_report("studies", out="figures", quiet=True)  # doctest: +SKIP
    """
    import json
    import platform

    from metaanalysis import __version__
    from metaanalysis.records.checks import format_problem
    from metaanalysis.records.studies import study_files
    from metaanalysis.report.analysis import count_analyses, run_plan
    from metaanalysis.report.plan import default_plan
    from metaanalysis.report.progress import Progress
    from metaanalysis.report.submission import (
        add_rob_sensitivity,
        check_submission,
        insert_sections,
        marker_notes,
        rob_overall,
        submission_figures,
        write_submission,
    )
    from metaanalysis.report.tables import (
        display_results,
        display_sensitivity,
        display_subgroups,
        to_csv_text,
        to_latex,
        to_markdown,
    )
    from metaanalysis.report.text import report_md
    from metaanalysis.report.trajectory import fit_trajectories, trajectory_table

    prog = progress if progress is not None else Progress(quiet)
    say = prog.line

    sset = load_studies(studies)
    the_plan, plan_path = _resolve_plan(studies, plan)
    folder = Path(studies)
    protected = {"the studies folder": folder if folder.is_dir() else folder.parent}
    if plan_path is not None:
        protected["the plan's folder"] = Path(plan_path).parent
    check_out(out, protected)  # refuse a bad --out before any work
    if the_plan is None:
        the_plan = default_plan(sset)
        say("no plan file: using the built-in default plan (metaanalysis.report.plan.default_plan)")
    if median_conversion:
        the_plan = dataclasses.replace(the_plan, median_conversion=median_conversion)
    mc = the_plan.median_conversion
    check_submission(sset, the_plan)  # ratings, PRISMA counts, GRADE statements: exit 2 early
    for w in sset.warnings:
        say(format_problem(w))
    say(f"{len(sset)} studies: {', '.join(sset.ids)}; plan: {plan_path or 'built-in default'}")
    for line in the_plan.describe():
        say(f"  {line}")
    say("effect-size tables: events/total -> PR and PLO (metafor escalc, 0.5 added to zero "
        "cells); mean/SD/n -> MN")
    say(f"median with range/IQR -> mean and SD by {mc} (Luo 2018 mean, Shi 2020 SD), rows "
        "flagged estimated=True")
    say("effect-size tables: a 'median ± SD' is listed with the median as the mean "
        f"(conversion={MEDIAN_AS_MEAN}, estimated=True); the pooled analyses follow the plan "
        f"(median_sd: {the_plan.median_sd})")
    inputs = [Path(f) for f in study_files(studies)] + ([plan_path] if plan_path else [])
    measures = {o.name: o.measure for o in the_plan.outcomes}

    def build(tree: OutputTree) -> None:
        fig_jobs: list = []
        traj: list = []
        rob = rob_overall(sset)

        def outcome_done(part) -> None:  # draw an outcome's figures while the next is analysed
            t = fit_trajectories(part)
            traj.extend(t)
            for job in figure_jobs(part, t, rob=rob):
                kind, _, d = job
                stem = tree.path(FIGURE_FOLDERS[kind], *d["names"])
                fig_jobs.append((job, f"{stem.parent.name}/{stem.name}"))
                pool.submit(fig_jobs[-1][1], functools.partial(draw_figure, job, stem, formats,
                                                               dpi))

        def analysed(text) -> None:
            prog.step(text)
            pool.poll()

        n_jobs = max(1, int(jobs))
        if n_jobs > 1:
            warm_figures()  # once here, inherited by every figure process
        with Forked(n_jobs) as pool:
            pool.limit = max(1, n_jobs - 1)  # the analyses keep a processor of their own
            sub_figs = submission_figures(tree, sset, the_plan, formats=formats, dpi=dpi,
                                          submit=pool.submit)
            prog.start("analyses", count_analyses(sset, the_plan))
            results = add_rob_sensitivity(run_plan(sset, the_plan, progress=analysed,
                                                   on_outcome=outcome_done), sset)
            prog.done()
            trajectories = tuple(traj)
            for t in trajectories:
                say(f"{t.outcome} time course ({t.unit}): " + (
                    f"one model, k = {t.result.k} estimates, {t.result.n_studies} studies"
                    if t.fitted else f"not fitted ({t.reason})"))
            pool.drain()  # every figure is known: all processes draw
            prog.start("figures", pool.submitted)
            for tag in pool.done:
                prog.step(tag)
            pool.on_done = prog.step
            _write_tables(tree, results, trajectories, pool)
            tree.write_text("plan.yaml", the_plan.text or "# built-in default plan\n")
            sub = write_submission(tree, results, sset, the_plan, formats=formats, dpi=dpi,
                                   say=say, figures=sub_figs)
            pool.join()
            prog.done()
        say(f"figures: {pool.submitted} ({', '.join(formats)})")
        # the figure index in a fixed order: forests and funnels by analysis, then time courses
        figs: dict = {}
        order = [j for j in fig_jobs if j[0][0] != "timecourse"] + [
            j for j in fig_jobs if j[0][0] == "timecourse"]
        for job, stem in order:
            key, entry = figure_entry(job)
            figs.setdefault(key, {})[entry] = stem
        res_tab = results.results_table()
        results_md = to_markdown(display_results(res_tab, the_plan.level))
        tree.write_text("report.md", insert_sections(report_md(
            results, sset, figs, plan_path.name if plan_path else "built-in default",
            __version__, results_md, results.sensitivity_table(), trajectories), sub))
        _write_provenance(tree, the_plan, plan_path, inputs, formats, dpi)

    def _write_tables(tree: OutputTree, results, trajectories, pool) -> None:
        index = []
        for name, time, unit, df in effect_size_tables(sset, median_conversion=mc):
            pool.poll()
            csv = tree.write_text(tree.path(TABLE_DIR, name, time, unit, suffix=".csv"),
                                  to_csv_text(df))
            index.append({"outcome": name, "time": time, "unit": unit,
                          "file": csv.name, "rows": len(df),
                          "studies_included": df.loc[df["included"], "study"].nunique(),
                          "estimated": bool(df["estimated"].any())})
        tree.write_text(f"{TABLE_DIR}/index.csv", to_csv_text(pd.DataFrame(index)))
        res_tab = results.results_table()
        sens_tab = results.sensitivity_table()
        tree.write_text("results.csv", to_csv_text(res_tab))
        tree.write_text("sensitivity.csv", to_csv_text(sens_tab))
        tree.write_text("selection.csv", to_csv_text(results.selection_table()))
        disp = display_results(res_tab, the_plan.level)
        sdisp = display_sensitivity(sens_tab, measures)
        results_md = to_markdown(disp)
        tree.write_text("results.md", results_md + "\n")
        tree.write_text("sensitivity.md", to_markdown(sdisp) + "\n")
        tree.write_text("results.tex", to_latex(
            disp, caption="Pooled outcomes (proportions as percentages; mean changes as "
            "baseline minus follow-up)", label="tab:results",
            notes=marker_notes(disp, the_plan)) + "\n")
        tree.write_text("sensitivity.tex", to_latex(
            sdisp, caption="Sensitivity analyses", label="tab:sensitivity",
            notes=marker_notes(sdisp, the_plan)) + "\n")
        pool.poll()
        sub_tab = results.subgroup_table()
        tree.write_text("subgroups.csv", to_csv_text(sub_tab))
        tree.write_text("subgroups.md", to_markdown(display_subgroups(sub_tab)) + "\n")
        if trajectories:
            tree.write_text("trajectory.csv", to_csv_text(trajectory_table(trajectories)))

    def _write_provenance(tree: OutputTree, the_plan, plan_path, inputs, formats, dpi) -> None:
        import matplotlib
        import scipy

        prov = {"package": "metaanalysis", "version": __version__,
                "python": platform.python_version(), "numpy": np.__version__,
                "pandas": pd.__version__, "scipy": scipy.__version__,
                "matplotlib": matplotlib.__version__,
                "plan": plan_path.name if plan_path else None,
                "settings": {k: v for k, v in dataclasses.asdict(the_plan).items()
                             if k not in ("text", "path", "outcomes")},
                "outcomes": [dataclasses.asdict(o) for o in the_plan.outcomes],
                "inputs": {f.name: _sha256(f) for f in inputs},
                "figure_formats": list(formats), "png_dpi": dpi}
        tree.write_text("provenance.json", json.dumps(prov, indent=2, ensure_ascii=False,
                                                      sort_keys=True) + "\n")

    written = [Path(out) / r for r in write_output(out, build, protected=protected)]
    say(f"wrote {len(written)} files to {out} (report: {Path(out) / 'report.md'})")
    return written


def run_report_command(studies_dir="studies", plan=None, out="figures", quiet=False,
                       jobs: int = 1) -> int:
    """``metaanalysis report``: exit status 0; errors propagate as exceptions to the CLI."""
    run_report(studies_dir, out=out, plan=plan, quiet=quiet, jobs=jobs)
    return 0
