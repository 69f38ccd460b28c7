"""Regenerate docs/gallery.md and its images (docs/img/gallery/*.png).

    python docs/gallery.py

Every figure kind of the package, drawn from data shipped with the tests
(metafor's BCG trials, the cement-leakage series) at a journal width, each
checked with ``ma.layout_problems`` (the gallery fails to build if a figure
has cut, overlapping or too small text).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

import metaanalysis as ma  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "metafor"
IMG = ROOT / "docs" / "img" / "gallery"
DPI = 110  # small files for the docs; save_figure's default for print is 600


def _data():
    b = json.loads((DATA / "bcg_rr.json").read_text())
    bcg = pd.DataFrame(b["data"])
    bes = ma.effect_sizes("RR", data=bcg, events1="ai", total1=bcg.ai + bcg.bi,
                          events2="ci", total2=bcg.ci + bcg.di)
    c = json.loads((DATA / "mwa_cement_leakage.json").read_text())
    ces = ma.effect_sizes("PLO", data=pd.DataFrame(c["data"]), events="xi", total="ni")
    return bes, ces


def _figures():
    bes, ces = _data()
    bcg = ma.pool(bes, method="REML")
    cement = ma.pool(ces, method="REML")
    bayes = ma.pool_bayes(ces, tau_prior=stats.halfnorm(scale=0.5))
    rob = {lab: j for lab, j in zip(bcg.labels, ["low", "some concerns", "high", "low"] * 4)}
    pooled = pd.DataFrame({"days": [1.2, 7.0, 29.0, 90.0, 180.0],
                           "estimate": [4.1, 4.4, 4.8, 4.7, 5.0],
                           "ci_lb": [2.4, 2.8, 3.8, 3.6, 3.9], "ci_ub": [5.8, 6.0, 5.8, 5.8, 6.1],
                           "k": [3, 3, 3, 2, 2],
                           "studies": [("a", "b", "c"), ("a", "b", "c"), ("a", "b", "d"),
                                       ("a", "d"), ("a", "d")]})
    studies = pd.DataFrame({"study": ["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"] * 3,
                            "days": [1, 7, 30, 90, 180, 1, 7, 30, 1, 7, 30, 90, 180],
                            "yi": [3.5, 4.9, 5.3, 5.6, 5.7, 3.6, 4.9, 4.6, 6.1, 5.8, 4.6, 4.9,
                                   5.0]})
    trajectory = pd.DataFrame({"time": [1, 7, 30, 90, 180], "estimate": [4.0, 4.5, 4.8, 4.8, 5.0],
                               "ci_lb": [3.2, 3.8, 4.1, 4.0, 4.1],
                               "ci_ub": [4.8, 5.2, 5.5, 5.6, 5.9],
                               "pi_lb": [1.9, 2.5, 2.9, 2.8, 2.9],
                               "pi_ub": [6.1, 6.5, 6.7, 6.8, 7.1]})
    ticks = {1: "1 d", 7: "1 wk", 30: "1 mo", 90: "3 mo", 180: "6 mo"}
    yield ("forest_bcg_double", "Forest plot: risk ratios on a log axis, favours labels, "
           "risk of bias", "double",
           lambda w: ma.forest(bcg, width=w, title="BCG vaccine and tuberculosis",
                               favours=("Favours vaccine", "Favours control"), rob=rob))
    yield ("forest_bcg_single", "The same forest at 89 mm: the weight and risk-of-bias "
           "columns are left out (with a LayoutWarning), long labels shortened", "single",
           lambda w: ma.forest(bcg, width=w, title="BCG vaccine and tuberculosis",
                               favours=("Favours vaccine", "Favours control"), rob=rob))
    yield ("forest_cement_single", "Forest plot of proportions: exact study intervals, "
           "no test of p = 50%", "single",
           lambda w: ma.forest(cement, width=w, percent=True, title="Cement leakage (lesions)"))
    yield ("forest_subgroups", "Subgroup analysis", "double",
           lambda w: ma.forest(ma.subgroups(bes, groups="alloc"), width=w,
                               title="BCG vaccine by allocation"))
    yield ("forest_bayes", "Bayesian forest plot: observed estimates (CI) and posterior "
           "shrinkage estimates (CrI)", "single",
           lambda w: ma.forest(bayes, width=w, percent=True, title="Cement leakage, Bayesian"))
    yield ("forest_leave_one_out", "Leave-one-out forest", "single",
           lambda w: ma.forest(ma.leave_one_out(bcg), overall=bcg, width=w,
                               title="BCG: leave one out"))
    yield ("funnel", "Contour-enhanced funnel plot with trim-and-fill and Egger's line",
           "single", lambda w: ma.funnel(bcg, width=w, trimfill=ma.trim_and_fill(bcg),
                                         egger=ma.egger_test(bcg), title="BCG: funnel plot"))
    yield ("baujat", "Baujat plot", "single", lambda w: ma.baujat(ma.baujat_coordinates(bcg), width=w))
    yield ("radial", "Radial (Galbraith) plot", "single", lambda w: ma.radial(bcg, width=w))
    yield ("gosh", "GOSH plot (8 studies, every subset)", "single",
           lambda w: ma.gosh_plot(ma.gosh(ma.pool(bes.iloc[:8], method="REML")),
                                  highlight=0, width=w))
    yield ("influence", "Influence diagnostics", "double",
           lambda w: ma.influence_plot(ma.influence(bcg), width=w)[0])
    yield ("posterior", "Posterior of τ with its prior", "single",
           lambda w: ma.posterior_plot(bayes, "tau", width=w))
    yield ("timecourse", "Time course: pooled points, studies, a model trajectory with CI "
           "and prediction bands, k* where the study set changes", "single",
           lambda w: ma.timecourse(pooled, studies, trajectory=trajectory, width=w,
                                   xscale="sqrt", xticks=ticks,
                                   study_labels={"a": "Wu 2021", "b": "Zhang 2024",
                                                 "c": "JVIR 2014", "d": "Wang 2022"},
                                   ylabel="Pain reduction, VAS 0–10 (baseline − follow-up)",
                                   xlabel="Time after treatment (square-root scale)"))
    absolute = pd.DataFrame({"days": [0.0, 1.2, 7.0, 29.0, 90.0, 180.0],
                             "estimate": [7.4, 3.3, 3.0, 2.6, 2.7, 2.4],
                             "ci_lb": [6.9, 2.1, 1.9, 1.8, 1.6, 1.5],
                             "ci_ub": [7.9, 4.5, 4.1, 3.4, 3.8, 3.3], "k": [4, 3, 3, 3, 2, 2],
                             "studies": [("a", "b", "c", "d"), ("a", "b", "c"), ("a", "b", "c"),
                                         ("a", "b", "d"), ("a", "d"), ("a", "d")]})
    absolute_rows = pd.DataFrame({"study": ["a"] * 6 + ["b"] * 4 + ["c"] * 3 + ["d"] * 4,
                                  "days": [0, 1, 7, 30, 90, 180, 0, 1, 7, 30, 0, 1, 7,
                                           0, 30, 90, 180],
                                  "yi": [7.1, 3.6, 2.2, 1.8, 1.5, 1.4, 7.5, 3.9, 2.6, 2.9, 7.9,
                                         1.8, 2.1, 7.0, 2.4, 2.1, 2.0]})
    for width in ("double", "single"):
        yield (f"timecourse_panels_{width}",
               "Time course of change (A) and absolute values (B) in one figure: side by side "
               "at 183 mm" if width == "double" else "The same two panels at 89 mm: stacked",
               width,
               lambda w: ma.timecourse_panels(
                   {"df": pooled, "studies": studies, "trajectory": trajectory,
                    "ylabel": "Pain reduction, VAS 0–10 (baseline − follow-up)"},
                   {"df": absolute, "studies": absolute_rows, "ylabel": "Pain, VAS 0–10",
                    "xticks": {0: "pre", **ticks}},
                   xscale="sqrt", xticks=ticks, width=w,
                   study_labels={"a": "Wu 2021", "b": "Zhang 2024", "c": "JVIR 2014",
                                 "d": "Wang 2022"},
                   xlabel="Time after treatment (square-root scale)",
                   title="Pain: change from baseline (A) and absolute values (B)")[0])


def main() -> int:
    IMG.mkdir(parents=True, exist_ok=True)
    lines = ["# Gallery", "",
             "Every figure kind, drawn at a journal width with `ma.use_style(width)` and "
             "checked with `ma.layout_problems` (nothing cut, no overlapping text, nothing "
             "below 6 pt). Regenerate with `python docs/gallery.py`; the data are metafor's "
             "BCG trials and the cement-leakage series shipped with the tests (the time "
             "course uses made-up numbers).", ""]
    bad = []
    for name, caption, width, draw in _figures():
        with ma.use_style(width), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ma.LayoutWarning)
            ax = draw(width)
        fig = ax.figure
        problems = ma.layout_problems(fig)
        if problems:
            bad.append(f"{name}: {problems}")
        mm = fig.get_size_inches() * 25.4
        ma.save_figure(fig, IMG / name, formats="png", dpi=DPI)
        plt.close(fig)
        note = "".join(f" *{w.message}*" for w in caught
                       if issubclass(w.category, ma.LayoutWarning))
        lines += [f"## {caption}", "", f"{mm[0]:.0f} × {mm[1]:.0f} mm.{note}", "",
                  f"![{caption}](img/gallery/{name}.png)", ""]
        print(f"{name}: {mm[0]:.0f} x {mm[1]:.0f} mm")
    (ROOT / "docs" / "gallery.md").write_text("\n".join(lines))
    if bad:
        print("\n".join(bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
