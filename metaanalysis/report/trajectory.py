"""The report's model-based time course: one multilevel model over all time points.

For an outcome measured at several time points (``timecourse: true`` in the
plan; pain, morphine), every estimate the per-window analyses selected — all
windows, all eligible studies — goes into one model
(:func:`metaanalysis.pool_mv`, metafor's ``rma.mv``)::

    y_sw = μ_w + u_sw + e_sw

with one mean ``μ_w`` per window (``trend: windows``, the cell-means model)
or a line in log(1 + days) (``trend: log_time``), random effects ``u`` over the
windows of a study with the plan's structure (default CAR: correlation
``ρ^|Δt|`` in months), and sampling errors ``e`` of a study correlated with
the plan's assumed ``sampling_rho`` (sensitivity over ``rho_sensitivity``).
A study that moves between windows no longer changes the curve, and the
correlation between a study's time points is accounted for.  Change over
time is tested between two windows (``contrast``) and jointly (all window
means equal); cluster-robust CR2 inference (clubSandwich) is a sensitivity
analysis.  The per-window pools stay in the results table as secondary
results.

The plan block (``timecourse_model:``, every key optional) is documented in
docs/multilevel.md.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metaanalysis.errors import MetaAnalysisError
from metaanalysis.formatting import num, p_text
from metaanalysis.models.mv_structures import STRUCTURES

__all__ = ["ROBUST", "SETTINGS", "STRUCTURES", "TRENDS", "Trajectory", "fit_trajectories",
           "settings_lines", "trajectory_figure", "trajectory_table"]

#: defaults of the plan's ``timecourse_model:`` block
SETTINGS = {
    "struct": "CAR",            # random effects over time (metafor struct)
    "time_unit_days": 30.4375,  # CAR distances in months
    "sampling_rho": 0.5,        # assumed correlation of a study's estimates at two times
    "rho_sensitivity": (0.2, 0.8),
    "trend": "windows",         # "windows" (one mean per window) or "log_time"
    "method": "REML",
    "test": "t",
    "robust": "CR2",            # sensitivity: "CR2", "CR1" or "none"
    "contrast": None,           # [window_a, window_b]; default: second and last window
}
TRENDS = ("windows", "log_time")
ROBUST = ("CR2", "CR1", "none")


def settings(plan) -> dict:
    """The plan's ``timecourse_model`` values over :data:`SETTINGS`."""
    out = dict(SETTINGS)
    out.update({k: v for k, v in (getattr(plan, "timecourse_model", None) or {}).items()
                if v is not None})
    return out


def settings_lines(plan) -> list[str]:
    """The method choices of the model-based time course, one line each."""
    s = settings(plan)
    trend = ("one mean per window (cell means)" if s["trend"] == "windows"
             else "a line in log(1 + days)")
    sens = ", ".join(f"{r:g}" for r in s["rho_sensitivity"]) or "none"
    return [f"time course: one multilevel model over all time points of all eligible studies "
            f"(metafor rma.mv): {trend}; random effects over time {s['struct']}"
            + (f" (ρ^|Δt|, Δt in units of {s['time_unit_days']:g} days)" if s["struct"] == "CAR"
               else ""),
            f"time course: sampling correlation between a study's time points "
            f"{s['sampling_rho']:g} (sensitivity {sens}); {s['method']}, "
            f"{'t' if s['test'] == 't' else 'z'} tests; cluster-robust {s['robust']} "
            "(clubSandwich) as sensitivity; per-window pools are secondary results"]


