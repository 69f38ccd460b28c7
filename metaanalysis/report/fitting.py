"""Fitting one selection the way the plan says: model choice, single studies, leave-one-out.

:func:`fit` pools the included rows of a :class:`~metaanalysis.report.selection.Selection`
with the model the plan prescribes for its k (two-step random effects, the
binomial-normal GLMM, or the Bayesian normal-normal model when k < 3), or with
an explicit alternative model; one study is reported with its own estimate and
exact interval (:class:`SingleStudy`), never pooled.  :func:`leave_one_out_rows`
refits without each study in turn: two-step fits go through the engine's masked
batch (:func:`metaanalysis.leave_one_out`); subsets of k < 3 follow the plan's
few-study rule like any other analysis.  Fits are cached by their data, so the
many sensitivity rows that pool the same studies cost one fit.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from metaanalysis.effects.transforms import PROPORTION_MEASURES as PROPORTIONS
from metaanalysis.errors import MetaAnalysisError, one_line
from metaanalysis.report.plan import COMPARATIVE, COMPARATIVE_COUNTS, OutcomePlan, Plan

#: how each measure's single-study interval is computed
_SINGLE_CI = {"PR": "Clopper–Pearson exact CI", "PLO": "Clopper–Pearson exact CI",
              "PAS": "Clopper–Pearson exact CI", "PFT": "Clopper–Pearson exact CI",
              "MN": "t CI (n − 1 df)", "MC": "t CI (n − 1 df)"}


@dataclass(frozen=True)
class SingleStudy:
    """One study's own estimate and interval, reported where nothing can be pooled (k = 1).

    ``estimate``, ``ci_lb`` and ``ci_ub`` are on the natural scale (a proportion,
    a ratio, a mean); ``method`` names the interval.
    """

    label: str
    measure: str
    estimate: float
    ci_lb: float
    ci_ub: float
    ni: float
    level: float = 0.95
    method: str = ""
    yi: tuple = ()
    vi: tuple = ()
    labels: tuple = ()
    k: int = 1
    extra: dict = field(default_factory=dict)


def _prior(op: OutcomePlan):
    from scipy import stats

    name, scale = op.tau_prior
    return stats.halfnorm(scale=scale) if name == "halfnormal" else stats.halfcauchy(scale=scale)


def analysis_measure(op: OutcomePlan, sel) -> str:
    """The measure a selection is pooled on: MN for absolute values, else the plan's."""
    return "MN" if "mean" in sel.included.columns else op.measure


def plan_model(k: int, op: OutcomePlan, plan: Plan, measure: str | None = None) -> str:
    """The model the plan prescribes for ``k`` studies (a ``fit`` model spec)."""
    m = measure or op.measure
    if k < 3 and plan.few_studies == "bayes":
        return "bayes"
    if op.model == "GLMM" and m in PROPORTIONS:
        return "GLMM"
    return f"{m}:{plan.method}:{plan.test}"


def effect_data(sel, op: OutcomePlan, r: float | None = None, measure: str | None = None):
    """Effect sizes (``yi``, ``vi``, ``ni``) of the included studies, labelled by study."""
    from metaanalysis.effects.effect_sizes import effect_sizes

    df = sel.included
    m = measure or analysis_measure(op, sel)
    if m in PROPORTIONS:
        return effect_sizes(m, data=df, events="events", total="total")
    if m == "MC":
        return effect_sizes("MC", data=df, mean_pre="mean_pre", sd_pre="sd_pre",
                            mean_post="mean_post", sd_post="sd_post", n="n",
                            r=op.r if r is None else r)
    if m in ("MN", "MNLN"):
        return effect_sizes(m, data=df, mean="mean", sd="sd", n="n")
    if m in COMPARATIVE_COUNTS:
        return effect_sizes(m, data=df, events1="events1", total1="total1",
                            events2="events2", total2="total2")
    if m in COMPARATIVE:
        return effect_sizes(m, data=df, mean1="mean1", sd1="sd1", n1="n1",
                            mean2="mean2", sd2="sd2", n2="n2")
    raise ValueError(m)


