"""Selecting the records of one analysis: the plan's rules applied to a set of studies.

:func:`select` applies study exclusions, arm choice, unit of analysis, time
window, statistics rules (counts, percents, median conversions) and overlap
groups in the order documented in :mod:`metaanalysis.report.analysis`, recording one
reason for every record it leaves out, and returns a :class:`Selection`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from metaanalysis.effects.transforms import PROPORTION_MEASURES as PROPORTIONS
from metaanalysis.records.studies import StudySet
from metaanalysis.report.plan import OutcomePlan, Plan
from metaanalysis.report.study_labels import FLAG_MARKS, display_labels


def _stats(o) -> dict:
    return {k: float(v) for k, v in o.stats.items()}


def _has(st, *keys) -> bool:
    return all(k in st and not math.isnan(st[k]) for k in keys)


def _window_distance(tp, lo, hi) -> float:
    return abs(tp.days - (lo + hi) / 2)


def _left_out(study: str, o, reason: str) -> dict:
    """One row of ``Selection.excluded``: record ``o`` of ``study`` and why it is left out."""
    return {"study": study, "time": o.time, "arm": o.arm, "reason": reason}


def assumed_events(percent: float, decimals: int, total: int) -> int:
    """The event count taken for ``percent`` of an assumed denominator ``total``: the
    largest count consistent with the percent, else the rounded product."""
    from metaanalysis.records.checks import matching_counts

    e = matching_counts(percent, decimals, int(total))
    return int(e[-1]) if e else round(percent * total / 100)


@dataclass(frozen=True)
class Selection:
    """Records used and left out for one analysis (outcome × window × unit)."""

    included: pd.DataFrame
    excluded: pd.DataFrame  # study, time, arm, reason
    notes: tuple[str, ...]
    pending_denominators: tuple = ()  # (study, time, percent, decimals, upper, candidates)


def _mean_sd(st, reported_as, n, plan: Plan, study, time, notes):
    """(mean, sd, how) for one record, or (None, None, reason)."""
    from metaanalysis.effects.conversions import estimate_mean_sd

    median_sd = "median" in str(reported_as or "").lower() and _has(st, "median", "sd")
    if median_sd:
        if plan.median_sd == "as_mean":
            notes.append(f"{study} ({time}): 'median ± SD' used as mean ± SD (assumption)")
            return st["median"], st["sd"], "median-as-mean"
        return None, None, f"{time}: reported as 'median ± SD', not a mean (plan: median_sd: exclude)"
    if _has(st, "mean", "sd"):
        return st["mean"], st["sd"], "reported"
    if _has(st, "median") and (_has(st, "min", "max") or _has(st, "q1", "q3")):
        kw = {k: st.get(k) for k in ("q1", "q3", "min", "max") if _has(st, k)}
        m, s = estimate_mean_sd(n, median=st["median"], method=plan.median_conversion, **kw)
        notes.append(f"{study} ({time}): mean and SD estimated from the median and "
                     f"{'/'.join(sorted(kw))} ({plan.median_conversion})")
        return float(m), float(s), plan.median_conversion
    return None, None, f"{time}: no mean ± SD or median with range/IQR"


def overlap_group_of(study, plan: Plan) -> str | None:
    """The overlap group a study counts in under ``plan``: its ``overlap_group``,
    unless its membership is only probable and the plan keeps probable members
    separate (``probable_overlap: separate``)."""
    if study.overlap_membership == "probable" and plan.probable_overlap != "apply":
        return None
    return study.overlap_group


def _modality(study, arm: str | None) -> str | None:
    """The ablation modality of a study (of ``arm`` when the arm names one)."""
    a = study.arms.get(arm) if arm else None
    return a.modality if a is not None and a.modality else study.modality


def _base_filter(studies: StudySet, plan: Plan, op: OutcomePlan, unit: str):
    """Records of the outcome left after exclusions, arms and unit; plus the reasons."""
    excl = dict(plan.exclusions)
    arms = {s: (a, r) for s, a, r in plan.arms}
    keep, out = [], []
    for s, o in studies.records(op.name):
        why = None
        if s.id in excl:
            why = f"excluded by the plan: {excl[s.id]}"
        elif o.arm is not None and (s.id not in arms or arms[s.id][0] != o.arm):
            why = (f"arm {o.arm}: not the arm pooled ({arms[s.id][0]}: {arms[s.id][1]})"
                   if s.id in arms else f"arm {o.arm} of a multi-arm study; the plan names no arm "
                   "to pool (plan: arms)")
        elif plan.modalities and _modality(s, o.arm) not in plan.modalities:
            why = (f"modality {_modality(s, o.arm) or 'not recorded'}; the main analyses pool "
                   f"{', '.join(plan.modalities)} (plan: modalities)")
        elif o.unit != unit:
            why = f"unit {o.unit}; this analysis pools {unit}"
        if why:
            out.append(_left_out(s.id, o, why))
        else:
            keep.append((s, o))
    return keep, out


def _apply_overlap(inc: list[dict], out: list[dict], plan: Plan, notes: list[str]):
    groups: dict[str, list[dict]] = {}
    for r in inc:
        if r.get("overlap_group"):
            groups.setdefault(r["overlap_group"], []).append(r)
    drop = set()
    for g, members in sorted(groups.items()):
        if len(members) < 2:
            continue
        ids = ", ".join(m["study"] for m in members)
        if plan.overlap == "all":
            notes.append(f"overlap group {g} ({ids}): all pooled; patients may be counted twice")
            continue
        best = min(members, key=lambda m: (-m["ni"], m["study"]))
        for m in members:
            if m is not best:
                drop.add(m["study"])
                out.append({"study": m["study"], "time": m["time"], "arm": m["arm"],
                            "reason": f"overlap group {g}: kept {best['study']} "
                                      f"(n = {best['ni']:g}, the larger study)"})
        notes.append(f"overlap group {g} ({ids}): kept {best['study']}, the largest")
    return [r for r in inc if r["study"] not in drop]


def select(studies: StudySet, plan: Plan, op: OutcomePlan, window: str | None, unit: str,
           assumed: dict | None = None) -> Selection:
    """Apply the plan's selection rules for one outcome, window and unit.

    Parameters
    ----------
    studies : StudySet
    plan : Plan
    op : OutcomePlan
        The outcome (one of ``plan.outcomes``).
    window : str or None
        Name of a window in ``plan.windows``; None: every time point.
    unit : {"patients", "lesions"}
    assumed : dict, optional
        ``{(study, time): denominator}`` for percents without a denominator
        (sensitivity analyses); used whatever ``percent_without_denominator``
        says.

    Returns
    -------
    Selection
        ``included`` has one row per study (``study, arm, time, days, unit,
        overlap_group, ni`` and the statistics the measure needs),
        ``excluded`` one row per record left out with its reason.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> s = ma.load_studies(ma.example_path())
    >>> p = ma.load_plan(ma.example_path("studies/plan.yaml"))
    >>> sel = select(s, p, p.outcome("cement_leakage"), None, "lesions")
    >>> sel.included.study.tolist()
    ['chen2022', 'wang2022', 'wu2021']
    """
    from metaanalysis.records.checks import candidate_denominators, compact, matching_counts

    assumed = assumed or {}
    labels = display_labels(studies)
    recs, out = _base_filter(studies, plan, op, unit)
    notes: list[str] = []
    pending = []
    lohi = plan.windows[window] if window else None
    is_prop = op.measure in PROPORTIONS
    by_study: dict[str, list] = {}
    for s, o in recs:
        by_study.setdefault(s.id, []).append((s, o))
    inc: list[dict] = []
    for sid, items in by_study.items():
        s = items[0][0]
        follow = [(s_, o) for s_, o in items if o.timepoint.kind != "baseline"]
        if lohi is not None:
            inwin = [(s_, o) for s_, o in follow if o.timepoint.kind == "follow-up"
                     and o.timepoint.overlaps(*lohi)]
            # records at other times belong to other windows: not listed as left out
            if not inwin:
                continue
            inwin.sort(key=lambda t: (_window_distance(t[1].timepoint, *lohi), t[1].time))
            chosen = inwin[0][1]
            for _, o in inwin[1:]:
                out.append(_left_out(sid, o, f"{o.time}: another record of this study "
                                             f"({chosen.time}) is nearer the middle of {window}"))
        else:
            if not follow:
                continue
            follow.sort(key=lambda t: (t[1].timepoint.defined,
                                       t[1].timepoint.day_hi if t[1].timepoint.defined else 0))
            chosen = follow[-1][1]
            for _, o in follow[:-1]:
                out.append(_left_out(sid, o, f"{o.time}: the latest time point ({chosen.time}) "
                                             "is used"))
        st = _stats(chosen)
        tp = chosen.timepoint
        row = {"study": sid, "label": labels.get(sid, sid), "arm": chosen.arm,
               "time": chosen.time, "days": tp.days if tp.defined else math.nan, "unit": unit,
               "overlap_group": overlap_group_of(s, plan), "assumption": "", "flags": ""}
        flags = set()
        if {"n", "total"} & set(chosen.assumed):
            flags.add("§")
        if {"unit", "definition"} & set(chosen.assumed):
            flags.add("‖")
        if is_prop:
            if _has(st, "events", "total"):
                row.update(events=st["events"], total=st["total"], ni=st["total"])
                if "events" in chosen.derived:
                    row["assumption"] = "events derived from the percent"
            elif _has(st, "percent", "total"):
                cnt = matching_counts(st["percent"], chosen.decimals.get("percent", 0), int(st["total"]))
                if len(cnt) != 1:
                    out.append(_left_out(sid, chosen, f"{st['percent']:g}% of {st['total']:g} "
                                         f"matches {'no whole count' if not cnt else 'several counts'}"))
                    continue
                row.update(events=float(cnt[0]), total=st["total"], ni=st["total"],
                           assumption=f"events {cnt[0]} derived from {st['percent']:g}%")
            elif _has(st, "percent"):
                dec = chosen.decimals.get("percent", 0)
                upper = s.size(unit, chosen.arm)
                cands = candidate_denominators(st["percent"], dec, upper) if upper else []
                key = (sid, chosen.time)
                if key in assumed:
                    t = int(assumed[key])
                    e = assumed_events(st["percent"], dec, t)
                    row.update(events=float(e), total=float(t), ni=float(t),
                               assumption=f"assumed denominator {t} ({st['percent']:g}% → {e}/{t})")
                    flags.add("¶")
                else:
                    pending.append((sid, chosen.time, st["percent"], dec, upper, tuple(cands)))
                    out.append(_left_out(sid, chosen, f"{st['percent']:g}% with no denominator "
                                         "(plan: percent_without_denominator: exclude); candidate "
                                         f"denominators ≤ {upper}: {compact(cands) or 'none'}"))
                    continue
            else:
                out.append(_left_out(sid, chosen, f"{chosen.time}: no events/total or percent"))
                continue
        else:
            base = [o for _, o in items if o.timepoint.kind == "baseline"]
            if not base:
                out.append(_left_out(sid, chosen, "no baseline record for the change from baseline"))
                continue
            b = base[0]
            sb = _stats(b)
            if not _has(st, "n") or not _has(sb, "n"):
                out.append(_left_out(sid, chosen, "no n reported"))
                continue
            n = min(st["n"], sb["n"])
            local: list[str] = []
            m0, s0, how0 = _mean_sd(sb, b.reported_as, sb["n"], plan, sid, b.time, local)
            if m0 is None:
                out.append(_left_out(sid, chosen, f"baseline {how0}"))
                continue
            m1, s1, how1 = _mean_sd(st, chosen.reported_as, st["n"], plan, sid, chosen.time, local)
            if m1 is None:
                out.append(_left_out(sid, chosen, how1))
                continue
            notes.extend(local)
            conv = sorted({h for h in (how0, how1) if h != "reported"})
            if "n" in b.assumed or "n" in chosen.assumed:
                flags.add("§")
            if "median-as-mean" in conv:
                flags.add("‡")
            if set(conv) - {"median-as-mean"}:
                flags.add("†")
            row.update(mean_pre=m0, sd_pre=s0, mean_post=m1, sd_post=s1, n=n, ni=n,
                       baseline_time=b.time, assumption="; ".join(conv))
            if st["n"] != sb["n"]:
                notes.append(f"{sid} ({chosen.time}): n = {n:g}, the smaller of the baseline "
                             f"({sb['n']:g}) and follow-up ({st['n']:g}) counts")
        row["flags"] = "".join(m for m in FLAG_MARKS if m in flags)
        inc.append(row)
    inc = _apply_overlap(inc, out, plan, notes)
    cols = ["study", "label", "arm", "time", "days", "unit", "overlap_group", "ni", "assumption",
            "flags"]
    stat_cols = (["events", "total"] if is_prop else
                 ["baseline_time", "mean_pre", "sd_pre", "mean_post", "sd_post", "n"])
    included = pd.DataFrame(inc, columns=cols + stat_cols).sort_values("study", kind="stable")
    excluded = pd.DataFrame(out, columns=["study", "time", "arm", "reason"])
    return Selection(included.reset_index(drop=True), excluded, tuple(dict.fromkeys(notes)),
                     tuple(pending))