@dataclass(frozen=True)
class Trajectory:
    """The fitted time course of one outcome and unit."""

    outcome: str
    label: str
    unit: str
    data: pd.DataFrame  # study, window, days, time, yi, vi: the estimates modelled
    result: object = None  # MVResult of the main model, or None
    reason: str = ""  # why there is no model
    curve: pd.DataFrame = field(default=None, repr=False)  # time, estimate, ci, pi
    tests: pd.DataFrame = field(default=None, repr=False)  # change over time
    sensitivity: pd.DataFrame = field(default=None, repr=False)
    settings: dict = field(default_factory=dict)

    @property
    def fitted(self) -> bool:
        return self.result is not None

    def observed(self) -> pd.DataFrame:
        """Each study's observed points (``study, days, yi``) for the figure."""
        return self.data[["study", "days", "yi"]].copy()

    def sentence(self) -> str:
        """The time course in one paragraph of results text."""
        name = self.label.split(" (")[0]
        if not self.fitted:
            return f"{name} ({self.unit}), time course model: not fitted — {self.reason}."
        res, s = self.result, self.settings
        lv = f"{100 * res.level:g}%"
        pts = "; ".join(
            f"{w.replace('_', ' ')} {num(r.estimate, 2)} ({lv} CI {num(r.ci_lb, 2)} to "
            f"{num(r.ci_ub, 2)})" for w, r in zip(self.curve["window"], self.curve.itertuples())
            if isinstance(w, str))
        text = (f"{name} ({self.unit}), one model over all time points ({res.k} estimates from "
                f"{res.n_studies} studies; {s['struct']} random effects over time, sampling "
                f"correlation {s['sampling_rho']:g}, {res.method}): {pts}.")
        main = self.tests[self.tests["inference"] == "model"]
        for t in main.itertuples():
            text += " " + _test_text(t, self.tests)
        return text

    def table(self) -> pd.DataFrame:
        """Curve, tests and sensitivity rows in one long table (``trajectory.csv``)."""
        parts = []
        if self.curve is not None:
            parts.append(self.curve.assign(part="curve"))
        if self.tests is not None:
            parts.append(self.tests.assign(part="test"))
        if self.sensitivity is not None:
            parts.append(self.sensitivity.assign(part="sensitivity"))
        if not parts:
            return pd.DataFrame({"outcome": [self.outcome], "unit": [self.unit],
                                 "part": ["not fitted"], "note": [self.reason]})
        out = pd.concat(parts, ignore_index=True)
        out.insert(0, "unit", self.unit)
        out.insert(0, "outcome", self.outcome)
        return out


def _test_text(t, tests) -> str:
    robust = tests[(tests["test"] == t.test) & (tests["inference"] != "model")]
    if t.kind == "contrast":
        out = (f"Change {t.test}: {num(t.estimate, 2)} ({num(100 * t.level, 0)}% CI "
               f"{num(t.ci_lb, 2)} to {num(t.ci_ub, 2)}), {p_text(t.p)}")
    else:
        out = f"Test of no change over time ({t.test}): {t.stat_text}, {p_text(t.p)}"
    for r in robust.itertuples():
        out += (f" [{r.inference}: " + (f"{num(r.ci_lb, 2)} to {num(r.ci_ub, 2)}, "
                                       if r.kind == "contrast" else f"{r.stat_text}, ")
                + f"{p_text(r.p)}]")
    return out + "."


# ---------------------------------------------------------------- data and model

def long_data(results, op, unit: str) -> pd.DataFrame:
    """Every estimate the per-window analyses selected for ``op`` and ``unit``.

    One row per study × window: ``study, window, days, yi, vi`` (effect sizes
    as in the per-window analyses); ``time`` is the mean reported day of the
    window's estimates.
    """
    from metaanalysis.report.analysis import effect_data

    rows = []
    for a in results.analyses:
        if a.outcome != op.name or a.unit != unit or not a.window or not len(a.selection.included):
            continue
        if getattr(a, "kind", None) in ("absolute", "baseline"):
            continue  # the per-window absolute values are pooled beside the changes
        es = effect_data(a.selection, op)
        inc = a.selection.included
        rows.append(pd.DataFrame({"study": inc["study"].to_numpy(), "window": a.window,
                                  "days": inc["days"].to_numpy(float),
                                  "yi": es["yi"].to_numpy(float), "vi": es["vi"].to_numpy(float)}))
    if not rows:
        return pd.DataFrame(columns=["study", "window", "days", "time", "yi", "vi"])
    d = pd.concat(rows, ignore_index=True)
    d = d[np.isfinite(d["yi"]) & np.isfinite(d["vi"]) & (d["vi"] > 0)]
    order = [w for w in op.windows if w in set(d["window"])]
    d["window"] = pd.Categorical(d["window"], categories=order)
    d["time"] = d.groupby("window", observed=True)["days"].transform("mean")
    return d.sort_values(["study", "time"], kind="stable").reset_index(drop=True)


