"""What a forest plot shows, as a value: rows, text columns, intervals and scale.

This module is the *specification* step of :func:`metaanalysis.forest` (the
arviz split): one builder per kind of result turns it into a
:class:`ForestSpec` — no matplotlib, nothing measured, nothing drawn, no
statistic computed (every number comes from the result objects).  The drawing
step (:mod:`metaanalysis.plots.forest_draw`) measures the text at the final
size, decides the column widths, drops columns that do not fit and draws.

* :func:`pool_spec` — a :class:`~metaanalysis.results.pool_result.PoolResult`
  (optionally with a Bayesian fit of the same studies, ``bayes=``);
* :func:`bayes_spec` — a ``BayesResult`` (observed and shrinkage estimates);
* :func:`subgroups_spec` — a subgroups result (one block per group);
* :func:`sensitivity_spec` — a leave-one-out or cumulative DataFrame.

Text columns of the study data (events/total, mean (SD), n) come from the
column roles that :func:`metaanalysis.effect_sizes` records in
``df.attrs["columns"]``, so the columns a user named (``events1="ev_trt"``)
are found.  :meth:`ForestSpec.table` gives every cell in full (labels that the
drawing shortens to fit are complete there).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats

from metaanalysis import formatting as fmt
from metaanalysis.errors import InputError
from metaanalysis.plots.scale import (
    PROPORTION_MEASURES,
    SINGLE_GROUP_MEASURES,
    AxisScale,
    axis_scale,
)

__all__ = ["ROB_LEVELS", "Cell", "Column", "ForestOptions", "ForestSpec", "Mark", "Row",
           "bayes_spec", "build_spec", "is_bayes", "is_subgroups", "pool_spec",
           "sensitivity_spec", "subgroups_spec"]

#: Order in which columns are dropped when they do not fit (first listed, first dropped).
DROP_ORDER = ("weight", "risk-of-bias domains", "user columns", "mean (SD) and n",
              "events/total", "shrinkage estimates", "risk of bias")
_DROP = {name: len(DROP_ORDER) - i for i, name in enumerate(DROP_ORDER)}

#: Risk-of-bias judgements: canonical key -> (symbol, colour, legend text).  Colours
#: from the robvis "cochrane" palette, darkened to stay distinct in greyscale.
ROB_LEVELS = {
    "low": ("+", "#02A14B", "low"),
    "some": ("−", "#E6B800", "some concerns"),
    "high": ("×", "#C00000", "high"),
    "unclear": ("?", "#4E8FD6", "unclear"),
}
_ROB_ALIASES = {"low": "low", "low risk": "low", "+": "low",
                "some concerns": "some", "some": "some", "moderate": "some", "-": "some",
                "high": "high", "high risk": "high", "serious": "high", "critical": "high",
                "x": "high", "unclear": "unclear", "no information": "unclear",
                "?": "unclear", "ni": "unclear"}


@dataclass(frozen=True)
class Cell:
    """One text cell (a header, a study's label, an estimate ...)."""

    text: str
    bold: bool = False
    color: str | None = None


@dataclass(frozen=True)
class Column:
    """One text column on the ``side`` of the plot panel.

    ``drop`` ranks the column for dropping when the figure is too narrow
    (0: never dropped; higher: dropped earlier), ``group`` names it in the
    warning; ``kind="rob"`` cells are risk-of-bias judgements drawn as
    coloured symbols; ``shorten`` marks the label column (shortened with an
    ellipsis when long).
    """

    key: str
    header: str
    side: str
    align: str = "right"
    drop: int = 0
    group: str = ""
    kind: str = "text"
    shorten: bool = False


@dataclass(frozen=True)
class Mark:
    """A drawn interval: ``kind`` "study", "shrink" (box/circle and whisker),
    "re", "ce", "bayes" (diamonds) or "pi" (prediction bar); values on the axis scale."""

    kind: str
    est: float
    lb: float
    ub: float
    weight: float = math.nan


@dataclass(frozen=True)
class Row:
    """One row: its cells by column key, its marks, or a text ``span``.

    ``gap`` is the distance from the previous row in row heights.  A span
    is written across the text area (``span_width="left"``: left of the
    panel, inside the body; ``"full"``: the whole width, under the last
    diamond) and wrapped to fit.  A ``kind="rob-legend"`` span (the risk-of-bias
    symbols' legend) is left out with the last risk-of-bias column.
    """

    kind: str
    gap: float = 1.0
    cells: Mapping[str, Cell] = field(default_factory=dict)
    marks: tuple[Mark, ...] = ()
    span: Cell | None = None
    span_width: str = "full"
    overall: bool = False


@dataclass(frozen=True)
class ForestSpec:
    """Everything a forest plot shows, before any measuring or drawing."""

    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    scale: AxisScale
    xlim: tuple[float, float]
    xticks: tuple[float, ...] | None
    refline: float | None
    title: str | None
    xlabel: str
    favours: tuple[str, str] | None
    colors: Mapping[str, str]
    box_scale: float = 1.0  # 0.75 when two markers share a row (observed + shrinkage)

    def table(self) -> pd.DataFrame:
        """Every row with its cells in full, one column per text column (header as name).

        Examples
        --------
        >>> import metaanalysis as ma
        >>> res = ma.pool([0.1, 0.3], [0.01, 0.02], labels=["A 2001", "B 2002"])
        >>> ma.forest_spec(res).table()["Study"].tolist()[:2]
        ['A 2001', 'B 2002']
        """
        out = []
        for r in self.rows:
            if r.span is not None:
                out.append({self.columns[0].header: r.span.text})
                continue
            out.append({c.header: r.cells[c.key].text for c in self.columns if c.key in r.cells})
        return pd.DataFrame(out, columns=[c.header for c in self.columns])

    def with_(self, **changes) -> ForestSpec:
        """A copy with some fields replaced (e.g. a shared ``xlim``)."""
        return replace(self, **changes)


@dataclass(frozen=True)
class ForestOptions:
    """The options of :func:`metaanalysis.forest` that shape the specification."""

    sort: object = None
    year: object = None
    transform: bool = True
    percent: bool = False
    common: object = False
    prediction: bool = True
    heterogeneity: bool = True
    refline: object = "auto"
    xlim: object = None
    xticks: object = None
    xlabel: str | None = None
    digits: int | None = None
    weights: bool = True
    study_ci: str = "auto"
    events: object = None
    total: object = None
    columns: object = None
    measure: str | None = None
    overall: object = None
    title: str | None = None
    bayes: object = None
    shrinkage: bool | None = None
    footnotes: object = None
    favours: object = None
    rob: object = None
    colors: Mapping[str, str] = field(default_factory=dict)


COLORS = {"study": "#000000", "re": "#0072B2", "ce": "#FFFFFF", "pi": "#D55E00",
          "ref": "#7F7F7F", "bayes": "#009E73", "inside": "#FFFFFF"}


# ---------------------------------------------------------------------------
# result kinds (decided once, here)
# ---------------------------------------------------------------------------

def is_bayes(obj) -> bool:
    """True for a :func:`metaanalysis.pool_bayes` result."""
    return hasattr(obj, "shrinkage") and hasattr(obj, "mu") and hasattr(obj, "prior_text")


def is_subgroups(obj) -> bool:
    """True for a :func:`metaanalysis.subgroups` result."""
    return hasattr(obj, "q_between") and isinstance(getattr(obj, "groups", None), Mapping)


def _is_pool(obj) -> bool:
    return hasattr(obj, "yi") and hasattr(obj, "estimate") and hasattr(obj, "weights")


def build_spec(result, opts: ForestOptions) -> ForestSpec:
    """Dispatch to the builder of ``result``'s kind."""
    if isinstance(result, pd.DataFrame):
        return sensitivity_spec(result, opts)
    if is_subgroups(result):
        return subgroups_spec(result, opts)
    if is_bayes(result):
        return bayes_spec(result, opts)
    if _is_pool(result):
        return pool_spec(result, opts)
    raise InputError(f"result: got {type(result).__name__}; expected a PoolResult, a "
                     "BayesResult, a subgroups result or a leave-one-out/cumulative DataFrame")


# ---------------------------------------------------------------------------
# text helpers
# ---------------------------------------------------------------------------

def p_eq(p) -> str:
    """``p = 0.0123`` or ``p < 0.0001`` (the one p-text rule, :func:`formatting.p_text`)."""
    return fmt.p_text(p)


def _effect_text(est, lb, ub, digits):
    return f"{fmt.num(est, digits)} {fmt.ci(lb, ub, digits)}"


def _f(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _lvl(level) -> str:
    return f"{fmt.num(float(level) * 100, 0)}%"


def _model_name(res, common=False) -> str:
    return "Common-effect model" if common or res.method == "EE" else "Random-effects model"


_CI_NAMES = {"knha": "Knapp–Hartung", "adhoc": "modified Knapp–Hartung"}


def _het_text(res, compact: bool = False) -> str:
    """Heterogeneity line; it also names the τ² estimator (and a Knapp–Hartung CI)."""
    est = f" ({res.method})" if res.method not in ("EE", "GLMM") else ""
    if compact:  # subgroup blocks: short enough for the text area left of the panel
        parts = [f"I² = {fmt.pct(res.i2)}"]
        if res.method != "EE":
            parts.append(f"τ² = {fmt.num(res.tau2, 4)}")
        parts.append(p_eq(res.q_p))
        return "Heterogeneity: " + ", ".join(parts)
    parts = []
    if res.method != "EE":
        tau2 = f"τ²{est} = {fmt.num(res.tau2, 4)}"
        if np.isfinite(_f(getattr(res, "tau2_ci_lb", None))):
            tau2 += f" {fmt.ci(res.tau2_ci_lb, res.tau2_ci_ub, 4)}"
        parts.append(tau2)
    i2 = f"I² = {fmt.pct(res.i2)}"
    if np.isfinite(_f(getattr(res, "i2_ci_lb", None))):
        i2 += f" [{fmt.pct(res.i2_ci_lb)}, {fmt.pct(res.i2_ci_ub)}]"
    parts.append(i2)
    parts.append(f"Q = {fmt.num(res.q, 2)}, df = {fmt.num(res.q_df, 0)}, {p_eq(res.q_p)}")
    ci = _CI_NAMES.get(getattr(res, "test", "z"))
    if ci and getattr(res, "measure", None) in SINGLE_GROUP_MEASURES:
        parts.append(f"CI: {ci}")  # no overall test line says it
    return "Heterogeneity: " + "; ".join(parts)


def _overall_text(res) -> str | None:
    """Test for the overall effect, or None for single-group measures (nothing to test)."""
    if getattr(res, "measure", None) in SINGLE_GROUP_MEASURES:
        return None
    df = getattr(res, "df", None)
    name = "z" if df is None or not np.isfinite(df) else f"t({fmt.num(df, 0)})"
    ci = _CI_NAMES.get(getattr(res, "test", "z"))
    return (f"Test for overall effect: {name} = {fmt.num(res.stat, 2)}, {p_eq(res.p)}"
            + (f" ({ci})" if ci else ""))


# ---------------------------------------------------------------------------
# study data: text columns, order, intervals
# ---------------------------------------------------------------------------

_FALLBACK = {"events": ("events", "xi"), "total": ("total", "ni"),
             "events1": ("events1", "ai"), "total1": ("total1", "n1i"),
             "events2": ("events2", "ci"), "total2": ("total2", "n2i")}


def _role(data, role):
    """Values of ``role`` (an effect_sizes argument) in ``data``: by the recorded column
    roles (``data.attrs["columns"]``), else under the role's own or metafor's name."""
    if data is None:
        return None
    names = (data.attrs.get("columns") or {}).get(role)
    cands = ([names] if names else []) + list(_FALLBACK.get(role, (role,)))
    for n in cands:
        if n in data.columns:
            return np.asarray(data[n])
    return None


def _count_text(e, t):
    return f"{fmt.num(e, 0)}/{fmt.num(t, 0)}"


def _data_columns(res, events, total):
    """``([(header, group, texts)], events, totals)`` of the study data behind the effects."""
    k = int(res.k)
    data = getattr(res, "data", None)
    if data is not None and len(data) != k:
        data = None
    if events is not None or total is not None:
        if events is None or total is None:
            raise InputError("events/total: got only one of them; expected both")
        ev = np.asarray(data[events] if isinstance(events, str) and data is not None
                        else events, float)
        tot = np.asarray(data[total] if isinstance(total, str) and data is not None
                         else total, float)
        if ev.shape != (k,) or tot.shape != (k,):
            raise InputError(f"events/total: got {ev.size} and {tot.size} values; expected "
                             f"{k} (one per study)")
        return [("Events/Total", "events/total", [_count_text(e, t) for e, t in zip(ev, tot)])], \
            ev, tot
    if data is None:
        return [], None, None
    measure = getattr(res, "measure", None)
    ev, tot = _role(data, "events"), _role(data, "total")
    if ev is not None and tot is not None and measure in PROPORTION_MEASURES:
        return ([("Events/Total", "events/total", [_count_text(e, t) for e, t in zip(ev, tot)])],
                ev.astype(float), tot.astype(float))
    e1, t1, e2, t2 = (_role(data, r) for r in ("events1", "total1", "events2", "total2"))
    if e1 is not None and e2 is not None and t1 is not None and t2 is not None:
        return [("Events/Total (1)", "events/total", [_count_text(a, b) for a, b in zip(e1, t1)]),
                ("Events/Total (2)", "events/total", [_count_text(a, b) for a, b in zip(e2, t2)])
                ], None, None

    def msd(m, s):
        return [f"{fmt.num(a, 1)} ({fmt.num(b, 1)})" for a, b in zip(m, s)]

    def ns(n):
        return [fmt.num(v, 0) for v in n]

    cols = []
    m1, s1, n1, m2, s2, n2 = (_role(data, r) for r in ("mean1", "sd1", "n1", "mean2", "sd2", "n2"))
    if m1 is not None and s1 is not None and m2 is not None and s2 is not None:
        cols.append(("Mean (SD) (1)", "mean (SD) and n", msd(m1, s1)))
        if n1 is not None:
            cols.append(("n (1)", "mean (SD) and n", ns(n1)))
        cols.append(("Mean (SD) (2)", "mean (SD) and n", msd(m2, s2)))
        if n2 is not None:
            cols.append(("n (2)", "mean (SD) and n", ns(n2)))
        return cols, None, None
    mp, sp, mq, sq = (_role(data, r) for r in ("mean_pre", "sd_pre", "mean_post", "sd_post"))
    if mp is not None and sp is not None and mq is not None:
        cols.append(("Baseline mean (SD)", "mean (SD) and n", msd(mp, sp)))
        cols.append(("Follow-up mean (SD)", "mean (SD) and n",
                     msd(mq, sq) if sq is not None else [fmt.num(a, 1) for a in mq]))
    else:
        m, s = _role(data, "mean"), _role(data, "sd")
        if m is not None and s is not None:
            cols.append(("Mean (SD)", "mean (SD) and n", msd(m, s)))
    n = _role(data, "n")
    if cols and n is not None:
        cols.append(("n", "mean (SD) and n", ns(n)))
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
            if y is None or isinstance(y, str):
                y = _role(getattr(res, "data", None), y or "year")
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


def _study_intervals(res, scale, ev, tot, study_ci):
    """Point estimates and CIs of the studies on the axis scale (exact for counts)."""
    yi = np.asarray(res.yi, float)
    se = np.sqrt(np.asarray(res.vi, float))
    z = float(stats.norm.ppf(0.5 + float(res.level) / 2.0))
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
        return (np.asarray(ev, float) / np.asarray(tot, float) * f,
                np.asarray(plb, float) * f, np.asarray(pub, float) * f)
    if want != "model":
        raise InputError(f"study_ci: got {study_ci!r}; expected 'auto', 'exact', 'wilson' "
                         "or 'model'")
    return scale(yi), scale(yi - z * se), scale(yi + z * se)


# ---------------------------------------------------------------------------
# risk of bias
# ---------------------------------------------------------------------------

def _rob_key(value, where) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    key = _ROB_ALIASES.get(str(value).strip().lower())
    if key is None:
        raise InputError(f"rob: {where} = {value!r}; expected one of 'low', 'some concerns', "
                         "'high', 'unclear'")
    return key


def _rob_columns(rob, labels):
    """``(columns, {column key: {label: level}}, domain notes)`` of the ``rob=`` input."""
    if rob is None:
        return [], {}, []
    if isinstance(rob, pd.DataFrame):
        frame = rob.copy()
        frame.index = [str(i) for i in frame.index]
    elif isinstance(rob, (Mapping, pd.Series)):
        frame = pd.DataFrame({"Overall": pd.Series({str(k): v for k, v in dict(rob).items()})})
    else:
        raise InputError(f"rob: got {type(rob).__name__}; expected a mapping or Series from "
                         "study label to judgement, or a DataFrame of domain judgements")
    known = set(labels)
    if not known & set(frame.index):
        raise InputError(f"rob: none of its study labels {sorted(frame.index)[:3]} ... match "
                         f"the result's labels {sorted(known)[:3]} ...")
    cols, values, notes = [], {}, []
    domains = [c for c in frame.columns if str(c).lower() != "overall"]
    overall = [c for c in frame.columns if str(c).lower() == "overall"]
    for j, c in enumerate(domains + overall):
        key = f"rob{j}"
        is_overall = c in overall
        head = "Overall" if is_overall else (str(c) if len(str(c)) <= 3 else f"D{j + 1}")
        if not is_overall and head != str(c):
            notes.append(f"{head}: {c}")
        cols.append(Column(key, head if len(domains) or not is_overall else "RoB", "right",
                           "center", _DROP["risk of bias" if is_overall else
                                          "risk-of-bias domains"],
                           "risk of bias" if is_overall else "risk-of-bias domains", kind="rob"))
        values[key] = {lab: _rob_key(v, f"{lab}/{c}") for lab, v in frame[c].items()}
    return cols, values, notes


def _rob_legend(notes) -> str:
    text = "Risk of bias: " + ", ".join(f"{s} {name}" for s, _, name in ROB_LEVELS.values())
    return text + (f". {'; '.join(notes)}" if notes else "")


# ---------------------------------------------------------------------------
# the builders
# ---------------------------------------------------------------------------

class _Builder:
    """Collects rows and the text columns in use while a spec is built."""

    def __init__(self, scale: AxisScale, digits: int):
        self.rows: list[Row] = []
        self.scale, self.digits = scale, digits
        self.extra: list[tuple[str, str]] = []  # (header, group) of data columns, in order

    def add(self, kind, gap=1.0, cells=None, marks=(), span=None, span_width="full",
            overall=False):
        self.rows.append(Row(kind, gap, dict(cells or {}), tuple(marks), span, span_width,
                             overall))

    def span(self, text, gap, width="full", bold=False, kind="text"):
        if text:
            self.add(kind, gap, span=Cell(text, bold), span_width=width)

    def summary(self, kind, est, lb, ub, label, *, gap=1.0, overall=False, weight=None,
                key="eff", label_note=""):
        e, l_, u = (float(v) for v in self.scale([est, lb, ub]))
        cells = {"label": Cell(label + label_note, True),
                 key: Cell(_effect_text(e, l_, u, self.digits), True)}
        if weight is not None:
            cells["w"] = Cell(weight, True)
        self.add("summary", gap, cells, (Mark(kind, e, l_, u),), overall=overall)

    def interval(self, lo, hi, label, key="eff"):
        pl, pu = (float(v) for v in self.scale([lo, hi]))
        if np.isfinite(pl) and np.isfinite(pu):
            self.add("pi", 1.0, {"label": Cell(label), key: Cell(fmt.ci(pl, pu, self.digits))},
                     (Mark("pi", math.nan, pl, pu),))

    def extra_key(self, header, group) -> str:
        if (header, group) not in self.extra:
            self.extra.append((header, group))
        return f"x{self.extra.index((header, group))}"


def _check_common(opts):
    if opts.common is True:
        raise InputError("common: got True; pass the common-effect fit itself, "
                         "common=ma.pool(es, method='EE') (a plot does not refit models)")
    if opts.common is not False and opts.common is not None and not _is_pool(opts.common):
        raise InputError(f"common: got {type(opts.common).__name__}; expected a PoolResult "
                         "fitted with method='EE'")


def _check_opts(opts: ForestOptions):
    if opts.percent and not opts.transform:
        raise InputError("percent: got True with transform=False; percentages are a "
                         "natural-scale display")
    fn = opts.footnotes
    if fn is not None and (isinstance(fn, str) or not all(isinstance(f, str) for f in fn)):
        raise InputError(f"footnotes: got {fn!r}; expected a list of strings")
    if opts.shrinkage is not None and not isinstance(opts.shrinkage, (bool, np.bool_)):
        raise InputError(f"shrinkage: got {opts.shrinkage!r}; expected True, False or None")
    fav = opts.favours
    if fav is not None and (isinstance(fav, str) or len(fav) != 2
                            or not all(isinstance(s, str) for s in fav)):
        raise InputError(f"favours: got {fav!r}; expected two labels, (left, right), e.g. "
                         "('Favours control', 'Favours treatment')")
    _check_common(opts)


def _scale_for(measure, ni, opts) -> tuple[AxisScale, int]:
    scale = axis_scale(measure, transform=opts.transform, percent=opts.percent, ni=ni,
                       xlabel=opts.xlabel)
    digits = opts.digits if opts.digits is not None else (1 if scale.percent else 2)
    return scale, digits


def _study_rows(b: _Builder, res, opts: ForestOptions, *, single: bool, share=None,
                shrink=None, rob_values=None, weights=True, first_gap=1.0):
    """Rows of the studies of ``res`` (one block)."""
    textcols, ev, tot = _data_columns(res, opts.events if single else None,
                                      opts.total if single else None)
    if opts.columns and single:
        k = int(res.k)
        for h, v in dict(opts.columns).items():
            v = [str(x) for x in v]
            if len(v) != k:
                raise InputError(f"columns: {h!r} has {len(v)} values; expected {k}")
            textcols.append((str(h), "user columns", v))
    est, lb, ub = _study_intervals(res, b.scale, ev, tot, opts.study_ci)
    w = getattr(res, "weights", None)
    w = np.full(int(res.k), np.nan) if w is None else np.asarray(w, float)
    if share is not None:
        w = w / np.nansum(w) * share
    labels = [str(s) for s in res.labels]
    for n, i in enumerate(_order(res, opts.sort, opts.year if single else None)):
        cells = {"label": Cell(labels[i]),
                 "eff": Cell(_effect_text(est[i], lb[i], ub[i], b.digits))}
        for h, g, vals in textcols:
            cells[b.extra_key(h, g)] = Cell(vals[i])
        if weights and np.isfinite(w[i]):
            cells["w"] = Cell(fmt.pct(w[i]))
        for key, vals in (rob_values or {}).items():
            if vals.get(labels[i]):
                cells[key] = Cell(vals[labels[i]])
        marks = [Mark("study", float(est[i]), float(lb[i]), float(ub[i]), float(w[i]))]
        if shrink is not None:
            s_est, s_lb, s_ub = shrink
            cells["shrink"] = Cell(_effect_text(s_est[i], s_lb[i], s_ub[i], b.digits),
                                   color=opts.colors.get("bayes", COLORS["bayes"]))
            marks.append(Mark("shrink", float(s_est[i]), float(s_lb[i]), float(s_ub[i])))
        b.add("study", first_gap if n == 0 else 1.0, cells, marks)


def _columns(b: _Builder, eff_header, *, weights, shrink_header=None, rob_cols=()):
    cols = [Column("label", "Study", "left", "left", shorten=True)]
    cols += [Column(f"x{i}", h, "left", "right", _DROP[g], g)
             for i, (h, g) in enumerate(b.extra)]
    cols.append(Column("eff", eff_header, "right", "right"))
    if shrink_header:
        cols.append(Column("shrink", shrink_header, "right", "right",
                           _DROP["shrinkage estimates"], "shrinkage estimates"))
    if weights:
        cols.append(Column("w", "Weight", "right", "right", _DROP["weight"], "weight"))
    cols += list(rob_cols)
    return tuple(cols)


def _bayes_prior_text(bres) -> str:
    mu = "flat" if bres.mu_prior is None else bres.mu_prior_text
    return (f"Bayesian model: priors τ ~ {bres.prior_text}, μ ~ {mu}; "
            f"{_lvl(bres.level)} {bres.interval} credible intervals (CrI)")


def _bayes_tau_text(bres) -> str:
    from metaanalysis.plots.scale import MODEL_LABELS

    name = MODEL_LABELS.get(bres.measure)
    where = f" ({name.lower()} scale)" if name else ""
    return (f"Posterior τ{where}: median {fmt.num(bres.tau.median, 2)}, "
            f"{_lvl(bres.level)} CrI {fmt.ci(bres.tau.ci_lb, bres.tau.ci_ub, 2)}")


def _bayes_rows(b: _Builder, bres, *, first: bool, prediction: bool, key="eff"):
    b.summary("bayes", bres.mu.median, bres.mu.ci_lb, bres.mu.ci_ub,
              "Bayesian model", gap=1.15 if first else 1.0, overall=first,
              key=key, label_note="" if key != "eff" else f" ({_lvl(bres.level)} CrI)")
    if prediction and np.isfinite(_f(bres.pi_lb)) and np.isfinite(_f(bres.pi_ub)):
        b.interval(bres.pi_lb, bres.pi_ub,
                   "Predictive interval" + ("" if first else " (Bayesian)"), key=key)


def _finish(b: _Builder, columns, opts: ForestOptions, *, notes=(), rob_notes=None) -> ForestSpec:
    for i, line in enumerate(list(opts.footnotes or ()) + list(notes)):
        b.span(line, 1.0 if i == 0 else 0.85)
    if rob_notes is not None:
        b.span(_rob_legend(rob_notes), 0.85, kind="rob-legend")  # gone with the last RoB column
    scale = b.scale
    ref = scale.null if opts.refline == "auto" else opts.refline
    xs = [v for r in b.rows for m in r.marks for v in (m.lb, m.ub, m.est)]
    if ref is not None:
        xs.append(float(ref))
    xlim = _xlim(xs, scale, opts.xlim)
    xticks = None if opts.xticks is None else tuple(float(t) for t in opts.xticks)
    colors = dict(COLORS, **dict(opts.colors))
    return ForestSpec(columns, tuple(b.rows), scale, xlim, xticks,
                      None if ref is None else float(ref), opts.title, scale.label,
                      tuple(opts.favours) if opts.favours else None, colors,
                      0.75 if any(m.kind == "shrink" for r in b.rows for m in r.marks) else 1.0)


def _xlim(values, scale: AxisScale, xlim) -> tuple[float, float]:
    if xlim is not None:
        try:
            lo, hi = float(xlim[0]), float(xlim[1])
        except (TypeError, ValueError, IndexError):
            raise InputError(f"xlim: got {xlim!r}; expected (low, high)") from None
        if not lo < hi or (scale.kind == "log" and lo <= 0):
            raise InputError(f"xlim: got {xlim!r}; expected (low, high) with low < high"
                             + (" and low > 0 on a log axis" if scale.kind == "log" else ""))
        return lo, hi
    v = np.asarray([x for x in values if np.isfinite(x)], float)
    if scale.kind == "log":
        v = np.log(v[v > 0])
        if v.size == 0:
            return 0.1, 10.0
        lo, hi = v.min(), v.max()
        pad = 0.05 * max(hi - lo, 0.2)
        return float(np.exp(lo - pad)), float(np.exp(hi + pad))
    if v.size == 0:
        return 0.0, 1.0
    lo, hi = float(v.min()), float(v.max())
    pad = 0.04 * max(hi - lo, 1e-3)
    lo, hi = lo - pad, hi + pad
    if scale.natural and scale.measure in PROPORTION_MEASURES:
        top = 100.0 if scale.percent else 1.0
        lo, hi = max(lo, 0.0), min(hi, top)
    return lo, hi


def _eff_header(scale, level, transform, interval="CI") -> str:
    name = scale.short_label if transform else "Estimate"
    return f"{name} [{_lvl(level)} {interval}]"


def _check_bayes_pair(res, bres):
    if not is_bayes(bres):
        raise InputError(f"bayes: got {type(bres).__name__}; expected a BayesResult "
                         "from pool_bayes")
    if bres.k != res.k or not np.allclose(np.asarray(bres.yi, float),
                                          np.asarray(res.yi, float)):
        raise InputError(f"bayes: a fit of {bres.k} studies with other yi than result "
                         f"({res.k} studies); expected pool_bayes on the same data")


def _shrink_values(bres, scale):
    sh = bres.shrinkage
    return tuple(scale(np.asarray(sh[c], float)) for c in ("median", "ci_lb", "ci_ub"))


def pool_spec(res, opts: ForestOptions) -> ForestSpec:
    """Specification of the forest plot of a PoolResult (optionally with ``opts.bayes``)."""
    _check_opts(opts)
    bres = opts.bayes
    if bres is not None:
        _check_bayes_pair(res, bres)
    shrinkage = bool(opts.shrinkage) if opts.shrinkage is not None else False
    if shrinkage and bres is None:
        raise InputError("shrinkage: got True but no Bayesian fit; pass a BayesResult as "
                         "result or bayes=")
    scale, digits = _scale_for(opts.measure or res.measure, getattr(res, "ni", None), opts)
    b = _Builder(scale, digits)
    weights = bool(opts.weights) and np.any(np.isfinite(np.asarray(res.weights, float)))
    rob_cols, rob_values, rob_notes = _rob_columns(opts.rob, [str(s) for s in res.labels])
    shrink = _shrink_values(bres, scale) if shrinkage else None
    _study_rows(b, res, opts, single=True, shrink=shrink, rob_values=rob_values,
                weights=weights)
    _pooled_rows(b, res, opts, weights=weights, bres=bres)
    if bres is not None:
        b.span(_bayes_prior_text(bres), 0.9)
        b.span(_bayes_tau_text(bres), 0.85)
    eff = _eff_header(scale, res.level, opts.transform)
    if bres is not None:
        eff = eff.replace(" CI]", " CI or CrI]")
    cols = _columns(b, eff, weights=weights, rob_cols=rob_cols,
                    shrink_header=f"Shrinkage [{_lvl(bres.level)} CrI]" if shrinkage else None)
    return _finish(b, cols, opts, rob_notes=rob_notes if rob_cols else None)


def _pooled_rows(b: _Builder, res, opts, *, weights, bres=None, subtotal=False, share=None,
                prefix=""):
    wtext = (fmt.pct(100.0 if share is None else share) if weights and
             (not subtotal or share is not None) else None)
    name = _model_name(res)
    b.summary("re" if res.method != "EE" else "ce", res.estimate, res.ci_lb, res.ci_ub,
              prefix + (name[0].lower() + name[1:] if prefix else name),
              gap=1.0 if subtotal else 1.15, overall=not subtotal, weight=wtext)
    ce = opts.common
    if ce is not False and ce is not None and not subtotal and res.method != "EE":
        b.summary("ce", ce.estimate, ce.ci_lb, ce.ci_ub, _model_name(ce, common=True))
    if opts.prediction and res.method != "EE" and np.isfinite(_f(res.pi_lb)) and res.k >= 3:
        b.interval(res.pi_lb, res.pi_ub, "Prediction interval")
    if bres is not None and not subtotal:
        _bayes_rows(b, bres, first=False, prediction=opts.prediction)
    if opts.heterogeneity:
        if subtotal:
            b.span(_het_text(res, compact=True), 0.9, width="left")
        else:
            b.span(_het_text(res), 0.9)
            b.span(_overall_text(res), 0.85)


def bayes_spec(bres, opts: ForestOptions) -> ForestSpec:
    """Specification of the forest plot of a BayesResult: observed studies, their
    shrinkage estimates, the Bayesian diamond, predictive interval and priors."""
    _check_opts(opts)
    if opts.common is not False and opts.common is not None:
        raise InputError("common: a BayesResult has no common-effect fit; draw "
                         "ma.forest(ma.pool(..., method='EE'), bayes=res) instead")
    if opts.bayes is not None:
        raise InputError(f"bayes: given with a {type(bres).__name__} result; expected "
                         "result to be a PoolResult of the same studies")
    shrinkage = True if opts.shrinkage is None else bool(opts.shrinkage)
    scale, digits = _scale_for(opts.measure or bres.measure, getattr(bres, "ni", None), opts)
    b = _Builder(scale, digits)
    rob_cols, rob_values, rob_notes = _rob_columns(opts.rob, [str(s) for s in bres.labels])
    _study_rows(b, bres, opts, single=True, rob_values=rob_values, weights=False,
                shrink=_shrink_values(bres, scale) if shrinkage else None)
    # the posterior rows sit in the posterior (CrI) column when there is one
    key = "shrink" if shrinkage else "eff"
    _bayes_rows(b, bres, first=True, prediction=opts.prediction, key=key)
    b.span(_bayes_prior_text(bres), 0.9)
    b.span(_bayes_tau_text(bres), 0.85)
    if shrinkage:
        eff = f"■ Observed [{_lvl(bres.level)} CI]"
        cols = _columns(b, eff, weights=False, rob_cols=rob_cols,
                        shrink_header=f"○ Posterior [{_lvl(bres.level)} CrI]")
        # the posterior column carries the pooled result: it is never dropped
        cols = tuple(replace(c, drop=0) if c.key == "shrink" else c for c in cols)
    else:
        cols = _columns(b, _eff_header(scale, bres.level, opts.transform, "CI or CrI"),
                        weights=False, rob_cols=rob_cols)
    return _finish(b, cols, opts, rob_notes=rob_notes if rob_cols else None)


def subgroups_spec(sg, opts: ForestOptions) -> ForestSpec:
    """Specification of a subgroup analysis: one block per group with its subtotal."""
    _check_opts(opts)
    if opts.bayes is not None:
        raise InputError(f"bayes: given with a {type(sg).__name__} result; expected "
                         "result to be a PoolResult of the same studies")
    parts = list(sg.groups.items())
    if not parts:
        raise InputError("result: a subgroups result without groups")
    overall = opts.overall if opts.overall is not None else getattr(sg, "overall", None)
    first = parts[0][1]
    ni_all = [getattr(r, "ni", None) for _, r in parts]
    ni = None if any(n is None for n in ni_all) else np.concatenate(
        [np.asarray(n, float) for n in ni_all])
    scale, digits = _scale_for(opts.measure or first.measure, ni, opts)
    b = _Builder(scale, digits)
    weights = bool(opts.weights) and all(
        np.any(np.isfinite(np.asarray(r.weights, float))) for _, r in parts)
    share = {}  # each group's share of the overall weight (sum of its study weights)
    if weights and overall is not None and getattr(overall, "weights", None) is not None:
        w_all = dict(zip((str(x) for x in overall.labels), np.asarray(overall.weights, float)))
        for name, res in parts:
            share[name] = float(np.nansum([w_all.get(str(x), np.nan) for x in res.labels]))
        if not all(np.isfinite(v) and v > 0 for v in share.values()):
            share = {}
    labels = [str(s) for _, r in parts for s in r.labels]
    rob_cols, rob_values, rob_notes = _rob_columns(opts.rob, labels)
    for j, (name, res) in enumerate(parts):
        b.add("group", 1.3 if j else 1.0, {"label": Cell(str(name), True)})
        _study_rows(b, res, opts, single=False, share=share.get(name), rob_values=rob_values,
                    weights=weights)
        _pooled_rows(b, res, opts, weights=weights, subtotal=True, share=share.get(name))
    if overall is not None:
        _pooled_rows(b, overall, replace(opts, common=False), weights=weights,
                     prefix="Overall, ")
    b.span("Test for subgroup differences: "
           f"Q = {fmt.num(sg.q_between, 2)}, df = {fmt.num(sg.q_between_df, 0)}, "
           f"{p_eq(sg.q_between_p)}", 0.85 if overall is not None else 1.2)
    cols = _columns(b, _eff_header(scale, first.level, opts.transform), weights=weights,
                    rob_cols=rob_cols)
    return _finish(b, cols, opts, rob_notes=rob_notes if rob_cols else None)


def sensitivity_spec(df: pd.DataFrame, opts: ForestOptions) -> ForestSpec:
    """Specification of a leave-one-out or cumulative DataFrame: one refit per row."""
    if opts.footnotes is not None:
        raise InputError("footnotes: not supported for leave-one-out/cumulative DataFrames")
    if opts.bayes is not None:
        raise InputError("bayes: given with a DataFrame result; expected result to be a "
                         "PoolResult of the same studies")
    _check_opts(replace(opts, footnotes=None))
    missing = [c for c in ("estimate", "ci_lb", "ci_ub") if c not in df.columns]
    if missing:
        raise InputError(f"result: DataFrame lacks column(s) {missing}; expected the output "
                         "of leave_one_out() or cumulative()")
    if len(df) == 0:
        raise InputError("result: got an empty DataFrame; expected at least one row")
    overall = opts.overall
    measure = opts.measure or df.attrs.get("measure") or getattr(overall, "measure", None)
    scale, digits = _scale_for(measure, getattr(overall, "ni", None), opts)
    b = _Builder(scale, digits)
    cumulative = str(df.attrs.get("analysis", "")).lower().startswith("cumulative")
    level = float(df.attrs.get("level", getattr(overall, "level", 0.95)))
    est, lb, ub = (scale(df[c].to_numpy(float)) for c in ("estimate", "ci_lb", "ci_ub"))
    has_k, has_i2 = "k" in df.columns, "i2" in df.columns
    for i, lab in enumerate(str(s) for s in df.index):
        cells = {"label": Cell(("+ " if cumulative else "− ") + lab),
                 "eff": Cell(_effect_text(est[i], lb[i], ub[i], digits))}
        if has_k:
            cells["k"] = Cell(fmt.num(df["k"].iloc[i], 0))
        if has_i2:
            cells["i2"] = Cell(fmt.pct(df["i2"].iloc[i]))
        b.add("study", 1.0, cells, (Mark("refit", float(est[i]), float(lb[i]), float(ub[i])),))
    if overall is not None:
        e, l_, u = (float(v) for v in scale([overall.estimate, overall.ci_lb, overall.ci_ub]))
        cells = {"label": Cell("All studies", True), "eff": Cell(_effect_text(e, l_, u, digits),
                                                                   True)}
        if has_i2:
            cells["i2"] = Cell(fmt.pct(overall.i2), True)
        b.add("summary", 1.15, cells, (Mark("re", e, l_, u),), overall=True)
    b.span(df.attrs.get("description"), 0.9)
    cols = [Column("label", "Adding" if cumulative else "Omitting", "left", "left",
                   shorten=True)]
    if has_k:
        cols.append(Column("k", "k", "left", "right", 2, "k"))
    cols.append(Column("eff", _eff_header(scale, level, opts.transform), "right", "right"))
    if has_i2:
        cols.append(Column("i2", "I²", "right", "right", 3, "I²"))
    return _finish(b, tuple(cols), replace(opts, footnotes=None))