def _single(sel, op: OutcomePlan, plan: Plan, measure: str, r) -> SingleStudy:
    """The one included study's estimate with its exact (or stated) interval."""
    from scipy import stats

    from metaanalysis.effects.transforms import to_natural
    from metaanalysis.models.proportions import proportion_ci

    row = sel.included.iloc[0]
    label = row["label"]
    es = effect_data(sel, op, r=r, measure=measure)
    yi, vi = float(es["yi"].iloc[0]), float(es["vi"].iloc[0])
    if measure in PROPORTIONS:
        lb, ub = proportion_ci([row["events"]], [row["total"]], "exact", plan.level)
        est, lb, ub = row["events"] / row["total"], float(lb[0]), float(ub[0])
        how = _SINGLE_CI[measure]
    elif measure in ("MN", "MC"):
        q = stats.t.isf((1 - plan.level) / 2, max(int(row["n"]) - 1, 1))
        est, lb, ub = yi, yi - q * math.sqrt(vi), yi + q * math.sqrt(vi)
        how = _SINGLE_CI[measure]
    else:
        q = stats.norm.isf((1 - plan.level) / 2)
        est, lb, ub = (float(v) for v in to_natural(
            measure, np.array([yi, yi - q * math.sqrt(vi), yi + q * math.sqrt(vi)])))
        how = "Wald CI" + (" (log scale)" if measure in ("RR", "OR", "ROM") else "")
    return SingleStudy(label=label, measure=measure, estimate=float(est), ci_lb=float(lb),
                       ci_ub=float(ub), ni=float(row["ni"]), level=plan.level, method=how,
                       yi=(yi,), vi=(vi,), labels=(row["study"],))


_CACHE: dict = {}
_CACHE_MAX = 2048


def _key(sel, model, measure, r, plan: Plan, op: OutcomePlan):
    cols = [c for c in ("events", "total", "events1", "total1", "events2", "total2", "mean",
                        "sd", "n", "mean_pre", "sd_pre", "mean_post", "sd_post", "mean1", "sd1",
                        "n1", "mean2", "sd2", "n2") if c in sel.included.columns]
    inc = sel.included
    data = (tuple(inc["study"]), tuple(inc["unit"]),
            tuple(map(tuple, inc[cols].to_numpy(float).tolist())))
    units = ()
    return (data, units, model, measure, r if measure == "MC" else None, plan.level,
            plan.method, plan.test, op.tau_prior)


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
def fit(sel, op: OutcomePlan, plan: Plan, *, model: str = "plan", r: float | None = None,
        measure: str | None = None):
    """Pool one selection; returns ``(result, model_label)`` or ``(None, reason)``.

    ``model``: ``"plan"`` (the plan's rule for this k), ``"GLMM"``, ``"bayes"``, or a
    two-step ``"MEASURE:METHOD:TEST"`` such as ``"PFT:REML:knha"``.  With one
    study the result is a :class:`SingleStudy` (its own estimate and exact
    interval), labelled "one study: ...".  A model that fails on the data (e.g.
    the GLMM when every study is at 100%) gives ``(None, "model failed: <reason>")``:
    the analysis is reported as not pooled and the rest of the report goes on.
    """
    k = len(sel.included)
    m = measure or analysis_measure(op, sel)
    if k == 0:
        return None, "no study with usable data"
    if k == 1:
        one = _single(sel, op, plan, m, r)
        return one, f"one study ({one.label}): its own estimate, {one.method}"
    if model == "plan":
        model = plan_model(k, op, plan, m)
    key = _key(sel, model, m, r, plan, op)
    if key in _CACHE:
        return _CACHE[key]
    out = _fit(sel, op, plan, model, r, m)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[key] = out
    return out


def _unit_text(sel) -> str:
    units = sorted(set(sel.included["unit"]))
    return "/".join(units) if units else "patients"