def _fit(d, s, rho):
    from metaanalysis.models.multilevel import pool_mv

    if s["trend"] == "windows":
        mods, intercept = pd.DataFrame({"window": d["window"]}), False
    else:
        mods, intercept = pd.DataFrame({"log1p_days": np.log1p(d["days"])}), True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pool_mv(d["yi"].to_numpy(), d["vi"].to_numpy(), study=d["study"].to_numpy(),
                       time=d["time"].to_numpy() / s["time_unit_days"], struct=s["struct"],
                       rho=rho, mods=mods, intercept=intercept, method=s["method"],
                       test=s["test"])


def _curve(res, d, s) -> pd.DataFrame:
    windows = list(d["window"].cat.categories)
    times = d.groupby("window", observed=True)["time"].first().reindex(windows).to_numpy()
    levels = list(res.levels)
    if s["trend"] == "windows":
        p = res.predict(newmods=pd.DataFrame({"window": pd.Categorical(windows, categories=windows)}),
                        tau2_levels=[levels[i] for i in range(len(windows))])
        return pd.DataFrame({"window": windows, "time": times, "estimate": p["pred"],
                             "ci_lb": p["ci_lb"], "ci_ub": p["ci_ub"], "pi_lb": p["pi_lb"],
                             "pi_ub": p["pi_ub"], "level": res.level})
    grid = np.geomspace(max(float(np.min(d["days"])), 0.5), float(np.max(d["days"])), 40)
    p = res.predict(newmods=np.log1p(grid))
    return pd.DataFrame({"window": None, "time": grid, "estimate": p["pred"], "ci_lb": p["ci_lb"],
                         "ci_ub": p["ci_ub"], "pi_lb": p["pi_lb"], "pi_ub": p["pi_ub"],
                         "level": res.level})


def _contrast_rows(res, d, s, inference: str) -> list[dict]:
    windows = list(d["window"].cat.categories)
    names = list(res.coef.index)
    rows = []
    if s["trend"] == "windows":
        a, b = s["contrast"] or (windows[1] if len(windows) > 2 else windows[0], windows[-1])
        if a in windows and b in windows and a != b:
            c = res.contrast({f"window[{b}]": 1, f"window[{a}]": -1}).iloc[0]
            rows.append({"kind": "contrast", "test": f"{a.replace('_', ' ')} to "
                         f"{b.replace('_', ' ')}", "estimate": c["estimate"], "se": c["se"],
                         "ci_lb": c["ci_lb"], "ci_ub": c["ci_ub"], "df": c["df"], "p": c["p"]})
        C = np.zeros((len(names) - 1, len(names)))
        C[:, 0] = -1
        C[np.arange(len(names) - 1), np.arange(1, len(names))] = 1
        label = "all window means equal"
    else:
        C = np.eye(len(names))[1:]
        label = "slope in log(1 + days) = 0"
        c = res.contrast(C).iloc[0]
        rows.append({"kind": "contrast", "test": "per unit of log(1 + days)",
                     "estimate": c["estimate"], "se": c["se"], "ci_lb": c["ci_lb"],
                     "ci_ub": c["ci_ub"], "df": c["df"], "p": c["p"]})
    w = res.wald_test(C)
    df2 = w["df_denom"]
    stat = (f"χ²({num(w['df_num'], 0)}) = {num(w['stat'], 2)}" if df2 is None
            else f"F({num(w['df_num'], 0)}, {num(df2, 1 if df2 % 1 else 0)}) = {num(w['stat'], 2)}")
    rows.append({"kind": "joint", "test": label, "stat": w["stat"], "df": df2,
                 "stat_text": stat, "p": w["p"]})
    for r in rows:
        r.update(inference=inference, level=res.level)
    return rows


