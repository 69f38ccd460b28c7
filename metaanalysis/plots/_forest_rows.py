"""The rows of a forest plot: study data and the row accumulator (private; use ``forest``).

Study text columns (events/total, mean ± SD, n) from the effect-size data,
the order of the studies, their intervals on the axis scale, the parts of a
subgroup result, and :class:`Rows`, which collects what goes on each row
(boxes, diamonds, prediction bars, text) before anything is drawn.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from metaanalysis import formatting as fmt
from metaanalysis.errors import InputError
from metaanalysis.plots._layout import PROPORTION_MEASURES


def _col(data, names):
    if data is None:
        return None
    for n in names:
        if n in data.columns:
            return np.asarray(data[n])
    return None


def _study_text_columns(res, events, total):
    """Extra text columns from the effect-size data: events/total or mean ± SD and n."""
    data = getattr(res, "data", None)
    cols: list[tuple[str, list[str]]] = []
    k = int(res.k)
    if events is not None or total is not None:
        ev = np.asarray(events if not isinstance(events, str) else data[events])
        tot = np.asarray(total if not isinstance(total, str) else data[total])
        return [("Events/Total", [f"{int(e)}/{int(t)}" for e, t in zip(ev, tot)])], ev, tot
    if data is None or len(data) != k:
        return cols, None, None
    ev, tot = _col(data, ["events", "xi"]), _col(data, ["total", "ni"])
    if ev is not None and tot is not None and getattr(res, "measure", None) in PROPORTION_MEASURES:
        cols.append(("Events/Total", [f"{int(e)}/{int(t)}" for e, t in zip(ev, tot)]))
        return cols, ev.astype(float), tot.astype(float)
    e1, t1 = _col(data, ["events1", "ai"]), _col(data, ["total1", "n1i"])
    e2, t2 = _col(data, ["events2", "ci"]), _col(data, ["total2", "n2i"])
    if e1 is not None and e2 is not None and t1 is not None and t2 is not None:
        cols.append(("Exp.", [f"{int(a)}/{int(b)}" for a, b in zip(e1, t1)]))
        cols.append(("Ctrl.", [f"{int(a)}/{int(b)}" for a, b in zip(e2, t2)]))
        return cols, None, None
    m1, s1, n1 = _col(data, ["mean1"]), _col(data, ["sd1"]), _col(data, ["n1"])
    m2, s2, n2 = _col(data, ["mean2"]), _col(data, ["sd2"]), _col(data, ["n2"])
    if m1 is not None and s1 is not None and m2 is not None and s2 is not None:
        cols.append(("Mean ± SD (1)", [f"{fmt.num(a, 1)} ± {fmt.num(b, 1)}" for a, b in zip(m1, s1)]))
        if n1 is not None:
            cols.append(("n (1)", [fmt.num(v, 0) for v in n1]))
        cols.append(("Mean ± SD (2)", [f"{fmt.num(a, 1)} ± {fmt.num(b, 1)}" for a, b in zip(m2, s2)]))
        if n2 is not None:
            cols.append(("n (2)", [fmt.num(v, 0) for v in n2]))
        return cols, None, None
    mp, sp = _col(data, ["mean_pre"]), _col(data, ["sd_pre"])
    mq, sq = _col(data, ["mean_post"]), _col(data, ["sd_post"])
    if mp is not None and sp is not None and mq is not None and sq is not None:  # MC, SMCR
        cols.append(("Baseline mean (SD)", [f"{fmt.num(a, 1)} ({fmt.num(b, 1)})"
                                            for a, b in zip(mp, sp)]))
        cols.append(("Follow-up mean (SD)", [f"{fmt.num(a, 1)} ({fmt.num(b, 1)})"
                                             for a, b in zip(mq, sq)]))
        n = _col(data, ["n", "ni"])
        if n is not None:
            cols.append(("n", [fmt.num(v, 0) for v in n]))
        return cols, None, None
    m, s, n = _col(data, ["mean"]), _col(data, ["sd"]), _col(data, ["n"])
    if m is not None and s is not None:
        cols.append(("Mean ± SD", [f"{fmt.num(a, 1)} ± {fmt.num(b, 1)}" for a, b in zip(m, s)]))
        if n is not None:
            cols.append(("n", [fmt.num(v, 0) for v in n]))
    return cols, None, None


def _order(res, sort, year):
    k = int(res.k)
    if sort is None or sort is False:
        return np.arange(k)
    if isinstance(sort, str):
        if sort == "weight":
            w = getattr(res, "weights", None)
            if w is None:  # Bayesian result: order by precision 1/vᵢ
                w = 1.0 / np.asarray(res.vi, float)
            return np.argsort(-np.asarray(w, float), kind="stable")
        if sort == "effect":
            return np.argsort(np.asarray(res.yi, float), kind="stable")
        if sort == "year":
            y = year
            if y is None:
                y = _col(getattr(res, "data", None), ["year"])
            elif isinstance(y, str):
                y = _col(res.data, [y])
            if y is None or len(y) != k:
                raise InputError("sort: got 'year' but no 'year' column in res.data and no "
                                 "year= array of length k was given")
            return np.argsort(np.asarray(y), kind="stable")
        raise InputError(f"sort: got {sort!r}; expected 'weight', 'effect', 'year', None "
                         "or a permutation of the study indices")
    idx = np.asarray(sort)
    if idx.shape != (k,) or sorted(idx.tolist()) != list(range(k)):
        raise InputError(f"sort: got {sort!r}; expected a permutation of 0..{k - 1}")
    return idx.astype(int)


def _zcrit(level):
    return float(stats.norm.ppf(0.5 + level / 2.0))


def _study_intervals(res, scale, ev, tot, study_ci):
    """Point estimates and CIs of the studies on the axis scale."""
    yi = np.asarray(res.yi, float)
    se = np.sqrt(np.asarray(res.vi, float))
    z = _zcrit(float(res.level))
    est, lb, ub = scale(yi), scale(yi - z * se), scale(yi + z * se)
    used_exact = False
    want = study_ci
    if want == "auto":
        want = "exact" if (ev is not None and tot is not None and scale.natural
                           and scale.measure in PROPORTION_MEASURES) else "model"
    if want in ("exact", "wilson"):
        if ev is None or tot is None:
            raise InputError(f"study_ci: got {study_ci!r} but no events/total are available "
                             "(pass events= and total=, or pool an effect_sizes DataFrame)")
        from metaanalysis.models.proportions import proportion_ci

        plb, pub = proportion_ci(ev, tot, method=want, level=float(res.level))
        f = 100.0 if scale.percent else 1.0
        est = np.asarray(ev, float) / np.asarray(tot, float) * f
        lb, ub = np.asarray(plb, float) * f, np.asarray(pub, float) * f
        used_exact = want
    elif want != "model":
        raise InputError(f"study_ci: got {study_ci!r}; expected 'auto', 'exact', 'wilson' "
                         "or 'model'")
    return est, lb, ub, used_exact


def _is_subgroups(obj) -> bool:
    return hasattr(obj, "q_between")


def _subgroup_parts(sg):
    """(name, PoolResult) pairs of a subgroups result, in its order."""
    for attr in ("results", "groups", "fits"):
        g = getattr(sg, attr, None)
        if isinstance(g, dict):
            return list(g.items())
        if isinstance(g, (list, tuple)) and g and hasattr(g[0], "estimate"):
            names = getattr(sg, "names", None) or [getattr(r, "label", str(i))
                                                  for i, r in enumerate(g)]
            return list(zip(names, g))
    raise InputError("result: a subgroups result without per-group PoolResults "
                     "(expected a .results dict of name -> PoolResult)")


def _effect_text(est, lb, ub, digits):
    return f"{fmt.num(est, digits)} {fmt.ci(lb, ub, digits)}"


def _f(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


class Rows:
    """Accumulates what goes on each row before anything is drawn.

    With ``table``, ``scale`` and ``digits`` set, :meth:`summary` and
    :meth:`interval` add a pooled diamond or a prediction bar together with
    its label and effect text.
    """

    def __init__(self, table=None, scale=None, digits: int = 2):
        self.y = 0.0
        self.studies = []  # (y, est, lb, ub, weight)
        self.diamonds = []  # (y, est, lb, ub, kind)
        self.pis = []  # (y, lb, ub)
        self.xvalues = []
        self.overall = None  # (y, estimate) of the overall diamond
        self.shrink = []  # (y, est, lb, ub) of Bayesian shrinkage estimates
        self.table, self.scale, self.digits = table, scale, digits

    def next(self, step=1.0):
        self.y += step
        return self.y

    def summary(self, est, lb, ub, kind: str, label: str, *, overall: bool = False) -> None:
        """A diamond on the current row (``kind`` "re", "ce" or "bayes") with its text."""
        e, l_, u = self.scale([est, lb, ub])
        self.diamonds.append((self.y, e, l_, u, kind))
        if overall:
            self.overall = (self.y, e)
        self.xvalues += [l_, u]
        self.table.add("label", self.y, label, bold=True)
        self.table.add("eff", self.y, _effect_text(e, l_, u, self.digits), bold=True)

    def interval(self, lo, hi, label: str) -> None:
        """A prediction-interval bar on a new row, with its text."""
        self.next()
        pl, pu = self.scale([lo, hi])
        self.pis.append((self.y, pl, pu))
        self.xvalues += [pl, pu]
        self.table.add("label", self.y, label)
        self.table.add("eff", self.y, fmt.ci(pl, pu, self.digits))