def _fit(sel, op, plan, model, r, m):
    labels = list(sel.included["study"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if model == "GLMM":
            from metaanalysis.models.proportions import pool_glmm

            d = sel.included
            res = pool_glmm(d["events"].to_numpy(float), d["total"].to_numpy(float),
                            level=plan.level, labels=labels, unit=_unit_text(sel))
            return res, "GLMM (binomial-normal, ML), Wald CI"
        if model == "bayes":
            from metaanalysis.models.bayes import pool_bayes

            bm = "PLO" if m in PROPORTIONS else m
            es = effect_data(sel, op, r=r, measure=bm)
            res = pool_bayes(es, tau_prior=_prior(op), level=plan.level, labels=labels,
                             measure=bm, ni=es["ni"].to_numpy(float))
            return res, f"Bayesian normal-normal, τ ~ {res.prior_text}, flat μ prior"
        from metaanalysis.models.pooling import pool

        measure, method, test = model.split(":")
        es = effect_data(sel, op, r=r, measure=measure)
        res = pool(es, method=method, test=test, level=plan.level, labels=labels,
                   unit=_unit_text(sel))
        kh = {"knha": "Knapp–Hartung", "z": "z", "adhoc": "modified Knapp–Hartung"}[test]
        return res, f"{method} + {kh} ({measure})"


def is_bayes(res) -> bool:
    from metaanalysis.models.bayes import BayesResult

    return isinstance(res, BayesResult)


def summarise(res, measure: str) -> dict:
    """Estimate, CI, PI (natural scale), τ², I², k of a PoolResult, BayesResult or SingleStudy."""
    from metaanalysis.effects.transforms import to_natural

    if isinstance(res, SingleStudy):
        return dict(estimate=res.estimate, ci_lb=res.ci_lb, ci_ub=res.ci_ub, pi_lb=math.nan,
                    pi_ub=math.nan, tau2=math.nan, i2=math.nan, k=1)
    if is_bayes(res):
        raw = [res.mu.median, res.mu.ci_lb, res.mu.ci_ub, res.pi_lb, res.pi_ub]
        m = res.measure
        tau2, i2 = res.tau.median ** 2, math.nan
    else:
        raw = [res.estimate, res.ci_lb, res.ci_ub, res.pi_lb, res.pi_ub]
        m = res.measure or measure
        tau2, i2 = res.tau2, res.i2
    nat = np.asarray(to_natural(m, np.asarray(raw, float), ni=res.ni), float)
    return dict(zip(("estimate", "ci_lb", "ci_ub", "pi_lb", "pi_ub"), map(float, nat)),
                tau2=float(tau2), i2=float(i2), k=int(res.k))


def leave_one_out_rows(sel, op: OutcomePlan, plan: Plan, main, r=None) -> list[tuple]:
    """``[(study id, subset selection, result, model label, summary dict)]``, one per study.

    Two-step main fits: the engine's masked batch (:func:`metaanalysis.leave_one_out`)
    with the main model, when the subsets keep k ≥ 3 (or the plan pools any k);
    otherwise each subset is fitted by the plan's rule for its k (k = 2: the
    Bayesian model, as for any analysis of two studies; GLMM mains: the GLMM).
    """
    from metaanalysis.effects.transforms import to_natural
    from metaanalysis.models.sensitivity import leave_one_out

    inc = sel.included
    k = len(inc)
    m = analysis_measure(op, sel)
    subsets = [(sid, sel.subset(inc["study"] != sid)) for sid in inc["study"]]
    engine_path = (main is not None and not is_bayes(main) and not isinstance(main, SingleStudy)
                   and getattr(main, "method", None) != "GLMM"
                   and (k - 1 >= 3 or plan.few_studies != "bayes"))
    rows = []
    if engine_path:
        try:
            loo = leave_one_out(main)
        except FIT_ERRORS as err:
            why = "model failed: " + one_line(str(err) or type(err).__name__)
            return [(sid, sub, None, why, None) for sid, sub in subsets]
        ni = np.asarray(main.ni, float) if main.ni is not None else None
        for i, (sid, sub) in enumerate(subsets):
            f = loo.iloc[i]
            keep = np.arange(k) != i
            nat = np.asarray(to_natural(m if m not in PROPORTIONS else main.measure,
                                        np.array([f["estimate"], f["ci_lb"], f["ci_ub"],
                                                  f["pi_lb"], f["pi_ub"]], float),
                                        ni=None if ni is None else ni[keep]), float)
            s = dict(zip(("estimate", "ci_lb", "ci_ub", "pi_lb", "pi_ub"), map(float, nat)),
                     tau2=float(f["tau2"]), i2=float(f["i2"]), k=int(f["k"]))
            label = f"{main.method} + " + {"knha": "Knapp–Hartung", "z": "z",
                                           "adhoc": "modified Knapp–Hartung"}[main.test] \
                + f" ({main.measure or m}; engine leave-one-out)"
            rows.append((sid, sub, None, label, s))
        return rows
    for sid, sub in subsets:
        res, lab = fit(sub, op, plan, r=r)
        rows.append((sid, sub, res, lab, summarise(res, m) if res is not None else None))
    return rows