def trajectory(results, op, unit: str) -> Trajectory:
    """Fit the time-course model of one outcome and unit (never raises on data)."""
    s = settings(results.plan)
    d = long_data(results, op, unit)
    base = {"outcome": op.name, "label": op.label, "unit": unit, "data": d, "settings": s}
    n_win = d["window"].nunique() if len(d) else 0
    if n_win < 2 or d["study"].nunique() < 2:
        return Trajectory(**base, reason=f"{d['study'].nunique() if len(d) else 0} studies with "
                          f"{n_win} windows; the model needs at least two of each")
    try:
        res = _fit(d, s, s["sampling_rho"])
    except MetaAnalysisError as err:
        return Trajectory(**base, reason=f"model not identifiable: {err}")
    curve = _curve(res, d, s)
    tests = _contrast_rows(res, d, s, "model")
    notes = []
    if s["robust"] != "none":
        try:
            tests += _contrast_rows(res.robust(type=s["robust"]), d, s, s["robust"])
        except MetaAnalysisError as err:
            notes.append(f"{s['robust']} not computed: {err}")
    sens = []
    for rho in s["rho_sensitivity"]:
        try:
            alt = _fit(d, s, rho)
        except MetaAnalysisError as err:
            sens.append({"analysis": f"sampling correlation {rho:g}", "note": str(err)})
            continue
        c = [r for r in _contrast_rows(alt, d, s, "model") if r["kind"] == "contrast"]
        row = {"analysis": f"sampling correlation {rho:g}", "loglik": alt.loglik,
               "tau2": float(alt.tau2[0]) if alt.tau2.size else math.nan,
               "rho": float(alt.rho[0]) if alt.rho.size else math.nan}
        if c:
            row.update(test=c[0]["test"], estimate=c[0]["estimate"], ci_lb=c[0]["ci_lb"],
                       ci_ub=c[0]["ci_ub"], p=c[0]["p"])
        sens.append(row)
    for n in notes:
        sens.append({"analysis": "robust", "note": n})
    return Trajectory(**base, result=res, curve=curve, tests=pd.DataFrame(tests),
                      sensitivity=pd.DataFrame(sens))


def fit_trajectories(results) -> tuple[Trajectory, ...]:
    """The model-based time course of every ``timecourse: true`` outcome and unit."""
    from metaanalysis.report.analysis import units_of  # noqa: F401 - same unit rule

    out = []
    s = settings(results.plan)
    if s["struct"] not in STRUCTURES or s["trend"] not in TRENDS:
        return ()
    for op in results.plan.outcomes:
        if not op.timecourse or op.model == "GLMM":
            continue
        units = sorted({a.unit for a in results.analyses if a.outcome == op.name and a.window})
        for unit in units:
            out.append(trajectory(results, op, unit))
    return tuple(out)


def trajectory_table(trajectories) -> pd.DataFrame:
    """Every trajectory's curve, tests and sensitivity rows (``trajectory.csv``)."""
    return pd.concat([t.table() for t in trajectories], ignore_index=True)


def trajectory_figure(trajectories, outcome: str, unit: str) -> dict | None:
    """Inputs of :func:`metaanalysis.plots.timecourse.timecourse` for a fitted
    model: ``trajectory`` (time in days, estimate, CI, PI), ``studies`` (each
    study's observed points) and ``counts`` (per window: its mean day, k and the
    study ids, for the k row and its "k*" marks of a changed study set); ``None``
    without a fitted model."""
    for t in trajectories:
        if t.outcome == outcome and t.unit == unit and t.fitted:
            curve = t.curve[["time", "estimate", "ci_lb", "ci_ub", "pi_lb", "pi_ub"]].copy()
            curve.attrs.update(label=f"Model ({t.settings['struct']}, all time points)",
                               level=t.result.level)
            win = t.data.groupby("window", observed=True)
            counts = pd.DataFrame({"days": win["time"].first(), "k": win["study"].nunique(),
                                   "studies": win["study"].agg(lambda s: tuple(sorted(set(s))))})
            return {"trajectory": curve, "studies": t.observed(),
                    "counts": counts.reset_index(drop=True)}
    return None
