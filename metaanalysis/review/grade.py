"""GRADE summary of findings: certainty of the evidence per outcome, each domain computed.

Certainty starts from the design (randomised trials: high; observational
studies: low; Guyatt et al. 2011, J Clin Epidemiol 64:401) and is rated down
one level per "serious" and two per "very serious" domain, never below very
low.  Each domain's judgement is computed from the analysis by a stated rule
and printed with its reason; the plan may replace any judgement, with a
reason (``overrides``).

====================  ===================================================================
domain                rule (defaults; the thresholds are :class:`GradeSettings` fields)
====================  ===================================================================
risk of bias          share of the analysis weight from studies whose overall risk of bias
                      is high or critical: ≥ 50% serious; ≥ 50% from critical studies very
                      serious; weight from studies without ratings counts as not low
inconsistency         I² < 50% not serious; ≥ 50% serious; ≥ 75% with a prediction interval
                      ≥ 3 × as wide as the CI very serious (Cochrane Handbook 10.10.2;
                      Guyatt 2011, J Clin Epidemiol 64:1294); without I² (Bayesian, k = 2) the
                      width ratio alone: ≥ 2 serious, ≥ 3 very serious; one study: not
                      assessable, not rated down
indirectness          from the plan (``indirectness: {judgement, reason}`` per outcome);
                      otherwise not serious
imprecision           CI width above the plan's threshold serious, above twice the threshold
                      very serious; total n below the plan's optimal information size (OIS)
                      serious; neither stated: OIS of 400 participants (GRADE rule of thumb,
                      Guyatt 2011, J Clin Epidemiol 64:1283)
publication bias      k < 10: not assessable (Sterne 2011, BMJ 343:d4002), not rated down;
                      k ≥ 10: Egger's test p < 0.10 strongly suspected, else undetected
====================  ===================================================================

Thresholds for proportions are in percentage points (a CI from 20% to 45% is
25 points wide); for means and mean changes in the outcome's units.

Examples
--------
>>> import metaanalysis as ma
>>> res = ma.pool([4.1, 4.6, 4.4, 4.3], [0.10, 0.12, 0.08, 0.2], test="knha")
>>> sof = summary_of_findings({"Pain reduction": res})
>>> sof.loc[0, ["inconsistency", "publication_bias", "certainty"]].tolist()
['not serious', 'not assessable', 'low']
>>> sof.loc[0, "publication_bias_reason"][:36]
'k = 4 < 10: funnel plots and asymmet'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metaanalysis.effects.transforms import PROPORTION_MEASURES, to_natural
from metaanalysis.errors import InputError
from metaanalysis.formatting import num, pct
from metaanalysis.review.rob_tools import HIGH_RISK

__all__ = ["DOMAINS", "GradeSettings", "certainty_symbol", "outcome_row", "sof_display",
           "summary_of_findings"]

DOMAINS = ("risk_of_bias", "inconsistency", "indirectness", "imprecision", "publication_bias")
DOMAIN_NAMES = {"risk_of_bias": "Risk of bias", "inconsistency": "Inconsistency",
                "indirectness": "Indirectness", "imprecision": "Imprecision",
                "publication_bias": "Publication bias"}
JUDGEMENTS = {"not serious": 0, "serious": 1, "very serious": 2,
              "not assessable": 0, "undetected": 0, "strongly suspected": 1,
              "very strongly suspected": 2}
LEVELS = {4: "high", 3: "moderate", 2: "low", 1: "very low"}
START = {"randomised": 4, "observational": 2}
RATIO_MEASURES = ("RR", "OR")


def certainty_symbol(level: str) -> str:
    """``"⊕⊕◯◯ LOW"`` for ``"low"``.

    >>> certainty_symbol("moderate")
    '⊕⊕⊕◯ MODERATE'
    """
    n = {v: k for k, v in LEVELS.items()}[level]
    return "⊕" * n + "◯" * (4 - n) + f" {level.upper()}"


@dataclass(frozen=True)
class GradeSettings:
    """The rules' thresholds and the plan's per-outcome statements.

    ``imprecision``: ``{outcome: {"ci_width": x}}`` and/or ``{"ois": n}``
    (optional ``"reason"``); ``indirectness``: ``{outcome: (judgement,
    reason)}``; ``overrides``: ``{(outcome, domain): (judgement, reason)}`` —
    ``outcome`` may also be ``"outcome/window"`` or ``"outcome/window/unit"``
    to replace the judgement of one analysis only.
    """

    design: str = "observational"
    rob_serious: float = 0.5
    i2_serious: float = 50.0
    i2_very_serious: float = 75.0
    pi_ratio_serious: float = 2.0
    pi_ratio_very_serious: float = 3.0
    default_ois: int = 400
    pub_bias_min_k: int = 10
    egger_alpha: float = 0.10
    imprecision: Mapping = field(default_factory=dict)
    indirectness: Mapping = field(default_factory=dict)
    overrides: Mapping = field(default_factory=dict)

    def __post_init__(self):
        if self.design not in START:
            raise InputError(f"design: got {self.design!r}; expected one of {', '.join(START)}")
        for (_, domain), (judgement, reason) in self.overrides.items():
            if domain not in DOMAINS:
                raise InputError(f"overrides: domain {domain!r}; expected one of "
                                 f"{', '.join(DOMAINS)}")
            _check_judgement(domain, judgement)
            if not isinstance(reason, str) or not reason.strip():
                raise InputError(f"overrides: {domain}: reason missing; a judgement that "
                                 "replaces the rule needs its justification")


def _check_judgement(domain: str, judgement: str) -> None:
    ok = (("undetected", "strongly suspected", "very strongly suspected", "not assessable")
          if domain == "publication_bias" else ("not serious", "serious", "very serious"))
    if judgement not in ok:
        raise InputError(f"{domain}: judgement {judgement!r}; expected one of {', '.join(ok)}")


# ---------------------------------------------------------------- inputs

def _natural(measure, x, ni=None) -> np.ndarray:
    return np.asarray(to_natural(measure, np.asarray(x, float), ni=ni), float)


def outcome_row(result, *, outcome: str, n: float | None = None, unit: str | None = None,
                studies: Sequence[str] | None = None, measure: str | None = None,
                window: str | None = None, egger_p: float | None = None,
                control_risk: float | None = None) -> dict:
    """One input row of :func:`summary_of_findings` from a pooled result.

    ``result`` is a :class:`~metaanalysis.PoolResult` or
    :class:`~metaanalysis.BayesResult`.  Estimates are put on the natural scale
    (proportions, ratios); study weights are the model's (percent) or, for
    models without inverse-variance weights (GLMM, Bayesian), ``1/(vᵢ + τ²)``.
    ``n`` defaults to the sum of ``result.ni``; ``studies`` to ``result.labels``.
    """
    m = measure or getattr(result, "measure", None)
    ni = getattr(result, "ni", None)
    vi = np.asarray(result.vi, float)
    if hasattr(result, "mu"):  # BayesResult
        raw = [result.mu.median, result.mu.ci_lb, result.mu.ci_ub, result.pi_lb, result.pi_ub]
        tau2, i2, interval = float(result.tau.median) ** 2, math.nan, "CrI"
        w = np.full(len(vi), np.nan)
    else:
        raw = [result.estimate, result.ci_lb, result.ci_ub, result.pi_lb, result.pi_ub]
        tau2, i2, interval = float(result.tau2), float(result.i2), "CI"
        w = np.asarray(result.weights, float)
    if not np.isfinite(w).all():
        w = 1.0 / (vi + (tau2 if np.isfinite(tau2) else 0.0))
        w = 100 * w / w.sum()
    est, lb, ub, plb, pub = _natural(m, raw, ni)
    if n is None:
        n = float(np.nansum(ni)) if ni is not None else math.nan
    return {"outcome": outcome, "window": window, "unit": unit or getattr(result, "unit", None),
            "k": int(result.k), "n": n, "measure": m, "estimate": est, "ci_lb": lb, "ci_ub": ub,
            "pi_lb": plb, "pi_ub": pub, "tau2": tau2, "i2": i2, "interval": interval,
            "level": float(result.level),
            "studies": list(studies if studies is not None else result.labels),
            "weights": list(map(float, w)), "egger_p": egger_p, "control_risk": control_risk}


def _rows(outcomes) -> list[dict]:
    if isinstance(outcomes, pd.DataFrame):
        return outcomes.to_dict("records")
    if isinstance(outcomes, Mapping):
        return [outcome_row(r, outcome=str(name)) for name, r in outcomes.items()]
    return [dict(r) if isinstance(r, Mapping) else outcome_row(r, outcome=str(i))
            for i, r in enumerate(outcomes)]


def _overall_map(rob) -> dict:
    """Study -> overall level from a wide (``Overall``) or long (``domain``) table or mapping."""
    if rob is None:
        return {}
    if isinstance(rob, Mapping):
        return {str(k): str(v) for k, v in rob.items()}
    if "domain" in rob.columns:
        ov = rob[rob["domain"] == "overall"]
        out = dict(zip(ov["study"], ov["level"]))
        out.update(zip(ov["label"], ov["level"]))
        return out
    from metaanalysis.review.rob import rob_levels

    lv = rob_levels(rob)
    out = dict(zip(lv["Study"], lv["Overall"]))
    if "id" in rob.columns:
        out.update(zip(rob["id"].astype(str), lv["Overall"]))
    return out


# ---------------------------------------------------------------- domain rules

def _width(lb, ub, prop: bool) -> float:
    return (ub - lb) * (100 if prop else 1)


def _rob(row, overall, s: GradeSettings, labels: Mapping):
    studies = [str(x) for x in row["studies"]]
    if not overall:
        return "not serious", ("no risk-of-bias ratings given; not rated down (rate this "
                               "domain in the plan)")
    w = np.nan_to_num(np.asarray(row.get("weights") or [1.0] * len(studies), float))
    total = w.sum() or 1.0
    high = sum(x for st, x in zip(studies, w) if overall.get(st) in HIGH_RISK) / total
    crit = sum(x for st, x in zip(studies, w) if overall.get(st) == "critical") / total
    unrated = sum(x for st, x in zip(studies, w) if st not in overall) / total
    who = [str(labels.get(st, st)) for st in studies if overall.get(st) in HIGH_RISK]
    text = (f"{pct(100 * high)} of the weight from studies at high risk of bias"
            + (f" ({', '.join(who)})" if who else ""))
    if unrated:
        text += f"; {pct(100 * unrated)} from studies without ratings"
    thr = f"threshold {pct(100 * s.rob_serious)}"
    if crit >= s.rob_serious:
        return "very serious", f"{text}; {pct(100 * crit)} from studies at critical risk ({thr})"
    if high >= s.rob_serious:
        return "serious", f"{text} ({thr})"
    if high + unrated >= s.rob_serious:
        return "serious", f"{text}: together ≥ {pct(100 * s.rob_serious)} not at low risk"
    return "not serious", f"{text} ({thr})"


def _inconsistency(row, s: GradeSettings):
    k = int(row["k"])
    if k < 2:
        return "not serious", "one study: inconsistency not assessable; not rated down"
    prop = row["measure"] in PROPORTION_MEASURES
    ci_w = _width(row["ci_lb"], row["ci_ub"], prop)
    pi_w = _width(row["pi_lb"], row["pi_ub"], prop)
    ratio = pi_w / ci_w if ci_w > 0 and np.isfinite(pi_w) else math.nan
    lv = f"{100 * row.get('level', 0.95):g}%"
    iv = row.get("interval", "CI")
    parts = []
    i2 = row.get("i2", math.nan)
    if i2 is not None and np.isfinite(i2):
        parts.append(f"I² = {pct(i2)}")
    tau2 = row.get("tau2", math.nan)
    if tau2 is not None and np.isfinite(tau2):
        parts.append(f"τ = {num(math.sqrt(max(tau2, 0.0)), 2)}"
                     + (" (logit scale)" if row["measure"] == "PLO" else ""))
    if np.isfinite(ratio):
        parts.append(f"{lv} PI {_fmt(row['pi_lb'], prop)} to {_fmt(row['pi_ub'], prop)} is "
                     f"{num(ratio, 1)} × as wide as the {iv}")
    text = "; ".join(parts)
    if i2 is not None and np.isfinite(i2):
        if i2 >= s.i2_very_serious and np.isfinite(ratio) and ratio >= s.pi_ratio_very_serious:
            return "very serious", (f"{text} (I² ≥ {s.i2_very_serious:g}% and PI ≥ "
                                    f"{s.pi_ratio_very_serious:g} × {iv})")
        if i2 >= s.i2_serious:
            return "serious", f"{text} (I² ≥ {s.i2_serious:g}%)"
        return "not serious", f"{text} (I² < {s.i2_serious:g}%)"
    if not np.isfinite(ratio):
        return "not serious", "heterogeneity not estimable; not rated down"
    if iv == "CrI" and k < 3:
        text += f"; with k = {k} the posterior of τ rests largely on its prior"
    if ratio >= s.pi_ratio_very_serious:
        return "very serious", f"{text} (≥ {s.pi_ratio_very_serious:g} ×; I² not estimated)"
    if ratio >= s.pi_ratio_serious:
        return "serious", f"{text} (≥ {s.pi_ratio_serious:g} ×; I² not estimated)"
    return "not serious", f"{text} (< {s.pi_ratio_serious:g} ×; I² not estimated)"


def _plan_for(mapping: Mapping, row):
    for key in (f"{row['outcome']}/{row.get('window')}/{row.get('unit')}",
                f"{row['outcome']}/{row.get('window')}", str(row["outcome"])):
        if key in mapping:
            return mapping[key]
    return None


def _indirectness(row, s: GradeSettings):
    flag = _plan_for(s.indirectness, row)
    if flag is None:
        return "not serious", "no indirectness flagged in the plan"
    judgement, reason = flag
    _check_judgement("indirectness", judgement)
    return judgement, f"{reason} (plan)"


def _imprecision(row, s: GradeSettings):
    prop = row["measure"] in PROPORTION_MEASURES
    unit = " percentage points" if prop else ""
    width = _width(row["ci_lb"], row["ci_ub"], prop)
    iv = row.get("interval", "CI")
    rule = _plan_for(s.imprecision, row) or {}
    n = row.get("n", math.nan)
    judged, reasons = 0, []
    thr = rule.get("ci_width")
    if thr is not None:
        level = 2 if width > 2 * thr else 1 if width > thr else 0
        judged = max(judged, level)
        cmp = ">" if level else "≤"
        reasons.append(f"{iv} width {num(width, 1)}{unit} {cmp} "
                       f"{num(2 * thr if level == 2 else thr, 1)}{unit}"
                       + (" (twice the threshold)" if level == 2 else " (plan threshold)"))
    ois = rule.get("ois")
    if ois is None and thr is None:
        ois = s.default_ois
        default = True
    else:
        default = False
    if ois is not None and n is not None and np.isfinite(n):
        short = n < ois
        judged = max(judged, 1 if short else 0)
        reasons.append(f"n = {int(n)} {'<' if short else '≥'} optimal information size {ois}"
                       + (" (GRADE rule of thumb; no threshold in the plan)" if default else ""))
    if rule.get("reason"):
        reasons.append(str(rule["reason"]))
    if not reasons:
        return "not serious", "no threshold and no sample size; not rated down"
    return ("not serious", "serious", "very serious")[judged], "; ".join(reasons)


def _publication_bias(row, s: GradeSettings):
    k = int(row["k"])
    if k < s.pub_bias_min_k:
        return "not assessable", (f"k = {k} < {s.pub_bias_min_k}: funnel plots and asymmetry "
                                  "tests cannot be read (Sterne et al. 2011, BMJ 343:d4002); "
                                  "not rated down")
    p = row.get("egger_p")
    if p is None or not np.isfinite(p):
        return "undetected", f"k = {k}; no asymmetry test given"
    if p < s.egger_alpha:
        return "strongly suspected", f"Egger's test p = {num(p, 3)} < {s.egger_alpha:g}"
    return "undetected", f"Egger's test p = {num(p, 3)} ≥ {s.egger_alpha:g}"


_RULES = {"risk_of_bias": _rob, "inconsistency": _inconsistency, "indirectness": _indirectness,
          "imprecision": _imprecision, "publication_bias": _publication_bias}


# ---------------------------------------------------------------- the table

def _fmt(x, prop: bool) -> str:
    if x is None or not np.isfinite(x):
        return "—"
    return f"{num(100 * x, 1)}%" if prop else num(x, 2)


def _effect_texts(row) -> tuple[str, str]:
    """(absolute, relative) estimate texts."""
    m = row["measure"]
    prop = m in PROPORTION_MEASURES
    if m in RATIO_MEASURES or m == "RD":
        name = {"RR": "RR", "OR": "OR", "RD": "RD"}[m]
        rel = f"{name} {num(row['estimate'], 2)} ({num(row['ci_lb'], 2)} to {num(row['ci_ub'], 2)})"
        cr = row.get("control_risk")
        if cr is None or not np.isfinite(cr):
            return "—", rel
        diff = [_risk_difference(m, x, cr) for x in (row["estimate"], row["ci_lb"], row["ci_ub"])]
        absolute = (f"{_per1000(diff[0])} per 1000 ({_per1000(min(diff[1:]))} to "
                    f"{_per1000(max(diff[1:]))}); control risk {num(100 * cr, 1)}%")
        return absolute, rel
    absolute = (f"{_fmt(row['estimate'], prop)} ({_fmt(row['ci_lb'], prop)} to "
                f"{_fmt(row['ci_ub'], prop)})")
    return absolute, "—"


def _risk_difference(measure, x, cr) -> float:
    if measure == "RR":
        return cr * (x - 1)
    if measure == "OR":
        return x * cr / (1 - cr + x * cr) - cr
    return x


def _per1000(d) -> str:
    v = round(1000 * d)
    return f"{v:+d}".replace("-", "−") if v else "0"


def summary_of_findings(outcomes, *, rob=None, settings: GradeSettings | None = None,
                        design: str | None = None, labels: Mapping | None = None
                        ) -> pd.DataFrame:
    """GRADE summary of findings: one row per outcome, every domain judged with its reason.

    Parameters
    ----------
    outcomes : mapping, sequence or DataFrame
        ``{outcome name: PoolResult or BayesResult}``; or rows from
        :func:`outcome_row` (a list of dicts or a DataFrame with columns
        ``outcome, k, n, measure, estimate, ci_lb, ci_ub, pi_lb, pi_ub, tau2,
        i2, studies, weights`` and optionally ``window, unit, level, interval,
        egger_p, control_risk``).
    rob : DataFrame or mapping, optional
        Risk-of-bias ratings: a wide table (:func:`metaanalysis.rob_table`),
        the long one (:func:`metaanalysis.review.rob.rob_ratings`), or
        ``{study: overall level}``.  Studies are matched by id or label.
    settings : GradeSettings, optional
        Thresholds and the plan's statements (imprecision thresholds,
        indirectness, overrides).
    design : {"observational", "randomised"}, optional
        Shortcut for ``settings.design``.
    labels : mapping, optional
        Study -> display label, for the studies named in the reasons.

    Returns
    -------
    DataFrame
        Per outcome: ``outcome, window, unit, k, n, design, absolute, relative``,
        the estimate columns, then for each domain its judgement and
        ``<domain>_reason`` (overridden judgements end "(plan override)"),
        ``downgrade``, ``certainty`` and ``certainty_symbol``.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> res = ma.pool([4.1, 5.0, 4.6], [0.1, 0.12, 0.08])
    >>> s = GradeSettings(imprecision={"pain": {"ci_width": 1.0}})
    >>> sof = summary_of_findings({"pain": res}, settings=s, rob={"1": "high", "2": "high"})
    >>> sof.loc[0, "risk_of_bias"], sof.loc[0, "certainty"]
    ('serious', 'very low')
    """
    s = settings or GradeSettings()
    if design is not None:
        s = GradeSettings(**{**s.__dict__, "design": design})
    overall = _overall_map(rob)
    out = []
    for row in _rows(outcomes):
        if isinstance(row.get("studies"), str):
            row["studies"] = [x.strip() for x in row["studies"].split(",") if x.strip()]
        if isinstance(row.get("weights"), str):
            row["weights"] = [float(x) for x in row["weights"].split(",") if x.strip()]
        absolute, relative = _effect_texts(row)
        rec = {"outcome": row["outcome"], "window": row.get("window"), "unit": row.get("unit"),
               "k": int(row["k"]), "n": row.get("n"), "design": s.design,
               "absolute": absolute, "relative": relative,
               "measure": row["measure"], "estimate": row["estimate"], "ci_lb": row["ci_lb"],
               "ci_ub": row["ci_ub"]}
        down = 0
        for d in DOMAINS:
            judgement, reason = _RULES[d](row, overall, s, labels or {}) \
                if d == "risk_of_bias" else _RULES[d](row, s)
            ov = _plan_for({o: v for (o, dom), v in s.overrides.items() if dom == d}, row)
            if ov is not None:
                judgement, reason = ov[0], f"{ov[1]} (plan override; rule: {judgement})"
            rec[d], rec[f"{d}_reason"] = judgement, reason
            down += JUDGEMENTS[judgement]
        level = max(1, START[s.design] - down)
        rec.update(downgrade=down, certainty=LEVELS[level],
                   certainty_symbol=certainty_symbol(LEVELS[level]))
        out.append(rec)
    cols = ["outcome", "window", "unit", "k", "n", "design", "absolute", "relative", "measure",
            "estimate", "ci_lb", "ci_ub"] + [x for d in DOMAINS for x in (d, f"{d}_reason")] \
        + ["downgrade", "certainty", "certainty_symbol"]
    df = pd.DataFrame(out, columns=cols)
    df.attrs["design"] = s.design
    return df


def sof_display(sof: pd.DataFrame, *, markers=None, labels: Mapping | None = None
                ) -> pd.DataFrame:
    """The summary of findings as text cells, with footnote letters for every reason.

    Returns a DataFrame whose ``attrs["notes"]`` holds the footnotes
    (``"a. Risk of bias: 100% of the weight ..."``); a judgement other than
    "not serious" (or one the plan overrode) carries its letter, as GRADEpro
    prints them.  ``markers`` (one string per row, or a mapping outcome ->
    string) gives data markers (†‡§¶) appended to the outcome's name;
    ``labels`` maps outcome names to display labels.
    """
    notes, rows = [], []
    letters = "abcdefghijklmnopqrstuvwxyz"

    def note(text):
        if text not in notes:
            notes.append(text)
        i = notes.index(text)
        return letters[i % 26] * (1 + i // 26)

    for i, (_, r) in enumerate(sof.iterrows()):
        name = str((labels or {}).get(r["outcome"], r["outcome"]))
        if isinstance(r.get("window"), str) and r["window"]:
            name += f", {str(r['window']).replace('_', ' ')}"
        mark = (markers.get(r["outcome"]) if isinstance(markers, Mapping)
                else markers[i] if markers is not None else "")
        if mark:
            name += f" {mark}"
        n = r["n"]
        n = "—" if n is None or not np.isfinite(n) else str(int(n))
        unit = f" {r['unit']}" if r.get("unit") else ""
        row = {"Outcome": name, "Studies (participants)": f"{int(r['k'])} ({n}{unit})",
               "Estimate (CI)": r["absolute"], "Relative effect (CI)": r["relative"]}
        for d in DOMAINS:
            j, why = r[d], str(r[f"{d}_reason"])
            quiet = j in ("not serious", "undetected") and "override" not in why
            row[DOMAIN_NAMES[d]] = j if quiet else f"{j} {note(f'{DOMAIN_NAMES[d]}: {why}')}"
        row["Certainty"] = r["certainty_symbol"]
        rows.append(row)
    df = pd.DataFrame(rows, columns=["Outcome", "Studies (participants)", "Estimate (CI)",
                                     "Relative effect (CI)", *DOMAIN_NAMES.values(), "Certainty"])
    if (df["Relative effect (CI)"] == "—").all():
        df = df.drop(columns="Relative effect (CI)")
    df.attrs["notes"] = [f"{letters[i % 26] * (1 + i // 26)}. {t}" for i, t in enumerate(notes)]
    return df
